"""The acceptance suite's HTML validation report: one self-contained file (inline CSS, no
scripts, no external resources) that a reviewer opens offline and signs off.

:func:`render_report` takes a plain dict (built by the acceptance plugin in ``steps/plugin.py``)
and returns the HTML; :func:`write_report` writes it. The data's shape::

    {"title", "target", "base_url", "namespace", "agents": [...], "date", "version",
     "python", "duration", "ok", "totals": {"passed": n, ...}, "leaks": [...],
     "scan_files": n,
     "sections": [{"title", "status", "scenarios": [{"name", "feature", "outcome",
                   "message", "seconds", "params", "tags", "agent",
                   "checks": [{"item", "ok", "detail", "dod"}],
                   "commands": [{"command", "exit_code", "seconds", "requests", "writes"}],
                   "facts": {...}}]}],
     "dod": [{"item", "status", "checks": [{"scenario", "item", "ok", "detail"}]}],
     "fidelity": None or {"cassette", "error", "exchanges", "agree", "ratio", "summary",
                  "notes", "aspects", "operations": [{"operation", "exchanges", "agree",
                  <aspect>: n}], "differences": [{"seq", "method", "path", "aspect",
                  "recorded", "emulator"}], "more", "advice"}}

``fidelity`` (the "Emulator fidelity" section) is there when the target's cassette
(``reports/cassette-<target>.jsonl``) was replayed: ``sync.emulator.replay_report.report_data``.

``questions`` (the "Questions" section, failures first): every question a scenario asked with
``kb-sync verify --questions``, ``[{"scenario", "question", "expected", "evidence", "verdict",
"ok"}]`` (``steps.questions.report_rows``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATE = "report.html.j2"
_TEMPLATES = Path(__file__).resolve().parent / "templates"


def _fact(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, indent=1, default=str)
    return str(value)


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fact"] = _fact
    return env


def render_report(data: dict[str, Any]) -> str:
    return _env().get_template(TEMPLATE).render(**data)


def write_report(path: str | Path, data: dict[str, Any]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_report(data), encoding="utf-8")
    return p
