"""The documents: rendering, stability, small records, the delete guard, dry-run, upload, shim."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sync import generate
from sync.errors import ExitCode

from .gen_support import REPO, SAMPLE, PushRecorder, Source, sample_payload, snapshot

SHIM = REPO / "sync-with-monitoring.py"


def test_sample_renders_readable_markdown(tmp_path: Path, gen: Callable[..., int]) -> None:
    out = tmp_path / "q"
    assert gen("--source", str(SAMPLE), "--out", str(out)) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        f"{q}.md" for q in ("2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2")
    ]
    raw = (out / "2025-Q1.md").read_bytes()
    text = raw.decode("utf-8")
    assert text.startswith("# Мониторинг сервиса «Бёрби»: I квартал 2025 года\n\n")
    assert "- **status**: стабильно\n" in text
    assert "## metrics\n\n- **uptime_percent**: 99.95\n" in text
    assert "| date | severity | duration_min | description |\n| --- | --- | --- | --- |\n" in text
    assert "в Новосибирске \\| откат балансировщика |" in text  # `|` escaped in a cell
    assert "## highlights\n\n- Запущен новый дашборд для дежурных\n" in text
    assert b"\r" not in raw and raw.endswith(b"\n") and not raw.endswith(b"\n\n")
    assert "2026-05-14" not in text  # nothing from outside the record (generated_at)
    for p in out.iterdir():
        assert len(p.read_bytes()) >= 500 or p.name == "2026-Q2.md"


def test_docs_are_stable_byte_for_byte_and_mtime_untouched(
    quarters: Path, gen: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(quarters)
    capsys.readouterr()
    assert gen("--source", str(SAMPLE), "--out", str(quarters)) == 0
    assert snapshot(quarters) == before  # bytes and mtime (the fixture set old mtimes)
    assert "written=0 unchanged=6 removed=0" in capsys.readouterr().out


def test_http_and_file_source_give_the_same_docs(
    source: Source, quarters: Path, gen: Callable[..., int]
) -> None:
    before = snapshot(quarters)
    assert gen("--check", "--source", source.url, "--out", str(quarters)) == 0
    assert snapshot(quarters) == before


def test_changed_record_rewrites_only_its_file_atomically(
    tmp_path: Path, quarters: Path, gen: Callable[..., int]
) -> None:
    payload = sample_payload()
    payload["quarters"][0]["status"] = "внимание"
    src = tmp_path / "changed.json"
    src.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    before = snapshot(quarters)
    assert gen("--source", str(src), "--out", str(quarters)) == 0
    after = snapshot(quarters)
    assert sorted(after) == sorted(before)  # no temp file left behind
    changed = [n for n in after if after[n] != before[n]]
    assert changed == ["2025-Q1.md"]
    assert "- **status**: внимание\n" in after["2025-Q1.md"][0].decode()


def test_small_record_is_reported(
    tmp_path: Path, gen: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert gen("--source", str(SAMPLE), "--out", str(tmp_path / "q")) == 0
    small = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("small ")]
    assert len(small) == 1
    assert small[0].startswith("small record=2026-Q2 file=2026-Q2.md bytes=")
    assert "--merge-small" in small[0]


def test_merge_small(tmp_path: Path, gen: Callable[..., int]) -> None:
    out = tmp_path / "q"
    assert gen("--merge-small", "--source", str(SAMPLE), "--out", str(out)) == 0
    assert not (out / "2026-Q2.md").exists()
    combined = (out / generate.COMBINED_NAME).read_text(encoding="utf-8")
    assert combined.startswith("# Combined small records\n")
    assert "## II квартал 2026 (идёт)\n" in combined
    assert "- **summary**: Квартал не закончен: итоги появятся в июле.\n" in combined
    assert len(list(out.glob("*.md"))) == 6


def test_merge_small_reaches_the_floor_with_several_small_records(
    tmp_path: Path, gen: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    records = [
        {"id": f"note-{i}", "name": f"Заметка {i}", "text": "Коротко о главном."} for i in range(5)
    ]
    src = tmp_path / "notes.json"
    src.write_text(json.dumps({"items": records}, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "q"
    assert gen("--merge-small", "--source", str(src), "--out", str(out)) == 0
    assert [p.name for p in out.iterdir()] == [generate.COMBINED_NAME]
    assert len((out / generate.COMBINED_NAME).read_bytes()) >= 500
    assert "still under" not in capsys.readouterr().out


def test_mass_delete_guard(
    tmp_path: Path,
    quarters: Path,
    gen: Callable[..., int],
    push: PushRecorder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    payload = sample_payload()
    payload["quarters"] = payload["quarters"][:2]
    src = tmp_path / "shrunk.json"
    src.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    before = snapshot(quarters)
    assert gen("--upload", "--source", str(src), "--out", str(quarters)) == ExitCode.REFUSED
    assert "refusing to remove 4 of the 6 documents" in capsys.readouterr().err
    assert snapshot(quarters) == before and push.calls == []
    assert gen("--allow-mass-delete", "--source", str(src), "--out", str(quarters)) == 0
    assert sorted(p.name for p in quarters.iterdir()) == ["2025-Q1.md", "2025-Q2.md"]


def test_removing_up_to_half_is_allowed(
    tmp_path: Path, quarters: Path, gen: Callable[..., int]
) -> None:
    payload = sample_payload()
    payload["quarters"] = payload["quarters"][:3]
    src = tmp_path / "half.json"
    src.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    assert gen("--source", str(src), "--out", str(quarters)) == 0
    assert len(list(quarters.glob("*.md"))) == 3


def test_dry_run_writes_nothing(
    tmp_path: Path,
    quarters: Path,
    gen: Callable[..., int],
    push: PushRecorder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fresh = tmp_path / "fresh"
    assert gen("--dry-run", "--source", str(SAMPLE), "--out", str(fresh)) == 0
    assert not fresh.exists()
    out = capsys.readouterr().out
    assert "would write file=2025-Q1.md" in out

    payload = sample_payload()
    payload["quarters"][1]["status"] = "изменено"
    payload["quarters"].pop()
    src = tmp_path / "changed.json"
    src.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    before = snapshot(quarters)
    code = gen("--dry-run", "--upload", "--source", str(src), "--out", str(quarters))
    assert code == 0
    assert snapshot(quarters) == before and push.calls == []
    out = capsys.readouterr().out
    assert "would write file=2025-Q2.md" in out and "(changed)" in out
    assert "would remove file=2026-Q2.md" in out


def test_mapping_options_and_unicode_file_names(tmp_path: Path, gen: Callable[..., int]) -> None:
    payload = {
        "result": {
            "rows": [
                {"код": "Квартал 1/2025", "заголовок": "Первый", "x": 1},
                {"код": "Квартал 2/2025", "заголовок": "Второй", "x": 2},
            ]
        }
    }
    src = tmp_path / "other.json"
    src.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "q"
    code = gen(
        "--records-key",
        "result.rows",
        "--key-field",
        "код",
        "--title-field",
        "заголовок",
        "--source",
        str(src),
        "--out",
        str(out),
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["Квартал-1-2025.md", "Квартал-2-2025.md"]
    assert (out / "Квартал-1-2025.md").read_text(encoding="utf-8").startswith("# Первый\n")


def test_two_records_one_file_name_is_an_error(
    tmp_path: Path, gen: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "dup.json"
    src.write_text(json.dumps([{"id": "a b"}, {"id": "a/b"}]), encoding="utf-8")
    assert gen("--source", str(src), "--out", str(tmp_path / "q")) == 7
    assert "#0 (id='a b') and #1 (id='a/b') both map to the file a-b.md" in (
        capsys.readouterr().out
    )
    assert not (tmp_path / "q").exists()


def test_custom_and_broken_template(
    tmp_path: Path, gen: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    tpl = tmp_path / "t.md.j2"
    tpl.write_text(
        "# {{ key }} — {{ title }}\r\n\r\n{{ record.metrics.uptime_percent }}"
        "{{ record.nope.deeper }}\r\n",
        encoding="utf-8",
    )
    out = tmp_path / "q"
    assert gen("--template", str(tpl), "--source", str(SAMPLE), "--out", str(out)) == 0
    assert (out / "2025-Q1.md").read_bytes() == (
        "# 2025-Q1 — Мониторинг сервиса «Бёрби»: I квартал 2025 года\n\n99.95\n".encode()
    )
    tpl.write_text("{% for x in %}", encoding="utf-8")
    before = snapshot(out)
    assert gen("--template", str(tpl), "--source", str(SAMPLE), "--out", str(out)) == 5
    assert str(tpl) in capsys.readouterr().err
    assert snapshot(out) == before


def test_upload_runs_push_in_process_after_a_healthy_generate(
    source: Source, tmp_path: Path, gen: Callable[..., int], push: PushRecorder
) -> None:
    out = tmp_path / "q"
    push.code = int(ExitCode.PARTIAL)
    code = gen(
        "--check",
        "--upload",
        "--strict-hash",
        "--index-wait",
        "5",
        "--small-docs",
        "prompt",
        "--source",
        source.url,
        "--out",
        str(out),
    )
    assert code == ExitCode.PARTIAL  # push's exit code is ours
    assert push.calls == [
        ["push", "--dir", str(out), "--strict-hash", "--index-wait", "5", "--small-docs", "prompt"]
    ]
    assert len(list(out.glob("*.md"))) == 6  # written before the push ran


def test_upload_through_the_real_cli(
    tmp_path: Path, gen: Callable[..., int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No credentials: the real push must refuse with its own bad-input exit code, proving it
    # was called in this process with our folder.
    for var in ("ELEVENLABS_API_KEY", "ELEVENLABS_AGENT_ID"):
        monkeypatch.delenv(var, raising=False)
    code = gen("--upload", "--source", str(SAMPLE), "--out", str(tmp_path / "q"))
    assert code == ExitCode.BAD_INPUT


def test_generate_through_the_real_cli(tmp_path: Path, source: Source) -> None:
    from sync.cli import main as cli_main

    out = tmp_path / "q"
    assert cli_main(["generate", "--check", "--source", source.url, "--out", str(out)]) == 0
    assert len(list(out.glob("*.md"))) == 6
    before = snapshot(out)
    source.serve(b"{}", status=500)
    argv = ["generate", "--check", "--upload", "--retries", "0", "--source", source.url]
    assert cli_main([*argv, "--out", str(out)]) == ExitCode.SOURCE_UNHEALTHY
    assert snapshot(out) == before


def _load_shim() -> object:
    spec = importlib.util.spec_from_file_location("sync_with_monitoring", SHIM)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shim_maps_its_options() -> None:
    shim = _load_shim()
    argv = shim.build_argv(["--check", "--upload-to-elevenlabs"])  # type: ignore[attr-defined]
    assert argv == ["generate", "--check", "--upload", "--out", str(REPO / "quarters")]
    argv = shim.build_argv(["--check", "--out", "x"])  # type: ignore[attr-defined]
    assert argv == ["generate", "--check", "--out", "x"]


def _shim(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVENLABS_", "BIRBY_"))}
    env["BIRBY_API_URL"] = source
    return subprocess.run(
        [sys.executable, str(SHIM), "--check", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_shim_runs_the_check_chain_as_a_subprocess(tmp_path: Path, source: Source) -> None:
    out = tmp_path / "quarters"
    done = _shim(tmp_path, str(SAMPLE), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "healthy records=6 existing=0" in done.stdout
    assert len(list(out.glob("*.md"))) == 6
    before = snapshot(out)

    done = _shim(tmp_path, SAMPLE.as_uri(), "--out", str(out))  # file:// URL
    assert done.returncode == 0, done.stderr
    assert snapshot(out) == before

    source.serve(b'[{"quarter": "2025-Q1", "title": "tru', status=200)
    done = _shim(tmp_path, source.url, "--out", str(out), "--retries", "0")
    assert done.returncode == ExitCode.SOURCE_UNHEALTHY
    assert "UNHEALTHY reason=invalid_json" in done.stdout
    assert snapshot(out) == before


def test_allow_mass_delete_reaches_the_push(
    tmp_path: Path, quarters: Path, gen: Callable[..., int], push: PushRecorder
) -> None:
    payload = sample_payload()
    payload["quarters"] = payload["quarters"][:1]
    src = tmp_path / "one.json"
    src.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    code = gen("--upload", "--allow-mass-delete", "--source", str(src), "--out", str(quarters))
    assert code == 0
    assert push.calls == [["push", "--dir", str(quarters), "--allow-mass-delete"]]


def test_render_blueprint() -> None:
    yaml = pytest.importorskip("yaml")
    blueprint = yaml.safe_load((REPO / "render.yaml").read_text(encoding="utf-8"))
    jobs = {s["name"]: s for s in blueprint["services"]}
    assert set(jobs) == {"kb-sync-staging", "kb-sync-production"}
    for job in jobs.values():
        assert job["type"] == "cron" and job["runtime"] == "python"
        assert job["buildCommand"] == "pip install ."
        assert (
            job["startCommand"] == "python3 sync-with-monitoring.py --check --upload-to-elevenlabs"
        )
        env = {e["key"]: e for e in job["envVars"]}
        for secret in ("ELEVENLABS_API_KEY", "ELEVENLABS_AGENT_ID", "BIRBY_API_URL"):
            assert env[secret] == {"key": secret, "sync": False}
        assert env["RAG_EMBEDDING_MODEL"]["value"] and env["RAG_INDEXING_TIMEOUT"]["value"]


def test_the_cron_output_says_each_file_and_the_small_record_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cron merges stdout and stderr: a file written is one line, not a line and a log
    event; the small record is said once, without a hint that is already the default."""
    from sync import cli

    out = tmp_path / "q"
    env = {"BIRBY_API_URL": str(SAMPLE)}
    assert cli.run(["generate", "--out", str(out), "--check"], env=env) == 0
    both = capsys.readouterr()
    text = both.out + both.err
    for f in sorted(p.name for p in out.glob("*.md")):
        assert text.count(f"file={f} ") + text.count(f"file={f}\n") <= 2, text  # write + small
        assert text.count(f"write file={f}") == 1
    assert text.count("small record=") == 1 and "--small-docs prompt" not in text
