"""KB_SYNC_CASSETTE: every HTTP exchange of a kb-sync command, one JSON line each, no headers,
the key redacted; settings from the env given to the run (sync.config), not os.environ."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from sync.cassette import Cassette, line_of, query_lists, tee
from sync.config import load_settings
from sync.errors import ConfigError
from sync.log import register_secret
from tests.canary import CANARY_KEY

from .conftest import Kit, para

LINE_KEYS = {"method", "path", "query", "request", "status", "response", "elapsed", "at", "error"}


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in path.read_text("utf-8").splitlines()]


def test_every_exchange_of_a_push_is_one_line(kit: Kit, tmp_path: Path) -> None:
    cassette = tmp_path / "out" / "cassette.jsonl"  # its folder is created
    kit.write("2025-Q1.md", para("q1"))
    res = kit.kb("push", "--dir", str(kit.dir), env={**kit.env, "KB_SYNC_CASSETTE": str(cassette)})
    assert res.code == 0, res.stderr
    got = lines(cassette)
    assert len(got) == len(kit.exchanges) == len(kit.backend.calls)
    assert all(set(line) == LINE_KEYS for line in got)
    for line, call in zip(got, kit.backend.calls, strict=True):
        assert (line["method"], line["path"], line["status"]) == (
            call.method,
            call.path,
            call.status,
        )
        assert line["query"] == call.query  # a dict of lists, as the server saw it
        assert line["request"] == call.request_json
        assert isinstance(line["elapsed"], float) and line["elapsed"] >= 0
        assert line["at"] == pytest.approx(call.at)
    listing = [x for x in got if x["query"].get("types")]
    assert listing and all(x["query"]["types"] == ["folder"] for x in listing)
    content = [x for x in got if x["path"].endswith("/content")]
    assert all(isinstance(x["response"], str) for x in content)


def test_successive_commands_append(kit: Kit, tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    env = {**kit.env, "KB_SYNC_CASSETTE": str(cassette)}
    kit.write("2025-Q1.md", para("q1"))
    assert kit.kb("plan", "--dir", str(kit.dir), env=env).code == 0
    first = len(lines(cassette))
    assert kit.kb("status", env=env).code == 0
    assert len(lines(cassette)) > first


def test_the_key_is_never_in_the_cassette(kit: Kit, tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    # the key inside a document, the name and the folder: it must still not reach the file
    kit.write("2025-Q1.md", para("q1") + f"\n\nkey {CANARY_KEY} and {json.dumps(CANARY_KEY)}")
    env = {**kit.env, "KB_SYNC_CASSETTE": str(cassette)}
    assert kit.kb("push", "--dir", str(kit.dir), env=env).code == 0
    assert kit.kb("verify", "--dir", str(kit.dir), env=env).code in (0, 6)
    text = cassette.read_text("utf-8")
    assert text and CANARY_KEY not in text
    assert "xi-api-key" not in text.lower()  # never a header


def test_a_failed_exchange_is_recorded_with_its_error(kit: Kit, tmp_path: Path) -> None:
    from sync.emulator import FaultRule

    cassette = tmp_path / "c.jsonl"
    kit.backend.add_fault(FaultRule("GET", "/agents/", times=1, status=503))
    res = kit.kb("status", env={**kit.env, "KB_SYNC_CASSETTE": str(cassette)})
    assert res.code == 0, res.stderr
    first = lines(cassette)[0]
    assert first["status"] == 503 and first["error"] is None


def test_an_unwritable_cassette_is_one_line_exit_5(kit: Kit, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = kit.kb("status", env={**kit.env, "KB_SYNC_CASSETTE": str(blocker / "c.jsonl")})
    assert res.code == 5
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("kb-sync: error:")]
    assert len(errors) == 1 and "KB_SYNC_CASSETTE" in errors[0]
    assert not kit.backend.calls  # checked before the first request


def test_the_setting_comes_from_the_env_given(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"ELEVENLABS_API_KEY": CANARY_KEY, "ELEVENLABS_AGENT_ID": "agent_x"}
    monkeypatch.setenv("KB_SYNC_CASSETTE", "/nonexistent/ignored.jsonl")
    assert load_settings(env).cassette is None
    assert load_settings({**env, "KB_SYNC_CASSETTE": " c.jsonl "}).cassette == "c.jsonl"


def test_query_lists() -> None:
    assert query_lists(None) == {}
    assert query_lists({"page_size": 100, "types": ["folder", "file"], "cursor": None}) == {
        "page_size": ["100"],
        "types": ["folder", "file"],
    }
    assert query_lists({"force": "true"}) == {"force": ["true"]}


def test_writer_is_thread_safe_and_redacts(tmp_path: Path) -> None:
    register_secret(CANARY_KEY)
    path = tmp_path / "c.jsonl"
    cassette = Cassette(path)

    def write(n: int) -> None:
        for i in range(50):
            cassette({"method": "GET", "path": f"/v1/{n}/{i}", "response": CANARY_KEY * 20})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = lines(path)
    assert len(got) == 200 and all(set(x) == LINE_KEYS for x in got)
    assert CANARY_KEY not in path.read_text("utf-8")
    cassette.mark("segment", name="s")
    assert lines(path)[-1] == {"mark": "segment", "name": "s"}


def test_line_of_and_tee(tmp_path: Path) -> None:
    line = line_of({"method": "GET", "path": "/p", "params": {"a": 1}, "elapsed": 0.1234567})
    assert line["query"] == {"a": ["1"]} and line["elapsed"] == 0.123457
    seen: list[dict[str, Any]] = []
    assert tee(seen.append, None) == seen.append
    both = tee(seen.append, tmp_path / "c.jsonl")
    assert both is not None
    both({"method": "GET", "path": "/p"})
    assert len(seen) == 1 and len(lines(tmp_path / "c.jsonl")) == 1
    with pytest.raises(ConfigError, match="KB_SYNC_CASSETTE"):
        Cassette(tmp_path / "c.jsonl" / "x")
