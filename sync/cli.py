"""The `kb-sync` command line (also `python -m sync`)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from .cassette import tee
from .clock import Clock, SystemClock, scaled_from_env
from .config import load_settings
from .errors import ConfigError, ExitCode, SyncError
from .limiter import DEFAULT_CONCURRENCY
from .log import event, redact, register_secret, setup
from .parser import build_parser, log_format_problem
from .retry import RetryPolicy, run_budget

# Imported where a command needs them (`--help`, `plan` and `status` never load generate and
# Jinja2; `--help` not even requests): see docs/performance.md, "Start-up".
if TYPE_CHECKING:
    from . import generate
    from .apply import Options
    from .client import Client


def _options(args: argparse.Namespace, settings_timeout: float) -> Options:
    from .apply import Options

    wait = getattr(args, "index_wait", None)
    return Options(
        index_wait=settings_timeout if wait is None else wait,
        concurrency=getattr(args, "concurrency", DEFAULT_CONCURRENCY),
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
    args = build_parser(env, generate=False).parse_args(argv)
    if args.command == "generate":  # its options only now: the package loads Jinja2
        args = build_parser(env).parse_args(argv)
    bad_format = log_format_problem(args)
    if bad_format:  # before any line is logged in a format nobody asked for
        return _report_error(ConfigError(bad_format), "human")
    setup(args.log_format, logging.DEBUG if args.verbose else logging.INFO)
    try:
        if args.command == "emulator":
            from .emulator.cli import main as emulator_main

            return emulator_main(args.rest)
        if args.command == "generate":
            from . import generate

            push = _push_runner(args, env, clock, out, on_exchange)
            return generate.run(args, env=env, push=push, out=out)
        if getattr(args, "folder", None):  # --folder NAME wins over KB_SYNC_FOLDER
            env = {**env, "KB_SYNC_FOLDER": args.folder}
        from .client import Client

        settings = load_settings(env)
        register_secret(settings.api_key)
        scaled = scaled_from_env(env, settings.base_url)  # test-only, loopback only
        clock = clock or scaled or SystemClock()
        on_exchange = tee(on_exchange, settings.cassette)  # KB_SYNC_CASSETTE
        wait = getattr(args, "index_wait", None)
        budget = run_budget(RetryPolicy(), settings.index_timeout if wait is None else wait)
        client = Client(
            settings.base_url,
            settings.api_key,
            clock=clock,
            on_exchange=on_exchange,
            concurrency=getattr(args, "concurrency", DEFAULT_CONCURRENCY),
            deadline=clock.now() + budget,  # 429s end inside the run's lease TTL
        )
        try:
            return _dispatch(args, settings, client, clock, out)
        finally:
            client.settled()  # the in-flight limit the run settled at, once
    except SyncError as exc:
        return _report_error(exc, args.log_format)
    except KeyboardInterrupt as exc:  # the run may say what the agent holds (push)
        sys.stderr.write(f"kb-sync: interrupted{f' {exc}' if str(exc) else ''}\n")
        return 130
    except Exception:  # a bug, not a user mistake: show it, never with the key
        sys.stderr.write(redact(traceback.format_exc()))
        sys.stderr.write("kb-sync: internal error (a bug); the agent keeps its previous state\n")
        return int(ExitCode.ERROR)


def _report_error(exc: SyncError, log_format: str) -> int:
    """One line per failure: the ``error`` event in JSON mode, the human line otherwise."""
    if log_format == "json":
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
    else:
        sys.stderr.write(f"kb-sync: error: {redact(str(exc))}\n")
    return int(exc.exit_code)


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
        from .lock import agent_lock
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
                run_id=args.to,
                dry_run=args.dry_run,
                allow_mass_delete=args.allow_mass_delete,
                as_json=args.json,
                options=_options(args, settings.index_timeout),
            )
    if args.command == "unlock":
        from .lease import LeaseManager

        name = LeaseManager(client, clock, "", settings.agent_id, 0).unlock(args.lease_id)
        out.write(f"Removed lease {args.lease_id} ({name}).\n")
        return ExitCode.OK
    if args.command == "history":
        from .history_command import history_command

        return history_command(client, settings, out, args.json)
    if args.command == "status":
        from .status import status_command

        return status_command(client, settings, out, args.json)
    if args.command == "verify":
        from .verify import verify_command

        extra = _questions_hook(args, client, settings, clock)
        return verify_command(client, settings, args.dir, out, args.json, extra)
    raise AssertionError(args.command)  # pragma: no cover


def _questions_hook(args: argparse.Namespace, client: Client, settings: Any, clock: Clock) -> Any:
    """``verify --questions FILE [--agent-tests]``'s hook (:mod:`sync.ask_command`), or None."""
    if args.questions is None:
        if args.agent_tests:
            raise ConfigError("--agent-tests needs --questions FILE; add the questions file")
        return None
    from .ask_command import AskArgs, questions_hook

    ask = AskArgs(args.questions, args.dir, args.agent_tests, args.agent_tests_timeout)
    return questions_hook(ask, client, settings, clock)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (a cron's timeout, `kill`) ends a run like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminated)
    return run(argv)
