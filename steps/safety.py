"""Safety: the staging-only guard, the mass-delete guard, bad input."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from steps.target import StagingRefused, check_staging_guard
from steps.world import Evidence, World


@given(
    parsers.re(
        r'the staging settings ELEVENLABS_AGENT_ID="(?P<agent>[^"]*)", '
        r'KB_SYNC_STAGING_CONFIRM="(?P<confirm>[^"]*)", '
        r'KB_SYNC_PRODUCTION_AGENT_IDS="(?P<production>[^"]*)"$'
    ),
    target_fixture="staging_env",
)
def staging_settings(agent: str, confirm: str, production: str) -> dict[str, str]:
    return {
        "ELEVENLABS_API_KEY": "staging-key-not-used",
        "ELEVENLABS_AGENT_ID": agent,
        "KB_SYNC_STAGING_CONFIRM": confirm,
        "KB_SYNC_PRODUCTION_AGENT_IDS": production,
    }


@when("the harness checks the staging guard", target_fixture="guard_result")
def check_guard(staging_env: dict[str, str]) -> tuple[bool, str]:
    try:
        cfg = check_staging_guard(staging_env)
    except StagingRefused as exc:
        return False, str(exc)
    return True, f"accepted staging agent {cfg.agent_id}"


@then(
    parsers.re(r'the guard (?P<result>accepts|refuses) with a message naming "(?P<names>[^"]+)"$')
)
def guard_verdict(
    guard_result: tuple[bool, str], result: str, names: str, evidence: Evidence
) -> None:
    ok, message = guard_result
    evidence.check(
        f"staging guard {result}",
        ok == (result == "accepts") and names in message and "\n" not in message,
        message,
    )


BAD_INPUTS = (
    "a file that is not UTF-8",
    "ELEVENLABS_API_KEY missing",
    "ELEVENLABS_AGENT_ID missing",
    "a wrong API key",
    "an unknown agent",
)


@given(parsers.re(r'the bad input "(?P<case>[^"]+)"$'))
def bad_input(world: World, case: str) -> None:
    if case == "a file that is not UTF-8":
        world.write("broken.md", b"# Notes\n\nCaf\xe9 opening hours \xff\xfe\n")
    elif case == "ELEVENLABS_API_KEY missing":
        world.env_removed.add("ELEVENLABS_API_KEY")
    elif case == "ELEVENLABS_AGENT_ID missing":
        world.env_removed.add("ELEVENLABS_AGENT_ID")
    elif case == "a wrong API key":
        world.env_overrides["ELEVENLABS_API_KEY"] = "wrong-key-0123456789"
    elif case == "an unknown agent":
        world.env_overrides["ELEVENLABS_AGENT_ID"] = "agent_doesnotexist00000000"
    else:
        raise ValueError(f"unknown bad input {case!r}; one of {BAD_INPUTS}")
    world.evidence.fact("bad input", case)
