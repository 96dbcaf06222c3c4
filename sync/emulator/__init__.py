"""A stateful fake of the ElevenLabs knowledge-base / RAG-index / agent API, for tests.

One :class:`Backend` model, two fronts: :func:`emulate` (in-process, through ``responses``)
and :func:`serve` (a real loopback HTTP server). See ``docs/emulator.md``.
The ``sync`` package never imports this one.
"""

from sync.emulator.backend import Backend
from sync.emulator.cli import run
from sync.emulator.faults import (
    FaultRule,
    no_batch_index,
    rate_limited,
    server_error,
    storm,
    system_busy,
)
from sync.emulator.inprocess import emulate
from sync.emulator.models import Doc
from sync.emulator.remote import RemoteEmulator
from sync.emulator.server import EmulatorServer, serve
from sync.emulator.wire import Call, Response

__all__ = [
    "Backend",
    "Call",
    "Doc",
    "EmulatorServer",
    "FaultRule",
    "RemoteEmulator",
    "Response",
    "emulate",
    "no_batch_index",
    "rate_limited",
    "run",
    "serve",
    "server_error",
    "storm",
    "system_busy",
]
