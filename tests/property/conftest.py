"""Hypothesis profiles for the safety property tests.

- ``ci`` (default): bounded, the whole property suite runs in well under a minute;
- ``soak``: ``HYPOTHESIS_PROFILE=soak pytest tests/property`` (1000 machine examples,
  ~5 min estimated);
- ``dev``: a handful of examples, for iterating on the machine itself.

The profile is applied to the tests of this folder only (each test reads
``HYPOTHESIS_PROFILE`` itself), so loading this conftest does not change the settings of
anyone else's hypothesis tests in the same session. ``big`` (300 examples) sits in between.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

_COMMON: dict[str, Any] = {
    "deadline": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=60, stateful_step_count=20, **_COMMON)
settings.register_profile("soak", max_examples=1000, stateful_step_count=25, **_COMMON)
settings.register_profile("dev", max_examples=5, stateful_step_count=8, **_COMMON)
settings.register_profile("big", max_examples=300, stateful_step_count=30, **_COMMON)


HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``) the property tests run in one worker: their
    counters (``harness.STATS``) are one process's, and reports/property-stats.json must
    count every example of the run."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("property"))


def profile_name() -> str:
    return os.environ.get("HYPOTHESIS_PROFILE", "ci")


@pytest.fixture(scope="session", autouse=True)
def _property_stats() -> Iterator[None]:
    """Write what the property tests tried to reports/property-stats.json, and print it."""
    from tests.property.harness import STATS

    yield
    if not STATS["examples"]:
        return
    out = {
        **STATS,
        "profile": profile_name(),
        "faults": dict(STATS["faults"]),
        "faults_total": sum(STATS["faults"].values()),
        "exit_codes": dict(STATS["exit_codes"]),
        "history": dict(STATS["history"]),
    }
    path = Path(__file__).resolve().parents[2] / "reports" / "property-stats.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"\nproperty stats ({path}): {json.dumps(out, ensure_ascii=False)}")
