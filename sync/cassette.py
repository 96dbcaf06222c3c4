"""``KB_SYNC_CASSETTE=PATH``: every HTTP exchange a ``kb-sync`` command makes, appended to PATH
as one JSON line, so a real run becomes a measurement ``kb-sync emulator replay PATH`` can
hold the emulator against.

A line is ``{"method", "path", "query", "request", "status", "response", "elapsed", "at",
"error"}``: ``query`` is a dict of lists (``types`` repeats), ``request`` / ``response`` the
bodies (a non-JSON answer as its text, cut at 2000 characters), ``status`` null when no answer
came (``error`` says why), ``elapsed`` the seconds the exchange took, ``at`` when it started
(the run's clock, seconds since the epoch). Never a header; the API key is redacted from the
whole line (:func:`sync.log.redact`), as it is from the exchange the client hands over.

A line with a ``mark`` key instead is a marker written by a harness: ``{"mark": "segment",
"name"}`` starts a new world (the replay starts a fresh emulator there), ``{"mark":
"label", "text"}`` says what the cassette is. The file is only ever appended to (one
``write`` per line, under a lock), so threads and successive commands share it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .log import redact

Exchange = dict[str, Any]
ENV = "KB_SYNC_CASSETTE"


def query_lists(params: Any) -> dict[str, list[str]]:
    """Query parameters as the server sees them: every value a list of strings (as
    ``requests`` sends them: a list repeats the key, ``None`` is left out)."""
    if not isinstance(params, Mapping):
        return {}
    out: dict[str, list[str]] = {}
    for key, value in params.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        kept = [str(v) for v in values if v is not None]
        if kept:
            out[str(key)] = kept
    return out


def line_of(exchange: Mapping[str, Any]) -> Exchange:
    """The cassette's line for one exchange of :class:`sync.client.Client` (``on_exchange``)."""
    elapsed = exchange.get("elapsed")
    return {
        "method": exchange.get("method"),
        "path": exchange.get("path"),
        "query": query_lists(exchange.get("params")),
        "request": exchange.get("request"),
        "status": exchange.get("status"),
        "response": exchange.get("response"),
        "elapsed": round(float(elapsed), 6) if isinstance(elapsed, (int, float)) else None,
        "at": exchange.get("at"),
        "error": exchange.get("error"),
    }


class Cassette:
    """Appends lines to ``path``; checked writable when made (a bad path is one
    :class:`~sync.errors.ConfigError` naming ``KB_SYNC_CASSETTE``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            if self.path.parent != Path(""):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"{ENV}={str(path)!r} cannot be written ({exc.strerror or exc}); point it at a "
                "file in a writable folder, or unset it"
            ) from None

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r})"

    def write(self, line: Mapping[str, Any]) -> None:
        text = redact(json.dumps(line, ensure_ascii=False, default=str, separators=(",", ":")))
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(text + "\n")

    def __call__(self, exchange: Exchange) -> None:
        """An ``on_exchange`` callback."""
        self.write(line_of(exchange))

    def mark(self, kind: str, **fields: Any) -> None:
        """A marker line (``segment``: a new world starts here; ``label``: what this is)."""
        self.write({"mark": kind, **fields})


def tee(
    first: Callable[[Exchange], None] | None, path: str | Path | None
) -> Callable[[Exchange], None] | None:
    """``first`` (an ``on_exchange`` callback, or None) plus the cassette at ``path`` (if any)."""
    if not path:
        return first
    cassette = Cassette(path)
    if first is None:
        return cassette

    def both(exchange: Exchange) -> None:
        first(exchange)
        cassette(exchange)

    return both
