"""The one table that maps error codes to exit statuses (cli.md "Exit codes")."""

from __future__ import annotations

OK = 0
INTERNAL = 1
USAGE = 2
ARTIFACT_REJECTED = 3
TRUST_REJECTED = 4
AUDIT_FAILED = 5
NOT_FOUND = 6
EXECUTION_DENIED = 7
EXECUTION_FAILED = 8
JOURNAL_INTEGRITY = 9

EXIT_CODES: dict[str, int] = {
    # usage
    "usage_error": USAGE,
    "invalid_input": USAGE,
    "invalid_signing_key": USAGE,
    "configuration_error": USAGE,
    "registry_keys_missing": USAGE,  # publisher: give the role's key files
    "invalid_transition": USAGE,
    # artifact rejected
    "manifest_parse": ARTIFACT_REJECTED,
    "manifest_limits": ARTIFACT_REJECTED,  # over a manifest cap (size, keys, nesting, strings, tools, ids)
    "manifest_validation": ARTIFACT_REJECTED,
    "artifact_too_large": ARTIFACT_REJECTED,
    "artifact_too_many_entries": ARTIFACT_REJECTED,
    "artifact_entry_too_large": ARTIFACT_REJECTED,
    "missing_artifact_entry": ARTIFACT_REJECTED,
    "duplicate_artifact_entry": ARTIFACT_REJECTED,
    "invalid_artifact_path": ARTIFACT_REJECTED,
    "invalid_sbom": ARTIFACT_REJECTED,
    "invalid_provenance": ARTIFACT_REJECTED,
    "payload_hash_mismatch": ARTIFACT_REJECTED,
    "signature_verification_failed": ARTIFACT_REJECTED,
    "unsupported_protocol_major": ARTIFACT_REJECTED,
    "unsupported_runtime_version": ARTIFACT_REJECTED,
    "runtime_version_above_supported_maximum": ARTIFACT_REJECTED,
    "zip": ARTIFACT_REJECTED,
    "serialization": ARTIFACT_REJECTED,
    "version_conflict": ARTIFACT_REJECTED,
    "downgrade_refused": ARTIFACT_REJECTED,
    "registry_error": ARTIFACT_REJECTED,
    # a registry's TUF metadata or target refused: the update or install does not happen.
    "registry_rollback": ARTIFACT_REJECTED,
    "registry_expired": ARTIFACT_REJECTED,
    "registry_bad_signature": ARTIFACT_REJECTED,
    "registry_mix_and_match": ARTIFACT_REJECTED,
    "registry_length_or_hash_mismatch": ARTIFACT_REJECTED,
    "registry_metadata_invalid": ARTIFACT_REJECTED,
    "registry_wrong_target": ARTIFACT_REJECTED,
    # unreachable is refused like the attacks: TUF cannot tell a mirror that is down from one
    # withholding updates (freeze, slow retrieval); the code tells them apart for scripts.
    "registry_unavailable": ARTIFACT_REJECTED,
    # trust rejected
    "untrusted_publisher": TRUST_REJECTED,
    "trusted_publisher_key_mismatch": TRUST_REJECTED,
    "tofu_key_mismatch": TRUST_REJECTED,
    "key_revoked": TRUST_REJECTED,
    # audit
    "audit_failed": AUDIT_FAILED,
    "artifact_tampered": AUDIT_FAILED,
    "artifact_missing": AUDIT_FAILED,
    "home_check_failed": AUDIT_FAILED,  # skills doctor: the home, a file's permissions or the cache
    # not found
    "not_found": NOT_FOUND,
    "file_not_found": NOT_FOUND,
    "not_installed": NOT_FOUND,
    "tool_not_found": NOT_FOUND,
    "registry_target_not_found": NOT_FOUND,  # the registry vouches for no such skill or version
    # execution denied
    "not_active": EXECUTION_DENIED,
    "capability_denied": EXECUTION_DENIED,
    "tool_declaration_invalid": EXECUTION_DENIED,  # a tool's assets/tools/<id>.json the runner refuses
    # execution failed
    "execution_timed_out": EXECUTION_FAILED,
    "fuel_exhausted": EXECUTION_FAILED,
    "memory_limit_exceeded": EXECUTION_FAILED,
    "trap": EXECUTION_FAILED,
    "invalid_output": EXECUTION_FAILED,
    "nonzero_exit_status": EXECUTION_FAILED,  # a WASI command exited with a status its tool does not call success
    "compile_limits_exceeded": EXECUTION_FAILED,  # compiling the module hit the worker's time or memory limit
    # journal
    "journal_tampered": JOURNAL_INTEGRITY,
    "journal_unverifiable": JOURNAL_INTEGRITY,  # checkpoints with no key or no anchor to check them against
    "journal_truncated": JOURNAL_INTEGRITY,  # the views are ahead of the journal (left for inspection)
    "journal_unsupported": JOURNAL_INTEGRITY,  # a newer journal schema or an unknown event encoding
    "concurrency_conflict": JOURNAL_INTEGRITY,
    "projection_drift": JOURNAL_INTEGRITY,
    "journal_unavailable": JOURNAL_INTEGRITY,
    "proof_invalid": JOURNAL_INTEGRITY,
    "note_invalid": JOURNAL_INTEGRITY,
    "registry_root_mismatch": JOURNAL_INTEGRITY,  # local pinned root differs from the journal's digest
    # environment
    # the artifact format's I/O kind: a corrupt entry (CRC, deflate) or an unreadable input file;
    # a failure to write our own output is refined to INTERNAL below
    "io": ARTIFACT_REJECTED,
    "storage_error": INTERNAL,
    "internal_error": INTERNAL,
}


# Refinements of a code by one of its details, e.g. a write failure of kind "io".
EXIT_CODES_BY_DETAIL: dict[tuple[str, str, str], int] = {
    ("io", "operation", "write"): INTERNAL,
}


def exit_code_for(code: str, details: dict | None = None) -> int:
    for (c, key, value), exit_code in EXIT_CODES_BY_DETAIL.items():
        if c == code and details and details.get(key) == value:
            return exit_code
    return EXIT_CODES.get(code, INTERNAL)


# --- hints: what to do next, added to the error line by the CLI (never recorded) ----------------

_TRUSTING_COMMANDS = ("install", "package verify", "audit")


def hint_for(error: object, command: str) -> str | None:
    """A next step for an error, where the command line has one: the flags and commands belong to
    the CLI, so the hint is added here rather than in the error's message (which events record)."""
    code = getattr(error, "code", "")
    details: dict = getattr(error, "details", None) or {}
    publisher = details.get("publisher")
    presented = details.get("presented_key_hex") or details.get("key_hex")
    if code == "untrusted_publisher" and command in _TRUSTING_COMMANDS and publisher:
        allow = f"skills trust allow {publisher} {presented or 'KEY'} --reason TEXT"
        return f"pass --allow-tofu to pin its key on first use, or allowlist the key first: {allow}"
    if code == "tofu_key_mismatch" and publisher and presented:
        pinned = details.get("pinned_key_id", "PINNED_KEY")
        return (f"if {publisher} rotated its key on purpose, revoke the pinned one and allowlist the new one: "
                f"skills trust revoke {publisher} {pinned} --reason TEXT; "
                f"skills trust allow {publisher} {presented} --reason TEXT")
    if code == "trusted_publisher_key_mismatch" and publisher and presented:
        return f"if this key is genuinely {publisher}'s: skills trust allow {publisher} {presented} --reason TEXT"
    return None
