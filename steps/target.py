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
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sync.domain import AgentView, Layout, entries_json
from sync.folders import ensure_layout
from sync.naming import parse
from sync.testing import run_cli

if TYPE_CHECKING:
    from sync.emulator import Backend, Call, FaultRule

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = "multilingual_e5_large_instruct"
EMULATOR_BASE = "https://api.elevenlabs.io"
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")
READ_ONLY_POSTS = ("/knowledge-base/rag-query",)
# http target: one second of the run's clock is 0.1 s of real time. Not less: the cassette's
# times are the run's clock, so a request's real delay weighs 1/scale times more in them, and
# the replay at session end fits the index time to them ("Emulator fidelity"); at 0.05, polls
# a few ms from an index's end showed as index differences under a loaded machine.
TIME_SCALE = 0.1


class StagingRefused(Exception):
    """The staging guard refused to run (one clear line)."""


@dataclass(frozen=True)
class StagingConfig:
    api_key: str
    agent_id: str
    base_url: str


def check_staging_guard(env: Mapping[str, str]) -> StagingConfig:
    """The staging-only guard: explicit confirmation, never a production agent."""
    key = env.get("ELEVENLABS_API_KEY", "").strip()
    agent = env.get("ELEVENLABS_AGENT_ID", "").strip()
    confirm = env.get("KB_SYNC_STAGING_CONFIRM", "").strip()
    production = {
        p.strip() for p in env.get("KB_SYNC_PRODUCTION_AGENT_IDS", "").split(",") if p.strip()
    }
    if not key or not agent:
        raise StagingRefused(
            "--target staging needs ELEVENLABS_API_KEY and ELEVENLABS_AGENT_ID (the staging "
            "agent's id)"
        )
    if agent in production:
        raise StagingRefused(
            f"refusing agent {agent}: it is listed in KB_SYNC_PRODUCTION_AGENT_IDS; the "
            "acceptance suite only ever runs against a staging agent"
        )
    if not confirm:
        raise StagingRefused(
            f"--target staging writes to agent {agent}: confirm it is the staging agent with "
            f"KB_SYNC_STAGING_CONFIRM={agent}"
        )
    if confirm != agent:
        raise StagingRefused(
            f"KB_SYNC_STAGING_CONFIRM={confirm} does not match ELEVENLABS_AGENT_ID={agent}; "
            "set it to the staging agent's id"
        )
    base = env.get("ELEVENLABS_BASE_URL", "").strip() or EMULATOR_BASE
    return StagingConfig(api_key=key, agent_id=agent, base_url=base)


# --------------------------------------------------------------------------- run results

_LINE = re.compile(r"^\d\d:\d\d:\d\d (\w+)\s+(\S+)(.*)$")


def parse_log(text: str) -> list[dict[str, Any]]:
    """Human (``HH:MM:SS level event k=v ...``) or JSON log lines -> event dicts."""
    out: list[dict[str, Any]] = []
    dec = json.JSONDecoder()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and "event" in obj:
                out.append(obj)
            continue
        m = _LINE.match(line)
        if not m:
            continue
        ev: dict[str, Any] = {"level": m.group(1), "event": m.group(2)}
        rest = m.group(3)
        i = 0
        while i < len(rest):
            km = re.compile(r"\s+([\w.]+)=").match(rest, i)
            if not km:
                break
            key, i = km.group(1), km.end()
            if i < len(rest) and rest[i] in '"[{':
                try:
                    val, i = dec.raw_decode(rest, i)
                except ValueError:
                    val, i = rest[i:], len(rest)
            else:
                vm = re.compile(r"\S*").match(rest, i)
                assert vm is not None
                val, i = vm.group(0), vm.end()
            ev[key] = val
        out.append(ev)
    return out


@dataclass
class RunResult:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    calls: list[dict[str, Any]]
    seconds: float
    record_dir: Path
    records: list[Path] = field(default_factory=list)

    @property
    def command(self) -> str:
        return "kb-sync " + " ".join(self.argv)

    @property
    def events(self) -> list[dict[str, Any]]:
        return parse_log(self.stderr)

    def event(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]

    @property
    def writes(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if is_write(c)]

    @property
    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.startswith("kb-sync: error:")]


def is_write(call: Mapping[str, Any]) -> bool:
    method = str(call.get("method", "")).upper()
    path = str(call.get("path", ""))
    return method in WRITE_METHODS and not path.endswith(READ_ONLY_POSTS)


def call_from_exchange(exchange: Mapping[str, Any]) -> dict[str, Any]:
    """A client exchange record (``sync.client``'s ``on_exchange``) in the call-record shape
    the emulator's log has (``Call.to_dict()``), so steps read one shape on every target."""
    response = exchange.get("response")
    text = response if isinstance(response, str) else None
    return {
        "method": exchange.get("method"),
        "path": exchange.get("path"),
        "query": exchange.get("params"),
        "status": exchange.get("status"),
        "request_json": exchange.get("request"),
        "response_json": None if text is not None else response,
        "response_text": text,
        "error": exchange.get("error"),
    }


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


class StagingTarget(Target):
    """The real API. Seeding goes through the sync's own client; everything it creates is
    named in this run's namespace and removed at the end, and the agent's knowledge base is
    put back as it was at session start, even when scenarios fail."""

    name = "staging"

    def __init__(self, reports: Path, config: StagingConfig) -> None:
        super().__init__(reports)
        self.config = config
        self.key = config.api_key
        self.base_url = config.base_url
        self.namespace = f"kb-sync-accept-{secrets.token_hex(4)}"
        self.exchanges: list[dict[str, Any]] = []
        self.snapshot: list[dict[str, Any]] = []

    def start(self) -> None:
        from sync.cassette import tee
        from sync.client import Client
        from sync.log import register_secret

        register_secret(self.key)
        # the harness's own requests (seeding, UI edits, clean-up) belong in the cassette too:
        # they are what happened to the workspace between the kb-sync runs
        record = tee(self.exchanges.append, self.cassette)
        self.client = Client(self.base_url, self.key, on_exchange=record)
        self.snapshot = self.kb(self.config.agent_id)
        self.baseline = len(self.snapshot)
        self.agents_seen.append(self.config.agent_id)

    def restore(self) -> list[str]:
        """Put the agent back and delete every doc of this run's namespace. Returns problems."""
        problems: list[str] = []
        try:
            self.client.patch_agent_kb(self.config.agent_id, self.snapshot)
        except Exception as exc:  # report, go on cleaning
            problems.append(f"restore of the agent's knowledge base failed: {exc}")
        folders = [
            d
            for d in self.client.list_documents(search=self.namespace)
            if d.get("type") == "folder"
        ]
        docs = [
            d for d in self.docs_named(self.namespace) if d["id"] not in {f["id"] for f in folders}
        ]
        # then this run's folder: what is inside first (.kb-sync: the stored runs and leases,
        # then .kb-sync itself), the folder last
        for f in folders:
            docs += self._inside(str(f["id"])) + [{"id": f["id"], "name": f.get("name")}]
        seen: set[str] = set()
        for d in docs:
            if str(d["id"]) in seen:  # a doc of the namespace is also a child of its folder
                continue
            seen.add(str(d["id"]))
            try:
                self.client.delete_document(str(d["id"]), force=False)
            except Exception as exc:
                problems.append(f"could not delete {d['name']} [{d['id']}]: {exc}")
        return problems

    def _inside(self, folder_id: str, depth: int = 0) -> list[dict[str, Any]]:
        """Everything under a folder, the deepest first (bounded: kb-sync nests two levels)."""
        out: list[dict[str, Any]] = []
        for c in self.client.list_documents(parent_folder_id=folder_id):
            if c.get("type") == "folder" and depth < 3:
                out += self._inside(str(c["id"]), depth + 1)
            out.append({"id": c["id"], "name": c.get("name")})
        return out

    def stop(self) -> None:
        problems = self.restore()
        if problems:
            raise RuntimeError("staging cleanup: " + "; ".join(problems))

    def begin_scenario(self) -> None:
        self.restore()

    def new_agent(self, name: str = "Support agent") -> str:
        return self.config.agent_id

    def _wait_index(self, doc_id: str, timeout: float = 300.0) -> str:
        deadline = time.time() + timeout
        pause = 0.3
        while True:
            status = str(self.client.compute_index(doc_id, DEFAULT_MODEL).get("status"))
            if status not in ("new", "created", "processing") or time.time() > deadline:
                return status
            time.sleep(pause)
            pause = min(pause * 1.5, 5.0)

    def seed_document(
        self,
        name: str,
        text: str,
        agent_id: str | None,
        usage_mode: str = "auto",
        content_format: str = "markdown",
    ) -> str:
        folder = None
        if parse(name, self.namespace) is not None:  # as an earlier kb-sync run left it
            folder = ensure_layout(self.client, Layout(self.namespace, None)).folder_id
        if not name.startswith(self.namespace):  # unmanaged seeds still carry our namespace
            name = f"{self.namespace} {name}"
        doc_id = str(self.client.create_text(name, text, parent_folder_id=folder)["id"])
        if usage_mode == "auto":
            self._wait_index(doc_id)
        if agent_id:
            kb = self.kb(agent_id) + [
                {"type": "text", "name": name, "id": doc_id, "usage_mode": usage_mode}
            ]
            self.client.patch_agent_kb(agent_id, kb)
        return doc_id

    def edit_in_ui(self, doc_id: str, text: str) -> None:
        self.client.request("PATCH", f"/v1/convai/knowledge-base/{doc_id}", body={"content": text})
        self._wait_index(doc_id)

    def kb(self, agent_id: str) -> list[dict[str, Any]]:
        return entries_json(AgentView.from_json(self.client.get_agent(agent_id)).entries)

    def doc(self, doc_id: str) -> dict[str, Any] | None:
        from sync.errors import NotFound

        try:
            meta = self.client.get_document(doc_id)
            text = self.client.get_content(doc_id)
        except NotFound:
            return None
        updated = (meta.get("metadata") or {}).get("last_updated_at_unix_secs")
        return {"id": doc_id, "name": meta.get("name"), "text": text, "updated_at": updated}

    def index_status(self, doc_id: str) -> str | None:
        data = self.client.request("GET", f"/v1/convai/knowledge-base/{doc_id}/rag-index")
        for idx in data.get("indexes") or []:
            if idx.get("model") == DEFAULT_MODEL:
                return str(idx.get("status"))
        return None

    def docs_named(self, prefix: str) -> list[dict[str, Any]]:
        return [
            {"id": d["id"], "name": d.get("name"), "text": None}
            for d in self.client.list_documents(search=prefix)
        ]

    def env(self, agent_id: str) -> dict[str, str]:
        env = super().env(agent_id)
        env["RAG_INDEXING_TIMEOUT"] = "300"
        return env

    def run(self, argv: list[str], env: dict[str, str], record_dir: Path, cwd: Path) -> RunResult:
        exchanges: list[dict[str, Any]] = []
        t0 = time.perf_counter()
        res = run_cli(
            argv, {**env, "KB_SYNC_RECORD_DIR": str(record_dir)}, on_exchange=exchanges.append
        )
        calls = [call_from_exchange(x) for x in exchanges]
        return self._collect(
            RunResult(
                argv, res.code, res.stdout, res.stderr, calls, time.perf_counter() - t0, record_dir
            )
        )


def make_target(name: str, reports: Path, key: str) -> Target:
    if name == "emulator":
        return EmulatorTarget(reports, key)
    if name == "http":
        return HttpTarget(reports, key)
    if name == "staging":
        return StagingTarget(reports, check_staging_guard(os.environ))
    raise ValueError(f"unknown target {name!r}")
