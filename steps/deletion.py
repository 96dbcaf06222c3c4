"""Deletion safety: lingering dependencies, other agents' documents never forced."""

from __future__ import annotations

from pytest_bdd import given, parsers, then

from steps.target import Faults
from steps.world import World


@given(parsers.parse("a detached document keeps its dependency for {times:d} delete attempts"))
def lingering(world: World, faults: Faults, times: int) -> None:
    faults.linger(times)
    world.evidence.fact("injected", f"dependency lingers for {times} delete attempts")


@given(
    parsers.re(r'another agent also uses the current version of "(?P<file>[^"]+)"$'),
    target_fixture="other_agent",
)
def other_agent_uses(world: World, faults: Faults, file: str) -> str:
    """The other agent's id, for the steps that check it (the ``other_agent`` fixture)."""
    other_agent = faults.seed_agent(name="Sales agent")
    faults.attach(other_agent, world.synced[file])
    world.evidence.fact("other agent", f"{other_agent} also uses {file} [{world.synced[file]}]")
    return other_agent


def _attempts(world: World, doc_id: str) -> list[dict[str, object]]:
    return [e for e in world.last.event("delete.attempt") if str(e.get("id")) == doc_id]


@then(
    parsers.re(
        r'the old version of "(?P<file>[^"]+)" was deleted after (?P<n>\d+) attempts, '
        r"(?P<outcome>deleted|force-deleted)$"
    )
)
def deleted_after(world: World, file: str, n: str, outcome: str) -> None:
    att = _attempts(world, world.synced[file])
    last = att[-1] if att else {}
    world.evidence.check(
        f"{file}: old version {outcome} at attempt {n}",
        str(last.get("attempt")) == n and last.get("outcome") == outcome,
        "; ".join(f"attempt {a.get('attempt')}: {a.get('outcome')}" for a in att),
        dod="Old versions deleted or the reason logged",
    )
    if outcome == "force-deleted":
        world.evidence.check(
            "forced only after the dependents were checked: only our agent",
            all(a.get("outcome") == "dependency lingers" for a in att[:-1]),
            "earlier attempts: " + ", ".join(str(a.get("outcome")) for a in att[:-1]),
        )


@then(
    parsers.re(
        r'the old version of "(?P<file>[^"]+)" is kept and reported as used by the other agent$'
    )
)
def kept_for_other(world: World, other_agent: str, file: str) -> None:
    old = world.synced[file]
    att = _attempts(world, old)
    last = att[-1] if att else {}
    world.evidence.check(
        f"{file}: old version kept, never forced",
        last.get("outcome") == "kept"
        and other_agent in str(last.get("used_by"))
        and not any(a.get("force") in (True, "True") for a in att)
        and world.target.doc(old) is not None,
        f"delete.attempt outcome={last.get('outcome')} used_by={last.get('used_by')}",
        dod="Old versions deleted or the reason logged",
    )
    done = world.last.event("run.done")
    world.evidence.check(
        "the run reports a partial result",
        bool(done) and done[-1].get("status") == "partial",
        f"run.done status={done[-1].get('status') if done else None}",
    )


@then(parsers.re(r'the other agent still has the old version of "(?P<file>[^"]+)"$'))
def other_still_has(world: World, other_agent: str, file: str) -> None:
    kb = world.target.kb(other_agent)
    world.evidence.check(
        f"other agent keeps {file}",
        any(str(e["id"]) == world.synced[file] for e in kb),
        f"{other_agent}: {[e['name'] for e in kb]}",
    )
