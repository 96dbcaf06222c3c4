"""The acceptance targets: one object per ``--target`` hiding where the agent lives.

- ``emulator``: an in-process :class:`~sync.emulator.Backend` behind ``responses``, one
  :class:`~sync.clock.FakeClock` shared by the backend and ``sync.cli.run`` (nothing sleeps).
- ``http``: the same Backend served on 127.0.0.1; ``kb-sync`` runs as a subprocess
  (``python -m sync``), the exact code path a staging run takes. Both run on one
  :class:`~sync.clock.ScaledClock` (real time run ``1/TIME_SCALE`` times as fast; the
  subprocess gets it from ``KB_SYNC_TEST_TIME_SCALE``): back-offs and index waits are real
  sleeps, only shorter, and every deadline still ends a wait. Faults are injected through the
  Backend object, which lives in this process.
- ``staging``: the real ElevenLabs API and one staging agent, guarded by
  :func:`check_staging_guard`; the run works in its own namespace and cleans up after itself.

Steps talk to a :class:`Target` only through its methods. Fault injection and emulator control
are a typed capability, :attr:`Target.faults` (a :class:`Faults`): the emulator targets have
it, staging does not (``None``); the steps that need it are tagged ``@fault`` /
``@emulator_only`` and take the ``faults`` fixture (``steps.plugin``), which skips with the
reason on a target without it.

Call records (:attr:`RunResult.calls`) have one shape on every target, the emulator's
``Call.to_dict()``: ``method``, ``path``, ``query``, ``status``, ``request_json``,
``response_json``, ... (staging's client exchanges are converted to it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from steps.runs import (
    RunResult,
    call_from_exchange,
    is_write,
    parse_log,
)
from steps.staging_guard import EMULATOR_BASE, StagingConfig, StagingRefused, check_staging_guard
from sync.naming import parse
from sync.testing import run_cli

if TYPE_CHECKING:
    from sync.emulator import Backend, Call, FaultRule

__all__ = [
    "ROOT",
    "Faults",
    "RunResult",
    "StagingConfig",
    "StagingRefused",
    "Target",
    "call_from_exchange",
    "check_staging_guard",
    "is_write",
    "make_target",
    "parse_log",
]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = "multilingual_e5_large_instruct"
# http target: one second of the run's clock is 0.1 s of real time. Not less: the cassette's
# times are the run's clock, so a request's real delay weighs 1/scale times more in them, and
# the replay at session end fits the index time to them ("Emulator fidelity"); at 0.05, polls
# a few ms from an index's end showed as index differences under a loaded machine.
TIME_SCALE = 0.1


# --------------------------------------------------------------------------- capabilities


class Faults(Protocol):
    """Fault injection and emulator control: what the ``@fault`` / ``@emulator_only`` steps may
    ask of a target. The emulator's ``Backend`` is one; staging has none (the real API cannot be
    told to fail). Steps get it from the ``faults`` fixture, which skips where it is absent."""

    after_request: list[Callable[[Backend, Call], None]]

    def add_fault(self, rule: FaultRule) -> FaultRule: ...
    def clear_faults(self) -> None: ...
    def linger(self, times: int) -> None: ...
    def set_index_behaviour(self, match: str, behaviour: str, times: int | None = None) -> None: ...
    def set_quota(self, total_max_bytes: int) -> None: ...
    def used_bytes(self) -> int: ...
    def seed_agent(self, *, name: str = ...) -> str: ...
    def attach(self, agent_id: str, doc_id: str, usage_mode: str = "auto") -> None: ...


# --------------------------------------------------------------------------- targets


class Target:
    """What every target offers the steps."""

    name = "?"
    key: str = ""
    base_url = EMULATOR_BASE
    namespace = "kb-sync"

    baseline = 0  # knowledge base entries the agent has before a scenario seeds anything

    def __init__(self, reports: Path) -> None:
        self.reports = reports
        self.outputs: list[str] = []  # every captured stdout/stderr, for the leak scan
        self.agents_seen: list[str] = []
        self.cassette: Path | None = None  # KB_SYNC_CASSETTE for every kb-sync run (if set)
        self.recording = True  # this scenario's runs go to the cassette

    def record(self, scenario: str, tags: set[str]) -> None:
        """Start a scenario in the cassette (where the target has one)."""

    @property
    def faults(self) -> Faults | None:
        """Fault injection and emulator control; None where the target has none (staging)."""
        return None

    # lifecycle
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def begin_scenario(self) -> None: ...
    def end_scenario(self) -> None: ...

    # world building
    def new_agent(self, name: str = "Support agent") -> str:
        raise NotImplementedError

    def seed_document(
        self,
        name: str,
        text: str,
        agent_id: str | None,
        usage_mode: str = "auto",
        content_format: str = "markdown",
    ) -> str:
        raise NotImplementedError

    def edit_in_ui(self, doc_id: str, text: str) -> None:
        raise NotImplementedError

    # inspection
    def kb(self, agent_id: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def doc(self, doc_id: str) -> dict[str, Any] | None:
        """``{"id", "name", "text", "updated_at"}`` or None when it does not exist."""
        raise NotImplementedError

    def index_status(self, doc_id: str) -> str | None:
        raise NotImplementedError

    def docs_named(self, prefix: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def probe_rag(self, agent_id: str, query: str) -> list[dict[str, Any]] | None:
        """Chunks an independent RAG probe (not the sync's code) returns; None: no such probe."""
        return None

    # the CLI
    def env(self, agent_id: str) -> dict[str, str]:
        env = {
            "ELEVENLABS_API_KEY": self.key,
            "ELEVENLABS_AGENT_ID": agent_id,
            "ELEVENLABS_BASE_URL": self.base_url,
            "KB_SYNC_NAMESPACE": self.namespace,
            "RAG_INDEXING_TIMEOUT": "60",
        }
        if self.cassette is not None and self.recording:
            env["KB_SYNC_CASSETTE"] = str(self.cassette)
        return env

    def run(self, argv: list[str], env: dict[str, str], record_dir: Path, cwd: Path) -> RunResult:
        raise NotImplementedError

    def _collect(self, res: RunResult) -> RunResult:
        self.outputs += [res.stdout, res.stderr]
        if res.record_dir.is_dir():
            res.records = sorted(res.record_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
        return res


class _BackendTarget(Target):
    """Emulator and http: a Backend in this process does the seeding and the faults."""

    backend: Backend

    @property
    def faults(self) -> Faults:
        return self.backend

    def new_agent(self, name: str = "Support agent") -> str:
        agent_id = str(self.backend.seed_agent(name=name))
        self.agents_seen.append(agent_id)
        return agent_id

    def seed_document(
        self,
        name: str,
        text: str,
        agent_id: str | None,
        usage_mode: str = "auto",
        content_format: str = "markdown",
    ) -> str:
        return str(
            self.backend.seed_document(
                name,
                text,
                content_format=content_format,
                attach_to=[agent_id] if agent_id else [],
                usage_mode=usage_mode,
                parent_folder_id=self._folder_for(name),
            )
        )

    def _folder_for(self, name: str) -> str | None:
        """A managed document seeded "as an earlier kb-sync run left it" is in our folder."""
        if parse(name, self.namespace) is None:
            return None
        for doc_id, d in self.backend.docs.items():
            if d.is_folder and d.name == self.namespace and d.parent_id is None:
                return doc_id
        folder = str(self.backend.seed_folder(self.namespace))
        self.backend.seed_folder(".kb-sync", folder)
        return folder

    def edit_in_ui(self, doc_id: str, text: str) -> None:
        body = json.dumps({"content": text}).encode()
        resp = self.backend.handle(
            "PATCH", f"/v1/convai/knowledge-base/{doc_id}", {}, {"xi-api-key": self.key}, body
        )
        assert resp.status == 200, resp.body
        # the UI's edit re-indexes: let it finish, as it would before a cron run
        self.backend.advance(self.backend.index_seconds + 1)
        self.backend.index_status(doc_id)

    def kb(self, agent_id: str) -> list[dict[str, Any]]:
        return list(self.backend.agent_kb(agent_id))

    def doc(self, doc_id: str) -> dict[str, Any] | None:
        d = self.backend.docs.get(doc_id)
        if d is None:
            return None
        return {"id": d.id, "name": d.name, "text": d.text, "updated_at": d.updated_at}

    def index_status(self, doc_id: str) -> str | None:
        status = self.backend.index_status(doc_id)
        return None if status is None else str(status)

    def docs_named(self, prefix: str) -> list[dict[str, Any]]:
        return [
            {"id": d.id, "name": d.name, "text": d.text}
            for d in list(self.backend.docs.values())
            if d.name.startswith(prefix)
        ]

    def probe_rag(self, agent_id: str, query: str) -> list[dict[str, Any]] | None:
        return self.backend.retrieve(agent_id, query, DEFAULT_MODEL)


class EmulatorTarget(_BackendTarget):
    name = "emulator"

    def __init__(self, reports: Path, key: str) -> None:
        super().__init__(reports)
        self.key = key

    def begin_scenario(self) -> None:
        from sync.clock import FakeClock
        from sync.emulator import Backend

        self.clock = FakeClock()
        self.backend = Backend(api_key=self.key, clock=self.clock, index_seconds=3.0)

    def run(self, argv: list[str], env: dict[str, str], record_dir: Path, cwd: Path) -> RunResult:
        t0 = time.perf_counter()
        res = run_cli(
            argv,
            {**env, "KB_SYNC_RECORD_DIR": str(record_dir)},
            backend=self.backend,
            clock=self.clock,
            base_url=self.base_url,
        )
        calls = [c.to_dict() for c in res.calls]
        return self._collect(
            RunResult(
                argv, res.code, res.stdout, res.stderr, calls, time.perf_counter() - t0, record_dir
            )
        )


class HttpTarget(_BackendTarget):
    name = "http"

    def __init__(self, reports: Path, key: str) -> None:
        super().__init__(reports)
        self.key = key

    def start(self) -> None:
        from sync.clock import ScaledClock
        from sync.emulator import Backend, serve

        self.clock = ScaledClock(TIME_SCALE, time.time())
        # 3 s on the scaled clock (0.3 s of real time), as long as the in-process target's
        self.backend = Backend(api_key=self.key, clock=self.clock, index_seconds=3.0)
        self.server = serve(self.backend, host="127.0.0.1")
        self.base_url = self.server.url

    def env(self, agent_id: str) -> dict[str, str]:
        from sync.clock import TIME_SCALE_VAR

        return {**super().env(agent_id), TIME_SCALE_VAR: self.clock.env_value()}

    def stop(self) -> None:
        self.server.shutdown()

    def begin_scenario(self) -> None:
        self.backend.reset()
        self.backend.after_request.clear()

    def record(self, scenario: str, tags: set[str]) -> None:
        """The cassette holds the scenarios staging runs (not ``@fault`` / ``@emulator_only``:
        their faults and emulator control are not in it), one segment each: the backend is
        reset between scenarios, so the replay starts a fresh emulator there too."""
        self.recording = not tags & {"fault", "emulator_only"}
        if self.cassette is not None and self.recording:
            from sync.cassette import Cassette

            Cassette(self.cassette).mark("segment", name=scenario)

    def run(self, argv: list[str], env: dict[str, str], record_dir: Path, cwd: Path) -> RunResult:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        full = {k: v for k, v in os.environ.items() if k in keep}
        full.update(env)
        full["KB_SYNC_RECORD_DIR"] = str(record_dir)
        full["PYTHONPATH"] = str(ROOT)
        mark = len(self.backend.calls)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "sync", *argv],
            env=full,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        return self._collect(
            RunResult(
                argv,
                proc.returncode,
                proc.stdout,
                proc.stderr,
                [c.to_dict() for c in self.backend.calls[mark:]],
                time.perf_counter() - t0,
                record_dir,
            )
        )


def make_target(name: str, reports: Path, key: str) -> Target:
    if name == "emulator":
        return EmulatorTarget(reports, key)
    if name == "http":
        return HttpTarget(reports, key)
    if name == "staging":
        from steps.staging import StagingTarget

        return StagingTarget(reports, check_staging_guard(os.environ))
    raise ValueError(f"unknown target {name!r}")
