"""The artifact pipelines end to end on whole artifacts (artifact-format.md §8-§17, §20.4).

build -> inspect -> verify for the bundled example; the §20.4 reference archive; every
signature failure, missing entry and integrity case as a complete, re-zipped artifact;
compatibility errors; trust on whole artifacts; and two hypothesis properties:
build-then-inspect round-trips for generated manifests and payloads, and decode/inspect
never raises anything but the project's own errors on mutated artifacts.

Archives are re-zipped here with the standard library ``zipfile`` following §11, so a
mutated artifact is always a structurally valid ZIP and the failure comes from the
pipeline step under test, not from the ZIP defences.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import tomllib
import zipfile
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skill_ledger.domain.artifact import build_artifact, inspect_artifact, verify_artifact
from skill_ledger.domain.errors import (
    ArtifactEntryTooLarge,
    DuplicateArtifactEntry,
    InvalidArtifactPath,
    InvalidProvenance,
    InvalidSbom,
    ManifestParseError,
    ManifestValidationError,
    MissingArtifactEntry,
    PayloadHashMismatch,
    RuntimeVersionAboveSupportedMaximum,
    SerializationError,
    SignatureVerificationFailed,
    SkillLedgerError,
    TofuKeyMismatch,
    TrustedPublisherKeyMismatch,
    UnsupportedProtocolMajor,
    UnsupportedRuntimeVersion,
    UntrustedPublisher,
)
from skill_ledger.domain.signing import key_id, payload_sha256, public_key_from_seed, sign_payload
from skill_ledger.domain.trust import TrustDecision, TrustStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello"

SEED05 = bytes([0x05]) * 32
SEED0D = bytes([0x0D]) * 32
PUB05_HEX = "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"
PUB05_B64 = "bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E="
KEYID05 = "ed25519:7599776c3085e3f9"
PUB0D_HEX = "91a28a0b74381593a4d9469579208926afc8ad82c8839b7644359b9eba9a4b3a"

# §20.4 fixture bytes
SBOM_MIN = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
PROV_MIN = b'{"builder":{"id":"palyra-ci"},"subject":[{"name":"module.wasm"}]}'
EMPTY_MODULE = bytes.fromhex("0061736d01000000")
HELLO = b"hello"
NOW_MS = 1_700_000_000_000


def acme_manifest(publisher: str = "acme", extra: str = "") -> str:
    return f"""manifest_version = 2
skill_id = "acme.echo"
name = "Echo"
version = "1.0.0"
publisher = "{publisher}"

[entrypoints]
[[entrypoints.tools]]
id = "{publisher}.echo"
name = "echo"
description = "Echoes text"
input_schema = {{ type = "object" }}
output_schema = {{ type = "object" }}

[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"
{extra}"""


@functools.lru_cache(maxsize=None)
def acme_artifact(seed: bytes = SEED05, publisher: str = "acme") -> bytes:
    r = build_artifact(
        acme_manifest(publisher),
        [("module.wasm", EMPTY_MODULE)],
        [("templates/prompt.txt", HELLO)],
        SBOM_MIN,
        PROV_MIN,
        seed,
        NOW_MS,
    )
    return r.artifact


# --- ZIP helpers (stdlib zipfile, §11 settings) ---------------------------------------------


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def rezip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            z.writestr(info, entries[name])
    return buf.getvalue()


def envelope(entries: dict[str, bytes]) -> dict:
    return json.loads(entries["signature.json"])


def with_envelope(entries: dict[str, bytes], **changes) -> bytes:
    env = envelope(entries)
    env.update(changes)
    out = dict(entries)
    out["signature.json"] = json.dumps(env, indent=2).encode()
    return rezip(out)


def resign(entries: dict[str, bytes], seed: bytes = SEED05, publisher: str = "acme") -> dict[str, bytes]:
    """Recompute the payload hash and a valid signature over ``entries`` (without signature.json)."""
    body = {k: v for k, v in entries.items() if k != "signature.json"}
    env = sign_payload(seed, payload_sha256(body), publisher, NOW_MS)
    return {**body, "signature.json": env.to_json_bytes()}


def replace_manifest(entries: dict[str, bytes], old: str, new: str) -> dict[str, bytes]:
    text = entries["skill.toml"].decode()
    assert old in text, old
    return {**entries, "skill.toml": text.replace(old, new, 1).encode()}


# --- build -> inspect -> verify for the example ------------------------------------------------


def example_inputs() -> tuple[str, list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """The bundled example: its manifest, every compiled module and every asset."""
    manifest = (EXAMPLE / "skill.toml").read_text()
    modules = [(p.name, p.read_bytes()) for p in sorted((EXAMPLE / "modules").glob("*.wasm"))]
    assets = [(p.relative_to(EXAMPLE / "assets").as_posix(), p.read_bytes())
              for p in sorted((EXAMPLE / "assets").rglob("*")) if p.is_file()]
    return manifest, modules, assets


def test_example_build_inspect_verify_round_trip():
    manifest, modules, assets = example_inputs()
    assert modules and assets
    built = build_artifact(manifest, modules, assets, SBOM_MIN, PROV_MIN, SEED0D, NOW_MS)
    expected_entries = sorted(
        [f"modules/{n}" for n, _ in modules] + [f"assets/{n}" for n, _ in assets]
        + ["provenance.json", "sbom.cdx.json", "signature.json", "skill.toml"]
    )
    assert built.entries == expected_entries
    assert built.artifact_sha256 == hashlib.sha256(built.artifact).hexdigest()

    inspected = inspect_artifact(built.artifact)
    assert inspected.payload_sha256 == built.payload_sha256
    assert inspected.manifest == built.manifest
    assert inspected.manifest.skill_id == "examples.hello"
    for name, data in modules:
        assert inspected.entries[f"modules/{name}"] == data
    for name, data in assets:
        assert inspected.entries[f"assets/{name}"] == data
    assert sorted(inspected.entries) == expected_entries
    assert inspected.public_key_hex == PUB0D_HEX
    assert inspected.signature.key_id == "ed25519:defe6330f78fcc11"
    assert inspected.signature.signed_at_unix_ms == NOW_MS
    # the example has operator metadata with a display name: no warnings at all
    assert inspected.manifest_warnings == []

    v = verify_artifact(built.artifact, TrustStore({"examples": (PUB0D_HEX,)}), False, NOW_MS)
    assert v.report.accepted is True
    assert v.report.trust_decision is TrustDecision.ALLOWLISTED
    assert v.report.payload_sha256 == built.payload_sha256
    assert v.report.manifest["skill_id"] == "examples.hello"
    assert v.report.audit_event["event_kind"] == "skill.artifact.verified"
    assert v.report.audit_event["verified_at_unix_ms"] == NOW_MS
    tools = tomllib.loads(manifest)["entrypoints"]["tools"]
    expected_bindings = sorted(
        ("tool.execute", f"tool:{t['id']}", bool(t.get("risk", {}).get("default_sensitive") or
                                               t.get("risk", {}).get("requires_approval")))
        for t in tools
    )
    assert [(b.action, b.resource, b.requires_approval) for b in v.report.policy_bindings] == expected_bindings


def test_example_integrity_lists_every_entry_but_manifest_and_signature():
    manifest, modules, assets = example_inputs()
    built = build_artifact(manifest, modules, assets, SBOM_MIN, PROV_MIN, SEED0D, NOW_MS)
    entries = unzip(built.artifact)
    doc = tomllib.loads(entries["skill.toml"].decode())
    listed = [(f["path"], f["sha256"]) for f in doc["integrity"]["files"]]
    expected = sorted(
        (p, hashlib.sha256(d).hexdigest()) for p, d in entries.items() if p not in ("skill.toml", "signature.json")
    )
    assert listed == expected


# --- §20.4 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, length, digest",
    [
        (SBOM_MIN, 45, "20b5397e8c658dd61fca0ec2ea9a3841f979716daace2ab4ff747648d9bf9d18"),
        (PROV_MIN, 65, "90bfb0cccd7c7b1a72b538343bf7ca26e5fe3e151c757d6d26c8c3b855c903e0"),
        (EMPTY_MODULE, 8, "93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476"),
        (HELLO, 5, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
    ],
)
def test_reference_fixture_digests(data, length, digest):
    assert len(data) == length
    assert hashlib.sha256(data).hexdigest() == digest


def test_reference_acme_archive_entry_list_and_integrity():
    data = acme_artifact()
    entries = unzip(data)
    assert sorted(entries) == [
        "assets/templates/prompt.txt",
        "modules/module.wasm",
        "provenance.json",
        "sbom.cdx.json",
        "signature.json",
        "skill.toml",
    ]
    doc = tomllib.loads(entries["skill.toml"].decode())
    assert doc["integrity"]["files"] == [
        {"path": "assets/templates/prompt.txt", "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
        {"path": "modules/module.wasm", "sha256": "93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476"},
        {"path": "provenance.json", "sha256": "90bfb0cccd7c7b1a72b538343bf7ca26e5fe3e151c757d6d26c8c3b855c903e0"},
        {"path": "sbom.cdx.json", "sha256": "20b5397e8c658dd61fca0ec2ea9a3841f979716daace2ab4ff747648d9bf9d18"},
    ]
    env = envelope(entries)
    assert list(env) == [
        "algorithm", "publisher", "key_id", "public_key_base64", "payload_sha256", "signature_base64", "signed_at_unix_ms",
    ]
    assert env["algorithm"] == "ed25519-sha256"
    assert env["publisher"] == "acme"
    assert env["key_id"] == KEYID05
    assert env["public_key_base64"] == PUB05_B64


def test_reference_acme_tofu_newly_pinned_then_pinned():
    data = acme_artifact()
    first = verify_artifact(data, TrustStore(), True, NOW_MS)
    assert first.report.trust_decision is TrustDecision.TOFU_NEWLY_PINNED
    assert first.store.tofu_publishers == {"acme": PUB05_HEX}
    second = verify_artifact(data, first.store, False, NOW_MS)
    assert second.report.trust_decision is TrustDecision.TOFU_PINNED
    assert second.store.tofu_publishers == {"acme": PUB05_HEX}


# --- signature failures (§9.4) on whole artifacts ---------------------------------------------------


def test_flipped_payload_byte_is_payload_hash_mismatch():
    entries = unzip(acme_artifact())
    asset = bytearray(entries["assets/templates/prompt.txt"])
    asset[0] ^= 0x01
    entries["assets/templates/prompt.txt"] = bytes(asset)
    with pytest.raises(PayloadHashMismatch):
        inspect_artifact(rezip(entries))


def test_flipped_manifest_byte_is_payload_hash_mismatch():
    entries = unzip(acme_artifact())
    entries = replace_manifest(entries, 'name = "Echo"', 'name = "Echp"')
    with pytest.raises(PayloadHashMismatch):
        inspect_artifact(rezip(entries))


def test_uppercase_payload_digest_in_envelope_is_payload_hash_mismatch():
    entries = unzip(acme_artifact())
    with pytest.raises(PayloadHashMismatch):
        inspect_artifact(with_envelope(entries, payload_sha256=envelope(entries)["payload_sha256"].upper()))


def test_flipped_signature_byte():
    entries = unzip(acme_artifact())
    sig = bytearray(base64.b64decode(envelope(entries)["signature_base64"]))
    sig[10] ^= 0x01
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(with_envelope(entries, signature_base64=base64.b64encode(bytes(sig)).decode()))


def test_wrong_algorithm():
    entries = unzip(acme_artifact())
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(with_envelope(entries, algorithm="ed25519"))


def test_key_id_mismatch():
    entries = unzip(acme_artifact())
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(with_envelope(entries, key_id=key_id(public_key_from_seed(SEED0D))))


def test_other_public_key_with_matching_key_id():
    """A key that did not make the signature, with its own (consistent) key id."""
    entries = unzip(acme_artifact())
    other = public_key_from_seed(SEED0D)
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(
            with_envelope(entries, public_key_base64=base64.b64encode(other).decode(), key_id=key_id(other))
        )


def test_publisher_mismatch():
    entries = unzip(acme_artifact())
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(with_envelope(entries, publisher="other"))


def test_publisher_mismatch_is_exact_not_trimmed():
    entries = unzip(acme_artifact())
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(with_envelope(entries, publisher="acme "))


def test_wrong_length_public_key():
    entries = unzip(acme_artifact())
    short = base64.b64decode(PUB05_B64)[:31]
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(with_envelope(entries, public_key_base64=base64.b64encode(short).decode(), key_id=key_id(short)))


def test_wrong_length_signature():
    entries = unzip(acme_artifact())
    sig = base64.b64decode(envelope(entries)["signature_base64"])
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(with_envelope(entries, signature_base64=base64.b64encode(sig[:63]).decode()))


def test_signature_with_extra_byte():
    entries = unzip(acme_artifact())
    sig = base64.b64decode(envelope(entries)["signature_base64"])
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(with_envelope(entries, signature_base64=base64.b64encode(sig + b"\0").decode()))


def _non_canonical(b64: str) -> str:
    """Same decoded bytes, non-zero unused trailing bits (the last char before '=' bumped by one)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    stripped = b64.rstrip("=")
    pad = b64[len(stripped):]
    assert pad, "needs padding to have unused bits"
    bumped = stripped[:-1] + alphabet[alphabet.index(stripped[-1]) + 1]
    out = bumped + pad
    assert base64.b64decode(out) == base64.b64decode(b64) and out != b64
    return out


def test_non_canonical_base64_public_key():
    entries = unzip(acme_artifact())
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(with_envelope(entries, public_key_base64=_non_canonical(PUB05_B64)))


def test_non_canonical_base64_signature():
    entries = unzip(acme_artifact())
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(with_envelope(entries, signature_base64=_non_canonical(envelope(entries)["signature_base64"])))


def test_base64_with_whitespace_is_not_strict():
    entries = unzip(acme_artifact())
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(with_envelope(entries, public_key_base64=PUB05_B64[:20] + "\n" + PUB05_B64[20:]))


def test_signature_by_other_key_over_same_payload():
    """Everything consistent (key, key id, publisher) but the key is not the one the hash was signed with."""
    entries = unzip(acme_artifact())
    env = envelope(entries)
    other = sign_payload(SEED0D, env["payload_sha256"], "acme", NOW_MS).to_dict()
    other["signature_base64"] = env["signature_base64"]
    with pytest.raises(SignatureVerificationFailed):
        inspect_artifact(with_envelope(entries, **other))


def test_signature_json_unknown_member_is_serialization():
    entries = unzip(acme_artifact())
    with pytest.raises(SerializationError):
        inspect_artifact(with_envelope(entries, comment="hi"))


def test_signature_json_float_time_is_serialization():
    entries = unzip(acme_artifact())
    with pytest.raises(SerializationError):
        inspect_artifact(with_envelope(entries, signed_at_unix_ms=1.0))


# --- missing entries and integrity (§14) -------------------------------------------------------------


@pytest.mark.parametrize(
    "removed, name",
    [
        ("skill.toml", "skill.toml"),
        ("sbom.cdx.json", "sbom.cdx.json"),
        ("provenance.json", "provenance.json"),
        ("signature.json", "signature.json"),
        ("modules/module.wasm", "modules/*.wasm"),
    ],
)
def test_missing_required_entry(removed, name):
    entries = unzip(acme_artifact())
    del entries[removed]
    with pytest.raises(MissingArtifactEntry) as e:
        inspect_artifact(rezip(entries))
    assert e.value.details == {"name": name}
    assert e.value.code == "missing_artifact_entry"


def test_module_renamed_to_non_wasm_is_missing_module():
    entries = unzip(acme_artifact())
    entries["modules/module.wat"] = entries.pop("modules/module.wasm")
    with pytest.raises(MissingArtifactEntry) as e:
        inspect_artifact(rezip(resign(entries)))
    assert e.value.details == {"name": "modules/*.wasm"}


def test_signed_but_unlisted_entry_is_integrity_mismatch():
    entries = unzip(acme_artifact())
    entries["assets/extra.txt"] = b"signed, but not in integrity.files"
    with pytest.raises(ManifestValidationError) as e:
        inspect_artifact(rezip(resign(entries)))
    assert e.value.details["code"] == "integrity_mismatch"


def test_listed_but_absent_entry_is_integrity_mismatch():
    entries = unzip(acme_artifact())
    del entries["assets/templates/prompt.txt"]
    with pytest.raises(ManifestValidationError) as e:
        inspect_artifact(rezip(resign(entries)))
    assert e.value.details["code"] == "integrity_mismatch"


def test_wrong_listed_digest_is_integrity_mismatch():
    entries = unzip(acme_artifact())
    good = hashlib.sha256(HELLO).hexdigest()
    entries = replace_manifest(entries, good, hashlib.sha256(b"other").hexdigest())
    with pytest.raises(ManifestValidationError) as e:
        inspect_artifact(rezip(resign(entries)))
    assert e.value.details["code"] == "integrity_mismatch"


def test_uppercase_listed_digest_is_integrity_mismatch():
    entries = unzip(acme_artifact())
    good = hashlib.sha256(HELLO).hexdigest()
    entries = replace_manifest(entries, good, good.upper())
    with pytest.raises(ManifestValidationError) as e:
        inspect_artifact(rezip(resign(entries)))
    assert e.value.details["code"] == "integrity_mismatch"


def test_integrity_path_is_normalised_before_comparison():
    """`declared` uses normalize_path(f.path): a backslash spelling of the same path is accepted."""
    entries = unzip(acme_artifact())
    entries = replace_manifest(entries, 'path = "assets/templates/prompt.txt"', 'path = "assets\\\\templates\\\\prompt.txt"')
    inspected = inspect_artifact(rezip(resign(entries)))
    assert "assets/templates/prompt.txt" in inspected.entries


def test_integrity_with_invalid_path_is_invalid_artifact_path():
    entries = unzip(acme_artifact())
    entries = replace_manifest(entries, 'path = "assets/templates/prompt.txt"', 'path = "assets/../prompt.txt"')
    with pytest.raises(InvalidArtifactPath):
        inspect_artifact(rezip(resign(entries)))


def test_extra_unsigned_entry_is_payload_hash_mismatch():
    entries = unzip(acme_artifact())
    entries["assets/smuggled.txt"] = b"not covered by the signature"
    with pytest.raises(PayloadHashMismatch):
        inspect_artifact(rezip(entries))


def test_invalid_sbom_inside_artifact():
    entries = unzip(acme_artifact())
    entries["sbom.cdx.json"] = b'{"bomFormat":"SPDX","specVersion":"1.6"}'
    with pytest.raises(InvalidSbom):
        inspect_artifact(rezip(entries))


def test_invalid_provenance_inside_artifact():
    entries = unzip(acme_artifact())
    entries["provenance.json"] = b'{"builder":{"id":"x"},"subject":[]}'
    with pytest.raises(InvalidProvenance):
        inspect_artifact(rezip(entries))


def test_manifest_not_utf8_is_manifest_parse():
    entries = unzip(acme_artifact())
    entries["skill.toml"] = b"\xff" + entries["skill.toml"]
    with pytest.raises(ManifestParseError):
        inspect_artifact(rezip(entries))


def test_manifest_checks_come_before_signature_checks():
    """§14 order: an invalid manifest is reported even when the signature is also broken."""
    entries = unzip(acme_artifact())
    entries = replace_manifest(entries, 'name = "Echo"', 'name = "  "')
    with pytest.raises(ManifestValidationError) as e:
        inspect_artifact(rezip(entries))
    assert e.value.details["code"] == "name_empty"


# --- compatibility (§15) at inspect and at build -------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, error, details",
    [
        ("required_protocol_major = 1", "required_protocol_major = 2", UnsupportedProtocolMajor,
         {"requested": 2, "current": 1}),
        ('min_palyra_version = "0.1.0"', 'min_palyra_version = "0.1.1"', UnsupportedRuntimeVersion,
         {"requested": "0.1.1", "current": "0.1.0"}),
        ('min_palyra_version = "0.1.0"', 'min_palyra_version = "0.0.1"\nmax_palyra_version = "0.0.9"',
         RuntimeVersionAboveSupportedMaximum, {"supported_max": "0.0.9", "current": "0.1.0"}),
    ],
    ids=["protocol_major", "min_runtime", "max_runtime"],
)
def test_compat_errors_on_signed_artifact(old, new, error, details):
    entries = unzip(acme_artifact())
    entries = replace_manifest(entries, old, new)
    with pytest.raises(error) as e:
        inspect_artifact(rezip(resign(entries)))
    assert e.value.details == details


def test_compat_protocol_major_zero_and_max_equal_to_runtime_pass():
    entries = unzip(acme_artifact())
    entries = replace_manifest(entries, "required_protocol_major = 1", "required_protocol_major = 0")
    entries = replace_manifest(entries, 'min_palyra_version = "0.1.0"', 'min_palyra_version = "0.1.0"\nmax_palyra_version = "0.1.0"')
    assert inspect_artifact(rezip(resign(entries))).manifest.compat.required_protocol_major == 0


@pytest.mark.parametrize(
    "old, new, error",
    [
        ("required_protocol_major = 1", "required_protocol_major = 2", UnsupportedProtocolMajor),
        ('min_palyra_version = "0.1.0"', 'min_palyra_version = "1.0.0"', UnsupportedRuntimeVersion),
        ('min_palyra_version = "0.1.0"', 'min_palyra_version = "0.0.1"\nmax_palyra_version = "0.0.2"',
         RuntimeVersionAboveSupportedMaximum),
    ],
    ids=["protocol_major", "min_runtime", "max_runtime"],
)
def test_compat_errors_at_build(old, new, error):
    with pytest.raises(error):
        build_artifact(acme_manifest().replace(old, new), [("m.wasm", EMPTY_MODULE)], [], SBOM_MIN, PROV_MIN, SEED05, 0)


# --- build failures (§13) --------------------------------------------------------------------------------


def _build(modules=(("m.wasm", EMPTY_MODULE),), assets=(), sbom=SBOM_MIN, prov=PROV_MIN, manifest=None):
    return build_artifact(manifest or acme_manifest(), list(modules), list(assets), sbom, prov, SEED05, 0)


def test_build_module_not_wasm():
    with pytest.raises(ManifestValidationError) as e:
        _build(modules=[("m.WASM", EMPTY_MODULE)])
    assert e.value.details["code"] == "module_path_not_wasm"


def test_build_no_modules():
    with pytest.raises(ManifestValidationError) as e:
        _build(modules=[])
    assert e.value.details["code"] == "no_modules"


def test_build_duplicate_after_normalisation():
    with pytest.raises(DuplicateArtifactEntry) as e:
        _build(modules=[("lib/x.wasm", EMPTY_MODULE), ("lib\\x.wasm", EMPTY_MODULE)])
    assert e.value.details == {"path": "modules/lib/x.wasm"}


def test_build_traversal_asset_name():
    with pytest.raises(InvalidArtifactPath):
        _build(assets=[("../escape.txt", b"x")])


def test_build_entry_over_16_mib():
    with pytest.raises(ArtifactEntryTooLarge) as e:
        _build(assets=[("big.bin", bytes(16 * 1024 * 1024 + 1))])
    assert e.value.details["actual"] == 16 * 1024 * 1024 + 1


def test_build_sidecars_are_validated_before_modules():
    with pytest.raises(InvalidSbom):
        _build(modules=[], sbom=b"[]")
    with pytest.raises(InvalidProvenance):
        _build(modules=[], prov=b'{"builder": 1, "subject": [1]}')


def test_build_discards_input_integrity_list():
    manifest = acme_manifest(extra='\n[[integrity.files]]\npath = "bogus.txt"\nsha256 = "' + "0" * 64 + '"\n')
    built = _build(manifest=manifest)
    assert [f.path for f in built.manifest.integrity.files] == ["modules/m.wasm", "provenance.json", "sbom.cdx.json"]
    inspect_artifact(built.artifact)


def test_build_v1_manifest_stays_v1_and_warns():
    manifest = acme_manifest().replace("manifest_version = 2", "manifest_version = 1")
    inspected = inspect_artifact(_build(manifest=manifest).artifact)
    assert inspected.manifest.manifest_version == 1
    assert [w.code for w in inspected.manifest_warnings] == ["legacy_manifest_version", "missing_operator_metadata"]


# --- trust on whole artifacts (§16.1, §17) ----------------------------------------------------------------


def test_trust_allowlisted():
    v = verify_artifact(acme_artifact(), TrustStore({"acme": (PUB05_HEX,)}), False, NOW_MS)
    assert v.report.trust_decision is TrustDecision.ALLOWLISTED


def test_trust_allowlisted_but_other_key():
    with pytest.raises(TrustedPublisherKeyMismatch) as e:
        verify_artifact(acme_artifact(), TrustStore({"acme": (PUB0D_HEX,)}), True, NOW_MS)
    assert e.value.details == {"publisher": "acme", "presented_key_id": key_id(bytes.fromhex(PUB05_HEX)),
                               "presented_key_hex": PUB05_HEX,
                               "allowlisted_key_ids": [key_id(bytes.fromhex(PUB0D_HEX))]}


def test_trust_tofu_pin_then_same_key():
    first = verify_artifact(acme_artifact(), TrustStore(), True, NOW_MS)
    assert first.report.trust_decision is TrustDecision.TOFU_NEWLY_PINNED
    again = verify_artifact(acme_artifact(), first.store, True, NOW_MS)
    assert again.report.trust_decision is TrustDecision.TOFU_PINNED


def test_trust_tofu_pin_then_other_key():
    first = verify_artifact(acme_artifact(SEED05), TrustStore(), True, NOW_MS)
    with pytest.raises(TofuKeyMismatch) as e:
        verify_artifact(acme_artifact(SEED0D), first.store, True, NOW_MS)
    assert e.value.details == {"publisher": "acme", "pinned_key_id": key_id(bytes.fromhex(PUB05_HEX)),
                               "presented_key_id": key_id(bytes.fromhex(PUB0D_HEX)), "presented_key_hex": PUB0D_HEX}


def test_trust_unknown_without_tofu():
    with pytest.raises(UntrustedPublisher) as e:
        verify_artifact(acme_artifact(), TrustStore(), False, NOW_MS)
    assert e.value.details == {"publisher": "acme", "presented_key_id": key_id(bytes.fromhex(PUB05_HEX)),
                               "presented_key_hex": PUB05_HEX}


def test_trust_other_publishers_do_not_count():
    store = TrustStore({"acme2": (PUB05_HEX,)}, {"acme.x": PUB05_HEX})
    with pytest.raises(UntrustedPublisher):
        verify_artifact(acme_artifact(), store, False, NOW_MS)


def test_inspect_failure_leaves_store_untouched():
    entries = unzip(acme_artifact())
    entries["assets/smuggled.txt"] = b"x"
    store = TrustStore()
    with pytest.raises(PayloadHashMismatch):
        verify_artifact(rezip(entries), store, True, NOW_MS)
    assert store == TrustStore()


# --- hypothesis: generated manifests and payloads round-trip ----------------------------------------------

SEG = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8)
IDENT_TAIL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=10)
U32 = st.integers(min_value=0, max_value=4294967295)
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=20
).filter(lambda s: s.strip(" \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000") != "")
JSONISH = st.recursive(
    st.none().map(lambda _: "null") | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(SEG, children, max_size=3),
    max_leaves=6,
)


@st.composite
def manifests(draw):
    publisher = draw(st.builds(lambda a, b: a + b, SEG, st.sampled_from(["", ".org", ":team", "-x"])))
    version = ".".join(str(draw(U32)) for _ in range(3))
    ntools = draw(st.integers(1, 3))
    tool_ids = draw(st.lists(IDENT_TAIL, min_size=ntools, max_size=ntools, unique=True))
    tools = [
        {
            "id": f"{publisher}.{t}",
            "name": draw(TEXT),
            "description": draw(TEXT),
            "input_schema": draw(st.dictionaries(SEG, JSONISH, max_size=3)),
            "output_schema": {"type": "object"},
            "risk": {"default_sensitive": draw(st.booleans()), "requires_approval": draw(st.booleans())},
        }
        for t in tool_ids
    ]
    path = st.lists(SEG, min_size=1, max_size=3).map("/".join)
    host = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6), min_size=1, max_size=3).map(".".join)
    capabilities = {
        "filesystem": {"read_roots": draw(st.lists(path, max_size=2)), "write_roots": draw(st.lists(path, max_size=2))},
        "http_egress_allowlist": draw(st.lists(host, max_size=3)),
        "secrets": [
            {"scope": scope, "key_names": draw(st.lists(SEG, min_size=1, max_size=2))}
            for scope in draw(st.lists(st.one_of(st.just("global"), SEG.map(lambda s: "skill:" + s)), max_size=2))
        ],
        "device_capabilities": draw(st.lists(SEG, max_size=2)),
        "quotas": {
            "wall_clock_timeout_ms": draw(st.integers(1, 10**9)),
            "fuel_budget": draw(st.integers(1, 2**62)),
            "max_memory_bytes": draw(st.integers(65536, 2**40)),
        },
    }
    manifest_version = draw(st.sampled_from([1, 2]))
    doc = {
        "manifest_version": manifest_version,
        "skill_id": ".".join(draw(st.lists(SEG, min_size=1, max_size=3))),
        "name": draw(TEXT),
        "version": version,
        "publisher": publisher,
        "entrypoints": {"tools": tools},
        "capabilities": capabilities,
        "compat": {"required_protocol_major": draw(st.sampled_from([0, 1])), "min_palyra_version": draw(st.sampled_from(["0.0.0", "0.1.0", "0.0.7"]))},
    }
    if draw(st.booleans()):
        doc["compat"]["max_palyra_version"] = draw(st.sampled_from(["0.1.0", "1.0.0", "99.0.0"]))
    if manifest_version == 2 and draw(st.booleans()):
        doc["operator"] = {"display_name": draw(TEXT), "tags": draw(st.lists(SEG, max_size=2))}
    return doc


@st.composite
def payloads(draw):
    stem = st.lists(SEG, min_size=1, max_size=3).map("/".join)
    module_names = draw(st.lists(stem.map(lambda s: s + ".wasm"), min_size=1, max_size=3, unique=True))
    asset_names = draw(st.lists(stem, max_size=3, unique=True))
    modules = [(n, draw(st.binary(max_size=512))) for n in module_names]
    assets = [(n, draw(st.binary(max_size=512))) for n in asset_names]
    return modules, assets


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=manifests(), payload=payloads(), seed=st.binary(min_size=32, max_size=32))
def test_property_build_then_inspect_round_trips(doc, payload, seed):
    modules, assets = payload
    text = tomli_w.dumps(doc)
    built = build_artifact(text, modules, assets, SBOM_MIN, PROV_MIN, seed, NOW_MS)
    inspected = inspect_artifact(built.artifact)

    assert inspected.manifest == built.manifest
    m = inspected.manifest
    assert (m.manifest_version, m.skill_id, m.name, m.version, m.publisher) == (
        doc["manifest_version"], doc["skill_id"], doc["name"], doc["version"], doc["publisher"],
    )
    assert [t.id for t in m.entrypoints.tools] == [t["id"] for t in doc["entrypoints"]["tools"]]
    assert [t.input_schema for t in m.entrypoints.tools] == [t["input_schema"] for t in doc["entrypoints"]["tools"]]
    assert list(m.capabilities.http_egress_allowlist) == doc["capabilities"]["http_egress_allowlist"]
    assert m.capabilities.quotas.fuel_budget == doc["capabilities"]["quotas"]["fuel_budget"]

    expected = {"modules/" + n: d for n, d in modules} | {"assets/" + n: d for n, d in assets}
    for path, data in expected.items():
        assert inspected.entries[path] == data
    assert set(inspected.entries) == set(expected) | {"skill.toml", "sbom.cdx.json", "provenance.json", "signature.json"}
    assert inspected.payload_sha256 == built.payload_sha256
    assert inspected.public_key == public_key_from_seed(seed)
    assert inspected.signature.key_id == key_id(public_key_from_seed(seed))
    v = verify_artifact(built.artifact, TrustStore(), True, NOW_MS)
    assert v.report.trust_decision is TrustDecision.TOFU_NEWLY_PINNED
    assert v.store.tofu_publishers == {doc["publisher"]: public_key_from_seed(seed).hex()}


# --- hypothesis: mutated artifacts raise only project errors ----------------------------------------------


def _base_entries() -> dict[str, bytes]:
    return unzip(acme_artifact())


def _accepted_unchanged(inspected) -> None:
    """A mutation may be accepted only if it did not change any signed content."""
    original = _base_entries()
    assert inspected.payload_sha256 == envelope(original)["payload_sha256"]
    assert {k: v for k, v in inspected.entries.items() if k != "signature.json"} == {
        k: v for k, v in original.items() if k != "signature.json"
    }


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(0, 3), st.integers(0, 255)), min_size=1, max_size=4
    )
)
def test_property_byte_mutations_raise_only_project_errors(edits):
    data = bytearray(acme_artifact())
    for pos, op, value in edits:
        if not data:
            break
        i = pos % len(data)
        if op == 0:
            data[i] ^= value or 1
        elif op == 1:
            del data[i:]
        elif op == 2:
            data.insert(i, value)
        else:
            del data[i]
    try:
        inspected = inspect_artifact(bytes(data))
    except SkillLedgerError:
        return
    _accepted_unchanged(inspected)


ENTRY_NAMES = sorted(_base_entries())


@settings(max_examples=200, deadline=None)
@given(
    target=st.sampled_from(ENTRY_NAMES),
    op=st.sampled_from(["flip", "truncate", "append", "replace", "remove", "rename", "add", "resign"]),
    pos=st.integers(min_value=0),
    blob=st.binary(max_size=64),
    new_name=st.text(max_size=24),
)
def test_property_entry_mutations_raise_only_project_errors(target, op, pos, blob, new_name):
    entries = _base_entries()
    data = entries[target]
    if op == "flip" and data:
        b = bytearray(data)
        b[pos % len(b)] ^= 1 << (pos % 8)
        entries[target] = bytes(b)
    elif op == "truncate":
        entries[target] = data[: pos % (len(data) + 1)]
    elif op == "append":
        entries[target] = data + blob
    elif op == "replace":
        entries[target] = blob
    elif op == "remove":
        del entries[target]
    elif op == "rename" and new_name:
        entries[new_name] = entries.pop(target)
    elif op == "add" and new_name and new_name not in entries:
        entries[new_name] = blob
    elif op == "resign":
        entries[target] = blob
        entries = resign(entries)
    try:
        archive = rezip(entries)
    except (ValueError, UnicodeEncodeError):
        return  # a name zipfile itself cannot write (e.g. a lone surrogate): nothing to inspect
    try:
        inspected = inspect_artifact(archive)
    except SkillLedgerError:
        return
    if op == "resign" and target not in ("signature.json",):
        return  # legitimately re-signed content may be accepted
    _accepted_unchanged(inspected)
