"""Record ``emulator-loopback.jsonl``: kb-sync run as a subprocess against the emulator served
on 127.0.0.1 (NOT ElevenLabs), so ``make test`` replays a cassette and the replay mechanism
itself is tested. A customer's staging cassette goes next to it (see README.md here).

    PYTHONPATH=. .venv/bin/python tests/contract/cassettes/record_loopback.py \\
        tests/contract/cassettes/emulator-loopback.jsonl
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sync.cassette import Cassette
from sync.clock import SystemClock
from sync.emulator import Backend, serve

ROOT = Path(__file__).resolve().parents[3]
KEY = "sk_loopback_recording_0123456789"  # the emulator's own key: nothing real
LABEL = (
    "RECORDED AGAINST THE KB-SYNC EMULATOR served on 127.0.0.1, not against ElevenLabs: it "
    "tests the replay mechanism (0 differences expected). Recorded by "
    "tests/contract/cassettes/record_loopback.py."
)


def quarter(name: str, version: int) -> str:
    lines = [f"# Support notes {name}", ""]
    lines += [
        f"Paragraph {i} of {name}, version {version}: opening hours, refunds, parcels and "
        "gift cards for every regional storefront of the shop."
        for i in range(8)
    ]
    return "\n\n".join(lines) + "\n"


def record(out: Path) -> None:
    out.unlink(missing_ok=True)
    Cassette(out).mark("label", text=LABEL)
    backend = Backend(api_key=KEY, clock=SystemClock(), index_seconds=0.3)
    agent = backend.seed_agent(name="Loopback recording agent")
    backend.seed_document("Shop policies (unmanaged)", quarter("policies", 1), attach_to=[agent])
    with serve(backend) as server, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "quarters"
        folder.mkdir()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "TMPDIR": tmp,
            "ELEVENLABS_API_KEY": KEY,
            "ELEVENLABS_AGENT_ID": agent,
            "ELEVENLABS_BASE_URL": server.url,
            "KB_SYNC_NAMESPACE": "kb-sync",
            "KB_SYNC_RECORD_DIR": str(Path(tmp) / "runs"),
            "KB_SYNC_CASSETTE": str(out),
        }

        def kb(*argv: str) -> None:
            proc = subprocess.run(
                [sys.executable, "-m", "sync", *argv], env=env, capture_output=True, text=True
            )
            print(f"kb-sync {' '.join(argv)} -> {proc.returncode}", file=sys.stderr)
            if proc.returncode not in (0, 2):
                raise SystemExit(proc.stderr)

        for name in ("2025-Q1", "2025-Q2", "2025-Q3"):
            (folder / f"{name}.md").write_text(quarter(name, 1), encoding="utf-8")
        kb("plan", "--dir", str(folder))
        kb("push", "--dir", str(folder))
        (folder / "2025-Q2.md").write_text(quarter("2025-Q2", 2), encoding="utf-8")
        (folder / "2025-Q3.md").unlink()
        kb("push", "--dir", str(folder), "--strict-hash")
        kb("verify", "--dir", str(folder))
        kb("status", "--json")
        kb("rollback")
        kb("push", "--dir", str(folder))


if __name__ == "__main__":
    record(
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).with_name("emulator-loopback.jsonl")
    )
