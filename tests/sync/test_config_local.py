"""Settings and the local folder: every mistake is one line naming the thing and the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sync.config import default_namespace, load_settings
from sync.errors import ConfigError, GuardRefused, InputError
from sync.local import read_folder

from .conftest import Kit, para

OK = {"ELEVENLABS_API_KEY": "k" * 12, "ELEVENLABS_AGENT_ID": "agent_abc"}


def test_defaults() -> None:
    s = load_settings(OK)
    assert s.base_url == "https://api.elevenlabs.io"
    assert s.embedding_model == "multilingual_e5_large_instruct"
    assert s.index_timeout == 180
    assert s.namespace == default_namespace("agent_abc") != "kb-sync"  # one per agent
    assert s.legacy_namespace == "kb-sync" and s.folder == s.namespace
    explicit = load_settings({**OK, "KB_SYNC_NAMESPACE": "kb-sync-staging"})
    assert explicit.namespace == "kb-sync-staging" and explicit.legacy_namespace is None
    assert "k" * 12 not in repr(s)


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"ELEVENLABS_API_KEY": ""}, "ELEVENLABS_API_KEY"),
        ({"ELEVENLABS_AGENT_ID": ""}, "ELEVENLABS_AGENT_ID"),
        ({"ELEVENLABS_AGENT_ID": "agent x/y"}, "ELEVENLABS_AGENT_ID"),
        ({"RAG_EMBEDDING_MODEL": "ada"}, "RAG_EMBEDDING_MODEL"),
        ({"RAG_INDEXING_TIMEOUT": "soon"}, "RAG_INDEXING_TIMEOUT"),
        ({"RAG_INDEXING_TIMEOUT": "-5"}, "RAG_INDEXING_TIMEOUT"),
        ({"ELEVENLABS_BASE_URL": "ftp://x"}, "ELEVENLABS_BASE_URL"),
        ({"KB_SYNC_NAMESPACE": "Bad Name"}, "KB_SYNC_NAMESPACE"),
    ],
)
def test_bad_settings_name_the_variable(change: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({**OK, **change})
    assert names in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://api.elevenlabs.io", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:1", True),
        ("http://[::1]:9", True),
        ("http://api.elevenlabs.io", False),
        ("http://10.0.0.5", False),
    ],
)
def test_plain_http_only_on_loopback(url: str, ok: bool) -> None:
    env = {**OK, "ELEVENLABS_BASE_URL": url}
    if ok:
        assert load_settings(env).base_url == url.rstrip("/")
    else:
        with pytest.raises(GuardRefused):
            load_settings(env)


def test_folder_reading_normalises_and_sorts(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_bytes(b"\xef\xbb\xbfline1\r\nline2\r")
    (tmp_path / "a.md").write_text("Привет", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("ignored")
    docs = read_folder(tmp_path)
    assert [d.file for d in docs] == ["a.md", "b.md"]
    assert docs[1].text == "line1\nline2\n"
    assert docs[0].size_bytes == len("Привет".encode())


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("bad.md", b"caf\xe9", "not valid UTF-8"),
        ("bin.md", b"\x89PNG\x00\x00", "binary"),
        ("empty.md", b"", "empty"),
        ("blank.md", b"  \n\t\n", "empty"),
        ("huge.md", ("я" * 300_001).encode(), "300000"),
    ],
)
def test_unreadable_files_stop_the_run_naming_the_file(
    tmp_path: Path, name: str, content: bytes, needle: str
) -> None:
    (tmp_path / "good.md").write_text("fine")
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError) as e:
        read_folder(tmp_path)
    assert name in str(e.value) and needle in str(e.value)


def test_symlink_leaving_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "secret.md"
    outside.write_text("outside")
    folder = tmp_path / "q"
    folder.mkdir()
    (folder / "link.md").symlink_to(outside)
    with pytest.raises(InputError, match="symlink"):
        read_folder(folder)
    (folder / "link.md").unlink()
    (folder / "real.md").write_text("inside")
    (folder / "inner.md").symlink_to(folder / "real.md")
    assert [d.file for d in read_folder(folder)] == ["inner.md", "real.md"]


def test_case_only_differences_collide(tmp_path: Path) -> None:
    (tmp_path / "Q1.md").write_text("a")
    (tmp_path / "q1.md").write_text("b")
    with pytest.raises(InputError, match="differ only in case"):
        read_folder(tmp_path)


def test_missing_or_unreadable_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_folder(tmp_path / "nope")
    f = tmp_path / "file.md"
    f.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        read_folder(f)
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0)
        with pytest.raises(InputError, match="cannot be read"):
            read_folder(locked)


def _skipped_events(stderr: str) -> list[dict[str, Any]]:
    events = [json.loads(ln) for ln in stderr.splitlines() if ln.startswith("{")]
    return [e for e in events if e.get("event") == "folder.skipped"]


def test_entries_that_are_not_md_files_are_named_in_one_warning_not_synced(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    for name in ("UPPER.MD", "x.markdown", "notes.txt", "Q.Md"):
        kit.write(name, para(name))
    (kit.dir / "sub.md").mkdir()
    (kit.dir / ".gitkeep").write_text("")  # hidden: not content, not named
    r = kit.kb("--log-format", "json", "plan", "--dir", str(kit.dir), "--json")
    assert r.code == 0, r.stderr
    (warning,) = _skipped_events(r.stderr)
    assert warning["level"] == "warning"
    assert warning["files"] == ["Q.Md", "UPPER.MD", "notes.txt", "sub.md/", "x.markdown"]
    assert "only *.md files are synced" in warning["note"]
    plan = r.json()["plan"]
    assert [i["file"] for i in plan["items"]] == ["a.md"]  # the contract: *.md only
    assert plan["unsynced"] == ["Q.Md", "UPPER.MD", "x.markdown"]


def test_the_plan_names_markdown_files_that_are_not_synced(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    kit.write("UPPER.MD", para("u"))
    kit.write("x.markdown", para("x"))
    r = kit.kb("plan", "--dir", str(kit.dir))
    assert r.code == 0, r.stderr
    note = [ln for ln in r.stdout.splitlines() if ln.startswith("note:") and "UPPER.MD" in ln]
    assert note and "x.markdown" in note[0] and "rename" in note[0], r.stdout
    assert sum("folder.skipped" in ln for ln in r.stderr.splitlines()) == 1, r.stderr


def test_a_folder_of_md_files_only_says_nothing_about_skipped_ones(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    r = kit.kb("--log-format", "json", "plan", "--dir", str(kit.dir), "--json")
    assert r.code == 0 and _skipped_events(r.stderr) == [], r.stderr
    assert "unsynced" not in r.json()["plan"]


def test_a_long_list_of_skipped_names_is_cut_in_the_warning(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    for i in range(30):
        kit.write(f"n{i:02}.txt", "x")
    r = kit.kb("--log-format", "json", "plan", "--dir", str(kit.dir))
    (warning,) = _skipped_events(r.stderr)
    assert warning["count"] == 30 and len(warning["files"]) == 20, warning
