"""Publisher trust facts, the event encoding, upcasting and the exported shape's hash."""

import json
from typing import ClassVar

import pytest

from skill_ledger.domain.codec import (
    GENESIS_HASH,
    canonical_bytes,
    decode_event,
    decode_state_dict,
    encode_state,
    event_hash,
    exported_event,
    kind_of_topic,
    version_of_topic,
)
from skill_ledger.domain.events import Actor, LedgerAggregate, LedgerEvent, known_kinds, stream_uuid, topics_for_kinds
from skill_ledger.domain.publisher import PinImport, Publisher
from skill_ledger.domain.trust import TrustDecision, evaluate_trust

ACTOR = Actor("user:alice", "h", "trust allow")
K1, K2 = "a" * 64, "b" * 64


def test_publisher_allowlist_pin_and_revoke_shape_the_trust_store():
    p = Publisher.start("acme")
    assert p.allowlist(ACTOR, K1, "ed25519:1", "ops") is True
    assert p.allowlist(ACTOR, K1, "ed25519:1", "ops") is False
    p.pin(ACTOR, K2, "ed25519:2", "acme.x", "1.0.0", "p")
    store = p.trust_store()
    assert store.trusted_publishers == {"acme": (K1,)} and store.tofu_publishers == {"acme": K2}
    assert p.revoke(ACTOR, K1, "ed25519:1", "leaked") is True
    assert p.revoke(ACTOR, K1, "ed25519:1", "again") is False
    store = p.trust_store()
    assert store.trusted_publishers == {} and store.revoked == {"acme": frozenset({K1})}
    # the allowlist is now empty, so the pin decides; the revoked key is refused outright
    assert evaluate_trust(store, "acme", K2, False).decision is TrustDecision.TOFU_PINNED
    from skill_ledger.domain.errors import KeyRevoked

    with pytest.raises(KeyRevoked):
        evaluate_trust(store, "acme", K1, True)


def test_re_allowlisting_a_revoked_key_restores_it():
    p = Publisher.start("acme")
    p.revoke(ACTOR, K1, "ed25519:1", "pre-emptive")
    assert p.allowlist(ACTOR, K1, "ed25519:1", "cleared")
    assert p.trust_store().trusted_publishers == {"acme": (K1,)}
    assert p.trust_store().revoked == {}


def test_first_install_under_tofu_pins_the_key_naming_the_first_skill():
    p = Publisher.start("acme")
    decision = p.accept_for_install(ACTOR, K1, "ed25519:1", True, "acme.x", "1.0.0", "p")
    assert decision is TrustDecision.TOFU_NEWLY_PINNED
    [pinned] = p.collect_events()
    assert (pinned.KIND, pinned.key_hex, pinned.first_skill_id, pinned.first_version, pinned.payload_sha256) == (
        "publisher.key_pinned", K1, "acme.x", "1.0.0", "p")
    # the next install under the pinned key records nothing more
    assert p.accept_for_install(ACTOR, K1, "ed25519:1", True, "acme.y", "1.0.0", "q") is TrustDecision.TOFU_PINNED
    assert p.collect_events() == []


def test_an_allowlisted_key_is_never_pinned():
    p = Publisher.start("acme")
    p.allowlist(ACTOR, K1, "ed25519:1", "ops")
    p.collect_events()
    assert p.accept_for_install(ACTOR, K1, "ed25519:1", True, "acme.x", "1.0.0", "p") is TrustDecision.ALLOWLISTED
    assert p.collect_events() == []


def test_without_tofu_an_unknown_publisher_is_refused_and_nothing_pinned():
    from skill_ledger.domain.errors import TofuKeyMismatch, UntrustedPublisher

    p = Publisher.start("acme")
    with pytest.raises(UntrustedPublisher):
        p.accept_for_install(ACTOR, K1, "ed25519:1", False, "acme.x", "1.0.0", "p")
    assert p.collect_events() == []
    p.pin(ACTOR, K1, "ed25519:1", "acme.x", "1.0.0", "p")
    with pytest.raises(TofuKeyMismatch):  # a pin is never replaced by another key on first use
        p.trust_decision(K2, True)


def test_importing_a_tofu_pin_pins_only_where_nothing_conflicts():
    p = Publisher.start("acme")
    assert p.import_pin(ACTOR, K1, "ed25519:1") == PinImport(True)
    assert p.import_pin(ACTOR, K1, "ed25519:1") == PinImport(False)  # pinned already
    assert p.import_pin(ACTOR, K2, "ed25519:2") == PinImport(False, "a different key is already pinned")
    assert [e.KIND for e in p.collect_events()] == ["publisher.key_pinned"]
    q = Publisher.start("beta")
    q.allowlist(ACTOR, K1, "ed25519:1", "ops")
    q.revoke(ACTOR, K2, "ed25519:2", "leaked")
    q.collect_events()
    assert q.import_pin(ACTOR, K1, "ed25519:1") == PinImport(False)  # allowlisted already
    assert q.import_pin(ACTOR, K2, "ed25519:2") == PinImport(False, "key is revoked")
    assert q.collect_events() == []


def test_stream_ids_are_name_based():
    assert Publisher.id_for("acme") == stream_uuid("publisher:acme")
    assert Publisher.start("acme").id == Publisher.id_for("acme")


def test_topics_are_kind_and_version():
    assert kind_of_topic("skill.installed.v1") == "skill.installed"
    assert version_of_topic("skill.installed.v12") == 12
    assert "skill.installed.v1" in topics_for_kinds(["skill.installed"])
    assert {"artifact.rejected", "publisher.key_pinned", "policy.changed", "journal.checkpoint"} <= set(known_kinds())


def test_encoding_round_trip_is_typed():
    p = Publisher.start("acme")
    p.allowlist(ACTOR, K1, "ed25519:1", "ops")
    (event,) = p.collect_events()
    state = encode_state(event)
    assert json.loads(state)["actor"] == {"principal": "user:alice", "host": "h", "command": "trust allow"}
    again = decode_event(event.TOPIC, state, event.originator_id, event.originator_version)
    assert again == event


def test_decode_rejects_a_state_with_unknown_fields():
    p = Publisher.start("acme")
    p.allowlist(ACTOR, K1, "ed25519:1", "ops")
    (event,) = p.collect_events()
    doc = json.loads(encode_state(event))
    doc["surprise"] = 1
    with pytest.raises(Exception):
        decode_event(event.TOPIC, json.dumps(doc).encode(), event.originator_id, 1)


class Gadget(LedgerAggregate):
    PREFIX: ClassVar[str] = "gadget-test"

    def __init__(self, id, stream):
        super().__init__(id, stream)
        self.colour = None


class Painted(LedgerEvent):
    KIND: ClassVar[str] = "gadget_test.painted"
    VERSION: ClassVar[int] = 2
    colour: str
    shade: str

    @staticmethod
    def upcast_v1_v2(state: dict) -> None:
        state["shade"] = "plain"

    def apply(self, g: Gadget) -> None:
        g.colour = f"{self.colour}/{self.shade}"


def test_upcasting_old_topics():
    """Every older topic resolves to the class without registering it by hand."""
    assert Painted.TOPIC == "gadget_test.painted.v2"
    assert topics_for_kinds(["gadget_test.painted"]) == ["gadget_test.painted.v1", "gadget_test.painted.v2"]
    old = json.dumps({"timestamp": "2026-01-01T00:00:00Z", "stream": "gadget-test:x",
                      "actor": {"principal": "p", "host": "h", "command": "c"}, "colour": "red"}).encode()
    assert decode_state_dict("gadget_test.painted.v1", old)["shade"] == "plain"
    event = decode_event("gadget_test.painted.v1", old, stream_uuid("gadget-test:x"), 1)
    g = event.mutate(None)
    assert isinstance(g, Gadget) and g.colour == "red/plain"


def test_a_version_bump_without_its_upcaster_is_refused_at_class_definition():
    with pytest.raises(TypeError, match="lacks upcast_v2_v3"):
        class Scraped(LedgerEvent):  # noqa: F841 - defining it is the test
            KIND: ClassVar[str] = "gadget_test.scraped"
            VERSION: ClassVar[int] = 3

            @staticmethod
            def upcast_v1_v2(state: dict) -> None:
                pass
    assert "gadget_test.scraped" not in known_kinds()
    with pytest.raises(TypeError, match="positive int"):
        class Sanded(LedgerEvent):  # noqa: F841
            KIND: ClassVar[str] = "gadget_test.sanded"
            VERSION: ClassVar[int] = 0


def test_exported_shape_and_hash_cover_every_field():
    state = {"timestamp": "2026-11-25T06:10:00.123456Z", "stream": "skill:acme.x",
             "actor": {"principal": "user:a", "host": "h", "command": "install"}, "version": "1.0.0"}
    e = exported_event(12, 3, "skill.installed.v1", state, GENESIS_HASH)
    assert list(e) == ["position", "recorded_at", "stream", "stream_version", "kind", "actor", "data", "prev_hash"]
    assert e["recorded_at"] == "2026-11-25T06:10:00.123456+00:00" and e["data"] == {"version": "1.0.0"}
    h = event_hash(e)
    for field, value in [("position", 13), ("stream_version", 4), ("kind", "skill.removed"),
                         ("prev_hash", "1" * 64), ("data", {"version": "2.0.0"}), ("recorded_at", "x"),
                         ("stream", "skill:other"), ("actor", {"principal": "user:b"})]:
        assert event_hash({**e, field: value}) != h, field
    assert canonical_bytes(e) == canonical_bytes(dict(reversed(list(e.items()))))
