"""Applying a plan in the only safe order, as four public phases (push and rollback use them):

1. ``upload``: new versions (bounded concurrency; a create is never blindly retried), their
   RAG indexes (the agent's model) computed and polled in batches while the uploads go on,
   oldest first (:mod:`sync.indexing`);
2. ``index``: then wait for the indexes still pending, at the server's pace;
3. ``attach``: re-read the agent (stale-plan check), then ONE PATCH with the complete list
   (:func:`sync.planner.desired_kb`); read it back and verify;
4. ``delete_superseded``: only then delete what the PATCH superseded (:mod:`sync.deleting`,
   never forcing one another agent uses).

A failure anywhere before step 3 leaves the agent as it was; after it, the agent already
points at indexed documents only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .client import Client
from .clock import Clock
from .deleting import Deleter
from .domain import AgentView, KbEntry, entries_json
from .errors import (
    ApiError,
    ExitCode,
    GuardRefused,
    NotFound,
    NotKept,
    ServerError,
    SyncError,
    TransportError,
    ValidationFailed,
)
from .guards import entry_limit_hint
from .history import HistoryWriter
from .indexing import Indexer, IndexOptions
from .log import event
from .plan import Plan, Ref
from .planner import delete_set, desired_kb, needs_patch
from .record import RunRecord
from .results import DocResult, Outcome


@dataclass
class Options:
    index_wait: float = 180.0
    concurrency: int = 4
    small_docs: str = "prompt"
    failed_retries: int = 2  # recomputes of a `failed` index before giving up
    poll_start: float = 0.5
    poll_max: float = 10.0
    patch_attempts: int = 6  # PATCH retries on 422 rag_index_not_ready
    linger_attempts: int = 4  # non-force delete attempts while only our agent lingers

    def index_options(self) -> IndexOptions:
        return IndexOptions(self.index_wait, self.failed_retries, self.poll_start, self.poll_max)


class Applier:
    def __init__(
        self,
        client: Client,
        clock: Clock,
        agent_id: str,
        model: str,
        options: Options,
        record: RunRecord,
    ) -> None:
        self.client = client
        self.clock = clock
        self.agent_id = agent_id
        self.opt = options
        self.record = record
        self.indexer = Indexer(client, clock, model, options.index_options())
        self.deleter = Deleter(
            client,
            clock,
            agent_id,
            options.linger_attempts,
            self._kb_ids,
            concurrency=options.concurrency,
        )
        self.known_ids: dict[str, set[str]] = {}  # name -> ids that existed before the run
        self.folder_id: str | None = None  # new documents go into our folder
        # the run's record in ElevenLabs (:mod:`sync.history`): intent before the PATCH, done
        # before the first delete
        self.history: HistoryWriter | None = None

    def _kb_ids(self) -> set[str]:
        answer = self.client.get_agent(self.agent_id)
        return set(AgentView.from_json(answer, self.agent_id).ids())

    # -- 1. upload ---------------------------------------------------------------------------
    def upload(self, results: Sequence[DocResult], texts: dict[str, str]) -> None:
        """Create (or reuse) each result's document and start its index."""

        def one(r: DocResult) -> None:
            self._upload(r, texts)

        with ThreadPoolExecutor(max_workers=max(1, self.opt.concurrency)) as pool:
            list(pool.map(one, results))

    def _upload(self, r: DocResult, texts: dict[str, str]) -> None:
        item = r.item
        if item.reuse_id is not None:
            r.doc_id = item.reuse_id
        elif self.indexer.quota_hit.is_set():
            r.status = "not_uploaded"
            r.error = "stopped: RAG quota exceeded"
            return
        else:
            assert item.name is not None and item.file is not None
            try:
                created = self.client.create_text(
                    item.name,
                    texts[item.file],
                    known_ids=frozenset(self.known_ids.get(item.name, ())),
                    parent_folder_id=self.folder_id,
                )
            except SyncError as exc:
                r.status, r.error = "upload_failed", str(exc)
                event("doc.upload_failed", logging.ERROR, file=item.file, error=str(exc))
                return
            r.doc_id, r.uploaded = str(created["id"]), True
            self.record.created.append({"id": r.doc_id, "name": item.name, "file": item.file})
            event("doc.uploaded", file=item.file, id=r.doc_id, name=item.name)
        if r.usage_mode == "prompt":
            r.status = "not_needed"
            return
        self.indexer.uploaded(r)  # its index is computed (and polled) while others upload

    def move_in(self, refs: Sequence[Ref]) -> None:
        """Managed documents an earlier version left at the workspace root go into our folder
        (a move changes no content and no index: nothing to re-upload)."""
        for ref in refs:
            try:
                self.client.move_document(ref.id, self.folder_id)
                event("doc.moved", id=ref.id, name=ref.name, folder=self.folder_id)
            except ApiError as exc:  # it stays where it is: found by its name next time
                event("doc.move_failed", logging.WARNING, id=ref.id, error=str(exc))

    # -- 2. wait for indexes -----------------------------------------------------------------
    def index(self, results: Sequence[DocResult]) -> None:
        to_wait = [r for r in results if r.doc_id and r.status != "not_needed"]
        if not to_wait:
            return
        with ThreadPoolExecutor(max_workers=max(1, self.opt.concurrency)) as pool:
            self.indexer.wait(to_wait, pool)

    def settle(self, results: Sequence[DocResult]) -> None:
        """Final statuses: a too-small document goes in as ``prompt`` when the policy says so."""
        for r in results:
            if r.status == "document_too_small":
                if self.opt.small_docs == "prompt":
                    r.usage_mode, r.status = "prompt", "not_needed"
                else:
                    r.error = f"document_too_small (--small-docs {self.opt.small_docs})"
            event(
                "index.result",
                logging.INFO if r.ready else logging.WARNING,
                file=r.item.file,
                id=r.doc_id,
                status=r.status,
                seconds=round(r.seconds, 1),
                usage_mode=r.usage_mode,
                error=r.error,
            )
        if self.indexer.quota_hit.is_set():
            self._report_quota()

    def _report_quota(self) -> None:
        overview = self._safe(self.client.rag_overview)
        size = self._safe(lambda: self.client.agent_kb_size(self.agent_id))
        event(
            "quota.exceeded",
            logging.ERROR,
            used=overview.get("total_used_bytes"),
            max=overview.get("total_max_bytes"),
            agent_kb_pages=size.get("number_of_pages"),
            fix="remove unused documents from the workspace or move to a larger plan",
        )

    # -- 3. the one PATCH --------------------------------------------------------------------
    def patch(self, desired: Sequence[KbEntry]) -> None:
        """PATCH the complete list (retrying while an index is not ready yet). The answer is
        not trusted: :meth:`read_back` reads the agent again."""
        self.record.status, self.record.intent = "patching", entries_json(desired)
        self.record.write()
        if self.history is not None:
            self.history.intent()
        attempt = 0
        while True:
            try:
                self.client.patch_agent_kb(self.agent_id, entries_json(desired))
                return
            except ValidationFailed as exc:
                if exc.code != "rag_index_not_ready" or attempt + 1 >= self.opt.patch_attempts:
                    raise
                delay = min(2.0 * 2**attempt, 30.0)
                event(
                    "agent.patch_retry",
                    logging.WARNING,
                    code=exc.code,
                    attempt=attempt + 1,
                    retry_in=delay,
                )
                self.clock.sleep(delay)
                attempt += 1

    def attach(
        self, plan: Plan, results: Sequence[DocResult], read_agent: Callable[[], AgentView]
    ) -> tuple[tuple[KbEntry, ...], tuple[KbEntry, ...]]:
        """Stale-plan check, then one PATCH when anything changes: (before, after)."""
        current = read_agent().entries
        if plan.is_stale(current):
            raise GuardRefused(
                "the agent's knowledge base changed since the plan (another run or a person "
                "edited it); nothing was attached or deleted; run again to re-plan"
            )
        desired = desired_kb(current, plan, results)
        if not needs_patch(current, desired):
            for r in results:
                r.attached = r.ready
            event("agent.unchanged", agent=self.agent_id, count=len(current))
            return current, current
        after = self.patch_and_read_back(desired, current, read_agent)
        event(
            "agent.patched",
            agent=self.agent_id,
            count_before=len(current),
            count_after=len(after),
            path="conversation_config.agent.prompt.knowledge_base",
        )
        return current, after

    def patch_and_read_back(
        self,
        desired: Sequence[KbEntry],
        current: Sequence[KbEntry],
        read_agent: Callable[[], AgentView],
    ) -> tuple[KbEntry, ...]:
        """The PATCH, then the agent read again: what the server kept is the truth (a large
        list has been seen answered 200 and not all kept)."""
        try:
            self.patch(desired)
        except (TransportError, ServerError, ApiError) as exc:
            ambiguous = isinstance(exc, (TransportError, ServerError)) or exc.code == "bad_response"
            if not ambiguous:
                raise  # a clear refusal (4xx): nothing was applied
            if read_agent().ids() == [e.id for e in current]:  # was it applied after all?
                raise SyncError(
                    f"{exc}; the agent was read back and keeps its previous documents"
                ) from None
        self.record.patched = True
        after = read_agent().entries
        kept = {e.id for e in after}
        lost = [e.name for e in desired if e.id not in kept]
        if lost:
            # what the agent holds is known (read back): stored complete, a rollback undoes it
            self.record.kb_after = entries_json(after)
            if self.history is not None:
                self.history.complete()
            more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
            hint = entry_limit_hint(len(desired))
            raise NotKept(
                f"the agent's knowledge base read back differs from what was sent: the server "
                f"kept {len(after)} of the {len(desired)} entries ({len(lost)} not kept: "
                f"{', '.join(lost[:5])}{more}); " + (f"{hint}; " if hint else "") + "nothing was "
                "deleted"
            )
        if [e.id for e in after] != [e.id for e in desired]:
            raise SyncError(
                "the agent's knowledge base read back differs from what was sent (order); "
                "nothing was deleted"
            )
        return after

    # -- 4. delete ---------------------------------------------------------------------------
    def delete_superseded(self, refs: Sequence[Ref]) -> list[dict[str, Any]]:
        """Save each document's content in the record (for a rollback) and store the record
        in ElevenLabs, then delete: nothing is deleted before the record that can undo it.
        Reads and deletes go side by side (``--concurrency``); the waits for a lingering
        dependency end at the run's deadline (:class:`sync.deleting.Deleter`)."""
        unsaved = self._save_contents(refs)
        if self.history is not None and (self.record.patched or not all(map(_own_upload, refs))):
            self.history.complete()
        elif self.history is not None:  # nothing to undo: never prune a run that changed it
            event(
                "history.not_stored",
                run=self.record.run_id,
                note="the run changed nothing on the agent and deletes only its own uploads",
            )
        # what could not be saved is kept: a rollback could not bring it back
        done = iter(self.deleter.delete_all([r for r in refs if r.id not in unsaved]))
        return [_kept_unsaved(r) if r.id in unsaved else next(done) for r in refs]

    def _save_contents(self, refs: Sequence[Ref]) -> set[str]:
        """Read and keep in the record the content of each document about to be deleted; the
        ids that could not be read (not a 404: it is gone) and are not this run's own failed
        uploads (the folder holds those), which must not be deleted."""

        def read(ref: Ref) -> str | None:
            try:
                return self.client.get_content(ref.id)
            except NotFound:
                return ""  # gone already: nothing to save, nothing to lose
            except ApiError as exc:
                event("delete.unsaved", logging.WARNING, id=ref.id, name=ref.name, error=str(exc))
                return None

        todo = [ref for ref in refs if ref.id not in self.record.saved]
        with ThreadPoolExecutor(
            max_workers=max(1, min(self.opt.concurrency, len(todo) or 1))
        ) as pool:
            texts = list(pool.map(read, todo))
        unsaved: set[str] = set()
        for ref, text in zip(todo, texts, strict=True):  # in the plan's order
            if text:
                self.record.saved[ref.id] = {"name": ref.name, "text": text}
            elif text is None and not _own_upload(ref):
                unsaved.add(ref.id)
        if refs:
            self.record.write()
        return unsaved

    # -- a push: the four phases -------------------------------------------------------------
    def run(
        self, plan: Plan, texts: dict[str, str], read_agent: Callable[[], AgentView]
    ) -> Outcome:
        results = [
            DocResult(item=i, usage_mode=i.usage_mode)
            for i in plan.items
            if i.action in ("create", "update", "adopt")
        ]
        self.move_in(plan.moves)
        self.upload(results, texts)
        self.index(results)
        self.settle(results)
        self.record.results = [r.to_dict() for r in results]
        _, after = self.attach(plan, results, read_agent)
        self.record.kb_after = entries_json(after)
        self.record.results = [r.to_dict() for r in results]
        deletions = self.delete_superseded(delete_set(plan, results, after))
        self.record.deletions = deletions
        partial = any(not r.attached for r in results) or any(
            d["outcome"] in ("kept", "failed") for d in deletions
        )
        return Outcome(ExitCode.PARTIAL if partial else ExitCode.OK, results, deletions)

    @staticmethod
    def _safe(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return fn()
        except SyncError:
            return {}


def _own_upload(ref: Ref) -> bool:
    """A document this run uploaded that did not make it (planner.delete_set's reasons)."""
    return ref.reason.startswith(("not attached: ", "still "))


def _kept_unsaved(ref: Ref) -> dict[str, Any]:
    return {
        "id": ref.id,
        "name": ref.name,
        "reason": ref.reason,
        "attempts": 0,
        "forced": False,
        "outcome": "kept",
        "kept_because": "its content could not be saved for a rollback; the next run deletes it",
    }
