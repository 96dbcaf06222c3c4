"""What the runbook's shim scripts share: load the CLI, or say in one line how to install it.

This module imports nothing but the standard library, so a bare ``python3`` that lacks
kb-sync's dependencies still gets a sentence instead of a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

BAD_INPUT = 5  # sync.errors.ExitCode.BAD_INPUT, without importing it
# The CLI imports these only when a command needs them (a fast start-up), so they are looked
# for here, up front: a missing one is this one line, not a traceback in the middle of a run.
RUNTIME_DEPENDENCIES = ("requests", "urllib3", "jinja2")


def load_main(script: str) -> Callable[[list[str]], int] | None:
    """``sync.cli.main``, or None after one line on stderr naming the interpreter and the fix."""
    try:
        from sync.cli import main

        for name in RUNTIME_DEPENDENCIES:
            importlib.import_module(name)
    except ImportError as exc:
        missing = exc.name or "a dependency"
        sys.stderr.write(
            f"kb-sync: error: {script}: this Python ({sys.executable}) cannot import "
            f"{missing}; install kb-sync into it with `pip install .` from the repo root, "
            "or run `make setup` and use .venv/bin/python\n"
        )
        return None
    return main
