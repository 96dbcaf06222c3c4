"""5.1: the dry run reads the settings, reaches the agent and lists the plan."""

from __future__ import annotations

from pytest_bdd import parsers, then

from steps.world import World


@then(parsers.parse("the log shows the agent was read with {count:d} knowledge base entries"))
def agent_read(world: World, count: int) -> None:
    reads = world.last.event("remote.read")
    got = reads[-1].get("kb_entries") if reads else None
    count += world.target.baseline  # staging: the agent's own entries come first
    world.evidence.check(
        f"agent reached and read: {count} entries",
        str(got) == str(count) and reads[-1].get("agent") == world.agent_id,
        f"remote.read agent={reads[-1].get('agent') if reads else None} kb_entries={got}",
    )
    world.evidence.check(
        "settings read from the environment",
        not world.last.error_lines,
        "ELEVENLABS_API_KEY, ELEVENLABS_AGENT_ID, ELEVENLABS_BASE_URL, KB_SYNC_NAMESPACE",
    )


@then(parsers.re(r'the plan lists "(?P<new>[^"]+)" to create and "(?P<changed>[^"]+)" to update$'))
def plan_lists(world: World, new: str, changed: str) -> None:
    out = world.last.stdout
    lines = out.splitlines()

    def under(group: str, file: str) -> bool:
        try:
            start = next(i for i, ln in enumerate(lines) if ln.startswith(f"{group} ("))
        except StopIteration:
            return False
        for ln in lines[start + 1 :]:
            if not ln.startswith("  "):
                break
            if ln.strip().lstrip("+~- ").startswith(file):
                return True
        return False

    world.evidence.check(f"plan: + {new}", under("create", new), "")
    world.evidence.check(f"plan: ~ {changed}", under("update", changed), "")
    world.evidence.fact("plan output", out.strip())
