"""The audit policy (``artifact-format.md`` §19.1).

This first part is the policy *value*: the six members of §19.1 and this project's additions, their defaults, the
fixed-schema JSON form (§1.3) and the ``policy set KEY=VALUE`` edits of the CLI.
The event-sourced ``AuditPolicy`` aggregate lives at the end of this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from .constants import (
    AUDIT_DEFAULT_MAX_EXPORTED_FUNCTIONS,
    AUDIT_DEFAULT_MAX_MODULE_BYTES,
    DEFAULT_ALLOWED_IMPORT_MODULES,
    MIN_MAX_MEMORY_BYTES,
    POLICY_DEFAULT_MAX_CODE_BYTES,
    POLICY_DEFAULT_MAX_FUEL_BUDGET,
    POLICY_DEFAULT_MAX_FUNCTION_BODY_BYTES,
    POLICY_DEFAULT_MAX_FUNCTIONS,
    POLICY_DEFAULT_MAX_INSTANCES,
    POLICY_DEFAULT_MAX_MEMORY_BYTES,
    POLICY_DEFAULT_MAX_WALL_CLOCK_TIMEOUT_MS,
    UINT64_MAX,
)
from .errors import SerializationError, UsageError
from .text import StrictJsonError, ascii_lower, dumps_pretty, is_exact_int, loads_strict, trim

__all__ = [
    "POLICY_KEYS",
    "PolicyValues",
    "apply_settings",
    "dump_policy_json",
    "policy_settings",
    "setting_text",
    "effective_feed_path",
    "parse_policy_json",
    "policy_changes",
    "policy_from_dict",
    "policy_to_dict",
]


class PolicyValues(msgspec.Struct, frozen=True, kw_only=True):
    """The effective audit policy. Members in §19.1 order."""

    max_module_bytes: int = AUDIT_DEFAULT_MAX_MODULE_BYTES
    max_exported_functions: int = AUDIT_DEFAULT_MAX_EXPORTED_FUNCTIONS
    allow_device_capabilities: bool = False
    allow_wildcard_capabilities: bool = False
    allowed_import_modules: tuple[str, ...] = DEFAULT_ALLOWED_IMPORT_MODULES
    vulnerability_feed_path: str | None = None
    # Additions to §19.1 (the reference has no host-side caps): the host decides quotas, not the
    # skill. A manifest asking more than a cap fails the audit; a run gets min(manifest, cap).
    max_memory_bytes: int = POLICY_DEFAULT_MAX_MEMORY_BYTES
    max_fuel_budget: int = POLICY_DEFAULT_MAX_FUEL_BUDGET
    max_wall_clock_timeout_ms: int = POLICY_DEFAULT_MAX_WALL_CLOCK_TIMEOUT_MS
    max_instances: int = POLICY_DEFAULT_MAX_INSTANCES
    # Compile bombs: what a module may ask the compiler to chew on.
    max_functions: int = POLICY_DEFAULT_MAX_FUNCTIONS
    max_function_body_bytes: int = POLICY_DEFAULT_MAX_FUNCTION_BODY_BYTES
    max_code_bytes: int = POLICY_DEFAULT_MAX_CODE_BYTES
    # A skill may read secrets of its own ``skill:<id>`` scope only, unless this is on.
    allow_cross_skill_secrets: bool = False


POLICY_KEYS: tuple[str, ...] = PolicyValues.__struct_fields__
_UINT_KEYS = ("max_module_bytes", "max_exported_functions", "max_memory_bytes", "max_fuel_budget",
              "max_wall_clock_timeout_ms", "max_instances", "max_functions", "max_function_body_bytes",
              "max_code_bytes")
_BOOL_KEYS = ("allow_device_capabilities", "allow_wildcard_capabilities", "allow_cross_skill_secrets")
# A quota cap below the smallest quota a manifest may declare (§5.4 rule: non-zero, memory at
# least one page) would fail every skill's audit; such a cap is refused, not recorded.
_CAP_MINIMUMS = {"max_memory_bytes": MIN_MAX_MEMORY_BYTES, "max_fuel_budget": 1, "max_wall_clock_timeout_ms": 1}
_DECIMAL = re.compile(r"[0-9]{1,19}")  # ASCII digits only; 19 digits covers UINT64_MAX


def effective_feed_path(p: PolicyValues) -> str | None:
    """The trimmed feed path, or ``None`` when unset or blank (check 20 is then skipped)."""
    if p.vulnerability_feed_path is None:
        return None
    t = trim(p.vulnerability_feed_path)
    return t or None


# --- JSON form (§1.3 fixed schema, every member optional) --------------------------------


def parse_policy_json(data: bytes) -> PolicyValues:
    try:
        doc = loads_strict(data)
    except StrictJsonError as e:
        raise SerializationError(f"audit policy is not valid JSON: {e}") from None
    return policy_from_dict(doc)


def policy_from_dict(doc: Any) -> PolicyValues:
    """Decode an already-parsed JSON value (e.g. an event payload) with the fixed-schema rules.

    Duplicate members can only be detected on bytes: use :func:`parse_policy_json` for documents.
    """
    if not isinstance(doc, dict):
        raise SerializationError("audit policy must be a JSON object")
    values: dict[str, Any] = {}
    for key, value in doc.items():
        if key not in POLICY_KEYS:
            raise SerializationError(f"audit policy has unknown member '{key}'")
        values[key] = _member(key, value)
    return PolicyValues(**values)


def _member(key: str, value: Any) -> Any:
    if key in _UINT_KEYS:
        low = _CAP_MINIMUMS.get(key, 0)
        if not is_exact_int(value) or not low <= value <= UINT64_MAX:
            raise SerializationError(f"audit policy member '{key}' must be an integer in {low}..{UINT64_MAX}")
        return value
    if key in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise SerializationError(f"audit policy member '{key}' must be a boolean")
        return value
    if key == "allowed_import_modules":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SerializationError(f"audit policy member '{key}' must be an array of strings")
        return tuple(value)
    # vulnerability_feed_path
    if value is not None and not isinstance(value, str):
        raise SerializationError(f"audit policy member '{key}' must be a string or null")
    return value


def policy_to_dict(p: PolicyValues) -> dict[str, Any]:
    """Plain JSON in §19.1 member order, then the additions (every member, defaults included)."""
    return {
        "max_module_bytes": p.max_module_bytes,
        "max_exported_functions": p.max_exported_functions,
        "allow_device_capabilities": p.allow_device_capabilities,
        "allow_wildcard_capabilities": p.allow_wildcard_capabilities,
        "allowed_import_modules": list(p.allowed_import_modules),
        "vulnerability_feed_path": p.vulnerability_feed_path,
        "max_memory_bytes": p.max_memory_bytes,
        "max_fuel_budget": p.max_fuel_budget,
        "max_wall_clock_timeout_ms": p.max_wall_clock_timeout_ms,
        "max_instances": p.max_instances,
        "max_functions": p.max_functions,
        "max_function_body_bytes": p.max_function_body_bytes,
        "max_code_bytes": p.max_code_bytes,
        "allow_cross_skill_secrets": p.allow_cross_skill_secrets,
    }


def dump_policy_json(p: PolicyValues) -> str:
    return dumps_pretty(policy_to_dict(p))


# --- CLI edits: ``skills policy set KEY=VALUE...`` and ``skills policy show`` ------------


def setting_text(key: str, value: Any) -> str:
    """One member as ``KEY=VALUE`` in the syntax ``policy set`` takes (the value as compact JSON:
    ``false``, ``null``, ``["a","b"]``, ``"/path"``): what ``policy show`` prints."""
    import json

    if isinstance(value, tuple):
        value = list(value)
    return f"{key}={json.dumps(value, ensure_ascii=False, separators=(',', ':'))}"


def policy_settings(p: PolicyValues) -> list[str]:
    """Every member as ``KEY=VALUE``: ``apply_settings`` of these gives ``p`` back."""
    return [setting_text(k, v) for k, v in policy_to_dict(p).items()]


def apply_settings(p: PolicyValues, settings: Iterable[str]) -> PolicyValues:
    """Apply ``KEY=VALUE`` edits; any bad key or value raises :class:`UsageError` naming the key.

    Values are JSON, as ``policy show`` prints them, validated against the member's type and range:
    integers in ASCII decimal; booleans ``true``/``false`` (any ASCII case); ``allowed_import_modules``
    a JSON array of non-empty strings (``["skills:host/v1"]``; a bare comma-separated list is accepted
    too, items trimmed, the empty value is the empty list); ``vulnerability_feed_path`` a JSON string,
    a bare path, or ``null`` (also empty or ``none``) to unset it. A value that starts like JSON
    (``[``, ``"``, ``{``) must be valid JSON of the member's type: it is never stored as literal text.
    A key given twice in one command is refused rather than silently overridden.
    """
    changes: dict[str, Any] = {}
    for setting in settings:
        key, sep, raw = setting.partition("=")
        key = trim(key)
        if not sep:
            raise UsageError(f"policy setting '{setting}' must have the form KEY=VALUE", {"setting": setting})
        if key not in POLICY_KEYS:
            raise UsageError(
                f"unknown policy key '{key}'; expected one of: {', '.join(POLICY_KEYS)}", {"key": key}
            )
        if key in changes:
            raise UsageError(f"policy key '{key}' is given more than once", {"key": key})
        changes[key] = _setting_value(key, raw)
    return msgspec.structs.replace(p, **changes)


def _bad(key: str, raw: str, needs: str) -> UsageError:
    return UsageError(f"policy key '{key}' needs {needs}, got '{raw}'", {"key": key, "value": raw})


def _json_value(key: str, raw: str, needs: str) -> Any:
    try:
        return loads_strict(trim(raw))
    except StrictJsonError as e:
        raise UsageError(f"policy key '{key}' needs {needs}; '{raw}' is not valid JSON: {e}",
                         {"key": key, "value": raw}) from None


def _setting_value(key: str, raw: str) -> Any:
    value = trim(raw)
    if key in _UINT_KEYS:
        low = _CAP_MINIMUMS.get(key, 0)
        if _DECIMAL.fullmatch(value) is None or int(value) > UINT64_MAX:
            raise _bad(key, raw, f"a decimal integer in {low}..{UINT64_MAX}")
        if int(value) < low:
            raise _bad(key, raw, f"at least {low} (the smallest quota a manifest may declare; a lower cap "
                                 "would fail every skill's audit)")
        return int(value)
    if key in _BOOL_KEYS:
        lowered = ascii_lower(value)
        if lowered not in ("true", "false"):
            raise _bad(key, raw, "true or false")
        return lowered == "true"
    if key == "allowed_import_modules":
        return _modules_value(key, raw, value)
    return _feed_path_value(key, raw, value)


def _modules_value(key: str, raw: str, value: str) -> tuple[str, ...]:
    needs = 'a JSON array of non-empty strings, e.g. ["skills:host/v1"] (or a comma-separated list)'
    if value.startswith(("[", '"', "{")):
        items = _json_value(key, raw, needs)
        if not isinstance(items, list) or not all(isinstance(v, str) and trim(v) for v in items):
            raise _bad(key, raw, needs)
        return tuple(items)
    if not value:
        return ()
    items = tuple(trim(v) for v in value.split(","))
    if any(not v for v in items):
        raise _bad(key, raw, "a comma-separated list without empty items (or a JSON array of strings)")
    return items


def _feed_path_value(key: str, raw: str, value: str) -> str | None:
    needs = 'a path (a JSON string such as "/var/feeds/v.json", or bare) or null'
    if value.startswith(("[", '"', "{")):
        path = _json_value(key, raw, needs)
        if not isinstance(path, str):
            raise _bad(key, raw, needs)
        return path
    if not value or ascii_lower(value) in ("null", "none"):
        return None
    return value


def policy_changes(old: PolicyValues, new: PolicyValues) -> Mapping[str, tuple[Any, Any]]:
    """Members that differ: ``{key: (old, new)}`` in §19.1 order (for event payloads and output)."""
    a, b = policy_to_dict(old), policy_to_dict(new)
    return {k: (a[k], b[k]) for k in POLICY_KEYS if a[k] != b[k]}

