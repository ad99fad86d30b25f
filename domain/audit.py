"""The security audit (``artifact-format.md`` §19) over already-extracted facts.

Pure: the caller verifies the artifact (§19.2 step 1), reads the hook environment
variable and the feed file, and asks the inspector (``adapters/audit/inspector.py``) for
each module's :class:`ModuleFacts` and ``adapters/audit/schema_facts.py`` for whether each
tool schema compiles. This module turns those inputs into the §19.3 checks, in table order,
plus this project's additions (README, "Audit checks"): ``secret_scope_ownership`` after
check 8, ``quota_within_policy`` after check 10, the compile-bomb checks after check 18 of
each module (``audit_limits``), the import allowlist's hints (``audit_imports``) and, per
tool after the modules, ``tool_module_resolution``, ``tool_module_abi``,
``tool_schema_references`` and ``tool_schema_compiles`` (``audit_tools``), then 19 and 20.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from .constants import WASM_BINARY_HEADER, WASM_PAGE_SIZE
from .errors import InvalidArtifactPath
from .grammars import normalize_path
from .manifest import Manifest, ManifestWarning, Tool
from .policy import PolicyValues, effective_feed_path, policy_to_dict
from .text import ascii_lower, trim
from .vulnfeed import VulnFeed

if TYPE_CHECKING:  # the artifact codec (and cryptography) is imported only where an audit runs: the
    from .artifact import InspectResult  # runner reads ModuleFacts on every `skills run`
    from .audit_tools import SchemaFacts

__all__ = [
    "COMPONENT_VERSION_BYTES",
    "AuditCheck",
    "AuditReport",
    "ExportFact",
    "ImportFact",
    "MemoryFact",
    "ModuleFacts",
    "ToolResolution",
    "audit_artifact",
    "audit_summary",
    "check",
    "resolve_tool_module",
    "wasm_header_problem",
]

ExternKind = Literal["func", "memory", "table", "global", "tag"]
Status = Literal["pass", "warn", "fail", "skipped"]
SEVERITY: dict[str, str] = {"pass": "info", "warn": "warning", "fail": "error", "skipped": "info"}
COMPONENT_VERSION_BYTES = b"\x0d\x00\x01\x00"  # component-model binaries: layer 1, version 0x0d
_WASM_MAGIC = WASM_BINARY_HEADER[:4]


# --- module facts (produced by adapters/inspector, passed in as data) ------------------


class ImportFact(msgspec.Struct, frozen=True, kw_only=True):
    module: str
    name: str
    kind: ExternKind
    type: str  # "(i32, i32) -> (i64)", "memory 1..16", "table funcref 0..", "global i32 mut", "tag (i32) -> ()"


class ExportFact(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: ExternKind
    type: str


class MemoryFact(msgspec.Struct, frozen=True, kw_only=True):
    minimum_pages: int
    maximum_pages: int | None
    imported: bool
    is_64: bool = False
    shared: bool = False


class ModuleFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the audit and the runner need to know about one ``modules/*.wasm`` entry.

    ``valid`` is false (with ``error`` the reason) when the bytes are not a binary core
    module the engine accepts; the lists are then empty. Memories are listed in index
    order: imported first, then defined (exported or not).
    """

    path: str
    size: int
    sha256: str
    valid: bool
    error: str | None = None
    imports: tuple[ImportFact, ...] = ()
    exports: tuple[ExportFact, ...] = ()
    memories: tuple[MemoryFact, ...] = ()
    # What compiling the module would cost (the compile-bomb checks): the functions the module
    # defines (the code section's entries; imported functions are not compiled), the largest
    # function body and the code section's size, in bytes.
    function_count: int = 0
    largest_function_bytes: int = 0
    code_bytes: int = 0

    def exported_functions(self) -> list[str]:
        return [e.name for e in self.exports if e.kind == "func"]

    def exports_function(self, name: str) -> bool:
        return any(e.kind == "func" and e.name == name for e in self.exports)

    def export_type(self, name: str) -> str | None:
        for e in self.exports:
            if e.name == name:
                return e.type
        return None

    def is_wasi_command(self) -> bool:
        return self.exports_function("_start")

    def import_modules(self) -> list[str]:
        """Sorted, unique import module names."""
        return sorted({i.module for i in self.imports})

    def declared_min_memory_bytes(self) -> int:
        return sum(m.minimum_pages for m in self.memories) * WASM_PAGE_SIZE


def wasm_header_problem(data: bytes) -> str | None:
    """§19.4: ``None`` when ``data`` starts with the 8-byte core-module header, else why not.

    Shared with the inspector so nothing but a binary core module ever reaches an engine
    (some engines' module constructors also accept the text format).
    """
    if data[:8] == WASM_BINARY_HEADER:
        return None
    if data[:4] == _WASM_MAGIC:
        if data[4:8] == COMPONENT_VERSION_BYTES:
            return "a WebAssembly component-model binary is not a core module"
        if len(data) < 8:
            return "truncated WebAssembly header"
        return f"unsupported WebAssembly binary version {data[4:8].hex()} (expected 01000000)"
    if data.lstrip(b" \t\r\n")[:1] == b"(" or data.lstrip(b" \t\r\n")[:2] == b";;":
        return "WebAssembly text format (WAT) is not accepted; package the binary module"
    return "not a binary WebAssembly module (missing \\0asm header)"


# --- checks and the report (§19.3, §19.6) ------------------------------------------------


class AuditCheck(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    check_id: str
    status: Status
    severity: str
    message: str
    details: dict[str, Any] | None = None  # omitted from JSON when None


class AuditReport(msgspec.Struct, frozen=True, kw_only=True):
    """Members in §19.6 order."""

    skill_id: str
    version: str
    publisher: str
    accepted: bool
    passed: bool
    should_quarantine: bool
    trust_decision: str
    payload_sha256: str
    generated_at_unix_ms: int
    policy: dict[str, Any]
    manifest_warnings: tuple[ManifestWarning, ...]
    checks: tuple[AuditCheck, ...]
    quarantine_reasons: tuple[str, ...]
    vulnerability_scan: AuditCheck

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (lists, dicts) in §19.6 order; a check's ``details`` omitted when None."""
        return msgspec.json.decode(msgspec.json.encode(self))

    def failed_checks(self) -> list[str]:
        """Ids of failing checks, in order, each once (per-module ids can repeat in ``checks``)."""
        return _unique(c.check_id for c in self.checks if c.status == "fail")

    def warning_checks(self) -> list[str]:
        return _unique(c.check_id for c in self.checks if c.status == "warn")


def _unique(ids: Any) -> list[str]:
    return list(dict.fromkeys(ids))


def audit_summary(report: AuditReport) -> dict[str, Any]:
    return {
        "passed": report.passed,
        "failed_checks": report.failed_checks(),
        "warning_checks": report.warning_checks(),
    }


def check(check_id: str, status: Status, message: str, details: dict[str, Any] | None = None) -> AuditCheck:
    return AuditCheck(check_id=check_id, status=status, severity=SEVERITY[status], message=message, details=details)


# --- which module runs a tool (runtime.md) ---------------------------------------------


class ToolResolution(msgspec.Struct, frozen=True, kw_only=True):
    """``module_path`` set on success (``rule`` says why); otherwise ``reason`` and ``candidates``."""

    tool_id: str
    module_path: str | None = None
    rule: Literal["export", "only_module", "default_module_path"] | None = None
    reason: str | None = None
    candidates: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.module_path is not None


def resolve_tool_module(manifest: Manifest, modules: Mapping[str, ModuleFacts], tool: Tool) -> ToolResolution:
    """The module that exports a function named ``tool.name`` (json-v1; exact, raw name);
    otherwise the artifact's only module; otherwise ``operator.plugin.default_module_path``
    when it names a module entry. Several exporters, or none of the above, is a failure."""
    from .artifact import is_module_path

    paths = sorted(p for p in modules if is_module_path(p))
    exporters = tuple(p for p in paths if modules[p].exports_function(tool.name))
    if len(exporters) == 1:
        return ToolResolution(tool_id=tool.id, module_path=exporters[0], rule="export")
    if len(exporters) > 1:
        return ToolResolution(
            tool_id=tool.id,
            reason=f"several modules export a function named '{tool.name}': {', '.join(exporters)}",
            candidates=exporters,
        )
    if len(paths) == 1:
        return ToolResolution(tool_id=tool.id, module_path=paths[0], rule="only_module")
    default = manifest.operator.plugin.default_module_path
    if default is not None:
        try:
            normalised: str | None = normalize_path(default)
        except InvalidArtifactPath:
            normalised = None
        if normalised in paths:
            return ToolResolution(tool_id=tool.id, module_path=normalised, rule="default_module_path")
        reason = (
            f"no module exports a function named '{tool.name}' and operator.plugin.default_module_path "
            f"'{default}' is not a module of the artifact"
        )
    elif not paths:
        reason = "the artifact has no modules"
    else:
        reason = (
            f"no module exports a function named '{tool.name}', the artifact has {len(paths)} modules "
            "and operator.plugin.default_module_path is not set"
        )
    return ToolResolution(tool_id=tool.id, reason=reason)


# --- the audit ------------------------------------------------------------------------


def audit_artifact(
    inspected: InspectResult,
    trust_decision: str,
    policy: PolicyValues,
    modules: Mapping[str, ModuleFacts],
    feed: VulnFeed | None,
    hook_env_value: str | None,
    now_ms: int,
    *,
    schemas: Sequence[SchemaFacts],
) -> AuditReport:
    """§19.2 steps 2-3 for an artifact the caller has already verified.

    ``modules`` must hold facts for every ``modules/*.wasm`` entry, computed from those very
    bytes; ``schemas`` one fact per tool and schema member (``adapters/audit/schema_facts.py``);
    ``feed`` must be the loaded feed whenever the policy configures one. Breaking any of these
    is a caller bug (``ValueError``), never a check result.
    """
    from .audit_tools import tool_checks

    m = inspected.manifest
    feed_path = effective_feed_path(policy)
    if feed_path is not None and feed is None:
        raise ValueError("the policy configures a vulnerability feed but none was loaded")
    digests = _module_digests(inspected, modules)

    checks = _manifest_checks(inspected, policy)
    module_checks, usable = _wasm_checks(inspected, policy, modules)
    checks.extend(module_checks)
    checks.extend(tool_checks(m, modules, usable, schemas))
    hook_check = _hook_check(policy, hook_env_value)
    checks.append(hook_check)
    checks.append(_feed_check(feed_path, feed, inspected.payload_sha256, digests))

    passed = not any(c.status == "fail" for c in checks)
    return AuditReport(
        skill_id=m.skill_id,
        version=m.version,
        publisher=m.publisher,
        accepted=True,
        passed=passed,
        should_quarantine=not passed,
        trust_decision=str(getattr(trust_decision, "value", trust_decision)),
        payload_sha256=inspected.payload_sha256,
        generated_at_unix_ms=now_ms,
        policy=policy_to_dict(policy),
        manifest_warnings=tuple(inspected.manifest_warnings),
        checks=tuple(checks),
        quarantine_reasons=tuple(c.message for c in checks if c.status == "fail"),
        vulnerability_scan=hook_check,
    )


def _module_digests(inspected: InspectResult, modules: Mapping[str, ModuleFacts]) -> dict[str, str]:
    """Each module's SHA-256 (the digests inspect computed from these very bytes: hashing a
    large module again costs time), after checking that ``modules`` describes those bytes."""
    from .artifact import sha256_hex

    module_paths = inspected.module_paths()
    digests = {p: inspected.entry_sha256.get(p) or sha256_hex(inspected.entries[p]) for p in module_paths}
    for p in module_paths:
        facts = modules.get(p)
        if facts is None:
            raise ValueError(f"no module facts for '{p}'")
        if facts.sha256 != digests[p]:
            raise ValueError(f"module facts for '{p}' were computed from other bytes")
    return digests


def _manifest_checks(inspected: InspectResult, policy: PolicyValues) -> list[AuditCheck]:
    """The checks before the modules, in the audit table's order: what verification established,
    then the manifest's capabilities and quotas against the policy."""
    from .audit_limits import quota_check, secret_scope_check

    m = inspected.manifest
    caps = m.capabilities
    checks: list[AuditCheck] = [
        check("signature_validity", "pass", "signature chain and payload hash verified"),
        check("sbom_presence", "pass", "sbom.cdx.json is present and valid"),
        check("provenance_presence", "pass", "provenance.json is present and valid"),
        check("manifest_sanity", "pass", "manifest passed strict schema and wildcard validation"),
    ]
    for w in inspected.manifest_warnings:
        checks.append(check(f"manifest_warning:{w.code}", "warn", w.message, {"code": w.code, "severity": "warning"}))
    fs = caps.filesystem
    checks.append(check(
        "manifest_filesystem_scopes", "pass",
        f"manifest declares {len(fs.read_roots)} filesystem read root(s) and {len(fs.write_roots)} write root(s)",
        {"read_roots": list(fs.read_roots), "write_roots": list(fs.write_roots)},
    ))
    hosts = list(caps.http_egress_allowlist)
    checks.append(check("manifest_http_egress_scopes", "pass", f"manifest declares {len(hosts)} http egress host(s)",
                        {"hosts": hosts}))
    scopes = [s.scope for s in caps.secrets]
    checks.append(
        check("manifest_secret_scopes", "pass", f"manifest declares {len(scopes)} secret scope(s)", {"scopes": scopes})
    )
    checks.append(secret_scope_check(m, policy.allow_cross_skill_secrets))
    checks.append(_device_check(list(caps.device_capabilities), policy.allow_device_capabilities))
    checks.append(_wildcard_check(m, policy.allow_wildcard_capabilities))
    checks.append(quota_check(m, policy))
    return checks


def _wasm_checks(
    inspected: InspectResult, policy: PolicyValues, modules: Mapping[str, ModuleFacts]
) -> tuple[list[AuditCheck], dict[str, ModuleFacts]]:
    """``wasm_module_presence`` and each module's checks; and the modules the tool checks may use:
    those past validation and size, without the imports the allowlist refused."""
    from .audit_imports import refused_imports

    caps = inspected.manifest.capabilities
    filesystem_declared = bool(caps.filesystem.read_roots or caps.filesystem.write_roots)
    module_paths = inspected.module_paths()
    checks: list[AuditCheck] = []
    if module_paths:
        checks.append(check("wasm_module_presence", "pass", f"artifact includes {len(module_paths)} wasm module(s)",
                            {"modules": list(module_paths)}))
    else:  # unreachable after verify (§14 requires a module)
        checks.append(check("wasm_module_presence", "fail", "artifact does not contain any modules/*.wasm entries"))
    max_memory = caps.quotas.max_memory_bytes
    usable: dict[str, ModuleFacts] = {}
    for p in module_paths:
        module_checks = _module_checks(p, inspected.entries[p], modules[p], policy, filesystem_declared, max_memory)
        checks.extend(module_checks)
        if module_checks[0].status == "pass":  # the size pass comes only after a passed validation
            refused = refused_imports(modules[p], policy, filesystem_declared)
            usable[p] = msgspec.structs.replace(
                modules[p], imports=tuple(i for i in modules[p].imports if i not in refused))
    return checks, usable


def _device_check(device: list[str], allowed: bool) -> AuditCheck:
    if device and not allowed:
        return check(
            "forbidden_device_capabilities",
            "fail",
            "manifest declares device capabilities, which are not grantable by the sandboxed plugin runtime",
            {"device_capabilities": device},
        )
    return check(
        "forbidden_device_capabilities",
        "pass",
        "manifest does not declare forbidden device capabilities",
        {"device_capabilities": device, "allow_device_capabilities": allowed},
    )


def _wildcard_check(m: Manifest, allowed: bool) -> AuditCheck:
    o = m.capabilities.wildcard_opt_in
    flags = (("filesystem", o.filesystem), ("http_egress", o.http_egress), ("secrets", o.secrets),
             ("device", o.device), ("node", o.node))  # fmt: skip
    opt_ins = [name for name, on in flags if on]
    if opt_ins and not allowed:
        return check(
            "forbidden_wildcard_capabilities",
            "fail",
            "manifest enables wildcard capabilities, which require an explicit audit policy override",
            {"wildcard_opt_ins": opt_ins},
        )
    return check(
        "forbidden_wildcard_capabilities",
        "pass",
        "manifest wildcard capability posture is allowed by audit policy",
        {"wildcard_opt_ins": opt_ins, "allow_wildcard_capabilities": allowed},
    )


def _module_checks(
    p: str, data: bytes, facts: ModuleFacts, policy: PolicyValues, filesystem_declared: bool, max_memory: int
) -> list[AuditCheck]:
    """Checks 12-18 for one module, then the compile-bomb checks; a failing 12 or 13 ends the
    module's checks."""
    from .audit_imports import import_allowlist_check
    from .audit_limits import compile_checks

    size, limit = len(data), policy.max_module_bytes
    size_details = {"module_path": p, "module_bytes": size, "max_module_bytes": limit}
    if size > limit:
        return [check("wasm_module_size_limit", "fail", f"module '{p}' exceeds max_module_bytes ({size} > {limit})",
                      size_details)]
    reason = wasm_header_problem(data)
    if reason is None and not facts.valid:
        reason = facts.error or "the engine rejected the module"
    if reason is not None:
        return [
            check("wasm_module_validation", "fail", f"module '{p}' failed validation: {reason}", {"module_path": p})
        ]
    out = [check("wasm_module_size_limit", "pass", f"module '{p}' is within max_module_bytes ({size} <= {limit})",
                 size_details)]

    n, max_fn = len(facts.exported_functions()), policy.max_exported_functions
    out.append(_verdict(
        "wasm_exported_function_limit", n <= max_fn,
        f"module '{p}' export function count is within limit ({n} <= {max_fn})",
        f"module '{p}' exports too many functions ({n} > {max_fn})",
        {"module_path": p, "exported_functions": n, "max_exported_functions": max_fn},
    ))
    wasi_fs = any(ascii_lower(trim(i.module)).startswith("wasi:filesystem") for i in facts.imports)
    out.append(_verdict(
        "wasm_wasi_filesystem_imports", filesystem_declared or not wasi_fs,
        f"module '{p}' does not violate wasi:filesystem policy",
        f"module '{p}' imports wasi:filesystem without declared filesystem capability",
        {"module_path": p, "filesystem_declared": filesystem_declared},
    ))
    out.append(import_allowlist_check(p, facts, policy, filesystem_declared))
    declared = facts.declared_min_memory_bytes()
    out.append(_verdict(
        "wasm_memory_declared_limit", declared <= max_memory,
        f"module '{p}' initial memory is within max_memory_bytes ({declared} <= {max_memory})",
        f"module '{p}' declares {declared} bytes of initial memory, above max_memory_bytes ({max_memory})",
        {"module_path": p, "declared_min_memory_bytes": declared, "max_memory_bytes": max_memory},
    ))
    out.extend(compile_checks(p, facts, policy))
    return out


def _verdict(check_id: str, ok: bool, passed: str, failed: str, details: dict[str, Any]) -> AuditCheck:
    """A check that passes or fails on one condition, with a message for each outcome."""
    return check(check_id, "pass" if ok else "fail", passed if ok else failed, details)


def _hook_check(policy: PolicyValues, hook_env_value: str | None) -> AuditCheck:
    hook = effective_feed_path(policy)
    if hook is None and hook_env_value is not None:
        hook = trim(hook_env_value) or None
    if hook is None:
        return check("vulnerability_feed_hook", "warn", "vulnerability feed hook is not configured")
    return check("vulnerability_feed_hook", "pass", "vulnerability feed hook is configured", {"hook": hook})


def _feed_check(
    feed_path: str | None, feed: VulnFeed | None, payload_sha256: str, module_digests: Mapping[str, str]
) -> AuditCheck:
    if feed_path is None or feed is None:
        return check("vulnerability_feed", "skipped", "no vulnerability feed configured")
    subjects = [("payload", payload_sha256), *sorted(module_digests.items())]
    matches: list[dict[str, Any]] = []
    for subject, digest in subjects:
        for entry in feed.matches(digest):
            match: dict[str, Any] = {"subject": subject, "sha256": entry.sha256}
            if entry.id is not None:
                match["id"] = entry.id
            if entry.reason is not None:
                match["reason"] = entry.reason
            matches.append(match)
    if matches:
        k = len(matches)
        return check(
            "vulnerability_feed",
            "fail",
            f"artifact matches {k} vulnerability feed {'entry' if k == 1 else 'entries'}",
            {"feed": feed_path, "matches": matches},
        )
    return check(
        "vulnerability_feed",
        "pass",
        "artifact matches no vulnerability feed entry",
        {"feed": feed_path, "entries": len(feed.entries)},
    )
