"""One exception hierarchy, rooted in :class:`SyncError`, and the exit code each maps to.

API errors carry the HTTP status, the error code the server gave (``detail.code``, falling
back to ``detail.status``), its message and request id. No exception text ever holds the API key.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0  # done, or nothing to do
    ERROR = 1  # an error; nothing changed on the agent
    CHANGES_PENDING = 2  # `plan --detailed-exitcode` found changes
    PARTIAL = 3  # applied, but some documents kept their old version
    REFUSED = 4  # a guard refused (mass delete, quota pre-flight, stale plan, staging guard)
    BAD_INPUT = 5  # a user mistake: missing/malformed setting, unreadable file or folder
    VERIFY_FAILED = 6  # `kb-sync verify` found the agent out of line with the folder
    SOURCE_UNHEALTHY = 7  # `kb-sync generate` (with or without --check): the source is not healthy


class SyncError(Exception):
    """Base of every error kb-sync raises on purpose."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        return self.message


class ConfigError(SyncError):
    """A missing or malformed setting (env var or option). Names the setting and the fix."""

    exit_code = ExitCode.BAD_INPUT


class InputError(SyncError):
    """An unreadable or invalid local file or folder. Names the file and the fix."""

    exit_code = ExitCode.BAD_INPUT


class GuardRefused(SyncError):
    """A safety guard refused to go on."""

    exit_code = ExitCode.REFUSED


class ApiError(SyncError):
    """The ElevenLabs API answered with an error."""


class AuthError(ApiError):
    """401/403: the API key is missing or wrong."""

    exit_code = ExitCode.BAD_INPUT


class NotFound(ApiError):
    """404: the document or agent does not exist."""


class ValidationFailed(ApiError):
    """422 (including ``rag_index_not_ready``)."""


class RateLimited(ApiError):
    """429 after retries ran out."""


class ServerError(ApiError):
    """5xx after retries ran out."""


class TransportError(ApiError):
    """The connection failed or timed out after retries ran out."""


class AppliedPartially(SyncError):
    """A failure after the PATCH: the agent already points at the new, indexed documents,
    but what came after (deletes, the record) was left undone."""

    exit_code = ExitCode.PARTIAL


class NotKept(SyncError):
    """The agent was PATCHed, but the read-back lacks entries that were sent (the service
    answered 200 and kept fewer: a list longer than it keeps). Every run ends so until the
    list fits; after the PATCH it becomes :class:`AppliedPartially`."""


class SourceUnhealthy(SyncError):
    """``kb-sync generate``: the monitoring source is down, slow, invalid, empty, drifted or
    shrank too much.

    ``reason`` is one short token for the status line and monitoring: ``unreachable``,
    ``timeout``, ``http_<status>``, ``invalid_json``, ``empty``, ``schema`` or ``dropped``.
    """

    exit_code = ExitCode.SOURCE_UNHEALTHY

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
