"""What crosses the emulator's edge: the :class:`Request` a handler reads, the
:class:`Response` it returns, and the :class:`Call` the call log keeps of the exchange."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

JSON = "application/json"
HTML = "text/html"  # [spec] no charset: the real one is assumed to send none
TEXT = "text/plain; charset=utf-8"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON
    drop_connection: bool = False
    latency: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @classmethod
    def of_json(cls, status: int, data: Any) -> Response:
        return cls(status, json.dumps(data, ensure_ascii=False).encode("utf-8"))


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    request_json: Any
    response_json: Any
    dropped: bool
    at: float
    request_id: str = ""
    fault: bool = False
    content_type: str = JSON
    response_text: str | None = None  # the body when it is not JSON (HTML content, 500 text)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Call:
        return cls(**data)


@dataclass
class Request:
    """One routed request: ``params`` are the path's ``{names}``; ``data`` is the control
    plane's JSON body, parsed before routing (the API's handlers parse their own)."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    request_id: str
    data: dict[str, Any] = field(default_factory=dict)

    def one(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


def maybe_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
