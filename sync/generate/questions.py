"""``kb-sync generate --questions FILE``: a default questions file from the monitoring data.

One question per question field of each record (default: the first two top-level scalar
fields other than the key, e.g. ``status`` and ``summary``; ``--question-fields a,b.c``
picks others, dots walk nested objects), asked with ``--question-template`` (default
``{key}: {field}?``; ``{title}``, ``{key}``, ``{field}`` are filled in), expecting the value
as the document renders it (a value over 80 characters: its first sentence), from the
record's document (``file``). The record's title heads each question as a comment.

A question is only written when its expected string is in the document generate wrote, and
its document can be retrieved: a document under the RAG floor goes in as ``usage_mode:
prompt``, which retrieval never returns, so its record gets no question (``--merge-small``
puts it in the combined document, which does). ``kb-sync verify --questions FILE`` then checks
that the facts made it through to the agent's retrieval.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..guards import is_small
from ..questions import Question, dumps, normalise
from .records import Record
from .render import Doc, md_value

DEFAULT_TEMPLATE = "{key}: {field}?"
DEFAULT_FIELDS = 2
LONG = 80
HEADER = (
    "Questions the agent must answer, written by `kb-sync generate --questions`.\n"
    "Check them after a push: kb-sync verify --dir DIR --questions THIS_FILE (docs/questions.md)."
)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def fields_of(rec: Record, wanted: Sequence[str] | None) -> list[tuple[str, Any]]:
    """``(field, value)`` for the record's question fields (missing ones left out)."""
    if wanted is None:
        own = [(k, v) for k, v in rec.data.items() if _is_scalar(v) and v not in (None, "")]
        return [(k, v) for k, v in own if str(v) != rec.key][:DEFAULT_FIELDS]
    out = []
    for path in wanted:
        node: Any = rec.data
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if _is_scalar(node) and node not in (None, ""):
            out.append((path, node))
    return out


def expected(value: Any) -> str:
    """The value as the document shows it; a long one cut to its first sentence."""
    text = " ".join(md_value(value).split())
    if len(text) <= LONG:
        return text
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return first if 10 <= len(first) <= LONG else ""


def parse_fields(value: str | None) -> list[str] | None:
    if value is None:
        return None
    fields = [f.strip() for f in value.split(",") if f.strip()]
    if not fields:
        raise ConfigError("--question-fields: name at least one field, e.g. status,metrics.uptime")
    return fields


def build(
    records: Sequence[Record],
    docs: Sequence[Doc],
    *,
    fields: Sequence[str] | None = None,
    template: str = DEFAULT_TEMPLATE,
) -> tuple[list[Question], dict[int, str]]:
    """The questions and, per question number, its comment (the record's title)."""
    by_key = {k: d for d in docs for k in d.keys}
    questions: list[Question] = []
    notes: dict[int, str] = {}
    for rec in records:
        doc = by_key.get(rec.key)
        if doc is None or is_small(len(doc.data)):
            continue
        text = normalise(doc.text)
        for field, value in fields_of(rec, fields):
            want = expected(value)
            if not want or normalise(want) not in text:
                continue
            ask = _ask(template, rec, field)
            questions.append(Question(len(questions) + 1, ask, (want,), doc.filename))
            notes[len(questions)] = f"{rec.title} ({rec.key}, {field})"
    return questions, notes


def _ask(template: str, rec: Record, field: str) -> str:
    try:
        return template.format(title=rec.title, key=rec.key, field=field)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"--question-template {template!r}: {exc}; use only {{title}}, {{key}} and {{field}}"
        ) from None


def render(questions: Sequence[Question], notes: dict[int, str]) -> str:
    return dumps(questions, HEADER, notes)


def changed(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") != text
    except (OSError, UnicodeDecodeError):
        return True


# --------------------------------------------------------------------------- the command


def add_options(p: Any) -> None:
    """generate's ``--questions`` options (an argument group of their own)."""
    g = p.add_argument_group("questions")
    g.add_argument(
        "--questions",
        metavar="FILE",
        help="also write a default questions file (TOML) from the records, for "
        "`kb-sync verify --questions FILE` after the push (docs/questions.md)",
    )
    g.add_argument(
        "--question-fields",
        metavar="FIELD[,FIELD]",
        help="record fields to ask about, dots for nested ones (default: the first two "
        "top-level scalar fields other than the key)",
    )
    g.add_argument(
        "--question-template",
        default=DEFAULT_TEMPLATE,
        metavar="TEXT",
        help="how a question is asked, with {title}, {key}, {field} "
        f"(default: {DEFAULT_TEMPLATE!r})",
    )


def check_options(args: Any) -> None:
    """Bad question options are bad input (exit 5), found before the source is read."""
    if getattr(args, "questions", None) is None:
        return
    parse_fields(args.question_fields)
    try:
        args.question_template.format(title="", key="", field="")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"--question-template {args.question_template!r}: {exc}; use only {{title}}, "
            "{key} and {field}"
        ) from None


def write_questions(
    args: Any, records: Sequence[Record], docs: Sequence[Doc], line: Any
) -> dict[str, Any]:
    """``--questions FILE``: write it (atomically, only when it changed); the summary part."""
    if getattr(args, "questions", None) is None:
        return {}
    from .files import write_atomic

    qs, notes = build(
        records, docs, fields=parse_fields(args.question_fields), template=args.question_template
    )
    path = Path(args.questions)
    text = render(qs, notes)
    new = changed(path, text)
    verb = "would write" if args.dry_run else "wrote" if new else "unchanged"
    if new and not args.dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text.encode("utf-8"))
    line(f"questions {verb} file={path} questions={len(qs)}")
    return {"questions": {"file": str(path), "count": len(qs), "written": new and not args.dry_run}}
