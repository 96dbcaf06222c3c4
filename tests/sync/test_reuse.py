"""An orphan (a managed document attached nowhere: a failed run's upload, or a version this
agent let go that another agent still uses) is reused only when its content is the local
file's, read back: its name says what kb-sync uploaded, not what a person made of it since
in the UI, and a reused document is attached without the upload that would have fixed it."""

from __future__ import annotations

import pytest

from sync.naming import fingerprint, managed_name
from sync.testing import is_upload

from .conftest import Kit, para


def tampered(text: str) -> str:
    """A same-size edit ("# v2" -> "# x2"): the name and the size still match."""
    edited = text.replace("# v", "# x", 1)
    assert len(edited.encode()) == len(text.encode()) and edited != text
    return edited


@pytest.mark.parametrize("strict", [False, True])
def test_an_orphan_edited_in_the_ui_is_not_reused(kit: Kit, strict: bool) -> None:
    kit.write("a.md", "# v1\n\n" + para("v1"))
    assert kit.push().code == 0
    v2 = "# v2\n\n" + para("v2")
    name = managed_name("kb-sync", "a.md", fingerprint(v2))
    orphan = kit.backend.seed_document(name, tampered(v2))  # attached nowhere
    kit.write("a.md", v2)
    kit.backend.clear_calls()
    r = kit.push(*(["--strict-hash"] if strict else []))
    assert r.code == 0, r.stderr
    [entry] = kit.managed_kb()
    assert entry["id"] != orphan
    assert kit.backend.docs[entry["id"]].text == v2  # what the folder holds, uploaded
    assert len([c for c in kit.backend.calls if is_upload(c)]) == 1
    assert orphan not in kit.backend.docs  # ours, attached nowhere, wrong: cleaned up


def test_an_orphan_with_the_files_content_is_reused_for_one_content_read(kit: Kit) -> None:
    kit.write("a.md", "# v1\n\n" + para("v1"))
    assert kit.push().code == 0
    [v1] = [e["id"] for e in kit.managed_kb()]
    v2 = "# v2\n\n" + para("v2")
    orphan = kit.backend.seed_document(managed_name("kb-sync", "a.md", fingerprint(v2)), v2)
    kit.write("a.md", v2)
    kit.backend.clear_calls()
    r = kit.push()
    assert r.code == 0, r.stderr
    assert [e["id"] for e in kit.managed_kb()] == [orphan]
    assert not [c for c in kit.backend.calls if is_upload(c)]
    reads = [c for c in kit.backend.calls if c.method == "GET" and c.path.endswith("/content")]
    # the orphan's, by the plan and by the plan again under the lease; v1's, saved for rollback
    assert [c.path.split("/")[-2] for c in reads] == [orphan, orphan, v1]
