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


def _run_without_cli(argv: list[str]) -> int:
    """Fallback while ``sync.cli.main`` is not there: generate's own parser and run."""
    import argparse

    from sync import generate, log

    parser = argparse.ArgumentParser(prog="sync-with-monitoring.py")
    generate.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    log.setup()
    return generate.run(args)


def main(argv: list[str] | None = None) -> int:
    kb_argv = build_argv(sys.argv[1:] if argv is None else argv)
    try:
        from sync.cli import main as cli_main
    except ImportError:
        return _run_without_cli(kb_argv)
    return int(cli_main(kb_argv))


if __name__ == "__main__":
    sys.exit(main())
