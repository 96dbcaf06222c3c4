"""``kb-sync generate``: from the monitoring API's JSON to one markdown document per record.

The chain the cron runs (``sync-with-monitoring.py --check --upload-to-elevenlabs``):

1. fetch the source (``BIRBY_API_URL`` or ``--source``: an http(s) URL, a ``file://`` URL or a
   path) with a timeout and bounded retries (urllib3 ``Retry`` on the session's adapter);
2. parse it and find the records (see ``docs/generate.md`` for the default shape and the
   mapping options), validate every record, name its file after its key;
3. ``--check``: gate on the source's health (reachable, valid JSON, non-empty, the record count
   not dropped by more than ``--max-drop`` against the ``*.md`` files in DIR);
4. render every record with a Jinja2 template, all in memory, before anything is touched;
5. write the changed documents atomically, leave unchanged ones alone (bytes and mtime),
   remove the documents of records that disappeared, under the mass-delete guard;
6. ``--upload``: run ``kb-sync push --dir DIR`` in this process.

A bad source never changes DIR: everything that can fail on the source fails before step 5.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from urllib.request import url2pathname

import jinja2
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import __version__
from .errors import ConfigError, ExitCode, GuardRefused, InputError, SyncError

log = logging.getLogger("sync.generate")

SOURCE_ENV = "BIRBY_API_URL"
DEFAULT_OUT = "quarters"
MIN_RAG_BYTES = 500  # documents under 500 UTF-8 bytes cannot be RAG-indexed
COMBINED_NAME = "_combined-small.md"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_TEMPLATE = TEMPLATES_DIR / "quarter.md.j2"
COMBINED_TEMPLATE = TEMPLATES_DIR / "combined-small.md.j2"
RECORDS_KEYS = ("records", "quarters", "items", "data")
KEY_FIELDS = ("quarter", "id", "key")
TITLE_FIELDS = ("title", "name")
MAX_NAME_BYTES = 200  # file names stay well under the usual 255-byte limit
MAX_SOURCE_BYTES = 64 * 1024 * 1024
RETRY_STATUSES = (429, 500, 502, 503, 504)
BACKOFF_FACTOR = 0.2
BACKOFF_MAX = 5.0


class SourceUnhealthy(SyncError):
    """The monitoring source is down, slow, invalid, empty, drifted or shrank too much.

    ``reason`` is one short token for the status line and monitoring: ``unreachable``,
    ``timeout``, ``http_<status>``, ``invalid_json``, ``empty``, ``schema`` or ``dropped``.
    """

    exit_code = ExitCode.SOURCE_UNHEALTHY

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------- command line


def add_parser(subparsers: Any) -> None:
    """Register ``generate`` on the CLI's ``_SubParsersAction``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "generate",
        help="render the monitoring JSON into one markdown document per record",
        description=(
            "Fetch the monitoring JSON, render one markdown document per record into DIR, "
            "optionally gate on the source's health (--check) and push (--upload)."
        ),
    )
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("source")
    src.add_argument(
        "--source",
        metavar="URL|FILE",
        help=f"http(s) URL, file:// URL or path of the JSON (default: ${SOURCE_ENV})",
    )
    src.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="connect and read timeout of each HTTP attempt (default: 30)",
    )
    src.add_argument(
        "--retries",
        type=int,
        default=3,
        metavar="N",
        help="retries after a connection error, timeout, 429 or 5xx (default: 3)",
    )
    shape = p.add_argument_group("payload shape")
    shape.add_argument(
        "--records-key",
        metavar="KEY",
        help="key of the record list in an object payload; dots walk nested objects "
        "(default: the payload if it is a list, else the first list of "
        + "/".join(RECORDS_KEYS)
        + ")",
    )
    shape.add_argument(
        "--key-field",
        metavar="FIELD",
        help="record field that names the file (default: the first of "
        + "/".join(KEY_FIELDS)
        + " the first record has)",
    )
    shape.add_argument(
        "--title-field",
        metavar="FIELD",
        help="record field used as the document title (default: title, then name, then the key)",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"folder of the documents; generate owns its *.md files (default: {DEFAULT_OUT})",
    )
    out.add_argument("--template", metavar="FILE", help="Jinja2 template of one record's document")
    out.add_argument(
        "--merge-small",
        action="store_true",
        help=f"merge records whose document is under {MIN_RAG_BYTES} bytes into {COMBINED_NAME}",
    )
    out.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="allow removing more than half of the existing documents",
    )
    out.add_argument(
        "--dry-run", action="store_true", help="say what would be written or removed; write nothing"
    )
    out.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    chk = p.add_argument_group("monitoring")
    chk.add_argument(
        "--check",
        action="store_true",
        help="gate on the source's health first; when unhealthy print why, exit 7, "
        "change nothing and upload nothing",
    )
    chk.add_argument(
        "--max-drop",
        type=float,
        default=0.5,
        metavar="SHARE",
        help="--check: largest allowed drop of the record count against the *.md files "
        "in DIR, 0..1 (default: 0.5)",
    )
    up = p.add_argument_group("upload")
    up.add_argument(
        "--upload",
        action="store_true",
        help="after a healthy generate, run `kb-sync push --dir DIR` in this process",
    )
    up.add_argument("--strict-hash", action="store_true", help="passed to push")
    up.add_argument("--index-wait", type=float, metavar="SECONDS", help="passed to push")
    up.add_argument("--small-docs", choices=("prompt", "skip", "fail"), help="passed to push")


# --------------------------------------------------------------------------- data


@dataclass
class Record:
    index: int
    key: str
    title: str
    data: dict[str, Any]  # the record without its title field
    filename: str
    raw: dict[str, Any]


@dataclass
class Doc:
    filename: str
    text: str
    keys: list[str]

    @property
    def data(self) -> bytes:
        return self.text.encode("utf-8")


@dataclass
class Plan:
    docs: list[Doc]
    small: list[tuple[Record, int]]  # records whose own document is under MIN_RAG_BYTES
    write: list[tuple[Doc, str]] = field(default_factory=list)  # (doc, "new"|"changed")
    unchanged: list[Doc] = field(default_factory=list)
    remove: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------- fetch


def resolve_source(source: str | None) -> str:
    src = (source or os.environ.get(SOURCE_ENV, "")).strip()
    if not src:
        raise ConfigError(
            f"no source: pass --source URL|FILE or set {SOURCE_ENV} "
            "(e.g. https://monitoring.example/json_ai.php)"
        )
    return src


def display_source(source: str) -> str:
    """The source for logs and status lines: no user:password, no query string (tokens)."""
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "..." if parts.query else "", ""))
    return source


def _session(retries: int) -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        allowed_methods=frozenset({"GET"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=BACKOFF_FACTOR,
        backoff_max=BACKOFF_MAX,
        raise_on_status=False,  # the last answer comes back; its status is reported below
        respect_retry_after_header=True,
    )
    s = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.headers.update(
        {"Accept": "application/json", "User-Agent": f"kb-sync/{__version__} (generate)"}
    )
    return s


def _is_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, requests.Timeout) or "timed out" in str(seen).lower():
            return True
        seen = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
    return False


def fetch(source: str, *, timeout: float, retries: int) -> bytes:
    """The source's bytes. Every failure is :class:`SourceUnhealthy` (or a ConfigError)."""
    shown = display_source(source)
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        attempts = retries + 1
        try:
            with _session(retries) as s:
                resp = s.get(source, timeout=timeout)
        except requests.RequestException as exc:
            if _is_timeout(exc):
                raise SourceUnhealthy(
                    f"{shown} did not answer within {timeout:g}s "
                    f"({attempts} attempt(s)); is the monitoring API up?",
                    reason="timeout",
                ) from exc
            raise SourceUnhealthy(
                f"{shown} is unreachable after {attempts} attempt(s): "
                f"{type(exc).__name__}; check {SOURCE_ENV} and the network",
                reason="unreachable",
            ) from exc
        if resp.status_code >= 400:
            raise SourceUnhealthy(
                f"{shown} answered HTTP {resp.status_code} after {attempts} attempt(s)",
                reason=f"http_{resp.status_code}",
            )
        body = resp.content
        log.info(
            "generate.fetched source=%s status=%d bytes=%d", shown, resp.status_code, len(body)
        )
    elif parts.scheme == "file" or (parts.scheme == "" or len(parts.scheme) == 1):
        # A plain path (one-letter "schemes" are Windows drive letters) or a file:// URL.
        path = Path(url2pathname(parts.path)) if parts.scheme == "file" else Path(source)
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise SourceUnhealthy(
                f"cannot read the source file {path}: {exc.strerror or exc}; "
                f"check --source / {SOURCE_ENV}",
                reason="unreachable",
            ) from exc
        log.info("generate.fetched source=%s bytes=%d", path, len(body))
    else:
        raise ConfigError(
            f"{SOURCE_ENV}/--source {shown!r} has an unsupported scheme {parts.scheme!r}; "
            "use an http(s) URL, a file:// URL or a path"
        )
    if len(body) > MAX_SOURCE_BYTES:
        raise SourceUnhealthy(
            f"{shown} sent {len(body)} bytes, more than the {MAX_SOURCE_BYTES} accepted",
            reason="invalid_json",
        )
    return body


def parse(body: bytes, shown: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        what = "empty body" if not body.strip() else "not valid UTF-8 JSON"
        raise SourceUnhealthy(
            f"{shown} sent {what}{where} ({len(body)} bytes): truncated or not JSON",
            reason="invalid_json",
        ) from exc


# --------------------------------------------------------------------------- records


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object with keys {list(value)[:8]}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return f"a {type(value).__name__}" if value is not None else "null"


def find_records(payload: Any, records_key: str | None) -> list[Any]:
    if records_key:
        node: Any = payload
        if isinstance(node, dict) and records_key in node:
            node = node[records_key]
        else:
            for part in records_key.split("."):
                if not isinstance(node, dict) or part not in node:
                    raise SourceUnhealthy(
                        f"--records-key {records_key!r}: the payload has no {part!r} "
                        f"(it is {_kind(node)}); fix --records-key or the source",
                        reason="schema",
                    )
                node = node[part]
        if not isinstance(node, list):
            raise SourceUnhealthy(
                f"--records-key {records_key!r} holds {_kind(node)}, not a list of records",
                reason="schema",
            )
        return node
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for k in RECORDS_KEYS:
            if isinstance(payload.get(k), list):
                return list(payload[k])
    raise SourceUnhealthy(
        f"no list of records in the payload (it is {_kind(payload)}); expected a list or an "
        f"object with one of {'/'.join(RECORDS_KEYS)}, or pass --records-key KEY",
        reason="schema",
    )


def slugify(key: str) -> str:
    """Keep Unicode letters and digits, ``-``, ``_`` and ``.``; anything else becomes ``-``."""
    text = unicodedata.normalize("NFC", key.strip())
    chars = [c if unicodedata.category(c)[0] in "LN" or c in "-_." else "-" for c in text]
    return re.sub(r"-{2,}", "-", "".join(chars)).strip("-.")


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return str(value).strip() or None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def build_records(
    items: list[Any], *, key_field: str | None, title_field: str | None
) -> list[Record]:
    if not items:
        raise SourceUnhealthy("the source holds no records (an empty list)", reason="empty")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise SourceUnhealthy(
                f"record #{i} is {_kind(item)}, not an object; the payload does not fit",
                reason="schema",
            )
    first: dict[str, Any] = items[0]
    kf = key_field or next((k for k in KEY_FIELDS if k in first), KEY_FIELDS[0])
    records: list[Record] = []
    seen: dict[str, Record] = {}
    for i, item in enumerate(items):
        if kf not in item:
            hint = "" if key_field else " (chosen from record #0; or pass --key-field)"
            raise SourceUnhealthy(
                f"record #{i} has no key field {kf!r}{hint}; its fields: {list(item)[:10]}",
                reason="schema",
            )
        key = _scalar_text(item[kf])
        if key is None:
            raise SourceUnhealthy(
                f"record #{i}: key field {kf!r} is {_kind(item[kf])}, not a non-empty "
                "string or integer",
                reason="schema",
            )
        if title_field:
            if title_field not in item:
                raise SourceUnhealthy(
                    f"record #{i} ({kf}={key!r}) has no title field {title_field!r}",
                    reason="schema",
                )
            tf: str | None = title_field
        else:
            tf = next((t for t in TITLE_FIELDS if t in item and item[t] not in (None, "")), None)
        title = key if tf is None else (_scalar_text(item[tf]) or str(item[tf]))
        slug = slugify(key)
        if not slug:
            raise SourceUnhealthy(
                f"record #{i}: key {key!r} ({kf}) leaves no letters or digits for a file name",
                reason="schema",
            )
        filename = slug + ".md"
        if len(filename.encode("utf-8")) > MAX_NAME_BYTES:
            raise SourceUnhealthy(
                f"record #{i}: key {kf}={key[:40]!r}... makes a file name over "
                f"{MAX_NAME_BYTES} bytes; pick a shorter --key-field",
                reason="schema",
            )
        data = {k: v for k, v in item.items() if k != tf}
        rec = Record(index=i, key=key, title=title, data=data, filename=filename, raw=item)
        folded = filename.casefold()  # case-insensitive file systems would merge these
        if folded in seen:
            other = seen[folded]
            raise SourceUnhealthy(
                f"records #{other.index} ({kf}={other.key!r}) and #{i} ({kf}={key!r}) both "
                f"map to the file {filename}; make the keys unique or pick another --key-field",
                reason="schema",
            )
        seen[folded] = rec
        records.append(rec)
    return records


# --------------------------------------------------------------------------- rendering


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


def make_env(template_dir: Path) -> jinja2.Environment:
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
    docs: list[Doc] = []
    small: list[tuple[Record, int]] = []
    for rec in records:
        text = render_record(tpl, rec)
        size = len(text.encode("utf-8"))
        if size < MIN_RAG_BYTES:
            small.append((rec, size))
            if merge_small:
                continue
        docs.append(Doc(rec.filename, text, [rec.key]))
    if merge_small and small:
        if any(d.filename.casefold() == COMBINED_NAME.casefold() for d in docs):
            raise SourceUnhealthy(
                f"a record's key maps to {COMBINED_NAME}, the --merge-small document; "
                "rename the record or drop --merge-small",
                reason="schema",
            )
        combined = make_env(COMBINED_TEMPLATE.parent).get_template(COMBINED_TEMPLATE.name)
        text = combined.render(
            docs=[render_record(tpl, rec, level=2).rstrip("\n") for rec, _ in small],
            keys=[rec.key for rec, _ in small],
            min_bytes=MIN_RAG_BYTES,
        )
        docs.append(Doc(COMBINED_NAME, normalise(text), [rec.key for rec, _ in small]))
    return docs, small


# --------------------------------------------------------------------------- files


def existing_docs(out: Path) -> list[Path]:
    if not out.exists():
        return []
    if not out.is_dir():
        raise InputError(f"--out {out} is not a folder; pass a folder for the documents")
    return sorted(p for p in out.glob("*.md") if not p.name.startswith(".") and p.is_file())


def plan_changes(out: Path, docs: list[Doc], small: list[tuple[Record, int]]) -> Plan:
    plan = Plan(docs=docs, small=small)
    wanted = {d.filename for d in docs}
    for d in docs:
        path = out / d.filename
        try:
            current: bytes | None = path.read_bytes()
        except FileNotFoundError:
            current = None
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}; check its permissions") from exc
        if current == d.data:
            plan.unchanged.append(d)
        else:
            plan.write.append((d, "new" if current is None else "changed"))
    plan.remove = [p for p in existing_docs(out) if p.name not in wanted]
    return plan


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- run


def _validate(args: argparse.Namespace) -> None:
    if not args.timeout > 0:
        raise ConfigError(f"--timeout {args.timeout:g}: use a number of seconds above 0")
    if args.retries < 0 or args.retries > 20:
        raise ConfigError(f"--retries {args.retries}: use 0..20")
    if not 0 <= args.max_drop <= 1:
        raise ConfigError(f"--max-drop {args.max_drop:g}: use a share from 0 to 1, e.g. 0.5")
    if args.index_wait is not None and not args.index_wait >= 0:
        raise ConfigError(f"--index-wait {args.index_wait:g}: use seconds >= 0")


def _emit(args: argparse.Namespace, line: str) -> None:
    if not getattr(args, "json", False):
        print(line, flush=True)


def _push_argv(args: argparse.Namespace, out: Path) -> list[str]:
    argv = ["push", "--dir", str(out)]
    if args.strict_hash:
        argv.append("--strict-hash")
    if args.index_wait is not None:
        argv += ["--index-wait", f"{args.index_wait:g}"]
    if args.small_docs:
        argv += ["--small-docs", args.small_docs]
    if args.allow_mass_delete:  # the same intent on the agent as on the folder
        argv.append("--allow-mass-delete")
    return argv


def upload(args: argparse.Namespace, out: Path) -> int:
    """``kb-sync push --dir OUT`` in this process; its exit code is ours."""
    try:
        from sync.cli import main as cli_main
    except ImportError as exc:
        raise SyncError(f"--upload: kb-sync push is not available ({exc})") from exc
    argv = _push_argv(args, out)
    log.info("generate.upload argv=%s", " ".join(argv))
    return int(cli_main(argv))


def run(args: argparse.Namespace) -> int:
    summary: dict[str, Any] = {"command": "generate", "check": bool(args.check)}
    try:
        code = _run(args, summary)
    except SourceUnhealthy as exc:
        summary.update(healthy=False, reason=exc.reason, detail=exc.message)
        log.error("generate.unhealthy reason=%s detail=%s", exc.reason, json.dumps(exc.message))
        _emit(
            args,
            f"source={summary.get('source', '-')} UNHEALTHY reason={exc.reason} "
            f"detail={json.dumps(exc.message, ensure_ascii=False)}",
        )
        code = int(exc.exit_code)
    except SyncError as exc:
        summary.update(error=exc.message)
        log.error("generate.failed error=%s", json.dumps(exc.message, ensure_ascii=False))
        print(f"kb-sync generate: {exc.message}", file=sys.stderr, flush=True)
        code = int(exc.exit_code)
    summary["exit_code"] = code
    if args.json and not summary.get("_printed"):
        summary.pop("_printed", None)
        print(json.dumps(summary, ensure_ascii=False, indent=2), flush=True)
    return code


def _run(args: argparse.Namespace, summary: dict[str, Any]) -> int:
    _validate(args)
    source = resolve_source(args.source)
    shown = display_source(source)
    out = Path(args.out)
    summary.update(source=shown, out=str(out), dry_run=bool(args.dry_run))
    existing = existing_docs(out)
    summary["existing"] = len(existing)

    # Everything that depends on the source, before DIR is touched.
    body = fetch(source, timeout=args.timeout, retries=args.retries)
    payload = parse(body, shown)
    items = find_records(payload, args.records_key)
    records = build_records(items, key_field=args.key_field, title_field=args.title_field)
    summary["records"] = len(records)
    if args.check and existing:
        drop = (len(existing) - len(records)) / len(existing)
        if drop > args.max_drop:
            raise SourceUnhealthy(
                f"{len(records)} records against {len(existing)} documents in {out}: a drop "
                f"of {drop:.0%}, more than --max-drop {args.max_drop:g}",
                reason="dropped",
            )
    if args.check:
        summary["healthy"] = True
        log.info(
            "generate.healthy source=%s records=%d existing=%d", shown, len(records), len(existing)
        )
        _emit(args, f"source={shown} healthy records={len(records)} existing={len(existing)}")

    tpl = load_template(Path(args.template) if args.template else DEFAULT_TEMPLATE)
    docs, small = render_all(records, tpl, merge_small=args.merge_small)
    plan = plan_changes(out, docs, small)

    verb = "would " if args.dry_run else ""
    for rec, size in small:
        fate = f"merged into {COMBINED_NAME}" if args.merge_small else "kept as its own document"
        log.warning("generate.small key=%s file=%s bytes=%d", rec.key, rec.filename, size)
        _emit(
            args,
            f"small record={rec.key} file={rec.filename} bytes={size} (under {MIN_RAG_BYTES}: "
            f"cannot be RAG-indexed; {fate}"
            + ("" if args.merge_small else "; use --merge-small or push --small-docs prompt")
            + ")",
        )
    for doc, why in plan.write:
        _emit(args, f"{verb}write file={doc.filename} bytes={len(doc.data)} ({why})")
    merged_names = {r.filename for r, _ in small} if args.merge_small else set()
    for path in plan.remove:
        why = f"merged into {COMBINED_NAME}" if path.name in merged_names else "no record any more"
        _emit(args, f"{verb}remove file={path.name} ({why})")
    combined = next((d for d in docs if d.filename == COMBINED_NAME), None)
    if combined is not None and len(combined.data) < MIN_RAG_BYTES:
        log.warning("generate.small file=%s bytes=%d", COMBINED_NAME, len(combined.data))
        _emit(
            args,
            f"small file={COMBINED_NAME} bytes={len(combined.data)} (still under "
            f"{MIN_RAG_BYTES}: too few small records to reach the floor; push --small-docs "
            "prompt attaches it in the prompt instead)",
        )
    summary.update(
        documents=len(docs),
        written=[d.filename for d, _ in plan.write],
        unchanged=[d.filename for d in plan.unchanged],
        removed=[p.name for p in plan.remove],
        small=[{"key": r.key, "file": r.filename, "bytes": n} for r, n in small],
        merged=COMBINED_NAME if args.merge_small and small else None,
    )

    if plan.remove and len(plan.remove) * 2 > len(existing) and not args.allow_mass_delete:
        raise GuardRefused(
            f"refusing to remove {len(plan.remove)} of the {len(existing)} documents in {out} "
            "(more than half); check the source, or pass --allow-mass-delete if it is meant"
        )

    if not args.dry_run:
        out.mkdir(parents=True, exist_ok=True)
        for doc, why in plan.write:
            write_atomic(out / doc.filename, doc.data)
            log.info("generate.written file=%s bytes=%d why=%s", doc.filename, len(doc.data), why)
        for path in plan.remove:
            path.unlink(missing_ok=True)
            log.info("generate.removed file=%s", path.name)
    _emit(
        args,
        f"{'dry-run ' if args.dry_run else ''}generated records={len(records)} "
        f"documents={len(docs)} written={len(plan.write)} unchanged={len(plan.unchanged)} "
        f"removed={len(plan.remove)} small={len(small)} out={out}",
    )

    if not args.upload:
        return int(ExitCode.OK)
    if args.dry_run:
        log.info("generate.upload skipped=dry-run")
        _emit(args, "upload skipped (--dry-run)")
        summary["upload"] = "skipped"
        return int(ExitCode.OK)
    summary["upload"] = "push"
    if args.json:  # the push prints its own output; ours goes first
        print(json.dumps({**summary, "exit_code": 0}, ensure_ascii=False, indent=2), flush=True)
        summary["_printed"] = True
    return upload(args, out)
