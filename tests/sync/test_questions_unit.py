"""The questions file and the verdicts, pure: loading and its one-line errors, the TOML
writer, the retrieval verdicts (every reason), and the agent tests' naming, reuse plan,
success condition and run outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sync.agent_tests import (
    agent_test_body,
    agent_test_name,
    digest_of,
    outcome,
    plan_tests,
    success_condition,
)
from sync.asking import Docs, judge
from sync.emulator.agent_tests import expected_strings
from sync.emulator.agent_tests import judge as stand_in_judge
from sync.errors import ExitCode, InputError
from sync.questions import Question, dumps, load_questions, normalise

GOOD = """
[[question]]
ask = "Сколько стоила аренда во втором квартале 2025 года?"
expect = ["1 200 000"]        # every string must be found
file = "2025-Q2.md"

[[question]]
ask = "Who runs support?"
expect = ["Anna", "Boris"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "questions.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_loads_the_documented_shape(tmp_path: Path) -> None:
    qs = load_questions(_write(tmp_path, GOOD))
    assert [(q.number, q.expect, q.file) for q in qs] == [
        (1, ("1 200 000",), "2025-Q2.md"),
        (2, ("Anna", "Boris"), None),
    ]
    assert qs[0].ask.startswith("Сколько")


@pytest.mark.parametrize(
    ("text", "number", "fix"),
    [
        ('[[question]]\nask = "a"\nexpect = ["x"]\n\n[[question]]\nask = "b\nexpect = ["y"]\n',
         "question #2", "fix the syntax"),
        ('[[question]]\nexpect = ["x"]\n', "question #1", 'ask = "the question"'),
        ('[[question]]\nask = "a"\nexpect = "x"\n', "question #1", 'expect = ["x"]'),
        ('[[question]]\nask = "a"\nexpect = []\n', "question #1", 'expect = ["..."]'),
        ('[[question]]\nask = "a"\nexpect = ["x"]\n[[question]]\nask = "b"\nexpected = ["y"]\n',
         "question #2", "the keys are ask, expect, file"),
        ('[[question]]\nask = "a"\nexpect = ["x"]\nfile = "dir/2025-Q2.md"\n', "question #1",
         "like \"2025-Q2.md\""),
        ('[[question]]\nask = "a"\nexpect = [1]\n', "question #1", 'expect = ["..."]'),
        ("title = 'no questions'\n", "no [[question]] tables", "add at least one [[question]]"),
        ('ask = "a\n', "before the first [[question]]", "fix the syntax"),
    ],
)  # fmt: skip
def test_a_malformed_file_is_one_line_naming_file_question_and_fix(
    tmp_path: Path, text: str, number: str, fix: str
) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_questions(p)
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == ExitCode.BAD_INPUT
    assert str(p) in message and number in message and fix in message, message


def test_missing_and_non_utf8_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such questions file"):
        load_questions(tmp_path / "nope.toml")
    p = tmp_path / "latin1.toml"
    p.write_bytes('[[question]]\nask = "café"\n'.encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        load_questions(p)


def test_dumps_round_trips_quotes_backslashes_and_cyrillic(tmp_path: Path) -> None:
    qs = [
        Question(1, 'Он сказал "да"?', ("a\\b", "1 200 000"), "2025-Q2.md"),
        Question(2, "plain", ("x",)),
    ]
    p = _write(tmp_path, dumps(qs, "header line", {1: "Мониторинг: II квартал"}))
    assert load_questions(p) == qs
    assert p.read_text("utf-8").startswith("# header line\n")


def test_normalise_ignores_case_and_every_kind_of_space() -> None:
    assert normalise("1\u00a0200\u202f000  РУБ") == normalise("1 200 000 руб")


# --------------------------------------------------------------------------- verdicts

CUR, OLD, OTHER = "curDoc", "oldDoc", "faqDoc"
TEXT = "# 2025-Q2\n\nАренда во втором квартале: 1 200 000 рублей.\n\nПрочее.\n"
DOCS = Docs(
    current={"2025-Q2.md": CUR},
    file_of={CUR: "2025-Q2.md", OLD: "2025-Q2.md"},
    texts={"2025-Q2.md": TEXT, "2025-Q1.md": "# 2025-Q1\n"},
)
Q = Question(1, "аренда 2025-Q2?", ("1 200 000",), "2025-Q2.md")


def chunk(doc: str, text: str, distance: float = 0.2, fmt: str = "markdown") -> dict[str, Any]:
    return {
        "document_id": doc,
        "document_name": f"name-{doc}",
        "chunk_id": "chunk_1",
        "text": text,
        "vector_distance": distance,
        "content_format": fmt,
        "document_type": "text",
    }


def test_passes_when_the_current_document_holds_every_fact() -> None:
    v = judge(Q, [chunk(CUR, "Аренда во втором квартале: 1\u00a0200\u00a0000 рублей.")], DOCS)
    assert v.ok and v.evidence == ("2025-Q2.md",) and v.top[0]["document"] == "2025-Q2.md"


def test_html_chunks_are_read_without_their_tags() -> None:
    html = "<p>Аренда во втором квартале: 1 200 000 рублей.</p>"
    assert judge(Q, [chunk(CUR, html, fmt="html")], DOCS).ok


def test_not_retrieved_when_no_chunk_of_the_file_comes_back() -> None:
    v = judge(Q, [], DOCS)
    assert (v.reason, v.ok) == ("not_retrieved", False) and "among the 0 returned" in v.detail


def test_not_retrieved_names_an_unattached_file_and_a_prompt_one() -> None:
    unattached = Docs(texts=DOCS.texts)
    v = judge(Q, [chunk(OTHER, "Другое.")], unattached)
    assert v.reason == "not_retrieved" and "no current document on the agent" in v.detail
    prompt = Docs(DOCS.current, DOCS.file_of, DOCS.texts, frozenset({"2025-Q2.md"}))
    assert "usage_mode prompt" in judge(Q, [], prompt).detail


def test_stale_when_the_fact_comes_from_an_old_version_or_an_old_index() -> None:
    old_doc = judge(Q, [chunk(OLD, "Аренда: 1 200 000 рублей (старое).")], DOCS)
    assert old_doc.reason == "stale_document" and OLD in old_doc.detail
    old_index = judge(Q, [chunk(CUR, "Аренда: 1 200 000 рублей (старое).")], DOCS)
    assert old_index.reason == "stale_document"


def test_other_document_when_only_another_doc_holds_the_fact() -> None:
    v = judge(Q, [chunk(OTHER, "FAQ: аренда 1 200 000."), chunk(CUR, "Прочее.")], DOCS)
    assert v.reason == "other_document" and "name-faqDoc" in v.detail


def test_fact_missing_when_the_right_document_lacks_it() -> None:
    v = judge(Q, [chunk(CUR, "Прочее.")], DOCS)
    assert v.reason == "fact_missing" and v.missing == ("1 200 000",)


def test_a_question_without_file_takes_any_current_chunk() -> None:
    q = Question(2, "аренда?", ("1 200 000",))
    assert judge(q, [chunk(OTHER, "FAQ: аренда 1 200 000.")], DOCS).ok
    assert judge(q, [chunk(OLD, "1 200 000")], DOCS).reason == "stale_document"
    assert judge(q, [], DOCS).reason == "not_retrieved"


def test_a_file_not_in_the_folder_fails() -> None:
    q = Question(3, "?", ("x",), "2030-Q1.md")
    assert judge(q, [chunk(CUR, "x")], DOCS).reason == "not_in_folder"


def test_every_expected_string_is_needed() -> None:
    q = Question(4, "?", ("1 200 000", "рублей", "евро"), "2025-Q2.md")
    v = judge(q, [chunk(CUR, "Аренда во втором квартале: 1 200 000 рублей.")], DOCS)
    assert v.reason == "fact_missing" and v.missing == ("евро",)


# --------------------------------------------------------------------------- agent tests


def test_test_names_carry_the_namespace_and_the_content_hash() -> None:
    name = agent_test_name("kb-sync", Q)
    assert name.startswith("kb-sync:question#") and digest_of(name, "kb-sync") == Q.digest
    assert digest_of(name, "other-ns") is None
    edited = Question(1, Q.ask, ("1 300 000",), Q.file)
    assert edited.digest != Q.digest and Question(9, Q.ask, Q.expect, Q.file).digest == Q.digest


def test_plan_reuses_by_hash_creates_the_missing_and_deletes_the_rest() -> None:
    q2 = Question(2, "b?", ("y",))
    existing = [
        {"id": "t1", "name": agent_test_name("kb-sync", Q)},
        {"id": "t1dup", "name": agent_test_name("kb-sync", Q)},
        {"id": "gone", "name": agent_test_name("kb-sync", Question(5, "removed?", ("z",)))},
        {"id": "theirs", "name": "someone else's test"},
    ]
    plan = plan_tests(existing, [Q, q2], "kb-sync")
    assert plan.reuse == {Q.digest: "t1"} and plan.create == [q2]
    assert [t["id"] for t in plan.delete] == ["t1dup", "gone"]


def test_the_success_condition_quotes_every_expected_string_for_the_judge() -> None:
    q = Question(1, "?", ('say "hi"', "1 200 000"))
    cond = success_condition(q)
    assert expected_strings(cond) == ['say "hi"', "1 200 000"]
    body = agent_test_body("kb-sync", q)
    assert body["type"] == "llm" and body["chat_history"][0] == {
        "role": "user",
        "message": "?",
        "time_in_call_secs": 0,
    }
    assert stand_in_judge(cond, 'She said: SAY "hi", 1\u00a0200 000.')[0] == "success"
    assert stand_in_judge(cond, "1 200 000")[0] == "failure"
    assert stand_in_judge("no quotes here", "anything")[0] == "unknown"


@pytest.mark.parametrize(
    ("run", "status"),
    [
        ({"status": "passed"}, "passed"),
        ({"status": "failed", "condition_result": {"result": "failure"}}, "failed"),
        ({"status": "failed", "condition_result": {"result": "unknown"}}, "errored"),
        ({"status": "failed", "condition_result": None}, "errored"),
        ({"status": "pending"}, "pending"),
        (None, "not_run"),
    ],
)
def test_a_runs_outcome(run: dict[str, Any] | None, status: str) -> None:
    assert outcome(run)[0] == status
