"""The transport faults both fronts apply after the backend answered: a response's latency
(the front's own sleep) and a dropped connection (the front's own way of dropping one)."""

from __future__ import annotations

from collections.abc import Callable

from sync.emulator.wire import Response


def deliver(resp: Response, sleep: Callable[[float], None], drop: Callable[[], None]) -> bool:
    """Wait ``resp.latency`` with ``sleep``; then, if the connection is to be dropped, call
    ``drop`` (which may raise) and return True: there is nothing left to send."""
    if resp.latency > 0:
        sleep(resp.latency)
    if resp.drop_connection:
        drop()
        return True
    return False
