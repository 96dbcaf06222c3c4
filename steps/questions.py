"""Questions the agent must answer: ``kb-sync verify --questions`` (and ``--agent-tests``) over
the sample monitoring data. Each verdict is kept as the scenario's ``questions`` fact, which
the validation report's "Questions" section lists (:func:`report_rows`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from steps.target import ROOT
from steps.world import World
from sync.questions import Question, dumps

SAMPLE = ROOT / "examples" / "monitoring-sample.json"


@dataclass
class Asked:
    """The scenario's questions file and the last verify report."""

    path: Path | None = None
    report: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def asked() -> Asked:
    return Asked()


def _write(world: World, asked: Asked, text: str) -> None:
    asked.path = world.folder.parent / "questions.toml"
    asked.path.write_text(text, encoding="utf-8")


def _read_folder(world: World) -> None:
    for p in sorted(world.folder.glob("*.md")):
        world.files[p.name] = p.read_text("utf-8")


# ---------------------------------------------------------------------------- Given


@given("the folder holds the sample monitoring data, generated")
def sample_generated(world: World, asked: Asked) -> None:
    world.ensure_agent()
    asked.path = world.folder.parent / "questions.toml"
    res = world.run(
        f"kb-sync generate --source {SAMPLE} --out {world.folder} --questions {asked.path}"
    )
    assert res.exit_code == 0, res.stderr[-2000:]
    _read_folder(world)


@given(
    parsers.re(
        r'the question "(?P<ask>[^"]+)" expecting "(?P<expect>[^"]+)" from "(?P<file>[^"]+)"$'
    )
)
def one_question(world: World, asked: Asked, ask: str, expect: str, file: str) -> None:
    _write(world, asked, dumps([Question(1, ask, (expect,), file)]))


@given("the questions:")
def questions_table(world: World, asked: Asked, datatable: list[list[str]]) -> None:
    header = [c.strip() for c in datatable[0]]
    rows = [dict(zip(header, (c.strip() for c in r), strict=True)) for r in datatable[1:]]
    qs = [
        Question(i, r["ask"], (r["expect"],), r.get("file") or None) for i, r in enumerate(rows, 1)
    ]
    _write(world, asked, dumps(qs))


@given("the questions file reads:")
def questions_text(world: World, asked: Asked, docstring: str) -> None:
    _write(world, asked, docstring + "\n")


@given(parsers.re(r'"(?P<file>[^"]+)" now says "(?P<new>[^"]+)" instead of "(?P<old>[^"]+)"$'))
def fact_changed(world: World, file: str, new: str, old: str) -> None:
    text = world.files[file]
    assert old in text, f"{file} does not say {old!r}"
    world.write(file, text.replace(old, new, 1))


@given(parsers.re(r'an unattached document "(?P<name>[^"]+)" says "(?P<fact>[^"]+)"$'))
def unattached(world: World, name: str, fact: str) -> None:
    world.target.seed_document(name, "\n\n".join([fact] * 12), None)


# ---------------------------------------------------------------------------- When


@when(parsers.re(r"the questions are asked(?P<tests> with agent tests)?$"))
def ask_questions(world: World, asked: Asked, tests: str | None) -> None:
    assert asked.path is not None, "no questions file yet"
    extra = " --agent-tests" if tests else ""
    res = world.run(f"kb-sync verify --questions {asked.path} --json{extra}")
    asked.report = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
    rows = [
        {
            "question": f"#{q['number']} {q['ask']}",
            "expected": ", ".join(q["expect"]) + (f" (from {q['file']})" if q["file"] else ""),
            "evidence": "; ".join(
                f"{c['document']} d={c['distance']}: {c['excerpt'][:60]}" for c in q["top_chunks"]
            )
            or "no chunk",
            "verdict": q["reason"] + ("" if q["ok"] else f": {q['detail']}"),
            "ok": q["ok"],
        }
        for q in asked.report.get("questions", [])
    ]
    world.evidence.fact("questions", rows)


# ---------------------------------------------------------------------------- Then


def _question(world: World, asked: Asked, n: int) -> dict[str, Any]:
    qs = {int(q["number"]): q for q in asked.report.get("questions", [])}
    world.evidence.check(f"question #{n} was asked", n in qs, f"{len(qs)} questions in the report")
    q: dict[str, Any] = qs[n]
    return q


@then(parsers.re(r"question (?P<n>\d+) passes$"))
def question_passes(world: World, asked: Asked, n: str) -> None:
    q = _question(world, asked, int(n))
    world.evidence.check(
        f"question #{n} {q['ask']!r} answered with {q['expect']}", bool(q["ok"]), q["detail"]
    )


@then(parsers.re(r'question (?P<n>\d+) fails as "(?P<reason>[^"]+)"$'))
def question_fails(world: World, asked: Asked, n: str, reason: str) -> None:
    q = _question(world, asked, int(n))
    world.evidence.check(
        f"question #{n} {q['ask']!r} expecting {q['expect']} fails: {reason}",
        not q["ok"] and q["reason"] == reason,
        f"{q['reason']}: {q['detail']}",
    )


@then("every question passes")
def every_question_passes(world: World, asked: Asked) -> None:
    qs = asked.report.get("questions", [])
    bad = [f"#{q['number']} {q['reason']}: {q['detail']}" for q in qs if not q["ok"]]
    world.evidence.check(
        "every generated question is answered",
        bool(qs) and not bad,
        "; ".join(bad) or f"{len(qs)} pass",
    )


@then(parsers.re(r"(?P<created>\d+) agent tests? (?:was|were) created and (?P<reused>\d+) reused$"))
def tests_created(world: World, asked: Asked, created: str, reused: str) -> None:
    t = asked.report.get("agent_tests") or {}
    runs = [c for c in world.last.calls if str(c["path"]).endswith("/run-tests")]
    world.evidence.check(
        f"agent tests: {created} created, {reused} reused, one run-tests call",
        (t.get("created"), t.get("reused"), len(runs)) == (int(created), int(reused), 1),
        f"created {t.get('created')}, reused {t.get('reused')}, deleted {t.get('deleted')}, "
        f"{len(runs)} run-tests calls",
    )


@then(parsers.re(r'agent test (?P<n>\d+) is "(?P<status>[^"]+)"$'))
def agent_test_status(world: World, asked: Asked, n: str, status: str) -> None:
    results = {
        int(r["number"]): r for r in (asked.report.get("agent_tests") or {}).get("results", [])
    }
    got = results.get(int(n), {})
    world.evidence.check(
        f"agent test of question #{n}: {status}",
        got.get("status") == status,
        json.dumps(got, ensure_ascii=False),
    )


@then(parsers.re(r'the error names the questions file and "(?P<what>[^"]+)"$'))
def error_names_file(world: World, asked: Asked, what: str) -> None:
    lines = world.last.error_lines
    world.evidence.check(
        f"one error line naming the questions file and {what!r}",
        len(lines) == 1 and str(asked.path) in lines[0] and what in lines[0],
        lines[0] if len(lines) == 1 else f"error lines: {lines}",
    )


# ---------------------------------------------------------------------------- the report


def report_rows(scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The validation report's "Questions" section: every asked question, failures first."""
    rows = [
        {"scenario": s["name"], **row}
        for s in scenarios
        for row in (s.get("facts") or {}).get("questions") or []
    ]
    return sorted(rows, key=lambda r: bool(r["ok"]))
