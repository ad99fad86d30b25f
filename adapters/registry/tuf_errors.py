"""One place that turns python-tuf's exceptions into the project's error hierarchy.

Each TUF attack class gets its own stable code (``domain/errors.py``), so an operator, a
script and the journal can tell a rollback from an outage. ``phase`` says what was being
read: ``metadata`` (the top-level roles), ``target`` (an artifact) or ``repository`` (the
publisher reading its own files). Nothing of python-tuf's escapes as a traceback: an
exception this table does not know becomes the generic ``registry_error``.
"""

from __future__ import annotations

import re
from typing import Any

from tuf.api import exceptions as tuf

from skill_ledger.domain.errors import (
    RegistryBadSignature,
    RegistryError,
    RegistryExpired,
    RegistryLengthOrHashMismatch,
    RegistryMetadataInvalid,
    RegistryMixAndMatch,
    RegistryRollback,
    RegistryUnavailable,
    SkillLedgerError,
    StorageError,
)

# python-tuf raises BadVersionNumberError both for a version *lower than the trusted one*
# (rollback) and for a version *other than the one the parent vouches for* (mix-and-match).
# Its messages are the only thing that tells them apart; the two rollback forms are:
#   "New timestamp version 2 must be >= 3", "New snapshot version must be >= 4, got version 2"
#   "Expected targets.json version 1, got 3."   (a snapshot lowering a targets version)
# The scenario tests pin each form, so a change of wording in python-tuf fails a test
# instead of silently re-labelling an attack.
_ROLLBACK = re.compile(r"must be >=|\.json version")


def _detail(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    return text


def map_tuf_error(exc: BaseException, *, phase: str, context: dict[str, Any]) -> SkillLedgerError:
    """The project error for ``exc`` raised by python-tuf (or the fetcher) during ``phase``."""
    if isinstance(exc, SkillLedgerError):
        return exc
    details = {**context, "phase": phase, "tuf_error": type(exc).__name__, "detail": _detail(exc)}
    where = context.get("registry") or context.get("repository") or "registry"
    what = context.get("target") or "metadata"

    def err(cls: type[RegistryError], text: str) -> RegistryError:
        return cls(f"{where}: {text} ({details['detail']})", details)

    if isinstance(exc, tuf.ExpiredMetadataError):
        return err(RegistryExpired, "metadata has expired (frozen registry or stale mirror)")
    if isinstance(exc, tuf.UnsignedMetadataError):
        return err(RegistryBadSignature, "metadata is not signed by a threshold of authorised keys")
    if isinstance(exc, tuf.BadVersionNumberError):
        if _ROLLBACK.search(str(exc)):
            return err(RegistryRollback, "metadata is older than what is already trusted")
        return err(RegistryMixAndMatch, "metadata version differs from the one its signed parent vouches for")
    if isinstance(exc, tuf.LengthOrHashMismatchError):
        if phase == "target":
            return err(RegistryLengthOrHashMismatch, f"{what}: length or hash differs from the trusted targets")
        return err(RegistryMixAndMatch, "metadata length or hash differs from what its signed parent vouches for")
    if isinstance(exc, tuf.DownloadLengthMismatchError):
        return err(RegistryLengthOrHashMismatch, f"{what}: more data than declared (download stopped)")
    if isinstance(exc, tuf.SlowRetrievalError):
        details["reason"] = "slow_retrieval"
        return err(RegistryUnavailable, "download too slow (timed out)")
    if isinstance(exc, tuf.DownloadHTTPError):
        details["status"] = exc.status_code
        return err(RegistryUnavailable, f"HTTP status {exc.status_code}")
    if isinstance(exc, tuf.DownloadError):
        return err(RegistryUnavailable, "cannot be reached")
    if isinstance(exc, tuf.RepositoryError):  # includes (de)serialisation errors
        return err(RegistryMetadataInvalid, "metadata is invalid")
    if isinstance(exc, OSError):
        return StorageError(f"{where}: local registry state cannot be written or read: {exc.strerror or exc}",
                            {**context, "phase": phase})
    return err(RegistryError, "registry operation failed")
