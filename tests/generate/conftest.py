"""Fixtures for `kb-sync generate`: a local HTTP source on 127.0.0.1, a runner, a push stand-in."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .gen_support import SAMPLE, Generate, PushRecorder, Source, sample_bytes


@pytest.fixture
def source() -> Iterator[Source]:
    state = Source(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            state.hits += 1
            if state.hang:
                state.release.wait(10)
                return
            status = 500 if state.hits <= state.fail_first else state.status
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *a: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/json_ai.php?token=s3cret"
    state.serve(sample_bytes())
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def gen() -> Generate:
    """``kb-sync generate ARGV`` in-process, with ``os.environ`` as the env; ``--upload`` runs
    the real push (``sync.cli.run``) unless the ``push`` fixture stands in for it."""
    return Generate()


@pytest.fixture(autouse=True)
def _no_env_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BIRBY_API_URL", raising=False)


@pytest.fixture
def push(gen: Generate) -> PushRecorder:
    """Stand in for the push that ``generate --upload`` calls back."""
    rec = PushRecorder()
    gen.push = rec
    return rec


@pytest.fixture
def quarters(tmp_path: Path) -> Path:
    """A quarters/ folder already generated from the sample, with old mtimes."""
    out = tmp_path / "quarters"
    code = Generate()("--source", str(SAMPLE), "--out", str(out))
    assert code == 0
    for p in out.iterdir():
        os.utime(p, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    return out
