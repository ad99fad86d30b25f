"""Eligibility of an installed version: may it run here and now?

Not eligible when it is quarantined, disabled or not (yet) active, when its signing key
was revoked, when its last audit failed, or when its manifest's compat section does not
admit this runtime. Each reason is a stable code so scripts can act on it.

An operator's override (``enable --override``, recorded on ``skill.enabled``) is a decision
about a failed audit: while the version stays active under that override, the failed audit
is not a reason (Palyra's gate does the same). Anything that moves the version out of that
state (a quarantine, a disable, a plain re-enable) ends the override.
"""

from __future__ import annotations

from typing import Any

from .constants import PROTOCOL_MAJOR, RUNTIME_VERSION
from .errors import SkillLedgerError
from .grammars import semver


def compat_problem(compat: dict[str, Any] | None, runtime_version: str = RUNTIME_VERSION,
                   protocol_major: int = PROTOCOL_MAJOR) -> str | None:
    """``None`` when the manifest's compat section admits this runtime, else a short reason."""
    if not compat:
        return "manifest has no compat section"
    key = (compat.get("required_protocol_major"), compat.get("min_palyra_version"), compat.get("max_palyra_version"),
           runtime_version, protocol_major)
    try:
        return _compat_cache[key]
    except KeyError:
        pass
    except TypeError:  # unhashable values in a damaged record: decide without the cache
        return _compat_problem(compat, runtime_version, protocol_major)
    if len(_compat_cache) > 4096:
        _compat_cache.clear()
    result = _compat_cache[key] = _compat_problem(compat, runtime_version, protocol_major)
    return result


_compat_cache: dict[tuple[Any, ...], str | None] = {}


def _compat_problem(compat: dict[str, Any], runtime_version: str, protocol_major: int) -> str | None:
    try:
        major = compat.get("required_protocol_major", 0)
        if major > protocol_major:
            return f"requires protocol major {major} > {protocol_major}"
        current = semver(runtime_version, "runtime")
        if semver(compat.get("min_palyra_version", "0.0.0"), "compat.min_palyra_version") > current:
            return f"requires runtime >= {compat.get('min_palyra_version')} (this is {runtime_version})"
        maximum = compat.get("max_palyra_version")
        if maximum is not None and current > semver(maximum, "compat.max_palyra_version"):
            return f"supports runtime <= {maximum} (this is {runtime_version})"
    except (SkillLedgerError, TypeError):
        return "manifest compat section is not valid"
    return None


OVERRIDE = "override"  # the status reason code of a version enabled with --override


def is_overridden(status: str | None, status_reason_code: str | None) -> bool:
    """Whether a version is active by an operator's override of a failed audit."""
    return status == "active" and status_reason_code == OVERRIDE


def eligibility(*, installed: bool, status: str | None, key_revoked: bool, last_audit_passed: bool | None,
                compat: str | None, overridden: bool = False) -> tuple[bool, list[str]]:
    """(eligible, reasons). ``overridden``: the version is active by an override of a failed
    audit (:func:`is_overridden`), so a failed last audit is no reason."""
    reasons: list[str] = []
    if not installed:
        reasons.append("not_installed")
    elif status != "active":
        reasons.append(status or "not_active")
    if key_revoked:
        reasons.append("key_revoked")
    if last_audit_passed is False and not (overridden and status == "active"):
        reasons.append("audit_failed")
    if compat is not None:
        reasons.append("incompatible")
    return (not reasons, reasons)
