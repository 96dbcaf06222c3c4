"""The questions file: what the agent must be able to answer, read with the stdlib ``tomllib``.

The shape (other tools write it too; see ``docs/questions.md``)::

    [[question]]
    ask = "Сколько стоила аренда во втором квартале 2025 года?"
    expect = ["1 200 000"]   # every string must be found (case-insensitive, whitespace-normalised)
    file = "2025-Q2.md"       # optional: the evidence must come from this file's current document

A malformed file is one :class:`~sync.errors.InputError` line (exit 5) naming the file, the
question's number (1-based, in file order) and the fix. :func:`dumps` writes the same shape.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

KEYS = ("ask", "expect", "file")
_TABLE = re.compile(r"^\s*\[\[\s*question\s*\]\]")
_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True)
class Question:
    number: int  # 1-based position in the file
    ask: str
    expect: tuple[str, ...]
    file: str | None = None

    @property
    def digest(self) -> str:
        """16 hex digits of the question's content (ask, expect, file): what an ElevenLabs
        agent test made from it is recognised by, so an unchanged question reuses its test."""
        data = json.dumps([self.ask, list(self.expect), self.file], ensure_ascii=False)
        return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "ask": self.ask,
            "expect": list(self.expect),
            "file": self.file,
        }


def normalise(text: str) -> str:
    """How expected strings are compared: NFC, case-folded, whitespace runs as one space
    (non-breaking and narrow spaces included, so ``1 200 000`` matches ``1\u00a0200\u00a0000``)."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def load_questions(path: str | Path) -> list[Question]:
    """The questions of ``path``, validated; one-line :class:`InputError` otherwise."""
    p = Path(path)
    try:
        raw = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{p}: no such questions file; check --questions") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read the questions file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{p}: not UTF-8; save the questions file as UTF-8") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(_syntax_error(p, raw, str(exc))) from None
    items = data.get("question")
    if not isinstance(items, list) or not items:
        raise InputError(
            f'{p}: no [[question]] tables; add at least one [[question]] with ask = "..." '
            'and expect = ["..."]'
        )
    return [_question(p, i, item) for i, item in enumerate(items, 1)]


def _syntax_error(p: Path, raw: str, message: str) -> str:
    m = _AT.search(message)
    line = int(m.group(1)) if m else 0
    number = sum(1 for ln in raw.splitlines()[:line] if _TABLE.match(ln))
    where = f"question #{number}" if number else "before the first [[question]]"
    what = _AT.sub("", message).strip()
    return (
        f"{p}: {where}: not valid TOML at line {line}: {what}; fix the syntax (strings in "
        'double quotes, expect = ["..."])'
    )


def _question(p: Path, n: int, item: Any) -> Question:
    at = f"{p}: question #{n}"
    if not isinstance(item, dict):
        raise InputError(f"{at}: not a table; write it as [[question]] with ask and expect")
    unknown = sorted(set(item) - set(KEYS))
    if unknown:
        raise InputError(f"{at}: unknown key {unknown[0]!r}; the keys are ask, expect, file")
    ask = item.get("ask")
    if not isinstance(ask, str) or not ask.strip():
        raise InputError(f'{at}: ask must be a non-empty string; write ask = "the question"')
    expect = item.get("expect")
    if isinstance(expect, str):
        raise InputError(
            f"{at}: expect is a string; write it as a list: expect = [{_toml_string(expect)}]"
        )
    if (
        not isinstance(expect, list)
        or not expect
        or not all(isinstance(e, str) and e.strip() for e in expect)
    ):
        raise InputError(
            f'{at}: expect must be a non-empty list of non-empty strings; write expect = ["..."]'
        )
    file = item.get("file")
    if file is not None and (
        not isinstance(file, str) or not file.endswith(".md") or "/" in file or "\\" in file
    ):
        raise InputError(
            f'{at}: file must be a document\'s file name in --dir, like "2025-Q2.md" '
            f"(got {file!r}); fix it or leave file out"
        )
    return Question(n, ask.strip(), tuple(expect), file)


# --------------------------------------------------------------------------- writing


def _toml_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a TOML basic string


def dumps(
    questions: Iterable[Question], header: str = "", notes: dict[int, str] | None = None
) -> str:
    """The TOML text of ``questions`` (``notes``: a comment line above question N)."""
    lines = [f"# {ln}".rstrip() for ln in header.splitlines()]
    for q in questions:
        lines.append("")
        if notes and q.number in notes:
            lines.append(f"# {notes[q.number]}")
        lines.append("[[question]]")
        lines.append(f"ask = {_toml_string(q.ask)}")
        lines.append("expect = [" + ", ".join(_toml_string(e) for e in q.expect) + "]")
        if q.file:
            lines.append(f"file = {_toml_string(q.file)}")
    return "\n".join(lines).lstrip("\n") + "\n"
