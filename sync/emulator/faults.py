"""Fault rules: make the emulator answer badly, slowly, or not at all.

A rule matches a request by method (``"*"`` for any) and a regular expression searched in the
path (``re.search``, so ``""`` matches every path). Every match consumes one of its ``times``
(``None`` = forever). What a matching rule does:

- ``latency``: the front waits that long before answering (a real sleep on the HTTP front,
  ``clock.sleep`` in-process, so a :class:`~sync.clock.FakeClock` only advances);
- ``status`` (with optional ``body``/``headers``): that answer is sent INSTEAD of handling the
  request, which therefore has no effect;
- ``drop_after_commit``: the request is handled for real (its effect is committed) and then the
  connection is dropped without an answer (in-process: ``requests.exceptions.ConnectionError``).

A request over the server's in-flight limit (:mod:`sync.emulator.admission`) is answered
:func:`refusal` instead, before any rule is looked at.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sync.emulator.exceptions import fill_request_id, reason
from sync.emulator.wire import TEXT, Request, Response

RATE_LIMIT_MESSAGE = (
    "Too many concurrent requests are being made. Please reduce the number of concurrent "
    "requests or upgrade your plan."
)


@dataclass
class FaultRule:
    method: str = "*"
    path: str = ""
    times: int | None = 1
    status: int | None = None
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] | None = None
    latency: float = 0.0
    drop_after_commit: bool = False
    hits: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        re.compile(self.path)  # fail early on a bad pattern
        if self.drop_after_commit and self.status is not None:
            raise ValueError("a rule either answers with a status or drops after commit, not both")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None

    def consume(self) -> None:
        self.hits += 1
        if self.times is not None:
            self.times -= 1

    def response(self, request_id: str) -> Response:
        """The answer a ``status`` rule sends instead of handling the request."""
        status = self.status or 500
        if isinstance(self.body, str):
            resp = Response(status, self.body.encode(), content_type=TEXT)
        else:
            body = copy.deepcopy(self.body) if self.body is not None else None
            if body is None:
                body = {"detail": reason(status)}
            fill_request_id(body, request_id)
            resp = Response.of_json(status, body)
        resp.headers.update(self.headers or {})
        return resp

    @property
    def active(self) -> bool:
        return self.times is None or self.times > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        known = {
            "method",
            "path",
            "times",
            "status",
            "body",
            "headers",
            "latency",
            "drop_after_commit",
        }
        unknown = set(data) - known - {"hits"}
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in known})


def rate_limited(
    retry_after: float | None = None,
    *,
    method: str = "*",
    path: str = "",
    times: int | None = 1,
    code: str = "concurrent_limit_exceeded",
) -> FaultRule:
    """A 429 like ElevenLabs sends it; ``Retry-After`` only when ``retry_after`` is given.

    ``request_id`` in the body is filled with the id of the request it answers.
    """
    headers: dict[str, str] | None = None
    if retry_after is not None:
        value = int(retry_after) if float(retry_after).is_integer() else retry_after
        headers = {"Retry-After": str(value)}
    body = {
        "detail": {
            "status": "too_many_concurrent_requests",
            "code": code,
            "message": RATE_LIMIT_MESSAGE,
            "type": "rate_limit_error",
            "request_id": None,
        }
    }
    return FaultRule(method=method, path=path, times=times, status=429, body=body, headers=headers)


# [field] the body of a public report (SubtitleEdit/subtitleedit#9246), which elides the rest
SYSTEM_BUSY_MESSAGE = "We are sorry, the system is experiencing heavy traffic, please try again."


def system_busy(*, method: str = "*", path: str = "", times: int | None = 1) -> FaultRule:
    """A 429 ``{"detail": {"status": "system_busy", "message"}}``, no ``Retry-After`` [field]."""
    body = {"detail": {"status": "system_busy", "message": SYSTEM_BUSY_MESSAGE}}
    return FaultRule(method=method, path=path, times=times, status=429, body=body)


def server_error(
    status: int = 500, *, method: str = "*", path: str = "", times: int | None = 1
) -> FaultRule:
    """500: Starlette's plain-text ``Internal Server Error``; 503: a JSON ``detail`` object."""
    if status == 503:
        body: dict[str, Any] | str = {
            "detail": {
                "status": "service_unavailable",
                "message": "The service is temporarily unavailable. Please try again later.",
            }
        }
    else:
        body = "Internal Server Error"
    return FaultRule(method=method, path=path, times=times, status=status, body=body)


BATCH_INDEX_PATH = r"^/v1/convai/knowledge-base/rag-index$"


def no_batch_index(status: int = 405, *, times: int | None = None) -> FaultRule:
    """A server without ``POST /v1/convai/knowledge-base/rag-index`` (an older deployment, or
    a proxy that does not route it): 405 ``Method Not Allowed`` as FastAPI answers a known path
    (its GET exists) with an unserved method, or 404 ``Not Found``; forever by default."""
    if status not in (404, 405):
        raise ValueError("a missing endpoint answers 404 or 405")
    return FaultRule(
        method="POST",
        path=BATCH_INDEX_PATH,
        times=times,
        status=status,
        body={"detail": reason(status)},
    )


def storm(k: int, *, method: str = "*", path: str = "") -> FaultRule:
    """K consecutive 429 ``concurrent_limit_exceeded`` answers (no ``Retry-After``) to every
    matching request, whoever sends it: a storm."""
    return rate_limited(None, method=method, path=path, times=k)


def answer(
    faults: Sequence[FaultRule], req: Request, dispatch: Callable[[Request], Response]
) -> tuple[Response, bool]:
    """The first active matching rule applied to ``req`` (``dispatch`` handles it for real
    unless the rule answers a status); the answer, and whether a status rule answered."""
    rule = next((r for r in faults if r.matches(req.method, req.path)), None)
    if rule is not None:
        rule.consume()
    if rule is not None and rule.status is not None:
        resp = rule.response(req.request_id)
    else:
        resp = dispatch(req)
        if rule is not None and rule.drop_after_commit:
            resp.drop_connection = True
    if rule is not None:
        resp.latency = rule.latency
    return resp, rule is not None and rule.status is not None


def refusal(faults: Sequence[FaultRule], req: Request) -> Response:
    """The 429 ``too_many_concurrent_requests`` for a request over the in-flight limit, not
    handled. It still costs the latency of the first matching latency-only rule (a refusal
    makes the round trip too); no rule is consumed."""
    resp = rate_limited(None).response(req.request_id)
    resp.latency = next(
        (
            r.latency
            for r in faults
            if r.status is None and not r.drop_after_commit and r.matches(req.method, req.path)
        ),
        0.0,
    )
    return resp
