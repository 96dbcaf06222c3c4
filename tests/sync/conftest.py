"""Fixtures for the sync's tests: an in-process emulator sharing a FakeClock with the CLI."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sync.clock import TIME_SCALE_VAR, FakeClock, ScaledClock
from sync.emulator import Backend, emulate, serve
from sync.testing import Result, is_upload, run_cli
from tests.canary import CANARY_KEY
from tests.contract.spec import validate_call

MODEL = "multilingual_e5_large_instruct"
LOOPBACK_SCALE = 0.05  # the ``loopback`` fixture's clock: one second is 50 ms of real time


def para(seed: str, n: int = 8) -> str:
    """A body comfortably over the 500-byte RAG floor, distinct per seed (Cyrillic)."""
    return "\n\n".join(
        f"Раздел {i} документа {seed}: выручка и показатели мониторинга {seed} за период {i}."
        for i in range(n)
    )


@dataclass
class Kit:
    backend: Backend
    clock: FakeClock
    agent_id: str
    dir: Path
    records: Path
    env: dict[str, str] = field(default_factory=dict)
    exchanges: list[dict[str, Any]] = field(default_factory=list)

    def write(self, name: str, text: str) -> Path:
        p = self.dir / name
        p.write_text(text, encoding="utf-8")
        return p

    def remove(self, name: str) -> None:
        (self.dir / name).unlink()

    def kb(self, *argv: str, env: dict[str, str] | None = None) -> Result:
        """``kb-sync ARGV`` against the kit's emulator (the fixture holds ``emulate``)."""
        return run_cli(
            argv,
            env if env is not None else self.env,
            clock=self.clock,
            on_exchange=self.exchanges.append,
        )

    def push(self, *extra: str) -> Result:
        return self.kb("push", "--dir", str(self.dir), *extra)

    def writes(self) -> list[Any]:
        """Write requests on the workspace's documents and agents: kb-sync's own folders
        (its KB folder, .kb-sync and the leases in it) are left out, see ``metadata_writes``."""
        own = self.metadata_writes()
        return [c for c in self.backend.calls if c.method != "GET" and c not in own]

    def metadata_writes(self) -> list[Any]:
        """kb-sync's own: folders (the KB folder, .kb-sync, leases) and stored run records."""
        created = [
            c
            for c in self.backend.calls
            if c.method == "POST"
            and (
                c.path.endswith("/knowledge-base/folder")
                or (c.path.endswith("/knowledge-base/text") and not is_upload(c))
            )
        ]
        ids = {str((c.response_json or {}).get("id")) for c in created}
        ids |= {d.id for d in self.backend.docs.values() if d.name.startswith("run:")}
        changed = [
            c
            for c in self.backend.calls
            if c.method in ("DELETE", "PATCH") and c.path.rsplit("/", 1)[-1] in ids
        ]
        return created + changed

    def managed_kb(self) -> list[dict[str, Any]]:
        return [e for e in self.backend.agent_kb(self.agent_id) if e["name"].startswith("kb-sync:")]

    def managed_docs(self) -> dict[str, Any]:
        return {i: d for i, d in self.backend.docs.items() if d.name.startswith("kb-sync:")}

    def file_of(self, entry: dict[str, Any]) -> str:
        return str(entry["name"]).split(":", 1)[1].rsplit("#", 1)[0]


def ctrl_c_at_the_first_delete(kit: Kit) -> None:
    """Once, as the first DELETE of a document is answered: Ctrl-C (after the PATCH)."""
    pressed: list[str] = []

    def hook(backend: Backend, call: Any) -> None:
        if call.method == "DELETE" and "/knowledge-base/" in call.path and not pressed:
            pressed.append(call.path)
            raise KeyboardInterrupt

    kit.backend.after_request.append(hook)


@pytest.fixture
def kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kit]:
    clock = FakeClock()
    backend = Backend(api_key=CANARY_KEY, clock=clock, index_seconds=3.0)
    agent_id = backend.seed_agent()
    docs = tmp_path / "quarters"
    docs.mkdir()
    records = tmp_path / "runs"
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # the per-agent lock file
    env = {
        "ELEVENLABS_API_KEY": CANARY_KEY,
        "ELEVENLABS_AGENT_ID": agent_id,
        "KB_SYNC_NAMESPACE": "kb-sync",  # the tests read names; the default is per agent
        "KB_SYNC_RECORD_DIR": str(records),  # settings come from the env given, only
    }
    k = Kit(backend, clock, agent_id, docs, records, env)
    with emulate(backend):
        yield k
    # every exchange of the test conforms to the vendored OpenAPI subset
    for call in backend.calls:
        validate_call(call)


@dataclass
class Served:
    """The emulator served on 127.0.0.1 and the env a ``python -m sync`` subprocess needs
    against it: both on one :class:`ScaledClock` (real time, 20 times as fast; the
    subprocess gets it from ``KB_SYNC_TEST_TIME_SCALE``), indexes take 3 s of it."""

    backend: Backend
    url: str
    env: dict[str, str]


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[Served]:
    clock = ScaledClock(LOOPBACK_SCALE, time.time())
    backend = Backend(api_key=CANARY_KEY, clock=clock, index_seconds=3.0)
    agent = backend.seed_agent()
    with serve(backend) as server:
        env = {
            "PATH": os.environ["PATH"],
            "ELEVENLABS_API_KEY": CANARY_KEY,
            "ELEVENLABS_AGENT_ID": agent,
            "KB_SYNC_NAMESPACE": "kb-sync",
            "ELEVENLABS_BASE_URL": server.url,
            "KB_SYNC_RECORD_DIR": str(tmp_path / "runs"),
            "TMPDIR": str(tmp_path),
            TIME_SCALE_VAR: clock.env_value(),
        }
        yield Served(backend, server.url, env)
