"""A scenario's world: the agent, the local folder, the CLI runs and the evidence they leave."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steps.target import RunResult, Target
from sync.naming import fingerprint, managed_name, parse

# ---------------------------------------------------------------------------- document texts

_SHARED = [
    "Opening hours stay nine to five on weekdays, closed on public holidays.",
    "Refunds reach the original card within ten working days of the return.",
    "Parcels ship from the central warehouse and carry a tracking number.",
    "Account passwords can be reset from the login page with an email link.",
    "Gift cards never expire and can be combined with seasonal discounts.",
    "Invoices are available as PDF in the customer area for seven years.",
]


def quarter_text(file: str, version: int = 1) -> str:
    """A quarter's markdown, over 500 bytes, whose longest line is unique to (file, version)."""
    stem = file.removesuffix(".md")
    head = (
        f"Summary {stem} version {version:02d}: during {stem} the support desk resolved "
        f"billing, shipping and account questions for every regional storefront."
    )
    return f"# Support notes {stem}\n\n{head}\n\n" + "\n\n".join(_SHARED) + "\n"


def same_size_edit(text: str) -> str:
    """Change the version digits of the summary line: same byte length, new content."""
    import re

    m = re.search(r"version (\d\d):", text)
    assert m, "text has no version marker"
    new = f"{(int(m.group(1)) + 1) % 100:02d}"
    out = text[: m.start(1)] + new + text[m.end(1) :]
    assert len(out.encode()) == len(text.encode()) and out != text
    return out


def unmanaged_text(name: str) -> str:
    return (
        f"# {name}\n\nThis is the customer's own document {name!r}, uploaded by hand in the "
        "ElevenLabs UI. kb-sync must never modify, detach or delete it.\n\n"
        + "\n\n".join(reversed(_SHARED))
        + "\n"
    )


# ---------------------------------------------------------------------------- evidence


class CheckFailed(AssertionError):
    pass


@dataclass
class Evidence:
    """What a scenario proved, for the HTML report: checks (pass/fail + detail), CLI runs,
    and facts (counts before/after, updated docs, index statuses, deletions, timings)."""

    checks: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def check(self, item: str, ok: bool, detail: str = "", dod: str | None = None) -> None:
        self.checks.append({"item": item, "ok": bool(ok), "detail": detail, "dod": dod})
        if not ok:
            raise CheckFailed(f"{item}: {detail}" if detail else item)

    def fact(self, key: str, value: Any) -> None:
        self.facts[key] = value

    def to_dict(self) -> dict[str, Any]:
        return {"checks": self.checks, "commands": self.commands, "facts": self.facts}


# ---------------------------------------------------------------------------- the world


@dataclass
class World:
    target: Target
    folder: Path
    record_dir: Path
    evidence: Evidence
    agent_id: str = ""
    files: dict[str, str] = field(default_factory=dict)  # the local folder, file -> text
    synced: dict[str, str] = field(default_factory=dict)  # file -> doc id seeded as synced
    synced_text: dict[str, str] = field(default_factory=dict)  # file -> text seeded
    unmanaged: dict[str, str] = field(default_factory=dict)  # name -> doc id
    env_overrides: dict[str, str] = field(default_factory=dict)
    env_removed: set[str] = field(default_factory=set)
    runs: list[RunResult] = field(default_factory=list)
    kb_given: list[dict[str, Any]] | None = None  # the agent's KB when the Givens were done
    unmanaged_given: dict[str, dict[str, Any]] = field(default_factory=dict)
    kb_before_push: list[dict[str, Any]] | None = None  # before the last applied push
    texts_before_push: dict[str, str] = field(default_factory=dict)

    # -- building --------------------------------------------------------------------------
    def ensure_agent(self) -> str:
        if not self.agent_id:
            self.agent_id = self.target.new_agent()
        return self.agent_id

    def write(self, file: str, text: str | bytes) -> None:
        path = self.folder / file
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
            self.files[file] = text

    def remove(self, file: str) -> None:
        (self.folder / file).unlink()
        self.files.pop(file, None)

    def name_for(self, file: str, text: str | None = None) -> str:
        text = self.files[file] if text is None else text
        return managed_name(self.target.namespace, file, fingerprint(text))

    @property
    def last(self) -> RunResult:
        assert self.runs, "no kb-sync command ran yet"
        return self.runs[-1]

    # -- inspection ------------------------------------------------------------------------
    def kb(self) -> list[dict[str, Any]]:
        return self.target.kb(self.agent_id)

    def managed_entries(self, kb: list[dict[str, Any]] | None = None) -> dict[str, list[Any]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for e in self.kb() if kb is None else kb:
            m = parse(str(e.get("name", "")), self.target.namespace)
            if m:
                out.setdefault(m.file, []).append(e)
        return out

    def snapshot_unmanaged(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        kb = self.kb()
        for pos, e in enumerate(kb):
            if parse(str(e.get("name", "")), self.target.namespace):
                continue
            out[str(e["id"])] = {"entry": dict(e), "position": pos, "doc": self.target.doc(e["id"])}
        return out

    def givens_done(self) -> None:
        if self.kb_given is None and self.agent_id:
            self.kb_given = self.kb()
            self.unmanaged_given = self.snapshot_unmanaged()

    # -- the CLI ---------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = self.target.env(self.agent_id or "agent_missing0000")
        env.update(self.env_overrides)
        for k in self.env_removed:
            env.pop(k, None)
        return env

    def run(self, command: str) -> RunResult:
        self.givens_done()
        argv = shlex.split(command)
        if argv and argv[0] == "kb-sync":
            argv = argv[1:]
        if argv and argv[0] in ("push", "plan", "verify") and "--dir" not in argv:
            argv += ["--dir", str(self.folder)]
        is_push = argv[:1] == ["push"] and "--dry-run" not in argv
        if is_push and self.agent_id:
            self.kb_before_push = self.kb()
            self.texts_before_push = {
                str(e.get("name")): str((self.target.doc(e["id"]) or {}).get("text"))
                for e in self.kb_before_push
            }
        res = self.target.run(argv, self.env(), self.record_dir, self.folder.parent)
        self.runs.append(res)
        self._record(res)
        return res

    def _record(self, res: RunResult) -> None:
        ev = self.evidence
        ev.commands.append(
            {
                "command": res.command.replace(str(self.folder), "DIR"),
                "exit_code": res.exit_code,
                "seconds": round(res.seconds, 2),
                "requests": len(res.calls),
                "writes": len(res.writes),
            }
        )
        for done in res.event("run.done"):
            ev.fact("count before", done.get("count_before"))
            ev.fact("count after", done.get("count_after"))
            if done.get("updated"):
                ev.fact("updated documents", done.get("updated"))
            if done.get("kept_old_version"):
                ev.fact("kept their old version", done.get("kept_old_version"))
        results = res.event("index.result")
        if results:
            ev.fact(
                "index statuses",
                {str(r.get("file")): f"{r.get('status')} ({r.get('seconds')} s)" for r in results},
            )
        dels = res.event("delete.attempt")
        if dels:
            ev.fact(
                "deletions",
                [
                    f"{d.get('name')}: attempt {d.get('attempt')} -> {d.get('outcome')}"
                    + (f" (used by {d.get('used_by')})" if d.get("used_by") else "")
                    for d in dels
                ],
            )
        for p in res.event("plan"):
            ev.fact("plan", p.get("summary"))
