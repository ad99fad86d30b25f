"""What the projections read of recorded events and manifests (``projections.records``),
the atomic swap of a rebuilt views file, and a sharded rebuild over a source that only
offers eventsourcing's notifications."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import helpers_ledger as h
import msgspec

from skill_ledger.adapters.readmodel.rebuild import rebuild_views
from skill_ledger.adapters.readmodel.views import discard
from skill_ledger.adapters.storage.files import swap_into_place
from skill_ledger.adapters.usecases import lifecycle, trust
from skill_ledger.adapters.usecases.install import install
from skill_ledger.domain.manifest import manifest_to_json, parse_manifest
from skill_ledger.projections.records import decode_view, manifest_facts, view_from_dict
from skill_ledger.projections.replay import diff
from skill_ledger.projections.store import ViewStore


def manifest_json(**changes: object) -> dict:
    m = manifest_to_json(parse_manifest(h.manifest_text("acme.alpha", "1.2.3", "acme")))
    m.update(changes)
    return m


def test_manifest_facts_of_a_recorded_manifest() -> None:
    facts = manifest_facts(msgspec.json.encode(manifest_json()))
    assert facts.name == "Test acme.alpha"
    assert facts.tool_ids == ["acme.echo"]
    assert (facts.description, facts.tool_descriptions) == (None, "Echo")  # the text search reads
    assert facts.compat == {"required_protocol_major": 1, "min_palyra_version": "0.1.0"}  # as recorded
    assert msgspec.json.decode(facts.capability_grants) == {
        "http_hosts": [], "secret_keys": [], "storage_prefixes": [], "channels": []}
    assert msgspec.json.decode(facts.policy_bindings) == [
        {"action": "tool.execute", "resource": "tool:acme.echo", "requires_approval": False}]


def test_grants_of_a_recorded_manifest_equal_the_models() -> None:
    """The light decode of a recorded manifest derives the same grants and bindings as the
    full manifest model, for a manifest that declares every kind of capability."""
    from skill_ledger.domain.grants import capability_grants, policy_bindings

    extra = """[capabilities]
http_egress_allowlist = ["api.example.com", " api.example.com ", "b.example.org"]
device_capabilities = ["camera"]
[capabilities.filesystem]
read_roots = ["data/in"]
write_roots = ["data/out", "data/out"]
[[capabilities.secrets]]
scope = "skill:acme.alpha"
key_names = ["token", "api_key"]
"""
    model = parse_manifest(h.manifest_text("acme.alpha", "1.2.3", "acme", extra=extra))
    facts = manifest_facts(msgspec.json.encode(manifest_to_json(model)))
    assert msgspec.json.decode(facts.capability_grants) == msgspec.to_builtins(capability_grants(model))
    assert msgspec.json.decode(facts.policy_bindings) == msgspec.to_builtins(policy_bindings(model))
    assert len(msgspec.json.decode(facts.policy_bindings)) == 5


def test_a_manifest_of_another_shape_still_gets_its_facts() -> None:
    """A recorded manifest with a section this version does not know (say, written by a
    newer version) is read for what it knows; one whose members have other types still gets
    its name, compat and tools, and unknown grants ("null")."""
    newer = manifest_json(future_section={"x": 1})
    facts = manifest_facts(msgspec.json.encode(newer))
    assert (facts.name, facts.tool_ids, facts.compat) == ("Test acme.alpha", ["acme.echo"], newer["compat"])
    assert facts.capability_grants != "null"
    odd = manifest_json(capabilities={"http_egress_allowlist": "not a list"})
    facts = manifest_facts(msgspec.json.encode(odd))
    assert (facts.name, facts.tool_ids, facts.capability_grants, facts.policy_bindings) == (
        "Test acme.alpha", ["acme.echo"], "null", "null")
    for junk in (b"[1, 2]", b"null", b"{\"entrypoints\": 5}", b"not json"):
        assert manifest_facts(junk) == (None, None, [], "null", "null", None, None)


def test_the_typed_view_and_the_general_way_agree() -> None:
    state = {"stream": "skill:acme.alpha", "timestamp": "2026-01-01T00:00:00Z",
             "actor": {"principal": "user:a", "host": "h", "command": "audit"}, "version": "1.0.0",
             "trigger": "manual", "policy_version": 3, "passed": False, "should_quarantine": True,
             "checks": [{"check_id": "a", "status": "fail", "message": "m"}, {"check_id": "b", "status": "warn"}],
             "quarantine_reasons": ["r"], "unknown_member": {"ignored": True}}
    fast = decode_view("skill.audited.v1", msgspec.json.encode(state))
    general = view_from_dict(state)
    assert msgspec.structs.asdict(fast).keys() == msgspec.structs.asdict(general).keys()
    for name in ("stream", "version", "trigger", "policy_version", "passed", "checks", "actor"):
        assert getattr(fast, name) == getattr(general, name)
    assert bytes(fast.quarantine_reasons) == bytes(general.quarantine_reasons) == b'["r"]'
    # a member of an unexpected type takes the general way and keeps what fits
    odd = view_from_dict({**state, "policy_version": "three", "checks": "none", "passed": 1})
    assert (odd.policy_version, odd.checks, odd.passed) == (None, [], True)


def _db(path: Path, value: str) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (v TEXT)")
    con.execute("INSERT INTO t VALUES (?)", (value,))
    con.commit()
    con.close()


def test_swap_into_place_replaces_atomically_and_leaves_no_old_file(tmp_path: Path) -> None:
    live, fresh = tmp_path / "views.db", tmp_path / "views.db.rebuild"
    _db(live, "old")
    reader = sqlite3.connect(live)  # a reader that opened the old views keeps reading them
    _db(fresh, "new")
    swap_into_place(fresh, live)
    assert not fresh.exists()
    assert sqlite3.connect(live).execute("SELECT v FROM t").fetchone() == ("new",)
    assert reader.execute("SELECT v FROM t").fetchone() == ("old",)
    reader.close()
    # nothing there yet: the fresh file is simply moved into place
    alone = tmp_path / "other.db"
    _db(fresh, "first")
    swap_into_place(fresh, alone)
    assert not fresh.exists() and sqlite3.connect(alone).execute("SELECT v FROM t").fetchone() == ("first",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db", "views.db"]


class NotificationsOnly:
    """A source with eventsourcing's notification API only (no raw fast path, no shards)."""

    def __init__(self, recorder) -> None:
        self.recorder = recorder

    def select_notifications(self, *args, **kwargs):
        return self.recorder.select_notifications(*args, **kwargs)

    def max_notification_id(self):
        return self.recorder.max_notification_id()


def test_a_sharded_rebuild_over_notifications(tmp_path: Path) -> None:
    ledger = h.ledger_for(tmp_path / "home")
    try:
        for skill_id, publisher in (("acme.alpha", "acme"), ("globex.gamma", "globex"), ("acme.beta", "acme")):
            install(ledger, f"/a/{skill_id}", data=h.build(skill_id, "1.0.0", publisher), allow_tofu=True)
            lifecycle.quarantine(ledger, skill_id, None, "look")
        trust.revoke(ledger, "acme", h.key_hex(h.SEEDS["acme"]), "lost")
        source = NotificationsOnly(ledger.app.recorder)
        one = ViewStore(tmp_path / "one.db")
        rebuild_views(one, source)
        for count in (2, 3, 16):
            sharded = ViewStore(tmp_path / f"sharded-{count}.db")
            # batches of 2: the notification filter must page on past other shards' events
            rebuild_views(sharded, source, shards=h.InProcessShards(source, count, batch=2), min_events=0)
            try:
                assert diff(one, sharded) == [] and sharded.positions() == one.positions()
            finally:
                discard(sharded)
        discard(one)
    finally:
        ledger.close()


def test_the_exclusive_lock_makes_a_second_holder_wait(tmp_path: Path) -> None:
    """``adapters.storage.locks``: the one flock helper (rebuilds, the blob store, secrets)."""
    import threading
    import time

    from skill_ledger.adapters.storage.locks import exclusive_lock

    lock = tmp_path / "x.lock"
    events: list[str] = []
    with exclusive_lock(lock):
        waiter = threading.Thread(target=lambda: _take(lock, events))
        waiter.start()
        for _ in range(6000):  # until it reports that it waits (it does so before blocking)
            if events:
                break
            time.sleep(0.01)
        assert waiter.is_alive() and events == ["waiting"]
        events.append("released")
    waiter.join(timeout=60)
    assert events == ["waiting", "released", "acquired"]
    assert oct(lock.stat().st_mode & 0o777) == "0o600"
    with exclusive_lock(lock, on_wait=lambda: events.append("unexpected")):
        pass  # free again: no waiting
    assert events[-1] == "acquired"


def _take(lock: Path, events: list[str]) -> None:
    from skill_ledger.adapters.storage.locks import exclusive_lock

    with exclusive_lock(lock, on_wait=lambda: events.append("waiting")):
        events.append("acquired")
