"""The acceptance plugin: target and world fixtures, per-scenario evidence, allure attachments,
the HTML validation report at session end, and the API-key leak scan over reports/."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steps.questions import report_rows
from steps.target import ROOT, Faults, StagingRefused, Target, make_target
from steps.world import Evidence, World

SCENARIO_KEY = pytest.StashKey[dict[str, Any]]()
REPORTS = ROOT / "reports"
HTML_REPORT = "validation-report.html"
CASSETTE_TARGETS = ("http", "staging")  # the targets that write reports/cassette-<target>.jsonl

SECTIONS = [  # (marker, section title) in the handoff guide's order
    ("smoke", "5.1 Smoke test"),
    ("update", "5.2 Update one or two documents"),
    ("strict_hash", "5.3 Strict hash and zero churn"),
    ("rag_status", "6.1 Every RAG index status"),
    ("deletion", "Deletion safety"),
    ("observability", "8 Observability"),
    ("rollback", "9 Rollback"),
    ("dod", "10 Definition of done"),
    ("safety", "Safety: guards and bad input"),
    ("questions", "Questions the agent must answer"),
]
DOD_ITEMS = [
    "No duplicate entries",
    "Unmanaged entries untouched",
    "Every managed document indexed succeeded",
    "RAG search returns the current text of each updated document",
    "Old versions deleted or the reason logged",
    "The API key appears nowhere",
]


class _State:
    def __init__(self) -> None:
        self.scenarios: list[dict[str, Any]] = []
        self.started = time.time()
        self.target: Target | None = None
        self.target_name = "emulator"
        self.leaks: list[str] = []
        self.scan_files = 0
        self.report_path: Path | None = None


STATE = _State()


def reports_dir(config: pytest.Config) -> Path:
    return Path(os.environ.get("KB_SYNC_REPORTS_DIR", "") or REPORTS)


def cassette_path(reports: Path, target: str) -> Path:
    return reports / f"cassette-{target}.jsonl"


def _fidelity(reports: Path, target: str) -> dict[str, Any] | None:
    """The "Emulator fidelity" section: this target's cassette replayed against a fresh
    emulator (None when there is no cassette)."""
    path = cassette_path(reports, target)
    if not path.is_file():
        return None
    from sync.emulator.replay import replay_file
    from sync.emulator.replay_cassette import CassetteError
    from sync.emulator.replay_report import report_data

    try:
        return report_data(replay_file(path))
    except CassetteError as exc:
        return {"cassette": str(path), "error": str(exc)}
    except Exception as exc:  # a bug in the replay must not cost the report
        return {"cassette": str(path), "error": f"the replay failed: {type(exc).__name__}: {exc}"}


# ---------------------------------------------------------------------------- collection


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    target = config.getoption("--target")
    if target != "staging":
        return
    skip_fault = pytest.mark.skip(
        reason="needs fault injection (emulator targets only): the real API cannot be told to fail"
    )
    skip_emu = pytest.mark.skip(
        reason="needs emulator control (seeding other agents or legacy formats): not on staging"
    )
    for item in items:
        if item.get_closest_marker("fault"):
            item.add_marker(skip_fault)
        elif item.get_closest_marker("emulator_only"):
            item.add_marker(skip_emu)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    from tests.canary import CANARY_KEY

    name = request.config.getoption("--target")
    reports = reports_dir(request.config)
    try:
        t = make_target(name, reports, CANARY_KEY)
    except StagingRefused as exc:
        pytest.exit(f"staging guard: {exc}", returncode=4)
    runs = reports / "runs" / f"acceptance-{name}"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True, exist_ok=True)
    if name in CASSETTE_TARGETS:  # this session's exchanges, for the replay at the end
        t.cassette = cassette_path(reports, name)
        t.cassette.unlink(missing_ok=True)
    STATE.target, STATE.target_name = t, name
    t.start()
    # the finalizer runs even when scenarios fail: staging gets its knowledge base back
    request.addfinalizer(t.stop)
    yield t


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:80] or "scenario"


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    ev = Evidence()
    request.node.stash.setdefault(SCENARIO_KEY, {})["evidence"] = ev
    return ev


@pytest.fixture
def world(
    request: pytest.FixtureRequest, target: Target, evidence: Evidence, tmp_path: Path
) -> Iterator[World]:
    target.begin_scenario()
    target.record(request.node.name, {m.name for m in request.node.iter_markers()})
    record_dir = (
        reports_dir(request.config)
        / "runs"
        / f"acceptance-{target.name}"
        / _slug(request.node.name)
    )
    folder = tmp_path / "quarters"
    folder.mkdir()
    w = World(target=target, folder=folder, record_dir=record_dir, evidence=evidence)
    request.node.stash.setdefault(SCENARIO_KEY, {})["world"] = w
    yield w
    target.end_scenario()


@pytest.fixture
def faults(world: World) -> Faults:
    """The target's fault injection and emulator control (after ``world``: the scenario's own
    backend); skips with the reason where the target has none. The collection hook already
    skips ``@fault`` / ``@emulator_only`` scenarios there."""
    faults = world.target.faults
    if faults is None:
        pytest.skip(
            f"needs fault injection or emulator control: the {world.target.name} target has "
            "none (the real API cannot be told to fail)"
        )
    return faults


# ---------------------------------------------------------------------------- bdd hooks


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    info = request.node.stash.setdefault(SCENARIO_KEY, {})
    info["feature"] = feature.name
    info["scenario"] = scenario.name
    info["started"] = time.perf_counter()


def pytest_bdd_after_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    info = request.node.stash.setdefault(SCENARIO_KEY, {})
    info["seconds"] = time.perf_counter() - info.get("started", time.perf_counter())
    w: World | None = info.get("world")
    if w is None:
        return
    try:
        import allure
    except ImportError:  # pragma: no cover
        return
    from sync.log import redact

    for i, run in enumerate(w.runs, 1):
        label = f"{i}. {run.command.replace(str(w.folder), 'DIR')} (exit {run.exit_code})"
        allure.attach(
            redact(run.stdout) or "(no output)",
            name=f"{label}: plan and output",
            attachment_type=allure.attachment_type.TEXT,
        )
        allure.attach(
            redact(run.stderr) or "(no log)",
            name=f"{label}: log",
            attachment_type=allure.attachment_type.TEXT,
        )
        allure.attach(
            redact(json.dumps(run.calls, ensure_ascii=False, indent=1, default=str)),
            name=f"{label}: HTTP exchanges (no headers, key redacted)",
            attachment_type=allure.attachment_type.JSON,
        )
    seen: set[Path] = set()
    for run in w.runs:
        for rec in run.records:
            if rec in seen or not rec.exists():
                continue
            seen.add(rec)
            allure.attach(
                redact(rec.read_text("utf-8")),
                name=f"run record {rec.name}",
                attachment_type=allure.attachment_type.JSON,
            )
    allure.attach(
        json.dumps(w.evidence.to_dict(), ensure_ascii=False, indent=1, default=str),
        name="evidence",
        attachment_type=allure.attachment_type.JSON,
    )


# ---------------------------------------------------------------------------- outcomes


def _section(item: pytest.Item) -> str:
    for marker, title in SECTIONS:
        if item.get_closest_marker(marker):
            return title
    return "Other"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    info = item.stash.get(SCENARIO_KEY, None)
    if info is None and not item.nodeid.startswith("tests/acceptance"):
        return report
    info = item.stash.setdefault(SCENARIO_KEY, {})
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if report.skipped and hasattr(report, "wasxfail"):
            outcome = "xfail"
        elif report.skipped:
            outcome = "skipped"
        elif report.passed and hasattr(report, "wasxfail"):
            outcome = "xpass"
        else:
            outcome = report.outcome
        message = ""
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)[-2000:]
        elif report.skipped:
            lr = report.longrepr
            message = lr[2] if isinstance(lr, tuple) else str(getattr(report, "wasxfail", ""))
            if hasattr(report, "wasxfail"):
                message = str(report.wasxfail)
        ev: Evidence | None = info.get("evidence")
        w: World | None = info.get("world")
        STATE.scenarios.append(
            {
                "nodeid": item.nodeid,
                "feature": info.get("feature", ""),
                "name": info.get("scenario", item.name),
                "params": _params(item),
                "section": _section(item),
                "tags": sorted(
                    m.name
                    for m in item.iter_markers()
                    if m.name not in ("usefixtures", "parametrize")
                ),
                "outcome": outcome,
                "message": message,
                "seconds": round(float(info.get("seconds", report.duration)), 2),
                "agent": w.agent_id if w else "",
                **(ev.to_dict() if ev else {"checks": [], "commands": [], "facts": {}}),
            }
        )
    return report


def _params(item: pytest.Item) -> dict[str, str]:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return {}
    params = callspec.params.get("_pytest_bdd_example") or {}
    return {str(k): str(v) for k, v in dict(params).items()}


# ---------------------------------------------------------------------------- session end


def _leak_scan(key: str, reports: Path, outputs: list[str]) -> tuple[list[str], int]:
    found: list[str] = []
    n = 0
    needle = key.encode()
    for p in sorted(reports.rglob("*")) if reports.is_dir() else []:
        if not p.is_file():
            continue
        n += 1
        try:
            if needle in p.read_bytes():
                found.append(str(p))
        except OSError:
            continue
    for i, text in enumerate(outputs):
        if key in text:
            found.append(f"captured CLI output #{i + 1}")
    return found, n


def _dod(scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each definition-of-done item with the checks that proved it, failures first."""
    dod: list[dict[str, Any]] = []
    for item in DOD_ITEMS:
        checks = [
            {"scenario": s["name"], **c}
            for s in scenarios
            for c in s["checks"]
            if c.get("dod") == item
        ]
        checks.sort(key=lambda c: bool(c["ok"]))  # failures first
        if item == "The API key appears nowhere":
            ok = not STATE.leaks
            detail = (
                f"scanned {STATE.scan_files} files under reports/ and every captured CLI output"
                if ok
                else "FOUND in: " + ", ".join(STATE.leaks)
            )
            dod.append(
                {
                    "item": item,
                    "status": "passed" if ok else "failed",
                    "checks": [
                        {"scenario": "session leak scan", "item": item, "ok": ok, "detail": detail}
                    ],
                }
            )
            continue
        status = "missing" if not checks else "passed" if all(c["ok"] for c in checks) else "failed"
        dod.append({"item": item, "status": status, "checks": checks})
    dod.sort(key=lambda d: {"failed": 0, "missing": 1, "passed": 2}[str(d["status"])])
    return dod


def _what_it_proves(target: str, base_url: str, agents: list[str]) -> dict[str, str]:
    """What a reviewer needs in ten seconds: where the run went, against whom, and whether it
    is evidence for the staging agent at all."""
    if target == "staging":
        return {
            "where": f"staging at {base_url}",
            "base_url": base_url,
            "agent": ", ".join(agents) or "(none recorded)",
            "banner": "",
        }
    where = (
        "the in-process emulator (no network)"
        if target == "emulator"
        else "the emulator on loopback, kb-sync run as a subprocess"
    )
    return {
        "where": where,
        "base_url": "in-process" if target == "emulator" else base_url,
        "agent": f"one fresh emulator agent per scenario ({len(agents)} in all)",
        "banner": "emulator run: evidence for the code, not for your staging agent; "
        "run --target staging",
    }


def _commit() -> str:
    """The git commit the run tested, and "dirty" when the tree had changes."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return (head or "unknown") + (" (dirty: uncommitted changes)" if dirty else "")


def _report_data(session: pytest.Session) -> dict[str, Any]:
    from sync import __version__

    t = STATE.target
    scenarios = STATE.scenarios
    order = {"failed": 0, "xpass": 1, "xfail": 2, "passed": 3, "skipped": 4}
    scenarios.sort(key=lambda s: (order.get(s["outcome"], 9), s["section"], s["name"]))
    sections: list[dict[str, Any]] = []
    for _marker, title in [*SECTIONS, ("", "Other")]:
        mine = [s for s in scenarios if s["section"] == title]
        if not mine:
            continue
        outs = {s["outcome"] for s in mine}
        status = (
            "failed"
            if outs & {"failed", "xpass"}
            else "passed"
            if "passed" in outs
            else "xfail"
            if "xfail" in outs
            else "skipped"
        )
        sections.append({"title": title, "status": status, "scenarios": mine})
    sections.sort(key=lambda s: order.get(str(s["status"]), 9))
    dod = _dod(scenarios)
    totals: dict[str, int] = {}
    for s in scenarios:
        totals[s["outcome"]] = totals.get(s["outcome"], 0) + 1
    agents = sorted({s["agent"] for s in scenarios if s["agent"]})
    return {
        "title": "kb-sync acceptance: validation report",
        "target": STATE.target_name,
        "proves": _what_it_proves(STATE.target_name, t.base_url if t else "", agents),
        "commit": _commit(),
        "base_url": t.base_url if t else "",
        "namespace": t.namespace if t else "",
        "agents": agents,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(STATE.started)),
        "version": __version__,
        "python": platform.python_version(),
        "duration": round(time.time() - STATE.started, 1),
        "totals": totals,
        "ok": not totals.get("failed") and not totals.get("xpass") and not STATE.leaks,
        "sections": sections,
        "dod": dod,
        "leaks": STATE.leaks,
        "scan_files": STATE.scan_files,
        "fidelity": _fidelity(reports_dir(session.config), STATE.target_name),
        "questions": report_rows(scenarios),  # the "Questions" section (steps/questions.py)
    }


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not STATE.scenarios:
        return
    from sync.report import write_report
    from tests.canary import CANARY_KEY

    reports = reports_dir(session.config)
    key = STATE.target.key if STATE.target and STATE.target.key else CANARY_KEY
    outputs = STATE.target.outputs if STATE.target else []
    STATE.leaks, STATE.scan_files = _leak_scan(key, reports, outputs)
    name = session.config.getoption("--target")
    suffix = "" if name == "emulator" else f"-{name}"  # one report per target, side by side
    path = reports / HTML_REPORT.replace(".html", f"{suffix}.html")
    data = _report_data(session)
    write_report(path, data)
    (reports / f"validation-report{suffix}.json").write_text(
        json.dumps(data, ensure_ascii=False, indent=1, default=str), "utf-8"
    )
    more, _ = _leak_scan(key, reports, [])  # the HTML report itself too
    STATE.leaks = sorted(set(STATE.leaks) | set(more))
    STATE.report_path = path
    if STATE.leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    path = getattr(STATE, "report_path", None)
    if path is None:
        return
    terminalreporter.write_sep("-", "kb-sync acceptance")
    terminalreporter.write_line(f"HTML validation report: {path}")
    if STATE.leaks:
        terminalreporter.write_line(
            "API KEY LEAK: the key was found in " + ", ".join(STATE.leaks), red=True, bold=True
        )
    else:
        terminalreporter.write_line(
            f"leak scan: the API key is in none of {STATE.scan_files} files under reports/ "
            "nor in any captured CLI output"
        )
