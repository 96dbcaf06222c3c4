"""The API's branch handlers (``/agents/{agent_id}/branches...``) and their views, as
:mod:`sync.emulator.responses` does for documents and agents; the operations themselves are
in :mod:`sync.emulator.branching`."""

from __future__ import annotations

from typing import Any

import sync.emulator.branching as branching
import sync.emulator.validation as check
from sync.emulator.agents import OWNER, Agent, Branch, Version
from sync.emulator.models import Workspace
from sync.emulator.wire import Request, Response

MOST_RECENT = 5  # [guess] how many versions a branch's view lists


def _base(agent: Agent, branch: Branch) -> dict[str, Any]:
    return {
        "id": branch.id,
        "name": branch.name,
        "agent_id": agent.agent_id,
        "description": branch.description,
        "created_at": int(branch.created_at),
        "last_committed_at": int(branch.updated_at),
        "is_archived": branch.is_archived,
        "protection_status": branch.protection_status,
        "access_info": dict(OWNER),
        "current_live_percentage": 100.0 if branch is agent.main else 0.0,
    }


def branch_summary(agent: Agent, branch: Branch) -> dict[str, Any]:
    """An item of ``GET .../branches`` (``AgentBranchSummary``)."""
    return {
        **_base(agent, branch),
        "parent_branch_id": branch.parent_branch_id,
        "draft_exists": False,
        "calls_7d": 0,
        "commits_ahead": None,  # only with include_commit_status (not emulated)
        "commits_behind": None,
        "merged_into_branch_id": branch.merged_into,
    }


def version_view(agent: Agent, version: Version) -> dict[str, Any]:
    return {
        "id": version.id,
        "agent_id": agent.agent_id,
        "branch_id": version.branch_id,
        "version_description": version.description,
        "seq_no_in_branch": version.seq,
        "time_committed_secs": int(version.at),
        "parents": dict(version.parents),
        "access_info": dict(OWNER),
    }


def branch_view(agent: Agent, branch: Branch) -> dict[str, Any]:
    """``GET .../branches/{id}`` (``AgentBranchResponse``)."""
    parent = agent.branches.get(branch.parent_branch_id or "")
    return {
        **_base(agent, branch),
        "parent_branch": None if parent is None else {"id": parent.id, "name": parent.name},
        "most_recent_versions": [
            version_view(agent, v) for v in reversed(branch.versions[-MOST_RECENT:])
        ],
    }


def _ok(data: Any) -> Response:
    return Response.of_json(200, data)


def list_branches(ws: Workspace, req: Request) -> Response:
    agent = ws.agent(req.params["agent_id"])
    include_archived, limit = check.branch_list_query(req)
    shown = [b for b in agent.branches.values() if include_archived or not b.is_archived]
    results = [branch_summary(agent, b) for b in shown[:limit]]
    return _ok({"meta": {"total": len(shown), "page": 1, "page_size": limit}, "results": results})


def create_branch(ws: Workspace, req: Request) -> Response:
    agent = ws.agent(req.params["agent_id"])
    data = check.create_branch_body(check.object_body(req))
    _patch, new_kb = check.agent_patch_body(
        {"conversation_config": data.get("conversation_config")}
    )
    branch, version = branching.create_branch(ws, agent, data, new_kb)
    return _ok({"created_branch_id": branch.id, "created_version_id": version.id})


def get_branch(ws: Workspace, req: Request) -> Response:
    agent = ws.agent(req.params["agent_id"])
    return _ok(branch_view(agent, ws.branch(agent, req.params["branch_id"])))


def patch_branch(ws: Workspace, req: Request) -> Response:
    agent = ws.agent(req.params["agent_id"])
    branch = ws.branch(agent, req.params["branch_id"])
    branching.patch_branch(agent, branch, check.patch_branch_body(check.object_body(req, False)))
    return _ok(branch_view(agent, branch))


def merge_branch(ws: Workspace, req: Request) -> Response:
    agent = ws.agent(req.params["agent_id"])
    source = ws.branch(agent, req.params["branch_id"])
    target_id, archive, force = check.merge_body(req)
    branching.merge(ws, agent, source, ws.branch(agent, target_id), archive, force)
    return _ok({})
