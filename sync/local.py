"""The local side: ``*.md`` files of a folder, read strictly, before anything is written."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .guards import RAG_MIN_BYTES, is_small
from .log import event
from .naming import collision_key, fingerprint

MAX_CHARS = 300_000  # ElevenLabs' non-enterprise limit per document
__all__ = ["MAX_CHARS", "RAG_MIN_BYTES", "LocalDoc", "normalise", "read_doc", "read_folder"]


@dataclass(frozen=True)
class LocalDoc:
    file: str  # file name relative to the folder, e.g. "2025-Q1.md"
    text: str  # normalised: UTF-8, LF line endings, no BOM
    fingerprint: str
    size_bytes: int

    @property
    def small(self) -> bool:
        return is_small(self.size_bytes)


def normalise(text: str) -> str:
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_doc(path: Path, root: Path) -> LocalDoc:
    name = path.name
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise InputError(
                f"{path}: symlink cannot be followed ({getattr(exc, 'strerror', None) or exc}); "
                "replace it with the file"
            ) from None
        if not target.is_file():
            raise InputError(f"{path}: symlink leads to {target}, not a file; remove it")
        if root not in target.parents:
            raise InputError(
                f"{path}: symlink leads outside {root} (to {target}); copy the file into the "
                "folder instead"
            )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"{path}: cannot be read ({exc.strerror}); fix its permissions or remove it"
        ) from None
    if b"\x00" in raw:
        raise InputError(f"{path}: is binary (contains NUL bytes), not markdown; remove it")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: is not valid UTF-8 (byte {exc.start}); re-save it as UTF-8"
        ) from None
    text = normalise(text)
    if not text.strip():
        raise InputError(f"{path}: is empty; add content or remove the file")
    if len(text) > MAX_CHARS:
        raise InputError(
            f"{path}: has {len(text)} characters, over ElevenLabs' limit of {MAX_CHARS}; "
            "split it into several files"
        )
    return LocalDoc(
        file=name,
        text=text,
        fingerprint=fingerprint(text),
        size_bytes=len(text.encode("utf-8")),
    )


def read_folder(folder: str | os.PathLike[str]) -> list[LocalDoc]:
    """Read every ``*.md`` directly in ``folder``, sorted by name. Any problem stops the run."""
    if not str(folder).strip():
        raise InputError("--dir is empty; pass the documents' folder, e.g. --dir quarters")
    root = Path(folder)
    if not root.exists():
        raise InputError(f"{root}: folder does not exist; pass --dir with the documents' folder")
    if not root.is_dir():
        raise InputError(f"{root}: is not a folder; pass --dir with the documents' folder")
    root = root.resolve()
    try:
        paths = sorted(p for p in root.iterdir() if p.name.endswith(".md"))
    except OSError as exc:
        raise InputError(
            f"{root}: folder cannot be read ({exc.strerror}); fix its permissions"
        ) from None
    docs: list[LocalDoc] = []
    seen: dict[str, str] = {}
    for p in paths:
        if p.is_dir():
            continue
        if not p.is_symlink() and not p.is_file():  # a FIFO or socket: reading could hang
            event("file.skipped", logging.WARNING, file=p.name, note="not a regular file")
            continue
        key = collision_key(p.name)
        if key in seen:
            raise InputError(
                f"{p}: and {seen[key]} differ only in case or Unicode form and would map to "
                "one document name; rename one of them"
            )
        seen[key] = p.name
        docs.append(read_doc(p, root))
    return docs
