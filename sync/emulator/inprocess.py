"""The in-process front: route ``requests`` calls for ``base_url`` into a :class:`Backend`.

Uses ``responses`` (imported lazily, it is a test dependency). Any other URL is not passed
through: ``responses`` raises ``ConnectionError`` for it, as it does by default.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sync.emulator.backend import Backend
from sync.emulator.transport import deliver
from sync.emulator.urls import is_control

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if hasattr(body, "read"):
        data = body.read()
        return data if isinstance(data, bytes) else str(data).encode("utf-8")
    return b"".join(chunk if isinstance(chunk, bytes) else str(chunk).encode() for chunk in body)


@contextmanager
def emulate(backend: Backend, base_url: str = "https://api.elevenlabs.io") -> Iterator[Any]:
    """Context manager; yields the active ``responses.RequestsMock``."""
    import requests
    import responses

    pattern = re.compile(re.escape(base_url.rstrip("/")) + r"(?:[/?].*)?$")

    def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(request.url)
        query = parse_qs(split.query, keep_blank_values=True)
        path = split.path or "/"

        def drop() -> None:
            raise requests.exceptions.ConnectionError(
                "emulator: connection dropped after the request was committed",
                request=request,
            )

        # in flight while in this callback, until the answer is ready (sync.emulator.admission)
        with backend.admission.slot(counted=not is_control(path)) as admitted:
            resp = backend.handle(
                request.method or "GET",
                path,
                query,
                dict(request.headers),
                _body_bytes(request.body),
                over_limit=not admitted,
            )
            deliver(resp, backend.clock.sleep, drop)
        headers = dict(resp.headers)
        headers["Content-Type"] = resp.content_type
        return resp.status, headers, resp.body

    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    for method in METHODS:
        mock.add_callback(method, pattern, callback=callback, content_type=None)
    with mock:
        yield mock
