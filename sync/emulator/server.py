"""The HTTP front: a stdlib ``ThreadingHTTPServer`` in a daemon thread around a Backend."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sync.emulator.backend import Backend
from sync.emulator.transport import deliver
from sync.emulator.urls import is_control
from sync.emulator.wire import TEXT


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], backend: Backend, verbose: bool) -> None:
        self.backend = backend
        self.verbose = verbose
        super().__init__(addr, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (killed, timed out) is not a server error: no
        traceback on stderr; anything else still gets one."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms stall
    server: _Server
    server_version = "elevenlabs-emulator/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        backend = self.server.backend
        # in flight from here until the answer is ready to be written (sync.emulator.admission)
        with backend.admission.slot(counted=not is_control(split.path)) as admitted:
            try:
                resp = backend.handle(
                    self.command,
                    split.path,
                    query,
                    dict(self.headers.items()),
                    body,
                    over_limit=not admitted,
                )
            except Exception:  # a bug or a failing after_request hook: answer 500, say why
                traceback.print_exc(file=sys.stderr)
                self._internal_error()
                return
            if deliver(resp, time.sleep, self._drop):
                return
        self.send_response(resp.status)
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    def _internal_error(self) -> None:
        payload = b"Internal Server Error"
        self.send_response(500)
        self.send_header("Content-Type", TEXT)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class EmulatorServer:
    def __init__(self, backend: Backend, host: str, port: int, verbose: bool = False) -> None:
        self.backend = backend
        self._httpd = _Server((host, port), backend, verbose)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def serve(
    backend: Backend, host: str = "127.0.0.1", port: int = 0, verbose: bool = False
) -> EmulatorServer:
    """Start serving ``backend`` on ``host:port`` (0 = a free port) in a daemon thread."""
    return EmulatorServer(backend, host, port, verbose)
