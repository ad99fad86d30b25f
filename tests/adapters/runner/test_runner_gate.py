"""The gate: resolving the tool, refusing what may not run, the artifact check and its stat cache,
input validation, and the result's shape."""

from __future__ import annotations

import json
import os
import sys
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
