"""The security audit (artifact-format.md §19.3): one test per check id, both outcomes.

Every case is a real signed artifact (``build_artifact``, then ``inspect_artifact``) whose
module facts come from the real wasmtime inspector on WAT compiled to binary.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from skill_ledger.adapters.audit.inspector import inspect_module, inspect_modules
from skill_ledger.adapters.audit.schema_facts import schema_facts
from skill_ledger.domain.artifact import InspectResult, build_artifact, inspect_artifact, sha256_hex
from skill_ledger.domain.audit import (
    AuditCheck,
    AuditReport,
    ModuleFacts,
    audit_artifact,
    audit_summary,
    resolve_tool_module,
    wasm_header_problem,
)
from skill_ledger.domain.audit_imports import ASSEMBLYSCRIPT, WASI_REACTOR
from skill_ledger.domain.policy import POLICY_KEYS, PolicyValues
from skill_ledger.domain.trust import TrustDecision
from skill_ledger.domain.vulnfeed import VulnFeed, parse_feed

try:
    from tests import wat
except ImportError:  # tests/ is not a package: pytest puts only this directory on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import wat  # type: ignore[no-redef]

SEED = bytes([5]) * 32
SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
PROVENANCE = b'{"builder":{"id":"t"},"subject":[{"name":"m"}]}'
NOW = 1_700_000_000_000
OPERATOR = '[operator]\ndisplay_name = "Echo"\n'


def manifest(
    tools: tuple[tuple[str, str], ...] = (("acme.echo", "echo"),),
    caps: str = "",
    operator: str = OPERATOR,
    manifest_version: int = 2,
) -> str:
    tool_text = "".join(
        f'[[entrypoints.tools]]\nid = "{tid}"\nname = "{name}"\ndescription = "d"\n'
        'input_schema = { type = "object" }\noutput_schema = { type = "object" }\n'
        for tid, name in tools
    )
    return (
        f'manifest_version = {manifest_version}\nskill_id = "acme.echo"\nname = "Echo"\nversion = "1.0.0"\n'
        f'publisher = "acme"\n[entrypoints]\n{tool_text}{caps}\n'
        f'[compat]\nrequired_protocol_major = 1\nmin_palyra_version = "0.1.0"\n{operator}'
    )


def build(modules: dict[str, bytes] | None = None, toml: str | None = None) -> InspectResult:
    modules = {"echo.wasm": wat.wasm(wat.ECHO)} if modules is None else modules
    result = build_artifact(toml or manifest(), sorted(modules.items()), [], SBOM, PROVENANCE, SEED, NOW)
    return inspect_artifact(result.artifact)


def audit(
    inspected: InspectResult,
    policy: PolicyValues | None = None,
    feed: VulnFeed | None = None,
    hook: str | None = None,
) -> AuditReport:
    policy = policy or PolicyValues()
    facts = inspect_modules(inspected.entries)
    return audit_artifact(inspected, TrustDecision.TOFU_NEWLY_PINNED, policy, facts, feed, hook, NOW,
                          schemas=schema_facts(inspected.manifest))


def found(report: AuditReport, check_id: str, module: str | None = None) -> list[AuditCheck]:
    return [
        c
        for c in report.checks
        if c.check_id == check_id and (module is None or (c.details or {}).get("module_path") == module)
    ]


def one(report: AuditReport, check_id: str, module: str | None = None) -> AuditCheck:
    checks = found(report, check_id, module)
    assert len(checks) == 1, [c.check_id for c in report.checks]
    return checks[0]


def module_check_ids(report: AuditReport, path: str) -> list[str]:
    """Checks 12-18 of one module (tool_module_resolution also names a module_path)."""
    return [
        c.check_id
        for c in report.checks
        if c.check_id.startswith("wasm_") and (c.details or {}).get("module_path") == path
    ]


def expect(check: AuditCheck, status: str, severity: str, message: str, details: dict[str, Any] | None) -> None:
    assert (check.status, check.severity, check.message, check.details) == (status, severity, message, details)


ECHO = "modules/echo.wasm"


@pytest.fixture(scope="module")
def plain() -> AuditReport:
    return audit(build())


# --- checks 1-4: always pass -----------------------------------------------------------


@pytest.mark.parametrize(
    ("check_id", "message"),
    [
        ("signature_validity", "signature chain and payload hash verified"),
        ("sbom_presence", "sbom.cdx.json is present and valid"),
        ("provenance_presence", "provenance.json is present and valid"),
        ("manifest_sanity", "manifest passed strict schema and wildcard validation"),
    ],
)
def test_always_passing_checks(plain: AuditReport, check_id: str, message: str) -> None:
    expect(one(plain, check_id), "pass", "info", message, None)


# --- check 5: manifest_warning:{code} --------------------------------------------------


def test_manifest_warning_checks() -> None:
    report = audit(build(toml=manifest(manifest_version=1, operator="")))
    warnings = [c for c in report.checks if c.check_id.startswith("manifest_warning:")]
    assert [c.check_id for c in warnings] == [
        "manifest_warning:legacy_manifest_version",
        "manifest_warning:missing_operator_metadata",
    ]
    expect(
        warnings[0],
        "warn",
        "warning",
        "manifest_version 1 is still supported for compatibility, but 2 is now recommended",
        {"code": "legacy_manifest_version", "severity": "warning"},
    )
    assert report.passed and report.warning_checks()[:2] == [c.check_id for c in warnings]
    assert [w.code for w in report.manifest_warnings] == ["legacy_manifest_version", "missing_operator_metadata"]
    # they come right after manifest_sanity
    ids = [c.check_id for c in report.checks]
    assert ids[3:6] == ["manifest_sanity", *[c.check_id for c in warnings]]

    secretish = OPERATOR + '[operator.config.properties.api_token]\ntype = "string"\n'
    report = audit(build(toml=manifest(operator=secretish)))
    expect(
        one(report, "manifest_warning:operator_config_redaction_recommended"),
        "warn",
        "warning",
        "operator.config property 'api_token' looks secret-like but is not marked redacted",
        {"code": "operator_config_redaction_recommended", "severity": "warning"},
    )


def test_no_manifest_warning_checks_for_a_clean_manifest(plain: AuditReport) -> None:
    assert not [c for c in plain.checks if c.check_id.startswith("manifest_warning:")]
    assert plain.manifest_warnings == ()


# --- checks 6-8: declared scopes --------------------------------------------------------


def test_manifest_filesystem_scopes(plain: AuditReport) -> None:
    caps = '[capabilities.filesystem]\nread_roots = ["data"]\nwrite_roots = ["out", "tmp/x"]\n'
    report = audit(build(toml=manifest(caps=caps)))
    expect(
        one(report, "manifest_filesystem_scopes"),
        "pass",
        "info",
        "manifest declares 1 filesystem read root(s) and 2 write root(s)",
        {"read_roots": ["data"], "write_roots": ["out", "tmp/x"]},
    )
    expect(
        one(plain, "manifest_filesystem_scopes"),
        "pass",
        "info",
        "manifest declares 0 filesystem read root(s) and 0 write root(s)",
        {"read_roots": [], "write_roots": []},
    )


def test_manifest_http_egress_scopes() -> None:
    caps = '[capabilities]\nhttp_egress_allowlist = ["api.example.com", "Example.org"]\n'
    report = audit(build(toml=manifest(caps=caps)))
    expect(
        one(report, "manifest_http_egress_scopes"),
        "pass",
        "info",
        "manifest declares 2 http egress host(s)",
        {"hosts": ["api.example.com", "Example.org"]},
    )


def test_manifest_secret_scopes() -> None:
    caps = (
        '[[capabilities.secrets]]\nscope = " skill:acme.echo"\nkey_names = ["token"]\n'
        '[[capabilities.secrets]]\nscope = "global"\nkey_names = ["a", "b"]\n'
    )
    report = audit(build(toml=manifest(caps=caps)))
    expect(
        one(report, "manifest_secret_scopes"),
        "pass",
        "info",
        "manifest declares 2 secret scope(s)",
        {"scopes": [" skill:acme.echo", "global"]},  # raw strings
    )


# --- check 9: forbidden_device_capabilities --------------------------------------------


DEVICE = '[capabilities]\ndevice_capabilities = ["camera"]\nnode_capabilities = ["gpu"]\n'


def test_forbidden_device_capabilities() -> None:
    inspected = build(toml=manifest(caps=DEVICE))
    report = audit(inspected)
    expect(
        one(report, "forbidden_device_capabilities"),
        "fail",
        "error",
        "manifest declares device capabilities, which are not grantable by the sandboxed plugin runtime",
        {"device_capabilities": ["camera"]},
    )
    assert not report.passed and report.should_quarantine
    allowed = audit(inspected, PolicyValues(allow_device_capabilities=True))
    expect(
        one(allowed, "forbidden_device_capabilities"),
        "pass",
        "info",
        "manifest does not declare forbidden device capabilities",
        {"device_capabilities": ["camera"], "allow_device_capabilities": True},
    )
    assert allowed.passed


def test_node_capabilities_alone_are_not_forbidden() -> None:
    report = audit(build(toml=manifest(caps='[capabilities]\nnode_capabilities = ["gpu"]\n')))
    expect(
        one(report, "forbidden_device_capabilities"),
        "pass",
        "info",
        "manifest does not declare forbidden device capabilities",
        {"device_capabilities": [], "allow_device_capabilities": False},
    )


# --- check 10: forbidden_wildcard_capabilities -----------------------------------------


def test_forbidden_wildcard_capabilities(plain: AuditReport) -> None:
    caps = "[capabilities.wildcard_opt_in]\nnode = true\nfilesystem = true\nsecrets = true\n"
    inspected = build(toml=manifest(caps=caps))  # opt-in without any actual '*'
    expect(
        one(audit(inspected), "forbidden_wildcard_capabilities"),
        "fail",
        "error",
        "manifest enables wildcard capabilities, which require an explicit audit policy override",
        {"wildcard_opt_ins": ["filesystem", "secrets", "node"]},
    )
    expect(
        one(audit(inspected, PolicyValues(allow_wildcard_capabilities=True)), "forbidden_wildcard_capabilities"),
        "pass",
        "info",
        "manifest wildcard capability posture is allowed by audit policy",
        {"wildcard_opt_ins": ["filesystem", "secrets", "node"], "allow_wildcard_capabilities": True},
    )
    expect(
        one(plain, "forbidden_wildcard_capabilities"),
        "pass",
        "info",
        "manifest wildcard capability posture is allowed by audit policy",
        {"wildcard_opt_ins": [], "allow_wildcard_capabilities": False},
    )


# --- check 11: wasm_module_presence -----------------------------------------------------


def test_wasm_module_presence() -> None:
    inspected = build({"b.wasm": wat.wasm(wat.ECHO), "a.wasm": wat.wasm(wat.PALYRA_V1)})
    report = audit(inspected)
    expect(
        one(report, "wasm_module_presence"),
        "pass",
        "info",
        "artifact includes 2 wasm module(s)",
        {"modules": ["modules/a.wasm", "modules/b.wasm"]},
    )
    # unreachable after verify; forged here by dropping the module entries
    without = msgspec.structs.replace(
        inspected, entries={p: d for p, d in inspected.entries.items() if not p.startswith("modules/")}
    )
    report = audit(without)
    expect(
        one(report, "wasm_module_presence"),
        "fail",
        "error",
        "artifact does not contain any modules/*.wasm entries",
        None,
    )
    assert "artifact does not contain any modules/*.wasm entries" in report.quarantine_reasons


# --- checks 12 and 14: wasm_module_size_limit -------------------------------------------


def test_wasm_module_size_limit() -> None:
    big = wat.wasm(wat.many_exports(40))
    inspected = build({"big.wasm": big, "echo.wasm": wat.wasm(wat.ECHO)})
    limit = len(big) - 1
    report = audit(inspected, PolicyValues(max_module_bytes=limit))
    expect(
        one(report, "wasm_module_size_limit", "modules/big.wasm"),
        "fail",
        "error",
        f"module 'modules/big.wasm' exceeds max_module_bytes ({len(big)} > {limit})",
        {"module_path": "modules/big.wasm", "module_bytes": len(big), "max_module_bytes": limit},
    )
    # the remaining checks are skipped for that module only
    assert module_check_ids(report, "modules/big.wasm") == ["wasm_module_size_limit"]
    size = len(inspected.entries[ECHO])
    expect(
        one(report, "wasm_module_size_limit", ECHO),
        "pass",
        "info",
        f"module '{ECHO}' is within max_module_bytes ({size} <= {limit})",
        {"module_path": ECHO, "module_bytes": size, "max_module_bytes": limit},
    )
    # exactly at the limit passes
    at_limit = audit(inspected, PolicyValues(max_module_bytes=len(big)))
    assert one(at_limit, "wasm_module_size_limit", "modules/big.wasm").status == "pass"


def test_size_pass_comes_after_validation() -> None:
    assert module_check_ids(audit(build()), ECHO) == [
        "wasm_module_size_limit",
        "wasm_exported_function_limit",
        "wasm_wasi_filesystem_imports",
        "wasm_import_allowlist",
        "wasm_memory_declared_limit",
        "wasm_function_count_limit",
        "wasm_function_body_size_limit",
        "wasm_code_size_limit",
    ]


# --- check 13: wasm_module_validation ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (wat.ECHO.encode(), "WebAssembly text format (WAT) is not accepted; package the binary module"),
        (b"\x7fELF\x02\x01\x01\x00garbage", "not a binary WebAssembly module (missing \\0asm header)"),
        (wat.GARBAGE, "malformed section id (at offset 0x8)"),
        (wat.COMPONENT_HEADER, "a WebAssembly component-model binary is not a core module"),
        (
            wat.wasm(wat.TYPE_INVALID),
            "type mismatch: expected i32 but nothing on stack (at offset 0x22)",
        ),
    ],
    ids=["wat-text", "garbage", "garbage-after-header", "component", "type-invalid"],
)
def test_wasm_module_validation(data: bytes, reason: str) -> None:
    report = audit(build({"bad.wasm": data, "echo.wasm": wat.wasm(wat.ECHO)}))
    check = one(report, "wasm_module_validation")
    expect(
        check,
        "fail",
        "error",
        f"module 'modules/bad.wasm' failed validation: {reason}",
        {"module_path": "modules/bad.wasm"},
    )
    assert module_check_ids(report, "modules/bad.wasm") == ["wasm_module_validation"]  # no size pass, nothing after
    assert check.message in report.quarantine_reasons and not report.passed
    assert not found(report, "wasm_module_validation", ECHO)  # no pass entry is ever emitted


def test_validation_checks_the_header_itself_whatever_the_facts_say() -> None:
    inspected = build({"m.wasm": b"(module)"})
    path = "modules/m.wasm"
    forged = ModuleFacts(path=path, size=8, sha256=sha256_hex(b"(module)"), valid=True)
    report = audit_artifact(inspected, "allowlisted", PolicyValues(), {path: forged}, None, None, NOW,
                            schemas=schema_facts(inspected.manifest))
    assert one(report, "wasm_module_validation").status == "fail"
    assert wasm_header_problem(b"\x00asm\x01\x00\x00\x00") is None
    assert wasm_header_problem(b"\x00asm\x02\x00\x00\x00") == (
        "unsupported WebAssembly binary version 02000000 (expected 01000000)"
    )


# --- check 15: wasm_exported_function_limit ---------------------------------------------


def test_wasm_exported_function_limit() -> None:
    inspected = build({"many.wasm": wat.wasm(wat.many_exports(5))}, toml=manifest())
    p = "modules/many.wasm"
    report = audit(inspected, PolicyValues(max_exported_functions=4))
    expect(
        one(report, "wasm_exported_function_limit"),
        "fail",
        "error",
        f"module '{p}' exports too many functions (5 > 4)",
        {"module_path": p, "exported_functions": 5, "max_exported_functions": 4},
    )
    expect(
        one(audit(inspected, PolicyValues(max_exported_functions=5)), "wasm_exported_function_limit"),
        "pass",
        "info",
        f"module '{p}' export function count is within limit (5 <= 5)",
        {"module_path": p, "exported_functions": 5, "max_exported_functions": 5},
    )


def test_exported_function_count_ignores_other_export_kinds(plain: AuditReport) -> None:
    # ECHO exports memory, alloc and echo: two functions
    assert one(plain, "wasm_exported_function_limit").details["exported_functions"] == 2  # type: ignore[index]


# --- check 16: wasm_wasi_filesystem_imports ---------------------------------------------


def test_wasm_wasi_filesystem_imports() -> None:
    modules = {"fs.wasm": wat.wasm(wat.WASI_FILESYSTEM)}
    p = "modules/fs.wasm"
    report = audit(build(modules))
    expect(
        one(report, "wasm_wasi_filesystem_imports"),
        "fail",
        "error",
        f"module '{p}' imports wasi:filesystem without declared filesystem capability",
        {"module_path": p, "filesystem_declared": False},
    )
    declared = audit(build(modules, manifest(caps='[capabilities.filesystem]\nwrite_roots = ["out"]\n')))
    expect(
        one(declared, "wasm_wasi_filesystem_imports"),
        "pass",
        "info",
        f"module '{p}' does not violate wasi:filesystem policy",
        {"module_path": p, "filesystem_declared": True},
    )


def test_wasi_preview1_is_not_a_filesystem_import() -> None:
    report = audit(build({"cmd.wasm": wat.wasm(wat.WASI_REACTOR)}))
    assert one(report, "wasm_wasi_filesystem_imports").status == "pass"


# --- check 17: wasm_import_allowlist -----------------------------------------------------


def test_wasm_import_allowlist_refuses_outside_namespaces() -> None:
    p = "modules/echo.wasm"
    report = audit(build({"echo.wasm": wat.wasm(wat.OUTSIDE_ALLOWLIST)}))
    expect(
        one(report, "wasm_import_allowlist"),
        "fail",
        "error",
        f"module '{p}' imports from namespaces outside the allowlist: Env (x); env (abort). {ASSEMBLYSCRIPT}",
        {
            "module_path": p,
            "import_modules": ["Env", "env", "skills:host/v1"],
            "disallowed_import_modules": ["Env", "env"],
            "disallowed_imports": ["Env::x", "env::abort"],  # env.abort only as (i32, i32, i32, i32) -> ()
            "disallowed_import_count": 2,
            "filesystem_declared": False,
            "wasi_command": False,
            "hints": [ASSEMBLYSCRIPT],
        },
    )


def test_wasm_import_allowlist_passes_allowed_and_import_free_modules() -> None:
    report = audit(build({"a.wasm": wat.wasm(wat.PALYRA_V1), "b.wasm": wat.EMPTY}))
    expect(
        one(report, "wasm_import_allowlist", "modules/a.wasm"),
        "pass",
        "info",
        "module 'modules/a.wasm' imports only allowed namespaces",
        {
            "module_path": "modules/a.wasm",
            "import_modules": ["palyra:plugins/host-capabilities@0.1.0"],
            "disallowed_import_modules": [],
            "disallowed_imports": [],
            "disallowed_import_count": 0,
            "filesystem_declared": False,
            "wasi_command": False,
            "hints": [],
        },
    )
    assert one(report, "wasm_import_allowlist", "modules/b.wasm").details["import_modules"] == []  # type: ignore[index]


def test_wasm_import_allowlist_uses_the_policy_list_exactly() -> None:
    inspected = build({"echo.wasm": wat.wasm(wat.OUTSIDE_ALLOWLIST)})
    policy = PolicyValues(allowed_import_modules=("env", "Env", "skills:host/v1"))
    assert one(audit(inspected, policy), "wasm_import_allowlist").status == "pass"
    # byte-for-byte: no case folding, no trimming
    policy = PolicyValues(allowed_import_modules=("ENV", " env", "Env", "skills:host/v1"))
    details = one(audit(inspected, policy), "wasm_import_allowlist").details or {}
    assert details["disallowed_import_modules"] == ["env"]
    # an empty allowlist refuses even the project's own host namespace
    empty = audit(build(), PolicyValues(allowed_import_modules=()))
    details = one(empty, "wasm_import_allowlist").details or {}
    assert details["disallowed_import_modules"] == ["skills:host/v1"]


def test_wasi_preview1_allowed_for_a_command() -> None:
    p = "modules/cmd.wasm"
    report = audit(build({"cmd.wasm": wat.wasm(wat.WASI_COMMAND)}))
    expect(
        one(report, "wasm_import_allowlist"),
        "pass",
        "info",
        f"module '{p}' imports only allowed namespaces",
        {
            "module_path": p,
            "import_modules": ["wasi_snapshot_preview1"],
            "disallowed_import_modules": [],
            "disallowed_imports": [],
            "disallowed_import_count": 0,
            "filesystem_declared": False,
            "wasi_command": True,
            "hints": [],
        },
    )


def test_wasi_preview1_allowed_when_filesystem_declared() -> None:
    caps = '[capabilities.filesystem]\nread_roots = ["data"]\n'
    report = audit(build({"r.wasm": wat.wasm(wat.WASI_REACTOR)}, manifest(caps=caps)))
    check = one(report, "wasm_import_allowlist")
    assert check.status == "pass"
    assert check.details == {
        "module_path": "modules/r.wasm",
        "import_modules": ["wasi_snapshot_preview1"],
        "disallowed_import_modules": [],
        "disallowed_imports": [],
        "disallowed_import_count": 0,
        "filesystem_declared": True,
        "wasi_command": False,
        "hints": [],
    }
    # accepted by the allowlist (§19.3); whether the tool can run is tool_module_abi's question
    # (test_audit_additions: a json-v1 reactor importing WASI cannot)
    assert one(report, "tool_module_abi").status == "fail"


def test_wasi_preview1_refused_otherwise() -> None:
    report = audit(build({"r.wasm": wat.wasm(wat.WASI_REACTOR)}))
    expect(
        one(report, "wasm_import_allowlist"),
        "fail",
        "error",
        "module 'modules/r.wasm' imports from namespaces outside the allowlist: wasi_snapshot_preview1 (fd_write). "
        + WASI_REACTOR,
        {
            "module_path": "modules/r.wasm",
            "import_modules": ["wasi_snapshot_preview1"],
            "disallowed_import_modules": ["wasi_snapshot_preview1"],
            "disallowed_imports": ["wasi_snapshot_preview1::fd_write"],
            "disallowed_import_count": 1,
            "filesystem_declared": False,
            "wasi_command": False,
            "hints": [WASI_REACTOR],
        },
    )


# --- check 18: wasm_memory_declared_limit ------------------------------------------------


def test_wasm_memory_declared_limit_sums_imported_and_defined_memory() -> None:
    quota = 4 * 65536
    caps = f"[capabilities.quotas]\nmax_memory_bytes = {quota}\n"
    p = "modules/echo.wasm"
    # 2 imported + 3 defined (not exported) pages = 5 pages > 4
    over = audit(build({"echo.wasm": wat.wasm(wat.memories(2, 3))}, manifest(caps=caps)))
    expect(
        one(over, "wasm_memory_declared_limit"),
        "fail",
        "error",
        f"module '{p}' declares {5 * 65536} bytes of initial memory, above max_memory_bytes ({quota})",
        {"module_path": p, "declared_min_memory_bytes": 5 * 65536, "max_memory_bytes": quota},
    )
    within = audit(build({"echo.wasm": wat.wasm(wat.memories(1, 3, exported=True))}, manifest(caps=caps)))
    expect(
        one(within, "wasm_memory_declared_limit"),
        "pass",
        "info",
        f"module '{p}' initial memory is within max_memory_bytes ({4 * 65536} <= {quota})",
        {"module_path": p, "declared_min_memory_bytes": 4 * 65536, "max_memory_bytes": quota},
    )


def test_memory_only_imported_or_only_defined() -> None:
    caps = "[capabilities.quotas]\nmax_memory_bytes = 65536\n"
    imported = audit(build({"echo.wasm": wat.wasm(wat.memories(2, None))}, manifest(caps=caps)))
    assert one(imported, "wasm_memory_declared_limit").status == "fail"
    defined = audit(build({"echo.wasm": wat.wasm(wat.memories(None, 2))}, manifest(caps=caps)))
    assert one(defined, "wasm_memory_declared_limit").status == "fail"
    none = audit(build({"echo.wasm": wat.EMPTY}, manifest(caps=caps)))
    assert one(none, "wasm_memory_declared_limit").details["declared_min_memory_bytes"] == 0  # type: ignore[index]


# --- tool_module_resolution (runtime.md) -------------------------------------------------


TWO_TOOLS = (("acme.echo", "echo"), ("acme.shout", "shout"))


def test_tool_module_resolution_by_export() -> None:
    modules = {"a.wasm": wat.wasm(wat.json_tool("echo")), "b.wasm": wat.wasm(wat.json_tool("shout"))}
    report = audit(build(modules, manifest(tools=TWO_TOOLS)))
    checks = found(report, "tool_module_resolution")
    expect(
        checks[0],
        "pass",
        "info",
        "tool 'acme.echo' resolves to module 'modules/a.wasm' (it exports the tool's name)",
        {"tool_id": "acme.echo", "module_path": "modules/a.wasm"},
    )
    expect(
        checks[1],
        "pass",
        "info",
        "tool 'acme.shout' resolves to module 'modules/b.wasm' (it exports the tool's name)",
        {"tool_id": "acme.shout", "module_path": "modules/b.wasm"},
    )
    ids = [c.check_id for c in report.checks]
    last_module_check = max(i for i, c in enumerate(report.checks) if c.check_id.startswith("wasm_"))
    per_tool = ["tool_module_resolution", "tool_module_abi", "tool_schema_references", "tool_schema_compiles"]
    assert ids[last_module_check + 1 : last_module_check + 9] == per_tool * 2
    assert ids[last_module_check + 9] == "vulnerability_feed_hook"


def test_tool_module_resolution_only_module() -> None:
    report = audit(build({"cmd.wasm": wat.wasm(wat.WASI_COMMAND)}, manifest(tools=TWO_TOOLS)))
    assert [c.details for c in found(report, "tool_module_resolution")] == [
        {"tool_id": "acme.echo", "module_path": "modules/cmd.wasm"},
        {"tool_id": "acme.shout", "module_path": "modules/cmd.wasm"},
    ]


def test_tool_module_resolution_default_module_path() -> None:
    operator = OPERATOR + '[operator.plugin]\ndefault_module_path = "modules/main.wasm"\n'
    modules = {"main.wasm": wat.wasm(wat.WASI_COMMAND), "echo.wasm": wat.wasm(wat.ECHO)}
    inspected = build(modules, manifest(tools=TWO_TOOLS, operator=operator))
    report = audit(inspected)
    checks = found(report, "tool_module_resolution")
    assert [c.details for c in checks] == [
        {"tool_id": "acme.echo", "module_path": "modules/echo.wasm"},  # the export wins
        {"tool_id": "acme.shout", "module_path": "modules/main.wasm"},
    ]
    facts = inspect_modules(inspected.entries)
    r = resolve_tool_module(inspected.manifest, facts, inspected.manifest.entrypoints.tools[1])
    assert (r.ok, r.module_path, r.rule, r.reason) == (True, "modules/main.wasm", "default_module_path", None)


def test_tool_module_resolution_fails_when_no_module_can_serve() -> None:
    modules = {"a.wasm": wat.wasm(wat.json_tool("echo")), "b.wasm": wat.wasm(wat.WASI_COMMAND)}
    report = audit(build(modules, manifest(tools=TWO_TOOLS)))
    check = found(report, "tool_module_resolution")[1]
    expect(
        check,
        "fail",
        "error",
        "tool 'acme.shout' cannot be resolved to exactly one module: no module exports a function named 'shout', "
        "the artifact has 2 modules and operator.plugin.default_module_path is not set",
        {"tool_id": "acme.shout", "candidates": []},
    )
    assert report.quarantine_reasons == (check.message,)


def test_tool_module_resolution_fails_on_a_missing_default_module() -> None:
    operator = OPERATOR + '[operator.plugin]\ndefault_module_path = "modules/gone.wasm"\n'
    modules = {"a.wasm": wat.wasm(wat.json_tool("echo")), "b.wasm": wat.wasm(wat.WASI_COMMAND)}
    report = audit(build(modules, manifest(tools=TWO_TOOLS, operator=operator)))
    expect(
        found(report, "tool_module_resolution")[1],
        "fail",
        "error",
        "tool 'acme.shout' cannot be resolved to exactly one module: no module exports a function named 'shout' "
        "and operator.plugin.default_module_path 'modules/gone.wasm' is not a module of the artifact",
        {"tool_id": "acme.shout", "candidates": []},
    )


def test_tool_module_resolution_fails_when_several_modules_export_the_name() -> None:
    operator = OPERATOR + '[operator.plugin]\ndefault_module_path = "modules/a.wasm"\n'
    modules = {"a.wasm": wat.wasm(wat.json_tool("echo")), "b.wasm": wat.wasm(wat.json_tool("echo", "other"))}
    report = audit(build(modules, manifest(operator=operator)))
    expect(
        one(report, "tool_module_resolution"),
        "fail",
        "error",
        "tool 'acme.echo' cannot be resolved to exactly one module: several modules export a function named "
        "'echo': modules/a.wasm, modules/b.wasm",
        {"tool_id": "acme.echo", "candidates": ["modules/a.wasm", "modules/b.wasm"]},
    )


# --- check 19: vulnerability_feed_hook ----------------------------------------------------


def test_vulnerability_feed_hook(plain: AuditReport) -> None:
    expect(
        one(plain, "vulnerability_feed_hook"), "warn", "warning", "vulnerability feed hook is not configured", None
    )
    assert plain.passed  # a warning never fails
    inspected = build()
    expect(
        one(audit(inspected, hook="  https://feed.example/hook \n"), "vulnerability_feed_hook"),
        "pass",
        "info",
        "vulnerability feed hook is configured",
        {"hook": "https://feed.example/hook"},
    )
    assert one(audit(inspected, hook=" \t"), "vulnerability_feed_hook").status == "warn"
    feed = parse_feed(b'{"schema_version": 1, "entries": []}', "/feeds/v.json")
    policy = PolicyValues(vulnerability_feed_path=" /feeds/v.json ")
    report = audit(inspected, policy, feed=feed, hook="https://feed.example/hook")
    assert one(report, "vulnerability_feed_hook").details == {"hook": "/feeds/v.json"}  # the policy path preferred
    # a blank policy path is not configured
    blank = audit(inspected, PolicyValues(vulnerability_feed_path="  "))
    assert one(blank, "vulnerability_feed_hook").status == "warn"


# --- check 20: vulnerability_feed ----------------------------------------------------------


def feed_of(*entries: str) -> bytes:
    return ('{"schema_version": 1, "entries": [' + ", ".join(entries) + "]}").encode()


def test_vulnerability_feed_skipped_without_a_path(plain: AuditReport) -> None:
    expect(one(plain, "vulnerability_feed"), "skipped", "info", "no vulnerability feed configured", None)
    assert plain.checks[-1].check_id == "vulnerability_feed"


def test_vulnerability_feed_pass() -> None:
    feed = parse_feed(feed_of('{"sha256": "' + "ab" * 32 + '"}'), "/f.json")
    report = audit(build(), PolicyValues(vulnerability_feed_path="/f.json"), feed)
    expect(
        one(report, "vulnerability_feed"),
        "pass",
        "info",
        "artifact matches no vulnerability feed entry",
        {"feed": "/f.json", "entries": 1},
    )


def test_vulnerability_feed_module_match() -> None:
    bad = wat.wasm(wat.ECHO)
    inspected = build({"echo.wasm": bad})
    digest = sha256_hex(bad).upper()  # compared after ascii_lower
    feed = parse_feed(feed_of(f'{{"sha256": "{digest}", "id": "GHSA-1234", "reason": "leaks"}}'), "/f.json")
    report = audit(inspected, PolicyValues(vulnerability_feed_path="/f.json"), feed)
    check = one(report, "vulnerability_feed")
    expect(
        check,
        "fail",
        "error",
        "artifact matches 1 vulnerability feed entry",
        {
            "feed": "/f.json",
            "matches": [{"subject": ECHO, "sha256": sha256_hex(bad), "id": "GHSA-1234", "reason": "leaks"}],
        },
    )
    assert report.quarantine_reasons == ("artifact matches 1 vulnerability feed entry",)


def test_vulnerability_feed_payload_match_and_invalid_modules_count() -> None:
    inspected = build({"bad.wasm": b"(module)", "echo.wasm": wat.wasm(wat.ECHO)})
    entries = [
        f'{{"sha256": "{inspected.payload_sha256}", "id": "ADV-1"}}',
        f'{{"sha256": "{sha256_hex(b"(module)")}"}}',  # a module that failed check 13 is still compared
    ]
    feed = parse_feed(feed_of(*entries), "/f.json")
    report = audit(inspected, PolicyValues(vulnerability_feed_path="/f.json"), feed)
    check = one(report, "vulnerability_feed")
    assert check.message == "artifact matches 2 vulnerability feed entries"
    assert check.details == {
        "feed": "/f.json",
        "matches": [
            {"subject": "payload", "sha256": inspected.payload_sha256, "id": "ADV-1"},
            {"subject": "modules/bad.wasm", "sha256": sha256_hex(b"(module)")},
        ],
    }
    assert report.quarantine_reasons[-1] == "artifact matches 2 vulnerability feed entries"


def test_a_configured_feed_must_be_loaded() -> None:
    with pytest.raises(ValueError):
        audit(build(), PolicyValues(vulnerability_feed_path="/f.json"), None)


# --- the report (§19.6) -----------------------------------------------------------------------


def test_report_member_order_and_json(plain: AuditReport) -> None:
    d = plain.to_dict()
    assert list(d) == [
        "skill_id",
        "version",
        "publisher",
        "accepted",
        "passed",
        "should_quarantine",
        "trust_decision",
        "payload_sha256",
        "generated_at_unix_ms",
        "policy",
        "manifest_warnings",
        "checks",
        "quarantine_reasons",
        "vulnerability_scan",
    ]
    assert (d["skill_id"], d["version"], d["publisher"], d["accepted"]) == ("acme.echo", "1.0.0", "acme", True)
    assert (d["passed"], d["should_quarantine"], d["trust_decision"]) == (True, False, "tofu_newly_pinned")
    assert d["generated_at_unix_ms"] == NOW
    assert list(d["policy"])[:6] == [  # §19.1's members first, then this project's additions
        "max_module_bytes",
        "max_exported_functions",
        "allow_device_capabilities",
        "allow_wildcard_capabilities",
        "allowed_import_modules",
        "vulnerability_feed_path",
    ]
    assert list(d["policy"]) == list(POLICY_KEYS)
    assert d["policy"]["allowed_import_modules"] == ["palyra:plugins/host-capabilities@0.1.0", "skills:host/v1"]
    first = d["checks"][0]
    assert first == {
        "check_id": "signature_validity",
        "status": "pass",
        "severity": "info",
        "message": "signature chain and payload hash verified",
    }  # details omitted when None
    assert list(d["checks"][5]) == ["check_id", "status", "severity", "message", "details"]
    assert d["quarantine_reasons"] == []
    assert d["vulnerability_scan"] == {
        "check_id": "vulnerability_feed_hook",
        "status": "warn",
        "severity": "warning",
        "message": "vulnerability feed hook is not configured",
    }
    assert msgspec.convert(d, AuditReport) == plain  # round-trips (event payloads)


def test_check_order_follows_the_table(plain: AuditReport) -> None:
    assert [c.check_id for c in plain.checks] == [
        "signature_validity",
        "sbom_presence",
        "provenance_presence",
        "manifest_sanity",
        "manifest_filesystem_scopes",
        "manifest_http_egress_scopes",
        "manifest_secret_scopes",
        "secret_scope_ownership",
        "forbidden_device_capabilities",
        "forbidden_wildcard_capabilities",
        "quota_within_policy",
        "wasm_module_presence",
        "wasm_module_size_limit",
        "wasm_exported_function_limit",
        "wasm_wasi_filesystem_imports",
        "wasm_import_allowlist",
        "wasm_memory_declared_limit",
        "wasm_function_count_limit",
        "wasm_function_body_size_limit",
        "wasm_code_size_limit",
        "tool_module_resolution",
        "tool_module_abi",
        "tool_schema_references",
        "tool_schema_compiles",
        "vulnerability_feed_hook",
        "vulnerability_feed",
    ]


def test_quarantine_reasons_are_fail_messages_in_order() -> None:
    caps = DEVICE + "[capabilities.wildcard_opt_in]\nhttp_egress = true\n"
    inspected = build({"a.wasm": b"(module)", "b.wasm": wat.wasm(wat.OUTSIDE_ALLOWLIST)}, manifest(caps=caps))
    report = audit(inspected, hook="x")
    fails = [c for c in report.checks if c.status == "fail"]
    assert report.quarantine_reasons == tuple(c.message for c in fails)
    assert [c.check_id for c in fails] == [
        "forbidden_device_capabilities",
        "forbidden_wildcard_capabilities",
        "wasm_module_validation",
        "wasm_import_allowlist",
        "tool_module_abi",  # b.wasm, the only module exporting "echo", has no memory and no alloc
    ]
    assert all(c.severity == "error" for c in fails)
    assert report.failed_checks() == [c.check_id for c in fails]
    assert report.warning_checks() == []
    assert audit_summary(report) == {"passed": False, "failed_checks": report.failed_checks(), "warning_checks": []}
    assert (report.passed, report.should_quarantine) == (False, True)
    assert report.vulnerability_scan == one(report, "vulnerability_feed_hook")


def test_failed_check_ids_are_listed_once() -> None:
    inspected = build({"a.wasm": b"(module)", "b.wasm": wat.GARBAGE})
    report = audit(inspected)
    assert len(found(report, "wasm_module_validation")) == 2
    assert report.failed_checks() == ["wasm_module_validation", "tool_module_resolution"]


def test_facts_must_match_the_entries() -> None:
    inspected = build()
    with pytest.raises(ValueError, match="no module facts"):
        audit_artifact(inspected, "allowlisted", PolicyValues(), {}, None, None, NOW,
                       schemas=schema_facts(inspected.manifest))
    stale = inspect_module(ECHO, wat.wasm(wat.PALYRA_V1))
    with pytest.raises(ValueError, match="other bytes"):
        audit_artifact(inspected, "allowlisted", PolicyValues(), {ECHO: stale}, None, None, NOW,
                       schemas=schema_facts(inspected.manifest))
