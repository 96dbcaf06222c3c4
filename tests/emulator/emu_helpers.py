"""Shared helpers for the emulator tests."""

from __future__ import annotations

from typing import Any

import requests

BASE = "https://api.elevenlabs.io"
KEY = "test-key"
MODEL = "multilingual_e5_large_instruct"
LONG = "Delivery takes three to five working days across the country.\n\n" * 12  # > 500 bytes
#: a rag-query chunk's fields [spec]: no ``content``, no ``score``
CHUNK_KEYS = {
    "document_id",
    "document_name",
    "chunk_id",
    "text",
    "vector_distance",
    "content_format",
    "document_type",
}
#: a dependents ``branches[]`` entry [spec]: no ``id``
BRANCH_KEYS = {"agent_id", "agent_name", "branch_id", "branch_name", "is_main"}


class Api:
    """requests against the emulator, the way the sync client will make them."""

    def __init__(self, base: str, key: str | None = KEY) -> None:
        self.base = base.rstrip("/") + "/v1/convai"
        self.session = requests.Session()
        if key is not None:
            self.session.headers["xi-api-key"] = key

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=10, **kw)

    def create(self, text: str = LONG, name: str | None = "Doc") -> str:
        body = {"text": text} if name is None else {"text": text, "name": name}
        r = self("POST", "/knowledge-base/text", json=body)
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    def index(self, doc_id: str, model: str = MODEL) -> dict[str, Any]:
        r = self("POST", f"/knowledge-base/{doc_id}/rag-index", json={"model": model})
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    def set_kb(
        self, agent_id: str, kb: list[dict[str, Any]], branch_id: str | None = None
    ) -> requests.Response:
        body = {"conversation_config": {"agent": {"prompt": {"knowledge_base": kb}}}}
        params = {} if branch_id is None else {"branch_id": branch_id}
        return self("PATCH", f"/agents/{agent_id}", json=body, params=params)

    def json(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        """The JSON answer of a request that must answer ``status``."""
        r = self(method, path, **kw)
        assert r.status_code == status, r.text
        return r.json()
