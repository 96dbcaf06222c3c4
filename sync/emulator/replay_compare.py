"""Comparing one recorded exchange with the emulator's answer to the same request: status,
error code/status, response shape (the keys present, with the spec's required keys) and
timing. Index status sequences span exchanges: :mod:`sync.emulator.replay_index`. A
replay's result is a :class:`Fidelity`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import sync.emulator.urls as urls
from sync.emulator.replay_cassette import Exchange

ASPECTS = ("status", "error", "keys", "index", "timing")
TIMING_SLACK = 1.0  # seconds: a call this much slower (or faster) than the emulator's matters
TRANSIENT = (429, 500, 502, 503, 504)  # the server's weather, not its behaviour: injected


@dataclass(frozen=True)
class Difference:
    seq: int
    method: str
    path: str
    aspect: str
    recorded: Any
    emulator: Any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Fidelity:
    path: str
    exchanges: int
    differences: list[Difference]
    index_seconds: float
    labels: list[str] = field(default_factory=list)
    segments: int = 1
    transient: int = 0  # 429/5xx injected as recorded
    dropped: int = 0  # answer lost: not sent again
    spec: str | None = None  # the spec file checked against (None: not checked)
    spec_notes: list[str] = field(default_factory=list)
    ops: dict[str, list[Exchange]] = field(default_factory=dict)

    @property
    def agree(self) -> int:
        return self.exchanges - len({d.seq for d in self.differences})

    def to_json(self) -> dict[str, Any]:
        return {
            "exchanges": self.exchanges,
            "agree": self.agree,
            "differences": [d.to_dict() for d in self.differences],
        }


def operation(method: str, path: str) -> str:
    """``METHOD /path/{param}``: the route the emulator serves it under (the path itself for
    one it does not serve)."""
    match = urls.resolve(method, path)
    return f"{method} {match.route.pattern if match.route is not None else path}"


def error_of(status: int | None, body: Any) -> str | None:
    """An error answer's identity: ``detail.status`` (and ``detail.code`` when it differs),
    ``validation_error`` for a 422 list, the text of a plain ``detail``; None for a success."""
    if status is None or status < 400:
        return None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        st, code = detail.get("status"), detail.get("code")
        parts = [str(p) for p in dict.fromkeys([st, code]) if p]
        return "/".join(parts) or "(no status)"
    if isinstance(detail, list):
        return "validation_error"
    if isinstance(detail, str):
        return detail
    return "(text)" if isinstance(body, str) else "(no detail)"


# --------------------------------------------------------------------------- shapes


def shape(value: Any) -> Any:
    """The structure of an answer: objects -> {key: shape}, lists -> ["list", merged shape of
    the items (None when empty)], scalars -> their kind, null -> None."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        merged: Any = None
        for item in value:
            merged = _merge(merged, shape(item))
        return ["list", merged]
    if value is None:
        return None
    return "text" if isinstance(value, str) else "scalar"


def _merge(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _merge(a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b])}
    if isinstance(a, list) and isinstance(b, list):
        return ["list", _merge(a[1], b[1])]
    return a


def key_differences(rec: Any, emu: Any, prefix: str = "") -> tuple[list[str], list[str]]:
    """Key paths only the recorded answer has, and only the emulator's has. A list empty on
    either side, or a null, says nothing about the keys inside it."""
    if rec is None or emu is None:
        return [], []
    if isinstance(rec, dict) and isinstance(emu, dict):
        only_rec = [prefix + k for k in rec if k not in emu]
        only_emu = [prefix + k for k in emu if k not in rec]
        for k in rec:
            if k in emu:
                a, b = key_differences(rec[k], emu[k], f"{prefix}{k}.")
                only_rec, only_emu = only_rec + a, only_emu + b
        return only_rec, only_emu
    if isinstance(rec, list) and isinstance(emu, list):
        return key_differences(rec[1], emu[1], prefix.rstrip(".") + "[].")
    if isinstance(rec, dict) != isinstance(emu, dict) or isinstance(rec, list) != isinstance(
        emu, list
    ):
        where = prefix.rstrip(".") or "(answer)"
        return [f"{where} ({_kind(rec)})"], [f"{where} ({_kind(emu)})"]
    return [], []


def _kind(s: Any) -> str:
    return "object" if isinstance(s, dict) else "list" if isinstance(s, list) else str(s)


# --------------------------------------------------------------------------- one exchange


def compare(
    x: Any,
    status: int | None,
    answer: Any,
    elapsed: float,
    missing_required: Any = None,
) -> list[Difference]:
    """The differences between recorded exchange ``x`` and the emulator's ``status`` /
    ``answer`` / ``elapsed``. ``missing_required(status, body)``: the spec's required keys a
    body lacks (None: no spec check). Shape and error are compared only when both are
    successes or both errors (a status difference already says the rest)."""
    out: list[Difference] = []

    def diff(aspect: str, rec: Any, emu: Any) -> None:
        out.append(Difference(x.seq, x.method, x.path, aspect, rec, emu))

    if status != x.status:
        diff("status", x.status, status)
    both_ok = (x.status or 0) < 400 and (status or 0) < 400
    both_err = (x.status or 0) >= 400 and (status or 0) >= 400
    if both_err and error_of(x.status, x.response) != error_of(status, answer):
        diff("error", error_of(x.status, x.response), error_of(status, answer))
    if both_ok or both_err:
        only_rec, only_emu = key_differences(shape(x.response), shape(answer))
        if only_rec or only_emu:
            if missing_required is not None:
                rec_missing = set(missing_required(x.status, x.response))
                emu_missing = set(missing_required(status, answer))
                only_rec = [k + " (spec: required)" if k in emu_missing else k for k in only_rec]
                only_emu = [k + " (spec: required)" if k in rec_missing else k for k in only_emu]
            diff("keys", sorted(only_rec), sorted(only_emu))
    if x.elapsed is not None and abs(x.elapsed - elapsed) > TIMING_SLACK:
        diff("timing", round(x.elapsed, 3), round(elapsed, 3))
    return out
