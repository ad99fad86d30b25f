"""The artifact pipelines: build (§13), inspect (§14) and verify (§17).

Bytes in, values out: no files, no clock (``signed_at_unix_ms`` / ``now_ms`` are
passed in), no trust persistence (verify returns the store the caller may save).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import msgspec

from . import grants
from .constants import (
    ASSET_PREFIX,
    MANIFEST_ENTRY,
    MAX_ARTIFACT_BYTES,
    MAX_ENTRIES,
    MAX_ENTRY_BYTES,
    MAX_TOTAL_UNCOMPRESSED_BYTES,
    MODULE_PREFIX,
    MODULE_SUFFIX,
    PAYLOAD_CONTEXT,
    PROVENANCE_ENTRY,
    SBOM_ENTRY,
    SIGNATURE_ENTRY,
    VERIFICATION_EVENT_KIND,
)
from .documents import validate_provenance, validate_sbom
from .errors import (
    ArtifactEntryTooLarge,
    ArtifactError,
    ArtifactTooLarge,
    ArtifactTooManyEntries,
    DuplicateArtifactEntry,
    ManifestValidationError,
    MissingArtifactEntry,
    PayloadHashMismatch,
    SerializationError,
)
from .grammars import normalize_path
from .manifest import (
    Manifest,
    ManifestWarning,
    check_runtime_compat,
    integrity_map,
    manifest_to_json,
    manifest_warnings,
    parse_manifest,
    parse_manifest_bytes,
    serialize_manifest,
    with_integrity,
)
from .signing import SignatureEnvelope, parse_signature_json, payload_sha256, sign_payload, verify_signature
from .toml_limits import check_toml_limits
from .trust import TrustDecision, TrustStore, evaluate_trust
from .ziparchive import decode_archive, encode_archive


def sha256_hex(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def is_module_path(path: str) -> bool:
    return path.startswith(MODULE_PREFIX) and path.endswith(MODULE_SUFFIX)


# --- §13 build -----------------------------------------------------------------------


class BuildResult(msgspec.Struct, frozen=True):
    artifact: bytes
    artifact_sha256: str
    manifest: Manifest
    payload_sha256: str
    signature: SignatureEnvelope
    entries: list[str]


def _insert(entries: dict[str, bytes], path: str, data: bytes) -> None:
    if len(data) > MAX_ENTRY_BYTES:
        raise ArtifactEntryTooLarge(path, len(data), MAX_ENTRY_BYTES)
    key = normalize_path(path)
    if key in entries:
        raise DuplicateArtifactEntry(key)
    entries[key] = data


def build_artifact(
    manifest_toml: str,
    modules: Sequence[tuple[str, bytes]],
    assets: Sequence[tuple[str, bytes]],
    sbom: bytes,
    provenance: bytes,
    signing_seed: bytes,
    signed_at_unix_ms: int,
) -> BuildResult:
    """Steps 1-14 of §13, in order. Module bytes are not examined (only the audit does)."""
    manifest = parse_manifest(manifest_toml)
    check_runtime_compat(manifest)
    validate_sbom(sbom)
    validate_provenance(provenance)
    entries: dict[str, bytes] = {}
    for path, data in modules:
        if not path.endswith(MODULE_SUFFIX):
            raise ManifestValidationError("module_path_not_wasm", f"module path '{path}' must end with .wasm")
        _insert(entries, MODULE_PREFIX + normalize_path(path), data)
    if not modules:
        raise ManifestValidationError("no_modules", "artifact must include at least one module")
    for path, data in assets:
        _insert(entries, ASSET_PREFIX + normalize_path(path), data)
    _insert(entries, SBOM_ENTRY, sbom)
    _insert(entries, PROVENANCE_ENTRY, provenance)
    manifest = with_integrity(manifest, [(p, sha256_hex(d)) for p, d in sorted(entries.items())])
    try:
        manifest_text = serialize_manifest(manifest)
    except (TypeError, ValueError) as e:
        raise SerializationError(f"manifest serialisation failed: {e}") from None
    # The written form (integrity list added, tables spelled out) must pass the limits that
    # inspect applies to it, so nothing is built that every reader would refuse.
    check_toml_limits(manifest_text)
    manifest_bytes = manifest_text.encode("utf-8")
    _insert(entries, MANIFEST_ENTRY, manifest_bytes)
    payload = payload_sha256(entries)
    envelope = sign_payload(signing_seed, payload, manifest.publisher, signed_at_unix_ms)
    _insert(entries, SIGNATURE_ENTRY, envelope.to_json_bytes())
    if len(entries) > MAX_ENTRIES:
        raise ArtifactTooManyEntries(len(entries), MAX_ENTRIES)
    total = sum(len(d) for d in entries.values())
    if total > MAX_TOTAL_UNCOMPRESSED_BYTES:
        raise ArtifactTooLarge(total, MAX_TOTAL_UNCOMPRESSED_BYTES)
    archive = encode_archive(entries)
    if len(archive) > MAX_ARTIFACT_BYTES:
        raise ArtifactTooLarge(len(archive), MAX_ARTIFACT_BYTES)
    return BuildResult(
        artifact=archive,
        artifact_sha256=sha256_hex(archive),
        manifest=manifest,
        payload_sha256=payload,
        signature=envelope,
        entries=sorted(entries),
    )


# --- §14 inspect ---------------------------------------------------------------------


class InspectResult(msgspec.Struct, frozen=True):
    manifest: Manifest
    signature: SignatureEnvelope
    public_key: bytes
    payload_sha256: str
    manifest_warnings: list[ManifestWarning]
    entries: dict[str, bytes]
    entry_sha256: dict[str, str]  # every entry's digest, computed once for the integrity check
    archive: bytes  # the artifact file itself (its digest is only computed when asked for)

    @property
    def public_key_hex(self) -> str:
        return self.public_key.hex()

    @property
    def artifact_sha256(self) -> str:
        return sha256_hex(self.archive)

    def module_paths(self) -> list[str]:
        return sorted(p for p in self.entries if is_module_path(p))

    def entry_list(self) -> list[dict[str, Any]]:
        return [{"path": p, "size": len(d), "sha256": self.entry_sha256[p]} for p, d in self.entries.items()]


def inspect_artifact(data: bytes) -> InspectResult:
    """§14 steps 1-11. No trust step."""
    digester = _Digests(threaded=len(data) > PARALLEL_HASH_BYTES)
    entries = decode_archive(data, digester.add)
    if MANIFEST_ENTRY not in entries:
        raise MissingArtifactEntry(MANIFEST_ENTRY)
    manifest = parse_manifest_bytes(entries[MANIFEST_ENTRY])
    if SBOM_ENTRY not in entries:
        raise MissingArtifactEntry(SBOM_ENTRY)
    validate_sbom(entries[SBOM_ENTRY])
    if PROVENANCE_ENTRY not in entries:
        raise MissingArtifactEntry(PROVENANCE_ENTRY)
    validate_provenance(entries[PROVENANCE_ENTRY])
    if not any(is_module_path(p) for p in entries):
        raise MissingArtifactEntry("modules/*.wasm")
    return _signed_and_listed(data, entries, digester, manifest, recorded_payload=None)


def reinspect_artifact(data: bytes, manifest: Manifest, payload_sha256_recorded: str) -> InspectResult:
    """Inspect an artifact that was fully inspected before, with the manifest parsed then.

    For periodic re-verification of stored artifacts: the payload hash is recomputed and must
    equal the recorded one, which binds ``skill.toml`` (and the SBOM and provenance) to exactly
    the bytes checked before, so they are not parsed again; the signature, integrity list and
    compat are checked as in :func:`inspect_artifact`. Another payload is ``payload_hash_mismatch``."""
    digester = _Digests(threaded=len(data) > PARALLEL_HASH_BYTES)
    entries = decode_archive(data, digester.add)
    for required in (MANIFEST_ENTRY, SBOM_ENTRY, PROVENANCE_ENTRY):
        if required not in entries:
            raise MissingArtifactEntry(required)
    return _signed_and_listed(data, entries, digester, manifest, recorded_payload=payload_sha256_recorded)


def _signed_and_listed(data: bytes, entries: dict[str, bytes], digester: "_Digests", manifest: Manifest,
                       recorded_payload: str | None) -> InspectResult:
    """§14 steps 6-11: signature envelope, payload hash, signature, integrity list, compat."""
    if SIGNATURE_ENTRY not in entries:
        raise MissingArtifactEntry(SIGNATURE_ENTRY)
    envelope = parse_signature_json(entries[SIGNATURE_ENTRY])
    payload, digests = digester.finish(entries)
    expected = {p: d for p, d in digests.items() if p not in (MANIFEST_ENTRY, SIGNATURE_ENTRY)}
    if payload != envelope.payload_sha256 or (recorded_payload is not None and payload != recorded_payload):
        raise _payload_mismatch(expected, manifest)
    public_key = verify_signature(envelope, manifest.publisher)
    if expected != integrity_map(manifest):
        raise ManifestValidationError(
            "integrity_mismatch", "manifest integrity.files does not match the artifact entries"
        )
    check_runtime_compat(manifest)
    return InspectResult(
        manifest=manifest,
        signature=envelope,
        public_key=public_key,
        payload_sha256=payload,
        manifest_warnings=manifest_warnings(manifest),
        entries=entries,
        entry_sha256=digests,
        archive=bytes(data),
    )


def _payload_mismatch(actual: dict[str, str], manifest: Manifest) -> PayloadHashMismatch:
    """The mismatch, naming the entries that differ from the manifest's integrity list where it
    tells (a diagnosis only: in a tampered artifact the list may have been edited too; for a stored
    artifact the manifest is the one recorded at install)."""
    try:
        listed = integrity_map(manifest)
    except ArtifactError:
        return PayloadHashMismatch()
    changed = sorted(p for p in actual.keys() & listed.keys() if actual[p] != listed[p])
    unlisted = sorted(actual.keys() - listed.keys())
    missing = sorted(listed.keys() - actual.keys())
    return PayloadHashMismatch(changed, unlisted, missing, unexplained=not (changed or unlisted or missing))


# Above this archive size the digests are computed on a worker thread while the next entries
# are still being inflated (hashlib and zlib release the GIL on large buffers).
PARALLEL_HASH_BYTES = 1024 * 1024
_pool: Any = None


class _Digests:
    """Every entry's SHA-256 and the §8 payload hash, fed entry by entry as they are decoded.

    The payload hash is built incrementally while entries arrive in sorted path order (as a
    conforming encoder writes them); any other order falls back to one pass at the end."""

    def __init__(self, threaded: bool) -> None:
        self.entry: dict[str, str] = {}
        self.payload = hashlib.sha256(PAYLOAD_CONTEXT)
        self.last = ""
        self.in_order = True
        self.pending: list[Any] = []
        self.threaded = threaded

    def add(self, path: str, data: bytes) -> None:
        if self.threaded:
            self.pending.append(_worker().submit(self._hash, path, data))
        else:
            self._hash(path, data)

    def _hash(self, path: str, data: bytes) -> None:
        self.entry[path] = sha256_hex(data)
        if path == SIGNATURE_ENTRY:
            return
        if self.in_order and path > self.last:
            p = path.encode("utf-8")
            self.payload.update(len(p).to_bytes(8, "big") + p + len(data).to_bytes(8, "big"))
            self.payload.update(data)
            self.last = path
        else:
            self.in_order = False

    def finish(self, entries: dict[str, bytes]) -> tuple[str, dict[str, str]]:
        for f in self.pending:
            f.result()
        payload = self.payload.hexdigest() if self.in_order else payload_sha256(entries)
        return payload, self.entry


def _worker() -> Any:
    """One long-lived hashing thread (a sequential worker keeps the payload hash in order)."""
    global _pool
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="artifact-digests")
    return _pool


# --- §17 verify ----------------------------------------------------------------------


class VerifyReport(msgspec.Struct, frozen=True):
    accepted: bool
    trust_decision: TrustDecision
    payload_sha256: str
    manifest: dict[str, Any]
    manifest_warnings: list[ManifestWarning]
    capability_grants: grants.CapabilityGrants
    policy_bindings: list[grants.PolicyBinding]
    audit_event: dict[str, Any]


class Verification(msgspec.Struct, frozen=True):
    """What verify produced: the report, the inspected artifact, and the store to persist."""

    report: VerifyReport
    inspected: InspectResult
    store: TrustStore


def verify_inspected(
    inspected: InspectResult, store: TrustStore, allow_tofu: bool, now_ms: int
) -> Verification:
    m = inspected.manifest
    evaluation = evaluate_trust(store, m.publisher, inspected.public_key_hex, allow_tofu)
    bindings = grants.policy_bindings(m)
    report = VerifyReport(
        accepted=True,
        trust_decision=evaluation.decision,
        payload_sha256=inspected.payload_sha256,
        manifest=manifest_to_json(m),
        manifest_warnings=inspected.manifest_warnings,
        capability_grants=grants.capability_grants(m),
        policy_bindings=bindings,
        audit_event={
            "event_kind": VERIFICATION_EVENT_KIND,
            "skill_id": m.skill_id,
            "publisher": m.publisher,
            "version": m.version,
            "payload_sha256": inspected.payload_sha256,
            "trust_decision": evaluation.decision.value,
            "verified_at_unix_ms": now_ms,
            "policy_bindings": [msgspec.structs.asdict(b) for b in bindings],
        },
    )
    return Verification(report, inspected, evaluation.store)


def verify_artifact(data: bytes, store: TrustStore, allow_tofu: bool, now_ms: int) -> Verification:
    """§17: inspect, then trust. ``store`` must already be normalised (TrustStore values are)."""
    return verify_inspected(inspect_artifact(data), store, allow_tofu, now_ms)
