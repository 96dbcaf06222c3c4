"""Safety under failure: PATCH errors, dropped connections, 429s, concurrent edits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_bdd import given, parsers, then, when

from steps.target import Faults
from steps.world import World, unmanaged_text
from sync.testing import is_upload

if TYPE_CHECKING:
    from sync.emulator import Backend, Call


@given("the agent PATCH fails with HTTP 500 every time")
def patch_fails(world: World, faults: Faults) -> None:
    from sync.emulator import server_error

    faults.add_fault(server_error(500, method="PATCH", path=r"/agents/", times=None))
    world.evidence.fact("injected", "PATCH /v1/convai/agents/{id} answers 500, always")


@when("the API is healthy again")
def healthy_again(faults: Faults) -> None:
    faults.clear_faults()


@given("the connection drops right after the upload of a document is committed")
def drop_after_commit(world: World, faults: Faults) -> None:
    from sync.emulator import FaultRule

    faults.add_fault(
        FaultRule(method="POST", path=r"/knowledge-base/text$", times=1, drop_after_commit=True)
    )
    world.evidence.fact("injected", "first POST /knowledge-base/text: committed, then dropped")


@given(parsers.parse("the API answers 429 without Retry-After to the next {n:d} uploads"))
def rate_limited_uploads(world: World, faults: Faults, n: int) -> None:
    from sync.emulator import rate_limited

    faults.add_fault(rate_limited(None, method="POST", path=r"/knowledge-base/text$", times=n))
    world.evidence.fact("injected", f"{n} x 429 concurrent_limit_exceeded, no Retry-After")


def _creates(world: World) -> list[dict[str, Any]]:
    return [c for c in world.last.calls if is_upload(c)]


@then("no document was uploaded again: the indexed orphan was reused")
def orphan_reused(world: World) -> None:
    creates = _creates(world)
    world.evidence.check(
        "no second upload", not creates, f"{len(creates)} POST /knowledge-base/text"
    )
    world.evidence.check(
        "the plan reuses the orphan", "reuses" in world.last.stdout, world.last.stdout[-400:]
    )


@then(parsers.re(r'exactly one document holds the new version of "(?P<file>[^"]+)"$'))
def exactly_one(world: World, file: str) -> None:
    docs = world.target.docs_named(world.name_for(file))
    world.evidence.check(
        f"one document named {world.name_for(file)}",
        len(docs) == 1,
        f"{len(docs)} found: {[d['id'] for d in docs]}",
        dod="No duplicate entries",
    )


@then(parsers.parse("the log shows {n:d} retries of HTTP 429"))
def retries_logged(world: World, n: int) -> None:
    retries = [e for e in world.last.event("http.retry") if str(e.get("status")) == "429"]
    world.evidence.check(
        f"{n} http.retry lines for 429",
        len(retries) == n,
        "; ".join(f"attempt {e.get('attempt')} retry_in={e.get('retry_in')}" for e in retries),
    )


@dataclass
class PersonEdit:
    """What a person did in the UI while the run uploaded (filled in when it happens)."""

    edit: str
    attached: str | None = None  # the document they attached
    detached: str | None = None  # the entry they removed


@given(parsers.re(r"while the run uploads, someone (?P<edit>.+)$"), target_fixture="person_edit")
def concurrent_edit(world: World, faults: Faults, edit: str) -> PersonEdit:
    agent = world.agent_id
    done = PersonEdit(edit)
    fired: list[bool] = []

    def hook(backend: Backend, call: Call) -> None:
        if fired or not is_upload(call):
            return
        fired.append(True)
        if edit.startswith("attaches"):
            doc = backend.seed_document("Late FAQ", unmanaged_text("Late FAQ"))
            backend.attach(agent, doc)
            done.attached = doc
        else:
            q1 = world.synced["2025-Q1.md"]
            kb = [e for e in backend.agent_kb(agent) if e["id"] != q1]
            body = {"conversation_config": {"agent": {"prompt": {"knowledge_base": kb}}}}
            resp = backend.handle(
                "PATCH",
                f"/v1/convai/agents/{agent}",
                {},
                {"xi-api-key": world.target.key},
                json.dumps(body).encode(),
            )
            assert resp.status == 200, resp.body
            done.detached = q1

    faults.after_request.append(hook)
    world.evidence.fact("injected", f"during the upload someone {edit}")
    return done


@then("the person's edit is still on the agent")
def edit_kept(world: World, person_edit: PersonEdit) -> None:
    ids = [str(e["id"]) for e in world.kb()]
    if person_edit.attached is not None:
        ok = person_edit.attached in ids
        detail = "Late FAQ still attached" if ok else "Late FAQ was removed"
    else:
        ok = person_edit.detached not in ids
        detail = "2025-Q1.md stays detached" if ok else "kb-sync re-attached 2025-Q1.md"
        guard = [ln for ln in world.last.error_lines if "changed since the plan" in ln]
        world.evidence.check(
            "stale-plan guard message", bool(guard), " | ".join(world.last.error_lines)
        )
    world.evidence.check("the person's edit is kept", ok, detail)
