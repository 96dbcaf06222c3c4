"""``kb-sync emulator replay PATH [--json]``: hold the emulator against a cassette.

The cassette's requests are replayed in order against a fresh in-process :class:`Backend`
(one per segment), seeded from what the cassette saw (:mod:`sync.emulator.replay_seed`),
recorded ids mapped to the emulator's as documents are created, the clock set to each
request's recorded start and the index time fitted to the cassette
(:mod:`sync.emulator.replay_index`). Each exchange is compared
(:mod:`sync.emulator.replay_compare`): status; error code/status; the response's keys (and the
spec's required keys, :mod:`sync.emulator.replay_spec`, when the vendored subset is there);
the index status sequence of each document; timing.

What the emulator cannot know is replayed as recorded and not measured: a 429 or 5xx is
injected as a fault for that one request (the server's load is not its behaviour), a
request whose answer was lost (``status`` null) is not sent again (what it did shows in the
answers after it), a recorded 401 is sent with a wrong key (the cassette holds no key).

Exit 0: nothing differs; 6: something does; 5: the cassette cannot be read.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from sync.clock import FakeClock
from sync.emulator.backend import Backend
from sync.emulator.faults import FaultRule
from sync.emulator.replay_cassette import Cassette, CassetteError, Exchange, load_cassette
from sync.emulator.replay_compare import TRANSIENT, Fidelity, compare, error_of, operation
from sync.emulator.replay_index import Sequences, fit_index_seconds, observations
from sync.emulator.replay_report import render_text
from sync.emulator.replay_seed import Seeder, Sightings, batch_items
from sync.emulator.replay_spec import Spec
from sync.emulator.wire import maybe_json

REPLAY_KEY = "sk_replay_0123456789abcdef"
EXIT_OK, EXIT_BAD_INPUT, EXIT_DIFFERENT = 0, 5, 6


def _timed(exchanges: list[Exchange], start: float) -> Iterator[tuple[float, Exchange]]:
    """Each exchange with the time the replay's clock shows for it: its recorded start, never
    earlier than one before it (threads finish out of order; the clock only moves on)."""
    t = start
    for x in exchanges:
        t = max(t, x.at if x.at is not None else t)
        yield t, x


def _parsed(value: Any) -> Any:
    """A text answer holding JSON (an error of ``/content``, read as text) as that JSON."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class _Segment:
    """One segment's replay against its own fresh emulator."""

    def __init__(self, fid: Fidelity, spec: Spec | None, exchanges: list[Exchange]) -> None:
        start = next((x.at for x in exchanges if x.at is not None), 1_767_225_600.0)
        self.fid, self.spec, self.start = fid, spec, start
        self.clock = FakeClock(start)
        self.backend = Backend(
            api_key=REPLAY_KEY, clock=self.clock, index_seconds=fid.index_seconds, seed=0
        )
        self.seeder = Seeder(self.backend, Sightings(exchanges))
        self.sequences = Sequences()
        self.exchanges = exchanges

    def run(self) -> None:
        for t, x in _timed(self.exchanges, self.start):
            if t > self.clock.now():
                self.clock.advance(t - self.clock.now())
            self.fid.ops.setdefault(operation(x.method, x.path), []).append(x)
            if x.status is None:
                self.fid.dropped += 1
                continue
            status, answer, elapsed = self._send(x)
            self.fid.differences += compare(x, status, answer, elapsed, self._missing(x))
            self.sequences.add(x, answer)
            self.seeder.learn(x, answer)
        self.fid.differences += self.sequences.differences()

    def _send(self, x: Exchange) -> tuple[int, Any, float]:
        self.seeder.prepare(x)
        path = self.seeder.path(x.path)
        if x.status in TRANSIENT:
            body = x.response if isinstance(x.response, (dict, str)) else None
            rule = FaultRule(x.method, f"^{re.escape(path)}$", 1, x.status, body)
            self.backend.add_fault(rule)
            self.fid.transient += 1
        headers = {"xi-api-key": REPLAY_KEY}
        if x.status == 401:  # the cassette holds no key: send what the recorded answer says
            wrong = error_of(x.status, _parsed(x.response)) != "needs_authorization"
            headers = {"xi-api-key": "sk_replay_wrong_key"} if wrong else {}
        data = b"" if x.request is None else json.dumps(self.seeder.sub(x.request)).encode()
        query = {k: [str(self.seeder.sub(v)) for v in vs] for k, vs in x.query.items()}
        t0 = time.perf_counter()
        resp = self.backend.handle(x.method, path, query, headers, data)
        elapsed = time.perf_counter() - t0
        answer = maybe_json(resp.body) if "json" in resp.content_type else resp.body.decode()
        x.response = _parsed(x.response)
        if batch_items(x) and isinstance(answer, dict):  # keyed by the emulator's ids
            back = {new: old for old, new in self.seeder.ids.items()}
            answer = {back.get(k, k): v for k, v in answer.items()}
        return resp.status, answer, elapsed

    def _missing(self, x: Exchange) -> Any:
        spec = self.spec
        if spec is None:
            return None

        def missing(status: int | None, body: Any) -> list[str]:
            return spec.missing_required(x.method, x.path, status, body)

        return missing


def replay(cassette: Cassette, spec: Spec | None = None) -> Fidelity:
    """Replay every segment of ``cassette``; the differences found."""
    bounds = []
    for seg in cassette.segments:
        first = next((x.at for x in seg.exchanges if x.at is not None), 0.0)
        bounds += observations(_timed(seg.exchanges, first))
    fid = Fidelity(
        cassette.path,
        len(cassette.exchanges),
        [],
        fit_index_seconds(bounds),
        labels=cassette.labels,
        segments=len(cassette.segments),
        spec=spec.source if spec is not None else None,
    )
    for seg in cassette.segments:
        _Segment(fid, spec, seg.exchanges).run()
    fid.differences.sort(key=lambda d: (d.seq, d.aspect))
    if spec is not None:
        fid.spec_notes = _spec_notes(spec, cassette.exchanges)
    return fid


def _spec_notes(spec: Spec, exchanges: list[Exchange]) -> list[str]:
    """Required keys the recorded answers lack (the real API off its own spec)."""
    notes: dict[str, None] = {}
    for x in exchanges:
        for key in spec.missing_required(x.method, x.path, x.status, x.response):
            notes[f"{operation(x.method, x.path)} {x.status}: recorded answers lack {key}"] = None
    return list(notes)


def replay_file(path: str | Path, spec: Spec | None = None) -> Fidelity:
    """Read and replay the cassette at ``path`` (:class:`CassetteError` when unreadable);
    ``spec`` defaults to the vendored subset when it is there."""
    return replay(load_cassette(path), spec if spec is not None else Spec.find())


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # a usage error is bad input: exit 5
        self.exit(EXIT_BAD_INPUT, f"kb-sync: error: {message}; see kb-sync emulator replay -h\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="kb-sync emulator replay",
        description="Replay a cassette (KB_SYNC_CASSETTE) against a fresh emulator and report "
        "where the emulator differs from what was recorded. Exit 0: no difference; 6: "
        "differences; 5: the cassette cannot be read.",
    )
    p.add_argument("path", metavar="PATH", help="the cassette (JSON lines)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        fid = replay_file(args.path)
    except CassetteError as exc:
        sys.stderr.write(
            f"kb-sync: error: {exc}; record it again with KB_SYNC_CASSETTE=PATH, or mend "
            "that line\n"
        )
        return EXIT_BAD_INPUT
    if args.json:
        sys.stdout.write(json.dumps(fid.to_json(), ensure_ascii=False, indent=1) + "\n")
    else:
        sys.stdout.write(render_text(fid))
    return EXIT_DIFFERENT if fid.differences else EXIT_OK
