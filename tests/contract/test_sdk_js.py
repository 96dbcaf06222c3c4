"""The official JS SDK (``@elevenlabs/elevenlabs-js`` 2.73, the version API-NOTES names)
parses what the emulator answers: ``sdk_js_check.cjs`` drives the emulator served on
127.0.0.1 through the SDK. The SDK is installed by this test itself with npm into a cache
directory (``KB_SYNC_JS_SDK_DIR``, default ``~/.cache/kb-sync/js-sdk-2.73.0``), once.
Skipped when node/npm are missing or the install fails (no registry)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from sync.clock import SystemClock
from sync.emulator import Backend, serve

SDK = "@elevenlabs/elevenlabs-js@2.73.0"
SCRIPT = Path(__file__).with_name("sdk_js_check.cjs")
KEY = "sdk-key"


def _installed(where: Path) -> bool:
    return (where / "node_modules" / "@elevenlabs" / "elevenlabs-js" / "package.json").exists()


def sdk_dir() -> Path:
    default = Path.home() / ".cache" / "kb-sync" / "js-sdk-2.73.0"
    where = Path(os.environ.get("KB_SYNC_JS_SDK_DIR", default))
    if _installed(where):
        return where
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node/npm not installed: the JS SDK check needs them")
    # installed beside it and renamed into place: a run (another pytest-xdist worker, another
    # checkout's suite) that looks while an install is half done never sees a partial SDK
    where.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{where.name}.installing-", dir=where.parent))
    try:
        cmd = ["npm", "install", "--prefix", str(staging), "--no-audit", "--no-fund", SDK]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            pytest.skip(f"npm install {SDK} failed: {proc.stderr.strip()[-300:]}")
        with contextlib.suppress(OSError):  # another install got there first: use that one
            staging.rename(where)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not _installed(where):
        pytest.skip(f"{where} holds no complete {SDK} install: remove it and run again")
    return where


@pytest.mark.http
def test_the_js_sdk_parses_rag_query_branches_folders_dependents_and_batch_index() -> None:
    where = sdk_dir()
    backend = Backend(api_key=KEY, clock=SystemClock(), index_seconds=0.0)
    agent = backend.seed_agent(name="JS agent")
    backend.seed_document("Shipping FAQ", "Orders ship fast.\n\n" * 40, attach_to=[agent])
    with serve(backend) as server:
        proc = subprocess.run(
            ["node", str(SCRIPT), str(where), server.url, KEY, agent],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["branches"] == 2 and out["dependent_branches"] == 0
    assert out["listed"] == [out["doc"]]
    assert out["batch_status"] == "succeeded" and out["batch_failure"] == 404
    assert out["rag_chunks"] > 0 and "ship" in out["rag_text"]
