"""The `kb-sync` command line's options: one function per command, the help texts."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from typing import Any

from . import __version__
from .errors import ExitCode
from .limiter import DEFAULT_CONCURRENCY

EXIT_CODES_HELP = """exit codes:
  0  done, or nothing to do
  1  error; the agent was not changed (it keeps its previous documents)
  2  changes pending (plan / push --dry-run with --detailed-exitcode)
  3  partial apply: some documents kept their old version (see the log and the run record)
  4  a guard refused: mass delete, RAG quota pre-flight, stale plan, lock, non-https URL
  5  bad input: a missing or malformed setting, an unreadable file or folder, a wrong key
  6  verify found the agent out of line with the folder
  7  generate: the monitoring source is unhealthy (nothing changed or uploaded)
130  interrupted
"""

ENV_HELP = """environment:
  ELEVENLABS_API_KEY     the workspace API key (required; never logged)
  ELEVENLABS_AGENT_ID    the agent to sync (required)
  ELEVENLABS_BASE_URL    default https://api.elevenlabs.io (http only on loopback)
  RAG_EMBEDDING_MODEL    default multilingual_e5_large_instruct (must match the agent's)
  RAG_INDEXING_TIMEOUT   seconds to wait for indexes, default 180 (--index-wait wins)
  KB_SYNC_NAMESPACE      ownership namespace in document names, default one per agent
                         (kb-sync-<8 hex of sha256(agent id)>)
  KB_SYNC_FOLDER         the KB folder of the managed documents, default the namespace
                         (--folder wins); it holds .kb-sync: the run history, the lease
  KB_SYNC_HISTORY        runs kept in .kb-sync for rollback and history, default 10
  KB_SYNC_RECORD_DIR     where local copies of run records go, default reports/runs
  KB_SYNC_LOG_FORMAT     human (default) or json, like --log-format
  BIRBY_API_URL          the monitoring source of `generate` (a URL or a file path)
"""


def _positive(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not (math.isfinite(f) and f > 0):
        raise argparse.ArgumentTypeError(f"{value!r} must be a finite number of seconds > 0")
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
        self.exit(ExitCode.BAD_INPUT, f"kb-sync: error: {message}; see {self.prog} --help\n")


LOG_FORMATS = ("human", "json")


def log_format_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the log format, or None. argparse checks ``--log-format``'s choices,
    not a default: a bad ``KB_SYNC_LOG_FORMAT`` (the default) is refused here, like the option."""
    if args.log_format in LOG_FORMATS:
        return None
    return (
        f"KB_SYNC_LOG_FORMAT={args.log_format!r} is not a log format; set it to human or json "
        "(like --log-format), or unset it"
    )


def _logging_options(parser: argparse.ArgumentParser, env: Mapping[str, str], top: bool) -> None:
    # subcommands SUPPRESS their defaults so `kb-sync --log-format json push` is kept
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=(env.get("KB_SYNC_LOG_FORMAT", "").strip() or "human")
        if top
        else argparse.SUPPRESS,
        help="log lines for people (default) or one JSON object a line (cron)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="debug logging",
    )


def _folder_option() -> _Parser:
    p = _Parser(add_help=False)
    p.add_argument(
        "--folder",
        metavar="NAME",
        help="the KB folder of the managed documents and .kb-sync (default KB_SYNC_FOLDER, "
        "else the namespace)",
    )
    return p


def _planning(sp: argparse.ArgumentParser) -> None:
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
        help="exit 2 when there are changes, 0 when there are none (errors stay 1, 4, 5)",
    )
    sp.add_argument(
        "--small-docs",
        choices=("prompt", "skip", "fail"),
        default="prompt",
        help="documents under 500 bytes: attach as usage_mode prompt (default), leave out, or fail",
    )
    sp.add_argument(
        "--adopt-legacy",
        action="store_true",
        help="replace the old script's uploads (named after the files)",
    )


def _push(sp: argparse.ArgumentParser) -> None:
    _planning(sp)
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
        default=DEFAULT_CONCURRENCY,
        help=f"parallel requests at most (default {DEFAULT_CONCURRENCY}); lowered on the "
        "server's 429 answers and raised again as requests succeed",
    )


def _rollback(sp: argparse.ArgumentParser) -> None:
    which = sp.add_mutually_exclusive_group()
    which.add_argument(
        "--to",
        metavar="ID",
        help="the stored run to undo (kb-sync history lists them; default: the newest, which "
        "must be complete)",
    )
    which.add_argument(
        "--record",
        metavar="FILE",
        help="undo the run of a local record file (reports/runs/...) instead of a stored run",
    )
    sp.add_argument("--dry-run", action="store_true", help="print the rollback plan only")
    sp.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="allow a rollback that removes more than half of the agent's managed entries "
        "(undoing a first push removes them all)",
    )
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument(
        "--index-wait",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="how long to wait for recreated documents' RAG indexes "
        "(default RAG_INDEXING_TIMEOUT or 180)",
    )


def _history(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--json", action="store_true", help="machine-readable output")


def _status(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--json", action="store_true", help="machine-readable output")


def _verify(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--dir", required=True, help="the folder of *.md documents the agent must equal"
    )
    sp.add_argument("--json", action="store_true", help="machine-readable report")
    _questions(sp)


def _questions(sp: argparse.ArgumentParser) -> None:
    """verify's questions: ``docs/questions.md``."""
    sp.add_argument(
        "--questions",
        metavar="FILE",
        help="also ask each question of FILE (TOML, [[question]] ask/expect/file; "
        "docs/questions.md) through the agent's retrieval (rag-query, the agent's defaults): "
        "every expected string must be in the retrieved chunks (of the file's current "
        "document when file is given); exit 6 when any question fails, 5 when FILE is malformed",
    )
    sp.add_argument(
        "--agent-tests",
        action="store_true",
        help="with --questions: also run the questions as ElevenLabs agent response tests "
        "(one test per question, reused across runs, one run-tests call). OPT-IN: on the real "
        "service every run COSTS LLM CREDITS (an LLM judges each answer)",
    )
    sp.add_argument(
        "--agent-tests-timeout",
        type=_positive,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for the agent tests to finish (default 300)",
    )


def _unlock(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "lease_id",
        metavar="LEASE_ID",
        help="the lease's id, as the refused run's error line names it",
    )


COMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("push", "plan, then apply the folder onto the agent's knowledge base", _push),
    ("plan", "show what push would do; read-only", _planning),
    ("rollback", "undo the last applied run, from any machine (or the one named)", _rollback),
    (
        "history",
        "the runs stored in ElevenLabs (<folder>/.kb-sync): time, host, command, summary, id",
        _history,
    ),
    ("status", "the agent's knowledge base now: entries, owner, index, quota", _status),
    ("verify", "audit the agent against the folder (DoD); non-zero on any failure", _verify),
    (
        "unlock",
        "remove a stuck lease (a crashed run's), like terraform force-unlock; name its id",
        _unlock,
    ),
)


GENERATE_HELP = "render the monitoring JSON into one markdown document per record"


def build_parser(env: Mapping[str, str], *, generate: bool = True) -> argparse.ArgumentParser:
    """The command line. ``generate=False``: ``generate`` takes its arguments unparsed (the
    package and Jinja2 are not imported, which costs every other command ~45 ms of start-up);
    the CLI parses again with the full parser when the command is ``generate``."""
    common = _Parser(add_help=False)
    _logging_options(common, env, top=False)
    p = _Parser(
        prog="kb-sync",
        description="Keep an ElevenLabs agent's knowledge base equal to a folder of markdown.",
        epilog=EXIT_CODES_HELP + "\n" + ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _logging_options(p, env, top=True)
    p.add_argument("--version", action="version", version=f"kb-sync {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, text, options in COMMANDS:
        parents: list[_Parser] = [common] + ([_folder_option()] if name != "unlock" else [])
        sp = sub.add_parser(
            name,
            help=text,
            description=text,
            parents=parents,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        options(sp)
    sub.choices["plan"].set_defaults(dry_run=True)
    if generate:
        from .generate import add_parser as add_generate

        _logging_options(add_generate(sub), env, top=False)
    else:
        lazy = sub.add_parser("generate", help=GENERATE_HELP, add_help=False, prefix_chars="\0")
        lazy.add_argument("rest", nargs=argparse.REMAINDER)
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
