"""The `kb-sync` command line (also `python -m sync`)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from . import __version__, generate
from .apply import Options
from .client import Client
from .clock import Clock, SystemClock
from .config import load_settings
from .errors import ExitCode, SyncError
from .log import event, redact, register_secret, setup

EXIT_CODES_HELP = """exit codes:
  0  done, or nothing to do
  1  error; the agent was not changed (it keeps its previous documents)
  2  changes pending (plan / push --dry-run with --detailed-exitcode)
  3  partial apply: some documents kept their old version (see the log and the run record)
  4  a guard refused: mass delete, RAG quota pre-flight, stale plan, lock, non-https URL
  5  bad input: a missing or malformed setting, an unreadable file or folder, a wrong key
  6  verify found the agent out of line with the folder
  7  generate --check: the monitoring source is unhealthy (nothing changed)
130  interrupted
"""

ENV_HELP = """environment:
  ELEVENLABS_API_KEY     the workspace API key (required; never logged)
  ELEVENLABS_AGENT_ID    the agent to sync (required)
  ELEVENLABS_BASE_URL    default https://api.elevenlabs.io (http only on loopback)
  RAG_EMBEDDING_MODEL    default multilingual_e5_large_instruct (must match the agent's)
  RAG_INDEXING_TIMEOUT   seconds to wait for indexes, default 180 (--index-wait wins)
  KB_SYNC_NAMESPACE      ownership namespace in document names, default kb-sync
  KB_SYNC_RECORD_DIR     where run records go, default reports/runs
"""


def _positive(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if f < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be >= 0")
    return f


def _workers(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= n <= 32:
        raise argparse.ArgumentTypeError(f"{value!r} must be between 1 and 32")
    return n


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # usage mistakes are bad input (5), one line
        self.exit(ExitCode.BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    env = os.environ if env is None else env

    def logging_options(parser: argparse.ArgumentParser, top: bool) -> None:
        # subcommands SUPPRESS their defaults so `kb-sync --log-format json push` is kept
        parser.add_argument(
            "--log-format",
            choices=("human", "json"),
            default=env.get("KB_SYNC_LOG_FORMAT", "human") if top else argparse.SUPPRESS,
            help="log lines for people (default) or one JSON object a line (cron)",
        )
        parser.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=False if top else argparse.SUPPRESS,
            help="debug logging",
        )

    common = _Parser(add_help=False)
    logging_options(common, top=False)

    p = _Parser(
        prog="kb-sync",
        description="Keep an ElevenLabs agent's knowledge base equal to a folder of markdown.",
        epilog=EXIT_CODES_HELP + "\n" + ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    logging_options(p, top=True)
    p.add_argument("--version", action="version", version=f"kb-sync {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help,
            description=help,
            parents=[common],
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def planning(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--dir", required=True, help="folder of *.md documents (e.g. quarters)")
        sp.add_argument(
            "--strict-hash",
            action="store_true",
            help="also compare the server's content of equal-size documents",
        )
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        sp.add_argument(
            "--detailed-exitcode",
            action="store_true",
            help="exit 2 when there are changes (0 none, 1 error)",
        )
        sp.add_argument(
            "--small-docs",
            choices=("prompt", "skip", "fail"),
            default="prompt",
            help="documents under 500 bytes: attach as usage_mode prompt "
            "(default), leave out, or fail",
        )
        sp.add_argument(
            "--adopt-legacy",
            action="store_true",
            help="replace the old script's uploads (named after the files)",
        )

    sp = add("push", "plan, then apply the folder onto the agent's knowledge base")
    planning(sp)
    sp.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    sp.add_argument(
        "--index-wait",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="how long to wait for RAG indexes (default RAG_INDEXING_TIMEOUT or 180)",
    )
    sp.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="allow deleting more than half of the managed documents",
    )
    sp.add_argument(
        "--concurrency",
        type=_workers,
        default=4,
        help="parallel uploads and index polls (default 4)",
    )

    add("plan", "show what push would do; read-only").set_defaults(dry_run=True)
    planning(sub.choices["plan"])

    sp = add("rollback", "undo the last applied push (or the one named)")
    sp.add_argument("--record", help="run record to undo (default: the latest in reports/runs)")
    sp.add_argument("--dry-run", action="store_true", help="print the rollback plan only")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--index-wait", type=_positive, default=None, metavar="SECONDS")

    sp = add("status", "the agent's knowledge base now: entries, owner, index, quota")
    sp.add_argument("--json", action="store_true")

    sp = add("verify", "audit the agent against the folder (DoD); non-zero on any failure")
    sp.add_argument("--dir", required=True)
    sp.add_argument("--json", action="store_true")

    logging_options(generate.add_parser(sub), top=False)
    # The emulator is a test tool: its own parser, imported only when asked for, so the
    # sync's runtime path never loads it.
    sp = sub.add_parser(
        "emulator",
        help="serve a local fake of the ElevenLabs API (tests, demos)",
        add_help=False,
        prefix_chars="\0",
    )
    sp.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _options(args: argparse.Namespace, settings_timeout: float) -> Options:
    wait = getattr(args, "index_wait", None)
    return Options(
        index_wait=settings_timeout if wait is None else wait,
        concurrency=getattr(args, "concurrency", 4),
        small_docs=getattr(args, "small_docs", "prompt"),
    )


def run(
    argv: list[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    stdout: TextIO | None = None,
    on_exchange: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Run one command. Tests call this in-process with an injected clock and env."""
    out = stdout or sys.stdout
    env = os.environ if env is None else env
    args = build_parser(env).parse_args(argv)
    setup(args.log_format, logging.DEBUG if args.verbose else logging.INFO)
    try:
        if args.command == "emulator":
            from .emulator.cli import main as emulator_main

            return emulator_main(args.rest)
        if args.command == "generate":
            push = _push_runner(args, env, clock, out, on_exchange)
            return generate.run(args, env=env, push=push, out=out)
        settings = load_settings(env)
        register_secret(settings.api_key)
        clock = clock or SystemClock()
        client = Client(settings.base_url, settings.api_key, clock=clock, on_exchange=on_exchange)
        return _dispatch(args, settings, client, clock, out)
    except SyncError as exc:
        event(
            "error",
            logging.ERROR,
            kind=type(exc).__name__,
            message=str(exc),
            code=exc.code,
            status=exc.status,
            request_id=exc.request_id,
            exit=int(exc.exit_code),
        )
        sys.stderr.write(f"kb-sync: error: {redact(str(exc))}\n")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("kb-sync: interrupted\n")
        return 130
    except Exception:  # a bug, not a user mistake: show it, never with the key
        sys.stderr.write(redact(traceback.format_exc()))
        sys.stderr.write("kb-sync: internal error (a bug); the agent keeps its previous state\n")
        return int(ExitCode.ERROR)


def _push_runner(
    args: argparse.Namespace,
    env: Mapping[str, str],
    clock: Clock | None,
    out: TextIO,
    on_exchange: Callable[[dict[str, Any]], None] | None,
) -> generate.PushRunner:
    """``generate --upload``'s push: in this process, with the same env, clock, stdout and
    log options as the generate run."""
    log_args = ["--log-format", args.log_format, *(["-v"] if args.verbose else [])]

    def push(argv: list[str]) -> int:
        return run([*log_args, *argv], env=env, clock=clock, stdout=out, on_exchange=on_exchange)

    return push


def _dispatch(
    args: argparse.Namespace, settings: Any, client: Client, clock: Clock, out: TextIO
) -> int:
    from .push import PushArgs, plan_command, push_command

    if args.command in ("push", "plan"):
        pargs = PushArgs(
            dir=args.dir,
            dry_run=args.dry_run,
            strict_hash=args.strict_hash,
            json=args.json,
            detailed_exitcode=args.detailed_exitcode,
            allow_mass_delete=getattr(args, "allow_mass_delete", False),
            adopt_legacy=args.adopt_legacy,
            options=_options(args, settings.index_timeout),
        )
        if args.command == "plan":
            return plan_command(settings, client, pargs, out)
        return push_command(settings, client, clock, pargs, out)
    if args.command == "rollback":
        from .push import agent_lock
        from .rollback import rollback_command

        lock = (
            contextlib.nullcontext()
            if args.dry_run
            else agent_lock(settings.agent_id, settings.base_url)
        )
        with lock:
            return rollback_command(
                settings,
                client,
                clock,
                out,
                record_path=args.record,
                dry_run=args.dry_run,
                as_json=args.json,
                options=_options(args, settings.index_timeout),
            )
    if args.command == "status":
        from .status import status_command

        return status_command(client, settings, out, args.json)
    if args.command == "verify":
        from .verify import verify_command

        return verify_command(client, settings, args.dir, out, args.json)
    raise AssertionError(args.command)  # pragma: no cover


def main(argv: list[str] | None = None) -> int:
    return run(argv)
