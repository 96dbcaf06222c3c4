"""The emulator in a process of its own, driven over a pipe.

The emulator's work (JSON, locking, listing) then never competes with the measured sync for
the GIL, and ``tracemalloc`` in the bench process sees the sync's memory only. The call log
is read back over the pipe (each call as method, path, status, query).
"""

from __future__ import annotations

import multiprocessing as mp
import secrets
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

MODEL = "multilingual_e5_large_instruct"


@dataclass
class Spec:
    latency: float = 0.02  # seconds added to every request
    index_seconds: float = 1.0  # seconds a RAG index takes
    synced: list[tuple[str, str]] = field(default_factory=list)  # (name, text), attached
    nodelay: bool = True  # TCP_NODELAY on the emulator's sockets (see _child)
    api_key: str = field(default_factory=lambda: "sk_bench_" + secrets.token_hex(12))


@dataclass(frozen=True)
class CallRow:
    method: str
    path: str
    status: int
    query: dict[str, list[str]]
    items: tuple[str, ...] = ()  # the document ids of a batch index request


def _items(call: Any) -> tuple[str, ...]:
    body = call.request_json if isinstance(call.request_json, dict) else {}
    items = body.get("items")
    found = items if isinstance(items, list) else []
    return tuple(str(i.get("document_id")) for i in found if isinstance(i, dict))


def _child(conn: Connection, spec: Spec) -> None:  # pragma: no cover - runs in the child
    from sync.clock import SystemClock
    from sync.emulator import Backend, FaultRule, serve
    from sync.emulator import server as front

    # The stdlib handler sends a response's headers and body in two writes; with Nagle on, the
    # client's delayed ACK holds the body ~40 ms on every keep-alive request, on top of the
    # injected latency. Serve with TCP_NODELAY so a request costs the 20 ms asked for.
    if spec.nodelay:
        front._Handler.disable_nagle_algorithm = True
    # the benchmark measures scale (400 to 2,000 documents on one agent): the field report of
    # a PATCH keeping only 100 entries, modelled by default, is off here
    backend = Backend(
        api_key=spec.api_key,
        clock=SystemClock(),
        index_seconds=spec.index_seconds,
        max_patch_entries=None,
    )
    kb = []
    folder = None
    if spec.synced:  # as an earlier run left them: in the namespace's folder, with .kb-sync
        folder = backend.seed_folder("kb-sync")
        backend.seed_folder(".kb-sync", folder)
    for name, text in spec.synced:
        doc_id = backend.seed_document(name, text, indexed_models=(MODEL,), parent_folder_id=folder)
        kb.append({"type": "text", "name": name, "id": doc_id, "usage_mode": "auto"})
    agent_id = backend.seed_agent(
        name="Bench agent", rag_enabled=True, embedding_model=MODEL, knowledge_base=kb
    )
    if spec.latency > 0:
        backend.add_fault(FaultRule(method="*", path=".*", times=None, latency=spec.latency))
    server = serve(backend)
    conn.send({"url": server.url, "agent_id": agent_id})
    try:
        while True:
            cmd = conn.recv()
            if cmd == "calls":
                with backend.lock:
                    rows = [(c.method, c.path, c.status, c.query, _items(c)) for c in backend.calls]
                conn.send(rows)
            elif cmd == "clear":
                backend.clear_calls()
                conn.send(True)
            elif cmd == "kb":
                conn.send(backend.agent_kb(agent_id))
            elif cmd == "docs":
                with backend.lock:
                    conn.send(len(backend.docs))
            elif cmd == "stop":
                break
    finally:
        server.shutdown()
        conn.send(True)


class EmulatorProcess:
    """``with EmulatorProcess(spec) as emu:`` serves a seeded emulator; ``emu.env`` points at it."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_child, args=(child_conn, spec), daemon=True)
        self._proc.start()
        child_conn.close()
        if not self._conn.poll(120):
            raise RuntimeError("the emulator process did not start")
        info: dict[str, Any] = self._conn.recv()
        self.url: str = info["url"]
        self.agent_id: str = info["agent_id"]

    @property
    def env(self) -> dict[str, str]:
        return {
            "ELEVENLABS_API_KEY": self.spec.api_key,
            "ELEVENLABS_AGENT_ID": self.agent_id,
            "KB_SYNC_NAMESPACE": "kb-sync",
            "ELEVENLABS_BASE_URL": self.url,
            "RAG_EMBEDDING_MODEL": MODEL,
        }

    def _ask(self, cmd: str) -> Any:
        self._conn.send(cmd)
        return self._conn.recv()

    def calls(self) -> list[CallRow]:
        return [CallRow(*row) for row in self._ask("calls")]

    def clear_calls(self) -> None:
        self._ask("clear")

    def agent_kb(self) -> list[dict[str, Any]]:
        kb: list[dict[str, Any]] = self._ask("kb")
        return kb

    def doc_count(self) -> int:
        return int(self._ask("docs"))

    def stop(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send("stop")
                if self._conn.poll(10):
                    self._conn.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(5)
        self._conn.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
