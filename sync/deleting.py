"""Deleting superseded documents, never one another agent or branch still uses.

A ``document_has_dependent_agents`` answer while only our own agent is listed is a lingering
dependency (the PATCH has not settled yet): retry with a back-off, and force only after the
dependents were read again right before, and show nobody else.

The documents are deleted side by side, in rounds: each round sends one attempt for every
document still pending (at most ``concurrency`` at once, through the client's limiter), then
the round's back-off is waited once for all of them (1, 2, 4, 8 s), so N lingering documents
take one back-off, not N. The waiting ends at the run's deadline (the client's, the one that
ends 429 retries inside the lease's TTL): a back-off that would end past it is not waited, and
every document still lingering is kept (``outcome=kept``, never forced; the next run deletes
it as an orphan).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .client import Client
from .clock import Clock
from .errors import ApiError, NotFound, SyncError
from .log import event
from .plan import Ref
from .remote import other_dependents

Deletion = dict[str, Any]  # one document's outcome, as the record's ``deletions`` hold it


def back_off(attempt: int) -> float:
    """Seconds waited after the ``attempt``-th (0-based) lingering answer."""
    return float(2**attempt)


def fits_before(deadline: float, now: float, delay: float) -> bool:
    """Whether a back-off of ``delay`` seconds started ``now`` ends by ``deadline``."""
    return now + delay <= deadline


class Deleter:
    def __init__(
        self,
        client: Client,
        clock: Clock,
        agent_id: str,
        linger_attempts: int,
        attached_now: Callable[[], set[str]] | None = None,
        *,
        concurrency: int = 1,
        deadline: float | None = None,
    ) -> None:
        """``deadline``: the clock's time after which no back-off is waited (default: the
        client's run deadline)."""
        self.client, self.clock, self.agent_id = client, clock, agent_id
        self.linger_attempts = linger_attempts
        # the ids our agent uses at this moment (read again, never from the plan)
        self.attached_now = attached_now
        self.concurrency = max(1, concurrency)
        self.deadline = client.deadline if deadline is None else deadline

    def delete(self, ref: Ref) -> Deletion:
        return self.delete_all([ref])[0]

    def delete_all(self, refs: Sequence[Ref]) -> list[Deletion]:
        """Every ref's outcome, in the order of ``refs`` (the record's ``deletions``)."""
        outs: list[Deletion] = [
            {"id": r.id, "name": r.name, "reason": r.reason, "attempts": 0, "forced": False}
            for r in refs
        ]
        pending = list(zip(refs, outs, strict=True))
        workers = max(1, min(self.concurrency, len(pending)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for attempt in range(self.linger_attempts + 1):
                if not pending:
                    break
                refs_now, outs_now = [r for r, _ in pending], [o for _, o in pending]
                settled = list(pool.map(self._one, refs_now, outs_now, [attempt] * len(pending)))
                pending = [p for p, done in zip(pending, settled, strict=True) if not done]
                if pending:
                    pending = self._wait(pending, attempt)
        assert not pending, "a forced attempt always settles"
        return outs

    def _one(self, ref: Ref, out: Deletion, attempt: int) -> bool:
        """One round for one document; True when it is settled."""
        if attempt == self.linger_attempts:
            # checked again right before force: nobody else, and not our agent either
            if self._kept_for_others(ref, out, attempt) or self._attached(ref, out, attempt):
                return True
            out["forced"] = True
        out["attempts"] = attempt + 1
        if self._attempt(ref, out, attempt):
            return True
        return self._kept_for_others(ref, out, attempt)

    def _wait(
        self, pending: list[tuple[Ref, Deletion]], attempt: int
    ) -> list[tuple[Ref, Deletion]]:
        """The round's back-off, once for every document still lingering; none past the
        run's deadline: then each is kept (what is left: nothing)."""
        delay, now = back_off(attempt), self.clock.now()
        if not fits_before(self.deadline, now, delay):
            left = max(0.0, self.deadline - now)
            why = (
                "still a lingering dependency of this agent at the run's deadline; the next "
                "run deletes it"
            )
            note = (
                f"never force-deleted: the run's deadline is near ({left:.0f} s left, the "
                f"next wait {delay:.0f} s); the next run deletes it"
            )
            for ref, out in pending:
                self._keep(ref, out, attempt, why, note=note)
            return []
        for ref, _out in pending:
            event(
                "delete.attempt",
                id=ref.id,
                name=ref.name,
                attempt=attempt + 1,
                outcome="dependency lingers",
                retry_in=2**attempt,
            )
        self.clock.sleep(delay)
        return pending

    def _attempt(self, ref: Ref, out: Deletion, attempt: int) -> bool:
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

    def _attached(self, ref: Ref, out: Deletion, attempt: int) -> bool:
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
    def _keep(ref: Ref, out: Deletion, attempt: int, why: str, **fields: Any) -> bool:
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

    def _kept_for_others(self, ref: Ref, out: Deletion, attempt: int) -> bool:
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
