"""The audit checks this project adds for hostile publishers and real toolchains (issues 10, 17):
secret scopes, quotas against the policy's caps, compile bombs, each tool's ABI and schemas, and
what the import allowlist tells a user. Each regression test is named after the attack.

Every case is a real signed artifact whose module facts come from the real inspector and whose
schema facts come from the real schema compiler, as in ``test_audit.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from skill_ledger.adapters.audit.inspector import inspect_modules
from skill_ledger.adapters.audit.schema_facts import REGEX_NOTE, schema_facts
from skill_ledger.domain.artifact import InspectResult, build_artifact, inspect_artifact
from skill_ledger.domain.audit import AuditCheck, AuditReport, audit_artifact
from skill_ledger.domain.audit_imports import (
    ASSEMBLYSCRIPT,
    EMSCRIPTEN,
    ENV_GENERIC,
    GO_JS,
    WASI_REACTOR,
    WASI_UNSTABLE,
    WASM_BINDGEN,
)
from skill_ledger.domain.audit_tools import SchemaFacts
from skill_ledger.domain.constants import (
    POLICY_DEFAULT_MAX_CODE_BYTES,
    POLICY_DEFAULT_MAX_FUNCTION_BODY_BYTES,
    POLICY_DEFAULT_MAX_FUNCTIONS,
)
from skill_ledger.domain.policy import PolicyValues

try:
    from tests import wat
except ImportError:  # tests/ is not a package: pytest puts only this directory on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import wat  # type: ignore[no-redef]

SEED = bytes([6]) * 32
SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
PROVENANCE = b'{"builder":{"id":"t"},"subject":[{"name":"m"}]}'
NOW = 1_700_000_000_000
OBJECT = '{ type = "object" }'


def manifest(skill_id: str = "acme.echo", *, tools: tuple[tuple[str, str], ...] = (("acme.echo", "echo"),),
             caps: str = "", input_schema: str = OBJECT, output_schema: str = OBJECT, operator: str = "") -> str:
    tool_text = "".join(
        f'[[entrypoints.tools]]\nid = "{tid}"\nname = "{name}"\ndescription = "d"\n'
        f"input_schema = {input_schema}\noutput_schema = {output_schema}\n"
        for tid, name in tools
    )
    return (
        f'manifest_version = 2\nskill_id = "{skill_id}"\nname = "Echo"\nversion = "1.0.0"\npublisher = "acme"\n'
        f"[entrypoints]\n{tool_text}{caps}\n"
        '[compat]\nrequired_protocol_major = 1\nmin_palyra_version = "0.1.0"\n'
        f'[operator]\ndisplay_name = "Echo"\n{operator}'
    )


def build(modules: dict[str, bytes] | None = None, toml: str | None = None) -> InspectResult:
    modules = {"echo.wasm": wat.wasm(wat.ECHO)} if modules is None else modules
    return inspect_artifact(build_artifact(toml or manifest(), sorted(modules.items()), [], SBOM, PROVENANCE,
                                           SEED, NOW).artifact)


def audit(inspected: InspectResult, policy: PolicyValues | None = None) -> AuditReport:
    return audit_artifact(inspected, "allowlisted", policy or PolicyValues(), inspect_modules(inspected.entries),
                          None, None, NOW, schemas=schema_facts(inspected.manifest))


def one(report: AuditReport, check_id: str) -> AuditCheck:
    found = [c for c in report.checks if c.check_id == check_id]
    assert len(found) == 1, [c.check_id for c in report.checks]
    return found[0]


def ids(report: AuditReport) -> list[str]:
    return [c.check_id for c in report.checks]


# --- secret_scope_ownership ---------------------------------------------------------------


THIEF = '[[capabilities.secrets]]\nscope = "skill:victim.app"\nkey_names = ["api_token"]\n'


def test_thief_declaring_the_victims_skill_scope_fails_the_audit() -> None:
    report = audit(build(toml=manifest("acme.thief", caps=THIEF)))
    check = one(report, "secret_scope_ownership")
    assert (check.status, check.severity) == ("fail", "error")
    assert check.message == (
        "manifest reads secrets of other skills' scopes: skill:victim.app (a skill may use only its own "
        "'skill:acme.thief' scope unless the audit policy sets allow_cross_skill_secrets)")
    assert check.details == {"own_scope": "skill:acme.thief", "foreign_scopes": ["skill:victim.app"],
                             "allow_cross_skill_secrets": False}
    assert report.failed_checks() == ["secret_scope_ownership"] and report.should_quarantine
    assert ids(report).index("secret_scope_ownership") == ids(report).index("manifest_secret_scopes") + 1


def test_cross_skill_secrets_pass_when_the_policy_allows_them() -> None:
    report = audit(build(toml=manifest("acme.thief", caps=THIEF)), PolicyValues(allow_cross_skill_secrets=True))
    check = one(report, "secret_scope_ownership")
    assert check.status == "pass" and report.passed
    assert check.message == ("manifest reads secrets of other skills' scopes (skill:victim.app), allowed by "
                             "allow_cross_skill_secrets")


def test_own_global_principal_and_channel_scopes_pass() -> None:
    caps = "".join(f'[[capabilities.secrets]]\nscope = "{s}"\nkey_names = ["k"]\n'
                   for s in (" skill:acme.echo ", "global", "principal:user:ops", "channel:alerts"))
    check = one(audit(build(toml=manifest(caps=caps))), "secret_scope_ownership")
    assert (check.status, check.message) == ("pass", "manifest uses no other skill's secret scope")
    assert check.details == {"own_scope": "skill:acme.echo", "foreign_scopes": [],
                             "allow_cross_skill_secrets": False}


def test_a_scope_naming_a_skill_whose_id_starts_like_ours_is_foreign() -> None:
    caps = '[[capabilities.secrets]]\nscope = "skill:acme.echo.evil"\nkey_names = ["k"]\n'
    assert one(audit(build(toml=manifest(caps=caps))), "secret_scope_ownership").status == "fail"


# --- quota_within_policy ------------------------------------------------------------------


def quotas(memory: int | None = None, fuel: int | None = None, wall_ms: int | None = None) -> str:
    values = {"max_memory_bytes": memory, "fuel_budget": fuel, "wall_clock_timeout_ms": wall_ms}
    return "[capabilities.quotas]\n" + "".join(f"{k} = {v}\n" for k, v in values.items() if v is not None)


def test_manifest_asking_200_mib_of_memory_fails_the_audit() -> None:
    report = audit(build(toml=manifest(caps=quotas(memory=209_715_200))))
    check = one(report, "quota_within_policy")
    assert (check.status, check.severity) == ("fail", "error")
    assert check.message == ("manifest quotas exceed the audit policy's caps: max_memory_bytes 209715200 > policy "
                             "max_memory_bytes 67108864 (lower the quota, or raise the cap with skills policy set)")
    assert check.details == {
        "quotas": {"wall_clock_timeout_ms": 30000, "fuel_budget": 10000000, "max_memory_bytes": 209715200},
        "caps": {"max_wall_clock_timeout_ms": 30000, "max_fuel_budget": 10000000, "max_memory_bytes": 67108864},
        "exceeded": ["max_memory_bytes"],
    }
    assert report.failed_checks() == ["quota_within_policy"]


def test_manifest_asking_for_more_fuel_and_time_than_the_host_allows_fails_naming_each() -> None:
    check = one(audit(build(toml=manifest(caps=quotas(fuel=10**11, wall_ms=3_600_000)))), "quota_within_policy")
    assert check.status == "fail"
    assert "wall_clock_timeout_ms 3600000 > policy max_wall_clock_timeout_ms 30000" in check.message
    assert "fuel_budget 100000000000 > policy max_fuel_budget 10000000" in check.message
    assert check.details["exceeded"] == ["wall_clock_timeout_ms", "fuel_budget"]  # type: ignore[index]


def test_quotas_at_the_caps_pass_and_raised_caps_admit_more() -> None:
    at_caps = one(audit(build(toml=manifest(caps=quotas(67_108_864, 10_000_000, 30_000)))), "quota_within_policy")
    assert at_caps.status == "pass"
    assert at_caps.message == ("manifest quotas are within the audit policy's caps (wall_clock_timeout_ms 30000 <= "
                               "30000, fuel_budget 10000000 <= 10000000, max_memory_bytes 67108864 <= 67108864)")
    raised = PolicyValues(max_memory_bytes=256 * 1024 * 1024, max_fuel_budget=10**9)
    report = audit(build(toml=manifest(caps=quotas(memory=209_715_200, fuel=10**9))), raised)
    assert one(report, "quota_within_policy").status == "pass" and report.passed


# --- compile bombs ------------------------------------------------------------------------


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _section(section_id: int, body: bytes) -> bytes:
    return bytes([section_id]) + _leb(len(body)) + body


I64_CONST = b"\x42" + b"\xff" * 9 + b"\x00"  # i64.const with a 10-byte LEB128: 11 bytes
V128_CONST = b"\xfd\x0c" + bytes(range(16))  # v128.const: 18 bytes
DROP = b"\x1a"


def bomb_module(instructions: int) -> bytes:
    """A valid json-v1 module (memory, alloc, echo) plus one exported function of ``instructions``
    constant-and-drop instructions: the shape of issue 10's compile bomb (a 2.8 MB module, one
    400k-instruction function), built byte by byte so it costs nothing to make."""
    unit = (I64_CONST + DROP) * 3 + V128_CONST + DROP  # 8 instructions, 55 bytes
    body = b"\x00" + unit * (instructions // 8) + b"\x0b"
    types = _section(1, b"\x03" + b"\x60\x00\x00" + b"\x60\x01\x7f\x01\x7f" + b"\x60\x02\x7f\x7f\x01\x7e")
    functions = _section(3, b"\x03\x00\x01\x02")
    memory = _section(5, b"\x01\x00\x01")
    exports = _section(7, b"\x04" + b"\x06memory\x02\x00" + b"\x05alloc\x00\x01" + b"\x04echo\x00\x02"
                       + b"\x04bomb\x00\x00")
    alloc = b"\x00\x41\x80\x08\x0b"  # (i32.const 1024)
    echo = b"\x00\x42\x00\x0b"  # (i64.const 0)
    code = _section(10, b"\x03" + _leb(len(body)) + body + _leb(len(alloc)) + alloc + _leb(len(echo)) + echo)
    return wat.EMPTY + types + functions + memory + exports + code


@pytest.fixture(scope="module")
def bomb() -> InspectResult:
    data = bomb_module(400_000)
    assert 2_700_000 < len(data) < 2_900_000  # 2.8 MB, under the default max_module_bytes of 8 MiB
    return build({"echo.wasm": data})


def test_compile_bomb_one_400k_instruction_function_fails_the_audit(bomb: InspectResult) -> None:
    report = audit(bomb)
    check = one(report, "wasm_function_body_size_limit")
    largest = check.details["largest_function_bytes"]  # type: ignore[index]
    assert largest > 2_700_000
    assert (check.status, check.severity) == ("fail", "error")
    assert check.message == (f"module 'modules/echo.wasm' has a function body of {largest} bytes, above "
                             f"max_function_body_bytes ({POLICY_DEFAULT_MAX_FUNCTION_BODY_BYTES})")
    assert check.details == {"module_path": "modules/echo.wasm", "largest_function_bytes": largest,
                             "max_function_body_bytes": POLICY_DEFAULT_MAX_FUNCTION_BODY_BYTES}
    assert report.failed_checks() == ["wasm_function_body_size_limit"]  # the module is valid, within 8 MiB
    assert one(report, "wasm_module_size_limit").status == "pass"


def test_the_other_compile_limits_pass_the_bomb_and_fail_on_their_own_caps(bomb: InspectResult) -> None:
    report = audit(bomb)
    count, code = one(report, "wasm_function_count_limit"), one(report, "wasm_code_size_limit")
    assert (count.status, count.message) == (
        "pass", f"module 'modules/echo.wasm' function count is within limit (3 <= {POLICY_DEFAULT_MAX_FUNCTIONS})")
    code_bytes = code.details["code_bytes"]  # type: ignore[index]
    assert code.status == "pass" and code_bytes <= POLICY_DEFAULT_MAX_CODE_BYTES
    strict = audit(bomb, PolicyValues(max_functions=2, max_code_bytes=1_000_000,
                                      max_function_body_bytes=4 * 1024 * 1024))
    assert strict.failed_checks() == ["wasm_function_count_limit", "wasm_code_size_limit"]
    assert one(strict, "wasm_function_count_limit").message == (
        "module 'modules/echo.wasm' defines too many functions (3 > max_functions 2)")
    assert one(strict, "wasm_code_size_limit").message == (
        f"module 'modules/echo.wasm' has {code_bytes} bytes of code, above max_code_bytes (1000000)")
    assert one(strict, "wasm_function_count_limit").details == {
        "module_path": "modules/echo.wasm", "functions": 3, "max_functions": 2}


def test_the_compile_checks_come_after_check_18_and_skip_invalid_modules() -> None:
    report = audit(build({"bad.wasm": wat.wasm(wat.TYPE_INVALID), "echo.wasm": wat.wasm(wat.ECHO)}))
    by_module = [(c.check_id, (c.details or {}).get("module_path")) for c in report.checks
                 if c.check_id.startswith("wasm_") and c.check_id != "wasm_module_presence"]
    assert by_module == [("wasm_module_validation", "modules/bad.wasm")] + [
        (i, "modules/echo.wasm") for i in (
            "wasm_module_size_limit", "wasm_exported_function_limit", "wasm_wasi_filesystem_imports",
            "wasm_import_allowlist", "wasm_memory_declared_limit", "wasm_function_count_limit",
            "wasm_function_body_size_limit", "wasm_code_size_limit")]


def test_thirty_thousand_small_functions_are_counted() -> None:
    # issue 10: 30k small functions cost 3.2 s to compile at install; the audit counts them
    # without compiling, and the policy decides (real C++ tools define 34k, see constants.py)
    types = _section(1, b"\x01\x60\x00\x00")
    n = 30_000
    data = (wat.EMPTY + types + _section(3, _leb(n) + b"\x00" * n) + _section(10, _leb(n) + b"\x02\x00\x0b" * n))
    inspected = build({"echo.wasm": data})
    assert one(audit(inspected), "wasm_function_count_limit").status == "pass"
    check = one(audit(inspected, PolicyValues(max_functions=20_000)), "wasm_function_count_limit")
    assert check.status == "fail" and check.details["functions"] == 30_000  # type: ignore[index]


# --- tool_module_abi ----------------------------------------------------------------------


def test_tool_whose_module_implements_no_abi_fails_the_audit() -> None:
    # the README tour's skill: two tools, only the json-v1 module; "wordcount" resolves to it
    # (the only module) but it exports neither "wordcount" nor "run"
    tools = (("acme.echo", "echo"), ("acme.wordcount", "wordcount"))
    report = audit(build({"echo.wasm": wat.wasm(wat.ECHO)}, manifest(tools=tools)))
    resolution = [c for c in report.checks if c.check_id == "tool_module_resolution"]
    assert [c.message for c in resolution] == [
        "tool 'acme.echo' resolves to module 'modules/echo.wasm' (it exports the tool's name)",
        "tool 'acme.wordcount' resolves to module 'modules/echo.wasm' (the artifact's only module)",
    ]
    abi = [c for c in report.checks if c.check_id == "tool_module_abi"]
    assert [c.status for c in abi] == ["pass", "fail"]
    assert abi[0].message == ("tool 'acme.echo' runs on module 'modules/echo.wasm' under the json-v1 ABI "
                              "(entry 'echo')")
    assert abi[0].details == {"tool_id": "acme.echo", "module_path": "modules/echo.wasm", "abi": "json-v1",
                              "entry": "echo"}
    problem = ("it implements no runner ABI for tool 'wordcount' (json-v1: memory, alloc and 'wordcount' or 'run' "
               "(i32, i32) -> (i64); palyra-v1: 'run' () -> (i32); wasi-command: '_start')")
    assert abi[1].message == f"tool 'acme.wordcount' cannot run on module 'modules/echo.wasm': {problem}"
    assert abi[1].details == {"tool_id": "acme.wordcount", "module_path": "modules/echo.wasm", "problem": problem}
    assert report.failed_checks() == ["tool_module_abi"]


def test_each_abi_is_named_with_its_entry() -> None:
    for source, expected in ((wat.PALYRA_V1, ("palyra-v1", "run")), (wat.WASI_COMMAND, ("wasi-command", "_start"))):
        details = one(audit(build({"m.wasm": wat.wasm(source)})), "tool_module_abi").details or {}
        assert (details["abi"], details["entry"]) == expected


def test_json_v1_reactor_importing_wasi_with_filesystem_declared_cannot_run() -> None:
    # §19.3 accepts wasi_snapshot_preview1 when filesystem capabilities are declared, but only
    # the wasi-command ABI provides WASI: the audit says so instead of letting it install
    reactor = wat.wasm("""(module
      (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "echo") (param i32 i32) (result i64) (i64.const 0)))""")
    caps = '[capabilities.filesystem]\nread_roots = ["data"]\n'
    report = audit(build({"r.wasm": reactor}, manifest(caps=caps)))
    assert one(report, "wasm_import_allowlist").status == "pass"
    assert one(report, "tool_module_abi").message == (
        "tool 'acme.echo' cannot run on module 'modules/r.wasm': it imports wasi_snapshot_preview1::fd_write, "
        "outside what the json-v1 ABI provides")


def test_an_import_refused_by_the_allowlist_is_reported_once() -> None:
    # the same reactor without filesystem capabilities: the allowlist fails it and says which ABI
    # would allow WASI; the ABI check judges the rest (memory, alloc, echo: json-v1)
    reactor = wat.wasm("""(module
      (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "echo") (param i32 i32) (result i64) (i64.const 0)))""")
    report = audit(build({"r.wasm": reactor}))
    assert report.failed_checks() == ["wasm_import_allowlist"]
    assert one(report, "tool_module_abi").details["abi"] == "json-v1"  # type: ignore[index]


def test_no_abi_check_for_a_module_that_failed_validation() -> None:
    report = audit(build({"bad.wasm": wat.wasm(wat.TYPE_INVALID)}))
    assert one(report, "tool_module_resolution").status == "pass"  # the only module
    assert "tool_module_abi" not in ids(report)
    assert report.failed_checks() == ["wasm_module_validation"]


# --- wasm_import_allowlist: functions, toolchains, hints -------------------------------------


def imports_module(*imports: tuple[str, str], extra: str = "") -> bytes:
    lines = "\n".join(f'  (import "{m}" "{n}" (func (param i32)))' for m, n in imports)
    return wat.wasm(f"""(module
{lines}
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "echo") (param i32 i32) (result i64) (i64.const 0)){extra})""")


def allowlist(module: bytes) -> AuditCheck:
    return one(audit(build({"m.wasm": module})), "wasm_import_allowlist")


@pytest.mark.parametrize(("imports", "hint"), [
    ((("a", "a"), ("a", "b"), ("a", "c")), EMSCRIPTEN),
    ((("env", "emscripten_resize_heap"), ("env", "__syscall_openat")), EMSCRIPTEN),
    ((("wbg", "__wbg_log_4d8a2a7a"), ("wbg", "__wbindgen_throw")), WASM_BINDGEN),
    ((("__wbindgen_placeholder__", "__wbindgen_describe"),), WASM_BINDGEN),
    ((("./tiktoken_bg.js", "__wbindgen_string_new"),), WASM_BINDGEN),
    ((("gojs", "runtime.wasmExit"), ("gojs", "syscall/js.valueGet")), GO_JS),
    ((("go", "runtime.wasmWrite"),), GO_JS),
    ((("env", "trace"), ("env", "seed")), ASSEMBLYSCRIPT),
    ((("env", "my_undefined_symbol"),), ENV_GENERIC),
    ((("wasi_unstable", "fd_write"),), WASI_UNSTABLE),
], ids=["emscripten-minified", "emscripten-env", "wasm-bindgen", "wasm-bindgen-nodejs", "wasm-bindgen-bundler",
        "go-gojs", "go-old", "assemblyscript", "env", "wasi-unstable"])
def test_javascript_glue_imports_are_recognised_with_a_hint(imports: tuple[tuple[str, str], ...], hint: str) -> None:
    check = allowlist(imports_module(*imports))
    namespaces = sorted({m for m, _ in imports})
    groups = "; ".join(f"{ns} ({', '.join(sorted(n for m, n in imports if m == ns))})" for ns in namespaces)
    assert check.status == "fail"
    assert check.message == f"module 'modules/m.wasm' imports from namespaces outside the allowlist: {groups}. {hint}"
    assert check.details["hints"] == [hint]  # type: ignore[index]
    assert check.details["disallowed_imports"] == sorted(f"{m}::{n}" for m, n in imports)  # type: ignore[index]


def test_reactor_importing_wasi_is_told_which_abi_would_allow_it() -> None:
    module = imports_module(("wasi_snapshot_preview1", "fd_write"), ("wasi_snapshot_preview1", "fd_close"))
    check = allowlist(module)
    assert check.message == ("module 'modules/m.wasm' imports from namespaces outside the allowlist: "
                             f"wasi_snapshot_preview1 (fd_close, fd_write). {WASI_REACTOR}")
    assert "wasi-command" in check.message and "_start" in check.message


def test_many_refused_functions_are_counted_not_all_listed() -> None:
    check = allowlist(imports_module(*[("gojs", f"f{i:03d}") for i in range(100)]))
    assert "gojs (f000, f001, f002, f003, f004, f005, f006, f007 and 92 more)" in check.message
    details = check.details or {}
    assert (len(details["disallowed_imports"]), details["disallowed_import_count"]) == (64, 100)


def test_default_assemblyscript_abort_import_passes() -> None:
    module = wat.wasm("""(module
      (import "env" "abort" (func (param i32 i32 i32 i32)))
      (memory (export "memory") 1)
      (func (export "alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "run") (param i32 i32) (result i64) (i64.const 0)))""")
    report = audit(build({"m.wasm": module}))
    check = one(report, "wasm_import_allowlist")
    assert (check.status, check.message) == (
        "pass", "module 'modules/m.wasm' imports only allowed namespaces (and env.abort, which the host provides)")
    assert one(report, "tool_module_abi").details["abi"] == "json-v1"  # type: ignore[index]
    assert report.passed


def test_env_abort_with_another_signature_is_refused() -> None:
    check = allowlist(imports_module(("env", "abort")))  # (i32) -> (): not AssemblyScript's abort
    assert check.status == "fail" and check.details["disallowed_imports"] == ["env::abort"]  # type: ignore[index]


# --- tool_schema_references and tool_schema_compiles ----------------------------------------


def test_remote_ref_in_an_input_schema_fails_the_audit() -> None:
    # issue 10: this made `skills run` fetch the URL from the host process
    schema = '{ type = "object", properties = { x = { "$ref" = "http://127.0.0.1:8765/probe.json" } } }'
    report = audit(build(toml=manifest(input_schema=schema)))
    check = one(report, "tool_schema_references")
    assert (check.status, check.severity) == ("fail", "error")
    assert check.message == (
        "tool 'acme.echo' has schema references outside the schema document: input_schema references "
        "http://127.0.0.1:8765/probe.json (only local '#...' references are allowed: the host never fetches or "
        "reads a schema)")
    assert check.details == {"tool_id": "acme.echo",
                             "references": {"input_schema": ["http://127.0.0.1:8765/probe.json"]}}
    assert "tool_schema_compiles" not in ids(report)  # a schema that leaves its document is never compiled
    assert report.failed_checks() == ["tool_schema_references"]


@pytest.mark.parametrize("ref", ["file:///etc/passwd", "other.json#/defs/x", "urn:example:thing", "//evil.example/s"])
def test_file_and_relative_refs_in_an_output_schema_fail_the_audit(ref: str) -> None:
    schema = f'{{ type = "object", "$defs" = {{ a = {{ "$ref" = "{ref}" }} }} }}'
    check = one(audit(build(toml=manifest(output_schema=schema))), "tool_schema_references")
    assert check.status == "fail" and f"output_schema references {ref} " in check.message


def test_local_refs_pass_both_schema_checks() -> None:
    schema = ('{ type = "object", "$defs" = { name = { type = "string", maxLength = 8 } }, '
              'properties = { n = { "$ref" = "#/$defs/name" } } }')
    report = audit(build(toml=manifest(input_schema=schema)))
    refs, compiles = one(report, "tool_schema_references"), one(report, "tool_schema_compiles")
    assert (refs.status, refs.message) == ("pass", "tool 'acme.echo' schemas reference only their own document")
    assert (compiles.status, compiles.message) == ("pass", "tool 'acme.echo' schemas compile for the host")
    assert report.passed


@pytest.mark.parametrize("pattern", ["^(a)\\\\1$", "^(?=a)a$", "(?<!b)a"], ids=["backreference", "lookahead",
                                                                              "lookbehind"])
def test_pattern_needing_backtracking_fails_the_audit(pattern: str) -> None:
    schema = f'{{ type = "object", properties = {{ s = {{ type = "string", pattern = "{pattern}" }} }} }}'
    check = one(audit(build(toml=manifest(input_schema=schema))), "tool_schema_compiles")
    assert (check.status, check.severity) == ("fail", "error")
    assert check.message.startswith("tool 'acme.echo' has schemas that do not compile for the host: input_schema: ")
    assert list(check.details["problems"]) == ["input_schema"]  # type: ignore[index]
    assert check.message.endswith(f'is not a "regex" ({REGEX_NOTE})')


def test_catastrophic_pattern_compiles_on_the_linear_time_engine() -> None:
    # issue 10's ^(a+)+$ took 9.9 s on a backtracking engine; Rust's regex runs it in linear time
    schema = '{ type = "object", properties = { s = { type = "string", pattern = "^(a+)+$" } } }'
    assert one(audit(build(toml=manifest(input_schema=schema))), "tool_schema_compiles").status == "pass"


def test_invalid_schema_fails_the_audit() -> None:
    report = audit(build(toml=manifest(output_schema='{ type = "objekt" }')))
    check = one(report, "tool_schema_compiles")
    assert check.status == "fail" and "output_schema: " in check.message and "objekt" in check.message


def test_schema_checks_follow_each_tools_abi_check() -> None:
    modules = {"a.wasm": wat.wasm(wat.json_tool("echo")), "b.wasm": wat.wasm(wat.json_tool("shout"))}
    report = audit(build(modules, manifest(tools=(("acme.echo", "echo"), ("acme.shout", "shout")))))
    tail = ids(report)[ids(report).index("tool_module_resolution"):]
    per_tool = ["tool_module_resolution", "tool_module_abi", "tool_schema_references", "tool_schema_compiles"]
    assert tail == per_tool * 2 + ["vulnerability_feed_hook", "vulnerability_feed"]


def test_schema_facts_must_match_the_manifest() -> None:
    inspected = build()
    facts = inspect_modules(inspected.entries)
    with pytest.raises(ValueError, match="no schema facts"):
        audit_artifact(inspected, "allowlisted", PolicyValues(), facts, None, None, NOW, schemas=())
    stray = (*schema_facts(inspected.manifest), SchemaFacts(tool_id="acme.other", member="input_schema",
                                                            compiled=True))
    with pytest.raises(ValueError, match="unexpected schema facts"):
        audit_artifact(inspected, "allowlisted", PolicyValues(), facts, None, None, NOW, schemas=stray)
    # facts that say "not compiled" for a schema whose references are local come from another manifest
    forged = tuple(SchemaFacts(tool_id=f.tool_id, member=f.member, compiled=False)
                   for f in schema_facts(inspected.manifest))
    with pytest.raises(ValueError, match="another manifest"):
        audit_artifact(inspected, "allowlisted", PolicyValues(), facts, None, None, NOW, schemas=forged)
