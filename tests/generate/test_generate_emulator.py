"""The whole chain: local monitoring source -> generate --check --upload -> the emulator."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from sync import cli
from sync.clock import SystemClock
from sync.emulator import Backend, serve
from sync.errors import ExitCode

from .gen_support import Source, sample_payload, snapshot


def test_check_upload_chain_and_unhealthy_source_never_reaches_the_agent(
    tmp_path: Path,
    source: Source,
    gen: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = Backend(api_key="sk_emu_gen_test", clock=SystemClock(), index_seconds=0.05)
    agent = backend.seed_agent(agent_id="agent_gen_test")
    monkeypatch.chdir(tmp_path)  # the push's run records go to reports/runs under here
    with serve(backend) as server:
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


class CountingClock(SystemClock):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def now(self) -> float:
        self.reads += 1
        return super().now()


def test_cli_upload_runs_the_push_with_the_given_env_clock_and_stdout(
    tmp_path: Path, source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("ELEVENLABS_BASE_URL", "ELEVENLABS_API_KEY", "ELEVENLABS_AGENT_ID"):
        monkeypatch.delenv(var, raising=False)  # only the env given to cli.run has them
    backend = Backend(api_key="sk_emu_gen_env", clock=SystemClock(), index_seconds=0.05)
    agent = backend.seed_agent(agent_id="agent_gen_env")
    out, stdout, clock = tmp_path / "quarters", io.StringIO(), CountingClock()
    with serve(backend) as server:
        env = {
            "BIRBY_API_URL": source.url,
            "ELEVENLABS_BASE_URL": server.url,
            "ELEVENLABS_API_KEY": "sk_emu_gen_env",
            "ELEVENLABS_AGENT_ID": agent,
            "KB_SYNC_NAMESPACE": "kb-sync",
            "RAG_INDEXING_TIMEOUT": "10",
            "KB_SYNC_RECORD_DIR": str(tmp_path / "runs"),
        }
        argv = ["generate", "--check", "--upload", "--merge-small", "--out", str(out)]
        assert cli.run(argv, env=env, clock=clock, stdout=stdout) == ExitCode.OK
    text = stdout.getvalue()
    assert "healthy records=6 existing=0" in text  # generate's lines ...
    assert "Applied: 6 attached" in text  # ... and the push's, on the same stdout
    assert clock.reads > 0  # the push waited for the indexes on the clock given
    assert len(backend.agent_kb(agent)) == 6
    assert list((tmp_path / "runs").glob("*.json"))  # the record dir came from that env too
