"""Audit checks that hold a manifest and its modules to the host's limits (additions to §19.3).

- ``secret_scope_ownership``: a skill reads only its own ``skill:<id>`` secrets (and ``global``,
  ``principal:``, ``channel:`` scopes), unless the policy sets ``allow_cross_skill_secrets``.
- ``quota_within_policy``: the manifest's quotas stay within the policy's caps. The host decides
  the limits, not the skill: a run gets min(manifest, cap), and a manifest asking more than a cap
  fails here, so the operator sees the request instead of a silently smaller limit.
- ``wasm_function_count_limit``, ``wasm_function_body_size_limit``, ``wasm_code_size_limit``:
  what a module asks the compiler to chew on (compile bombs), from the inspector's reading of
  the code section. A screen against modules no toolchain produces, not a bound on compile time
  (that depends on a function's shape); the runner bounds the compilation itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ManifestValidationError
from .grammars import secret_scope
from .text import trim

if TYPE_CHECKING:
    from .audit import AuditCheck, ModuleFacts
    from .manifest import Manifest
    from .policy import PolicyValues

SKILL_SCOPE_PREFIX = "skill:"


def own_secret_scope(m: Manifest) -> str:
    return SKILL_SCOPE_PREFIX + trim(m.skill_id)


def foreign_secret_scopes(m: Manifest) -> list[str]:
    """The ``skill:<id>`` scopes of the manifest's secrets that name another skill (normalised,
    unique, in manifest order)."""
    own = own_secret_scope(m)
    found: list[str] = []
    for s in m.capabilities.secrets:
        try:
            scope = secret_scope(s.scope)
        except ManifestValidationError:  # unreachable after manifest validation
            scope = s.scope
        if scope.startswith(SKILL_SCOPE_PREFIX) and scope != own and scope not in found:
            found.append(scope)
    return found


def secret_scope_check(m: Manifest, allowed: bool) -> AuditCheck:
    from .audit import check

    foreign = foreign_secret_scopes(m)
    own = own_secret_scope(m)
    details: dict[str, Any] = {"own_scope": own, "foreign_scopes": foreign, "allow_cross_skill_secrets": allowed}
    if foreign and not allowed:
        return check(
            "secret_scope_ownership",
            "fail",
            f"manifest reads secrets of other skills' scopes: {', '.join(foreign)} (a skill may use only its own "
            f"'{own}' scope unless the audit policy sets allow_cross_skill_secrets)",
            details,
        )
    if foreign:
        return check(
            "secret_scope_ownership",
            "pass",
            f"manifest reads secrets of other skills' scopes ({', '.join(foreign)}), allowed by "
            "allow_cross_skill_secrets",
            details,
        )
    return check("secret_scope_ownership", "pass", "manifest uses no other skill's secret scope", details)


# (manifest quota, policy cap) pairs, in the manifest's member order.
QUOTA_CAPS = (
    ("wall_clock_timeout_ms", "max_wall_clock_timeout_ms"),
    ("fuel_budget", "max_fuel_budget"),
    ("max_memory_bytes", "max_memory_bytes"),
)


def quota_check(m: Manifest, policy: PolicyValues) -> AuditCheck:
    from .audit import check

    q = m.capabilities.quotas
    quotas = {name: getattr(q, name) for name, _ in QUOTA_CAPS}
    caps = {cap: getattr(policy, cap) for _, cap in QUOTA_CAPS}
    over = [(name, quotas[name], cap, caps[cap]) for name, cap in QUOTA_CAPS if quotas[name] > caps[cap]]
    details = {"quotas": quotas, "caps": caps, "exceeded": [name for name, *_ in over]}
    if over:
        parts = "; ".join(f"{name} {value} > policy {cap} {limit}" for name, value, cap, limit in over)
        return check(
            "quota_within_policy",
            "fail",
            f"manifest quotas exceed the audit policy's caps: {parts} (lower the quota, or raise the cap with "
            "skills policy set)",
            details,
        )
    parts = ", ".join(f"{name} {quotas[name]} <= {caps[cap]}" for name, cap in QUOTA_CAPS)
    return check("quota_within_policy", "pass", f"manifest quotas are within the audit policy's caps ({parts})",
                 details)


def compile_checks(p: str, facts: ModuleFacts, policy: PolicyValues) -> list[AuditCheck]:
    """The three compile-bomb checks of one (valid) module."""
    from .audit import check

    out = []
    n, limit = facts.function_count, policy.max_functions
    details: dict[str, Any] = {"module_path": p, "functions": n, "max_functions": limit}
    if n > limit:
        out.append(check("wasm_function_count_limit", "fail",
                         f"module '{p}' defines too many functions ({n} > max_functions {limit})", details))
    else:
        out.append(check("wasm_function_count_limit", "pass",
                         f"module '{p}' function count is within limit ({n} <= {limit})", details))
    n, limit = facts.largest_function_bytes, policy.max_function_body_bytes
    details = {"module_path": p, "largest_function_bytes": n, "max_function_body_bytes": limit}
    if n > limit:
        out.append(check("wasm_function_body_size_limit", "fail",
                         f"module '{p}' has a function body of {n} bytes, above max_function_body_bytes ({limit})",
                         details))
    else:
        out.append(check("wasm_function_body_size_limit", "pass",
                         f"module '{p}' largest function body is within limit ({n} <= {limit} bytes)", details))
    n, limit = facts.code_bytes, policy.max_code_bytes
    details = {"module_path": p, "code_bytes": n, "max_code_bytes": limit}
    if n > limit:
        out.append(check("wasm_code_size_limit", "fail",
                         f"module '{p}' has {n} bytes of code, above max_code_bytes ({limit})", details))
    else:
        out.append(check("wasm_code_size_limit", "pass",
                         f"module '{p}' code size is within limit ({n} <= {limit} bytes)", details))
    return out
