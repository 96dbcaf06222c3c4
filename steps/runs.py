"""What one kb-sync command left: exit code, output, the log's events and its HTTP calls, in
one shape on every target (:mod:`steps.target`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")
READ_ONLY_POSTS = ("/knowledge-base/rag-query",)


_LINE = re.compile(r"^\d\d:\d\d:\d\d (\w+)\s+(\S+)(.*)$")


def parse_log(text: str) -> list[dict[str, Any]]:
    """Human (``HH:MM:SS level event k=v ...``) or JSON log lines -> event dicts."""
    out: list[dict[str, Any]] = []
    dec = json.JSONDecoder()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and "event" in obj:
                out.append(obj)
            continue
        m = _LINE.match(line)
        if not m:
            continue
        ev: dict[str, Any] = {"level": m.group(1), "event": m.group(2)}
        rest = m.group(3)
        i = 0
        while i < len(rest):
            km = re.compile(r"\s+([\w.]+)=").match(rest, i)
            if not km:
                break
            key, i = km.group(1), km.end()
            if i < len(rest) and rest[i] in '"[{':
                try:
                    val, i = dec.raw_decode(rest, i)
                except ValueError:
                    val, i = rest[i:], len(rest)
            else:
                vm = re.compile(r"\S*").match(rest, i)
                assert vm is not None
                val, i = vm.group(0), vm.end()
            ev[key] = val
        out.append(ev)
    return out


@dataclass
class RunResult:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    calls: list[dict[str, Any]]
    seconds: float
    record_dir: Path
    records: list[Path] = field(default_factory=list)

    @property
    def command(self) -> str:
        return "kb-sync " + " ".join(self.argv)

    @property
    def events(self) -> list[dict[str, Any]]:
        return parse_log(self.stderr)

    def event(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]

    @property
    def writes(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if is_write(c)]

    @property
    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.startswith("kb-sync: error:")]


def is_write(call: Mapping[str, Any]) -> bool:
    method = str(call.get("method", "")).upper()
    path = str(call.get("path", ""))
    return method in WRITE_METHODS and not path.endswith(READ_ONLY_POSTS)


def call_from_exchange(exchange: Mapping[str, Any]) -> dict[str, Any]:
    """A client exchange record (``sync.client``'s ``on_exchange``) in the call-record shape
    the emulator's log has (``Call.to_dict()``), so steps read one shape on every target."""
    response = exchange.get("response")
    text = response if isinstance(response, str) else None
    return {
        "method": exchange.get("method"),
        "path": exchange.get("path"),
        "query": exchange.get("params"),
        "status": exchange.get("status"),
        "request_json": exchange.get("request"),
        "response_json": None if text is not None else response,
        "response_text": text,
        "error": exchange.get("error"),
    }
