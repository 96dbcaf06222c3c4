"""The lease held in ElevenLabs: exclusion across machines that share nothing but the API."""

from __future__ import annotations

from sync.lease import lease_prefix

from .conftest import Kit, para


def meta_folder(kit: Kit) -> str:
    """kb-sync/.kb-sync, as an earlier run left it."""
    for i, d in kit.backend.docs.items():
        if d.is_folder and d.name == ".kb-sync":
            return i
    root = kit.backend.seed_folder("kb-sync")
    return str(kit.backend.seed_folder(".kb-sync", root))


def leases(kit: Kit) -> list[str]:
    return [
        i
        for i, d in kit.backend.docs.items()
        if d.is_folder and d.name.startswith(lease_prefix(kit.agent_id))
    ]


def seed_lease(kit: Kit, run_id: str = "otherrun0001", ttl: int = 900) -> str:
    name = f"{lease_prefix(kit.agent_id)}{run_id}:{ttl}:cron-7:4242:push"
    return str(kit.backend.seed_folder(name, meta_folder(kit)))


def test_a_push_takes_and_releases_a_lease_before_its_first_upload(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    r = kit.push()
    assert r.code == 0, r.stderr
    writes = [(c.method, c.path, c.request_json) for c in kit.backend.calls if c.method != "GET"]
    lease_at = next(
        i
        for i, (_, path, body) in enumerate(writes)
        if path.endswith("/folder") and str((body or {}).get("name", "")).startswith("lease:")
    )
    upload_at = next(i for i, (_, path, _) in enumerate(writes) if path.endswith("/text"))
    assert lease_at < upload_at
    assert leases(kit) == []  # released
    assert "lease.acquired" in r.stderr and "lease.released" in r.stderr


def test_nothing_to_do_and_plans_take_no_lease(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    kit.backend.clear_calls()
    assert kit.push().code == 0
    assert kit.kb("plan", "--dir", str(kit.dir)).code == 0
    kit.write("a.md", para("a2"))
    assert kit.push("--dry-run").code == 0
    assert [c for c in kit.backend.calls if c.method != "GET"] == []  # no lease either


def test_a_live_lease_of_another_run_refuses_with_holder_and_age(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    other = seed_lease(kit)
    kit.clock.advance(42)
    r = kit.push()
    assert r.code == 4, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("kb-sync: error:")]
    assert len(errors) == 1
    assert "cron-7" in errors[0] and "4242" in errors[0] and "42s ago" in errors[0]
    assert f"kb-sync unlock {other}" in errors[0]
    assert leases(kit) == [other]  # ours was removed, theirs kept
    assert kit.managed_docs() == {} and kit.backend.agent_kb(kit.agent_id) == []


def test_an_expired_lease_is_taken_over_and_logged(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    stale = seed_lease(kit, ttl=900)
    kit.clock.advance(901)
    r = kit.push()
    assert r.code == 0, r.stderr
    assert "lease.takeover" in r.stderr and stale not in kit.backend.docs
    assert leases(kit) == []


def test_two_leases_of_the_same_second_back_off_and_never_both_hold(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    other = seed_lease(kit)  # created this very second, like a run starting with ours
    r = kit.push()
    assert r.code == 4, r.stderr
    assert "lease.tie" in r.stderr
    assert kit.managed_docs() == {} and leases(kit) == [other]


def test_unlock_removes_a_named_lease_and_nothing_else(kit: Kit) -> None:
    other = seed_lease(kit)
    faq = kit.backend.seed_document("FAQ", para("faq"))
    r = kit.kb("unlock", faq)
    assert r.code == 5 and faq in kit.backend.docs
    r = kit.kb("unlock", other)
    assert r.code == 0 and other not in kit.backend.docs and other in r.stdout


def test_a_mass_delete_refusal_writes_nothing_not_even_a_lease(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    kit.write("b.md", para("b"))
    assert kit.push().code == 0
    kit.remove("a.md")
    kit.remove("b.md")
    kit.backend.clear_calls()
    assert kit.push().code == 4
    assert [c for c in kit.backend.calls if c.method != "GET"] == []


def test_rollback_takes_the_lease_too(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    kit.write("a.md", para("a2"))
    assert kit.push().code == 0
    seed_lease(kit)
    kit.clock.advance(5)
    r = kit.kb("rollback")
    assert r.code == 4 and "cron-7" in r.stderr
