"""The corpus of real modules (issues 10 and 17): each builds with Debian's clang and
wasi-libc, validates, has the interface its toolchain gives it, and runs through today's
runner with the result it should have.

What issue 17 asked the runner and the audit to change is written here as the behaviour it
wanted; the one item not delivered (running WASI preview 2 components) is tested as the
refusal it is today.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import wasmtime
from click.testing import CliRunner

from corpus import build

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters" / "runner"))
import runner_kit as kit  # noqa: E402

from skill_ledger.adapters.audit.inspector import inspect_module  # noqa: E402
from skill_ledger.adapters.runner import abi  # noqa: E402
from skill_ledger.cli.main import cli  # noqa: E402

WASI = "wasi_snapshot_preview1"
STDIO = ("fd_close", "fd_fdstat_get", "fd_seek", "fd_write", "proc_exit")  # wasi-libc's stdout/stderr and exit
STDIN = (*STDIO, "fd_read")

# Imports and exports as Debian 12's clang 14 and wasi-libc (0.0~git20220510) produce them.
# A command exports _start; a reactor (-mexec-model=reactor) exports _initialize instead.
INTERFACES: dict[str, tuple[set[str], list[str]]] = {
    "json_filter": ({f"{WASI}.{f}" for f in STDIN}, ["memory", "_start"]),
    "wordcount": ({f"{WASI}.{f}" for f in STDIN}, ["memory", "_start"]),
    "malloc_heavy": ({f"{WASI}.{f}" for f in STDIN}, ["memory", "_start"]),
    "reactor_ctor": (set(), ["memory", "_initialize", "alloc", "run"]),
    "reactor_logging": ({f"{WASI}.{f}" for f in ("fd_close", "fd_seek", "fd_write")},
                        ["memory", "_initialize", "alloc", "run"]),
    "fail_stderr": ({f"{WASI}.{f}" for f in (*STDIN, "fd_fdstat_set_flags", "fd_prestat_get",
                                             "fd_prestat_dir_name", "path_open")}, ["memory", "_start"]),
    "exit_after_output": ({f"{WASI}.{f}" for f in STDIO}, ["memory", "_start"]),
    "stderr_flood": ({f"{WASI}.{f}" for f in STDIO}, ["memory", "_start"]),
    "assemblyscript_digits": ({"env.abort"}, ["alloc", "run", "memory"]),
}
SIGNATURES = {"_start": "() -> ()", "_initialize": "() -> ()", "alloc": "(i32) -> (i32)", "run": "(i32, i32) -> (i64)"}


def test_the_corpus_is_every_module_listed_here(corpus):
    assert set(corpus) == set(INTERFACES) == set(build.MODULES) | set(build.COMMITTED)


@pytest.mark.parametrize("name", sorted(INTERFACES))
def test_module_validates_and_has_its_toolchains_interface(corpus, name):
    data = corpus[name].read_bytes()
    assert data[:8] == b"\x00asm\x01\x00\x00\x00"  # a core module, not a component
    wasmtime.Module.validate(wasmtime.Engine(), data)  # raises on an invalid module
    facts = inspect_module(f"modules/{name}.wasm", data)
    assert facts.valid, facts.error
    imports, exports = INTERFACES[name]
    assert {f"{i.module}.{i.name}" for i in facts.imports} == imports
    assert all(i.kind == "func" for i in facts.imports)
    assert [e.name for e in facts.exports] == exports
    assert {e.name: e.type for e in facts.exports if e.kind == "func"} == {
        name: SIGNATURES[name] for name in exports if name != "memory"}
    assert [m.imported for m in facts.memories] == [False]  # every toolchain here defines its memory


@pytest.mark.parametrize("name,expected", [
    ("json_filter", ("wasi-command", "_start")),
    ("malloc_heavy", ("wasi-command", "_start")),
    ("reactor_ctor", ("json-v1", "run")),
])
def test_runner_recognises_the_abi_from_imports_and_exports(corpus, name, expected):
    facts = inspect_module(f"modules/{name}.wasm", corpus[name].read_bytes())
    chosen = abi.plan(facts, name, None)
    assert (chosen.abi, chosen.entry) == expected


# --- a WASI preview 2 command component --------------------------------------------------------

P2_IMPORTS = {f"wasi:{name}@0.2.12" for name in (
    "cli/exit", "cli/stderr", "cli/stdin", "cli/stdout", "clocks/wall-clock", "filesystem/preopens",
    "filesystem/types", "io/error", "io/streams")}


def test_component_is_not_a_core_module():
    data = build.COMPONENTS["wordcount_p2"].read_bytes()
    assert data[:8] == b"\x00asm\x0d\x00\x01\x00"  # the component-model layer
    with pytest.raises(wasmtime.WasmtimeError):
        wasmtime.Module.validate(wasmtime.Engine(), data)
    facts = inspect_module("modules/wordcount_p2.wasm", data)
    assert not facts.valid and "component" in facts.error


def test_wasmtime_py_runs_a_wasi_p2_command_component(tmp_path):
    """What a component ABI would build on (docs/real-world-modules.md): wasmtime-py 50 loads
    the component, lists its imports by interface, links WASI preview 2, applies fuel, and
    calls wasi:cli/run with the store's WASI configuration (stdin and stdout as files here:
    Python stdout callbacks run on wasmtime's worker threads under preview 2)."""
    from wasmtime import component

    config = wasmtime.Config()
    config.consume_fuel = True
    engine = wasmtime.Engine(config)
    comp = component.Component(engine, build.COMPONENTS["wordcount_p2"].read_bytes())
    assert set(comp.type.imports(engine)) == P2_IMPORTS
    assert set(comp.type.exports(engine)) == {"wasi:cli/run@0.2.12"}
    (tmp_path / "stdin").write_bytes(b'"the quick brown fox"')
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["corpus.p2", "wordcount_p2"]
    wasi.stdin_file = str(tmp_path / "stdin")
    wasi.stdout_file = str(tmp_path / "stdout")
    store = wasmtime.Store(engine)
    try:
        store.set_fuel(10_000_000)
        store.set_wasi(wasi)
        linker = component.Linker(engine)
        linker.add_wasip2()
        instance = linker.instantiate(store, comp)
        run_interface = instance.get_export_index(store, "wasi:cli/run@0.2.12")
        run_func = instance.get_func(store, instance.get_export_index(store, "run", run_interface))
        assert run_func(store) == component.Variant("ok", None)
        assert 0 < 10_000_000 - store.get_fuel() < 10_000_000
    finally:
        store.close()
    assert (tmp_path / "stdout").read_bytes() == b'{"words":4,"bytes":21}\n'


# --- the build helper ---------------------------------------------------------------------


def test_builds_come_from_the_cache_when_the_sources_did_not_change(tmp_path, monkeypatch):
    first = build.build_corpus(tmp_path / "a", cache=tmp_path / "cache")

    def no_compiler(*args, **kwargs):
        raise AssertionError("compiled again although nothing changed")

    monkeypatch.setattr(build, "compile_c", no_compiler)
    second = build.build_corpus(tmp_path / "b", cache=tmp_path / "cache")
    assert {n: p.read_bytes() for n, p in first.items()} == {n: p.read_bytes() for n, p in second.items()}


def test_a_changed_source_is_compiled_again(tmp_path):
    source = tmp_path / "prog.c"
    source.write_text("int main(void) { return 0; }\n")
    one = build.cached_build("prog", [source], "command", cache=tmp_path / "cache")
    source.write_text("int main(void) { return 1; }\n")
    two = build.cached_build("prog", [source], "command", cache=tmp_path / "cache")
    assert one != two and one.is_file() and two.is_file()


def test_a_compile_error_shows_clangs_message_and_leaves_no_file(tmp_path):
    source = tmp_path / "broken.c"
    source.write_text("int main(void) { return undeclared; }\n")
    with pytest.raises(build.ToolchainError, match="undeclared") as caught:
        build.cached_build("broken", [source], "command", cache=tmp_path / "cache")
    assert "scripts/ensure-wasi-toolchain" in str(caught.value)
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_clang_is_an_error_naming_the_install_script(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no clang here
    build._clang.cache_clear()
    try:
        with pytest.raises(build.ToolchainError, match="scripts/ensure-wasi-toolchain"):
            build.build_corpus(cache=tmp_path / "cache")
    finally:
        build._clang.cache_clear()


def test_the_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SKILLS_CORPUS_CACHE", str(tmp_path / "explicit"))
    assert build.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("SKILLS_CORPUS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.cache_dir() == tmp_path / "xdg" / "skill-ledger-corpus"


# --- through today's runner -------------------------------------------------------------------

COUNT = {"type": "integer", "minimum": 1, "maximum": 100000}
SKILLS = {  # skill id: (module, input schema, manifest quotas)
    "corpus.json-filter": ("json_filter", kit.ANY, {}),
    "corpus.wordcount": ("wordcount", kit.ANY, {}),
    "corpus.malloc-heavy": ("malloc_heavy", COUNT, {"fuel": 10**9}),
    "corpus.malloc-default-fuel": ("malloc_heavy", COUNT, {}),
    "corpus.reactor-ctor": ("reactor_ctor", kit.ANY, {}),
    "corpus.reactor-logging": ("reactor_logging", kit.ANY, {}),
    "corpus.fail-stderr": ("fail_stderr", kit.ANY, {}),
    "corpus.exit-after-output": ("exit_after_output", kit.ANY, {}),
    "corpus.stderr-flood": ("stderr_flood", kit.ANY, {"fuel": 10**8}),
    "corpus.assemblyscript": ("assemblyscript_digits", kit.ANY, {}),
    "corpus.component-p2": ("wordcount_p2", kit.ANY, {}),
}


@pytest.fixture(scope="module")
def lab(corpus, tmp_path_factory):
    """One home with a skill per corpus module, each with one tool named after the module."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SKILLS_")}
    # an operator's policy: real programs need more fuel than the default cap (malloc_heavy: 22.6M)
    lab = kit.Lab(tmp_path_factory.mktemp("corpus-lab") / "home", policy=["max_fuel_budget=1000000000"])
    modules = {**corpus, **build.COMPONENTS}
    for skill_id, (module, schema, quotas) in SKILLS.items():
        lab.install({f"{module}.wasm": modules[module].read_bytes()}, tools=[(module, schema, kit.ANY)],
                    skill_id=skill_id, **quotas)
    yield lab
    lab.close()
    os.environ.update(saved)


def skills(lab, *args):
    """``skills --json ARGS`` in this process: (exit code, the JSON document on stdout)."""
    result = CliRunner().invoke(cli, ["--home", str(lab.home), "--actor", "user:corpus", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def run(lab, skill_id, value):
    tool = f"{kit.PUBLISHER}.{SKILLS[skill_id][0]}"
    return skills(lab, "run", tool, "--skill", skill_id, "--input", json.dumps(value))


def test_json_filter_compacts_its_input_and_counts_it(lab):
    code, result = run(lab, "corpus.json-filter", {"b": [1, 2.5, "x"], "a": {"n": None, "t": True}})
    assert code == 0, result
    assert (result["abi"], result["exit_code"], result["log"]) == ("wasi-command", 0, [])
    assert result["output"] == {
        "value": {"b": [1, 2.5, "x"], "a": {"n": None, "t": True}},
        "stats": {"objects": 2, "arrays": 1, "strings": 1, "numbers": 2, "literals": 2, "max_depth": 2},
    }


def test_wordcount_counts_the_words_of_its_stdin(lab):
    code, result = run(lab, "corpus.wordcount", "the quick brown fox")
    assert code == 0, result
    assert result["output"] == {"lines": 0, "words": 4, "bytes": len('"the quick brown fox"')}


def test_malloc_heavy_program_runs_within_its_quotas(lab):
    code, result = run(lab, "corpus.malloc-heavy", 2000)
    assert code == 0, result
    assert result["output"] == {"n": 2000, "allocations": 7012, "frees": 7012, "found": 2000,
                                "checksum": 2786253234}
    assert result["fuel_consumed"] > 10_000_000  # more than the manifest default: real programs need a quota


def test_malloc_heavy_program_on_the_default_fuel_budget_runs_out_of_fuel(lab):
    code, result = run(lab, "corpus.malloc-default-fuel", 2000)
    assert (code, result["error"]["code"]) == (8, "fuel_exhausted")


def test_reactor_static_constructors_run_before_the_first_call(lab):
    code, result = run(lab, "corpus.reactor-ctor", {"x": 1})
    assert code == 0, result
    output = result["output"]
    assert (output["init"], output["table_sum"]) == (True, 4950)
    assert output["input_bytes"] > 0


def test_failing_command_reports_its_exit_status_and_stderr(lab):
    code, result = run(lab, "corpus.fail-stderr", {})
    assert code == 8, result
    error = result["error"]
    assert error["code"] != "invalid_output"
    assert error["details"]["exit_code"] == 1
    assert "can not read 'config.toml'" in json.dumps(error)


def test_nonzero_exit_status_is_an_execution_failure(lab):
    code, result = run(lab, "corpus.exit-after-output", {})
    assert code == 8, result
    assert result["error"]["details"]["exit_code"] == 3
    assert "1 problem found" in json.dumps(result["error"])


def test_stderr_past_the_cap_is_discarded_not_an_error_in_the_guest(lab):
    code, result = run(lab, "corpus.stderr-flood", {})
    assert code == 0, result
    assert result["output"] == {"stderr_bytes": 102400, "failed_writes": 0}
    assert "truncated" in json.dumps(result)


def test_audit_names_the_wasi_functions_a_reactor_imports(lab):
    code, report = skills(lab, "audit", "corpus.reactor-logging")
    assert code == 5, report
    failed = [c for c in _checks(report) if c["status"] == "fail"]
    assert [c["check_id"] for c in failed] == ["wasm_import_allowlist"]
    message = failed[0]["message"]
    assert "fd_write" in message and ("wasi-command" in message or "_start" in message)


@pytest.mark.parametrize("skill_id", sorted(set(SKILLS) - {"corpus.reactor-logging", "corpus.component-p2"}))
def test_real_modules_pass_the_audit(lab, skill_id):
    """Every corpus module but the reactor that imports WASI and the component passes the audit
    under the lab's policy (the default policy with a higher fuel cap), compile limits included."""
    code, report = skills(lab, "audit", skill_id)
    assert code == 0, [c for c in _checks(report) if c["status"] == "fail"]
    abi_checks = [c for c in _checks(report) if c["check_id"] == "tool_module_abi"]
    assert [c["status"] for c in abi_checks] == ["pass"]


def test_default_assemblyscript_build_passes_the_audit(lab):
    code, report = skills(lab, "audit", "corpus.assemblyscript")
    assert code == 0, report
    checks = {c["check_id"]: c for c in _checks(report)}
    assert checks["wasm_import_allowlist"]["message"].endswith("(and env.abort, which the host provides)")
    assert (checks["tool_module_abi"]["details"]["abi"], checks["tool_module_abi"]["details"]["entry"]) == (
        "json-v1", "run")


@pytest.mark.parametrize("name", sorted(INTERFACES))
def test_real_modules_are_within_the_default_compile_limits(corpus, name):
    from skill_ledger.domain.policy import PolicyValues

    facts = inspect_module(f"modules/{name}.wasm", corpus[name].read_bytes())
    policy = PolicyValues()
    assert 0 < facts.function_count <= policy.max_functions
    assert 0 < facts.largest_function_bytes <= policy.max_function_body_bytes
    assert 0 < facts.code_bytes <= min(policy.max_code_bytes, facts.size)


@pytest.mark.parametrize("name", sorted(INTERFACES))
def test_the_inspectors_reader_sees_what_wasmtime_sees(corpus, name):
    """The audit no longer compiles, so nothing cross-checks the reader at audit time: here it is
    checked against wasmtime's own reflection on every real module."""
    data = corpus[name].read_bytes()
    facts = inspect_module(f"modules/{name}.wasm", data)
    module = wasmtime.Module(wasmtime.Engine(), data)
    assert sorted((i.module, i.name) for i in module.imports) == sorted((i.module, i.name) for i in facts.imports)
    assert [e.name for e in module.exports] == [e.name for e in facts.exports]


def test_default_assemblyscript_build_passes_the_audit_and_runs(lab):
    code, result = run(lab, "corpus.assemblyscript", {"n": 12345, "s": "a1"})
    assert code == 0, result
    assert result["output"] == {"digits": 6}


def test_a_wasi_p2_command_component_is_refused_by_the_audit_and_never_runs(lab):
    """Issue 17 asked for WASI preview 2 components to run; they are refused instead, because
    the runner's limits cannot be kept for them with wasmtime-py 50 (docs/runtime-abis.md). The
    refusal is clear, names what the file is, and nothing of the component runs."""
    code, report = skills(lab, "audit", "corpus.component-p2")
    assert code == 5, report
    failed = [c for c in _checks(report) if c["status"] == "fail"]
    assert failed and all("component" in c["message"] for c in failed), failed
    code, result = run(lab, "corpus.component-p2", "the quick brown fox")
    assert code == 7, result
    assert "output" not in result


def test_info_shows_the_abi_and_the_imports_of_each_tool(lab):
    code, info = skills(lab, "info", "corpus.wordcount")
    assert code == 0, info
    text = json.dumps(info)
    assert "wasi-command" in text and "fd_read" in text


def _checks(doc):
    """Every audit check object anywhere in a JSON document."""
    if isinstance(doc, dict):
        if "check_id" in doc and "status" in doc:
            yield doc
        for value in doc.values():
            yield from _checks(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _checks(value)
