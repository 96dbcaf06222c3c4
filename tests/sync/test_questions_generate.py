"""``kb-sync generate --questions FILE``: the default questions file from the monitoring data,
its options, and the whole chain over loopback (generate, push and ``verify --questions`` /
``--agent-tests`` as subprocesses against the emulator served on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.emulator import RemoteEmulator
from sync.generate.questions import expected
from sync.questions import load_questions
from sync.testing import run_cli

from .test_verify_rag import _kb
from .test_verify_rag import served as _loopback  # noqa: F401 - the `served` fixture

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "monitoring-sample.json"


def _gen(tmp_path: Path, *extra: str) -> tuple[int, str, Path]:
    q = tmp_path / "questions.toml"
    argv = [
        "generate",
        "--source",
        str(SAMPLE),
        "--out",
        str(tmp_path / "q"),
        "--questions",
        str(q),
    ]
    r = run_cli([*argv, *extra], {})
    return r.code, r.stdout + r.stderr, q


def test_one_or_two_questions_per_record_from_its_key_fields(tmp_path: Path) -> None:
    code, out, q = _gen(tmp_path)
    assert code == 0 and "questions wrote" in out
    qs = load_questions(q)
    assert len(qs) == 10  # 5 records x (status, summary); 2026-Q2 is under 500 bytes: prompt
    assert (qs[0].ask, qs[0].expect, qs[0].file) == (
        "2025-Q1: status?",
        ("стабильно",),
        "2025-Q1.md",
    )
    assert qs[1].expect == ("Квартал прошёл спокойно.",)  # a long value: its first sentence
    assert "# Мониторинг сервиса «Бёрби»: I квартал 2025 года (2025-Q1, status)" in q.read_text(
        "utf-8"
    )
    assert not any(x.file == "2026-Q2.md" for x in qs)


def test_the_file_is_only_rewritten_when_it_changes_and_never_on_dry_run(tmp_path: Path) -> None:
    _gen(tmp_path)
    q = tmp_path / "questions.toml"
    before = q.stat().st_mtime_ns
    code, out, _ = _gen(tmp_path)
    assert code == 0 and "questions unchanged" in out and q.stat().st_mtime_ns == before
    q.unlink()
    code, out, _ = _gen(tmp_path, "--dry-run")
    assert code == 0 and "questions would write" in out and not q.exists()


def test_fields_and_template_are_configurable(tmp_path: Path) -> None:
    code, _, q = _gen(
        tmp_path,
        "--question-fields",
        "metrics.uptime_percent",
        "--question-template",
        "{title}: {field} ({key})",
        "--merge-small",
    )
    qs = load_questions(q)
    assert code == 0 and len(qs) == 5 and qs[0].expect == ("99.95",)
    assert (
        qs[0].ask
        == "Мониторинг сервиса «Бёрби»: I квартал 2025 года: metrics.uptime_percent (2025-Q1)"
    )


def test_a_record_whose_document_cannot_be_retrieved_gets_no_question(tmp_path: Path) -> None:
    # 2026-Q2 is under 500 bytes alone and still is in _combined-small.md: prompt mode, never
    # retrieved, so a question about it could only fail
    _, out, q = _gen(tmp_path, "--merge-small")
    assert "still under 500" in out
    assert [x for x in load_questions(q) if x.ask.startswith("2026-Q2")] == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--question-template", "{nope}"], "--question-template"),
        (["--question-fields", " , "], "--question-fields"),
    ],
)
def test_bad_question_options_are_exit_5(tmp_path: Path, extra: list[str], message: str) -> None:
    code, out, q = _gen(tmp_path, *extra)
    assert code == 5 and message in out and not q.exists()


def test_long_values_without_a_short_first_sentence_are_left_out() -> None:
    assert expected("x" * 200) == "" and expected(12.5) == "12.5"


# --------------------------------------------------------------------------- over loopback


@pytest.mark.http
def test_the_chain_over_loopback(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    served: tuple[RemoteEmulator, dict[str, str]] = request.getfixturevalue("_loopback")
    remote, env = served
    out, q = tmp_path / "quarters", tmp_path / "questions.toml"
    gen = _kb(
        env,
        "generate",
        "--source",
        str(SAMPLE),
        "--out",
        str(out),
        "--questions",
        str(q),
        "--upload",
        "--index-wait",
        "30",
    )
    assert gen.returncode == 0, gen.stderr[-2000:]
    ok = _kb(env, "verify", "--dir", str(out), "--questions", str(q))
    assert ok.returncode == 0 and "Verify: OK" in ok.stdout, ok.stdout

    text = (out / "2025-Q2.md").read_text("utf-8")
    (out / "2025-Q2.md").write_text(
        text.replace("**status**: стабильно", "**status**: внимание"), "utf-8"
    )
    assert _kb(env, "push", "--dir", str(out), "--index-wait", "30").returncode == 0
    stale = _kb(env, "verify", "--dir", str(out), "--questions", str(q))
    assert stale.returncode == 6 and "FAIL  question #3: 2025-Q2: status?" in stale.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text('[[question]]\nask = "x"\n', encoding="utf-8")
    malformed = _kb(env, "verify", "--dir", str(out), "--questions", str(bad))
    assert malformed.returncode == 5 and len(malformed.stderr.strip().splitlines()) == 1

    first = _kb(env, "verify", "--dir", str(out), "--questions", str(q), "--agent-tests")
    second = _kb(env, "verify", "--dir", str(out), "--questions", str(q), "--agent-tests")
    assert "agent tests: 10 created, 0 reused, 0 deleted" in first.stdout, first.stdout
    assert "agent tests: 0 created, 10 reused, 0 deleted" in second.stdout, second.stdout
    assert "FAIL  agent test question #3: failed" in second.stdout
    assert len([c for c in remote.calls if c.path.endswith("/run-tests")]) == 2
