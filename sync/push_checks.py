"""The read-only checks a push makes before it writes anything: the agent's RAG settings, the
small-document policy, the mass-delete guard and the RAG-quota pre-flight. Each refusal is one
line (:mod:`sync.errors`); the pure decisions are in :mod:`sync.guards`."""

from __future__ import annotations

import logging
from pathlib import Path

from .client import Client
from .config import Settings
from .errors import ConfigError, GuardRefused, InputError
from .guards import refuses_mass_delete
from .local import LocalDoc
from .log import event
from .plan import Plan, Snapshot

__all__ = ["check_agent", "check_small", "mass_delete_guard", "quota_preflight"]


def check_agent(snap: Snapshot, settings: Settings) -> None:
    if not snap.agent.rag_enabled:
        raise ConfigError(
            f"agent {settings.agent_id} has RAG disabled; enable RAG in the agent's knowledge "
            "base settings (kb-sync attaches documents for retrieval)"
        )
    model = snap.agent.embedding_model
    if model and model != settings.embedding_model:
        raise ConfigError(
            f"RAG_EMBEDDING_MODEL={settings.embedding_model} but agent {settings.agent_id} "
            f"retrieves with {model}; set RAG_EMBEDDING_MODEL="
            f"{model} (indexes must match the agent's model)"
        )


def check_small(local: list[LocalDoc], policy: str, folder: Path | None = None) -> None:
    small = [d.file for d in local if d.small]
    if small and policy == "fail":
        named = ", ".join(str(folder / f) if folder else f for f in small)
        raise InputError(
            f"{named}: under 500 bytes, too small to be RAG-indexed; merge them "
            "into a larger document or use --small-docs prompt"
        )
    for f in small:
        event(
            "doc.small",
            logging.WARNING,
            file=f,
            policy=policy,
            note="under 500 bytes: cannot be RAG-indexed",
        )


def mass_delete_guard(plan: Plan, allow: bool) -> None:
    removing = plan.count("delete")
    managed_files = plan.count("delete", "update", "unchanged", "adopt", "skip")
    if refuses_mass_delete(removing, managed_files, allow=allow):
        raise GuardRefused(
            f"the plan would delete {removing} of {managed_files} managed documents (an empty "
            "or truncated source?); check the folder, or pass --allow-mass-delete"
        )


def quota_preflight(client: Client, plan: Plan) -> None:
    adding = sum(i.size_bytes for i in plan.items if i.needs_upload and i.usage_mode == "auto")
    if not adding:
        return
    overview = client.rag_overview()
    used = int(overview.get("total_used_bytes", 0))
    cap = int(overview.get("total_max_bytes", 0))
    event("quota.preflight", used=used, max=cap, adding=adding)
    if cap and used + adding > cap:
        raise GuardRefused(
            f"RAG quota: {used} of {cap} bytes used and this run would add {adding}; remove "
            "unused documents from the workspace (kb-sync status shows them) or move to a "
            "larger plan. Nothing was uploaded"
        )
