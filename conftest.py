"""Root conftest: the acceptance harness (features/ + steps/), wired for every pytest run.

``--target emulator`` (default: in-process emulator, fake clock), ``--target http`` (emulator
on 127.0.0.1, ``kb-sync`` as a subprocess) or ``--target staging`` (the real ElevenLabs API,
guarded; see docs/acceptance.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile

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


# ---------------------------------------------------------------------------- xdist workers

_WORKER_TMP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker gets a TMPDIR of its own, for this run only: kb-sync's
    per-agent lock files live there (``sync.lock``), keyed by agent ids that seeded backends
    repeat, so two workers (or two people's runs) never refuse each other's pushes. The
    subprocesses a test starts inherit it; ``tmp_path`` is xdist's per-worker basetemp."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    path = tempfile.mkdtemp(prefix=f"kb-sync-{worker}-")
    config.stash[_WORKER_TMP] = path
    os.environ["TMPDIR"] = path
    tempfile.tempdir = path


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.stash.get(_WORKER_TMP, None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
