"""Run ``kb-sync`` in-process, for tests: the one CLI test runner, shipped with the package.

The idea of httpx's ``MockTransport``: the package ships what its tests (and yours) need to
drive it without a subprocess::

    from sync.clock import FakeClock
    from sync.emulator import Backend
    from sync.testing import run_cli

    clock = FakeClock()
    backend = Backend(api_key="sk_test_0123456789", clock=clock)
    agent = backend.seed_agent()
    env = {"ELEVENLABS_API_KEY": "sk_test_0123456789", "ELEVENLABS_AGENT_ID": agent}
    res = run_cli(["plan", "--dir", "quarters", "--json"], env, backend=backend, clock=clock)
    assert res.code == 0 and res.json()["plan"]["summary"]

- stdout goes to :attr:`Result.stdout`; stderr (the ``sync`` log lines, which
  :func:`sync.log.setup` points at ``sys.stderr`` at the start of every run, and the
  ``kb-sync: error:`` line) to :attr:`Result.stderr`;
- argparse's ``SystemExit`` (usage errors, ``--help``) becomes :attr:`Result.code`;
- with ``backend=`` the run talks to that :class:`sync.emulator.Backend` in-process (its
  ``emulate(backend, base_url)``) and :attr:`Result.calls` holds the requests of this run;
  without it the run uses whatever transport is in place (an ``emulate`` the caller holds,
  a served emulator, or the real API);
- :class:`Killed` raised from inside the run (say, from a ``Backend`` hook) ends it as a
  SIGKILL would: nothing in the sync can catch it, and the code is :data:`KILLED`.

The sync itself never imports this module, and this module imports the emulator only when a
``backend`` is passed.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .clock import Clock

if TYPE_CHECKING:
    from .emulator import Backend, Call

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
KILLED = -9  # what ``subprocess`` reports for a process killed by SIGKILL


class Killed(BaseException):  # noqa: N818 - a death, not an error: no ``except Exception`` sees it
    """The process died mid-run (SIGKILL). Raise it from inside a run; :func:`run_cli` turns
    it into ``code == KILLED`` with the output written so far."""


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str
    calls: tuple[Call, ...] = ()  # the emulator's log of this run (only with ``backend=``)

    @property
    def killed(self) -> bool:
        return self.code == KILLED

    def json(self) -> Any:
        """stdout as JSON (a ``--json`` run)."""
        return json.loads(self.stdout)


@contextlib.contextmanager
def _emulated(backend: Backend | None, base_url: str) -> Iterator[None]:
    if backend is None:
        yield
        return
    from .emulator import emulate  # lazily: the sync never imports the emulator

    with emulate(backend, base_url):
        yield


def run_cli(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    backend: Backend | None = None,
    clock: Clock | None = None,
    base_url: str = DEFAULT_BASE_URL,
    cwd: str | Path | None = None,
    on_exchange: Callable[[dict[str, Any]], None] | None = None,
) -> Result:
    """``kb-sync ARGV`` in this process with ``env`` as its whole environment.

    ``clock``: shared with the backend, so index waits and back-offs take no time.
    ``cwd``: the working directory during the run (the process's own when None).
    ``on_exchange``: the client's record of every HTTP exchange (also without a backend).
    """
    from . import cli

    out, err = io.StringIO(), io.StringIO()
    mark = len(backend.calls) if backend is not None else 0
    chdir = contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext()
    with chdir, _emulated(backend, base_url), contextlib.redirect_stderr(err):
        try:
            code = cli.run(list(argv), env=env, clock=clock, stdout=out, on_exchange=on_exchange)
        except SystemExit as exc:  # argparse: usage errors, --help
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        except Killed:
            code = KILLED
    calls = tuple(backend.calls[mark:]) if backend is not None else ()
    return Result(int(code), out.getvalue(), err.getvalue(), calls)


def is_upload(call: Any) -> bool:
    """An emulator call (a ``Call`` or its dict) that uploaded a document of the knowledge
    base: a POST of a text doc that is not one of kb-sync's stored runs (:mod:`sync.history`)."""
    fields: dict[str, Any] = call if isinstance(call, dict) else vars(call)
    path = str(fields.get("path"))
    if fields.get("method") != "POST" or not path.endswith("/knowledge-base/text"):
        return False
    raw = fields.get("request_json")
    body: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return not str(body.get("name", "")).startswith("run:")
