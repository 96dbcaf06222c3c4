"""The monitoring source: where it is, how it is shown, fetched and parsed.

Every failure of the source is :class:`~sync.errors.SourceUnhealthy` (exit 7) with a
``reason`` token; a source that cannot be a source (no setting, an unknown scheme) is a
:class:`~sync.errors.ConfigError` (exit 5).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from urllib.request import url2pathname

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .. import __version__
from ..errors import ConfigError, SourceUnhealthy
from ..log import event

SOURCE_ENV = "BIRBY_API_URL"
MAX_SOURCE_BYTES = 64 * 1024 * 1024
RETRY_STATUSES = (429, 500, 502, 503, 504)
BACKOFF_FACTOR = 0.2
BACKOFF_MAX = 5.0


def resolve_source(source: str | None, env: Mapping[str, str]) -> str:
    """``--source``, else ``BIRBY_API_URL`` from ``env``."""
    src = (source or env.get(SOURCE_ENV, "")).strip()
    if not src:
        raise ConfigError(
            f"no source: pass --source URL|FILE or set {SOURCE_ENV} "
            "(e.g. https://monitoring.example/json_ai.php)"
        )
    return src


def display_source(source: str) -> str:
    """The source for logs and status lines: no user:password, no query string (tokens)."""
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "..." if parts.query else "", ""))
    return source


def fetch(source: str, *, timeout: float, retries: int) -> bytes:
    """The source's bytes. Every failure is :class:`SourceUnhealthy` (or a ConfigError)."""
    shown = display_source(source)
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        body = _fetch_http(source, shown, timeout=timeout, retries=retries)
    elif parts.scheme == "file" or (parts.scheme == "" or len(parts.scheme) == 1):
        # A plain path (one-letter "schemes" are Windows drive letters) or a file:// URL.
        body = _read_file(
            Path(url2pathname(parts.path)) if parts.scheme == "file" else Path(source)
        )
    else:
        raise ConfigError(
            f"{SOURCE_ENV}/--source {shown!r} has an unsupported scheme {parts.scheme!r}; "
            "use an http(s) URL, a file:// URL or a path"
        )
    if len(body) > MAX_SOURCE_BYTES:
        raise SourceUnhealthy(
            f"{shown} sent {len(body)} bytes, more than the {MAX_SOURCE_BYTES} accepted",
            reason="invalid_json",
        )
    return body


def parse(body: bytes, shown: str) -> Any:
    """The payload; a body that is not UTF-8 JSON is ``invalid_json``."""
    try:
        return json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        what = "empty body" if not body.strip() else "not valid UTF-8 JSON"
        raise SourceUnhealthy(
            f"{shown} sent {what}{where} ({len(body)} bytes): truncated or not JSON",
            reason="invalid_json",
        ) from exc


def _fetch_http(source: str, shown: str, *, timeout: float, retries: int) -> bytes:
    attempts = retries + 1
    try:
        with _session(retries) as s:
            resp = s.get(source, timeout=timeout)
    except requests.RequestException as exc:
        if _is_timeout(exc):
            raise SourceUnhealthy(
                f"{shown} did not answer within {timeout:g}s "
                f"({attempts} attempt(s)); is the monitoring API up?",
                reason="timeout",
            ) from exc
        raise SourceUnhealthy(
            f"{shown} is unreachable after {attempts} attempt(s): "
            f"{type(exc).__name__}; check {SOURCE_ENV} and the network",
            reason="unreachable",
        ) from exc
    if resp.status_code >= 400:
        raise SourceUnhealthy(
            f"{shown} answered HTTP {resp.status_code} after {attempts} attempt(s)",
            reason=f"http_{resp.status_code}",
        )
    body = resp.content
    event("generate.fetched", source=shown, status=resp.status_code, bytes=len(body))
    return body


def _read_file(path: Path) -> bytes:
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise SourceUnhealthy(
            f"cannot read the source file {path}: {exc.strerror or exc}; "
            f"check --source / {SOURCE_ENV}",
            reason="unreachable",
        ) from exc
    event("generate.fetched", source=str(path), bytes=len(body))
    return body


def _session(retries: int) -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        allowed_methods=frozenset({"GET"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=BACKOFF_FACTOR,
        backoff_max=BACKOFF_MAX,
        raise_on_status=False,  # the last answer comes back; its status is reported above
        respect_retry_after_header=True,
    )
    s = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.headers.update(
        {"Accept": "application/json", "User-Agent": f"kb-sync/{__version__} (generate)"}
    )
    return s


def _is_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, requests.Timeout) or "timed out" in str(seen).lower():
            return True
        seen = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
    return False
