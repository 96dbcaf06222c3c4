"""Every committed cassette (``tests/contract/cassettes/*.jsonl``) replayed against the
emulator on every ``make test``: the emulator checked against recorded behaviour.

A cassette's differences must be exactly those listed in ``<name>.accepted.json`` next to it
(none when there is no such file): a new difference fails, and so does an accepted one that
went away (remove it from the list). ``emulator-loopback.jsonl`` was recorded against the
emulator itself (its label says so) and must replay with none.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sync.emulator.replay import replay_file
from sync.emulator.replay_report import render_text

CASSETTES = Path(__file__).resolve().parent / "cassettes"
ALL = sorted(CASSETTES.glob("*.jsonl"))


def test_the_loopback_cassette_is_committed_and_labelled() -> None:
    path = CASSETTES / "emulator-loopback.jsonl"
    assert path in ALL
    first = json.loads(path.read_text("utf-8").splitlines()[0])
    assert first["mark"] == "label" and "NOT AGAINST ELEVENLABS" in first["text"].upper()


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_cassette_replays_with_only_accepted_differences(path: Path) -> None:
    fid = replay_file(path)
    accepted_file = path.with_name(path.stem + ".accepted.json")
    accepted = json.loads(accepted_file.read_text("utf-8")) if accepted_file.exists() else []
    got = sorted((d.seq, d.aspect) for d in fid.differences)
    want = sorted((int(a["seq"]), str(a["aspect"])) for a in accepted)
    assert got == want, render_text(fid)
    assert fid.exchanges > 0 and fid.agree == fid.exchanges - len({s for s, _a in got})
