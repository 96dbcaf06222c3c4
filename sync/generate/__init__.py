"""``kb-sync generate``: from the monitoring API's JSON to one markdown document per record.

The chain the cron runs (``sync-with-monitoring.py --check --upload-to-elevenlabs``):

1. fetch the source (``BIRBY_API_URL`` or ``--source``: an http(s) URL, a ``file://`` URL or a
   path) with a timeout and bounded retries (:mod:`.source`);
2. parse it and find the records, validate every record, name its file after its key
   (:mod:`.records`; ``docs/generate.md`` has the default shape and the mapping options);
3. ``--check``: gate on the source's health (reachable, valid JSON, non-empty, the record count
   not dropped by more than ``--max-drop`` against the ``*.md`` files in DIR);
4. render every record with a Jinja2 template, all in memory, before anything is touched
   (:mod:`.render`);
5. write the changed documents atomically, leave unchanged ones alone (bytes and mtime),
   remove the documents of records that disappeared, under the mass-delete guard
   (:mod:`.files`, :mod:`sync.guards`);
6. ``--upload``: run ``kb-sync push --dir DIR`` in this process, through the callback the CLI
   gives (:mod:`.command`).

A bad source never changes DIR: everything that can fail on the source fails before step 5.
The dependency goes one way: ``sync.cli`` imports this package, never the reverse.
"""

from __future__ import annotations

from .command import DEFAULT_OUT, PushRunner, add_arguments, add_parser, push_argv, run
from .files import Plan, existing_docs, plan_changes, write_atomic
from .records import Record, build_records, find_records, slugify
from .render import COMBINED_NAME, DEFAULT_TEMPLATE, Doc, load_template, normalise, render_all
from .source import SOURCE_ENV, display_source, fetch, parse, resolve_source

__all__ = [
    "COMBINED_NAME",
    "DEFAULT_OUT",
    "DEFAULT_TEMPLATE",
    "SOURCE_ENV",
    "Doc",
    "Plan",
    "PushRunner",
    "Record",
    "add_arguments",
    "add_parser",
    "build_records",
    "display_source",
    "existing_docs",
    "fetch",
    "find_records",
    "load_template",
    "normalise",
    "parse",
    "plan_changes",
    "push_argv",
    "render_all",
    "resolve_source",
    "run",
    "slugify",
    "write_atomic",
]
