"""Settings from the environment. Every problem is one line naming the variable and the fix."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ConfigError, GuardRefused

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_MODEL = "multilingual_e5_large_instruct"
EMBEDDING_MODELS = ("multilingual_e5_large_instruct", "e5_mistral_7b_instruct")
DEFAULT_INDEX_TIMEOUT = 180.0
DEFAULT_NAMESPACE = "kb-sync"
_NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")


@dataclass(frozen=True)
class Settings:
    api_key: str
    agent_id: str
    base_url: str = DEFAULT_BASE_URL
    embedding_model: str = DEFAULT_MODEL
    index_timeout: float = DEFAULT_INDEX_TIMEOUT
    namespace: str = DEFAULT_NAMESPACE
    record_dir: str = "reports/runs"
    folder: str = DEFAULT_NAMESPACE  # the KB folder of the managed documents
    cassette: str | None = None  # KB_SYNC_CASSETTE: append every HTTP exchange there
    # the old shared default, whose documents attached to this agent are adopted (only when
    # KB_SYNC_NAMESPACE is not set: the derived default replaced it)
    legacy_namespace: str | None = None
    history_keep: int = 10  # KB_SYNC_HISTORY: runs kept in <folder>/.kb-sync

    def __repr__(self) -> str:  # never show the key
        return (
            f"Settings(agent_id={self.agent_id!r}, base_url={self.base_url!r}, "
            f"embedding_model={self.embedding_model!r}, namespace={self.namespace!r})"
        )


def is_loopback(host: str | None) -> bool:
    """``localhost`` or a loopback address (the only hosts plain http and the test-only time
    scale are allowed for)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    if "://" not in url:  # `api.elevenlabs.io`: read as a path (or a scheme), not a host
        fixed = "https://" + (url.split("/", 1)[0] or "api.elevenlabs.io")
        also = "" if fixed == DEFAULT_BASE_URL else f" (the ElevenLabs API: {DEFAULT_BASE_URL})"
        raise ConfigError(
            f"ELEVENLABS_BASE_URL={url!r} is not a URL: it has no scheme; set it to {fixed}"
            f"{also} or unset it"
        )
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in 0..65535
    except ValueError:
        raise ConfigError(
            f"ELEVENLABS_BASE_URL={url!r} has a bad port; set it to https://api.elevenlabs.io "
            "or unset it"
        ) from None
    if any(c.isspace() for c in url):
        raise ConfigError(
            f"ELEVENLABS_BASE_URL={url!r} contains a space; set it to https://api.elevenlabs.io "
            "or unset it"
        )
    if parts.path.rstrip("/") or parts.query or parts.fragment:
        raise ConfigError(
            f"ELEVENLABS_BASE_URL={url!r} has a path; give the host only, e.g. "
            "https://api.elevenlabs.io (kb-sync adds /v1/...)"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"ELEVENLABS_BASE_URL={url!r} is not a URL; set it to https://api.elevenlabs.io "
            "or unset it"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise GuardRefused(
            f"ELEVENLABS_BASE_URL={url!r} is not https: the API key would travel in clear; "
            "use https (plain http is allowed only on loopback)"
        )
    return url.rstrip("/")


def default_namespace(agent_id: str) -> str:
    """One per agent, so two agents of one workspace (staging and production) never share
    documents: ``kb-sync-<first 8 hex of sha256(agent id)>``."""
    return f"{DEFAULT_NAMESPACE}-{hashlib.sha256(agent_id.encode()).hexdigest()[:8]}"


def _index_timeout(raw: str) -> float:
    if not raw:
        return DEFAULT_INDEX_TIMEOUT
    try:
        timeout = float(raw)
    except ValueError:
        timeout = -1.0
    if not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(
            f"RAG_INDEXING_TIMEOUT={raw!r} is not a finite number of seconds > 0; "
            "set it to e.g. 180"
        )
    return timeout


def _history_keep(raw: str) -> int:
    if not raw:
        return 10
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ConfigError(
            f"KB_SYNC_HISTORY={raw!r} is not a number of runs from 1 to 1000; set it to e.g. 10 "
            "(the runs kept in ElevenLabs for kb-sync rollback and history)"
        )
    return int(raw)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Settings from ``env`` only: the CLI passes ``os.environ``, tests their own mapping."""
    key = env.get("ELEVENLABS_API_KEY", "").strip()
    if not key:
        raise ConfigError(
            "ELEVENLABS_API_KEY is not set; export it with the workspace's API key "
            "(ElevenLabs > Developers > API keys)"
        )
    if any(not 33 <= ord(c) <= 126 for c in key):
        raise ConfigError(
            "ELEVENLABS_API_KEY holds a control, space or non-ASCII character (a pasted line "
            "break?); set it again to the key exactly as ElevenLabs shows it"
        )
    agent = env.get("ELEVENLABS_AGENT_ID", "").strip()
    if not agent:
        raise ConfigError(
            "ELEVENLABS_AGENT_ID is not set; export it with the agent's id (agent_...), "
            "the one in the agent's URL"
        )
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", agent):
        raise ConfigError(
            f"ELEVENLABS_AGENT_ID={agent!r} is malformed; it holds letters, digits, '_' and '-' "
            "only (copy it from the agent's URL)"
        )
    base = check_base_url(env.get("ELEVENLABS_BASE_URL", "").strip() or DEFAULT_BASE_URL)
    model = env.get("RAG_EMBEDDING_MODEL", "").strip() or DEFAULT_MODEL
    if model not in EMBEDDING_MODELS:
        raise ConfigError(
            f"RAG_EMBEDDING_MODEL={model!r} is unknown; use one of {', '.join(EMBEDDING_MODELS)}"
        )
    timeout = _index_timeout(env.get("RAG_INDEXING_TIMEOUT", "").strip())
    explicit = env.get("KB_SYNC_NAMESPACE", "").strip()
    ns = explicit or default_namespace(agent)
    if not _NAMESPACE_RE.match(ns):
        raise ConfigError(
            f"KB_SYNC_NAMESPACE={ns!r} is malformed; use 1-40 of a-z 0-9 . _ - "
            "starting with a letter or digit"
        )
    record_dir = env.get("KB_SYNC_RECORD_DIR", "").strip() or "reports/runs"
    folder = env.get("KB_SYNC_FOLDER", "").strip() or ns
    if "/" in folder or len(folder) > 100 or not folder.isprintable() or folder == ".kb-sync":
        raise ConfigError(
            f"KB_SYNC_FOLDER={folder!r} (or --folder) is not a folder name; use up to 100 "
            "printable characters without '/' (default: the namespace)"
        )
    return Settings(
        legacy_namespace=None if explicit else DEFAULT_NAMESPACE,
        folder=folder,
        record_dir=record_dir,
        api_key=key,
        agent_id=agent,
        base_url=base,
        embedding_model=model,
        index_timeout=timeout,
        namespace=ns,
        cassette=env.get("KB_SYNC_CASSETTE", "").strip() or None,
        history_keep=_history_keep(env.get("KB_SYNC_HISTORY", "").strip()),
    )
