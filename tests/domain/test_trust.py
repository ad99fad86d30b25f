"""Trust evaluation and the trust-store interchange format (artifact-format §16)."""

import json

import pytest

from skill_ledger.domain.errors import (
    KeyRevoked,
    ManifestValidationError,
    SerializationError,
    TofuKeyMismatch,
    TrustedPublisherKeyMismatch,
    UntrustedPublisher,
)
from skill_ledger.domain.signing import key_id
from skill_ledger.domain.trust import (
    TrustDecision,
    TrustStore,
    add_trusted_key,
    dump_trust_store,
    evaluate_trust,
    normalize,
    parse_trust_store,
)

K1 = "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"
K2 = "91a28a0b74381593a4d9469579208926afc8ad82c8839b7644359b9eba9a4b3a"


def test_allowlisted():
    store = TrustStore({"acme": (K1,)})
    assert evaluate_trust(store, "acme", K1, False).decision is TrustDecision.ALLOWLISTED


def test_allowlisted_but_other_key():
    with pytest.raises(TrustedPublisherKeyMismatch):
        evaluate_trust(TrustStore({"acme": (K1,)}), "acme", K2, True)


def test_allowlist_has_priority_over_pin():
    store = TrustStore({"acme": (K1,)}, {"acme": K2})
    with pytest.raises(TrustedPublisherKeyMismatch):
        evaluate_trust(store, "acme", K2, True)


def test_tofu_pin_then_same_key():
    first = evaluate_trust(TrustStore(), "acme", K1, True)
    assert first.decision is TrustDecision.TOFU_NEWLY_PINNED
    assert first.store.tofu_publishers == {"acme": K1}
    assert evaluate_trust(first.store, "acme", K1, False).decision is TrustDecision.TOFU_PINNED


def test_tofu_pin_then_other_key():
    first = evaluate_trust(TrustStore(), "acme", K1, True)
    with pytest.raises(TofuKeyMismatch) as ei:
        evaluate_trust(first.store, "acme", K2, True)
    pinned, presented = key_id(bytes.fromhex(K1)), key_id(bytes.fromhex(K2))
    assert ei.value.message == f"TOFU pinned key mismatch for 'acme': pinned {pinned}, presented {presented}"


def test_unknown_without_tofu():
    with pytest.raises(UntrustedPublisher) as ei:
        evaluate_trust(TrustStore(), "acme", K1, False)
    assert ei.value.details == {"publisher": "acme", "presented_key_id": key_id(bytes.fromhex(K1)),
                                "presented_key_hex": K1}
    assert ei.value.message == f"untrusted publisher 'acme' (signed with key {key_id(bytes.fromhex(K1))})"


def test_evaluation_does_not_mutate_the_store():
    store = TrustStore()
    evaluate_trust(store, "acme", K1, True)
    assert store.tofu_publishers == {}


def test_revoked_key_is_never_trusted():
    store = TrustStore({"acme": (K1, K2)}, revoked={"acme": frozenset({K1})})
    with pytest.raises(KeyRevoked):
        evaluate_trust(store, "acme", K1, True)
    assert evaluate_trust(store, "acme", K2, False).decision is TrustDecision.ALLOWLISTED


def test_interchange_round_trip_and_order():
    store = parse_trust_store(json.dumps({"tofu_publishers": {"b": K2}, "trusted_publishers": {"z": [K2, K1.upper()], "a": [K1]}}).encode())
    text = dump_trust_store(store).decode()
    assert list(json.loads(text)) == ["trusted_publishers", "tofu_publishers"]
    assert json.loads(text)["trusted_publishers"] == {"a": [K1], "z": sorted([K1, K2])}
    assert not text.endswith("\n")
    assert parse_trust_store(text.encode()) == store


@pytest.mark.parametrize("raw", [b"", b"  \n\t", b"{}"])
def test_empty_stores(raw):
    assert parse_trust_store(raw) == TrustStore()


@pytest.mark.parametrize(
    "doc,fragment",
    [
        ('{"x": {}}', "unknown field"),
        ('{"trusted_publishers": {"acme": ["%s"], "acme": ["%s"]}}' % (K1, K2), "duplicate member"),
        ('{"tofu_publishers": {"acme": 1}}', "tofu_publishers"),
        ('{"trusted_publishers": {"Acme": ["%s"]}}' % K1, "invalid trust-store publisher 'Acme'"),
        ('{"trusted_publishers": {"acme": ["xyz"]}}', "invalid trusted key for publisher 'acme'"),
        ('{"trusted_publishers": {"acme": ["abcd"]}}', "must decode to 32 bytes"),
        ('{"trusted_publishers": {"acme": []}}', "must include at least one key"),
        ('{"tofu_publishers": {"acme": "%s", " acme": "%s"}}' % (K1, K2), "conflicting TOFU keys"),
        ('{"tofu_publishers": {"acme": "zz"}}', "invalid TOFU key for publisher 'acme'"),
        ("[1]", "must be a JSON object"),
        ("{", "failed to parse trust store"),
    ],
)
def test_trust_store_errors(doc, fragment):
    with pytest.raises(SerializationError) as ei:
        parse_trust_store(doc.encode())
    assert fragment in str(ei.value)


def test_normalisation_merges_publishers_that_normalise_alike():
    store = normalize({"acme": [K1], " acme ": [K2, K1]}, {"acme": K1, " acme": K1})
    assert store.trusted_publishers == {"acme": tuple(sorted([K1, K2]))}
    assert store.tofu_publishers == {"acme": K1}


def test_add_trusted_key_errors_are_manifest_validation():
    with pytest.raises(ManifestValidationError) as ei:
        add_trusted_key(TrustStore(), "acme", "nothex")
    assert ei.value.rule == "trusted_key_not_hex"
    with pytest.raises(ManifestValidationError) as ei:
        add_trusted_key(TrustStore(), "Bad Pub", K1)
    assert ei.value.rule == "identifier_invalid"
    s = add_trusted_key(add_trusted_key(TrustStore(), "acme", K2), "acme", " " + K1.upper())
    assert s.trusted_publishers == {"acme": tuple(sorted([K1, K2]))}
