"""One error hierarchy for the whole project.

Every error carries a stable snake_case ``code`` (for artifact errors this is the
*kind* of ``artifact-format.md`` §3.2), a human message, and ``details``: the
kind-specific data of the spec (for ``manifest_validation`` that includes the
``code`` of the failed rule). The CLI maps ``code`` to an exit status in one
table (``cli/errors.py``); nothing else decides exit codes.

Messages never contain secret values: callers pass names and lengths, never
key material or secret contents.

Messages and details often quote outside text (a manifest value, an entry name, a
registry's answer), and both are printed and recorded in ``artifact.rejected`` and
``skill.quarantined`` events. So every error bounds them when it is built: the message
to ``MAX_EVENT_TEXT_BYTES`` and each string in ``details`` to ``MAX_EVENT_DETAIL_TEXT_BYTES``
(UTF-8), cut with a visible ``…[truncated N bytes]`` marker (``domain/text.py``).
"""

from __future__ import annotations

from typing import Any

from .constants import MAX_EVENT_DETAIL_TEXT_BYTES, MAX_EVENT_TEXT_BYTES
from .text import bound_strings, bound_text


class SkillLedgerError(Exception):
    """Base class. ``code`` is stable and machine-readable; ``message`` is for people."""

    code: str = "internal_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, code: str | None = None):
        message = bound_text(message, MAX_EVENT_TEXT_BYTES)
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details: dict[str, Any] = bound_strings(dict(details or {}), MAX_EVENT_DETAIL_TEXT_BYTES)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


# --- artifact-format.md §3.2 kinds -------------------------------------------------


class ArtifactError(SkillLedgerError):
    """Any failure defined by the artifact format (decode, inspect, verify, build)."""


class ManifestParseError(ArtifactError):
    code = "manifest_parse"

    def __init__(self, detail: str):
        super().__init__(f"manifest parse failed: {detail}", {"detail": detail})
        self.detail = self.details["detail"]


class ManifestLimitExceeded(ManifestParseError):
    """A manifest over one of the caps of ``constants.py`` (size, keys, key parts, nesting, array
    elements, string length, tools, identifier length), found before or right after parsing.
    ``limit`` names the cap; ``actual`` is the value found (``at_least`` when counting stopped there)."""

    code = "manifest_limits"

    def __init__(self, limit: str, actual: int, maximum: int, where: str, *, at_least: bool = False):
        found = f"{actual} or more" if at_least else str(actual)
        detail = f"{limit} {found} > {maximum} ({where})"
        ArtifactError.__init__(
            self, f"manifest limit exceeded: {detail}",
            {"limit": limit, "actual": actual, "maximum": maximum, "where": where, "detail": detail},
        )
        self.detail = detail
        self.limit = limit


class ManifestValidationError(ArtifactError):
    """A failed manifest (or related) rule. ``rule`` is the rule's code, e.g. ``tools_empty``."""

    code = "manifest_validation"

    def __init__(self, rule: str, detail: str, **extra: Any):
        super().__init__(f"manifest validation failed: {detail}", {"code": rule, "detail": detail, **extra})
        self.rule = rule
        self.detail = self.details["detail"]


class ArtifactTooLarge(ArtifactError):
    code = "artifact_too_large"

    def __init__(self, actual: int, limit: int):
        super().__init__(f"artifact size exceeds limit ({actual} > {limit})", {"actual": actual, "limit": limit})


class ArtifactTooManyEntries(ArtifactError):
    code = "artifact_too_many_entries"

    def __init__(self, actual: int, limit: int):
        super().__init__(
            f"artifact contains too many entries ({actual} > {limit})", {"actual": actual, "limit": limit}
        )


class ArtifactEntryTooLarge(ArtifactError):
    code = "artifact_entry_too_large"

    def __init__(self, path: str, actual: int, limit: int):
        super().__init__(
            f"artifact entry '{path}' exceeds limit ({actual} > {limit})",
            {"path": path, "actual": actual, "limit": limit},
        )


class MissingArtifactEntry(ArtifactError):
    code = "missing_artifact_entry"

    def __init__(self, name: str):
        super().__init__(f"artifact is missing required entry '{name}'", {"name": name})


class DuplicateArtifactEntry(ArtifactError):
    code = "duplicate_artifact_entry"

    def __init__(self, path: str):
        super().__init__(f"artifact contains duplicate entry '{path}'", {"path": path})


class InvalidArtifactPath(ArtifactError):
    code = "invalid_artifact_path"

    def __init__(self, raw: str):
        super().__init__(f"artifact entry path is invalid: {raw!r}", {"raw": raw})
        self.raw = self.details["raw"]


class InvalidSbom(ArtifactError):
    code = "invalid_sbom"

    def __init__(self, detail: str):
        super().__init__(f"invalid SBOM payload: {detail}", {"detail": detail})


class InvalidProvenance(ArtifactError):
    code = "invalid_provenance"

    def __init__(self, detail: str):
        super().__init__(f"invalid provenance payload: {detail}", {"detail": detail})


class PayloadHashMismatch(ArtifactError):
    """The payload hash differs from the signed (or recorded) one. Where the manifest's integrity
    list can tell, the entries that differ from it are named: ``changed`` (another digest),
    ``unlisted`` (in the archive, not in the list), ``missing`` (listed, not in the archive)."""

    code = "payload_hash_mismatch"
    SHOWN = 5  # entries named per kind in the message (details keep more, bounded)

    def __init__(self, changed: list[str] | None = None, unlisted: list[str] | None = None,
                 missing: list[str] | None = None, *, unexplained: bool = False) -> None:
        kinds = {"changed_entries": ("changed", changed), "unlisted_entries": ("not in the integrity list", unlisted),
                 "missing_entries": ("listed but missing", missing)}
        parts, details = [], {}
        for member, (label, names) in kinds.items():
            if names:
                shown = ", ".join(f"'{n}'" for n in names[: self.SHOWN])
                more = f" and {len(names) - self.SHOWN} more" if len(names) > self.SHOWN else ""
                parts.append(f"{label}: {shown}{more}")
                details[member] = list(names[:64])
        message = "artifact payload hash mismatch"
        if parts:
            message += " (" + "; ".join(parts) + ")"
        elif unexplained:
            message += (" (every entry matches the manifest's integrity list: skill.toml itself or the "
                        "signature's payload hash was changed)")
        super().__init__(message, details)


class SignatureVerificationFailed(ArtifactError):
    code = "signature_verification_failed"

    def __init__(self, reason: str | None = None) -> None:
        # The reason says which step failed (never key material); the kind stays the same.
        super().__init__("artifact signature verification failed", {"reason": reason} if reason else None)


class InvalidSigningKey(ArtifactError):
    code = "invalid_signing_key"

    def __init__(self, actual: int):
        super().__init__(f"signing key length is invalid: {actual}", {"actual": actual})


class TrustError(ArtifactError):
    """Trust rejections (exit 4)."""


def _presented(key_id: str | None, key_hex: str | None) -> dict[str, str]:
    """The signing key an artifact presented, as error details (public facts, never secret)."""
    return {k: v for k, v in (("presented_key_id", key_id), ("presented_key_hex", key_hex)) if v}


class UntrustedPublisher(TrustError):
    code = "untrusted_publisher"

    def __init__(self, publisher: str, *, key_id: str | None = None, key_hex: str | None = None):
        signed = f" (signed with key {key_id})" if key_id else ""
        super().__init__(f"untrusted publisher '{publisher}'{signed}",
                         {"publisher": publisher, **_presented(key_id, key_hex)})


class TrustedPublisherKeyMismatch(TrustError):
    code = "trusted_publisher_key_mismatch"

    def __init__(self, publisher: str, *, key_id: str | None = None, key_hex: str | None = None,
                 allowlisted_key_ids: list[str] | None = None):
        shown = ""
        if key_id and allowlisted_key_ids:
            shown = f": signed with {key_id}, allowlisted {', '.join(allowlisted_key_ids)}"
        extra = {"allowlisted_key_ids": allowlisted_key_ids} if allowlisted_key_ids else {}
        super().__init__(f"trusted publisher key mismatch for '{publisher}'{shown}",
                         {"publisher": publisher, **_presented(key_id, key_hex), **extra})


class TofuKeyMismatch(TrustError):
    code = "tofu_key_mismatch"

    def __init__(self, publisher: str, *, pinned_key_id: str | None = None, key_id: str | None = None,
                 key_hex: str | None = None):
        shown = f": pinned {pinned_key_id}, presented {key_id}" if pinned_key_id and key_id else ""
        extra = {"pinned_key_id": pinned_key_id} if pinned_key_id else {}
        super().__init__(f"TOFU pinned key mismatch for '{publisher}'{shown}",
                         {"publisher": publisher, **extra, **_presented(key_id, key_hex)})


class KeyRevoked(TrustError):
    code = "key_revoked"

    def __init__(self, publisher: str, key_id: str):
        super().__init__(
            f"publisher '{publisher}' key {key_id} has been revoked", {"publisher": publisher, "key_id": key_id}
        )


class UnsupportedProtocolMajor(ArtifactError):
    code = "unsupported_protocol_major"

    def __init__(self, requested: int, current: int):
        super().__init__(
            f"requested min protocol major {requested} is higher than current {current}",
            {"requested": requested, "current": current},
        )


class UnsupportedRuntimeVersion(ArtifactError):
    code = "unsupported_runtime_version"

    def __init__(self, requested: str, current: str):
        super().__init__(
            f"requested min runtime version {requested} is higher than current {current}",
            {"requested": requested, "current": current},
        )


class RuntimeVersionAboveSupportedMaximum(ArtifactError):
    code = "runtime_version_above_supported_maximum"

    def __init__(self, supported_max: str, current: str):
        super().__init__(
            f"current runtime version {current} is higher than supported maximum {supported_max}",
            {"supported_max": supported_max, "current": current},
        )


class ZipError(ArtifactError):
    code = "zip"

    def __init__(self, detail: str):
        super().__init__(f"zip handling failed: {detail}", {"detail": detail})


class IoError(ArtifactError):
    """The format's ``io`` kind. ``operation="write"`` marks a failure to write our own output
    or state (disk full, permissions), which is environmental rather than a rejected input."""

    code = "io"

    def __init__(self, detail: str, *, operation: str = "read"):
        super().__init__(f"I/O failed: {detail}", {"detail": detail, "operation": operation})


class SerializationError(ArtifactError):
    code = "serialization"

    def __init__(self, detail: str):
        super().__init__(f"serialization failed: {detail}", {"detail": detail})


# --- the ledger's own errors (cli.md "Error codes") -----------------------------------


class UsageError(SkillLedgerError):
    """Malformed input that is not an artifact: a bad --input, flag value, id syntax."""

    code = "usage_error"


class InvalidInput(UsageError):
    code = "invalid_input"


class NotFound(SkillLedgerError):
    code = "not_found"


class FileNotFound(NotFound):
    code = "file_not_found"

    def __init__(self, path: str):
        super().__init__(f"file not found: {path}", {"path": path})


class NotInstalled(NotFound):
    code = "not_installed"


class ToolNotFound(NotFound):
    code = "tool_not_found"


class VersionConflict(ArtifactError):
    code = "version_conflict"


class DowngradeRefused(ArtifactError):
    code = "downgrade_refused"


class InvalidTransition(SkillLedgerError):
    """A lifecycle command that does not apply to the current state (e.g. enable an active version)."""

    code = "invalid_transition"


class AuditFailed(SkillLedgerError):
    code = "audit_failed"


class NotActive(SkillLedgerError):
    code = "not_active"


class CapabilityDenied(SkillLedgerError):
    code = "capability_denied"


class ExecutionError(SkillLedgerError):
    """Exit 8: the module ran and failed."""

    code = "trap"


class JournalTampered(SkillLedgerError):
    code = "journal_tampered"


class JournalUnverifiable(SkillLedgerError):
    """The journal's checkpoints cannot be trusted because what checks them is missing: the
    checkpoint key or the anchor (``journal verify`` fails closed)."""

    code = "journal_unverifiable"


class JournalTruncated(JournalTampered):
    """The views have projected events the journal no longer has: the journal was truncated or
    replaced by an older copy. The views are left as they are, for inspection."""

    code = "journal_truncated"


class JournalUnsupported(SkillLedgerError):
    """The journal was written by a newer version (journal schema) or in an event encoding this
    version cannot read; refused before anything is read or written."""

    code = "journal_unsupported"


class ProofError(SkillLedgerError):
    """A Merkle inclusion or consistency proof (RFC 9162) that does not verify, or whose
    inputs are malformed (hash lengths, sizes, indexes). ``details["reason"]`` names the
    check that failed, from a fixed set (see ``domain/merkle.py``)."""

    code = "proof_invalid"

    def __init__(self, reason: str, message: str, **extra: Any):
        super().__init__(message, {"reason": reason, **extra})
        self.reason = reason


class NoteError(ProofError):
    """A C2SP signed note or tlog checkpoint that is malformed, carries a bad signature from a
    known key, or has no signature from a known key (``details["reason"]``, see
    ``domain/notes.py``)."""

    code = "note_invalid"


class ConcurrencyConflict(SkillLedgerError):
    code = "concurrency_conflict"


class RegistryError(SkillLedgerError):
    """A registry (TUF repository) refused, failed or was misused. The subclasses name the
    attack class TUF detected, so an operator and a script can tell a rollback from an outage;
    ``details`` carries the registry, the role or target, and the TUF error's type and text."""

    code = "registry_error"


class RegistryRollback(RegistryError):
    """Metadata older than what this client already trusts (or than the journal recorded)."""

    code = "registry_rollback"


class RegistryExpired(RegistryError):
    """Expired metadata: the registry (or a mirror) is frozen, or the repository stopped re-signing."""

    code = "registry_expired"


class RegistryBadSignature(RegistryError):
    """Metadata not signed by a threshold of the keys the trusted root authorises."""

    code = "registry_bad_signature"


class RegistryMixAndMatch(RegistryError):
    """A metadata file that is not the one its signed parent vouches for (version, length or hash)."""

    code = "registry_mix_and_match"


class RegistryLengthOrHashMismatch(RegistryError):
    """A target whose length or hash differs from the trusted targets metadata, or any download
    that runs past its declared or maximum length (endless data), metadata or target."""

    code = "registry_length_or_hash_mismatch"


class RegistryMetadataInvalid(RegistryError):
    """Metadata that does not parse, is of the wrong role, or lists a skill inconsistently."""

    code = "registry_metadata_invalid"


class RegistryUnavailable(RegistryError):
    """The registry could not be read: network, HTTP status, timeout (slow retrieval), missing file."""

    code = "registry_unavailable"


class RegistryTargetNotFound(RegistryError):
    """The trusted targets metadata vouches for no such skill or version."""

    code = "registry_target_not_found"


class RegistryWrongTarget(RegistryError):
    """The downloaded artifact is not the skill, version, publisher or payload the registry listed."""

    code = "registry_wrong_target"


class RegistryRootMismatch(RegistryError):
    """The locally pinned root is not the one whose digest was recorded when the registry was added."""

    code = "registry_root_mismatch"


class RegistryKeysMissing(RegistryError):
    """Publisher side: fewer signing keys at hand than the role's threshold."""

    code = "registry_keys_missing"


class ConfigurationError(SkillLedgerError):
    code = "configuration_error"


class ArtifactTampered(SkillLedgerError):
    """The stored artifact's bytes no longer match the digest the journal recorded."""

    code = "artifact_tampered"


class ArtifactMissing(SkillLedgerError):
    code = "artifact_missing"


class ProjectionDrift(SkillLedgerError):
    code = "projection_drift"


class JournalUnavailable(SkillLedgerError):
    """The journal (or another state database) cannot be opened or read: not a database,
    unreadable, locked beyond the timeout, or the disk failed."""

    code = "journal_unavailable"


class StorageError(SkillLedgerError):
    """Our own state could not be written or read (disk full, permissions on the home):
    an environmental failure, not a rejected input."""

    code = "storage_error"
