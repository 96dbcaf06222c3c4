"""``kb-sync emulator replay PATH [--json]``: a cassette recorded against the emulator replays
with no difference; one edited in four places (a status, an error code, a key, an index
sequence) shows exactly those four; an unreadable one is exit 5 and one line naming the file
and the line. In-process (``sync.testing.run_cli``) and as a subprocess."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sync.clock import FakeClock
from sync.emulator import Backend, FaultRule, rate_limited
from sync.emulator.replay import replay_file
from sync.emulator.replay_cassette import CassetteError, load_cassette
from sync.emulator.replay_index import fit_index_seconds
from sync.emulator.replay_report import render_text
from sync.emulator.replay_spec import Spec
from sync.testing import Result, run_cli
from tests.canary import CANARY_KEY

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = ROOT / "tests" / "contract" / "cassettes" / "emulator-loopback.jsonl"
JSON_KEYS = {"exchanges", "agree", "differences"}
DIFF_KEYS = {"seq", "method", "path", "aspect", "recorded", "emulator"}


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in path.read_text("utf-8").splitlines() if raw.strip()]


def write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), "utf-8")
    return path


def replay_cli(*argv: str) -> Result:
    """``kb-sync emulator replay ...`` in-process (its output goes to sys.stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        res = run_cli(["emulator", "replay", *argv], {})
    return Result(res.code, out.getvalue(), res.stderr)


def subprocess_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "sync", "emulator", "replay", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --------------------------------------------------------------------------- no difference


def test_the_loopback_cassette_replays_with_no_difference() -> None:
    res = replay_cli(str(LOOPBACK))
    assert res.code == 0, res.stdout + res.stderr
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("fidelity: ") and "0 differences" in last
    assert "GET /v1/convai/agents/{agent_id}" in res.stdout  # the table, by operation


def test_json_as_a_subprocess() -> None:
    proc = subprocess_cli(str(LOOPBACK), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == JSON_KEYS
    assert out["exchanges"] == out["agree"] > 50 and out["differences"] == []


def test_a_cassette_recorded_in_process_replays_clean(tmp_path: Path) -> None:
    """Record with KB_SYNC_CASSETTE through the in-process emulator (a FakeClock), replay."""
    clock = FakeClock()
    backend = Backend(api_key=CANARY_KEY, clock=clock, index_seconds=3.0)
    agent = backend.seed_agent()
    backend.seed_document("Unmanaged FAQ", "Opening hours and refunds. " * 40, attach_to=[agent])
    folder = tmp_path / "quarters"
    folder.mkdir()
    for q in ("2025-Q1", "2025-Q2"):
        (folder / f"{q}.md").write_text(f"# {q}\n\n" + f"{q} notes on parcels. " * 40, "utf-8")
    cassette = tmp_path / "c.jsonl"
    env = {
        "ELEVENLABS_API_KEY": CANARY_KEY,
        "ELEVENLABS_AGENT_ID": agent,
        "KB_SYNC_RECORD_DIR": str(tmp_path / "runs"),
        "KB_SYNC_CASSETTE": str(cassette),
    }
    backend.add_fault(rate_limited(retry_after=1, method="GET", path="/agents/", times=1))
    backend.add_fault(FaultRule("POST", "/knowledge-base/text", times=1, status=503))
    for argv in (["push", "--dir", str(folder)], ["verify", "--dir", str(folder)]):
        res = run_cli(argv, env, backend=backend, clock=clock, cwd=tmp_path)
        assert res.code == 0, res.stderr
    assert CANARY_KEY not in cassette.read_text("utf-8")
    fid = replay_file(cassette)
    assert fid.differences == [], render_text(fid)
    assert fid.transient == 2  # the 429 and the 503, injected as recorded


# --------------------------------------------------------------------------- four edits


def edited(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """The loopback cassette with a status, an error code, a key and an index status changed;
    the seq of each edit."""
    lines = read(LOOPBACK)
    exchanges = [line for line in lines if "mark" not in line]
    seq = {id(x): i for i, x in enumerate(exchanges, 1)}
    at: dict[str, int] = {}
    listing = next(x for x in exchanges if x["path"] == "/v1/convai/knowledge-base")
    listing["status"] = 203
    at["status"] = seq[id(listing)]
    error = next(x for x in exchanges if x["status"] == 404)
    error["response"]["detail"]["status"] = "document_not_found"
    at["error"] = seq[id(error)]
    keyed = next(
        x for x in exchanges if x["path"] == "/v1/convai/knowledge-base" and x is not listing
    )
    keyed["response"]["more"] = keyed["response"].pop("has_more")
    at["keys"] = seq[id(keyed)]
    polled = [x for x in exchanges if x["method"] == "POST" and x["path"].endswith("/rag-index")]
    done, doc = next(  # kb-sync polls in batches: one document's answer in one of them
        (x, d)
        for x in polled
        for d, item in x["response"].items()
        if item["status"] == "success" and item["data"]["status"] == "succeeded"
    )
    done["response"][doc]["data"]["status"] = "processing"
    at["index"] = seq[id(done)]
    return write(tmp_path / "edited.jsonl", lines), at


def test_four_edits_are_exactly_four_differences(tmp_path: Path) -> None:
    path, at = edited(tmp_path)
    res = replay_cli(str(path), "--json")
    assert res.code == 6, res.stderr
    out = json.loads(res.stdout)
    assert set(out) == JSON_KEYS
    diffs = out["differences"]
    assert all(set(d) == DIFF_KEYS for d in diffs)
    assert sorted((d["aspect"], d["seq"]) for d in diffs) == sorted(
        (aspect, seq) for aspect, seq in at.items()
    ), diffs
    by = {d["aspect"]: d for d in diffs}
    assert (by["status"]["recorded"], by["status"]["emulator"]) == (203, 200)
    assert by["error"]["recorded"] == "document_not_found"
    assert by["error"]["emulator"] == "knowledge_base_documentation_not_found"
    assert "more" in by["keys"]["recorded"] and any(
        k.startswith("has_more") for k in by["keys"]["emulator"]
    )
    rec, emu = by["index"]["recorded"], by["index"]["emulator"]
    first = next(i for i, (a, b) in enumerate(zip(rec, emu, strict=True)) if a != b)
    assert (rec[first], emu[first]) == ("processing", "succeeded")
    assert out["agree"] == out["exchanges"] - 4


def test_the_text_output_puts_the_worst_operation_first(tmp_path: Path) -> None:
    path, _at = edited(tmp_path)
    proc = subprocess_cli(str(path))
    assert proc.returncode == 6, proc.stderr
    lines = proc.stdout.splitlines()
    head = lines.index(next(ln for ln in lines if ln.startswith("operation")))
    rows = [ln.split() for ln in lines[head + 1 : lines.index("", head)]]
    ratios = [int(r[3]) / int(r[2]) for r in rows]  # agree / exchanges
    assert ratios == sorted(ratios) and ratios[0] < 1 and ratios[-1] == 1
    assert lines[-1].startswith("fidelity: ") and "4 differences" in lines[-1]
    assert "What to do" in proc.stdout


def test_a_slow_call_is_a_timing_difference(tmp_path: Path) -> None:
    lines = read(LOOPBACK)
    slow = next(line for line in lines if line.get("method") == "PATCH")
    slow["elapsed"] = 4.5
    fid = replay_file(write(tmp_path / "slow.jsonl", lines))
    assert [(d.aspect, d.recorded) for d in fid.differences] == [("timing", 4.5)]


# --------------------------------------------------------------------------- unreadable


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        ('{"mark": "label", "text": "x"}\n{"method": "GET"\n', 2, "not JSON"),
        ("[1]\n", 1, "not a JSON object"),
        ('{"method": "FETCH", "path": "/v1", "status": 200}\n', 1, "method"),
        ('{"method": "GET", "path": "/v1", "status": "200"}\n', 1, "status"),
        ('{"method": "GET", "path": "/v1", "status": 200, "query": {"a": 1}}\n', 1, "query"),
        ("", 0, "no exchange"),
    ],
)
def test_an_unreadable_cassette_is_exit_5_one_line(
    tmp_path: Path, content: str, line: int, words: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, "utf-8")
    res = replay_cli(str(path))
    assert res.code == 5 and res.stdout == ""
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("kb-sync: error: cassette ")
    assert str(path) in errors[0] and words in errors[0]
    if line:
        assert f"line {line}:" in errors[0]
    with pytest.raises(CassetteError):
        load_cassette(path)


def test_a_missing_cassette_as_a_subprocess(tmp_path: Path) -> None:
    proc = subprocess_cli(str(tmp_path / "nope.jsonl"))
    assert proc.returncode == 5 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "nope.jsonl" in proc.stderr


def test_usage_errors_are_exit_5() -> None:
    res = replay_cli()
    assert res.code == 5 and "kb-sync: error:" in res.stderr


# --------------------------------------------------------------------------- parts


def test_without_the_spec_the_replay_says_so() -> None:
    fid = replay_file(LOOPBACK, spec=None)
    assert fid.spec is not None  # found in the source tree
    missing = Spec.find(Path("/nonexistent/spec.json"))
    assert missing is None
    from sync.emulator.replay import replay

    fid = replay(load_cassette(LOOPBACK), None)
    assert "spec: not checked" in render_text(fid) and fid.differences == []


def test_the_spec_check_finds_a_missing_required_key() -> None:
    spec = Spec.find()
    assert spec is not None
    path = "/v1/convai/knowledge-base/abc/rag-index"
    body = {"id": "i", "model": "m", "status": "succeeded", "progress_percentage": 100}
    assert spec.missing_required("POST", path, 200, body) == ["document_model_index_usage"]
    listing = {"documents": [{"id": "x", "type": "text"}], "has_more": False}
    assert any(
        k.startswith("documents[].")
        for k in spec.missing_required("GET", "/v1/convai/knowledge-base", 200, listing)
    )


def test_the_index_time_fit() -> None:
    assert fit_index_seconds([]) == 3.0
    # created at 0, succeeded 0.5 s later: any S in (0, 0.5]
    s = fit_index_seconds([(0.0, float("inf")), (0.0, 0.5)])
    assert 0 < s <= 0.5
    # one outlier (processing at 0.5 s) loses to two that say S <= 0.5
    s = fit_index_seconds([(0.0, 0.5), (0.0, 0.5), (0.5, 5.0)])
    assert 0 < s <= 0.5


def test_the_replay_runs_without_the_test_extra(tmp_path: Path) -> None:
    """Only the runtime dependencies: responses, jsonschema, openapi-core, pytest blocked."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'responses', 'jsonschema', 'openapi_core', 'pytest',\n"
        "                                  'hypothesis', 'elevenlabs'}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from sync.cli import main\n"
        f"raise SystemExit(main(['emulator', 'replay', {str(LOOPBACK)!r}]))\n"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "0 differences" in proc.stdout


def test_the_validation_report_shows_the_fidelity_section(tmp_path: Path) -> None:
    from sync.emulator.replay_report import report_data
    from sync.report import render_report

    path, _at = edited(tmp_path)
    data = report_data(replay_file(path))
    assert (data["exchanges"] - data["agree"], len(data["differences"])) == (4, 4)
    html = render_report(
        {
            "title": "t",
            "target": "staging",
            "sections": [],
            "dod": [],
            "totals": {},
            "agents": [],
            "leaks": [],
            "fidelity": data,
        }
    )
    assert "Emulator fidelity" in html and "What to do" in html
    assert html.count("<td>index</td>") == 1 and "document_not_found" in html
    assert "Emulator fidelity" not in render_report(
        {
            "title": "t",
            "target": "emulator",
            "sections": [],
            "dod": [],
            "totals": {},
            "agents": [],
            "leaks": [],
        }
    )
