"""``kb-sync verify --questions FILE --agent-tests``: the questions as ElevenLabs agent tests.

One agent response test per question (``type: llm``: the question as the user's turn, a
success condition written from ``expect``), named in our namespace,
``<namespace>:question#<digest> <ask>``, where the digest is the question's content hash
(:attr:`sync.questions.Question.digest`). Each run lists the namespace's tests, reuses the
one whose digest matches (never a new test per run), creates the missing ones, deletes the
tests of questions no longer in the file (and duplicates), then runs them all with ONE
``run-tests`` call and polls the invocation until every run is terminal, bounded by a timeout
on the injected clock. The tests live in ElevenLabs: nothing about them is kept locally.

The real service judges each answer with an LLM: it costs credits, hence opt-in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from . import shapes
from .answers import Pages
from .client import Client
from .clock import Clock
from .log import event
from .questions import Question

PAGE_SIZE = 100
FIRST_POLL, MAX_POLL = 0.5, 10.0
TERMINAL = ("passed", "failed")  # [spec] TestRunStatus: pending, passed, failed
Json = dict[str, Any]


class AgentTestsApi:
    """The agent-testing calls [spec], over :meth:`Client.request` (its retries, redaction
    and records). Kept here rather than in ``client.py``, which is at its size limit."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def list(self, search: str) -> Iterator[Json]:
        pages = Pages("GET /v1/convai/agent-testing")
        cursor: str | None = None
        while True:
            params: Json = {"page_size": PAGE_SIZE, "search": search}
            if cursor:
                params["cursor"] = cursor
            page = self.client.read("GET", "/v1/convai/agent-testing", shapes.TESTS, params=params)
            yield from page["tests"]
            cursor = pages.next(page)
            if cursor is None:
                return

    def create(self, body: Json) -> str:
        path = "/v1/convai/agent-testing/create"
        answer = self.client.read("POST", path, shapes.TEST_CREATED, body=body, idempotent=False)
        return str(answer["id"])

    def delete(self, test_id: str) -> None:
        self.client.request("DELETE", f"/v1/convai/agent-testing/{quote(test_id, safe='')}")

    def run(self, agent_id: str, test_ids: Sequence[str]) -> Json:
        path = f"/v1/convai/agents/{quote(agent_id, safe='')}/run-tests"
        body = {"tests": [{"test_id": t} for t in test_ids]}
        return self.client.read("POST", path, shapes.INVOCATION, body=body, idempotent=False)

    def invocation(self, invocation_id: str) -> Json:
        path = f"/v1/convai/test-invocations/{quote(invocation_id, safe='')}"
        return self.client.read("GET", path, shapes.INVOCATION)


# --------------------------------------------------------------------------- pure parts


def prefix(namespace: str) -> str:
    return f"{namespace}:question#"


def agent_test_name(namespace: str, q: Question) -> str:
    ask = " ".join(q.ask.split())
    return f"{prefix(namespace)}{q.digest} {ask[:80]}"


def digest_of(name: str, namespace: str) -> str | None:
    p = prefix(namespace)
    if not name.startswith(p):
        return None
    digest = name[len(p) :].split(" ", 1)[0]
    return digest if len(digest) == 16 else None


def success_condition(q: Question) -> str:
    """What the judge checks, written from ``expect`` (each string quoted as JSON, so the
    emulator's stand-in judge can read them back)."""
    facts = ", ".join(json.dumps(e, ensure_ascii=False) for e in q.expect)
    return (
        "The agent's answer states every one of these facts, each written as given (spacing "
        f"and letter case aside): {facts}. If any of them is missing or different, or the agent "
        "says it does not know, the answer fails."
    )


def agent_test_body(namespace: str, q: Question) -> Json:
    return {
        "name": agent_test_name(namespace, q),
        "type": "llm",
        "chat_history": [{"role": "user", "message": q.ask, "time_in_call_secs": 0}],
        "success_condition": success_condition(q),
        "success_examples": [{"response": " ".join(q.expect), "type": "success"}],
        "failure_examples": [{"response": "I don't know.", "type": "failure"}],
    }


@dataclass
class AgentTestsPlan:
    reuse: dict[str, str] = field(default_factory=dict)  # digest -> test id
    create: list[Question] = field(default_factory=list)
    delete: list[Json] = field(default_factory=list)  # tests of removed questions, duplicates


def plan_tests(
    existing: Sequence[Json], questions: Sequence[Question], namespace: str
) -> AgentTestsPlan:
    """Which of the namespace's tests to reuse, which questions need one, what to delete."""
    wanted = {q.digest: q for q in questions}
    plan = AgentTestsPlan()
    for t in existing:
        digest = digest_of(str(t.get("name") or ""), namespace)
        if digest is None:
            continue  # not ours
        if digest in wanted and digest not in plan.reuse:
            plan.reuse[digest] = str(t["id"])
        else:
            plan.delete.append(t)
    plan.create = [q for d, q in wanted.items() if d not in plan.reuse]
    return plan


def outcome(run: Json | None) -> tuple[str, str]:
    """``(status, why)`` of one test run: passed, failed (the condition did not hold),
    errored (failed without a verdict on the condition), pending, or not_run."""
    if run is None:
        return "not_run", "the invocation has no run of this test"
    status = str(run.get("status") or "")
    cond = run.get("condition_result") or {}
    why = str((cond.get("rationale") or {}).get("summary") or "")
    answer = " ".join(
        str(r.get("message") or "") for r in run.get("agent_responses") or [] if isinstance(r, dict)
    )
    if status == "passed":
        return "passed", why
    if answer:
        why = (why + "; " if why else "") + "answer: " + " ".join(answer.split())[:160]
    if status not in TERMINAL:
        return "pending", why or f"status {status or 'missing'}"
    if cond.get("result") == "failure":
        return "failed", why or "the success condition did not hold"
    return "errored", why or f"the run failed without a verdict ({cond.get('result')})"


# --------------------------------------------------------------------------- the run


@dataclass
class AgentTestsReport:
    created: int = 0
    reused: int = 0
    deleted: int = 0
    invocation_id: str = ""
    timed_out: bool = False
    waited: float = 0.0
    results: list[Json] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.timed_out and all(r["status"] == "passed" for r in self.results)

    def to_json(self) -> Json:
        return {
            "ok": self.ok,
            "created": self.created,
            "reused": self.reused,
            "deleted": self.deleted,
            "invocation_id": self.invocation_id,
            "timed_out": self.timed_out,
            "waited_seconds": round(self.waited, 2),
            "results": self.results,
        }


def _all_terminal(inv: Json) -> bool:
    runs = [r for r in inv.get("test_runs") or [] if isinstance(r, dict)]
    return all(str(r.get("status")) in TERMINAL for r in runs)


def poll(api: AgentTestsApi, inv: Json, clock: Clock, timeout: float) -> tuple[Json, bool]:
    """The invocation once every run is terminal, or as it was at the deadline (True)."""
    start = clock.now()
    delay = FIRST_POLL
    while not _all_terminal(inv):
        left = start + timeout - clock.now()
        if left <= 0:
            return inv, True
        clock.sleep(min(delay, left))
        delay = min(delay * 2, MAX_POLL)
        inv = api.invocation(str(inv["id"]))
    return inv, False


def sync_tests(
    api: AgentTestsApi, questions: Sequence[Question], namespace: str
) -> tuple[dict[str, str], AgentTestsReport]:
    """Create the missing tests and delete the unwanted ones; digest -> test id."""
    plan = plan_tests(list(api.list(prefix(namespace))), questions, namespace)
    ids = dict(plan.reuse)
    for q in plan.create:
        ids[q.digest] = api.create(agent_test_body(namespace, q))
        event("agent_test.created", question=q.number, id=ids[q.digest])
    for t in plan.delete:
        api.delete(str(t["id"]))
        event("agent_test.deleted", id=t.get("id"), name=t.get("name"))
    return ids, AgentTestsReport(len(plan.create), len(plan.reuse), len(plan.delete))


def run_agent_tests(
    client: Client,
    agent_id: str,
    namespace: str,
    questions: Sequence[Question],
    clock: Clock,
    timeout: float,
) -> AgentTestsReport:
    api = AgentTestsApi(client)
    ids, report = sync_tests(api, questions, namespace)
    test_ids = list(dict.fromkeys(ids[q.digest] for q in questions))
    started = clock.now()
    inv, report.timed_out = poll(api, api.run(agent_id, test_ids), clock, timeout)
    report.waited = clock.now() - started
    report.invocation_id = str(inv.get("id") or "")
    runs = {str(r.get("test_id")): r for r in inv.get("test_runs") or [] if isinstance(r, dict)}
    for q in questions:
        status, why = outcome(runs.get(ids[q.digest]))
        if status == "pending" and report.timed_out:
            status, why = "timed_out", f"still pending after {timeout:g} s"
        report.results.append(
            {
                "number": q.number,
                "ask": q.ask,
                "test_id": ids[q.digest],
                "status": status,
                "why": why,
            }
        )
    event(
        "agent_tests.done",
        invocation=report.invocation_id,
        ok=report.ok,
        timed_out=report.timed_out,
    )
    return report
