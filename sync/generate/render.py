"""Rendering: the Jinja2 environment, its markdown helpers, one document per record.

Everything is rendered in memory before the folder is touched. The output is normalised
(LF, no trailing spaces, no runs of blank lines, one final newline) and holds nothing from the
clock, so the same record always gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, SourceUnhealthy
from ..guards import RAG_MIN_BYTES, is_small
from .records import Record

if TYPE_CHECKING:  # jinja2 loads only when a command renders (not for push, status...)
    import jinja2

COMBINED_NAME = "_combined-small.md"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
DEFAULT_TEMPLATE = TEMPLATES_DIR / "quarter.md.j2"
COMBINED_TEMPLATE = TEMPLATES_DIR / "combined-small.md.j2"


@dataclass
class Doc:
    filename: str
    text: str
    keys: list[str]

    @property
    def data(self) -> bytes:
        return self.text.encode("utf-8")


# --------------------------------------------------------------------------- markdown helpers


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _is_table(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _compact(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))


def md_value(v: Any) -> str:
    """A value after ``- **key**: `` or ``- ``: multi-line strings stay in the list item."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if isinstance(v, str):
        lines = v.replace("\r\n", "\n").replace("\r", "\n").strip("\n").split("\n")
        return "\n  ".join(line.rstrip() for line in lines) if v.strip() else "—"
    return _compact(v)


def md_cell(v: Any) -> str:
    text = md_value(v).replace("\n  ", "<br>") if _is_scalar(v) else _compact(v)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def md_heading(v: Any) -> str:
    return " ".join(str(v).split()) or "—"


def md_fields(items: Sequence[tuple[str, Any]]) -> str:
    return "\n".join(f"- **{md_heading(k)}**: {md_value(v)}" for k, v in items)


def columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for row in rows:
        for k in row:
            cols.setdefault(k, None)
    return list(cols)


def md_table(rows: Sequence[Mapping[str, Any]]) -> str:
    cols = columns(rows)
    lines = [
        "| " + " | ".join(md_cell(c) for c in cols) + " |",
        "|" + " --- |" * len(cols),
    ]
    lines += ["| " + " | ".join(md_cell(row.get(c)) for c in cols) + " |" for row in rows]
    return "\n".join(lines)


def md_bullets(items: Sequence[Any]) -> str:
    return "\n".join(f"- {md_value(x)}" for x in items)


def _hashes(level: int) -> str:
    return "#" * max(1, min(int(level), 6))


def normalise(text: str) -> str:
    """LF endings, no trailing spaces, no runs of blank lines, exactly one final newline."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- templates


def make_env(template_dir: Path) -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        autoescape=False,  # markdown, not HTML
        undefined=jinja2.ChainableUndefined,  # a missing field renders empty, never crashes
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.tests["scalar"] = _is_scalar
    env.tests["table"] = _is_table
    env.filters.update(
        {
            "md_value": md_value,
            "md_cell": md_cell,
            "md_heading": md_heading,
            "md_inline": md_heading,
            "md_fields": md_fields,
            "md_table": md_table,
            "md_bullets": md_bullets,
            "columns": columns,
            "hashes": _hashes,
            "scalars": lambda d: [(k, v) for k, v in d.items() if _is_scalar(v)],
            "nested": lambda d: [(k, v) for k, v in d.items() if not _is_scalar(v)],
        }
    )
    return env


def load_template(path: Path) -> jinja2.Template:
    import jinja2

    if not path.is_file():
        raise InputError(f"--template {path}: no such file; pass an existing Jinja2 template")
    try:
        return make_env(path.parent).get_template(path.name)
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(
            f"--template {path}: line {exc.lineno}: {exc.message}; fix the template"
        ) from exc
    except (jinja2.TemplateError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--template {path}: cannot load it: {exc}") from exc


def render_record(tpl: jinja2.Template, rec: Record, level: int = 1) -> str:
    import jinja2

    try:
        text = tpl.render(
            title=rec.title, key=rec.key, record=rec.raw, fields=rec.data, level=level
        )
    except jinja2.TemplateError as exc:
        raise InputError(
            f"template {tpl.filename or tpl.name}: rendering record #{rec.index} "
            f"({rec.key!r}) failed: {exc}; fix the template"
        ) from exc
    return normalise(text)


def render_all(
    records: list[Record], tpl: jinja2.Template, *, merge_small: bool
) -> tuple[list[Doc], list[tuple[Record, int]]]:
    """The documents, and the records whose own document is under the RAG floor (with its
    size). With ``merge_small`` those go into one :data:`COMBINED_NAME` document instead."""
    docs: list[Doc] = []
    small: list[tuple[Record, int]] = []
    for rec in records:
        text = render_record(tpl, rec)
        size = len(text.encode("utf-8"))
        if is_small(size):
            small.append((rec, size))
            if merge_small:
                continue
        docs.append(Doc(rec.filename, text, [rec.key]))
    if merge_small and small:
        docs.append(_combined(docs, [rec for rec, _ in small], tpl))
    return docs, small


def _combined(docs: list[Doc], small: list[Record], tpl: jinja2.Template) -> Doc:
    if any(d.filename.casefold() == COMBINED_NAME.casefold() for d in docs):
        raise SourceUnhealthy(
            f"a record's key maps to {COMBINED_NAME}, the --merge-small document; "
            "rename the record or drop --merge-small",
            reason="schema",
        )
    combined = make_env(COMBINED_TEMPLATE.parent).get_template(COMBINED_TEMPLATE.name)
    text = combined.render(
        docs=[render_record(tpl, rec, level=2).rstrip("\n") for rec in small],
        keys=[rec.key for rec in small],
        min_bytes=RAG_MIN_BYTES,
    )
    return Doc(COMBINED_NAME, normalise(text), [rec.key for rec in small])
