"""Payload hash, key ids, signature envelope and signing-key parsing (artifact-format §8-§10, §20)."""

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from skill_ledger.domain.errors import InvalidSigningKey, SerializationError, SignatureVerificationFailed
from skill_ledger.domain.signing import (
    SignatureEnvelope,
    key_id,
    parse_signature_json,
    parse_signing_key,
    payload_sha256,
    public_key_from_seed,
    sign_payload,
    verify_signature,
)

SEED_05 = bytes([5]) * 32
SEED_0D = bytes([0x0D]) * 32


def test_reference_key_vector_seed_05():
    pk = public_key_from_seed(SEED_05)
    assert pk.hex() == "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"
    assert base64.b64encode(pk).decode() == "bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E="
    assert key_id(pk) == "ed25519:7599776c3085e3f9"


def test_reference_key_vector_seed_0d():
    pk = public_key_from_seed(SEED_0D)
    assert pk.hex() == "91a28a0b74381593a4d9469579208926afc8ad82c8839b7644359b9eba9a4b3a"
    assert key_id(pk) == "ed25519:defe6330f78fcc11"


@pytest.mark.parametrize(
    "secret",
    [
        SEED_0D,
        b"0d" * 32,
        b"0D" * 32,
        b"DQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0=",
        b"  " + b"0d" * 32 + b"\n",
        ("\u00a0" + "0d" * 32 + "\u3000").encode(),
    ],
    ids=["raw", "hex", "hex-upper", "base64", "hex-ascii-ws", "hex-unicode-ws"],
)
def test_signing_key_inputs_yield_the_seed(secret):
    assert parse_signing_key(secret) == SEED_0D


def test_signing_key_32_printable_bytes_are_a_raw_seed():
    assert parse_signing_key(b"a" * 32) == b"a" * 32


def test_signing_key_trimmed_to_32_bytes_is_raw():
    assert parse_signing_key(b" " + b"b" * 32 + b"\n") == b"b" * 32


def test_signing_key_pem_pkcs8():
    sk = Ed25519PrivateKey.from_private_bytes(SEED_05)
    pem = sk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert parse_signing_key(pem) == SEED_05


def test_signing_key_openssh():
    sk = Ed25519PrivateKey.from_private_bytes(SEED_05)
    pem = sk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    assert parse_signing_key(pem) == SEED_05


def test_signing_key_encrypted_pem_is_rejected_without_echoing_it():
    sk = Ed25519PrivateKey.from_private_bytes(SEED_05)
    pem = sk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(InvalidSigningKey) as ei:
        parse_signing_key(pem)
    assert "BEGIN" not in str(ei.value) and ei.value.details == {"actual": len(pem.strip())}


@pytest.mark.parametrize(
    "secret,actual",
    [(b"", 0), (b"0d" * 31, 62), (b"zz" * 32, 64), (b"\xff" * 40, 40), (b"DQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ1=", 44)],
    ids=["empty", "short-hex", "not-hex", "not-utf8", "non-canonical-b64"],
)
def test_invalid_signing_keys(secret, actual):
    with pytest.raises(InvalidSigningKey) as ei:
        parse_signing_key(secret)
    assert ei.value.details["actual"] == actual


def test_payload_hash_reference_vector():
    entries = {"modules/m.wasm": bytes.fromhex("0061736d01000000"), "skill.toml": b"x", "signature.json": b"{}"}
    assert payload_sha256(entries) == "df0bdd6a3c8db0a6a1e05ad90901b183906b0639180086eb826ed11892a0e8fc"


def test_payload_hash_context_only():
    assert payload_sha256({}) == "3bd162ecf05b02c0309ca936df625d8a1aef3769e51f91633cea4b96fe8996ed"


def test_signature_reference_vector():
    env = sign_payload(SEED_05, "df0bdd6a3c8db0a6a1e05ad90901b183906b0639180086eb826ed11892a0e8fc", "acme", 0)
    assert env.signature_base64 == (
        "OObkYBxGVOHg1XJ1Nyz0/PwzglwCPVkBLCbJJ7YSKgw9THqWk5FsagjMxWpSGEJbqV/sB5Ias0BexxS1SBGADw=="
    )
    assert verify_signature(env, "acme") == public_key_from_seed(SEED_05)


def _envelope(**changes):
    env = sign_payload(SEED_05, "a" * 64, "acme", 1700000000000)
    d = env.to_dict()
    d.update(changes)
    return SignatureEnvelope(**d)


def test_envelope_json_member_order_and_round_trip():
    env = _envelope()
    text = env.to_json_bytes().decode()
    assert list(json.loads(text)) == [
        "algorithm", "publisher", "key_id", "public_key_base64", "payload_sha256", "signature_base64", "signed_at_unix_ms",
    ]
    assert not text.endswith("\n") and '\n  "algorithm": ' in text
    assert parse_signature_json(env.to_json_bytes()) == env


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("key_id"),
        lambda d: d.update(extra=1),
        lambda d: d.update(signed_at_unix_ms=1.0),
        lambda d: d.update(signed_at_unix_ms=True),
        lambda d: d.update(signed_at_unix_ms=2**63),
        lambda d: d.update(algorithm=1),
    ],
    ids=["missing", "unknown", "float-int", "bool-int", "int64-overflow", "wrong-type"],
)
def test_envelope_schema_violations_are_serialization_errors(mutate):
    d = _envelope().to_dict()
    mutate(d)
    with pytest.raises(SerializationError):
        parse_signature_json(json.dumps(d).encode())


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'{"a": NaN}', '{"a":1}'.encode("utf-16"), b'{"algorithm":"x","algorithm":"y"}'],
    ids=["garbage", "array", "nan", "utf16", "duplicate-member"],
)
def test_envelope_bad_json(raw):
    with pytest.raises(SerializationError):
        parse_signature_json(raw)


def _flip_b64(value: str, index: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    "changes,reason",
    [
        ({"algorithm": "ed25519"}, "unsupported algorithm"),
        ({"public_key_base64": base64.b64encode(b"\x01" * 31).decode()}, "public key is not 32 bytes"),
        ({"public_key_base64": "bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/F="}, "public key is not 32 bytes"),
        ({"public_key_base64": " bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E="}, "public key is not 32 bytes"),
        ({"key_id": "ed25519:0000000000000000"}, "key id"),
        ({"signature_base64": base64.b64encode(b"\x00" * 63).decode()}, "signature is not 64 bytes"),
        ({"payload_sha256": "b" * 64}, "does not verify"),
        ({"publisher": "other"}, "publisher"),
    ],
    ids=["algorithm", "short-key", "non-canonical-key-b64", "key-whitespace", "key-id", "short-sig", "other-payload", "publisher"],
)
def test_signature_failures(changes, reason):
    with pytest.raises(SignatureVerificationFailed) as ei:
        verify_signature(_envelope(**changes), "acme")
    assert reason in ei.value.details["reason"]


def test_flipped_signature_byte_fails():
    env = _envelope()
    bad = _envelope(signature_base64=_flip_b64(env.signature_base64, 10))
    with pytest.raises(SignatureVerificationFailed):
        verify_signature(bad, "acme")


def test_other_key_with_matching_key_id_fails_signature():
    other = public_key_from_seed(SEED_0D)
    bad = _envelope(public_key_base64=base64.b64encode(other).decode(), key_id=key_id(other))
    with pytest.raises(SignatureVerificationFailed) as ei:
        verify_signature(bad, "acme")
    assert ei.value.details["reason"] == "signature does not verify"


def test_invalid_point_public_key():
    # y = 2 is not on the curve for Ed25519 (decoding fails) in most libraries; whatever the
    # library decides, the outcome must be this kind.
    bad_point = (2).to_bytes(32, "little")
    with pytest.raises(SignatureVerificationFailed):
        verify_signature(_envelope(public_key_base64=base64.b64encode(bad_point).decode(), key_id=key_id(bad_point)), "acme")
