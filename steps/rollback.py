"""9: rollback brings the previous knowledge base back, even after deletion."""

from __future__ import annotations

import shlex
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_bdd import given, parsers, then, when

from steps.target import RunResult
from steps.world import World
from sync.naming import parse


@then("the agent's knowledge base equals the one before the push, by names and content")
def kb_equals_before(world: World) -> None:
    before = world.kb_before_push or []
    now = world.kb()
    world.evidence.check(
        "same entries by name, order and usage mode",
        [(e["name"], e.get("usage_mode")) for e in now]
        == [(e["name"], e.get("usage_mode")) for e in before],
        f"before {[e['name'] for e in before]}; now {[e['name'] for e in now]}",
    )
    wrong = []
    for e in now:
        doc = world.target.doc(str(e["id"]))
        if doc is None or doc["text"] != world.texts_before_push.get(str(e["name"])):
            wrong.append(str(e["name"]))
    world.evidence.check(
        "same content for every entry", not wrong, ", ".join(wrong) or f"{len(now)} entries"
    )
    world.evidence.fact("count after rollback", len(now))


@then(parsers.re(r'every recreated document is indexed "(?P<status>[^"]+)"$'))
def recreated_indexed(world: World, status: str) -> None:
    recreated = world.last.event("rollback.recreated")
    world.evidence.check("rollback recreated the deleted version", bool(recreated), "")
    for r in recreated:
        got = world.target.index_status(str(r.get("id")))
        world.evidence.check(
            f"{r.get('name')}: recreated [{r.get('id')}] indexed {status}",
            got == status,
            f"was {r.get('old_id')}; index {got}",
            dod="Every managed document indexed succeeded",
        )


@then("the documents the push created are deleted")
def created_deleted(world: World) -> None:
    push = next(r for r in world.runs if r.argv[:1] == ["push"])
    ids = [str(e.get("id")) for e in push.event("doc.uploaded")]
    left = [i for i in ids if world.target.doc(i) is not None]
    world.evidence.check(
        "what the push created is deleted", bool(ids) and not left, f"created {ids}; left {left}"
    )


# -- rollback from any machine: the history lives in ElevenLabs ---------------------------------
@dataclass
class Machine:
    """A machine of its own: its folder of quarters, HOME, temp dir and run records (on the
    loopback target each kb-sync is a subprocess started there)."""

    root: Path

    @property
    def quarters(self) -> Path:
        return self.root / "quarters"

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.root / "home"), "TMPDIR": str(self.root / "tmp")}


@pytest.fixture
def machines(world: World) -> dict[str, Machine]:
    return {}


def _machine(world: World, machines: dict[str, Machine], name: str) -> Machine:
    if name not in machines:
        m = Machine(world.folder.parent / f"machine-{name}")
        for sub in ("quarters", "home", "tmp", "runs"):
            (m.root / sub).mkdir(parents=True, exist_ok=True)
        machines[name] = m
    return machines[name]


def version_text(world: World, file: str, version: str) -> str:
    return (
        world.files[file]
        + f"\nRevision {version} of {file}: the figures of version {version} apply.\n"
    )


@given(
    parsers.re(r'machine "(?P<m>\w)" has the quarters with version "(?P<v>\w+)" of "(?P<f>[^"]+)"')
)
def machine_has(world: World, machines: dict[str, Machine], m: str, v: str, f: str) -> None:
    world.givens_done()
    mach = _machine(world, machines, m)
    for src in world.folder.glob("*.md"):
        shutil.copyfile(src, mach.quarters / src.name)
    (mach.quarters / f).write_text(version_text(world, f, v), encoding="utf-8")


def _run_on(world: World, mach: Machine, command: str) -> RunResult:
    argv = shlex.split(command)[1:]
    if argv[:1] == ["push"]:
        argv += ["--dir", str(mach.quarters)]
    env = world.env() | mach.env()
    res = world.target.run(argv, env, mach.root / "runs", mach.root)
    world.runs.append(res)
    world.evidence.commands.append(
        {
            "command": f"[machine {mach.root.name[-1]}] "
            + res.command.replace(str(mach.root), "."),
            "exit_code": res.exit_code,
            "seconds": round(res.seconds, 2),
            "requests": len(res.calls),
            "writes": len(res.writes),
        }
    )
    return res


@given(parsers.re(r'"(?P<command>kb-sync [^"]+)" has been applied on machine "(?P<m>\w)"$'))
def applied_on(world: World, machines: dict[str, Machine], command: str, m: str) -> None:
    res = _run_on(world, _machine(world, machines, m), command)
    assert res.exit_code == 0, f"{command} on {m} exited {res.exit_code}:\n{res.stderr[-3000:]}"


@when(parsers.re(r'I run "(?P<command>kb-sync [^"]+)" on a fresh machine "(?P<m>\w)"$'))
def run_on_fresh(world: World, machines: dict[str, Machine], command: str, m: str) -> None:
    assert m not in machines, f"machine {m} is not fresh"
    _run_on(world, _machine(world, machines, m), command)


@when(parsers.re(r'I run "(?P<command>kb-sync [^"]+)" on machine "(?P<m>\w)"$'))
def run_on(world: World, machines: dict[str, Machine], command: str, m: str) -> None:
    _run_on(world, _machine(world, machines, m), command)


@then(
    parsers.re(r'the agent holds version "(?P<v>\w+)" of "(?P<f>[^"]+)" and the others as given$')
)
def holds_version(world: World, v: str, f: str) -> None:
    want = {
        file: version_text(world, file, v) if file == f else text
        for file, text in world.files.items()
    }
    got = {}
    for file, entries in world.managed_entries().items():
        doc = world.target.doc(str(entries[0]["id"]))
        got[file] = None if doc is None else doc["text"]
    wrong = sorted(file for file in want if got.get(file) != want[file])
    world.evidence.check(
        f'the agent holds version "{v}" of {f}, every other file as given',
        not wrong and set(got) == set(want),
        ", ".join(wrong) or f"{len(got)} managed entries, contents as expected",
    )


@then(
    parsers.re(
        r"the workspace holds only our folder, its \.kb-sync, one document per file and at "
        r"most (?P<n>\d+) stored runs$"
    )
)
def workspace_inventory(world: World, n: str) -> None:
    ns, agent = world.target.namespace, world.agent_id
    ours = world.target.docs_named(ns)
    folders = [d for d in ours if d["name"] == ns]
    managed = [d for d in ours if parse(str(d["name"]), ns)]
    others = [d for d in ours if d not in folders and d not in managed]
    files = Counter(parse(str(d["name"]), ns).file for d in managed)  # type: ignore[union-attr]
    runs = {str(d["name"]).split(":")[3] for d in world.target.docs_named(f"run:{agent}:")}
    leases = world.target.docs_named(f"lease:{agent}:")
    world.evidence.check(
        "one KB folder named after the namespace", len(folders) == 1, f"{len(folders)} named {ns}"
    )
    world.evidence.check(
        "one managed document per local file",
        sorted(files) == sorted(world.files) and set(files.values()) == {1},
        f"{dict(files)}",
        dod="No duplicate entries",
    )
    world.evidence.check(
        "no other document of ours", not others and not leases, f"{others} {leases}"
    )
    world.evidence.check(
        f"at most {n} stored runs", 0 < len(runs) <= int(n), f"{len(runs)} stored runs"
    )
    backend = world.target.faults
    if backend is None:
        return  # staging: where each document is, is read by kb-sync status (folder lines)
    docs = backend.docs  # type: ignore[attr-defined]
    folder_id = folders[0]["id"] if folders else None
    outside = [d["name"] for d in managed if docs[d["id"]].parent_id != folder_id]
    meta = [d for d in docs.values() if d.name == ".kb-sync" and d.parent_id == folder_id]
    world.evidence.check("every managed document inside the folder", not outside, f"{outside}")
    world.evidence.check("one .kb-sync inside the folder", len(meta) == 1, f"{len(meta)}")
    stray = [
        d.name
        for d in docs.values()
        if d.name.startswith(f"run:{agent}:") and (not meta or d.parent_id != meta[0].id)
    ]
    world.evidence.check("every stored run inside .kb-sync", not stray, f"{stray}")
