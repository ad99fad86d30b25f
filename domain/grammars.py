"""The grammars of ``artifact-format.md`` §4: identifiers, skill ids, secret scopes,
wildcard-capable values, labels, hosts, semantic versions and artifact paths.

Each function returns the normalised value or raises the spec's error.
"""

from __future__ import annotations

import re

from .errors import InvalidArtifactPath, ManifestValidationError
from .text import ascii_lower, charset, only_chars, trim

IDENT_CHARS = charset("a-z0-9._:-")
LABEL_CHARS = charset("a-z0-9._-")
ENTRYPOINT_CHARS = charset("a-z0-9_-")
HOST_CHARS = charset("A-Za-z0-9.-")
_SEMVER_PART = re.compile(r"\+?[0-9]+")
U32_MAX = 4294967295


def ident(value: str, field: str) -> str:
    """§4.1."""
    n = trim(value)
    if not n:
        raise ManifestValidationError("identifier_empty", f"{field} cannot be empty", field=field)
    if not only_chars(n, IDENT_CHARS):
        raise ManifestValidationError("identifier_invalid", f"{field} must use [a-z0-9._-:]", field=field)
    return n


def skill_id(value: str) -> str:
    """§4.2: ``[a-z0-9_-]+(\\.[a-z0-9_-]+)*`` after trimming."""
    n = ident(value, "skill_id")
    if ":" in n or any(seg == "" for seg in n.split(".")):
        raise ManifestValidationError(
            "skill_id_invalid", "skill_id must use non-empty dot-separated [a-z0-9_-] segments"
        )
    return n


_SCOPE_PREFIXES = ("principal:", "channel:", "skill:")


def secret_scope(scope: str) -> str:
    """§4.3."""
    n = trim(scope)
    if n == "global":
        return n
    for prefix in _SCOPE_PREFIXES:
        if n.startswith(prefix):
            ident(n[len(prefix) :], "capabilities.secrets[].scope")
            return n
    raise ManifestValidationError("secret_scope_invalid", f"invalid secret scope '{scope}'")


def wild(value: str, field: str, opt_in: bool) -> str:
    """§4.4."""
    if "*" in value:
        if opt_in:
            return value
        raise ManifestValidationError(
            "wildcard_without_opt_in", f"{field} contains wildcard without explicit opt-in", field=field
        )
    return ident(value, field)


def is_label(value: str) -> bool:
    n = trim(value)
    return bool(n) and only_chars(n, LABEL_CHARS)


def is_config_key(value: str) -> bool:
    return is_label(value)


def is_entrypoint(value: str) -> bool:
    n = trim(value)
    return bool(n) and only_chars(n, ENTRYPOINT_CHARS)


def normalize_host(host: str) -> str | None:
    """§4.6 step 2: the normalised host, or ``None`` when invalid. Wildcards are handled by the caller."""
    n = ascii_lower(trim(host).rstrip("."))
    if (
        not n
        or ".." in n
        or n[0] in ".-"
        or n[-1] in ".-"
        or not only_chars(n, HOST_CHARS)
    ):
        return None
    return n


SemVer = tuple[int, int, int]


def semver(value: str, field: str) -> SemVer:
    """§4.7: exactly ``major.minor.patch``, each ``\\+?[0-9]+`` and <= 2**32-1."""
    parts = trim(value).split(".")
    if len(parts) != 3:
        raise ManifestValidationError(
            "semver_format_invalid", f"{field} must use semantic version major.minor.patch", field=field
        )
    out = []
    for component, part in zip(("major", "minor", "patch"), parts):
        # Leading zeros are legal and unbounded in number; never hand a huge digit string to int().
        digits = part.lstrip("+").lstrip("0") or "0"
        if _SEMVER_PART.fullmatch(part) is None or len(digits) > 10 or int(digits) > U32_MAX:
            raise ManifestValidationError(
                "semver_component_invalid", f"{field} {component} invalid", field=field, component=component
            )
        out.append(int(digits))
    return (out[0], out[1], out[2])


# SemVer 2.0's version core: no sign, no leading zero, no whitespace (semver.org, the official grammar).
_SEMVER_CORE = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
_SEMVER_COMPONENT = re.compile(r"0|[1-9][0-9]*")
_CORE_RULE = "SemVer 2.0 MAJOR.MINOR.PATCH: digits without sign, leading zero or whitespace, at most 4294967295"


def skill_version(value: str, field: str) -> SemVer:
    """A skill's own version: SemVer 2.0 strictly, and what §4.7 accepts.

    ``MAJOR.MINOR.PATCH``, each ``0|[1-9][0-9]*`` and at most 2**32-1, as written: no sign,
    no leading zero, no surrounding whitespace. §4.7 alone accepts ``+1``, ``01`` and
    trims, so ``01.0.0``, ``+1.0.0``, ``1.0.00`` and ``" 1.0.0"`` were four versions next to
    ``1.0.0``; SemVer's pre-release and build metadata stay refused, as in §4.7 (the
    reference would refuse such an artifact). Same error codes as :func:`semver`.
    """
    if len(value) <= 32 and _SEMVER_CORE.fullmatch(value) is not None:
        out = tuple(int(p) for p in value.split("."))
        if max(out) <= U32_MAX:
            return (out[0], out[1], out[2])
    parts = value.split(".")
    if len(parts) != 3:
        raise ManifestValidationError(
            "semver_format_invalid", f"{field} must use semantic version major.minor.patch", field=field
        )
    for component, part in zip(("major", "minor", "patch"), parts):
        if len(part) > 10 or _SEMVER_COMPONENT.fullmatch(part) is None or int(part) > U32_MAX:
            raise ManifestValidationError(
                "semver_component_invalid",
                f"{field} {component} invalid ({_CORE_RULE})",
                field=field, component=component,
            )
    raise AssertionError("unreachable: a version core that matches every component matches the whole")


def parse_semver_lenient(value: str) -> SemVer | None:
    """For sorting and comparing recorded versions, under §4.7's grammar (which journals written
    before :func:`skill_version` recorded): ``None`` when the value is not a semver."""
    try:
        return semver(value, "version")
    except ManifestValidationError:
        return None


def same_version(a: str, b: str) -> bool:
    """Whether two recorded versions are one version under SemVer precedence (``01.0.0`` and
    ``1.0.0`` are); values that are no semver at all compare as text."""
    if a == b:
        return True
    ka, kb = parse_semver_lenient(a), parse_semver_lenient(b)
    return ka is not None and ka == kb


def normalize_path(raw: str) -> str:
    """§4.8 artifact path normalisation; every failure is ``invalid_artifact_path``."""
    n = trim(raw).replace("\\", "/")
    if not n or n.startswith("/") or "\x00" in n or ":" in n:
        raise InvalidArtifactPath(raw)
    if any(seg in ("", ".", "..") for seg in n.split("/")):
        raise InvalidArtifactPath(raw)
    return n
