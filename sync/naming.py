"""The ownership convention: what kb-sync creates is recognisable from ElevenLabs alone.

A managed document is named ``<namespace>:<file name>#<fingerprint>``, for example
``kb-sync:2025-Q1.md#3f2a9c0d1e4b5a67``: the namespace says the tool owns it (and lets the
listing be narrowed by name prefix), the file name says which local file it holds, and the
fingerprint (the first 16 hex digits of the SHA-256 of the normalised UTF-8 text) says which
version. Anything else is unmanaged and never modified, detached or deleted.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass

FINGERPRINT_LEN = 16


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:FINGERPRINT_LEN]


def prefix(namespace: str) -> str:
    return f"{namespace}:"


def managed_name(namespace: str, file: str, fp: str) -> str:
    return f"{namespace}:{file}#{fp}"


@dataclass(frozen=True)
class ManagedName:
    file: str
    fingerprint: str


def parse(name: str, namespace: str) -> ManagedName | None:
    p = prefix(namespace)
    if not name.startswith(p):
        return None
    rest = name[len(p) :]
    file, sep, fp = rest.rpartition("#")
    if not sep or not file or len(fp) != FINGERPRINT_LEN:
        return None
    if any(c not in "0123456789abcdef" for c in fp):
        return None
    return ManagedName(file=file, fingerprint=fp)


def legacy_keys(file: str) -> set[str]:
    """Names the old script gave a file's document: the file name, or its stem."""
    stem = file[:-3] if file.lower().endswith(".md") else file
    return {file, stem}


def collision_key(file: str) -> str:
    """Two files with the same key would be confused by a person reading the agent's list."""
    return unicodedata.normalize("NFC", file).casefold()
