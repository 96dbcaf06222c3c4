"""``kb-sync verify --questions FILE [--agent-tests]``: the questions part of verify.

:func:`questions_hook` loads and validates the questions file first (a malformed one is exit 5
before any request), and returns the hook :func:`sync.verify.verify_command` calls with its
report: each question through ``rag-query`` (the agent's defaults), judged by
:func:`sync.asking.judge`; with ``--agent-tests`` also as ElevenLabs agent tests
(:mod:`sync.agent_tests`). The hook adds ``questions`` (and ``agent_tests``) to the report, one
summary check each (so a failure makes verify exit 6), and returns its text lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .agent_tests import AgentTestsReport, run_agent_tests
from .asking import Docs, Verdict, judge
from .client import Client
from .clock import Clock
from .config import Settings
from .errors import ApiError
from .local import read_folder
from .questions import Question, load_questions
from .remote import ownership, read_agent

Hook = Callable[[dict[str, Any]], list[str]]
DEFAULT_TESTS_TIMEOUT = 300.0


@dataclass(frozen=True)
class AskArgs:
    questions: str
    folder: str
    agent_tests: bool = False
    timeout: float = DEFAULT_TESTS_TIMEOUT


def read_docs(client: Client, settings: Settings, folder: str) -> Docs:
    """The agent's managed entries against the folder, as the verdicts need them."""
    local = {d.file: d for d in read_folder(folder)}
    own = ownership(settings)
    current: dict[str, str] = {}
    file_of: dict[str, str] = {}
    prompt: set[str] = set()
    for e in read_agent(client, settings).entries:
        m = own.managed(e.name)
        if m is None:
            continue
        file_of[e.id] = m.file
        d = local.get(m.file)
        if d is not None and m.fingerprint == d.fingerprint:
            current.setdefault(m.file, e.id)
            if e.usage_mode == "prompt":
                prompt.add(m.file)
    texts = {f: d.text for f, d in local.items()}
    return Docs(current=current, file_of=file_of, texts=texts, prompt=frozenset(prompt))


def ask(client: Client, agent_id: str, q: Question, docs: Docs) -> Verdict:
    try:
        answer = client.rag_query(agent_id, q.ask)
    except ApiError as exc:
        return Verdict(q, "query_failed", f"rag-query failed: {exc}")
    chunks = [c for c in answer.get("chunks") or [] if isinstance(c, dict)]
    return judge(q, chunks, docs)


def _summary(report: dict[str, Any], name: str, ok: bool, detail: str) -> None:
    check = {"check": name, "ok": ok, "detail": detail}
    checks = report.setdefault("checks", [])
    checks.insert(0, check) if not ok else checks.append(check)
    report["ok"] = bool(report.get("ok", True)) and ok


def question_lines(verdicts: list[Verdict]) -> list[str]:
    lines = []
    for v in sorted(verdicts, key=lambda v: (v.ok, v.question.number)):
        q = v.question
        expect = ", ".join(repr(e) for e in q.expect)
        head = f"{'PASS' if v.ok else 'FAIL'}  question #{q.number}: {q.ask}  expect {expect}"
        lines.append(head + (f" in {q.file}" if q.file else ""))
        lines.append(f"      {v.reason}: {v.detail}")
        if not v.ok:
            for c in v.top:
                lines.append(f"      top: {c['document']} d={c['distance']} {c['excerpt']!r}")
    return lines


def test_lines(r: AgentTestsReport) -> list[str]:
    lines = [
        f"info  agent tests: {r.created} created, {r.reused} reused, {r.deleted} deleted; "
        f"invocation {r.invocation_id or '-'}"
        + (f"; timed out after {r.waited:g} s" if r.timed_out else "")
    ]
    for res in sorted(r.results, key=lambda x: (x["status"] == "passed", x["number"])):
        mark = "PASS" if res["status"] == "passed" else "FAIL"
        lines.append(f"{mark}  agent test question #{res['number']}: {res['status']}  {res['why']}")
    return lines


def questions_hook(args: AskArgs, client: Client, settings: Settings, clock: Clock) -> Hook:
    questions = load_questions(args.questions)  # exit 5 on a malformed file, before any request

    def hook(report: dict[str, Any]) -> list[str]:
        docs = read_docs(client, settings, args.folder)
        verdicts = [ask(client, settings.agent_id, q, docs) for q in questions]
        failed = [v for v in verdicts if not v.ok]
        report["questions"] = [v.to_json() for v in verdicts]
        _summary(
            report,
            "questions: retrieval answers every question",
            not failed,
            f"{len(verdicts) - len(failed)} of {len(verdicts)} pass"
            + (f"; failed: {', '.join(f'#{v.question.number}' for v in failed)}" if failed else ""),
        )
        lines = question_lines(verdicts)
        if args.agent_tests:
            r = run_agent_tests(
                client, settings.agent_id, settings.namespace, questions, clock, args.timeout
            )
            report["agent_tests"] = r.to_json()
            bad = [x for x in r.results if x["status"] != "passed"]
            _summary(
                report,
                "agent tests: every question's test passed",
                r.ok,
                f"{len(r.results) - len(bad)} of {len(r.results)} passed"
                + ("; timed out" if r.timed_out else ""),
            )
            lines += test_lines(r)
        return lines

    return hook
