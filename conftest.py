"""Root conftest: the acceptance harness (features/ + steps/), wired for every pytest run.

``--target emulator`` (default: in-process emulator, fake clock), ``--target http`` (emulator
on 127.0.0.1, ``kb-sync`` as a subprocess) or ``--target staging`` (the real ElevenLabs API,
guarded; see docs/acceptance.md).
"""

from __future__ import annotations

import pytest

pytest_plugins = [
    "steps.questions",  # first: steps.plugin imports it (the report's "Questions" section)
    "steps.plugin",
    "steps.common",
    "steps.smoke",
    "steps.update",
    "steps.rag_status",
    "steps.deletion",
    "steps.rollback",
    "steps.definition_of_done",
    "steps.observability",
    "steps.safety",
    "steps.resilience",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--target",
        choices=("emulator", "http", "staging"),
        default="emulator",
        help="where the acceptance features run: emulator (in-process, default), http "
        "(emulator on loopback, kb-sync as a subprocess) or staging (the real API; needs "
        "ELEVENLABS_API_KEY, ELEVENLABS_AGENT_ID and KB_SYNC_STAGING_CONFIRM)",
    )
