"""``kb-sync generate``: its options and the command flow.

fetch -> records -> ``--check`` -> render (in memory) -> plan -> delete guard -> write ->
``--upload``. Everything that depends on the source happens before the folder is touched.

The command's output (status lines, or one JSON summary with ``--json``) goes to ``out``, its
one error line to ``err``; logs go through :func:`sync.log.event`. Settings come from the
``env`` given, never from ``os.environ``. ``--upload`` calls ``push`` (given by the CLI, which
runs ``kb-sync push ARGV`` in this process with the same env, clock and stdout): this package
never imports the CLI.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..errors import ConfigError, ExitCode, SourceUnhealthy, SyncError
from ..guards import RAG_MIN_BYTES, is_small
from ..log import event
from .files import Plan, apply_plan, existing_docs, guard_removals, plan_changes
from .questions import add_options as add_question_options
from .questions import check_options as check_question_options
from .questions import write_questions
from .records import KEY_FIELDS, RECORDS_KEYS, Record, build_records, find_records
from .render import COMBINED_NAME, DEFAULT_TEMPLATE, load_template, render_all
from .source import SOURCE_ENV, display_source, fetch, parse, resolve_source

DEFAULT_OUT = "quarters"

PushRunner = Callable[[list[str]], int]
"""Runs ``kb-sync push`` with the argv given (``["push", "--dir", DIR, ...]``); its exit code."""


# --------------------------------------------------------------------------- command line


GENERATE_EXIT_CODES = """exit codes:
  0  done (or nothing changed)
  4  a guard refused: the folder would lose more than half its documents
  5  bad input: a missing source, a malformed option or template
  7  --check: the monitoring source is unhealthy (down, slow, invalid, empty, drifted,
     or fewer records than --max-drop allows); nothing was written
  with --upload, the push's own codes (1, 3, 4, 5) follow a successful generate
environment:
  BIRBY_API_URL          the monitoring source when --source is not given (URL or path)
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``generate`` on the CLI's ``_SubParsersAction``; the new parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "generate",
        help="render the monitoring JSON into one markdown document per record",
        description=(
            "Fetch the monitoring JSON, render one markdown document per record into DIR, "
            "optionally gate on the source's health (--check) and push (--upload)."
        ),
        epilog=GENERATE_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    _source_options(p.add_argument_group("source"))
    _shape_options(p.add_argument_group("payload shape"))
    _output_options(p.add_argument_group("output"))
    _check_options(p.add_argument_group("monitoring"))
    _upload_options(p.add_argument_group("upload"))
    add_question_options(p)


def _source_options(src: argparse._ArgumentGroup) -> None:
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


def _shape_options(shape: argparse._ArgumentGroup) -> None:
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


def _output_options(out: argparse._ArgumentGroup) -> None:
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
        help=f"merge records whose document is under {RAG_MIN_BYTES} bytes into {COMBINED_NAME}",
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


def _check_options(chk: argparse._ArgumentGroup) -> None:
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


def _upload_options(up: argparse._ArgumentGroup) -> None:
    up.add_argument(
        "--upload",
        action="store_true",
        help="after a healthy generate, run `kb-sync push --dir DIR` in this process",
    )
    up.add_argument("--strict-hash", action="store_true", help="passed to push")
    up.add_argument("--index-wait", type=float, metavar="SECONDS", help="passed to push")
    up.add_argument("--small-docs", choices=("prompt", "skip", "fail"), help="passed to push")


def _validate(args: argparse.Namespace) -> None:
    if not args.timeout > 0:
        raise ConfigError(f"--timeout {args.timeout:g}: use a number of seconds above 0")
    if args.retries < 0 or args.retries > 20:
        raise ConfigError(f"--retries {args.retries}: use 0..20")
    if not 0 <= args.max_drop <= 1:
        raise ConfigError(f"--max-drop {args.max_drop:g}: use a share from 0 to 1, e.g. 0.5")
    if args.index_wait is not None and not args.index_wait >= 0:
        raise ConfigError(f"--index-wait {args.index_wait:g}: use seconds >= 0")
    check_question_options(args)


def push_argv(args: argparse.Namespace, out: Path) -> list[str]:
    """The ``kb-sync push`` argv of ``--upload``: the folder and the pass-through options."""
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


# --------------------------------------------------------------------------- run


@dataclass
class _Output:
    """The command's own output: status lines (none with ``--json``), the JSON summary, and
    the error line."""

    out: TextIO
    err: TextIO
    as_json: bool
    summary_printed: bool = False

    def line(self, text: str) -> None:
        if not self.as_json:
            self.out.write(text + "\n")
            self.out.flush()

    def summary(self, data: Mapping[str, Any]) -> None:
        self.out.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        self.out.flush()
        self.summary_printed = True

    def error(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()


def run(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str],
    push: PushRunner,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``kb-sync generate`` with the parsed ``args``; the exit code (push's with --upload)."""
    io = _Output(out or sys.stdout, err or sys.stderr, as_json=bool(args.json))
    summary: dict[str, Any] = {"command": "generate", "check": bool(args.check)}
    try:
        code = _run(args, env, push, io, summary)
    except SourceUnhealthy as exc:
        summary.update(healthy=False, reason=exc.reason, detail=exc.message)
        event("generate.unhealthy", logging.ERROR, reason=exc.reason, detail=exc.message)
        io.line(
            f"source={summary.get('source', '-')} UNHEALTHY reason={exc.reason} "
            f"detail={json.dumps(exc.message, ensure_ascii=False)}"
        )
        code = int(exc.exit_code)
    except SyncError as exc:
        summary.update(error=exc.message)
        event("generate.failed", logging.ERROR, error=exc.message)
        io.error(f"kb-sync: error: {exc.message}")
        code = int(exc.exit_code)
    summary["exit_code"] = code
    if args.json and not io.summary_printed:
        io.summary(summary)
    return code


def _run(
    args: argparse.Namespace,
    env: Mapping[str, str],
    push: PushRunner,
    io: _Output,
    summary: dict[str, Any],
) -> int:
    _validate(args)
    source = resolve_source(args.source, env)
    shown = display_source(source)
    out = Path(args.out)
    summary.update(source=shown, out=str(out), dry_run=bool(args.dry_run))
    existing = len(existing_docs(out))
    summary["existing"] = existing

    # Everything that depends on the source, before DIR is touched.
    body = fetch(source, timeout=args.timeout, retries=args.retries)
    items = find_records(parse(body, shown), args.records_key)
    records = build_records(items, key_field=args.key_field, title_field=args.title_field)
    summary["records"] = len(records)
    if args.check:
        _check_drop(args, out, len(records), existing)
        summary["healthy"] = True
        event("generate.healthy", source=shown, records=len(records), existing=existing)
        io.line(f"source={shown} healthy records={len(records)} existing={existing}")

    tpl = load_template(Path(args.template) if args.template else DEFAULT_TEMPLATE)
    plan = plan_changes(out, *render_all(records, tpl, merge_small=args.merge_small))
    _report(args, io, plan)
    summary.update(_plan_summary(args, plan))
    guard_removals(plan, existing, out, allow=args.allow_mass_delete)
    if not args.dry_run:
        apply_plan(out, plan)
    summary.update(write_questions(args, records, plan.docs, io.line))
    io.line(
        f"{'dry-run ' if args.dry_run else ''}generated records={len(records)} "
        f"documents={len(plan.docs)} written={len(plan.write)} "
        f"unchanged={len(plan.unchanged)} removed={len(plan.remove)} "
        f"small={len(plan.small)} out={out}"
    )
    return _upload(args, io, summary, out, push)


def _check_drop(args: argparse.Namespace, out: Path, records: int, existing: int) -> None:
    """``--check``: the record count must not drop by more than ``--max-drop`` against DIR."""
    if not existing:
        return
    drop = (existing - records) / existing
    if drop > args.max_drop:
        raise SourceUnhealthy(
            f"{records} records against {existing} documents in {out}: a drop "
            f"of {drop:.0%}, more than --max-drop {args.max_drop:g}",
            reason="dropped",
        )


def _report(args: argparse.Namespace, io: _Output, plan: Plan) -> None:
    """One line per small record, document to write and file to remove."""
    verb = "would " if args.dry_run else ""
    for rec, size in plan.small:
        fate = (
            f"merged into {COMBINED_NAME}"
            if args.merge_small
            else "kept as its own document, which push attaches with usage_mode prompt; "
            "--merge-small merges it instead"
        )
        # said once, on the command's output; the log has it for -v (the push warns on its own)
        event("generate.small", logging.DEBUG, key=rec.key, file=rec.filename, bytes=size)
        io.line(
            f"small record={rec.key} file={rec.filename} bytes={size} (under {RAG_MIN_BYTES}: "
            f"cannot be RAG-indexed; {fate})"
        )
    for doc, why in plan.write:
        io.line(f"{verb}write file={doc.filename} bytes={len(doc.data)} ({why})")
    merged_names = {r.filename for r, _ in plan.small} if args.merge_small else set()
    for path in plan.remove:
        why = f"merged into {COMBINED_NAME}" if path.name in merged_names else "no record any more"
        io.line(f"{verb}remove file={path.name} ({why})")
    combined = next((d for d in plan.docs if d.filename == COMBINED_NAME), None)
    if combined is not None and is_small(len(combined.data)):
        event("generate.small", logging.DEBUG, file=COMBINED_NAME, bytes=len(combined.data))
        io.line(
            f"small file={COMBINED_NAME} bytes={len(combined.data)} (still under "
            f"{RAG_MIN_BYTES}: too few small records to reach the floor; push attaches it "
            "with usage_mode prompt)"
        )


def _plan_summary(args: argparse.Namespace, plan: Plan) -> dict[str, Any]:
    small: list[tuple[Record, int]] = plan.small
    return {
        "documents": len(plan.docs),
        "written": [d.filename for d, _ in plan.write],
        "unchanged": [d.filename for d in plan.unchanged],
        "removed": [p.name for p in plan.remove],
        "small": [{"key": r.key, "file": r.filename, "bytes": n} for r, n in small],
        "merged": COMBINED_NAME if args.merge_small and small else None,
    }


def _upload(
    args: argparse.Namespace, io: _Output, summary: dict[str, Any], out: Path, push: PushRunner
) -> int:
    """``--upload``: ``kb-sync push --dir OUT`` through ``push``; its exit code is ours."""
    if not args.upload:
        return int(ExitCode.OK)
    if args.dry_run:
        event("generate.upload", skipped="dry-run")
        io.line("upload skipped (--dry-run)")
        summary["upload"] = "skipped"
        return int(ExitCode.OK)
    summary["upload"] = "push"
    if args.json:  # the push prints its own output; ours goes first
        io.summary({**summary, "exit_code": 0})
    argv = push_argv(args, out)
    event("generate.upload", argv=" ".join(argv))
    return int(push(argv))
