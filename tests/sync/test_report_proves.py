"""The validation report says what it proves: target, URL, agent, commit; emulator runs say
they are not evidence for staging."""

from __future__ import annotations

from typing import Any

from steps.plugin import _what_it_proves
from sync.report import render_report


def page(target: str, base_url: str, agents: list[str], ok: bool = True) -> str:
    data: dict[str, Any] = {
        "title": "t",
        "target": target,
        "proves": _what_it_proves(target, base_url, agents),
        "commit": "abc123def456 (dirty: uncommitted changes)",
        "sections": [],
        "dod": [],
        "totals": {"passed": 3},
        "agents": agents,
        "leaks": [],
        "ok": ok,
    }
    return render_report(data)


def test_an_emulator_run_is_labelled_as_such_and_never_reads_accepted() -> None:
    html = page("emulator", "https://api.elevenlabs.io", ["agent_a", "agent_b"])
    assert "ACCEPTED" not in html and "PASSED on the emulator" in html
    assert "evidence for the code, not for your staging agent; run --target staging" in html
    assert "in-process" in html and "https://api.elevenlabs.io" not in html
    assert "one fresh emulator agent per scenario (2 in all)" in html
    assert "abc123def456 (dirty: uncommitted changes)" in html


def test_a_loopback_run_shows_its_url_and_the_banner() -> None:
    html = page("http", "http://127.0.0.1:40123", ["agent_a"])
    assert "http://127.0.0.1:40123" in html and "emulator on loopback" in html
    assert "not for your staging agent" in html


def test_a_staging_run_names_the_agent_and_has_no_banner() -> None:
    html = page("staging", "https://api.elevenlabs.io", ["agent_staging1"])
    assert "ACCEPTED: every check passed on staging" in html
    assert "staging at https://api.elevenlabs.io" in html and "agent_staging1" in html
    assert "not for your staging agent" not in html
    assert "NOT ACCEPTED" in page("staging", "https://x.io", ["a"], ok=False)
