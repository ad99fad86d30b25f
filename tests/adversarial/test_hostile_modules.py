"""Hostile WebAssembly modules, each contained with its own exact error code.

Every module is written in WAT here, compiled with ``wasmtime.wat2wasm``, signed into a real
artifact and installed into a real journal; it is then run through the whole runner (gate,
artifact check, schema, ABI, sandbox). After every case a healthy tool runs in the same
process with the same warm runner: the host is unharmed.

The lab's audit policy admits the ``env`` namespace, as an operator might: the runner must
still refuse what its ABIs do not provide, whatever the audit let through.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters" / "runner"))
import runner_kit as kit  # noqa: E402

from skill_ledger.adapters.runner import abi  # noqa: E402
from skill_ledger.adapters.runner.hostcalls import HostContext  # noqa: E402
from skill_ledger.adapters.runner.limits import limits_for  # noqa: E402
from skill_ledger.adapters.storage.secrets import SecretStore  # noqa: E402
from skill_ledger.adapters.usecases import lifecycle  # noqa: E402
from skill_ledger.domain.errors import SkillLedgerError  # noqa: E402
from skill_ledger.domain.grants import capability_grants  # noqa: E402
from skill_ledger.domain.manifest import parse_manifest  # noqa: E402

TIMEOUT_MS = 300
SLACK_S = 0.100  # "timeouts fire within 100 ms of the deadline"
BIG_FUEL = 10**11


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("hostile")
    lab = kit.Lab(root / "home", policy=["allowed_import_modules="
                                         "palyra:plugins/host-capabilities@0.1.0,skills:host/v1,env",
                                         f"max_fuel_budget={BIG_FUEL}",  # the timeouts need fuel to spare
                                         "max_wall_clock_timeout_ms=60000"])
    lab.healthy = lab.install(kit.ECHO, tools=[("echo", kit.OBJECT, kit.OBJECT)])
    lab.server = kit.LocalServer()
    yield lab
    lab.server.close()
    lab.close()


@pytest.fixture(autouse=True)
def host_unharmed(lab):
    """After each hostile case: a healthy tool still runs, and the host did not balloon."""
    before = kit.rss_kib()
    yield
    result = lab.run(lab.healthy, {"still": "alive"}, tool="echo")
    assert result.output == {"still": "alive"}
    assert kit.rss_kib() - before < 256 * 1024  # no hostile allocation leaked into the host


def fails(lab, skill_id, code, input_value=None, **kw) -> SkillLedgerError:
    with pytest.raises(SkillLedgerError) as info:
        lab.run(skill_id, input_value, **kw)
    assert info.value.code == code, info.value.to_dict()
    return info.value


def refused_by_audit_and_runner(lab, source: str, **kw) -> SkillLedgerError:
    """A module no runner ABI accepts: the audit fails it at install (tool_module_abi), so it is
    quarantined and never loaded; and the runner applies the same rule (domain.abi.plan) before it
    instantiates anything, whatever an override let through. Returns the runner's refusal."""
    from skill_ledger.adapters.audit.inspector import inspect_module

    sid = lab.install(source, **kw)
    fails(lab, sid, "not_active")
    audit = [e["data"] for e in lab.events("skill.audited") if e["stream"] == f"skill:{sid}"][-1]
    failed = [c for c in audit["checks"] if c["status"] == "fail"]
    assert [c["check_id"] for c in failed] == ["tool_module_abi"], failed
    with pytest.raises(SkillLedgerError) as info:
        abi.plan(inspect_module("modules/m.wasm", kit.wasm(source)), "tool", None)
    assert info.value.code == "capability_denied"
    assert info.value.message.split(": ", 1)[1] in failed[0]["message"]  # the audit said the same
    return info.value


def compiled(lab, skill_id: str) -> str:
    """Compile the skill's module before a timed run: a cold compilation happens in the bounded
    compile worker, outside the run's deadline (README, "The runner"), so it is not timed here."""
    try:
        lab.run(skill_id, timeout_ms=1)
    except SkillLedgerError:
        pass
    return skill_id


def denied_in_log(result, call: str) -> dict:
    entries = [e for e in result.log if e.get("code") == "capability_denied" and e.get("call") == call]
    assert entries, result.log
    return entries[0]


# --- CPU and wall clock ----------------------------------------------------------------------


def test_infinite_loop_in_the_tool_export_times_out(lab):
    sid = compiled(lab, lab.install(kit.json_module("(loop $l (br $l)) (unreachable)"), fuel=BIG_FUEL,
                                    timeout_ms=TIMEOUT_MS))
    t0 = time.monotonic()
    err = fails(lab, sid, "execution_timed_out")
    elapsed = time.monotonic() - t0
    assert TIMEOUT_MS / 1000 <= elapsed < TIMEOUT_MS / 1000 + SLACK_S
    assert err.details["timeout_ms"] == TIMEOUT_MS


def test_infinite_loop_in_the_start_function_times_out(lab):
    spin = kit.json_module(kit.ECHO_BODY, extra="(func $spin (loop $l (br $l))) (start $spin)")
    sid = compiled(lab, lab.install(spin, fuel=BIG_FUEL, timeout_ms=TIMEOUT_MS))
    t0 = time.monotonic()
    fails(lab, sid, "execution_timed_out")
    assert time.monotonic() - t0 < TIMEOUT_MS / 1000 + SLACK_S


def test_the_timeout_flag_lowers_the_manifest_wall_clock(lab):
    sid = compiled(lab, lab.install(kit.json_module("(loop $l (br $l)) (unreachable)"), fuel=BIG_FUEL,
                                    timeout_ms=60_000))
    t0 = time.monotonic()
    err = fails(lab, sid, "execution_timed_out", timeout_ms=150)
    assert 0.150 <= time.monotonic() - t0 < 0.150 + SLACK_S
    assert err.details["timeout_ms"] == 150


def test_a_cpu_burner_runs_out_of_fuel(lab):
    sid = lab.install(kit.json_module("(loop $l (br $l)) (unreachable)"), fuel=100_000, timeout_ms=10_000)
    err = fails(lab, sid, "fuel_exhausted")
    assert err.details["fuel"] == 100_000


def test_unbounded_recursion_is_a_stack_overflow_trap(lab):
    sid = lab.install(kit.json_module("(call $down (i32.const 0))",
                                      extra="(func $down (param i32) (result i64) "
                                            "(call $down (i32.add (local.get 0) (i32.const 1))))"))
    err = fails(lab, sid, "trap")
    assert err.details["trap_code"] == "STACK_OVERFLOW"


def test_division_by_zero_is_a_trap(lab):
    sid = lab.install(kit.json_module("(drop (i32.div_s (i32.const 1) (i32.sub (local.get $len) (local.get $len))))"
                                      " (unreachable)"))
    err = fails(lab, sid, "trap")
    assert err.details["trap_code"] == "INTEGER_DIVISION_BY_ZERO"


# --- memory and tables -------------------------------------------------------------------------

GROW_UNTIL_REFUSED = """
    (block $refused (loop $grow
      (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (br $grow)))
    (unreachable)"""


def test_memory_grow_past_the_limit_then_trapping_is_memory_limit_exceeded(lab):
    sid = lab.install(kit.json_module(GROW_UNTIL_REFUSED, memory='(memory (export "memory") 1)'),
                      memory=1024 * 1024)
    err = fails(lab, sid, "memory_limit_exceeded")
    assert err.details["max_memory_bytes"] == 1024 * 1024


def test_memory_grow_past_the_limit_returns_minus_one_to_the_module(lab):
    sid = lab.install(kit.json_module("(call $emit_rc (memory.grow (i32.const 65536)))",
                                      memory='(memory (export "memory") 1)'), memory=1024 * 1024)
    assert lab.run(sid).output == {"rc": -1}


def test_a_declared_memory_larger_than_the_limit_is_quarantined_and_never_runs(lab):
    sid = lab.install(kit.json_module(kit.ECHO_BODY, memory='(memory (export "memory") 32)'), memory=1024 * 1024)
    err = fails(lab, sid, "not_active")
    assert "audit_failed" in err.details["reasons"]


def test_a_declared_memory_larger_than_the_limit_fails_instantiation(lab, tmp_path):
    """Past an audit bypass (the gate refuses it above), the sandbox still refuses to build it."""
    source = kit.json_module(kit.ECHO_BODY, memory='(memory (export "memory") 32)')
    err = execute_directly(source, tmp_path, memory=1024 * 1024)
    assert err.code == "memory_limit_exceeded"
    assert "exceeds memory limits" in err.details["reason"]


def test_a_table_grow_bomb_is_refused_and_traps(lab):
    sid = lab.install(kit.json_module(
        "(if (i32.eq (table.grow $t (ref.null func) (i32.const 100000000)) (i32.const -1)) (then (unreachable)))"
        " (i64.const 0)", extra="(table $t 1 funcref)"))
    err = fails(lab, sid, "trap")
    assert err.details["trap_code"] == "UNREACHABLE"


def test_a_declared_table_beyond_the_element_limit_is_refused_at_instantiation(lab):
    sid = lab.install(kit.json_module(kit.ECHO_BODY, extra="(table 200000 funcref)"))
    err = fails(lab, sid, "memory_limit_exceeded")
    assert "table" in err.message


def test_a_memory_limit_trap_without_a_memory_export_is_memory_limit_exceeded(lab):
    """The module's memory is not exported at all: the runner still tells the limit from a bug."""
    sid = lab.install(kit.palyra_module(GROW_UNTIL_REFUSED.replace("(unreachable)", "(unreachable) (i32.const 0)"))
                      .replace("(module", "(module (memory 1)", 1), memory=1024 * 1024)
    err = fails(lab, sid, "memory_limit_exceeded")
    assert err.details["max_memory_bytes"] == 1024 * 1024


def test_a_memory_limit_trap_with_memory_exported_under_another_name_is_memory_limit_exceeded(lab):
    sid = lab.install(kit.palyra_module(GROW_UNTIL_REFUSED.replace("(unreachable)", "(unreachable) (i32.const 0)"))
                      .replace("(module", '(module (memory (export "heap") 1)', 1), memory=1024 * 1024)
    fails(lab, sid, "memory_limit_exceeded")


def test_an_unreachable_well_below_the_memory_limit_is_still_a_trap(lab):
    sid = lab.install(kit.palyra_module("(unreachable) (i32.const 0)").replace("(module", "(module (memory 1)", 1),
                      memory=1024 * 1024)
    assert fails(lab, sid, "trap").details["trap_code"] == "UNREACHABLE"


# --- quotas the host decides (issue 10) ---------------------------------------------------------


def test_a_manifest_asking_for_more_than_the_policy_caps_gets_the_caps():
    from skill_ledger.domain.manifest import Quotas
    from skill_ledger.domain.policy import PolicyValues

    greedy = Quotas(max_memory_bytes=209_715_200, fuel_budget=10**11, wall_clock_timeout_ms=3_600_000)
    limits = limits_for(greedy, None, policy=PolicyValues())
    assert (limits.memory_bytes, limits.fuel, limits.timeout_ms) == (64 * 1024 * 1024, 10_000_000, 30_000)
    strict = PolicyValues(max_memory_bytes=1 << 20, max_fuel_budget=1000, max_wall_clock_timeout_ms=50,
                          max_instances=0)
    tight = limits_for(Quotas(), 20, policy=strict)
    assert (tight.memory_bytes, tight.fuel, tight.timeout_ms, tight.instances) == (1 << 20, 1000, 20, 1)
    modest = limits_for(Quotas(max_memory_bytes=1 << 20, fuel_budget=5, wall_clock_timeout_ms=10), None,
                        policy=PolicyValues())
    assert (modest.memory_bytes, modest.fuel, modest.timeout_ms) == (1 << 20, 5, 10)  # less than a cap: as asked


def test_a_module_cannot_use_the_200_mib_its_manifest_asks_for_past_the_policy_cap(tmp_path):
    from skill_ledger.domain.policy import PolicyValues

    grow_100_mib = kit.json_module("(call $emit_rc (memory.grow (i32.const 1600)))",
                                   memory='(memory (export "memory") 1)')
    result = execute_directly(grow_100_mib, tmp_path, memory=209_715_200, policy=PolicyValues(), expect=None)
    assert result.output == {"rc": -1}  # refused at 64 MiB, the policy's default cap
    err = execute_directly(kit.json_module(GROW_UNTIL_REFUSED, memory='(memory (export "memory") 1)'), tmp_path,
                           memory=209_715_200, policy=PolicyValues())
    assert err.code == "memory_limit_exceeded" and err.details["max_memory_bytes"] == 64 * 1024 * 1024


# --- compile bombs (issue 10) --------------------------------------------------------------------


def compile_bomb(ifs: int) -> bytes:
    """A small module whose one function is ``ifs`` nested-in-sequence ``if`` blocks over a
    thousand locals: 77 KB at 5,000 ifs, which Cranelift takes seconds and hundreds of MB to
    compile (its cost grows faster than linearly; 100 KB of it: 21 s and 1.2 GB)."""
    def leb(n: int) -> bytes:
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def section(i: int, body: bytes) -> bytes:
        return bytes([i]) + leb(len(body)) + body

    body = bytearray(b"\x01" + leb(1000) + b"\x7f")
    for k in range(ifs):
        a, b, c = (k * 7919) % 1000, (k * 104729) % 1000, (k * 1299709) % 1000
        body += b"\x20" + leb(a) + b"\x04\x40\x41" + leb(c) + b"\x20" + leb(b) + b"\x6a\x21" + leb(a) + b"\x0b"
    body += b"\x0b"
    return (b"\0asm\x01\0\0\0" + section(1, b"\x01\x60\x00\x00") + section(3, b"\x01\x00")
            + section(5, b"\x01\x00\x01") + section(7, b"\x01\x06_start\x00\x00")
            + section(10, b"\x01" + leb(len(body)) + bytes(body)))


@pytest.mark.parametrize("limit,bounds", [
    ("memory", {"compile_memory_bytes": 400 * 1024 * 1024, "compile_timeout_ms": 120_000}),
    ("time", {"compile_memory_bytes": 4 * 1024 * 1024 * 1024, "compile_timeout_ms": 700}),
])
def test_a_compile_bomb_fails_with_compile_limits_exceeded(lab, limit, bounds):
    """The issue's first ``run --timeout-ms 100`` of a bomb took 30 s and 1.9 GB in the host
    process. Now the compilation runs in a worker with its own limits, fails clearly, and
    leaves nothing in the cache; the host process never allocates for it."""
    from skill_ledger.adapters.runner import Runner
    from skill_ledger.adapters.runner import engine as eng
    from skill_ledger.adapters.runner.limits import RunLimits

    bomb = compile_bomb(5000)
    sid = lab.install({"bomb.wasm": bomb})
    runner = Runner(lab.settings, limits=RunLimits(**bounds))
    before = kit.rss_kib()
    try:
        with pytest.raises(SkillLedgerError) as info:
            runner.run(f"{kit.PUBLISHER}.tool", "{}", skill_id=sid, timeout_ms=100)
    finally:
        runner.close()
    err = info.value
    assert err.code == "compile_limits_exceeded", err.to_dict()
    assert err.details["limit"] == limit and "was not compiled" in err.message
    assert kit.rss_kib() - before < 100 * 1024
    cache = eng.ModuleCache(lab.settings.cache_dir)
    assert not (cache.directory / f"{cache.key(hashlib.sha256(bomb).hexdigest())}.json").exists()


# --- host-call floods --------------------------------------------------------------------------


def test_a_thousand_deep_host_call_flood_exceeds_the_budget(lab):
    sid = lab.install(kit.json_module(
        "(call $deep (i32.const 1000))",
        extra="""(func $deep (param $n i32) (result i64)
                   (call $log (i32.const 2) (i32.const 0) (i32.const 1))
                   (if (result i64) (i32.eqz (local.get $n)) (then (i64.const 0))
                     (else (call $deep (i32.sub (local.get $n) (i32.const 1))))))"""))
    err = fails(lab, sid, "capability_denied")
    assert err.details["budget"] == 512
    assert len(err.details["log"]) <= 257  # bounded log: entries plus the truncation note


def test_a_palyra_handle_loop_exceeds_the_budget(lab):
    sid = lab.install(kit.palyra_module(
        "(local $i i32) (loop $l (drop (call $http-count)) (local.set $i (i32.add (local.get $i) (i32.const 1)))"
        " (br_if $l (i32.lt_u (local.get $i) (i32.const 1000)))) (i32.const 0)", ["http-count"]))
    fails(lab, sid, "capability_denied")


def test_a_reentrant_host_call_from_alloc_is_refused(lab):
    source = f"""(module {kit.IMPORT_LOG} {kit.IMPORT_HTTP}
      (memory (export "memory") 1)
      (data (i32.const 0) "{{}}")
      (func (export "alloc") (param i32) (result i32)
        (call $log (i32.const 2) (i32.const 0) (i32.const 2)) (i32.const 1024))
      (func (export "tool") (param i32 i32) (result i64)
        (drop (call $http_fetch (local.get 0) (local.get 1))) (i64.const 0)))"""
    sid = lab.install(source, http=["127.0.0.1"])
    err = fails(lab, sid, "capability_denied", {"url": lab.server.url("/ok")})
    assert "re-entrant" in err.message


# --- output ------------------------------------------------------------------------------------


def test_output_larger_than_the_cap(lab):
    sid = lab.install(kit.json_module(kit.packed(0, 2 * 1024 * 1024), memory='(memory (export "memory") 64)'),
                      memory=8 * 1024 * 1024)
    err = fails(lab, sid, "invalid_output")
    assert err.details["cap"] == 1024 * 1024


def test_output_that_is_not_json(lab):
    sid = lab.install(kit.json_module(kit.packed(700, 9), extra='(data (i32.const 700) "not json!")'))
    fails(lab, sid, "invalid_output")


def test_output_that_violates_the_output_schema(lab):
    schema = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "integer"}}}
    sid = lab.install(kit.json_module(kit.packed(700, 15), extra='(data (i32.const 700) "{\\"answer\\":\\"42\\"}")'),
                      tools=[("tool", kit.ANY, schema)])
    err = fails(lab, sid, "invalid_output")
    assert "output_schema" in err.message


def test_output_nested_too_deeply_for_any_parser(lab):
    depth = 200_000
    sid = lab.install(kit.json_module(
        f"(memory.fill (i32.const 0) (i32.const 91) (i32.const {depth})) {kit.packed(0, depth)}",
        memory='(memory (export "memory") 4)'))
    fails(lab, sid, "invalid_output")


def test_an_http_request_nested_too_deeply_is_invalid(lab):
    sid = lab.install(kit.json_module(
        "(memory.fill (i32.const 8192) (i32.const 91) (i32.const 100000))"
        " (call $emit_rc (i32.wrap_i64 (call $http_fetch (i32.const 8192) (i32.const 100000))))",
        imports=[kit.IMPORT_HTTP], memory='(memory (export "memory") 4)'), http=["127.0.0.1"])
    assert lab.run(sid).output == {"rc": -2}


def test_an_output_pointer_outside_guest_memory(lab):
    sid = lab.install(kit.json_module(kit.packed(0xFFFFFF00, 512)))
    fails(lab, sid, "invalid_output")


# --- imports -----------------------------------------------------------------------------------


def test_a_forbidden_import_namespace_is_not_instantiated(lab):
    err = refused_by_audit_and_runner(lab, kit.json_module(kit.ECHO_BODY, imports=[
        kit.IMPORT_LOG, '(import "env" "abort" (func))']))  # not AssemblyScript's (i32, i32, i32, i32) -> ()
    assert "env::abort" in err.message


def test_a_known_import_with_the_wrong_signature_is_not_instantiated(lab):
    err = refused_by_audit_and_runner(lab, kit.json_module(
        kit.ECHO_BODY, imports=[f'(import "{kit.HOST}" "log" (func $log (param i32 i32)))']))
    assert "(i32, i32) -> ()" in err.message


def test_an_imported_memory_is_not_instantiated(lab):
    err = refused_by_audit_and_runner(lab, f"""(module (import "{kit.HOST}" "memory" (memory 1))
        (export "memory" (memory 0)) (func (export "alloc") (param i32) (result i32) (i32.const 0))
        (func (export "tool") (param i32 i32) (result i64) (i64.const 0)))""")
    assert "imports a memory" in err.message


def test_an_imported_table_is_not_instantiated(lab):
    err = refused_by_audit_and_runner(
        lab, kit.json_module(kit.ECHO_BODY, imports=[f'(import "{kit.HOST}" "table" (table 1 funcref))']))
    assert "imports a table" in err.message


def test_a_palyra_module_importing_another_abis_functions_is_not_instantiated(lab):
    err = refused_by_audit_and_runner(lab, f"""(module {kit.IMPORT_LOG}
        (func (export "run") (result i32) (i32.const 0)))""")
    assert "outside what the palyra-v1 ABI provides" in err.message


def test_a_module_with_no_runner_abi_is_refused(lab):
    err = refused_by_audit_and_runner(lab, '(module (func (export "tool") (param i32) (result i32) (local.get 0)))')
    assert "no runner ABI" in err.message


# --- HTTP egress -------------------------------------------------------------------------------

FETCH = """(local $r i64)
    (local.set $r (call $http_fetch (local.get $ptr) (local.get $len)))
    (if (result i64) (i64.lt_s (local.get $r) (i64.const 0))
      (then (call $emit_rc (i32.wrap_i64 (local.get $r)))) (else (local.get $r)))"""


def fetcher(lab, allow, **kw):
    return lab.install(kit.json_module(FETCH, imports=[kit.IMPORT_HTTP]), http=allow, **kw)


def test_http_to_a_host_not_in_the_allowlist_is_denied(lab):
    sid = fetcher(lab, ["api.example.com"])
    before = len(lab.server.hits)
    result = lab.run(sid, {"url": lab.server.url("/ok")})
    assert result.output == {"rc": -1}
    assert "not in the egress allowlist" in denied_in_log(result, "http_fetch")["message"]
    assert lab.server.hits[before:] == []  # never connected


def test_a_redirect_from_an_allowlisted_host_to_another_is_denied(lab):
    sid = fetcher(lab, ["127.0.0.1"])
    before = len(lab.server.hits)
    result = lab.run(sid, {"url": lab.server.url("/redirect-out")})
    assert result.output == {"rc": -1}
    entry = denied_in_log(result, "http_fetch")
    assert "evil.example" in entry["message"] and entry["target"].startswith("http://evil.example")
    assert lab.server.hits[before:] == ["/redirect-out"]


def test_an_allowlisted_name_resolving_to_loopback_is_denied(lab):
    sid = fetcher(lab, ["localhost"])
    before = len(lab.server.hits)
    result = lab.run(sid, {"url": lab.server.url("/ok", host="localhost")})
    assert result.output == {"rc": -1}
    assert "private, loopback" in denied_in_log(result, "http_fetch")["message"]
    assert lab.server.hits[before:] == []  # never connected


def test_an_allowlisted_name_resolving_to_a_private_address_is_denied(lab):
    sid = fetcher(lab, ["api.example.test"])
    lab.runner.resolver = lambda host, port, timeout: ["10.1.2.3"]
    try:
        result = lab.run(sid, {"url": "http://api.example.test/x"})
    finally:
        lab.runner.resolver = None
    assert result.output == {"rc": -1}
    assert "10.1.2.3" in denied_in_log(result, "http_fetch")["message"]


def test_a_slow_server_cannot_hold_a_run_past_its_deadline(lab):
    sid = compiled(lab, fetcher(lab, ["127.0.0.1"], timeout_ms=TIMEOUT_MS))
    t0 = time.monotonic()
    err = fails(lab, sid, "execution_timed_out", {"url": lab.server.url("/slow")})
    elapsed = time.monotonic() - t0
    assert TIMEOUT_MS / 1000 <= elapsed < TIMEOUT_MS / 1000 + SLACK_S
    assert "host call" in err.message


def test_a_response_larger_than_the_bound_is_refused(lab):
    sid = fetcher(lab, ["127.0.0.1"])
    result = lab.run(sid, {"url": lab.server.url("/big")})
    assert result.output == {"rc": -4}


# --- storage -----------------------------------------------------------------------------------

READ = """(local $n i32)
    (local.set $n (call $storage_read (local.get $ptr) (local.get $len) (i32.const 8192) (i32.const 4096)))
    (if (result i64) (i32.lt_s (local.get $n) (i32.const 0))
      (then (call $emit_rc (local.get $n)))
      (else (i64.or (i64.shl (i64.const 8192) (i64.const 32)) (i64.extend_i32_u (local.get $n)))))"""


def reader(lab):
    sid = lab.install(kit.json_module(READ, imports=[kit.IMPORT_READ]), read_roots=["notes"])
    data = lab.settings.data_dir / sid / "notes"
    data.mkdir(parents=True)
    (data / "ok.json").write_text('{"note": "mine"}')
    return sid, data


def test_storage_reads_inside_a_declared_root(lab):
    sid, _ = reader(lab)
    assert lab.run(sid, {"path": "notes/ok.json"}).output == {"note": "mine"}


def test_storage_dot_dot_escape_is_denied(lab, tmp_path):
    sid, data = reader(lab)
    (data.parent.parent / "secret.json").write_text('{"stolen": true}')
    result = lab.run(sid, {"path": "notes/../../secret.json"})
    assert result.output == {"rc": -1}
    denied_in_log(result, "storage_read")


def test_storage_absolute_path_is_denied(lab):
    sid, _ = reader(lab)
    result = lab.run(sid, {"path": "/etc/hostname"})
    assert result.output == {"rc": -1}
    assert "absolute" in denied_in_log(result, "storage_read")["message"]


def test_storage_through_a_planted_file_symlink_is_denied(lab, tmp_path):
    sid, data = reader(lab)
    target = tmp_path / "outside.json"
    target.write_text('{"stolen": true}')
    os.symlink(target, data / "link.json")
    result = lab.run(sid, {"path": "notes/link.json"})
    assert result.output == {"rc": -1}
    assert "symlink" in denied_in_log(result, "storage_read")["message"]


def test_storage_through_a_planted_directory_symlink_is_denied(lab, tmp_path):
    sid, data = reader(lab)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.json").write_text('{"stolen": true}')
    os.symlink(outside, data / "sub")
    result = lab.run(sid, {"path": "notes/sub/x.json"})
    assert result.output == {"rc": -1}


def test_storage_outside_the_declared_roots_is_denied(lab):
    sid, data = reader(lab)
    (data.parent / "other.json").write_text("{}")
    result = lab.run(sid, {"path": "other.json"})
    assert result.output == {"rc": -1}
    assert "not under a declared read root" in denied_in_log(result, "storage_read")["message"]


def test_storage_write_under_a_read_only_root_is_denied(lab):
    sid = lab.install(kit.json_module(
        "(call $emit_rc (call $storage_write (local.get $ptr) (local.get $len) (i32.const 700) (i32.const 2)))",
        imports=[kit.IMPORT_WRITE], extra='(data (i32.const 700) "{}")'), read_roots=["notes"])
    result = lab.run(sid, {"path": "notes/x.json"})
    assert result.output == {"rc": -1}
    assert not (lab.settings.data_dir / sid / "notes" / "x.json").exists()


# --- secrets -----------------------------------------------------------------------------------


def secret_module(name: str) -> str:
    body = f"""(local $n i32)
    (local.set $n (call $secret_get (i32.const 700) (i32.const {len(name)}) (i32.const 2054) (i32.const 1024)))
    (if (result i64) (i32.lt_s (local.get $n) (i32.const 0)) (then (call $emit_rc (local.get $n)))
      (else
        (call $log (i32.const 2) (i32.const 2054) (local.get $n))
        (i32.store16 (i32.add (i32.const 2054) (local.get $n)) (i32.const 0x7d22))
        (i64.or (i64.shl (i64.const 2048) (i64.const 32))
                (i64.extend_i32_u (i32.add (local.get $n) (i32.const 8))))))"""
    return kit.json_module(body, imports=[kit.IMPORT_LOG, kit.IMPORT_SECRET],
                           extra=f'(data (i32.const 700) "{name}") (data (i32.const 2048) "{{\\"v\\":\\"")')


def test_a_secret_outside_the_declared_scope_is_denied(lab):
    SecretStore(lab.settings.secrets_path).set("global", "other", "do-not-leak-1")
    sid = lab.install(secret_module("global/other"), secrets={"skill:acme.x": ["token"]}, skill_id="acme.x")
    result = lab.run(sid)
    assert result.output == {"rc": -1}
    assert denied_in_log(result, "secret_get")["secret"] == "global/other"
    assert "do-not-leak-1" not in repr(result)


def test_a_declared_secret_reaches_the_guest_but_never_the_result(lab):
    SecretStore(lab.settings.secrets_path).set("skill:acme.mine", "token", "do-not-leak-2")
    sid = lab.install(secret_module("skill:acme.mine/token"), secrets={"skill:acme.mine": ["token"]},
                      skill_id="acme.mine")
    result = lab.run(sid)
    assert result.output == {"v": "[redacted]"}  # the guest got it, echoed it, and it was redacted
    assert result.log[0]["message"] == "[redacted]"
    assert result.capabilities.secret_count == 1
    assert "do-not-leak-2" not in repr(result)


def test_a_declared_secret_that_is_not_set(lab):
    sid = lab.install(secret_module("skill:acme.unset/token"), secrets={"skill:acme.unset": ["token"]},
                      skill_id="acme.unset")
    assert lab.run(sid).output == {"rc": -2}


# --- guest memory through host calls --------------------------------------------------------


@pytest.mark.parametrize("call", [
    "(call $log (i32.const 2) (i32.const -16) (i32.const 16))",  # negative pointer (0xFFFFFFF0)
    "(call $log (i32.const 2) (i32.const 0) (i32.const -1))",  # negative length (4 GiB)
    "(call $log (i32.const 2) (i32.const 65530) (i32.const 100))",  # runs past the end
    "(drop (call $secret_get (i32.const 0) (i32.const 4) (i32.const 65000) (i32.const 4096)))",  # output buffer
    "(drop (call $http_fetch (i32.const 100) (i32.const -2)))",
    "(drop (call $storage_read (i32.const 0) (i32.const 2) (i32.const -1) (i32.const 64)))",
])
def test_out_of_bounds_guest_buffers_in_host_calls_trap(lab, call):
    sid = lab.install(kit.json_module(f"{call} (i64.const 0)", memory='(memory (export "memory") 1 1)',
                                      imports=[kit.IMPORT_LOG, kit.IMPORT_SECRET, kit.IMPORT_HTTP, kit.IMPORT_READ]),
                      http=["127.0.0.1"], read_roots=["notes"], secrets={"global": ["k"]})
    err = fails(lab, sid, "trap")
    assert "out-of-bounds guest buffer" in err.message


# --- the gate ------------------------------------------------------------------------------------


def test_a_run_of_a_quarantined_skill_is_denied_and_recorded(lab):
    sid = lab.install(kit.ECHO, tools=[("echo", kit.OBJECT, kit.OBJECT)])
    with kit.ledger_session(lab.settings) as ledger:
        lifecycle.quarantine(ledger, sid, None, "suspicious")
    err = fails(lab, sid, "not_active", {}, tool="echo")
    assert err.details["reason_code"] == "quarantined"
    denials = [e for e in lab.events("skill.execution_denied") if e["stream"] == f"skill:{sid}"]
    assert denials and denials[-1]["data"]["reason_code"] == "quarantined"
    assert err.details["positions"] == [denials[-1]["position"]]


def test_a_run_of_a_removed_version_is_denied(lab):
    sid = lab.install(kit.ECHO, tools=[("echo", kit.OBJECT, kit.OBJECT)])
    lab.install(kit.ECHO, tools=[("echo", kit.OBJECT, kit.OBJECT)], skill_id=sid, version="1.1.0")
    with kit.ledger_session(lab.settings) as ledger:
        lifecycle.remove(ledger, sid, "1.0.0")
    err = fails(lab, sid, "not_active", {}, tool="echo", version="1.0.0")
    assert err.details["status"] == "removed"
    assert lab.run(sid, {}, tool="echo").version == "1.1.0"


def test_a_run_whose_stored_artifact_was_modified_quarantines_it(lab):
    sid = lab.install(kit.ECHO, tools=[("echo", kit.OBJECT, kit.OBJECT)])
    assert lab.run(sid, {}, tool="echo").output == {}
    row = lab.runner._row("acme.echo", sid, None)
    blob = lab.runner.artifacts.blobs.path_for(row["artifact_sha256"])
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as f:  # same size, one byte flipped, in place
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xFF]))
    err = fails(lab, sid, "artifact_tampered", {}, tool="echo")
    assert err.details["quarantined"] is True
    err = fails(lab, sid, "not_active", {}, tool="echo")
    assert err.details["reason_code"] == "quarantined"


def test_a_run_whose_stored_artifact_is_missing_quarantines_it(lab):
    sid = lab.install(kit.ECHO, tools=[("echo", kit.OBJECT, kit.OBJECT)], skill_id="acme.missing")
    row = lab.runner._row("acme.echo", sid, None)
    os.unlink(lab.runner.artifacts.blobs.path_for(row["artifact_sha256"]))
    fails(lab, sid, "artifact_missing", {}, tool="echo")


# --- palyra-v1 handles -----------------------------------------------------------------------

PALYRA_GRANTS = {"http": ["a.example.com", "b.example.com"], "secrets": {"global": ["k1", "k2", "k3"]},
                 "write_roots": ["cache"]}


@pytest.mark.parametrize("function,arg,expected", [
    ("http-count", None, 2), ("secret-count", None, 3), ("storage-count", None, 1), ("channel-count", None, 0),
    ("http-handle", 0, 10000), ("http-handle", 1, 10001), ("http-handle", 2, -1), ("http-handle", -1, -1),
    ("secret-handle", 2, 20002), ("secret-handle", -1, -1), ("storage-handle", 0, 30000),
    ("storage-handle", -1, -1), ("channel-handle", 0, -1), ("channel-handle", -1, -1),
])
def test_palyra_v1_handle_functions(lab, function, arg, expected):
    call = f"(call ${function})" if arg is None else f"(call ${function} (i32.const {arg}))"
    sid = lab.install(kit.palyra_module(call, [function]), http=PALYRA_GRANTS["http"],
                      secrets=PALYRA_GRANTS["secrets"], write_roots=PALYRA_GRANTS["write_roots"])
    result = lab.run(sid)
    assert (result.abi, result.exit_code, result.output) == ("palyra-v1", expected, {"exit_code": expected})


def test_palyra_v1_uses_the_default_entrypoint(lab):
    sid = lab.install(kit.palyra_module("(i32.const 7)", entry="main"), default_entrypoint="main")
    assert lab.run(sid).exit_code == 7


# --- wasi-command ----------------------------------------------------------------------------

OPEN_NO_PREOPEN = """
    (local $errno i32)
    (local.set $errno (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 11)
                        (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 200)))
    (i32.store8 (i32.const 305) (i32.add (i32.const 48) (local.get $errno)))
    (drop (call $write (i32.const 1) (i32.const 300) (i32.const 7)))"""


def test_a_wasi_command_cannot_open_a_file_without_a_preopen(lab):
    source = kit.wasi_module(OPEN_NO_PREOPEN, imports=[
        f'(import "{kit.WASI}" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) '
        "(result i32)))"], extra='(data (i32.const 100) "/etc/passwd") (data (i32.const 300) "{\\"e\\":0}")')
    sid = lab.install(source)
    result = lab.run(sid)
    assert result.abi == "wasi-command"
    assert result.output == {"e": 8}  # EBADF: there is no directory to open it from


def test_a_wasi_command_sleeping_past_the_deadline_times_out(lab):
    sleep = """
      (i64.store (i32.const 100) (i64.const 1))    ;; userdata
      (i32.store8 (i32.const 108) (i32.const 0))   ;; clock subscription
      (i32.store (i32.const 116) (i32.const 1))    ;; monotonic
      (i64.store (i32.const 124) (i64.const 10000000000))  ;; 10 s, relative
      (drop (call $poll (i32.const 100) (i32.const 200) (i32.const 1) (i32.const 300)))"""
    source = kit.wasi_module(sleep, imports=[
        f'(import "{kit.WASI}" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))'])
    sid = compiled(lab, lab.install(source, timeout_ms=TIMEOUT_MS))
    t0 = time.monotonic()
    fails(lab, sid, "execution_timed_out")
    assert TIMEOUT_MS / 1000 <= time.monotonic() - t0 < TIMEOUT_MS / 1000 + SLACK_S


def test_a_wasi_stdout_flood_is_invalid_output(lab):
    flood = """(local $i i32)
      (loop $l (drop (call $write (i32.const 1) (i32.const 0) (i32.const 65536)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 64))))"""
    sid = lab.install(kit.wasi_module(flood, memory_pages=2))
    fails(lab, sid, "invalid_output")


# --- the execution layer on its own (for what the gate never lets through) --------------------


def execute_directly(source: str, tmp_path: Path, *, policy=None, expect: type | None = SkillLedgerError,
                     **manifest_kw):
    """Run a module through the execution layer alone (what the gate never lets through):
    the error it raises (``expect``), or with ``expect=None`` its outcome."""
    import wasmtime

    from skill_ledger.adapters.runner.engine import engine, read_facts

    data = kit.wasm(source)
    m = parse_manifest(kit.manifest("acme.direct", [("tool", kit.ANY, kit.ANY)], **manifest_kw))
    plan = abi.plan(read_facts("modules/m.wasm", data), "tool", None)
    limits = limits_for(m.capabilities.quotas, None, policy=policy)
    ctx = HostContext(skill_id=m.skill_id, tool_name="tool", manifest=m, grants=capability_grants(m), limits=limits,
                      deadline=time.monotonic() + limits.timeout_ms / 1000, data_dir=tmp_path / "data",
                      secrets=SecretStore(tmp_path / "secrets.json"))
    if expect is None:
        return abi.execute(plan, wasmtime.Module(engine(), data), ctx, b"{}")
    with pytest.raises(expect) as info:
        abi.execute(plan, wasmtime.Module(engine(), data), ctx, b"{}")
    return info.value
