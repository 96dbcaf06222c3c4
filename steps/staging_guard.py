"""The staging-only guard: ``--target staging`` runs only with an explicit confirmation and
never against an agent listed as production (docs/acceptance.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

EMULATOR_BASE = "https://api.elevenlabs.io"  # the real API: staging talks to it


class StagingRefused(Exception):
    """The staging guard refused to run (one clear line)."""


@dataclass(frozen=True)
class StagingConfig:
    api_key: str
    agent_id: str
    base_url: str


def check_staging_guard(env: Mapping[str, str]) -> StagingConfig:
    """The staging-only guard: explicit confirmation, never a production agent."""
    key = env.get("ELEVENLABS_API_KEY", "").strip()
    agent = env.get("ELEVENLABS_AGENT_ID", "").strip()
    confirm = env.get("KB_SYNC_STAGING_CONFIRM", "").strip()
    production = {
        p.strip() for p in env.get("KB_SYNC_PRODUCTION_AGENT_IDS", "").split(",") if p.strip()
    }
    if not key or not agent:
        raise StagingRefused(
            "--target staging needs ELEVENLABS_API_KEY and ELEVENLABS_AGENT_ID (the staging "
            "agent's id)"
        )
    if agent in production:
        raise StagingRefused(
            f"refusing agent {agent}: it is listed in KB_SYNC_PRODUCTION_AGENT_IDS; the "
            "acceptance suite only ever runs against a staging agent"
        )
    if not confirm:
        raise StagingRefused(
            f"--target staging writes to agent {agent}: confirm it is the staging agent with "
            f"KB_SYNC_STAGING_CONFIRM={agent}"
        )
    if confirm != agent:
        raise StagingRefused(
            f"KB_SYNC_STAGING_CONFIRM={confirm} does not match ELEVENLABS_AGENT_ID={agent}; "
            "set it to the staging agent's id"
        )
    base = env.get("ELEVENLABS_BASE_URL", "").strip() or EMULATOR_BASE
    return StagingConfig(api_key=key, agent_id=agent, base_url=base)
