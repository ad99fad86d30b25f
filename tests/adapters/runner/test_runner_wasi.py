"""WASI programs behave like programs (issue 17): declared arguments, environment, stdin and
stdout modes, exit statuses, stderr in every result and error, output past a cap discarded;
json-v1 reactors get ``_initialize``; AssemblyScript's ``env.abort`` traps with its message.

The C programs here are built with Debian's clang for wasm32-wasi through the corpus build
helper (cached, like the corpus); the rest are WAT."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runner_kit as kit  # noqa: E402
from corpus import build  # noqa: E402

from skill_ledger.adapters.runner import Runner  # noqa: E402
from skill_ledger.adapters.runner import declarations as decl_cache  # noqa: E402
from skill_ledger.adapters.runner import engine as eng  # noqa: E402
from skill_ledger.adapters.runner.limits import RunLimits  # noqa: E402
from skill_ledger.adapters.usecases.install import install  # noqa: E402
from skill_ledger.adapters.usecases.session import ledger_session  # noqa: E402
from skill_ledger.domain.artifact import build_artifact  # noqa: E402
from skill_ledger.domain.errors import SkillLedgerError  # noqa: E402

ENV_POLICY = "allowed_import_modules=palyra:plugins/host-capabilities@0.1.0,skills:host/v1,env"

# Prints {"argv": [...], "env": [...], "stdin": "..."}; exits with the status in $EXIT_WITH if set.
SHOW_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
extern char **environ;
static void str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') { putchar('\\'); putchar(c); }
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}
int main(int argc, char **argv) {
  static char in[65536];
  size_t n = fread(in, 1, sizeof in - 1, stdin);
  in[n] = 0;
  fputs("{\"argv\":[", stdout);
  for (int i = 0; i < argc; i++) { if (i) putchar(','); str(argv[i]); }
  fputs("],\"env\":[", stdout);
  for (char **e = environ; *e; e++) { if (e != environ) putchar(','); str(*e); }
  fputs("],\"stdin\":", stdout);
  str(in);
  puts("}");
  fputs("show: done\n", stderr);
  const char *status = getenv("EXIT_WITH");
  return status ? atoi(status) : 0;
}
"""


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[str, bytes]:
    src = tmp_path_factory.mktemp("wasi-src") / "show.c"
    src.write_text(SHOW_SOURCE)
    corpus = build.build_corpus()
    return {"show": build.cached_build("show", [src], "command").read_bytes(),
            "exit_after_output": corpus["exit_after_output"].read_bytes(),
            "reactor_ctor": corpus["reactor_ctor"].read_bytes(),
            "assemblyscript_digits": corpus["assemblyscript_digits"].read_bytes()}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = kit.Lab(tmp_path_factory.mktemp("wasi") / "home", policy=[ENV_POLICY, "max_fuel_budget=100000000"])
    yield lab
    lab.close()


def install_with(lab, module: bytes | str, declaration: Any = None, *, tool: str = "tool",
                 input_schema: dict = kit.ANY, output_schema: dict = kit.ANY, raw: bytes | None = None,
                 **manifest_kw: Any) -> str:
    """Install a one-tool skill whose artifact carries ``assets/tools/acme.<tool>.json``."""
    lab.count += 1
    skill_id = f"acme.w{lab.count}"
    data = module if isinstance(module, bytes) else kit.wasm(module)
    assets = []
    if declaration is not None or raw is not None:
        document = raw if raw is not None else json.dumps(declaration).encode()
        assets.append((f"tools/{kit.PUBLISHER}.{tool}.json", document))
    artifact = build_artifact(kit.manifest(skill_id, [(tool, input_schema, output_schema)], **manifest_kw),
                              [("m.wasm", data)], assets, kit.SBOM, kit.PROVENANCE, kit.SEED, 1).artifact
    path = lab.home.parent / f"{skill_id}.palyra-skill"
    path.write_bytes(artifact)
    with ledger_session(lab.settings) as ledger:
        assert install(ledger, str(path), allow_tofu=True).status == "active"
    return skill_id


def fails(lab, skill_id, value, code, **kw) -> dict:
    with pytest.raises(SkillLedgerError) as info:
        lab.run(skill_id, value, **kw)
    assert info.value.code == code, info.value.to_dict()
    return info.value.to_dict()


# --- argv, environment, stdin and stdout ------------------------------------------------------------


def test_without_a_declaration_argv_is_the_skill_and_tool_and_there_is_no_environment(lab, programs):
    sid = install_with(lab, programs["show"])
    result = lab.run(sid, {"a": 1})
    assert result.output == {"argv": [sid, "tool"], "env": [], "stdin": '{"a":1}'}
    assert result.log == [{"source": "stderr", "level": "info", "message": "show: done"}]


def test_declared_arguments_are_filled_from_the_validated_input(lab, programs):
    sid = install_with(lab, programs["show"], {
        "version": 1,
        "args": ["--name", "{name}", "--count={count}", "{flag}", "{files}", "{missing}", "--opt={missing}",
                 "{{literal}}", "-r{ratio}"]})
    result = lab.run(sid, {"name": "a b", "count": 3, "flag": True, "files": ["x.txt", "y.txt"], "ratio": 0.5})
    assert result.output["argv"] == ["tool", "--name", "a b", "--count=3", "true", "x.txt", "y.txt", "{literal}",
                                     "-r0.5"]
    assert result.output["stdin"] == json.dumps(
        {"name": "a b", "count": 3, "flag": True, "files": ["x.txt", "y.txt"], "ratio": 0.5}, separators=(",", ":"))


def test_declared_environment_variables_and_no_others(lab, programs):
    sid = install_with(lab, programs["show"], {"version": 1, "env": {"LANG": "C.UTF-8", "MODE": "{mode}",
                                                                     "UNSET": "{nothing}"}})
    assert lab.run(sid, {"mode": "fast"}).output["env"] == ["LANG=C.UTF-8", "MODE=fast"]


def test_text_stdin_from_a_property_and_text_stdout(lab, programs):
    sid = install_with(lab, programs["show"], {"version": 1, "stdin": {"text": "body"}, "stdout": "text"},
                       output_schema={"type": "string"})
    out = lab.run(sid, {"body": "line 1\nline \"2\""}).output
    assert isinstance(out, str) and json.loads(out)["stdin"] == "line 1\nline \"2\""
    whole = install_with(lab, programs["show"], {"version": 1, "stdin": "text"})
    assert lab.run(whole, "just text").output["stdin"] == "just text"
    none = install_with(lab, programs["show"], {"version": 1, "stdin": "none"})
    assert lab.run(none, {"a": 1}).output["stdin"] == ""


@pytest.mark.parametrize("declaration,value,expected", [
    ({"version": 1, "stdin": "text"}, {"not": "a string"}, "must be a JSON string"),
    ({"version": 1, "stdin": {"text": "body"}}, {"body": 3}, "must be a string"),
    ({"version": 1, "args": ["{opts}"]}, {"opts": {"a": 1}}, "string, number or boolean"),
    ({"version": 1, "args": ["--x={list}"]}, {"list": [1, 2]}, "string, number or boolean"),
    ({"version": 1, "env": {"X": "{list}"}}, {"list": ["a"]}, "string, number or boolean"),
    ({"version": 1, "args": ["{s}"]}, {"s": "a\u0000b"}, "NUL"),
    ({"version": 1, "args": ["{s}"]}, {"s": "x" * 70_000}, "above"),
])
def test_input_that_cannot_fill_the_declaration_is_invalid_input_and_nothing_runs(lab, programs, declaration,
                                                                                  value, expected):
    sid = install_with(lab, programs["show"], declaration)
    err = fails(lab, sid, value, "invalid_input")
    assert expected in err["message"]


# --- exit statuses --------------------------------------------------------------------------------


def test_a_nonzero_status_is_an_execution_failure_with_the_stderr_tail(lab, programs):
    sid = install_with(lab, programs["exit_after_output"])
    err = fails(lab, sid, {}, "nonzero_exit_status")
    assert err["details"]["exit_code"] == 3 and err["details"]["success_exit_codes"] == [0]
    assert err["details"]["stderr"] == "exit_after_output: 1 problem found\n"
    assert err["message"] == "the program exited with status 3: exit_after_output: 1 problem found"
    assert err["details"]["log"] == [{"source": "stderr", "level": "info",
                                      "message": "exit_after_output: 1 problem found"}]


def test_declared_success_exit_codes_make_a_status_a_success(lab, programs):
    sid = install_with(lab, programs["exit_after_output"], {"version": 1, "success_exit_codes": [0, 3]})
    result = lab.run(sid, {})
    assert (result.output, result.exit_code) == ({"checked": 3, "problems": 1}, 3)
    shown = install_with(lab, programs["show"], {"version": 1, "success_exit_codes": [0, 1],
                                                 "env": {"EXIT_WITH": "{status}"}})
    assert lab.run(shown, {"status": 1}).exit_code == 1
    err = fails(lab, shown, {"status": 2}, "nonzero_exit_status")
    assert err["details"]["exit_code"] == 2 and err["details"]["success_exit_codes"] == [0, 1]


def test_every_error_of_a_wasi_program_carries_its_stderr_and_exit_status(lab):
    spin_after_talking = kit.wasi_module("""
      (drop (call $write (i32.const 2) (i32.const 100) (i32.const 11)))
      (loop $l (br $l))""", extra='(data (i32.const 100) "warming up\\n")')
    sid = install_with(lab, spin_after_talking, fuel=200_000)
    err = fails(lab, sid, {}, "fuel_exhausted")
    assert err["details"]["stderr"] == "warming up\n" and err["details"]["exit_code"] is None
    assert err["details"]["log"][0]["message"] == "warming up"


# --- output past a cap --------------------------------------------------------------------------------

FLOOD_STDOUT = """(local $i i32)
  (memory.fill (i32.const 1024) (i32.const 121) (i32.const 65536))
  (loop $l (drop (call $write (i32.const 1) (i32.const 1024) (i32.const 65536)))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br_if $l (i32.lt_u (local.get $i) (i32.const 20))))"""


def test_stdout_past_the_cap_is_discarded_and_the_result_says_so(lab):
    sid = install_with(lab, kit.wasi_module(FLOOD_STDOUT, memory_pages=2), {"version": 1, "stdout": "text"},
                       fuel=10**8)
    result = lab.run(sid, {})
    assert result.output == "y" * (1024 * 1024)  # the cap; the program's writes all succeeded
    notes = [e for e in result.log if e.get("code") == "output_truncated"]
    assert notes and notes[0]["stream"] == "stdout" and notes[0]["discarded_bytes"] == 20 * 65536 - 1024 * 1024


def test_json_stdout_past_the_cap_is_invalid_output_saying_it_was_discarded(lab):
    sid = install_with(lab, kit.wasi_module(FLOOD_STDOUT, memory_pages=2), fuel=10**8)
    err = fails(lab, sid, {}, "invalid_output")
    assert "the rest was discarded" in err["message"] and err["details"]["stdout_bytes"] == 20 * 65536


def test_stderr_lines_count_against_the_log_entry_cap(lab):
    lines = kit.wasi_module("""(local $i i32)
      (loop $l (drop (call $write (i32.const 2) (i32.const 100) (i32.const 5)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
      (drop (call $write (i32.const 1) (i32.const 110) (i32.const 2)))""",
                            extra='(data (i32.const 100) "line\\n") (data (i32.const 110) "{}")')
    sid = install_with(lab, lines)
    result = lab.run(sid, {})
    assert result.output == {}
    stderr = [e for e in result.log if e["source"] == "stderr"]
    assert len(stderr) == 256  # RunLimits.log_max_entries
    assert result.log[-1]["code"] == "log_truncated" and "744 more entries dropped" in result.log[-1]["message"]


# --- tool declarations refused -----------------------------------------------------------------------


def test_an_invalid_declaration_is_refused_not_ignored(lab, programs):
    sid = install_with(lab, programs["show"], {"version": 1, "argz": []})
    err = fails(lab, sid, {}, "tool_declaration_invalid")
    assert "unknown member 'argz'" in err["message"] and "assets/tools/acme.tool.json" in err["message"]


def test_a_declaration_for_a_json_v1_tool_is_refused(lab):
    sid = install_with(lab, kit.ECHO, {"version": 1}, tool="echo")
    err = fails(lab, sid, {}, "tool_declaration_invalid", tool="echo")
    assert "WASI commands only" in err["message"]


# --- the declaration record in the cache --------------------------------------------------------------


def test_a_new_process_finds_the_declaration_without_reading_the_artifact(lab, programs, monkeypatch):
    sid = install_with(lab, programs["show"], {"version": 1, "args": ["--from-record"]})
    assert lab.run(sid, {}).output["argv"] == ["tool", "--from-record"]
    decl_cache.forget_declarations()
    eng.clear_memory_cache()

    def no_artifact_read(*args, **kwargs):
        raise AssertionError("read the artifact although nothing changed")

    monkeypatch.setattr(Runner, "_entries", no_artifact_read)
    with Runner(lab.settings) as fresh:
        assert fresh.run(f"{kit.PUBLISHER}.tool", "{}", skill_id=sid).output["argv"] == ["tool", "--from-record"]


def test_a_forged_declaration_record_is_deleted_and_the_signed_declaration_used(lab, programs):
    sid = install_with(lab, programs["show"], {"version": 1, "args": ["--signed"]})
    assert lab.run(sid, {}).output["argv"] == ["tool", "--signed"]
    records = list((lab.settings.cache_dir / "tools").glob("*.json"))
    record = next(p for p in records if b"--signed" in p.read_bytes())
    mac, _, body = record.read_bytes().partition(b"\n")
    record.write_bytes(mac + b"\n" + body.replace(b"--signed", b"--forged"))
    decl_cache.forget_declarations()
    notes: list[str] = []
    with Runner(lab.settings, notify=notes.append) as fresh:
        assert fresh.run(f"{kit.PUBLISHER}.tool", "{}", skill_id=sid).output["argv"] == ["tool", "--signed"]
    assert any("failed authentication" in n for n in notes)
    assert b"--signed" in record.read_bytes()  # rebuilt from the artifact


# --- json-v1 reactors and AssemblyScript ----------------------------------------------------------------


def test_json_v1_calls_initialize_before_the_first_call(lab):
    reactor = kit.json_module("(call $emit_rc (global.get $ready))", extra="""
      (global $ready (mut i32) (i32.const 0))
      (func (export "_initialize") (global.set $ready (i32.add (global.get $ready) (i32.const 41))))""")
    sid = install_with(lab, reactor)
    assert lab.run(sid, {}).output == {"rc": 41}
    assert lab.run(sid, {}).output == {"rc": 41}  # once per run (each run is a fresh instance)


def test_a_c_reactors_static_constructors_run(lab, programs):
    sid = install_with(lab, programs["reactor_ctor"], tool="run")
    out = lab.run(sid, {"x": 1}, tool="run").output
    assert (out["init"], out["table_sum"]) == (True, 4950)


def test_an_initialize_that_is_not_a_nullary_function_is_refused(lab):
    sid = install_with(lab, kit.json_module(kit.ECHO_BODY, extra='(func (export "_initialize") (param i32))'))
    err = fails(lab, sid, {}, "capability_denied")
    assert "_initialize" in err["message"]


AS_ABORT = kit.json_module(
    "(call $abort (i32.const 100) (i32.const 200) (i32.const 7) (i32.const 3)) (i64.const 0)",
    imports=['(import "env" "abort" (func $abort (param i32 i32 i32 i32)))'],
    # AssemblyScript strings: UTF-16LE, the byte length in the u32 just before the pointer
    extra='(data (i32.const 96) "\\0a\\00\\00\\00b\\00o\\00o\\00m\\00!\\00") '
          '(data (i32.const 196) "\\08\\00\\00\\00a\\00.\\00t\\00s\\00")')


def test_env_abort_traps_with_the_assemblyscript_message(lab):
    sid = install_with(lab, AS_ABORT)
    err = fails(lab, sid, {}, "trap")
    assert err["message"] == "the module aborted: boom! (at a.ts:7:3)"
    assert err["details"]["abort"] == {"message": "boom!", "file": "a.ts", "line": 7, "column": 3}


def test_an_abort_message_is_bounded(lab):
    huge = kit.json_module(
        "(call $abort (i32.const 100) (i32.const 0) (i32.const 1) (i32.const 1)) (i64.const 0)",
        imports=['(import "env" "abort" (func $abort (param i32 i32 i32 i32)))'],
        memory='(memory (export "memory") 2)',
        extra='(data (i32.const 96) "\\ff\\ff\\ff\\7f")')  # claims 2 GiB of message
    sid = install_with(lab, huge)
    err = fails(lab, sid, {}, "trap")
    assert len(err["details"]["abort"]["message"]) <= 1024 + 3 and err["details"]["abort"]["file"] == "(none)"


def test_the_default_assemblyscript_build_runs(lab, programs):
    sid = install_with(lab, programs["assemblyscript_digits"], tool="run")
    assert lab.run(sid, {"n": 12345, "s": "a1"}, tool="run").output == {"digits": 6}


def test_a_wasi_command_gets_env_abort_too(lab):
    sid = install_with(lab, kit.wasi_module(
        "(call $abort (i32.const 300) (i32.const 0) (i32.const 2) (i32.const 9))",
        imports=['(import "env" "abort" (func $abort (param i32 i32 i32 i32)))'],
        extra='(data (i32.const 296) "\\04\\00\\00\\00n\\00o\\00")'))
    assert fails(lab, sid, {}, "trap")["message"] == "the module aborted: no (at (none):2:9)"


def test_a_small_output_cap_applies_to_text_stdout(lab, programs):
    sid = install_with(lab, programs["show"], {"version": 1, "stdout": "text"})
    with Runner(lab.settings, limits=RunLimits(output_max_bytes=10)) as small:
        result = small.run(f"{kit.PUBLISHER}.tool", "{}", skill_id=sid)
    assert result.output == '{"argv":["'
    assert any(e.get("code") == "output_truncated" for e in result.log)


def test_a_declaration_packaged_with_the_cli_drives_the_program(tmp_path, programs):
    """The publisher's path: `package build --asset tools/<tool id>.json=FILE`, install, run."""
    from click.testing import CliRunner

    from skill_ledger.cli.main import cli

    def skills(*args: str) -> tuple[int, Any]:
        done = CliRunner().invoke(cli, ["--home", str(tmp_path / "home"), "--json", *args])
        return done.exit_code, json.loads(done.stdout) if done.stdout.strip() else done.stderr

    (tmp_path / "skill.toml").write_text(kit.manifest("acme.cli", [("show", kit.ANY, kit.ANY)]))
    (tmp_path / "show.wasm").write_bytes(programs["show"])
    (tmp_path / "show.json").write_text(json.dumps({"version": 1, "args": ["-v", "{level}"], "stdin": "none"}))
    assert skills("keys", "generate", "--output", str(tmp_path / "key.pem"))[0] == 0
    code, built = skills("package", "build", "--manifest", str(tmp_path / "skill.toml"),
                         "--module", str(tmp_path / "show.wasm"),
                         "--asset", f"tools/{kit.PUBLISHER}.show.json={tmp_path / 'show.json'}",
                         "--signing-key-file", str(tmp_path / "key.pem"), "--output", str(tmp_path / "s.palyra-skill"))
    assert code == 0, built
    assert skills("install", "--artifact", str(tmp_path / "s.palyra-skill"), "--allow-tofu")[0] == 0
    code, result = skills("run", f"{kit.PUBLISHER}.show", "--input", '{"level": 2}')
    assert code == 0, result
    assert result["output"] == {"argv": ["show", "-v", "2"], "env": [], "stdin": ""}
