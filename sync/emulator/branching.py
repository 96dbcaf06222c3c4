"""Agent branches as domain operations: create one from a version, rename or archive it, merge
it into another [spec for the operations; [guess] for how a merge combines the two].

Every agent has a main branch (:meth:`~sync.emulator.models.Workspace.new_agent`); a change
made on another branch (an agent PATCH with ``branch_id``) stays off main until merged [docs].
A merge applies what the source changed since it branched (leaf by leaf: objects are walked,
arrays and scalars are leaves) onto the target; where the target changed the same leaf, the
later branch wins, or the source with ``force`` ("timestamp-based conflict resolution"
[spec]). The merged body passes the same checks as a PATCH (``rag_index_not_ready``).
"""

from __future__ import annotations

import copy
from typing import Any

import sync.emulator.exceptions as exc
from sync.emulator.agents import Agent, Branch, Version, deep_merge
from sync.emulator.models import Workspace

_GONE = object()  # a key the newer body no longer has
Path = tuple[str, ...]


class BranchNameTaken(exc.EmulatorError):
    """[guess] 409; the spec only says a name "is unique within the agent"."""

    def __init__(self, name: str) -> None:
        message = f"A branch named {name!r} already exists for this agent."
        super().__init__(409, exc.detail("branch_name_already_exists", message))


def _check_name(agent: Agent, name: str, branch: Branch | None = None) -> None:
    if any(b.name == name and b is not branch for b in agent.branches.values()):
        raise BranchNameTaken(name)


def create_branch(
    ws: Workspace, agent: Agent, data: dict[str, Any], new_kb: list[dict[str, Any]] | None
) -> tuple[Branch, Version]:
    """A branch from ``parent_version_id`` (a version of this agent, else 404) with the
    body's config changes applied; its first version."""
    found = agent.version_of(data["parent_version_id"])
    if found is None:
        raise exc.VersionNotFound(data["parent_version_id"])
    parent, version = found
    _check_name(agent, data["name"])
    changes = {k: data[k] for k in ("conversation_config", "platform_settings") if data.get(k)}
    body = deep_merge(copy.deepcopy(version.body), changes)
    if new_kb is not None:
        for loc in new_kb:
            ws.doc(loc["id"])
        body["conversation_config"]["agent"]["prompt"]["knowledge_base"] = new_kb
    ws.check_body(body)
    branch = Branch(
        ws.new_branch_id(),
        agent.agent_id,
        data["name"],
        data["description"],
        body,
        ws.now(),
        parent_branch_id=parent.id,
        base_body=copy.deepcopy(version.body),
    )
    agent.branches[branch.id] = branch
    return branch, ws.commit(branch, "", out_of_branch_parent_id=version.id)


def patch_branch(agent: Agent, branch: Branch, changes: dict[str, Any]) -> None:
    """Rename, archive or protect; main is never archived [guess: 400]."""
    if "name" in changes:
        _check_name(agent, changes["name"], branch)
    if changes.get("is_archived") and branch is agent.main:
        raise exc.BadRequest("cannot_archive_main_branch", "The main branch cannot be archived.")
    branch.name = changes.get("name", branch.name)
    branch.is_archived = changes.get("is_archived", branch.is_archived)
    branch.protection_status = changes.get("protection_status", branch.protection_status)


def merge(
    ws: Workspace, agent: Agent, source: Branch, target: Branch, archive: bool, force: bool
) -> Version:
    """Merge ``source`` into ``target`` (see the module doc); a version on the target."""
    if source is target:
        raise exc.BadRequest("invalid_merge", "A branch cannot be merged into itself.")
    base = source.base_body
    theirs = {path for path, _value in _changes(base, target.body)}
    source_wins = force or source.updated_at >= target.updated_at
    merged = copy.deepcopy(target.body)
    for path, value in _changes(base, source.body):
        if path not in theirs or source_wins:
            _put(merged, path, value)
    ws.check_body(merged)
    ws.relink(agent, target, _kb_ids(merged))
    target.body = merged
    version = ws.commit(
        target,
        f"Merged {source.name}",
        merged_from_branch_id=source.id,
        merged_from_version_id=source.version_id,
    )
    source.merged_into = target.id
    source.is_archived = source.is_archived or archive
    return version


def _changes(old: dict[str, Any], new: dict[str, Any], at: Path = ()) -> list[tuple[Path, Any]]:
    out: list[tuple[Path, Any]] = []
    for key in [*old, *(k for k in new if k not in old)]:
        before, after = old.get(key, _GONE), new.get(key, _GONE)
        if isinstance(before, dict) and isinstance(after, dict):
            out += _changes(before, after, (*at, key))
        elif before != after:
            out.append(((*at, key), after))
    return out


def _put(body: dict[str, Any], path: Path, value: Any) -> None:
    node = body
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value is _GONE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = copy.deepcopy(value)


def _kb_ids(body: dict[str, Any]) -> set[str]:
    prompt = body.get("conversation_config", {}).get("agent", {}).get("prompt", {})
    return {loc["id"] for loc in prompt.get("knowledge_base") or [] if isinstance(loc, dict)}
