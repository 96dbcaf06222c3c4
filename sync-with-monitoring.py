#!/usr/bin/env python3
"""The cron entry point the handoff guide names, kept verbatim:

    python3 sync-with-monitoring.py --check --upload-to-elevenlabs

A thin shim over ``kb-sync generate``: the source comes from ``BIRBY_API_URL`` (a URL or a
local path), the documents go to ``quarters/`` beside this script, ``--check`` gates on the
source's health and ``--upload-to-elevenlabs`` becomes ``--upload`` (an in-process
``kb-sync push``). Any other ``kb-sync generate`` option passes through, e.g. ``--out DIR``,
``--dry-run``, ``--json``, ``--merge-small``. The exit code is generate's (7: source unhealthy).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ALIASES = {"--upload-to-elevenlabs": "--upload"}


def build_argv(argv: list[str]) -> list[str]:
    """The ``kb-sync`` argv for this script's arguments."""
    args = [ALIASES.get(a, a) for a in argv]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args += ["--out", str(ROOT / "quarters")]
    return ["generate", *args]


def main(argv: list[str] | None = None) -> int:
    from sync.shim import BAD_INPUT, load_main  # after ROOT is on sys.path

    cli_main = load_main("sync-with-monitoring.py")
    if cli_main is None:
        return BAD_INPUT
    return int(cli_main(build_argv(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
