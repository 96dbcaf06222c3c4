"""The staging target's clean-up (steps/target.py), run against the in-process emulator: at
the end of a session it leaves nothing of its namespace, history and leases included."""

from __future__ import annotations

from pathlib import Path

from steps.staging import StagingTarget
from steps.target import StagingConfig
from sync.clock import FakeClock
from sync.emulator import Backend, emulate
from sync.testing import run_cli
from tests.canary import CANARY_KEY

from .conftest import para


def test_the_staging_session_removes_its_folder_history_and_leases(tmp_path: Path) -> None:
    clock = FakeClock()
    backend = Backend(api_key=CANARY_KEY, clock=clock, index_seconds=3.0)
    agent = backend.seed_agent()
    faq = backend.seed_document("Company FAQ", para("faq"), attach_to=[agent])
    base = "https://api.elevenlabs.io"
    target = StagingTarget(tmp_path, StagingConfig(CANARY_KEY, agent, base))
    docs = tmp_path / "q"
    docs.mkdir()
    with emulate(backend):
        target.start()
        env = target.env(agent) | {"KB_SYNC_RECORD_DIR": str(tmp_path / "runs")}
        for v in ("v1", "v2"):
            (docs / "a.md").write_text(para(v), encoding="utf-8")
            assert run_cli(["push", "--dir", str(docs)], env, clock=clock).code == 0
        ours = [d for d in backend.docs.values() if d.id != faq]
        assert any(d.name.startswith("run:") for d in ours)  # the history is there
        assert any(d.name == ".kb-sync" for d in ours)
        assert target.restore() == []
    assert list(backend.docs) == [faq]
    assert [e["id"] for e in backend.agent_kb(agent)] == [faq]
