"""Applying a plan in the only safe order.

1. upload new versions (bounded concurrency; a create is never blindly retried);
2. compute their RAG index with the agent's model and wait for all of them together;
3. re-read the agent (stale-plan check), then ONE PATCH with the complete list: new versions
   in place of old ones, same order, unmanaged entries untouched; read it back and verify;
4. only then delete superseded managed documents (never forcing one another agent uses).

A failure anywhere before step 3 leaves the agent as it was; after it, the agent already
points at indexed documents only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .client import Client
from .clock import Clock
from .errors import ApiError, ExitCode, GuardRefused, NotFound, SyncError, ValidationFailed
from .log import event
from .naming import parse
from .plan import Item, Plan, Ref
from .record import RunRecord
from .remote import agent_kb, other_dependents

PENDING = ("new", "created", "processing")
TERMINAL_BAD = ("failed", "rag_limit_exceeded", "document_too_small", "cannot_index_folder")


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
    adopt_legacy: bool = False


@dataclass
class DocResult:
    item: Item
    doc_id: str | None = None
    uploaded: bool = False
    status: str = "new"  # index status (pending until told), or not_needed / upload_failed
    usage_mode: str = "auto"
    seconds: float = 0.0
    recomputes: int = 0
    error: str | None = None
    attached: bool = False

    @property
    def ready(self) -> bool:
        return self.doc_id is not None and self.status in ("succeeded", "not_needed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.item.file,
            "action": self.item.action,
            "name": self.item.name,
            "id": self.doc_id,
            "uploaded": self.uploaded,
            "index_status": self.status,
            "usage_mode": self.usage_mode,
            "index_seconds": round(self.seconds, 3),
            "recomputes": self.recomputes,
            "attached": self.attached,
            "error": self.error,
            "replaces": [r.id for r in self.item.replaces],
        }


@dataclass
class Outcome:
    exit_code: ExitCode
    results: list[DocResult] = field(default_factory=list)
    deletions: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


class Applier:
    def __init__(
        self,
        client: Client,
        clock: Clock,
        agent_id: str,
        namespace: str,
        model: str,
        options: Options,
        record: RunRecord,
    ) -> None:
        self.client = client
        self.clock = clock
        self.agent_id = agent_id
        self.namespace = namespace
        self.model = model
        self.opt = options
        self.record = record
        self._quota_hit = threading.Event()
        self.known_ids: dict[str, set[str]] = {}  # name -> ids that existed before the run
        self._texts: dict[str, str] = {}

    # -- 1. upload ---------------------------------------------------------------------------
    def _upload(self, r: DocResult) -> None:
        item = r.item
        if item.reuse_id is not None:
            r.doc_id = item.reuse_id
        elif self._quota_hit.is_set():
            r.status = "not_uploaded"
            r.error = "stopped: RAG quota exceeded"
            return
        else:
            assert item.name is not None and item.file is not None
            try:
                created = self.client.create_text(
                    item.name,
                    self._texts[item.file],
                    known_ids=frozenset(self.known_ids.get(item.name, ())),
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
        self._compute(r)

    def _compute(self, r: DocResult) -> None:
        assert r.doc_id is not None
        try:
            idx = self.client.compute_index(r.doc_id, self.model)
        except NotFound:
            r.status, r.error = "upload_failed", "document vanished"
            return
        except SyncError as exc:
            r.error = str(exc)
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                r.status = "error"  # the server refuses this index: do not poll until the deadline
            return  # otherwise (5xx, 429, connection) it stays pending and is polled again
        r.status = str(idx.get("status", "processing"))
        if r.status == "rag_limit_exceeded":
            self._quota_hit.set()

    # -- 2. wait for indexes -----------------------------------------------------------------
    def _wait(self, results: list[DocResult], pool: ThreadPoolExecutor) -> None:
        start = self.clock.now()
        deadline = start + self.opt.index_wait
        interval = self.opt.poll_start
        first = True
        while True:
            if first and any(r.status in PENDING for r in results):
                # the upload's own compute call just answered: wait before the first poll
                self.clock.sleep(min(interval, max(0.0, deadline - self.clock.now())))
                interval = min(interval * 1.5, self.opt.poll_max)
            first = False
            for r in results:
                if r.status == "failed" and r.recomputes < self.opt.failed_retries:
                    r.recomputes += 1
                    r.status = "processing"
                    event(
                        "index.recompute",
                        logging.WARNING,
                        file=r.item.file,
                        id=r.doc_id,
                        attempt=r.recomputes,
                    )
            pending = [r for r in results if r.doc_id and r.status in PENDING]
            if pending:
                list(pool.map(self._compute, pending))
            now = self.clock.now()
            for r in results:
                if r.doc_id and r.status not in PENDING and r.seconds == 0.0:
                    r.seconds = now - start
            pending = [r for r in results if r.doc_id and r.status in PENDING]
            retry_failed = [
                r
                for r in results
                if r.status == "failed" and r.recomputes < self.opt.failed_retries
            ]
            ready = sum(1 for r in results if r.ready)
            event(
                "index.progress",
                ready=f"{ready}/{len(results)}",
                pending=len(pending),
                waited=round(now - start, 1),
            )
            if not pending and not retry_failed:
                return
            if now >= deadline:
                for r in pending:
                    r.seconds = now - start
                    r.error = f"index still {r.status} after {self.opt.index_wait:g}s"
                return
            self.clock.sleep(min(interval, max(0.0, deadline - now)))
            interval = min(interval * 1.5, self.opt.poll_max)

    # -- 3. the one PATCH --------------------------------------------------------------------
    def desired_kb(
        self, current: list[dict[str, Any]], plan: Plan, results: list[DocResult]
    ) -> list[dict[str, Any]]:
        by_file = {r.item.file: r for r in results}
        legacy_ids = {ref.id for i in plan.items if i.action == "adopt" for ref in i.replaces}
        legacy_file = {
            ref.id: i.file for i in plan.items if i.action == "adopt" for ref in i.replaces
        }
        deleted_files = {i.file for i in plan.items if i.action == "delete"}
        out: list[dict[str, Any]] = []
        attached: set[str] = set()
        for entry in current:
            eid = str(entry.get("id"))
            m = parse(str(entry.get("name", "")), self.namespace)
            file = m.file if m else legacy_file.get(eid) if eid in legacy_ids else None
            if file is None:
                out.append(entry)  # unmanaged: untouched, in place
                continue
            if file in deleted_files:
                continue
            r = by_file.get(file)
            if r is not None and r.ready:
                if file not in attached:  # the new version takes the first entry's place
                    out.append(self._locator(r))
                    r.attached = True
                    attached.add(file)
                continue  # older versions and duplicates go
            out.append(entry)  # no change, or it did not make it: every entry stays as is
        for r in results:
            if r.item.file not in attached and r.ready:
                out.append(self._locator(r))
                r.attached = True
                attached.add(str(r.item.file))
        return out

    def _locator(self, r: DocResult) -> dict[str, Any]:
        return {"type": "text", "name": r.item.name, "id": r.doc_id, "usage_mode": r.usage_mode}

    def patch(self, desired: list[dict[str, Any]]) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                return self.client.patch_agent_kb(self.agent_id, desired)
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

    # -- 4. delete ---------------------------------------------------------------------------
    def delete_safely(self, ref: Ref) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": ref.id,
            "name": ref.name,
            "reason": ref.reason,
            "attempts": 0,
            "forced": False,
        }
        for attempt in range(self.opt.linger_attempts + 1):
            if attempt == self.opt.linger_attempts:
                if self._kept_for_others(ref, out, attempt):  # checked again right before force
                    return out
                out["forced"] = True
            out["attempts"] = attempt + 1
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
                return out
            except NotFound:
                out["outcome"] = "already gone"
                event(
                    "delete.attempt",
                    id=ref.id,
                    name=ref.name,
                    attempt=attempt + 1,
                    outcome="already gone",
                )
                return out
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

    def _kept_for_others(self, ref: Ref, out: dict[str, Any], attempt: int) -> bool:
        try:
            others = other_dependents(self.client, ref.id, self.agent_id)
        except ApiError as exc:
            others = [f"unknown dependents ({exc.code or exc.status})"]
        if not others:
            return False
        out["outcome"] = "kept"
        out["kept_because"] = f"used by {', '.join(others)}"
        event(
            "delete.attempt",
            logging.WARNING,
            id=ref.id,
            name=ref.name,
            attempt=attempt + 1,
            outcome="kept",
            used_by=others,
            note="never force-deleted: another agent or branch uses it",
        )
        return True

    # -- the whole apply ---------------------------------------------------------------------
    def run(
        self,
        plan: Plan,
        texts: dict[str, str],
        planned_kb: list[dict[str, Any]],
        read_agent: Callable[[], dict[str, Any]],
    ) -> Outcome:
        self._texts = texts
        results = [
            DocResult(item=i, usage_mode=i.usage_mode)
            for i in plan.items
            if i.action in ("create", "update", "adopt")
        ]
        with ThreadPoolExecutor(max_workers=max(1, self.opt.concurrency)) as pool:
            list(pool.map(self._upload, results))
            to_wait = [r for r in results if r.doc_id and r.status not in ("not_needed",)]
            if to_wait:
                self._wait(to_wait, pool)
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
        if self._quota_hit.is_set():
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
        self.record.results = [r.to_dict() for r in results]

        # 3. stale-plan check, then one PATCH
        agent = read_agent()
        current = agent_kb(agent)
        adopted = {ref.id for i in plan.items if i.action == "adopt" for ref in i.replaces}
        current_managed = [
            str(e.get("id"))
            for e in current
            if parse(str(e.get("name", "")), self.namespace) or str(e.get("id")) in adopted
        ]
        if current_managed != plan.managed_ids:
            raise GuardRefused(
                "the agent's knowledge base changed since the plan (another run or a person "
                "edited it); nothing was attached or deleted; run again to re-plan"
            )
        desired = self.desired_kb(current, plan, results)
        if [e.get("id") for e in desired] != [e.get("id") for e in current] or [
            e.get("usage_mode", "auto") for e in desired
        ] != [e.get("usage_mode", "auto") for e in current]:
            after = agent_kb(self.patch(desired))  # PATCH answers with the agent: read-back
            self.record.patched = True
            if [e.get("id") for e in after] != [e.get("id") for e in desired]:
                raise SyncError(
                    "the agent's knowledge base read back differs from what was sent; "
                    "nothing was deleted"
                )
            event(
                "agent.patched",
                agent=self.agent_id,
                count_before=len(current),
                count_after=len(after),
                path="conversation_config.agent.prompt.knowledge_base",
            )
        else:
            after = current
            for r in results:
                r.attached = r.ready
            event("agent.unchanged", agent=self.agent_id, count=len(current))
        self.record.kb_after = after
        self.record.results = [r.to_dict() for r in results]

        # 4. delete what is superseded and no longer referenced
        keep_ids = {str(e.get("id")) for e in after}
        to_delete: list[Ref] = []
        for i in plan.items:
            res = next((x for x in results if x.item is i), None)
            if i.action == "delete" or (res is not None and res.attached):
                to_delete += [ref for ref in i.replaces if ref.id not in keep_ids]
        to_delete += [o for o in plan.orphans if o.id not in keep_ids]
        for r in results:  # this run's uploads that did not make it, and will not
            if r.uploaded and not r.attached and r.doc_id and r.status not in PENDING:
                to_delete.append(Ref(r.doc_id, str(r.item.name), f"not attached: {r.status}"))
            elif (  # an orphan reused from an earlier run, still not indexed: start afresh
                r.item.reuse_id
                and r.item.reuse_id not in plan.managed_ids
                and not r.attached
                and r.status in PENDING
            ):
                to_delete.append(
                    Ref(r.item.reuse_id, str(r.item.name), f"still {r.status} a run later")
                )
        self._save_contents(to_delete)
        deletions = [self.delete_safely(ref) for ref in to_delete]
        self.record.deletions = deletions
        partial = any(not r.attached for r in results) or any(
            d["outcome"] in ("kept", "failed") for d in deletions
        )
        return Outcome(ExitCode.PARTIAL if partial else ExitCode.OK, results, deletions)

    def _save_contents(self, refs: list[Ref]) -> None:
        for ref in refs:
            if ref.id in self.record.saved:
                continue
            try:
                text = self.client.get_content(ref.id)
            except ApiError:
                continue
            self.record.saved[ref.id] = {"name": ref.name, "text": text}
        if refs:
            self.record.write()

    @staticmethod
    def _safe(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return fn()
        except SyncError:
            return {}
