"""Deleting a superseded document, never one another agent or branch still uses.

A ``document_has_dependent_agents`` answer while only our own agent is listed is a lingering
dependency (the PATCH has not settled yet): retry with a back-off, and force only after the
dependents were read again right before, and show nobody else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .client import Client
from .clock import Clock
from .errors import ApiError, NotFound, SyncError
from .log import event
from .plan import Ref
from .remote import other_dependents


class Deleter:
    def __init__(
        self,
        client: Client,
        clock: Clock,
        agent_id: str,
        linger_attempts: int,
        attached_now: Callable[[], set[str]] | None = None,
    ) -> None:
        self.client, self.clock, self.agent_id = client, clock, agent_id
        self.linger_attempts = linger_attempts
        # the ids our agent uses at this moment (read again, never from the plan)
        self.attached_now = attached_now

    def delete(self, ref: Ref) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": ref.id,
            "name": ref.name,
            "reason": ref.reason,
            "attempts": 0,
            "forced": False,
        }
        for attempt in range(self.linger_attempts + 1):
            if attempt == self.linger_attempts:
                # checked again right before force: nobody else, and not our agent either
                if self._kept_for_others(ref, out, attempt) or self._attached(ref, out, attempt):
                    return out
                out["forced"] = True
            out["attempts"] = attempt + 1
            if self._attempt(ref, out, attempt):
                return out
            if self._kept_for_others(ref, out, attempt):
                return out
            event(
                "delete.attempt",
                id=ref.id,
                name=ref.name,
                attempt=attempt + 1,
                outcome="dependency lingers",
                retry_in=2**attempt,
            )
            self.clock.sleep(float(2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, ref: Ref, out: dict[str, Any], attempt: int) -> bool:
        """One DELETE; True when it is settled (deleted, gone, or failed for good)."""
        try:
            self.client.delete_document(ref.id, force=out["forced"])
            out["outcome"] = "force-deleted" if out["forced"] else "deleted"
            event(
                "delete.attempt",
                id=ref.id,
                name=ref.name,
                attempt=attempt + 1,
                force=out["forced"],
                outcome=out["outcome"],
                reason=ref.reason,
            )
            return True
        except NotFound:
            out["outcome"] = "already gone"
            event(
                "delete.attempt",
                id=ref.id,
                name=ref.name,
                attempt=attempt + 1,
                outcome="already gone",
            )
            return True
        except ApiError as exc:
            if exc.code != "document_has_dependent_agents" or out["forced"]:
                out["outcome"], out["error"] = "failed", str(exc)
                event(
                    "delete.attempt",
                    logging.ERROR,
                    id=ref.id,
                    name=ref.name,
                    attempt=attempt + 1,
                    outcome="failed",
                    error=str(exc),
                )
                return True
        return False

    def _attached(self, ref: Ref, out: dict[str, Any], attempt: int) -> bool:
        """Our agent points at the doc again (another run or a person put it back): forcing
        would detach it from the agent and leave its file with no document."""
        if self.attached_now is None:
            return False
        try:
            attached = ref.id in self.attached_now()
        except SyncError as exc:
            attached, why = True, f"the agent could not be read again ({exc.code or exc})"
        else:
            why = "attached to this agent again (another run or a person put it back)"
        if not attached:
            return False
        return self._keep(ref, out, attempt, why, note=f"never force-deleted: {why}")

    @staticmethod
    def _keep(ref: Ref, out: dict[str, Any], attempt: int, why: str, **fields: Any) -> bool:
        out["outcome"], out["kept_because"] = "kept", why
        event(
            "delete.attempt",
            logging.WARNING,
            id=ref.id,
            name=ref.name,
            attempt=attempt + 1,
            outcome="kept",
            **fields,
        )
        return True

    def _kept_for_others(self, ref: Ref, out: dict[str, Any], attempt: int) -> bool:
        try:
            others = other_dependents(self.client, ref.id, self.agent_id)
        except ApiError as exc:
            others = [f"unknown dependents ({exc.code or exc.status})"]
        if not others:
            return False
        note = "never force-deleted: another agent or branch uses it"
        return self._keep(
            ref, out, attempt, f"used by {', '.join(others)}", used_by=others, note=note
        )
