"""Reading the API's answers: a success body, an error (with its code and request id), and
the cursor of the next page (bounded: a repeated cursor is an error, not an endless loop)."""

from __future__ import annotations

from typing import Any

import requests

from .errors import (
    ApiError,
    AuthError,
    NotFound,
    RateLimited,
    ServerError,
    ValidationFailed,
)
from .log import redact


def payload_of(resp: requests.Response, expect_json: bool) -> Any:
    if expect_json and resp.content:
        try:
            return resp.json()
        except ValueError:
            pass
    # `/content` is `text/html` without a charset: requests would guess ISO-8859-1 and turn
    # Cyrillic into mojibake (API-NOTES), so the bytes are decoded as UTF-8 here
    return resp.content.decode("utf-8", "replace")


def checked(
    method: str, path: str, resp: requests.Response, payload: Any, expect_json: bool
) -> Any:
    """A success answer must be what the API sends: a JSON object (or nothing, for DELETE).
    HTML from a proxy, or truncated JSON, is the server misbehaving: one clear error."""
    if not expect_json or isinstance(payload, dict):
        return payload
    if not resp.content and method == "DELETE":
        return {}
    raise ApiError(
        redact(
            f"{method} {path}: answered {resp.status_code} with a body that is not a JSON "
            "object; check ELEVENLABS_BASE_URL points at the ElevenLabs API (not a proxy or "
            "a web page)"
        ),
        status=resp.status_code,
        code="bad_response",
    )


MAX_PAGES = 10_000  # 1,000,000 documents at 100 a page: far beyond any workspace


class Pages:
    """Cursor bookkeeping for one listing: a repeated cursor or an endless listing is the
    server misbehaving, and stops the loop with an error instead of spinning forever."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.seen: set[str] = set()

    def next(self, page: Any) -> str | None:
        """The cursor of the next page, or None when this was the last one."""
        if not isinstance(page, dict) or not page.get("has_more"):
            return None
        cursor = page.get("next_cursor")
        if not cursor:  # stopping here would read a cut listing as the whole of it
            raise ApiError(
                f"the server's answer to {self.what}: has_more is true but no next_cursor; "
                "stopped instead of reading the listing as complete; check ELEVENLABS_BASE_URL "
                "points at the ElevenLabs API",
                code="bad_response",
            )
        cursor = str(cursor)
        if cursor in self.seen:
            raise ApiError(
                f"{self.what}: the server gave the same next_cursor twice (has_more stays "
                "true); stopped paging instead of looping"
            )
        if len(self.seen) >= MAX_PAGES:
            raise ApiError(f"{self.what}: more than {MAX_PAGES} pages; stopped paging")
        self.seen.add(cursor)
        return cursor


def transport_kind(exc: BaseException) -> str:
    """What kind of connection failure: refused, unknown host, TLS, timeout (or failed)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = repr(exc)
    if any(
        s in text
        for s in (
            "NameResolutionError",
            "Name or service not known",
            "nodename nor servname",
            "Temporary failure in name resolution",
            "No address associated",
        )
    ):
        return "unknown host"
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return "connection refused"
    return "connection failed"


FATAL_FIRST = ("unknown host", "connection refused", "TLS handshake failed")


def error_from(resp: requests.Response) -> ApiError:
    code: str | None = None
    message = resp.reason or "error"
    request_id = (  # x-trace-id: [field] a real error carried only that (docs/emulator.md row 21)
        resp.headers.get("request-id")
        or resp.headers.get("x-request-id")
        or resp.headers.get("x-trace-id")
    )
    body: Any = None
    try:
        body = resp.json()
    except ValueError:
        body = resp.text[:500]
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        code = detail.get("code") or detail.get("status")
        message = str(detail.get("message") or code or message)
        request_id = detail.get("request_id") or request_id
    elif isinstance(detail, list) and detail:
        first = detail[0] if isinstance(detail[0], dict) else {}
        code = "validation_error"
        loc = ".".join(str(p) for p in first.get("loc", []))
        message = f"{first.get('msg', 'invalid request')} at {loc}"
    elif isinstance(detail, str):
        message = detail
    status = resp.status_code
    text = redact(f"HTTP {status}{f' {code}' if code else ''}: {message}")
    cls: type[ApiError]
    if status in (401, 403):
        cls = AuthError
        text += (
            "; check ELEVENLABS_API_KEY (the workspace's key: ElevenLabs > Developers > API "
            "keys; it needs access to Conversational AI)"
        )
    elif status == 404:
        cls = NotFound
    elif status == 422:
        cls = ValidationFailed
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = ServerError
    else:
        cls = ApiError
    return cls(text, status=status, code=code, request_id=request_id, body=body)
