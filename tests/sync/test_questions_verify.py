"""``kb-sync verify --questions`` (and ``--agent-tests``) against the in-process emulator:
the sample's generated questions pass right after a push, a stale fact fails, a fact in an
unattached document fails, a malformed file is exit 5 in one line; agent tests are created
once, reused, deleted with their question, run with one run-tests call, and bounded by the
timeout on the injected clock (nothing sleeps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sync.emulator.agent_tests import agent_testing
from sync.testing import Result

from .conftest import Kit

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "monitoring-sample.json"
Q2 = "2025-Q2.md"


def _generate(kit: Kit) -> Path:
    questions = kit.dir.parent / "questions.toml"
    r = kit.kb(
        "generate", "--source", str(SAMPLE), "--out", str(kit.dir), "--questions", str(questions)
    )
    assert r.code == 0, r.stderr
    assert kit.push().code == 0
    return questions


def _verify(kit: Kit, questions: Path, *extra: str) -> Result:
    return kit.kb("verify", "--dir", str(kit.dir), "--questions", str(questions), "--json", *extra)


def _questions_file(kit: Kit, text: str) -> Path:
    p = kit.dir.parent / "mine.toml"
    p.write_text(text, encoding="utf-8")
    return p


def _by_number(report: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(q["number"]): q for q in report["questions"]}


def test_the_samples_generated_questions_pass_right_after_a_push(kit: Kit) -> None:
    questions = _generate(kit)
    r = _verify(kit, questions)
    assert r.code == 0, r.stdout
    report = r.json()
    assert len(report["questions"]) == 10 and all(q["ok"] for q in report["questions"])
    first = report["questions"][0]
    assert first["top_chunks"][0]["document"] == "2025-Q1.md" and first["evidence"] == [
        "2025-Q1.md"
    ]
    calls = [c for c in kit.backend.calls if c.path.endswith("/rag-query")]
    assert all(
        c.request_json == {"query": c.request_json["query"]} for c in calls
    )  # agent defaults


def test_after_a_one_document_update_the_new_value_passes_and_the_old_one_fails(kit: Kit) -> None:
    _generate(kit)
    text = (kit.dir / Q2).read_text("utf-8")
    kit.write(Q2, text.replace("**status**: стабильно", "**status**: внимание"))
    assert kit.push().code == 0
    asked = _questions_file(
        kit,
        '[[question]]\nask = "2025-Q2: status?"\nexpect = ["внимание"]\nfile = "2025-Q2.md"\n\n'
        '[[question]]\nask = "2025-Q2: status?"\nexpect = ["стабильно"]\nfile = "2025-Q2.md"\n',
    )
    r = _verify(kit, asked)
    assert r.code == 6
    got = _by_number(r.json())
    assert got[1]["ok"] and got[1]["evidence"] == [Q2]
    assert not got[2]["ok"] and got[2]["reason"] == "other_document"  # not in 2025-Q2.md now
    assert Q2 not in got[2]["evidence"]
    human = kit.kb("verify", "--dir", str(kit.dir), "--questions", str(asked))
    assert "FAIL  question #2: 2025-Q2: status?" in human.stdout
    assert "top: 2025-Q2.md d=0.0" in human.stdout


def test_a_fact_served_from_an_old_index_is_stale(kit: Kit) -> None:
    _generate(kit)
    doc_id = next(e["id"] for e in kit.managed_kb() if kit.file_of(e) == Q2)
    old = (kit.dir / Q2).read_text("utf-8").replace("стабильно", "старый статус")
    kit.backend.serve_stale(doc_id, old)
    asked = _questions_file(
        kit,
        '[[question]]\nask = "2025-Q2: status?"\nexpect = ["старый статус"]\nfile = "2025-Q2.md"\n',
    )
    r = _verify(kit, asked)
    assert r.code == 6 and r.json()["questions"][0]["reason"] == "stale_document"


def test_a_fact_that_lives_in_an_unattached_document_fails(kit: Kit) -> None:
    _generate(kit)
    kit.backend.seed_document("Аренда офиса", "Аренда офиса во втором квартале: 1 200 000.\n" * 20)
    asked = _questions_file(
        kit,
        '[[question]]\nask = "Аренда офиса во втором квартале?"\nexpect = ["1 200 000"]\n\n'
        '[[question]]\nask = "Аренда офиса 2025-Q2?"\nexpect = ["1 200 000"]\n'
        'file = "2025-Q2.md"\n',
    )
    r = _verify(kit, asked)
    assert r.code == 6
    got = _by_number(r.json())
    assert got[1]["reason"] == "not_retrieved" and got[2]["reason"] in (
        "fact_missing",
        "not_retrieved",
    )
    check = r.json()["checks"][0]
    assert check["check"].startswith("questions:") and not check["ok"]


def test_a_malformed_questions_file_is_exit_5_in_one_line_before_any_request(kit: Kit) -> None:
    bad = _questions_file(
        kit, '[[question]]\nask = "a"\nexpect = ["x"]\n\n[[question]]\nask = "b"\n'
    )
    kit.backend.clear_calls()
    r = kit.kb("verify", "--dir", str(kit.dir), "--questions", str(bad))
    lines = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert r.code == 5 and len(lines) == 1, r.stderr
    assert str(bad) in lines[0] and "question #2" in lines[0] and "expect" in lines[0]
    assert kit.backend.calls == []


def test_agent_tests_without_questions_is_bad_input(kit: Kit) -> None:
    r = kit.kb("verify", "--dir", str(kit.dir), "--agent-tests")
    assert r.code == 5 and "--agent-tests needs --questions" in r.stderr


def test_help_says_agent_tests_cost_llm_credits(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kit.kb("verify", "--help").code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--agent-tests" in text and "COSTS LLM CREDITS" in text


# --------------------------------------------------------------------------- agent tests


def _runs(kit: Kit) -> list[Any]:
    return [c for c in kit.backend.calls if c.path.endswith("/run-tests")]


def _creates(kit: Kit) -> list[Any]:
    return [c for c in kit.backend.calls if c.path.endswith("/agent-testing/create")]


def test_agent_tests_are_created_once_then_reused_and_deleted_with_their_question(kit: Kit) -> None:
    questions = _generate(kit)
    kit.backend.clear_calls()
    first = _verify(kit, questions, "--agent-tests")
    assert first.code == 0, first.stdout
    tests = first.json()["agent_tests"]
    assert (tests["created"], tests["reused"], tests["deleted"]) == (10, 0, 0)
    assert len(_creates(kit)) == 10 and len(_runs(kit)) == 1
    assert all(r["status"] == "passed" for r in tests["results"])

    kit.backend.clear_calls()
    second = _verify(kit, questions, "--agent-tests").json()["agent_tests"]
    assert (second["created"], second["reused"], second["deleted"]) == (0, 10, 0)
    assert _creates(kit) == [] and len(_runs(kit)) == 1

    text = questions.read_text("utf-8")
    questions.write_text(text[: text.rindex("\n# ")] + "\n", encoding="utf-8")  # drop the last
    third = _verify(kit, questions, "--agent-tests").json()["agent_tests"]
    assert (third["created"], third["reused"], third["deleted"]) == (0, 9, 1)
    with kit.backend.lock:
        names = [t.name for t in agent_testing(kit.backend).tests.values()]
    assert len(names) == 9 and all(n.startswith("kb-sync:question#") for n in names)


def test_an_agent_test_failing_and_one_erroring_are_reported_per_question(kit: Kit) -> None:
    _generate(kit)
    asked = _questions_file(
        kit,
        '[[question]]\nask = "2025-Q2: status?"\nexpect = ["стабильно"]\n\n'
        '[[question]]\nask = "2025-Q3: status?"\nexpect = ["стабильно"]\n\n'
        '[[question]]\nask = "2025-Q4: status?"\nexpect = ["стабильно"]\n',
    )
    with kit.backend.lock:
        agent_testing(kit.backend).set_behaviour("kb-sync:question#", "normal")
    first = _verify(kit, asked, "--agent-tests").json()["agent_tests"]
    q4 = next(r for r in first["results"] if r["number"] == 3)["test_id"]
    with kit.backend.lock:
        agent_testing(kit.backend).set_behaviour(q4, "error")
    r = _verify(kit, asked, "--agent-tests")
    assert r.code == 6
    status = {x["number"]: x["status"] for x in r.json()["agent_tests"]["results"]}
    assert status == {1: "passed", 2: "failed", 3: "errored"}


def test_the_agent_tests_timeout_is_honoured_on_the_injected_clock(kit: Kit) -> None:
    _generate(kit)
    asked = _questions_file(kit, '[[question]]\nask = "2025-Q2: status?"\nexpect = ["стабильно"]\n')
    with kit.backend.lock:
        agent_testing(kit.backend).set_behaviour("kb-sync:question#", "never")
    start = kit.clock.now()
    slept = kit.clock.slept
    r = _verify(kit, asked, "--agent-tests", "--agent-tests-timeout", "42")
    assert r.code == 6
    tests = r.json()["agent_tests"]
    assert tests["timed_out"] and tests["results"][0]["status"] == "timed_out"
    assert kit.clock.slept - slept == 42.0 and kit.clock.now() - start == 42.0
    polls = [c for c in kit.backend.calls if "/test-invocations/" in c.path]
    assert 4 <= len(polls) <= 12  # backing off 0.5 s -> 10 s, not a busy loop
    human = json.dumps(tests)
    assert "still pending after 42 s" in human
