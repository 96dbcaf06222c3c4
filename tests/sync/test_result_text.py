"""The human result of a push says what happened to each file that did not get its new
version, and why, and what the deletes were: exit 3 must be readable without the log."""

from __future__ import annotations

from sync.errors import ExitCode

from .conftest import Kit, para


def test_a_partial_push_names_each_file_that_kept_its_old_version_and_why(kit: Kit) -> None:
    for f in ("a.md", "b.md"):
        kit.write(f, para(f"{f} v1"))
    assert kit.push().code == 0
    kit.backend.set_index_behaviour("kb-sync:b.md", "failed")
    kit.write("a.md", para("a.md v2"))
    kit.write("b.md", para("b.md v2"))
    r = kit.push()
    assert r.code == ExitCode.PARTIAL, r.stderr
    assert "Applied: 1 attached, 1 kept their old version" in r.stdout
    lines = r.stdout.splitlines()
    [kept] = [ln for ln in lines if ln.strip().startswith("kept the old version of")]
    assert "b.md" in kept and "failed" in kept
    # the deletes, by what they were: a.md's old version; b.md's upload that was not attached
    assert "  deleted: 1 old version, 1 unattached upload" in lines
