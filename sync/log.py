"""Logging through ``logging.getLogger("sync")``: key=value lines for people, JSON for cron.

A :class:`RedactFilter` on the handler replaces any registered secret in every record, so the
API key cannot reach a log line even through an exception message.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

log = logging.getLogger("sync")

_SECRETS: set[str] = set()


def register_secret(secret: str) -> None:
    """Redact ``secret`` in every form it can take in a message: raw, repr- and JSON-escaped,
    URL-encoded."""
    if not secret or len(secret) < 4:
        return
    forms = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
    }
    _SECRETS.update(f for f in forms if len(f) >= 4)


def redact(text: str) -> str:
    for s in sorted(_SECRETS, key=len, reverse=True):
        if s in text:
            text = text.replace(s, "***")
    return text


def _fmt_value(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    s = str(v)
    if s == "" or any(c in s for c in ' "=\t\n'):
        return json.dumps(s, ensure_ascii=False)
    return s


def event(name: str, level: int = logging.INFO, /, **fields: Any) -> None:
    """Log one step: ``name key=value ...``; JSON mode gets the fields as an object."""
    text = name + "".join(f" {k}={_fmt_value(v)}" for k, v in fields.items())
    log.log(level, text, extra={"event": name, "fields": fields})


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        record.msg = redact(msg)
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        fields = getattr(record, "fields", None)
        if fields:
            record.fields = json.loads(redact(json.dumps(fields, ensure_ascii=False, default=str)))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        ev = getattr(record, "event", None)
        if ev:
            out["event"] = ev
            out.update(getattr(record, "fields", {}) or {})
        else:
            out["message"] = record.getMessage()
        return redact(json.dumps(out, ensure_ascii=False, default=str))


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%H:%M:%S", time.localtime(record.created))
        return redact(f"{ts} {record.levelname.lower():7s} {record.getMessage()}")


def setup(fmt: str = "human", level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Configure the ``sync`` logger once per CLI run (idempotent)."""
    for h in list(log.handlers):
        if getattr(h, "_kb_sync", False):
            log.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._kb_sync = True  # type: ignore[attr-defined]
    handler.addFilter(RedactFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    log.addHandler(handler)
    log.setLevel(level)
