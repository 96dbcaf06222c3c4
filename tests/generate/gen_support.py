"""Helpers of the `kb-sync generate` tests: the sample, the local source's state, snapshots."""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sync import cli, generate

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "monitoring-sample.json"


def sample_bytes() -> bytes:
    return SAMPLE.read_bytes()


def sample_payload() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sample_bytes())
    return data


@dataclass
class Source:
    """What the local monitoring API answers: status, body, or hang until released."""

    url: str
    status: int = 200
    body: bytes = b""
    hang: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    hits: int = 0
    fail_first: int = 0  # the first N requests answer 500

    def serve(self, body: bytes | Any, status: int = 200) -> None:
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.status = status
        self.hang = False


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kb-sync")
    generate.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["generate", *argv])


@dataclass
class PushRecorder:
    calls: list[list[str]] = field(default_factory=list)
    code: int = 0

    def __call__(self, argv: list[str]) -> int:
        self.calls.append(list(argv))
        return self.code


def real_push(argv: list[str]) -> int:
    """The push ``kb-sync generate --upload`` gets from the CLI: ``kb-sync push`` here."""
    return cli.run(argv, env=dict(os.environ))


@dataclass
class Generate:
    """``kb-sync generate ARGV`` in-process: the env is ``os.environ`` at call time."""

    push: Callable[[list[str]], int] = real_push

    def __call__(self, *argv: str) -> int:
        return generate.run(parse_args(list(argv)), env=dict(os.environ), push=self.push)


Snapshot = dict[str, tuple[bytes, int]]


def snapshot(folder: Path) -> Snapshot:
    """Every file in FOLDER (hidden ones too) with its bytes and mtime."""
    if not folder.exists():
        return {}
    return {
        p.name: (p.read_bytes(), os.stat(p).st_mtime_ns)
        for p in sorted(folder.iterdir())
        if p.is_file()
    }
