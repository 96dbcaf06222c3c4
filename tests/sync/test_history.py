"""Run history in ElevenLabs (issue 13): stored by every applied run, read by `history`,
`status`, `verify` and `rollback` from any machine (here: another record dir)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sync import history
from sync.emulator import server_error
from sync.testing import Killed

from .conftest import Kit, para


def runs(kit: Kit) -> dict[str, list[str]]:
    """run id -> the names of its stored parts."""
    out: dict[str, list[str]] = {}
    for d in kit.backend.docs.values():
        if d.name.startswith(f"run:{kit.agent_id}:"):
            out.setdefault(d.name.split(":")[3], []).append(d.name)
    return out


def run_id_of(stdout: str) -> str:
    found = re.search(r"-(?:push|rollback)-([0-9a-f]+)\.json", stdout)
    assert found, stdout
    return found[1]


def elsewhere(kit: Kit, tmp_path: Path, name: str) -> dict[str, str]:
    """The env of another machine: its own (empty) record dir."""
    return kit.env | {"KB_SYNC_RECORD_DIR": str(tmp_path / f"{name}-runs")}


def test_a_push_stores_one_complete_run_that_history_status_and_verify_report(kit: Kit) -> None:
    kit.write("a.md", para("v1"))
    pushed = kit.push()
    assert pushed.code == 0, pushed.stderr
    rid = run_id_of(pushed.stdout)
    stored = runs(kit)
    assert list(stored) == [rid]
    assert re.fullmatch(
        rf"run:{kit.agent_id}:\d{{8}}T\d{{12}}Z:{rid}:push:done:1of1", stored[rid][0]
    )
    meta = next(d for d in kit.backend.docs.values() if d.name == ".kb-sync")
    part = next(d for d in kit.backend.docs.values() if d.name.startswith("run:"))
    assert part.parent_id == meta.id  # inside .kb-sync, never attached, never indexed
    assert part.id not in {e["id"] for e in kit.backend.agent_kb(kit.agent_id)}
    assert kit.backend.index_status(part.id) is None

    kit.backend.clear_calls()
    h = kit.kb("history", "--json")
    assert h.code == 0, h.stderr
    assert [c for c in kit.backend.calls if c.method != "GET"] == []  # read-only
    data = json.loads(h.stdout)
    assert [(r["id"], r["kind"], r["complete"]) for r in data["runs"]] == [(rid, "push", True)]
    assert data["runs"][0]["summary"] == "1 to add, 0 to change, 0 to destroy"
    assert data["runs"][0]["host"] and data["keep"] == 10
    text = kit.kb("history").stdout
    assert rid in text and "complete" in text and "kb-sync rollback --to ID" in text

    st = json.loads(kit.kb("status", "--json").stdout)
    assert st["folder"]["name"] == "kb-sync" and st["folder"]["id"] == meta.parent_id
    assert st["history"]["count"] == 1 and st["history"]["newest"]["id"] == rid
    assert f"newest {data['runs'][0]['time']} push {rid} (complete)" in kit.kb("status").stdout
    ver = kit.kb("verify", "--dir", str(kit.dir))
    assert ver.code == 0 and "History: 1 stored run (1 complete)" in ver.stdout


def test_the_intent_is_stored_before_the_patch_and_done_before_the_first_delete(
    kit: Kit,
) -> None:
    kit.write("a.md", para("v1"))
    assert kit.push().code == 0
    kit.write("a.md", para("v2"))
    kit.backend.clear_calls()
    assert kit.push().code == 0
    writes = [(c.method, c.path, c.request_json) for c in kit.backend.calls if c.method != "GET"]

    def at(pred: object) -> int:
        return next(i for i, w in enumerate(writes) if pred(w))  # type: ignore[operator]

    intent = at(lambda w: w[0] == "POST" and str((w[2] or {}).get("name", "")).startswith("run:"))
    patch = at(lambda w: w[0] == "PATCH" and "/agents/" in w[1])
    done = at(lambda w: w[0] == "PATCH" and ":done:" in str((w[2] or {}).get("name", "")))
    first_delete = at(lambda w: w[0] == "DELETE" and "lease" not in w[1])
    assert intent < patch < done < first_delete


def test_rollback_from_another_machine_and_a_rollback_of_the_rollback(
    kit: Kit, tmp_path: Path
) -> None:
    kit.write("a.md", "# A\n\n" + para("v1"))
    assert kit.push().code == 0
    v1 = {e["name"] for e in kit.backend.agent_kb(kit.agent_id)}
    kit.write("a.md", "# A\n\n" + para("v2"))
    assert kit.push().code == 0
    v2 = {e["name"] for e in kit.backend.agent_kb(kit.agent_id)}

    back = kit.kb("rollback", env=elsewhere(kit, tmp_path, "c"))
    assert back.code == 0, back.stderr
    assert {e["name"] for e in kit.backend.agent_kb(kit.agent_id)} == v1
    assert "rollback.source" in back.stderr
    again = kit.kb("rollback", env=elsewhere(kit, tmp_path, "d"))  # undoes the rollback
    assert again.code == 0, again.stderr
    assert {e["name"] for e in kit.backend.agent_kb(kit.agent_id)} == v2
    assert len(kit.managed_docs()) == 1  # no duplicates left behind
    kinds = [r["kind"] for r in json.loads(kit.kb("history", "--json").stdout)["runs"]]
    assert kinds == ["rollback", "rollback", "push", "push"]


def test_a_record_longer_than_a_part_spans_several_documents(
    kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "PART_LIMIT", 3000)
    for q in ("q1", "q2", "q3"):
        kit.write(f"{q}.md", f"# {q}\n\n" + para(q, 20))
    assert kit.push().code == 0
    before = {e["name"] for e in kit.backend.agent_kb(kit.agent_id)}
    for q in ("q1", "q2", "q3"):
        kit.write(f"{q}.md", f"# {q} revised\n\n" + para(q + "r", 20))
    second = kit.push()
    assert second.code == 0
    parts = runs(kit)[run_id_of(second.stdout)]
    assert len(parts) > 3 and all(":done:" in p for p in parts)  # it holds 3 saved docs
    assert all(len(d.text) <= 3000 for d in kit.backend.docs.values() if d.name in parts)
    assert kit.kb("rollback", env=elsewhere(kit, tmp_path, "c")).code == 0
    assert {e["name"] for e in kit.backend.agent_kb(kit.agent_id)} == before


def test_only_the_newest_runs_are_kept(kit: Kit) -> None:
    kit.env["KB_SYNC_HISTORY"] = "2"
    ids = []
    for v in range(4):
        kit.write("a.md", para(f"v{v}"))
        r = kit.push()
        assert r.code == 0, r.stderr
        ids.append(run_id_of(r.stdout))
    assert sorted(runs(kit)) == sorted(ids[-2:])
    assert "history.pruned" in r.stderr


def test_bad_history_setting_is_one_line(kit: Kit) -> None:
    kit.env["KB_SYNC_HISTORY"] = "0"
    r = kit.kb("status")
    assert r.code == 5 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("kb-sync: error: KB_SYNC_HISTORY='0' is not a number of runs")


def test_a_crash_at_the_patch_leaves_an_incomplete_run_that_rollback_refuses(
    kit: Kit, tmp_path: Path
) -> None:
    kit.write("a.md", para("v1"))
    first = kit.push()
    assert first.code == 0
    kit.write("a.md", para("v2"))

    def crash_at_patch(backend, call):  # type: ignore[no-untyped-def]
        if call.method == "PATCH" and "/agents/" in call.path:
            raise Killed

    kit.backend.after_request.append(crash_at_patch)
    assert kit.push().killed
    kit.backend.after_request.clear()
    listed = json.loads(kit.kb("history", "--json").stdout)["runs"]
    assert [r["complete"] for r in listed] == [False, True]
    assert "INCOMPLETE" in kit.kb("history").stdout
    on_now = [e["id"] for e in kit.backend.agent_kb(kit.agent_id)]
    r = kit.kb("rollback", env=elsewhere(kit, tmp_path, "c"))
    assert r.code == 5 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "is incomplete" in r.stderr and "--to ID" in r.stderr
    assert [e["id"] for e in kit.backend.agent_kb(kit.agent_id)] == on_now
    # the incomplete one by name is refused too; a complete one is undone
    assert kit.kb("rollback", "--to", listed[0]["id"]).code == 5
    # back to before the first push: every managed entry goes, so the guard asks first
    to_first = ("rollback", "--to", run_id_of(first.stdout))
    assert kit.kb(*to_first).code == 4
    assert kit.kb(*to_first, "--allow-mass-delete").code == 0
    assert kit.managed_kb() == [] and kit.managed_docs() == {}


def test_when_the_run_cannot_be_stored_after_the_patch_nothing_is_deleted(kit: Kit) -> None:
    kit.write("a.md", para("v1"))
    assert kit.push().code == 0
    old = kit.managed_kb()[0]["id"]
    kit.write("a.md", para("v2"))
    kit.backend.add_fault(
        server_error(500, method="PATCH", path=r"/knowledge-base/\w+$", times=None)
    )
    r = kit.push()
    assert r.code == 3, r.stderr  # the agent changed: not "unchanged"
    assert old in kit.backend.docs  # its content is not stored anywhere yet: kept
    assert kit.managed_kb()[0]["id"] != old
    kit.backend.clear_faults()
    assert kit.push().code == 0  # the next run cleans it up
    assert old not in kit.backend.docs


def test_unknown_or_unreadable_stored_runs_are_one_line(kit: Kit) -> None:
    kit.write("a.md", para("v1"))
    assert kit.push().code == 0
    r = kit.kb("rollback", "--to", "nosuchrun")
    assert r.code == 5 and r.stderr.startswith("kb-sync: error: --to nosuchrun: no stored run")
    part = next(d for d in kit.backend.docs.values() if d.name.startswith("run:"))
    part.text = "<p>edited by a person</p>"
    r = kit.kb("rollback")
    assert r.code == 5 and "is not readable" in r.stderr and r.stderr.count("\n") == 1


def test_without_any_stored_run_rollback_names_the_folder_and_local_records_need_record(
    kit: Kit,
) -> None:
    kit.write("a.md", para("v1"))
    pushed = kit.push()
    assert pushed.code == 0
    for d in [d for d in kit.backend.docs.values() if d.name.startswith("run:")]:
        del kit.backend.docs[d.id]  # as an earlier version left it: no history in ElevenLabs
    r = kit.kb("rollback")
    assert r.code == 5 and r.stderr.count("\n") == 1, r.stderr
    assert "kb-sync/.kb-sync holds no stored run" in r.stderr and "--record FILE" in r.stderr
    typo = kit.kb("rollback", "--folder", "kb-synk")
    assert typo.code == 5 and "kb-synk/.kb-sync does not exist" in typo.stderr
    record = re.search(r"Record: (\S+)", pushed.stdout)
    assert record, pushed.stdout
    r = kit.kb("rollback", "--record", record[1], "--allow-mass-delete")
    assert r.code == 0, r.stderr
    assert kit.managed_kb() == []


def test_folder_option_names_the_folder_for_push_history_and_rollback(kit: Kit) -> None:
    kit.write("a.md", para("v1"))
    assert kit.push("--folder", "Quarterly reports").code == 0
    folder = next(d for d in kit.backend.docs.values() if d.name == "Quarterly reports")
    doc = kit.managed_docs()
    assert [d.parent_id for d in doc.values()] == [folder.id]
    assert json.loads(kit.kb("history", "--json").stdout)["history"]["count"] == 0
    listed = json.loads(kit.kb("history", "--json", "--folder", "Quarterly reports").stdout)
    assert listed["history"]["count"] == 1
    assert kit.kb("rollback", "--folder", "Quarterly reports", "--allow-mass-delete").code == 0
    assert kit.managed_kb() == []
    bad = kit.kb("status", "--folder", "a/b")
    assert bad.code == 5 and "KB_SYNC_FOLDER='a/b' (or --folder) is not a folder name" in bad.stderr


@pytest.mark.parametrize("limit", [200, 1000, 290_000])
def test_parts_fit_the_limit_and_read_back_exactly(limit: int) -> None:
    nasty = 'q"uote\\ <p>&amp; Отчёт\n\t' * 400  # escapes grow it; markup must not survive raw
    data = {"kb_before": [{"name": nasty}], "saved": {"x": {"text": nasty * 3}}}
    parts = history.encode(data, "abc123def456", limit)
    assert all(len(p) <= limit for p in parts)
    assert not any(c in p for p in parts for c in "<>&")
    assert len(parts) == 1 if limit == 290_000 else len(parts) > 1
    text = "".join(
        history.decode_part(f"<p>{p}</p>", "abc123def456", i) for i, p in enumerate(parts, 1)
    )
    assert json.loads(text) == data


def test_rolling_back_an_older_run_deletes_what_later_runs_attached(kit: Kit) -> None:
    """Undo run 2 of 3: the agent gets run 2's starting point; run 3's document is detached
    by the PATCH and must not stay behind in the workspace (its content is saved first)."""
    ids = []
    for v in ("v1", "v2", "v3"):
        kit.write("a.md", "# A\n\n" + para(v))
        r = kit.push()
        assert r.code == 0, r.stderr
        ids.append(run_id_of(r.stdout))
    v3 = kit.managed_kb()[0]["id"]
    dry = kit.kb("rollback", "--to", ids[1], "--dry-run")
    assert "detach and delete 1 attached since" in dry.stdout, dry.stdout
    assert "note: the agent changed since run" in dry.stdout
    r = kit.kb("rollback", "--to", ids[1])
    assert r.code == 0, r.stderr
    assert v3 not in kit.backend.docs
    assert len(kit.managed_docs()) == 1 and kit.managed_kb()[0]["id"] in kit.managed_docs()
    again = kit.kb("rollback")  # and that rollback can be undone: v3 comes back
    assert again.code == 0, again.stderr
    assert kit.backend.docs[kit.managed_kb()[0]["id"]].text == "# A\n\n" + para("v3")


def test_a_rollback_never_prunes_with_this_machines_setting(kit: Kit) -> None:
    kit.env["KB_SYNC_HISTORY"] = "3"
    for v in ("v1", "v2", "v3"):
        kit.write("a.md", para(v))
        assert kit.push().code == 0
    laptop = kit.env | {"KB_SYNC_HISTORY": "1"}
    r = kit.kb("rollback", env=laptop)
    assert r.code == 0, r.stderr
    assert "history.pruned" not in r.stderr
    assert len(runs(kit)) == 4  # the cron's three and the rollback: the next push prunes


def test_history_and_rollback_name_a_wrong_agent(kit: Kit) -> None:
    wrong = kit.env | {"ELEVENLABS_AGENT_ID": "agent_" + "x" * 28}
    for argv in (("history",), ("rollback", "--dry-run")):
        r = kit.kb(*argv, env=wrong)
        assert r.code == 5 and r.stderr.count("\n") == 1, r.stderr
        assert "no such agent in this workspace (404)" in r.stderr


def test_a_rollback_with_nothing_to_undo_writes_nothing(kit: Kit) -> None:
    kit.write("a.md", para("v1"))
    assert kit.push().code == 0
    kit.write("a.md", para("v2"))
    assert kit.push().code == 0
    assert kit.kb("rollback").code == 0  # v1 again
    kit.backend.clear_calls()
    r = kit.kb("rollback", "--to", json.loads(kit.kb("history", "--json").stdout)["runs"][1]["id"])
    assert r.code == 0, r.stderr
    assert "Nothing to roll back" in r.stdout
    assert [c for c in kit.backend.calls if c.method != "GET"] == []


def test_a_rollback_checks_the_record_dir_before_any_write(kit: Kit, tmp_path: Path) -> None:
    kit.write("a.md", para("v1"))
    assert kit.push().code == 0
    kit.write("a.md", para("v2"))
    assert kit.push().code == 0
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    kit.backend.clear_calls()
    r = kit.kb("rollback", env=kit.env | {"KB_SYNC_RECORD_DIR": str(blocker / "runs")})
    assert r.code == 5 and "KB_SYNC_RECORD_DIR=" in r.stderr, r.stderr
    assert [c for c in kit.backend.calls if c.method != "GET"] == []


def test_one_run_id_for_the_lease_and_the_record_and_status_shows_a_stuck_lease(
    kit: Kit,
) -> None:
    kit.write("a.md", para("v1"))
    r = kit.push()
    assert r.code == 0
    lease = re.search(r"lease\.acquired id=\S+ run=([0-9a-f]+)", r.stderr)
    assert lease and lease[1] == run_id_of(r.stdout)
    meta = next(d for d in kit.backend.docs.values() if d.name == ".kb-sync")
    # what a run killed with SIGKILL leaves: its lease, never released
    kit.backend.seed_folder(f"lease:{kit.agent_id}:0123456789ab:1020:cron-1:42:push", meta.id)
    st = kit.kb("status")
    held = re.search(r"Lease: (\S+) held by host cron-1, pid 42, command push since", st.stdout)
    assert held, st.stdout
    assert f"kb-sync unlock {held[1]}" in st.stdout
    assert json.loads(kit.kb("history", "--json").stdout)["leases"][0]["id"] == held[1]
    bad = kit.kb("status", "--folder", ".kb-sync")
    assert bad.code == 5 and "is not a folder name" in bad.stderr


def test_verify_names_a_managed_document_no_entry_uses(kit: Kit) -> None:
    kit.write("a.md", para("v1"))
    assert kit.push().code == 0
    loose = kit.backend.seed_document("kb-sync:a.md#0123456789abcdef", para("old"))
    ver = kit.kb("verify", "--dir", str(kit.dir))
    assert ver.code == 0, ver.stdout  # reported, not failed: another agent may use it
    assert f"attached to no entry of this agent: kb-sync:a.md#0123456789abcdef [{loose}]" in (
        ver.stdout
    )
    data = json.loads(kit.kb("verify", "--dir", str(kit.dir), "--json").stdout)
    assert [d["id"] for d in data["unattached_managed"]] == [loose]
