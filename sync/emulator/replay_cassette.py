"""Reading a cassette (``KB_SYNC_CASSETTE``, written by :mod:`sync.cassette`): one
:class:`Exchange` per line, grouped into :class:`Segment` s at ``{"mark": "segment"}`` lines.
Anything unreadable is a :class:`CassetteError` naming the file and the line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class CassetteError(Exception):
    """The cassette cannot be replayed: ``str()`` is the one line to show."""

    def __init__(self, path: str | Path, line: int, reason: str) -> None:
        where = f"{path} line {line}" if line else str(path)
        super().__init__(f"cassette {where}: {reason}")
        self.path, self.line, self.reason = str(path), line, reason


@dataclass
class Exchange:
    seq: int  # 1-based, among the cassette's exchanges
    line: int
    method: str
    path: str
    query: dict[str, list[str]]
    request: Any
    status: int | None
    response: Any
    elapsed: float | None
    at: float | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400


@dataclass
class Segment:
    """Exchanges that saw one world (a harness writes a ``segment`` mark where a new one
    starts, e.g. a scenario on an emulator that was reset)."""

    name: str
    exchanges: list[Exchange] = field(default_factory=list)


@dataclass
class Cassette:
    path: str
    segments: list[Segment]
    labels: list[str]

    @property
    def exchanges(self) -> list[Exchange]:
        return [x for s in self.segments for x in s.exchanges]


def _query(raw: Any, where: tuple[str, int]) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in raw.values()
    ):
        raise CassetteError(*where, '"query" is not an object of lists of strings')
    return {str(k): list(v) for k, v in raw.items()}


def _number(obj: dict[str, Any], key: str, where: tuple[str, int]) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CassetteError(*where, f'"{key}" is not a number')
    return float(value)


def exchange_of(obj: dict[str, Any], seq: int, where: tuple[str, int]) -> Exchange:
    method, path, status = obj.get("method"), obj.get("path"), obj.get("status")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise CassetteError(*where, f'"method" is missing or not an HTTP method: {method!r}')
    if not isinstance(path, str) or not path.startswith("/"):
        raise CassetteError(*where, f'"path" is missing or not an absolute path: {path!r}')
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        raise CassetteError(*where, f'"status" is not an integer or null: {status!r}')
    error = obj.get("error")
    return Exchange(
        seq=seq,
        line=where[1],
        method=method.upper(),
        path=path,
        query=_query(obj.get("query"), where),
        request=obj.get("request"),
        status=status,
        response=obj.get("response"),
        elapsed=_number(obj, "elapsed", where),
        at=_number(obj, "at", where),
        error=error if isinstance(error, str) else None,
    )


def load_cassette(path: str | Path) -> Cassette:
    """Every exchange of the cassette at ``path``, in the order written."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CassetteError(path, 0, f"cannot be read ({reason})") from None
    segments = [Segment("")]
    labels: list[str] = []
    seq = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        where = (str(path), number)
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CassetteError(*where, f"not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise CassetteError(*where, "not a JSON object")
        if "mark" in obj:
            if obj["mark"] == "segment":
                segments.append(Segment(str(obj.get("name", ""))))
            elif obj["mark"] == "label":
                labels.append(str(obj.get("text", "")))
            continue
        seq += 1
        segments[-1].exchanges.append(exchange_of(obj, seq, where))
    if seq == 0:
        raise CassetteError(path, 0, "holds no exchange (record one with KB_SYNC_CASSETTE=PATH)")
    return Cassette(str(path), [s for s in segments if s.exchanges], labels)
