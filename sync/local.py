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
__all__ = [
    "MAX_CHARS",
    "RAG_MIN_BYTES",
    "Folder",
    "LocalDoc",
    "normalise",
    "read_doc",
    "read_folder",
]


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


MARKDOWN_LIKE = (".md", ".markdown", ".mdown", ".mkd")  # casefolded: what a person may mean
SKIPPED_SHOWN = 20  # names in the folder.skipped line; its count says how many in all


class Folder(list[LocalDoc]):
    """The documents of a folder (a list, sorted by name), and what in it is not synced:
    ``skipped``, every visible entry that is not a ``*.md`` file (a folder ends in ``/``)."""

    def __init__(self, docs: list[LocalDoc], skipped: tuple[str, ...] = ()) -> None:
        super().__init__(docs)
        self.skipped = skipped

    def log_skipped(self, root: str | os.PathLike[str]) -> None:
        """The one ``folder.skipped`` warning naming what is not synced (none: no line). The
        command logs it, once, after its own first word about the folder (``folder.empty``)."""
        if self.skipped:
            _skipped_event(Path(root), self.skipped)

    @property
    def markdown_like(self) -> tuple[str, ...]:
        """Skipped files a person may take for synced ones: ``UPPER.MD``, ``x.markdown``."""
        return tuple(
            n for n in self.skipped if not n.endswith("/") and n.casefold().endswith(MARKDOWN_LIKE)
        )


def synced_name(name: str) -> bool:
    """The file-name contract: ``*.md``, lower case, exactly (``.MD`` is not synced)."""
    return name.endswith(".md")


def skipped_name(p: Path) -> str | None:
    """How a skipped entry is named (a folder with a ``/``), or None: synced or hidden
    (``.gitkeep``, ``.DS_Store``, an editor's or generate's temporary file)."""
    if p.name.startswith(".") and not synced_name(p.name):
        return None
    if p.is_dir():
        return p.name + "/"
    return None if synced_name(p.name) else p.name


def _skipped_event(root: Path, skipped: tuple[str, ...]) -> None:
    event(
        "folder.skipped",
        logging.WARNING,
        dir=str(root),
        count=len(skipped),
        files=list(skipped[:SKIPPED_SHOWN]),
        note="only *.md files are synced (lower-case .md, directly in the folder): rename a "
        "file to *.md to sync it",
    )


def read_folder(folder: str | os.PathLike[str]) -> Folder:
    """Read every ``*.md`` directly in ``folder``, sorted by name. Any problem stops the run.
    Every other visible entry is in the answer's ``skipped`` (:meth:`Folder.log_skipped`)."""
    if not str(folder).strip():
        raise InputError("--dir is empty; pass the documents' folder, e.g. --dir quarters")
    root = Path(folder)
    if not root.exists():
        raise InputError(f"{root}: folder does not exist; pass --dir with the documents' folder")
    if not root.is_dir():
        raise InputError(f"{root}: is not a folder; pass --dir with the documents' folder")
    root = root.resolve()
    try:
        entries = sorted(root.iterdir())
    except OSError as exc:
        raise InputError(
            f"{root}: folder cannot be read ({exc.strerror}); fix its permissions"
        ) from None
    skipped = tuple(n for n in map(skipped_name, entries) if n is not None)
    docs: list[LocalDoc] = []
    seen: dict[str, str] = {}
    for p in entries:
        if not synced_name(p.name) or p.is_dir():
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
    return Folder(docs, skipped)
