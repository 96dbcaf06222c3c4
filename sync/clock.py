"""Time as an injectable dependency, so tests never sleep.

The sync waits for RAG indexes through a :class:`Clock`; the emulator moves index statuses on
one. In-process tests hand the same :class:`FakeClock` to both: the sync's ``sleep`` advances
the emulator's time instantly.

Tests that run ``kb-sync`` as a subprocess against the emulator on loopback cannot share a
FakeClock; they share a :class:`ScaledClock` instead: real time, run ``1/scale`` times faster
around an origin both processes know, so back-offs and index waits pass in a fraction of the
time and every deadline is still checked against a clock that moves. The subprocess takes it
from :data:`TIME_SCALE_VAR` (test-only; refused unless the API is on loopback).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

from .config import is_loopback
from .errors import ConfigError

TIME_SCALE_VAR = "KB_SYNC_TEST_TIME_SCALE"  # test-only: "<scale>@<origin, epoch seconds>"
MIN_SCALE = 0.01  # below it the program's own work would dwarf the waits it is scaled against
MAX_ORIGIN_AGE = 86_400.0  # a value left over from another day is a mistake, not a test


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass."""


class SystemClock:
    """The real clock, with an optional offset a test server can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class ScaledClock(SystemClock):
    """Test-only: real time running ``1/scale`` times faster from ``origin`` (epoch seconds).

    ``sleep(s)`` really sleeps ``s * scale``; ``now()`` moves ``1/scale`` seconds per real
    second, so two processes built with the same scale and origin agree on the time (the
    emulator's index timings and a subprocess's deadlines). ``advance`` moves it like
    SystemClock's offset."""

    def __init__(self, scale: float, origin: float) -> None:
        super().__init__()
        if not MIN_SCALE <= scale <= 1.0:
            raise ValueError(f"time scale {scale} outside [{MIN_SCALE}, 1]")
        self.scale, self.origin = scale, origin

    def now(self) -> float:
        return self.origin + (time.time() - self.origin) / self.scale + self.offset

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds * self.scale)

    def env_value(self) -> str:
        """What :data:`TIME_SCALE_VAR` is set to for a subprocess that shares this clock."""
        return f"{self.scale!r}@{self.origin!r}"


def scaled_from_env(env: Mapping[str, str], base_url: str) -> ScaledClock | None:
    """The test-only time scale in ``env`` (:data:`TIME_SCALE_VAR`), or None when unset.

    Refused (exit 5) unless it is well formed, the scale is in ``[MIN_SCALE, 1]`` (it only ever
    shortens the waits: a deadline still ends them), the origin is within a day of now, and the
    API is on loopback: the real ElevenLabs never sees back-offs shorter than it asked for."""
    raw = env.get(TIME_SCALE_VAR, "").strip()
    if not raw:
        return None
    fix = f"unset {TIME_SCALE_VAR} (it is for the test suite only)"
    if not is_loopback(urlsplit(base_url).hostname):
        raise ConfigError(
            f"{TIME_SCALE_VAR} is set but ELEVENLABS_BASE_URL ({base_url}) is not loopback: "
            f"the test-only time scale is never used against a real server; {fix}"
        )
    scale_text, _, origin_text = raw.partition("@")
    try:
        scale, origin = float(scale_text), float(origin_text)
    except ValueError:
        scale = origin = math.nan
    if not (math.isfinite(scale) and math.isfinite(origin)):
        raise ConfigError(f"{TIME_SCALE_VAR}={raw!r} is not <scale>@<origin seconds>; {fix}")
    if not MIN_SCALE <= scale <= 1.0:
        raise ConfigError(
            f"{TIME_SCALE_VAR}: scale {scale:g} is outside [{MIN_SCALE:g}, 1] (it may only "
            f"shorten waits); {fix}"
        )
    if abs(time.time() - origin) > MAX_ORIGIN_AGE:
        raise ConfigError(
            f"{TIME_SCALE_VAR}: origin {origin:.0f} is not within a day of now; {fix}"
        )
    return ScaledClock(scale, origin)


class FakeClock:
    """A clock that only moves when told to; ``sleep`` moves it at once."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._t = start
        self._lock = threading.Lock()
        self.slept = 0.0

    def now(self) -> float:
        with self._lock:
            return self._t

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        with self._lock:
            self.slept += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds
