"""The handoff guide's checklist as Gherkin: every feature under features/ (steps in steps/)."""

from pytest_bdd import scenarios

scenarios(".")
