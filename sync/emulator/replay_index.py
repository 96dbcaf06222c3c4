"""RAG index statuses in a replay: the emulator's one timing parameter fitted to what the
cassette saw, and the status sequences per (document, model) compared.

The emulator's index lifecycle (:mod:`sync.emulator.indexes`) has one parameter, the index
time ``S``: ``created`` for the first 10% of it, ``processing`` until it, then
``succeeded``. Each status the cassette saw ``dt`` seconds after its attempt started (the
compute call that started it, or a content edit) bounds ``S``; :func:`fit_index_seconds`
picks the ``S`` that agrees with the most of them. What still disagrees is a real difference
(statuses the model does not have, or timings no single ``S`` explains).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sync.emulator.indexes as ix
from sync.emulator.replay_cassette import Exchange
from sync.emulator.replay_compare import Difference
from sync.emulator.replay_seed import index_statuses, params_of

Key = tuple[str, str]  # (recorded doc id, model)
DEFAULT_SECONDS = 3.0
FINISHED = (ix.SUCCEEDED, ix.FAILED)


def _bounds(dt: float, status: str) -> tuple[float, float] | None:
    """``(lo, hi)``: the index times ``S`` (lo < S <= hi) for which the emulator shows
    ``status`` ``dt`` seconds into an attempt; None when the status says nothing of ``S``."""
    if status == ix.CREATED:
        return 10 * dt, math.inf
    if status == ix.PROCESSING:
        return dt, 10 * dt
    if status in FINISHED:
        return 0.0, dt
    return None


def observations(timed: Iterable[tuple[float, Exchange]]) -> list[tuple[float, float]]:
    """The bounds on ``S`` every recorded index status gives, in one segment's exchanges
    (each with the time the replay's clock will show for it)."""
    started: dict[Key, float | None] = {}  # attempt start; None: finished or never seen start
    last: dict[Key, str] = {}
    out: list[tuple[float, float]] = []
    for t, x in timed:
        if not x.ok:
            continue
        doc_id = params_of(x).get("doc_id")
        if x.method == "PATCH" and isinstance(x.request, dict) and "content" in x.request:
            for key in [k for k in last if k[0] == doc_id]:  # new content: indexes start over
                started[key] = t
        for doc, model, status in index_statuses(x, x.response):
            key = (doc, model)
            fresh = key not in last or last[key] in ix.RESTARTABLE
            if x.method == "POST" and fresh:
                started[key] = t if status in ix.PENDING else None
            last[key] = status
            t0 = started.get(key)
            bound = None if t0 is None else _bounds(t - t0, status)
            if bound is not None:
                out.append(bound)
            if status not in ix.PENDING:
                started[key] = None
    return out


def fit_index_seconds(bounds: Sequence[tuple[float, float]]) -> float:
    """The index time agreeing with the most bounds (the smallest such region's middle)."""
    if not bounds:
        return DEFAULT_SECONDS
    edges = sorted({e for b in bounds for e in b if 0 < e < math.inf})
    if not edges:
        return DEFAULT_SECONDS
    middles = [(a + b) / 2 for a, b in zip(edges, edges[1:], strict=False)]
    candidates = [edges[0] / 2, *middles, edges[-1] * 2]
    best = max(candidates, key=lambda s: (sum(lo < s <= hi for lo, hi in bounds), -s))
    return round(best, 6)


@dataclass
class Sequences:
    """Per (document, model): the statuses the cassette saw and the emulator answered, poll
    by poll."""

    recorded: dict[Key, list[str | None]] = field(default_factory=dict)
    emulator: dict[Key, list[str | None]] = field(default_factory=dict)
    where: dict[Key, list[Exchange]] = field(default_factory=dict)

    def add(self, x: Exchange, answer: Any) -> None:
        if not x.ok:
            return
        rec = {(d, m): s for d, m, s in index_statuses(x, x.response)}
        emu = {(d, m): s for d, m, s in index_statuses(x, answer)}
        for key in dict.fromkeys([*rec, *emu]):
            self.recorded.setdefault(key, []).append(rec.get(key))
            self.emulator.setdefault(key, []).append(emu.get(key))
            self.where.setdefault(key, []).append(x)

    def differences(self) -> list[Difference]:
        out = []
        for key, rec in self.recorded.items():
            emu = self.emulator[key]
            if rec == emu:
                continue
            first = next(i for i, (a, b) in enumerate(zip(rec, emu, strict=True)) if a != b)
            x = self.where[key][first]
            out.append(Difference(x.seq, x.method, x.path, "index", rec, emu))
        return out
