"""The request machinery under :class:`sync.client.Client`: one API call with its retries.

Retries follow :func:`sync.retry.decide`. Requests in flight are bounded by an adaptive limit
(:mod:`sync.limiter`): a 429 lowers it, answers raise it again. A 429 that lowered the limit
(or that carries ``Retry-After``) slows every worker down: a shared back-off, whose end each
worker meets with its own jitter (:func:`sync.retry.shared_wait`). 429s are bounded by the
run's deadline (:attr:`Requester.deadline`), not by the attempt budget. A request given an
end (``until``: an index poll, by the index wait's deadline) waits for no retry past it.

A server that goes away mid-run: the first request that meets a refused connection spends its
attempts; once one has, the server is taken as gone for the run, and a later refused request
fails after its one attempt (until the server answers again). The first request of a run
fails at once on a refused connection anyway (a wrong URL, not a hiccup). Every exchange is
counted and can be recorded, with no headers, so the API key never reaches a record.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from . import __version__
from .answers import FATAL_FIRST, checked, error_from, payload_of, transport_kind
from .clock import Clock, SystemClock
from .errors import ApiError, TransportError
from .limiter import DEFAULT_CONCURRENCY, AdaptiveLimiter, LimitPolicy
from .log import event, redact, register_secret
from .retry import RetryPolicy, decide, parse_retry_after, shared_wait

Json = dict[str, Any]
GONE = "connection refused"  # a request that ran out of attempts on it: the server is gone


class Requester:
    """Transport, retries, the in-flight limit, counters and the exchange record."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        timeout: tuple[float, float] = (5.0, 60.0),
        on_exchange: Callable[[Json], None] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        deadline: float | None = None,
    ) -> None:
        """``concurrency``: the most requests in flight (the limit adapts below it).
        ``deadline``: the clock's time after which no 429 is retried (default: the policy's
        ``run_budget`` from now)."""
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        register_secret(api_key)  # redacted from every log line, error and recorded exchange
        self.clock = clock or SystemClock()
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.on_exchange = on_exchange
        self._local = threading.local()
        self._lock = threading.Lock()
        self._not_before = 0.0  # shared back-off after a 429
        self.limiter = AdaptiveLimiter(LimitPolicy(ceiling=max(1, concurrency)))
        self.deadline = self.clock.now() + self.policy.run_budget if deadline is None else deadline
        self.requests_sent = 0
        self.writes_sent = 0
        self._answered = False  # has the server answered anything yet (a wrong URL fails fast)
        self.server_gone = False  # a request ran out of attempts on a refused connection
        self.gone_since: float | None = None  # when (the run's clock) it was taken as gone

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- transport -------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        s: requests.Session | None = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["xi-api-key"] = self._key
            s.headers["User-Agent"] = f"kb-sync/{__version__}"
            self._local.session = s
        return s

    def _wait_shared_backoff(self) -> None:
        with self._lock:
            left = self._not_before - self.clock.now()
        if left > 0:
            self.clock.sleep(shared_wait(self.policy, left))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Json | None = None,
        idempotent: bool = True,
        expect_json: bool = True,
        until: float | None = None,
    ) -> Any:
        """One API call with bounded retries (:func:`sync.retry.decide`); the answer's body.

        Bounded: 5xx and transport errors by ``policy.max_attempts``, 429s by the run's
        deadline and ``policy.max_limited`` (each retry waits > 0 on the clock); with
        ``until`` (the clock's time), no retry whose wait would end past it."""
        attempt = 0  # failures that use up the attempt budget
        limited = 0  # 429s of this request
        while True:
            self._wait_shared_backoff()
            with self._lock:
                self.requests_sent += 1
                if method != "GET":
                    self.writes_sent += 1
            took = (self.clock.now(), time.monotonic())  # when it started; for its elapsed
            try:
                with self.limiter.slot() as slot:
                    resp = self._session().request(
                        method, self.base_url + path, params=params, json=body, timeout=self.timeout
                    )
                    if resp.status_code == 429:
                        slot.limited()
                    else:
                        slot.answered()
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                self._record(method, path, params, body, None, None, str(exc), took)
                delay = self._after_transport_error(method, path, exc, attempt, idempotent, until)
                attempt += 1
            else:
                self._answered, self.server_gone, self.gone_since = True, False, None
                payload = payload_of(resp, expect_json)
                self._record(method, path, params, body, resp.status_code, payload, None, took)
                if resp.status_code < 400:
                    return checked(method, path, resp, payload, expect_json)
                if resp.status_code == 429:
                    delay = self._after_429(
                        method, path, resp, attempt, limited, slot.lowered, until
                    )
                    limited += 1
                else:
                    delay = self._after_error_status(method, path, resp, attempt, idempotent, until)
                    attempt += 1
            self.clock.sleep(delay)

    def settled(self) -> None:
        """Log, once at the end of a run, the in-flight limit the run settled at (a debug
        line when no 429 ever lowered it: the ceiling, as asked)."""
        if self.requests_sent:
            summary = self.limiter.summary()
            level = logging.INFO if summary["limited"] else logging.DEBUG
            event("concurrency.settled", level, **summary)

    def _within(self, delay: float | None, until: float | None) -> float | None:
        """``delay``, unless a wait that long would end past ``until``."""
        if delay is None or until is None or self.clock.now() + delay <= until:
            return delay
        return None

    def _after_transport_error(
        self,
        method: str,
        path: str,
        exc: Exception,
        attempt: int,
        idempotent: bool,
        until: float | None = None,
    ) -> float:
        """The delay before the next attempt, or the error when there is none."""
        kind = transport_kind(exc)
        delay = decide(self.policy, attempt, transport_error=True, idempotent=idempotent)
        if kind in FATAL_FIRST and not self._answered:  # a wrong URL, not a hiccup
            delay = None
        known_gone = kind == GONE and self.server_gone
        if known_gone:
            delay = None
        delay = self._within(delay, until)
        if kind == GONE and delay is None and attempt + 1 >= self.policy.max_attempts:
            self.server_gone = True  # this request refused every attempt: the next need one
            self.gone_since = self.gone_since or self.clock.now()
        if delay is not None or attempt or known_gone:  # else the error line says it all
            event(
                "http.transport_error",
                logging.WARNING,
                method=method,
                path=path,
                attempt=attempt + 1,
                error=type(exc).__name__,
                retry_in=None if delay is None else round(delay, 2),
                **(
                    {"note": "an earlier request of this run was refused every attempt"}
                    if known_gone
                    else {}
                ),
            )
        if delay is None:
            parts = urlsplit(self.base_url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            raise TransportError(
                redact(
                    f"ELEVENLABS_BASE_URL={self.base_url}: {kind} (host {parts.hostname}, port "
                    f"{port}) on {method} {path}; check the URL and the network, or that the "
                    "server is up"
                ),
                code="transport_error",
            ) from None
        return delay

    def _after_error_status(
        self,
        method: str,
        path: str,
        resp: requests.Response,
        attempt: int,
        idempotent: bool,
        until: float | None = None,
    ) -> float:
        err = error_from(resp)
        delay = decide(self.policy, attempt, status=resp.status_code, idempotent=idempotent)
        delay = self._within(delay, until)
        if delay is None:
            raise err
        self._retry_event(method, path, resp.status_code, err, attempt + 1, delay)
        return delay

    def _after_429(
        self,
        method: str,
        path: str,
        resp: requests.Response,
        attempt: int,
        limited: int,
        lowered: bool,
        until: float | None = None,
    ) -> float:
        """A 429 (not processed): retried until the run's deadline (or the request's end),
        whatever the attempts."""
        err = error_from(resp)
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        end = self.deadline if until is None else min(self.deadline, until)
        delay = decide(
            self.policy,
            attempt,
            status=429,
            retry_after=retry_after,
            limited=limited,
            remaining=end - self.clock.now(),
        )
        if delay is None:
            raise err
        if retry_after is not None or lowered:  # everyone slows down, not only this worker
            with self._lock:
                self._not_before = max(self._not_before, self.clock.now() + delay)
        self._retry_event(method, path, 429, err, attempt + limited + 1, delay)
        return delay

    def _retry_event(
        self, method: str, path: str, status: int, err: ApiError, attempt: int, delay: float
    ) -> None:
        event(
            "http.retry",
            logging.WARNING,
            method=method,
            path=path,
            status=status,
            code=err.code,
            attempt=attempt,
            retry_in=round(delay, 2),
        )

    def _record(
        self,
        method: str,
        path: str,
        params: Any,
        body: Json | None,
        status: int | None,
        response: Any,
        error: str | None,
        took: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        if self.on_exchange is None:
            return
        text = response if isinstance(response, str) else None
        self.on_exchange(
            json.loads(
                redact(
                    json.dumps(
                        {
                            "method": method,
                            "path": path,
                            "params": params,
                            "request": body,
                            "status": status,
                            "response": text[:2000] if text is not None else response,
                            "error": error,
                            "at": took[0],
                            "elapsed": time.monotonic() - took[1],
                        },
                        ensure_ascii=False,
                        default=str,
                    )
                )
            )
        )
