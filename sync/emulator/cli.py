"""``kb-sync emulator`` / ``python -m sync.emulator``: serve a seeded emulator on loopback;
``kb-sync emulator replay PATH [--json]``: replay a cassette against a fresh one
(:mod:`sync.emulator.replay`)."""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import signal
import sys
import threading
from typing import Any

from sync.clock import SystemClock
from sync.emulator.backend import Backend
from sync.emulator.server import serve

DEFAULT_QUOTA = 20 * 1024 * 1024  # Creator plan
AGENT_NAME = "Staging support agent"
AGENT_PROMPT = (
    "You are the support agent of a small online shop. Answer customers' questions using the "
    "knowledge base; if the answer is not there, say so and offer to connect a human."
)
FIRST_MESSAGE = "Hi! I'm the shop's support assistant. How can I help?"


def _limit(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be a whole number >= 1")
    return int(value)


EXIT_BAD_INPUT = 5  # kb-sync's exit code of a usage mistake (sync.errors.ExitCode.BAD_INPUT)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # a usage mistake: one line, exit 5, like kb-sync's
        self.exit(EXIT_BAD_INPUT, f"kb-sync: error: {message}; see {self.prog} --help\n")


def _port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a port number (0 to 65535; 0 picks a free one)"
        )
    return int(value)


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    """The one line for a port the server cannot take: who holds it, and the fix."""
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"kb-sync emulator: error: cannot listen on {where}: the address is already in use "
            "(another emulator or server holds it); pass another --port (--port 0 picks a free "
            "one), or stop what holds it"
        )
    return (
        f"kb-sync emulator: error: cannot listen on {where} ({exc.strerror or exc}); pass "
        "another --port (--port 0 picks a free one) or --host"
    )


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0, help="port (default 0: pick a free one)")
    parser.add_argument("--api-key", default=None, help="API key to accept (default: generated)")
    parser.add_argument(
        "--agent-id", default=None, help="id of the seeded agent (default: generated)"
    )
    parser.add_argument(
        "--index-seconds", type=float, default=1.0, help="seconds a RAG index takes (default 1.0)"
    )
    parser.add_argument(
        "--quota-bytes", type=int, default=DEFAULT_QUOTA, help="RAG quota (default 20 MB, Creator)"
    )
    parser.add_argument(
        "--concurrency-limit",
        type=_limit,
        default=None,
        metavar="N",
        help="answer 429 too_many_concurrent_requests over N requests in flight (default: none)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument(
        "--env-file",
        default=None,
        metavar="PATH",
        help="also write the three export lines to PATH (mode 0600), for `. PATH`",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    api_key = args.api_key or "sk_emu_" + secrets.token_hex(20)
    backend = Backend(
        api_key=api_key,
        clock=SystemClock(),
        quota_bytes=args.quota_bytes,
        index_seconds=args.index_seconds,
    )
    backend.set_concurrency_limit(getattr(args, "concurrency_limit", None))
    agent_id = backend.seed_agent(
        agent_id=args.agent_id,
        name=AGENT_NAME,
        rag_enabled=True,
        embedding_model="multilingual_e5_large_instruct",
        prompt=AGENT_PROMPT,
        first_message=FIRST_MESSAGE,
    )
    try:
        server = serve(backend, args.host, args.port, verbose=getattr(args, "verbose", False))
    except OSError as exc:
        sys.stderr.write(_cannot_listen(args.host, args.port, exc) + "\n")
        return EXIT_BAD_INPUT
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
    exports = (
        f"export ELEVENLABS_BASE_URL={server.url}\n"
        f"export ELEVENLABS_API_KEY={api_key}\n"
        f"export ELEVENLABS_AGENT_ID={agent_id}\n"
    )
    if args.env_file:
        fd = os.open(args.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(exports)
    sys.stdout.write(exports)  # copy-paste into a shell, or `eval "$(...)"`
    sys.stdout.flush()
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["replay"]:
        from sync.emulator.replay import main as replay

        return replay(argv[1:])
    parser = configure(
        _Parser(
            prog="kb-sync emulator",
            description="Serve a local fake of the ElevenLabs knowledge-base and agent API on "
            "loopback, with one RAG-enabled agent seeded, for tests and demos. It prints the "
            "three export lines (ELEVENLABS_BASE_URL, ELEVENLABS_API_KEY, ELEVENLABS_AGENT_ID) "
            "and serves until Ctrl-C. Also `python -m sync.emulator`. Exit 0 when stopped.",
            epilog="kb-sync emulator replay PATH [--json]: replay a cassette (KB_SYNC_CASSETTE) "
            "against a fresh emulator; see kb-sync emulator replay -h",
        )
    )
    return run(parser.parse_args(argv))
