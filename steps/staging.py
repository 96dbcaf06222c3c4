"""The ``staging`` target: the real ElevenLabs API and one staging agent, behind a guard
(explicit confirmation, never a production agent). It works in a namespace of its own and, at
the end, puts the agent back and removes everything of that namespace (folder, history and
leases included)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from steps.runs import RunResult, call_from_exchange
from steps.staging_guard import StagingConfig
from steps.target import DEFAULT_MODEL, Target
from sync.domain import AgentView, Layout, entries_json
from sync.folders import ensure_layout
from sync.naming import parse
from sync.testing import run_cli


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
