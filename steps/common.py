"""Steps every feature uses: building the agent and the folder, running kb-sync, generic checks."""

from __future__ import annotations

import re

from pytest_bdd import given, parsers, then, when

from steps.world import World, quarter_text, same_size_edit, unmanaged_text

FILES = r'(?P<files>"[^"]+"(?:, "[^"]+")*)'


def file_list(files: str) -> list[str]:
    return re.findall(r'"([^"]+)"', files)


def seed_synced(world: World, file: str, content_format: str = "markdown") -> None:
    world.ensure_agent()
    text = quarter_text(file)
    world.write(file, text)
    doc_id = world.target.seed_document(
        world.name_for(file), text, world.agent_id, content_format=content_format
    )
    world.synced[file] = doc_id
    world.synced_text[file] = text


# ---------------------------------------------------------------------------- Given


@given("an agent whose knowledge base is:")
def agent_whose_kb_is(world: World, datatable: list[list[str]]) -> None:
    world.ensure_agent()
    header = [c.strip() for c in datatable[0]]
    for row in datatable[1:]:
        cells = dict(zip(header, (c.strip() for c in row), strict=True))
        entry, kind = cells["entry"], cells["kind"]
        if kind == "unmanaged":
            doc_id = world.target.seed_document(entry, unmanaged_text(entry), world.agent_id)
            world.unmanaged[entry] = doc_id
        elif kind == "synced":
            seed_synced(world, entry)
        else:
            raise ValueError(f"unknown kind {kind!r} (unmanaged | synced)")


@given(parsers.re(r'the agent also holds the synced quarter "(?P<file>[^"]+)"$'))
def also_synced(world: World, file: str) -> None:
    seed_synced(world, file)


@given(
    parsers.re(r'the agent also holds the synced quarter "(?P<file>[^"]+)" stored as legacy HTML$')
)
def also_synced_html(world: World, file: str) -> None:
    seed_synced(world, file, content_format="html")


@given(parsers.re(FILES + r" (?:is|are) edited locally$"))
def edited_locally(world: World, files: str) -> None:
    for f in file_list(files):
        stem = f.removesuffix(".md")
        world.write(
            f,
            world.files[f]
            + f"\nUpdate for {stem}: the returns desk now also answers on Saturdays.\n",
        )


@given(parsers.re(r'"(?P<file>[^"]+)" is edited locally keeping its size$'))
def edited_same_size(world: World, file: str) -> None:
    before = world.files[file]
    world.write(file, same_size_edit(before))
    world.evidence.fact(
        "same-size edit", f"{file}: {len(before.encode())} bytes before and after, new content"
    )


@given(parsers.re(r'"(?P<file>[^"]+)" is edited in the ElevenLabs UI keeping its size$'))
def edited_in_ui(world: World, file: str) -> None:
    doc_id = world.synced[file]
    old = world.synced_text[file]
    world.target.edit_in_ui(doc_id, same_size_edit(old))
    world.evidence.fact(
        "UI edit",
        f"{file} [{doc_id}]: content PATCHed on the server, same size ({len(old.encode())} "
        "bytes), name (and its fingerprint) unchanged",
    )


@given(parsers.re(FILES + r" (?:is|are) added locally$"))
def added_locally(world: World, files: str) -> None:
    for f in file_list(files):
        world.write(f, quarter_text(f))


@given(parsers.re(FILES + r" (?:is|are) removed locally$"))
def removed_locally(world: World, files: str) -> None:
    for f in file_list(files):
        world.remove(f)


@given(parsers.re(r'the small note "(?P<file>[^"]+)" is added locally$'))
def small_note(world: World, file: str) -> None:
    world.write(file, "# Holiday hours\n\nClosed on 24-26 December and 1 January.\n")


@given(parsers.re(r'"(?P<command>kb-sync [^"]+)" has been applied$'))
def has_been_applied(world: World, command: str) -> None:
    res = world.run(command)
    assert res.exit_code == 0, f"{command} exited {res.exit_code}:\n{res.stderr[-3000:]}"


# ---------------------------------------------------------------------------- When


@when(parsers.re(r'I run "(?P<command>[^"]+)"$'))
def i_run(world: World, command: str) -> None:
    world.run(command)


# ---------------------------------------------------------------------------- Then


@then(parsers.parse("the exit code is {code:d}"))
def exit_code_is(world: World, code: int) -> None:
    res = world.last
    world.evidence.check(
        f"{res.command.replace(str(world.folder), 'DIR')} exits {code}",
        res.exit_code == code,
        f"exit {res.exit_code}"
        + ("" if res.exit_code == code else "; stderr tail: " + res.stderr[-1500:]),
    )


@then(parsers.re(r'the plan reads "(?P<summary>[^"]+)"$'))
def plan_reads(world: World, summary: str) -> None:
    out = world.last.stdout
    world.evidence.check(
        f"plan: {summary}",
        f"Plan: {summary}." in out or f'"text": "{summary}"' in out,
        "" if f"Plan: {summary}." in out else "output: " + out[-1500:],
    )


@then("no write request was sent")
def no_writes(world: World) -> None:
    res = world.last
    writes = [f"{c['method']} {c['path']}" for c in res.writes]
    world.evidence.check(
        "no write request",
        not writes,
        f"{len(res.calls)} requests, all reads" if not writes else "writes: " + ", ".join(writes),
    )


@then("the agent's knowledge base is unchanged")
def kb_unchanged(world: World) -> None:
    now = world.kb()
    given = world.kb_given or []
    world.evidence.check(
        "agent's knowledge base unchanged",
        now == given,
        f"{len(now)} entries, same ids, names and order"
        if now == given
        else f"before {given} after {now}",
    )
    missing = [e["name"] for e in given if world.target.doc(e["id"]) is None]
    world.evidence.check("every referenced document still exists", not missing, ", ".join(missing))


@then("the agent's knowledge base holds the current version of each local file")
def kb_current(world: World) -> None:
    managed = world.managed_entries()
    problems = []
    for f, text in sorted(world.files.items()):
        entries = managed.get(f, [])
        if len(entries) != 1:
            problems.append(f"{f}: {len(entries)} entries")
            continue
        e = entries[0]
        doc = world.target.doc(e["id"])
        if e["name"] != world.name_for(f):
            problems.append(f"{f}: attached {e['name']}, expected {world.name_for(f)}")
        elif doc is None or doc["text"] != text:
            problems.append(f"{f}: document {e['id']} does not hold the local text")
    extra = sorted(set(managed) - set(world.files))
    problems += [f"{f}: attached but not in the folder" for f in extra]
    world.evidence.check(
        "one entry per local file, holding its current text",
        not problems,
        "; ".join(problems) or f"{len(world.files)} files, each attached once with its text",
        dod="No duplicate entries",
    )


def _unmanaged_untouched(world: World, byte_for_byte: bool) -> None:
    before = world.unmanaged_given
    now = world.snapshot_unmanaged()
    problems = []
    for doc_id, b in before.items():
        n = now.get(doc_id)
        name = b["entry"].get("name")
        if n is None:
            problems.append(f"{name}: detached")
            continue
        if n["entry"] != b["entry"]:
            problems.append(f"{name}: entry changed {b['entry']} -> {n['entry']}")
        if n["doc"] != b["doc"]:
            problems.append(f"{name}: document changed")
    order_before = [d for d, _ in sorted(before.items(), key=lambda kv: kv[1]["position"])]
    order_now = [d for d, _ in sorted(now.items(), key=lambda kv: kv[1]["position"]) if d in before]
    if order_before != order_now:
        problems.append("unmanaged entries changed their relative order")
    kb = world.kb()
    positions = {str(e["id"]): i for i, e in enumerate(kb)}
    detail = ", ".join(
        f"{b['entry'].get('name')} at {b['position']}->{positions.get(d)}"
        for d, b in before.items()
    )
    world.evidence.check(
        "unmanaged entries untouched" + (" byte for byte" if byte_for_byte else ""),
        not problems,
        "; ".join(problems) or detail + " (entry, name, text and updated_at identical)",
        dod="Unmanaged entries untouched",
    )


@then("the unmanaged entries are untouched")
def unmanaged_untouched(world: World) -> None:
    _unmanaged_untouched(world, False)


@then("the unmanaged entries are untouched byte for byte")
def unmanaged_untouched_bytes(world: World) -> None:
    _unmanaged_untouched(world, True)


@then(parsers.re(r'the error says "(?P<message>[^"]+)" in one line and nothing changed$'))
def error_one_line(world: World, message: str) -> None:
    res = world.last
    lines = res.error_lines
    world.evidence.check(
        f"one-line error mentioning {message!r}",
        len(lines) == 1 and message in lines[0],
        lines[0] if len(lines) == 1 else f"error lines: {lines}; stderr: {res.stderr[-800:]}",
    )
    no_writes(world)
    if world.agent_id:
        kb_unchanged(world)
