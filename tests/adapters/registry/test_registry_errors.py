"""The mapping of python-tuf's exceptions to the project's codes, and their exit statuses."""

from __future__ import annotations

import pytest
from tuf.api import exceptions as tuf
from tuf.api.serialization import DeserializationError

from skill_ledger.adapters.registry.tuf_errors import map_tuf_error
from skill_ledger.cli.errors import exit_code_for
from skill_ledger.domain.errors import RegistryError, RegistryRollback

CASES = [
    (tuf.ExpiredMetadataError("timestamp.json is expired"), "metadata", "registry_expired"),
    (tuf.UnsignedMetadataError("timestamp was signed by 0/1 keys"), "metadata", "registry_bad_signature"),
    (tuf.BadVersionNumberError("New timestamp version 1 must be >= 2"), "metadata", "registry_rollback"),
    (tuf.BadVersionNumberError("New snapshot version must be >= 3, got version 2"), "metadata", "registry_rollback"),
    (tuf.BadVersionNumberError("Expected targets.json version 1, got 3."), "metadata", "registry_rollback"),
    (tuf.BadVersionNumberError("Expected snapshot version 3, got 2"), "metadata", "registry_mix_and_match"),
    (tuf.BadVersionNumberError("Expected targets v3, got v2."), "metadata", "registry_mix_and_match"),
    (tuf.BadVersionNumberError("Expected root version 2 instead got version 1"), "metadata", "registry_mix_and_match"),
    (tuf.LengthOrHashMismatchError("hash mismatch"), "metadata", "registry_mix_and_match"),
    (tuf.LengthOrHashMismatchError("hash mismatch"), "target", "registry_length_or_hash_mismatch"),
    (tuf.DownloadLengthMismatchError("too long"), "metadata", "registry_length_or_hash_mismatch"),
    (tuf.DownloadLengthMismatchError("too long"), "target", "registry_length_or_hash_mismatch"),
    (tuf.SlowRetrievalError("slow"), "metadata", "registry_unavailable"),
    (tuf.DownloadHTTPError("HTTP 502", 502), "target", "registry_unavailable"),
    (tuf.DownloadError("refused"), "metadata", "registry_unavailable"),
    (DeserializationError("not JSON"), "metadata", "registry_metadata_invalid"),
    (tuf.RepositoryError("Expected 'timestamp', got 'snapshot'"), "metadata", "registry_metadata_invalid"),
    (ValueError("unexpected"), "metadata", "registry_error"),
    (PermissionError(13, "Permission denied"), "metadata", "storage_error"),
]


@pytest.mark.parametrize("exc, phase, code", CASES, ids=[f"{type(c[0]).__name__}-{c[1]}-{c[2]}" for c in CASES])
def test_each_tuf_error_has_its_code(exc: Exception, phase: str, code: str) -> None:
    error = map_tuf_error(exc, phase=phase, context={"registry": "main", "url": "https://h/"})
    assert error.code == code
    assert error.details["registry"] == "main"
    if isinstance(error, RegistryError):
        assert error.details["tuf_error"] == type(exc).__name__
        assert str(exc) in error.details["detail"]


def test_a_project_error_passes_through_unchanged() -> None:
    original = RegistryRollback("below the floor")
    assert map_tuf_error(original, phase="metadata", context={}) is original


@pytest.mark.parametrize("code, exit_code", [
    ("registry_error", 3), ("registry_rollback", 3), ("registry_expired", 3), ("registry_bad_signature", 3),
    ("registry_mix_and_match", 3), ("registry_length_or_hash_mismatch", 3), ("registry_metadata_invalid", 3),
    ("registry_wrong_target", 3), ("registry_unavailable", 3), ("registry_target_not_found", 6),
    ("registry_root_mismatch", 9), ("registry_keys_missing", 2),
])
def test_registry_codes_have_exit_statuses(code: str, exit_code: int) -> None:
    assert exit_code_for(code) == exit_code
