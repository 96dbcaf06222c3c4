"""Agent response tests [spec] with a stand-in judge [guess]: the model, no HTTP.

The real service runs each test's chat history through the agent and has an LLM judge the
reply against the test's ``success_condition``. The emulator has no LLM, so:

- the agent's *answer* is its top retrieved chunks: of the lexical retrieval of ``rag-query``
  (:mod:`sync.emulator.retrieval`, the agent's own RAG settings) for the last user message,
  on the branch the tests run on, the chunks tied at the best distance (at most 3), taken
  when ``run-tests`` is called (an LLM answers from what fits the question best);
- the *judge* reads the expected strings as the double-quoted JSON strings of the success
  condition (``"1 200 000"``; kb-sync writes its conditions that way) and the condition holds
  when every one of them is in the answer (case-insensitive, whitespace-normalised). A
  condition with no quoted string cannot be judged: the run fails with ``unknown``.

A run is ``pending`` for :attr:`AgentTesting.run_seconds` on the workspace's clock (0.5 s),
then ``passed`` or ``failed``. Behaviours (test control, by test id or name prefix, later
rules first): ``error`` (the run fails without a verdict, ``condition_result.result:
"unknown"`` and a rationale saying it errored), ``never`` (the run stays ``pending``),
``normal``.

The state hangs off the workspace (:func:`agent_testing`) and starts over when the workspace is
reset (a new ``agents`` dict is the sign), so neither ``models`` nor ``backend`` has to know.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from sync.emulator.agents import SPEC_DEFAULT_MODEL, rag_of
from sync.emulator.exceptions import EmulatorError, detail
from sync.emulator.models import Workspace
from sync.emulator.retrieval import Settings

BEHAVIOURS = ("normal", "error", "never")
RUN_SECONDS = 0.5
TOP_ANSWER = 3  # the answer: the chunks tied at the best distance, at most this many
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


class AgentTestNotFound(EmulatorError):
    """[guess] the code and wording: the spec lists only 200 and 422."""

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(
            404, detail(f"{what}_not_found", f"{what.replace('_', ' ')} {ident} not found.")
        )


@dataclass
class AgentTest:
    id: str
    name: str
    body: dict[str, Any]  # the create request, as validated
    seq: int
    created_at: float
    updated_at: float


@dataclass
class AgentTestRun:
    id: str
    test: AgentTest
    invocation_id: str
    agent_id: str
    branch_id: str | None
    started: float
    behaviour: str
    answer: str
    verdict: str  # success / failure / unknown: what the judge found when it ran
    rationale: str


@dataclass
class Invocation:
    id: str
    agent_id: str
    branch_id: str | None
    created_at: float
    runs: list[AgentTestRun] = field(default_factory=list)


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def expected_strings(condition: str) -> list[str]:
    """The double-quoted JSON strings of a success condition (the stand-in judge's facts)."""
    out = []
    for m in _QUOTED.finditer(condition):
        try:
            out.append(str(json.loads(m.group(0))))
        except ValueError:
            continue
    return [s for s in out if s.strip()]


def judge(condition: str, answer: str) -> tuple[str, str]:
    """``(success | failure | unknown, rationale)`` of the stand-in judge."""
    facts = expected_strings(condition)
    if not facts:
        return "unknown", "stand-in judge: the success condition names no quoted string"
    said = normalise(answer)
    missing = [f for f in facts if normalise(f) not in said]
    if missing:
        return "failure", "stand-in judge: not in the answer: " + ", ".join(map(repr, missing))
    return "success", "stand-in judge: every expected string is in the answer"


class AgentTesting:
    """The workspace's agent tests and test invocations."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.agents = ws.agents  # identity marks the workspace generation (reset)
        self.tests: dict[str, AgentTest] = {}
        self.invocations: dict[str, Invocation] = {}
        self.behaviours: list[tuple[str, str, int | None]] = []  # (match, behaviour, times)
        self.run_seconds = RUN_SECONDS
        self.seq = 0

    def _id(self) -> str:
        """20 alphanumerics, like the spec's example test id [guess for runs, invocations]."""
        return self.ws._new_id()

    # -- tests ---------------------------------------------------------------------------
    def create(self, name: str, body: dict[str, Any]) -> AgentTest:
        self.seq += 1
        now = self.ws.now()
        test = AgentTest(self._id(), name, body, self.seq, now, now)
        self.tests[test.id] = test
        return test

    def test(self, test_id: str) -> AgentTest:
        test = self.tests.get(test_id)
        if test is None:
            raise AgentTestNotFound("test", test_id)
        return test

    def delete(self, test_id: str) -> None:
        self.tests.pop(self.test(test_id).id)

    # -- runs ----------------------------------------------------------------------------
    def set_behaviour(self, match: str, behaviour: str, times: int | None = None) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown agent-test behaviour {behaviour!r}; one of {BEHAVIOURS}")
        self.behaviours.insert(0, (match, behaviour, times))

    def _behaviour(self, test: AgentTest) -> str:
        for i, (match, behaviour, times) in enumerate(self.behaviours):
            if match == test.id or test.name.startswith(match):
                if times is not None:
                    if times <= 1:
                        self.behaviours.pop(i)
                    else:
                        self.behaviours[i] = (match, behaviour, times - 1)
                return behaviour
        return "normal"

    def answer(self, agent_id: str, branch_id: str | None, test: AgentTest) -> str:
        """The agent's stand-in answer to the test's last user message: its top chunks."""
        agent = self.ws.agent(agent_id)
        branch = self.ws.branch(agent, branch_id)
        history = test.body.get("chat_history") or []
        asked = [str(m.get("message") or "") for m in history if m.get("role") == "user"]
        rag = rag_of(branch.body)
        if not asked or not rag.get("enabled"):
            return ""
        model = rag.get("embedding_model", SPEC_DEFAULT_MODEL)
        chunks = self.ws.rag_chunks(branch, asked[-1], model, Settings.of(rag))
        best = [c for c in chunks if c["vector_distance"] == chunks[0]["vector_distance"]]
        return "\n\n".join(str(c["text"]) for c in best[:TOP_ANSWER])

    def run(self, agent_id: str, branch_id: str | None, test_ids: list[str]) -> Invocation:
        tests = [self.test(t) for t in test_ids]  # 404 before anything starts
        self.ws.branch(self.ws.agent(agent_id), branch_id)
        inv = Invocation(self._id(), agent_id, branch_id, self.ws.now())
        for test in tests:
            answer = self.answer(agent_id, branch_id, test)
            verdict, why = judge(str(test.body.get("success_condition") or ""), answer)
            behaviour = self._behaviour(test)
            if behaviour == "error":
                verdict, why = "unknown", "the test run errored (emulator behaviour 'error')"
            inv.runs.append(
                AgentTestRun(
                    self._id(),
                    test,
                    inv.id,
                    agent_id,
                    branch_id,
                    inv.created_at,
                    behaviour,
                    answer,
                    verdict,
                    why,
                )
            )
        self.invocations[inv.id] = inv
        return inv

    def invocation(self, invocation_id: str) -> Invocation:
        inv = self.invocations.get(invocation_id)
        if inv is None:
            raise AgentTestNotFound("test_invocation", invocation_id)
        return inv

    def status(self, run: AgentTestRun) -> str:
        if run.behaviour == "never" or self.ws.now() < run.started + self.run_seconds:
            return "pending"
        return "passed" if run.verdict == "success" else "failed"

    def state(self) -> dict[str, Any]:
        return {
            "tests": [{"id": t.id, "name": t.name, **t.body} for t in self.tests.values()],
            "invocations": [
                {
                    "id": i.id,
                    "runs": [
                        {"test_id": r.test.id, "status": self.status(r), "verdict": r.verdict}
                        for r in i.runs
                    ],
                }
                for i in self.invocations.values()
            ],
            "behaviours": [list(b) for b in self.behaviours],
            "run_seconds": self.run_seconds,
        }


def agent_testing(ws: Workspace) -> AgentTesting:
    """The workspace's agent-testing state (a new one after a reset). Caller holds the lock."""
    current: AgentTesting | None = ws.__dict__.get("_agent_testing")
    if current is None or current.agents is not ws.agents:
        current = AgentTesting(ws)
        ws.__dict__["_agent_testing"] = current
    return current
