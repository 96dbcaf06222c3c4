"""Drive an emulator served in another process through its ``/_emulator/`` endpoints.

Same method names as :class:`~sync.emulator.backend.Backend`'s seeding, fault and inspection
API, so a test reads the same whether the emulator is in-process or behind a socket.
Stdlib only (``urllib``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

from sync.emulator.agents import DEFAULT_MODEL
from sync.emulator.faults import FaultRule
from sync.emulator.wire import Call


class RemoteEmulatorError(RuntimeError):
    pass


class RemoteEmulator:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, data: dict[str, Any] | None = None) -> Any:
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(
            f"{self.url}/_emulator{path}",
            data=body,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode() or "null")
        except urllib.error.HTTPError as err:
            raise RemoteEmulatorError(f"{method} {path}: {err.code} {err.read().decode()}") from err

    # seeding and control
    def reset(self) -> None:
        self._call("POST", "/reset", {})

    def seed_agent(self, agent_id: str | None = None, **options: Any) -> str:
        if agent_id is not None:
            options["agent_id"] = agent_id
        return str(self._call("POST", "/agents", options)["agent_id"])

    def seed_document(
        self,
        name: str,
        text: str,
        content_format: str = "markdown",
        indexed_models: Iterable[str] = (DEFAULT_MODEL,),
        attach_to: Iterable[str] = (),
        usage_mode: str = "auto",
        parent_folder_id: str | None = None,
    ) -> str:
        data: dict[str, Any] = {
            "name": name,
            "text": text,
            "content_format": content_format,
            "indexed_models": list(indexed_models),
            "attach_to": list(attach_to),
            "usage_mode": usage_mode,
        }
        if parent_folder_id is not None:
            data["parent_folder_id"] = parent_folder_id
        return str(self._call("POST", "/documents", data)["id"])

    def seed_folder(self, name: str, parent_folder_id: str | None = None) -> str:
        data = {"name": name, "parent_folder_id": parent_folder_id}
        return str(self._call("POST", "/folders", data)["id"])

    def seed_branch(self, agent_id: str, name: str, description: str = "") -> str:
        data = {"agent_id": agent_id, "name": name, "description": description}
        return str(self._call("POST", "/branches", data)["id"])

    def attach(
        self, agent_id: str, doc_id: str, usage_mode: str = "auto", branch_id: str | None = None
    ) -> None:
        data = {"agent_id": agent_id, "doc_id": doc_id, "usage_mode": usage_mode}
        self._call("POST", "/attach", {**data, "branch_id": branch_id})

    def set_plan(self, **limits: Any) -> None:
        """``max_chars``, ``max_patch_entries`` (``None``: no limit), ``total_max_bytes``."""
        self._call("POST", "/plan", limits)

    def serve_stale(self, match: str, text: str | None) -> None:
        self._call("POST", "/stale-retrieval", {"match": match, "text": text})

    def add_fault(self, rule: FaultRule) -> FaultRule:
        data = rule.to_dict()
        data.pop("hits", None)
        self._call("POST", "/faults", data)
        return rule

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def set_concurrency_limit(self, limit: int | None) -> None:
        self._call("POST", "/concurrency-limit", {"limit": limit})

    def linger(self, times: int) -> None:
        self._call("POST", "/linger", {"times": times})

    def set_index_behaviour(self, match: str, behaviour: str, times: int | None = None) -> None:
        self._call(
            "POST", "/index-behaviour", {"match": match, "behaviour": behaviour, "times": times}
        )

    def set_quota(self, total_max_bytes: int) -> None:
        self._call("POST", "/quota", {"total_max_bytes": total_max_bytes})

    def advance(self, seconds: float) -> float:
        return float(self._call("POST", "/clock/advance", {"seconds": seconds})["now"])

    # inspection
    @property
    def calls(self) -> list[Call]:
        return [Call.from_dict(c) for c in self._call("GET", "/calls")["calls"]]

    def clear_calls(self) -> None:
        self._call("DELETE", "/calls")

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/state")
        return result

    @property
    def docs(self) -> dict[str, dict[str, Any]]:
        return {d["id"]: d for d in self.state()["documents"]}

    def agent_kb(self, agent_id: str) -> list[dict[str, Any]]:
        for agent in self.state()["agents"]:
            if agent["agent_id"] == agent_id:
                return list(agent["knowledge_base"])
        raise KeyError(agent_id)

    def agent_version(self, agent_id: str) -> int:
        for agent in self.state()["agents"]:
            if agent["agent_id"] == agent_id:
                return int(agent["version"])
        raise KeyError(agent_id)

    def index_status(self, doc_id: str, model: str = DEFAULT_MODEL) -> str | None:
        for idx in self.state()["indexes"]:
            if idx["document_id"] == doc_id and idx["model"] == model:
                return str(idx["status"])
        return None
