"""The source's health: an unhealthy source never changes quarters/ nor calls the push."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sync.errors import ExitCode

from .gen_support import PushRecorder, Source, sample_bytes, sample_payload, snapshot


def drifted() -> dict[str, Any]:
    payload = sample_payload()
    del payload["quarters"][2]["quarter"]  # schema drift: the key field went missing
    return payload


UNHEALTHY: dict[str, tuple[Callable[[Source], None], str]] = {
    "http_500": (lambda s: s.serve(b'{"error": "boom"}', status=500), "http_500"),
    "timeout": (lambda s: setattr(s, "hang", True), "timeout"),
    "empty_list": (lambda s: s.serve([]), "empty"),
    "empty_object": (lambda s: s.serve({"quarters": []}), "empty"),
    "empty_body": (lambda s: s.serve(b""), "invalid_json"),
    "truncated": (lambda s: s.serve(sample_bytes()[:1500]), "invalid_json"),
    "schema_drift": (lambda s: s.serve(drifted()), "schema"),
    "not_records": (lambda s: s.serve({"status": "ok"}), "schema"),
}


@pytest.mark.parametrize("check", [True, False], ids=["check", "no-check"])
@pytest.mark.parametrize("case", list(UNHEALTHY))
def test_unhealthy_source_changes_nothing_and_uploads_nothing(
    case: str,
    check: bool,
    source: Source,
    quarters: Path,
    gen: Callable[..., int],
    push: PushRecorder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    arrange, reason = UNHEALTHY[case]
    arrange(source)
    before = snapshot(quarters)
    argv = ["--source", source.url, "--out", str(quarters), "--upload"]
    argv += ["--timeout", "0.3", "--retries", "0"]
    started = time.monotonic()
    code = gen(*argv, *(["--check"] if check else []))
    assert code == ExitCode.SOURCE_UNHEALTHY
    assert snapshot(quarters) == before
    assert push.calls == []
    out = capsys.readouterr().out
    assert f"UNHEALTHY reason={reason}" in out
    assert "s3cret" not in out  # the query string (a token) never reaches the output
    assert time.monotonic() - started < 3


def test_schema_drift_names_the_field_and_the_record(
    source: Source, tmp_path: Path, gen: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    source.serve(drifted())
    assert gen("--source", source.url, "--out", str(tmp_path / "q"), "--retries", "0") == 7
    out = capsys.readouterr().out
    assert "record #2 has no key field 'quarter'" in out
    assert not (tmp_path / "q").exists()


def test_unreachable_source(
    tmp_path: Path, gen: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    # A port nobody listens on: connection refused, no retries wanted here.
    code = gen("--source", "http://127.0.0.1:9/x.json", "--out", str(tmp_path), "--retries", "0")
    assert code == 7
    assert "UNHEALTHY reason=unreachable" in capsys.readouterr().out


def test_missing_file_source_is_unhealthy(
    tmp_path: Path, gen: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert gen("--check", "--source", str(tmp_path / "nope.json"), "--out", str(tmp_path)) == 7
    assert "reason=unreachable" in capsys.readouterr().out


def test_retries_are_bounded(source: Source, tmp_path: Path, gen: Callable[..., int]) -> None:
    source.serve(b"{}", status=503)
    assert gen("--source", source.url, "--out", str(tmp_path), "--retries", "2") == 7
    assert source.hits == 3  # one try and two retries


def test_retry_recovers_from_one_500(
    source: Source, tmp_path: Path, gen: Callable[..., int]
) -> None:
    source.fail_first = 1
    assert gen("--source", source.url, "--out", str(tmp_path / "q"), "--retries", "3") == 0
    assert source.hits == 2
    assert len(list((tmp_path / "q").glob("*.md"))) == 6


def test_check_healthy_status_line(
    source: Source, quarters: Path, gen: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert gen("--check", "--source", source.url, "--out", str(quarters)) == 0
    first = capsys.readouterr().out.splitlines()[0]
    host = source.url.split("/json_ai.php")[0]
    assert first == f"source={host}/json_ai.php?... healthy records=6 existing=6"


def test_check_drop_beyond_max_drop_is_unhealthy(
    source: Source,
    quarters: Path,
    gen: Callable[..., int],
    push: PushRecorder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    payload = sample_payload()
    payload["quarters"] = payload["quarters"][:2]  # 6 -> 2: a drop of 67 %
    source.serve(payload)
    before = snapshot(quarters)
    assert gen("--check", "--upload", "--source", source.url, "--out", str(quarters)) == 7
    assert "UNHEALTHY reason=dropped" in capsys.readouterr().out
    assert snapshot(quarters) == before and push.calls == []
    # A looser threshold lets the same source through the check (the delete guard remains).
    assert (
        gen("--check", "--max-drop", "0.7", "--source", source.url, "--out", str(quarters))
        == ExitCode.REFUSED
    )
    assert snapshot(quarters) == before


def test_check_json_summary(
    source: Source, quarters: Path, gen: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    source.serve([])
    assert gen("--check", "--json", "--source", source.url, "--out", str(quarters)) == 7
    summary = json.loads(capsys.readouterr().out)
    assert summary["healthy"] is False
    assert summary["reason"] == "empty"
    assert summary["existing"] == 6
    assert summary["exit_code"] == 7

    source.serve(sample_bytes())
    assert gen("--check", "--json", "--source", source.url, "--out", str(quarters)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["healthy"] is True
    assert summary["records"] == 6
    assert summary["unchanged"] and summary["written"] == []


def test_source_from_env_and_missing_source(
    tmp_path: Path,
    gen: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert gen("--out", str(tmp_path)) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    # the house's one error line, as every other command's
    [line] = [ln for ln in err.splitlines() if ln.startswith("kb-sync: error: ")]
    assert line.startswith("kb-sync: error: no source: ") and "BIRBY_API_URL" in line
    from .gen_support import SAMPLE

    monkeypatch.setenv("BIRBY_API_URL", SAMPLE.as_uri())  # file:// works too
    assert gen("--out", str(tmp_path / "q")) == 0
    assert len(list((tmp_path / "q").glob("*.md"))) == 6


def test_bad_option_values(tmp_path: Path, gen: Callable[..., int]) -> None:
    from .gen_support import SAMPLE

    assert gen("--source", str(SAMPLE), "--max-drop", "1.5") == ExitCode.BAD_INPUT
    assert gen("--source", str(SAMPLE), "--timeout", "0") == ExitCode.BAD_INPUT
    assert gen("--source", "ftp://example.org/x.json") == ExitCode.BAD_INPUT
