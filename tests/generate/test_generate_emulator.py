"""The whole chain: local monitoring source -> generate --check --upload -> the emulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sync.errors import ExitCode

from .gen_support import Source, sample_payload, snapshot

emulator = pytest.importorskip("sync.emulator.server")
backend_mod = pytest.importorskip("sync.emulator.backend")
cli = pytest.importorskip("sync.cli")
pytestmark = pytest.mark.skipif(not hasattr(cli, "main"), reason="sync.cli.main missing")


def test_check_upload_chain_and_unhealthy_source_never_reaches_the_agent(
    tmp_path: Path,
    source: Source,
    gen: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sync.clock import SystemClock

    backend = backend_mod.Backend(
        api_key="sk_emu_gen_test", clock=SystemClock(), index_seconds=0.05
    )
    agent = backend.seed_agent(agent_id="agent_gen_test")
    monkeypatch.chdir(tmp_path)  # the push's run records go to reports/runs under here
    with emulator.serve(backend) as server:
        monkeypatch.setenv("ELEVENLABS_BASE_URL", server.url)
        monkeypatch.setenv("ELEVENLABS_API_KEY", "sk_emu_gen_test")
        monkeypatch.setenv("ELEVENLABS_AGENT_ID", agent)
        monkeypatch.setenv("RAG_INDEXING_TIMEOUT", "10")
        out = tmp_path / "quarters"
        argv = ["--check", "--upload", "--merge-small", "--source", source.url, "--out", str(out)]

        assert gen(*argv) == ExitCode.OK
        names = sorted(e["name"] for e in backend.agent_kb(agent))
        assert len(names) == 6 and any("2025-Q1" in n for n in names)
        version = backend.agent_version(agent)
        before = snapshot(out)

        # Healthy again, nothing changed: no write, the agent untouched.
        assert gen(*argv) == ExitCode.OK
        assert snapshot(out) == before and backend.agent_version(agent) == version

        # Unhealthy sources: exit 7, neither the folder nor the agent change.
        arrangements: list[Callable[[], None]] = [
            lambda: source.serve(b"{}", status=500),
            lambda: source.serve([]),
            lambda: source.serve(b'{"quarters": [{"quarter": "2025-'),
            lambda: source.serve({"quarters": sample_payload()["quarters"][:1]}),
        ]
        for arrange in arrangements:
            arrange()
            assert gen(*argv, "--retries", "0") == ExitCode.SOURCE_UNHEALTHY
            assert snapshot(out) == before
            assert backend.agent_version(agent) == version
            assert sorted(e["name"] for e in backend.agent_kb(agent)) == names
