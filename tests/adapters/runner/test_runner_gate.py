"""The gate: resolving the tool, refusing what may not run, the artifact check and its stat cache,
input validation, and the result's shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runner_kit as kit  # noqa: E402

from skill_ledger.adapters.runner import Runner, run_tool  # noqa: E402
from skill_ledger.adapters.runner import gate as gate_module  # noqa: E402
from skill_ledger.adapters.storage.blobs import BlobStore  # noqa: E402
from skill_ledger.adapters.usecases import lifecycle  # noqa: E402
from skill_ledger.adapters.usecases.install import install  # noqa: E402
from skill_ledger.domain.errors import SkillLedgerError  # noqa: E402

ECHO_TOOLS = [("echo", {"type": "object", "properties": {"text": {"type": "string", "maxLength": 8}},
                        "required": ["text"], "additionalProperties": False},
               {"type": "object", "required": ["text"]})]


@pytest.fixture
def lab(tmp_path):
    lab = kit.Lab(tmp_path / "home")
    yield lab
    lab.close()


def error(fn, *args, **kw) -> SkillLedgerError:
    with pytest.raises(SkillLedgerError) as info:
        fn(*args, **kw)
    return info.value


def test_a_warm_run_returns_the_result_shape(lab):
    sid = lab.install(kit.ECHO, tools=ECHO_TOOLS, http=["api.example.com"], secrets={"global": ["a", "b"]},
                      read_roots=["in"], write_roots=["out"])
    r = lab.runner.run("acme.echo", '{"text": "hi"}')
    d = msgspec.to_builtins(r)
    assert list(d) == ["tool_id", "skill_id", "version", "abi", "output", "exit_code", "duration_ms",
                       "fuel_consumed", "log", "capabilities"]
    assert (d["tool_id"], d["skill_id"], d["version"], d["abi"], d["output"], d["exit_code"]) == (
        "acme.echo", sid, "1.0.0", "json-v1", {"text": "hi"}, 0)
    assert d["fuel_consumed"] > 0 and d["duration_ms"] > 0
    assert d["capabilities"] == {"http_hosts": ["api.example.com"], "storage_roots": ["in", "out"],
                                 "secret_count": 2}


def test_unknown_tool_is_tool_not_found(lab):
    lab.install(kit.ECHO, tools=ECHO_TOOLS)
    assert error(lab.runner.run, "acme.nope", "{}").code == "tool_not_found"
    assert error(lab.runner.run, "acme.echo", "{}", skill_id="acme.other").code == "tool_not_found"
    assert error(lab.runner.run, "acme.echo", "{}", skill_id="acme.s1", version="9.9.9").code == "not_installed"


def test_a_tool_declared_by_several_skills_needs_skill(lab):
    a = lab.install(kit.ECHO, tools=ECHO_TOOLS)
    b = lab.install(kit.ECHO, tools=ECHO_TOOLS)
    err = error(lab.runner.run, "acme.echo", '{"text": "x"}')
    assert err.code == "usage_error"
    assert err.details["candidates"] == [f"{a} 1.0.0", f"{b} 1.0.0"]
    assert lab.runner.run("acme.echo", '{"text": "x"}', skill_id=b).skill_id == b


def test_version_narrows_and_defaults_to_current(lab):
    sid = lab.install(kit.ECHO, tools=ECHO_TOOLS)
    lab.install(kit.ECHO, tools=ECHO_TOOLS, skill_id=sid, version="2.0.0")
    assert lab.runner.run("acme.echo", '{"text": "x"}').version == "2.0.0"
    assert lab.runner.run("acme.echo", '{"text": "x"}', version="1.0.0").version == "1.0.0"


def test_malformed_and_invalid_input_run_nothing(lab, monkeypatch):
    lab.install(kit.ECHO, tools=ECHO_TOOLS)
    calls = []
    from skill_ledger.adapters.runner import abi

    monkeypatch.setattr(abi, "execute", lambda *a, **k: calls.append(a))
    assert error(lab.runner.run, "acme.echo", "{not json").code == "usage_error"
    err = error(lab.runner.run, "acme.echo", '{"text": "far too long"}')
    assert err.code == "invalid_input" and "too long" in err.message
    assert error(lab.runner.run, "acme.echo", '{"text": "x", "more": 1}').code == "invalid_input"
    assert calls == []


def test_a_disabled_version_is_denied_and_recorded(lab):
    sid = lab.install(kit.ECHO, tools=ECHO_TOOLS)
    with kit.ledger_session(lab.settings) as ledger:
        lifecycle.disable(ledger, sid, None, "pause")
    err = error(lab.runner.run, "acme.echo", '{"text": "x"}')
    assert (err.code, err.details["reason_code"], err.details["status"]) == ("not_active", "disabled", "disabled")
    denial = lab.events("skill.execution_denied")[-1]
    assert denial["data"]["tool_id"] == "acme.echo" and denial["position"] in err.details["positions"]
    with kit.ledger_session(lab.settings) as ledger:
        lifecycle.enable(ledger, sid, None, "resume")
    assert lab.runner.run("acme.echo", '{"text": "x"}').output == {"text": "x"}  # the warm runner saw it


def test_the_stat_cache_skips_rehashing_an_unchanged_artifact(lab, monkeypatch):
    lab.install(kit.ECHO, tools=ECHO_TOOLS)
    reads = []
    original = BlobStore.read_verified

    def counting(self, digest, **kw):
        reads.append(digest)
        return original(self, digest, **kw)

    monkeypatch.setattr(BlobStore, "read_verified", counting)
    gate_module.forget_verified()
    lab.runner.run("acme.echo", '{"text": "x"}')
    assert len(reads) == 1  # verified once (in this process, from nothing)
    for _ in range(3):
        lab.runner.run("acme.echo", '{"text": "x"}')
    assert len(reads) == 1
    gate_module.forget_verified()  # a new process: the record on disk still counts
    with Runner(lab.settings) as fresh:
        fresh.run("acme.echo", '{"text": "x"}')
    assert len(reads) == 1
    record_dir = lab.settings.cache_dir / "verified"
    assert oct(record_dir.stat().st_mode & 0o777) == "0o700"
    blob = lab.runner.artifacts.blobs.path_for(reads[0])
    os.utime(blob)  # any change of identity: re-verified
    lab.runner.run("acme.echo", '{"text": "x"}')
    assert len(reads) == 2


def test_a_verified_record_does_not_hide_a_later_rewrite(lab):
    sid = lab.install(kit.ECHO, tools=ECHO_TOOLS)
    lab.runner.run("acme.echo", '{"text": "x"}')
    blob = lab.blob(sid)
    os.chmod(blob, 0o644)
    data = blob.read_bytes()
    blob.write_bytes(data[:-30] + bytes([data[-30] ^ 1]) + data[-29:])
    gate_module.forget_verified()
    err = error(lab.runner.run, "acme.echo", '{"text": "x"}', skill_id=sid)
    assert err.code == "artifact_tampered"


def test_run_tool_is_the_one_shot_form_and_accepts_bytes(lab):
    lab.install(kit.ECHO, tools=ECHO_TOOLS)
    assert run_tool(lab.settings, "acme.echo", b'{"text": "hey"}').output == {"text": "hey"}


def test_non_positive_timeout_is_a_usage_error(lab):
    lab.install(kit.ECHO, tools=ECHO_TOOLS)
    assert error(lab.runner.run, "acme.echo", '{"text": "x"}', timeout_ms=0).code == "usage_error"


def test_no_journal_yet_means_tool_not_found(tmp_path):
    settings = kit.resolve(home=str(tmp_path / "empty"), journal=None, actor="user:t")
    assert error(run_tool, settings, "acme.echo", "{}").code == "tool_not_found"


def test_the_example_skill_runs_both_abis(tmp_path):
    """examples/hello: the json-v1 echo and the wasi-command wordcount, as packaged."""
    from skill_ledger.adapters.demo import example_inputs

    manifest, modules, _ = example_inputs()
    built = kit.artifact(Path(manifest).read_text(), {f.name: Path(f.path).read_bytes() for f in modules})
    lab = kit.Lab(tmp_path / "home")
    try:
        path = tmp_path / "hello.palyra-skill"
        path.write_bytes(built)
        with kit.ledger_session(lab.settings) as ledger:
            assert install(ledger, str(path), allow_tofu=True).status == "active"
        echo = lab.runner.run("examples.echo", json.dumps({"text": "hi"}))
        assert (echo.abi, echo.output) == ("json-v1", {"text": "hi"})
        wc = lab.runner.run("examples.wordcount", json.dumps({"text": " one two\tthree\nfour  \\\"five\\\" "}))
        assert (wc.abi, wc.output, wc.exit_code) == ("wasi-command", {"words": 5}, 0)
        assert wc.log == [{"source": "stderr", "level": "info", "message": "wordcount: counted 5 words"}]
    finally:
        lab.close()


# --- the journal confirms every run (issue 11) ------------------------------------------------


@pytest.fixture
def stream_reads(monkeypatch):
    """Every stream the runner replays from the journal, in order (originator ids)."""
    from skill_ledger.adapters.runner import confirm

    reads: list[str] = []
    original = confirm.SqliteReader.rows

    def counting(self, originator_id, until):
        reads.append(originator_id)
        return original(self, originator_id, until)

    monkeypatch.setattr(confirm.SqliteReader, "rows", counting)
    return reads


def test_a_one_shot_run_replays_the_skill_publisher_and_policy_streams_once(lab, stream_reads):
    sid = lab.install(kit.ECHO, tools=ECHO_TOOLS)
    run_tool(lab.settings, "acme.echo", '{"text": "x"}')
    from skill_ledger.adapters.runner.confirm import stream_ids

    assert sorted(stream_reads) == sorted(stream_ids("policy:audit", f"skill:{sid}", "publisher:acme"))


def test_a_warm_runner_replays_again_only_when_the_skills_streams_change(lab, stream_reads):
    sid = lab.install(kit.ECHO, tools=ECHO_TOOLS)
    lab.runner.run("acme.echo", '{"text": "x"}')
    assert len(stream_reads) == 3
    for _ in range(3):
        lab.runner.run("acme.echo", '{"text": "x"}')
    assert len(stream_reads) == 3  # same journal position: the confirmation is reused
    lab.install(kit.json_module(kit.ECHO_BODY, name="other"), tools=[("other", kit.OBJECT, kit.OBJECT)])
    lab.runner.run("acme.echo", '{"text": "x"}')
    assert len(stream_reads) == 3  # the journal moved, but not in the streams this run depends on
    with kit.ledger_session(lab.settings) as ledger:
        lifecycle.quarantine(ledger, sid, None, "stop")
    err = error(lab.runner.run, "acme.echo", '{"text": "x"}')
    assert (err.code, err.details["reason_code"]) == ("not_active", "quarantined")
    assert len(stream_reads) == 6  # the skill's stream changed: replayed again, and refused


def test_a_warm_runner_refuses_a_version_another_process_quarantined(lab):
    """The quarantining command also caught the views up, so they are at the journal's head when
    the warm runner looks again: what it remembered from the old position must not decide."""
    sid = lab.install(kit.ECHO, tools=ECHO_TOOLS)
    assert lab.runner.run("acme.echo", '{"text": "x"}').output == {"text": "x"}
    out = subprocess.run([sys.executable, "-m", "skill_ledger", "--home", str(lab.home), "quarantine", sid,
                          "--reason", "incident"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    err = error(lab.runner.run, "acme.echo", '{"text": "x"}')
    assert (err.code, err.details["reason_code"]) == ("not_active", "quarantined")


def test_the_policy_recorded_in_the_journal_caps_a_warm_runners_limits(tmp_path):
    lab = kit.Lab(tmp_path / "home", policy=["max_fuel_budget=100000000000", "max_wall_clock_timeout_ms=60000"])
    try:
        lab.install(kit.json_module("(loop $l (br $l)) (unreachable)", name="spin"),
                    tools=[("spin", kit.ANY, kit.ANY)], fuel=10**9, timeout_ms=60_000)
        err = error(lab.runner.run, "acme.spin", "{}")
        assert (err.code, err.details["fuel"]) == ("fuel_exhausted", 10**9)  # the manifest's quota, under the cap
        with kit.ledger_session(lab.settings) as ledger:
            kit.set_policy(ledger, ["max_fuel_budget=100000"], "tighter")
        err = error(lab.runner.run, "acme.spin", "{}")
        assert (err.code, err.details["fuel"]) == ("fuel_exhausted", 100_000)  # the journal's new cap
    finally:
        lab.close()


def test_a_stream_moved_under_another_name_is_refused_as_tampering(lab):
    """An event whose stored stream name is not the stream it is read from (moved by id) is never
    folded into the wrong aggregate."""
    from skill_ledger.adapters.runner.confirm import JournalReader, replay
    from skill_ledger.domain.errors import JournalTampered
    from skill_ledger.domain.skill import Skill

    sid = lab.install(kit.ECHO, tools=ECHO_TOOLS)

    class Moved(JournalReader):
        """The victim's events, served as if they were another skill's stream."""

        def __init__(self, inner):
            self.inner = inner

        def rows(self, originator_id, until):
            from skill_ledger.domain.events import stream_uuid

            return self.inner.rows(stream_uuid(f"skill:{sid}").hex, until)

    from skill_ledger.adapters.runner.confirm import open_reader

    inner = open_reader(lab.settings)
    try:
        with pytest.raises(JournalTampered) as info:
            replay(Moved(inner), Skill, "acme.elsewhere", inner.head())
        assert "acme.elsewhere" in info.value.message
    finally:
        inner.close()


# --- schemas run on the host (issue 10) ---------------------------------------------------------


def installed_active(lab, **kw) -> str:
    """Install; a version the audit quarantined (a check on schemas, say) is enabled with --override,
    so the runner's own defences are what is tested."""
    sid = lab.install(kit.ECHO, **kw)
    with kit.ledger_session(lab.settings) as ledger:
        lifecycle.enable(ledger, sid, None, "tests: the runner's own defences", override=True)
    return sid


def test_a_remote_ref_is_refused_without_contacting_it(lab, tmp_path):
    server = kit.SilentServer()
    fifo = tmp_path / "schema.fifo"
    os.mkfifo(fifo)  # anything that tried to read it would block
    try:
        installed_active(lab, tools=[
            ("echo", {"$ref": f"http://127.0.0.1:{server.port}/probe.json"}, kit.ANY),
            ("filed", {"$ref": f"file://{fifo}"}, kit.ANY),
            ("relative", {"properties": {"a": {"$ref": "other.json"}}}, kit.ANY),
            ("dangling", {"$ref": "#/$defs/missing"}, kit.ANY)])
        outward = installed_active(lab, tools=[("echo", kit.ANY, {"$ref": f"http://127.0.0.1:{server.port}/o.json"})])
        for tool in ("filed", "relative", "dangling"):  # refused before any module is looked at
            err = error(lab.runner.run, f"acme.{tool}", '{"text": "x"}', timeout_ms=100)
            assert err.code == "invalid_input", err.to_dict()
            assert "not a valid JSON Schema" in err.message
        err = error(lab.runner.run, "acme.echo", '{"text": "x"}', skill_id="acme.s1", timeout_ms=100)
        assert err.code == "invalid_input" and "refers outside the schema document" in err.message
        err = error(lab.runner.run, "acme.echo", '{"text": "x"}', skill_id=outward, timeout_ms=100)
        assert err.code == "invalid_output"
        assert server.accepted == 0
    finally:
        server.close()


def test_a_backtracking_pattern_is_answered_on_a_linear_engine(lab):
    installed_active(lab, tools=[("echo", {"type": "object", "properties": {
        "text": {"type": "string", "pattern": "^(a+)+$"}}}, kit.ANY)])
    for n in (26, 100_000):  # 26: 9.9 s on a backtracking engine, doubling with each character
        err = error(lab.runner.run, "acme.echo", json.dumps({"text": "a" * n + "!"}), timeout_ms=100)
        assert err.code == "invalid_input" and "does not match" in err.message


def test_validating_the_input_counts_against_the_deadline(lab, monkeypatch):
    from skill_ledger.adapters.runner import abi

    lab.install(kit.ECHO, tools=[("echo", {"type": "array", "uniqueItems": True,
                                           "items": {"type": "string", "pattern": "^[a-z0-9]+$"}}, kit.ANY)])
    calls = []
    monkeypatch.setattr(abi, "execute", lambda *a, **k: calls.append(a))
    big = json.dumps([f"item{i}" for i in range(1_000_000)])
    err = error(lab.runner.run, "acme.echo", big, timeout_ms=1)
    assert err.code == "execution_timed_out" and "validating the input" in err.message
    assert calls == []


def test_the_module_gets_the_wall_clock_less_the_input_validation(lab, monkeypatch):
    from skill_ledger.adapters.runner import call
    from skill_ledger.domain.errors import ExecutionError

    lab.install(kit.ECHO, tools=ECHO_TOOLS)
    lab.runner.run("acme.echo", '{"text": "x"}')  # compiled and warm
    original = gate_module.SchemaCheck.timed
    monkeypatch.setattr(gate_module.SchemaCheck, "timed",  # the input's validation "took" 40 ms
                        lambda self, value: (original(self, value)[0], 0.040))
    seen = []

    def execute(plan, module, ctx, payload, **kw):
        seen.append((ctx.deadline, time.monotonic()))
        raise ExecutionError("stopped by the test", code="trap")

    monkeypatch.setattr(call.abi, "execute", execute)
    before = time.monotonic()
    assert error(lab.runner.run, "acme.echo", '{"text": "x"}', timeout_ms=100).message == "stopped by the test"
    [(deadline, at)] = seen
    assert before + 0.060 <= deadline <= at + 0.060  # 100 ms less the 40 the validation took


def test_an_output_validated_past_the_deadline_is_execution_timed_out(lab, monkeypatch):
    lab.install(kit.ECHO, tools=ECHO_TOOLS)
    lab.runner.run("acme.echo", '{"text": "x"}')  # compiled and warm
    from skill_ledger.adapters.runner import call

    original = call._schema_problem

    def slow_output(check, value, ctx):
        time.sleep(0.3)  # stands for an expensive output schema
        return original(check, value, ctx)

    monkeypatch.setattr(call, "_schema_problem", slow_output)
    err = error(lab.runner.run, "acme.echo", '{"text": "x"}', timeout_ms=200)
    assert err.code == "execution_timed_out" and "validation of its output" in err.message
