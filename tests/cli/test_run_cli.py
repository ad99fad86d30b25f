"""``skills run`` and ``skills secret``: outputs, JSON shapes, exit codes, and import hygiene."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "adapters" / "runner"))
import runner_kit as kit  # noqa: E402

from skill_ledger.cli.main import cli  # noqa: E402

ECHO_TOOLS = [("echo", {"type": "object", "properties": {"text": {"type": "string", "maxLength": 8}},
                        "required": ["text"]}, {"type": "object"})]
SPIN = kit.json_module("(loop $l (br $l)) (unreachable)", name="spin")


@pytest.fixture
def lab(tmp_path):
    lab = kit.Lab(tmp_path / "home", policy=["max_fuel_budget=100000000000"])  # the spin needs fuel to spare
    lab.sid = lab.install(kit.ECHO, tools=ECHO_TOOLS)
    lab.spin = lab.install(SPIN, tools=[("spin", kit.ANY, kit.ANY)], fuel=10**11, timeout_ms=5000)
    yield lab
    lab.close()


@pytest.fixture
def skills(lab):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--home", str(lab.home), "--actor", "user:cli", *args], input=input)

    return invoke


def js(result):
    return json.loads(result.stdout)


def test_run_prints_the_result(skills, lab):
    r = skills("run", "acme.echo", "--input", '{"text": "hi"}', "--json")
    assert r.exit_code == 0, r.output
    d = js(r)
    assert (d["tool_id"], d["skill_id"], d["version"], d["abi"], d["output"], d["exit_code"]) == (
        "acme.echo", lab.sid, "1.0.0", "json-v1", {"text": "hi"}, 0)
    assert set(d) == {"tool_id", "skill_id", "version", "abi", "output", "exit_code", "duration_ms",
                      "fuel_consumed", "log", "capabilities"}
    human = skills("run", "acme.echo", "--input", '{"text": "hi"}')
    assert human.exit_code == 0 and "json-v1" in human.stdout and '"text": "hi"' in human.stdout


def test_input_from_a_file_and_from_stdin(skills, tmp_path):
    f = tmp_path / "in.json"
    f.write_text('{"text": "file"}')
    assert js(skills("run", "acme.echo", "--input-file", str(f), "--json"))["output"] == {"text": "file"}
    assert js(skills("run", "acme.echo", "--input-file", "-", "--json", input='{"text": "stdin"}'))["output"] == {
        "text": "stdin"}


@pytest.mark.parametrize("args,code,error", [
    (["acme.echo", "--input", "{nope", "--json"], 2, "usage_error"),
    (["acme.echo", "--input", "[" * 100_000, "--json"], 2, "usage_error"),
    (["acme.echo", "--input", '{"text": "much too long"}', "--json"], 2, "invalid_input"),
    (["acme.echo", "--input", "{}", "--input-file", "x", "--json"], 2, "usage_error"),
    (["acme.nothing", "--json"], 6, "tool_not_found"),
    (["acme.spin", "--timeout-ms", "100", "--json"], 8, "execution_timed_out"),
])
def test_exit_codes(skills, args, code, error):
    r = skills("run", *args)
    assert r.exit_code == code, r.output
    assert js(r)["error"]["code"] == error
    assert r.stderr.startswith(f"error[{error}]")


def test_a_quarantined_skill_is_refused_with_exit_7_and_recorded(skills, lab):
    assert skills("quarantine", lab.sid, "--reason", "odd").exit_code == 0
    r = skills("run", "acme.echo", "--input", '{"text": "x"}', "--json")
    assert r.exit_code == 7
    err = js(r)["error"]
    assert err["code"] == "not_active" and err["details"]["reason_code"] == "quarantined"
    history = js(skills("history", lab.sid, "--json"))
    assert history["events"][-1]["kind"] == "skill.execution_denied"


def test_a_tampered_artifact_exits_5(skills, lab):
    blob = lab.blob(lab.sid)
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes() + b"junk")
    r = skills("run", "acme.echo", "--input", '{"text": "x"}', "--json")
    assert r.exit_code == 5 and js(r)["error"]["code"] == "artifact_tampered"
    listed = js(skills("list", "--json"))
    assert {e["skill_id"]: e["status"] for e in listed["entries"]}[lab.sid] == "quarantined"


def test_secret_set_list_remove_never_show_the_value(skills, lab):
    r = skills("secret", "set", "skill:acme.x", "token", "--json", input="s3cr3t-value\n")
    assert r.exit_code == 0 and js(r) == {"scope": "skill:acme.x", "key": "token", "stored": True, "replaced": False,
                                          "positions": [js(r)["positions"][0]]}
    path = lab.settings.secrets_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["secrets"] == {"skill:acme.x": {"token": "s3cr3t-value"}}
    listed = skills("secret", "list", "--json")
    assert js(listed) == {"count": 1, "secrets": [{"scope": "skill:acme.x", "key": "token"}]}
    again = skills("secret", "set", "skill:acme.x", "token", input="other")
    assert again.exit_code == 0 and "replaced" in again.stdout
    for r in (listed, again, skills("secret", "list")):
        assert "s3cr3t" not in r.output and "other" not in r.stdout.replace("replaced the previous", "")
    assert js(skills("secret", "remove", "skill:acme.x", "token", "--json"))["removed"] is True
    assert skills("secret", "set", "bad scope", "k", input="v").exit_code == 2
    assert skills("secret", "set", "global", "k", input="").exit_code == 2


def _python(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A fresh interpreter, away from the checkout: the package is imported as installed."""
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_commands_that_do_not_run_modules_never_import_wasmtime(lab, tmp_path):
    code = ("import sys\nfrom skill_ledger.cli.main import cli\n"
            "rc = cli.main(['--home', sys.argv[1], 'list', '--json'], standalone_mode=False)\n"
            "print('RESULT', rc, 'wasmtime' in sys.modules, 'jsonschema_rs' in sys.modules)")
    out = _python(code, str(lab.home), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "RESULT 0 False False"


def test_a_warm_run_confirms_from_the_journal_without_the_write_machinery(lab, tmp_path):
    """A warm ``skills run`` (views at the journal's head, artifact and module caches filled) finds
    the tool in the views and confirms it from the journal through the domain's aggregates
    (``eventsourcing.domain``), read-only: it needs neither eventsourcing's application and
    persistence layers (the write side), nor cryptography (the signature check was remembered),
    nor the packaging, SBOM or rebuild libraries."""
    code = ("import sys\nfrom skill_ledger.cli.main import cli\n"
            "rc = cli.main(['--home', sys.argv[1], 'run', 'acme.echo', '--input', '{\"text\": \"w\"}', '--json'],"
            " standalone_mode=False)\n"
            "print('RESULT', rc, ' '.join(sorted(sys.modules)))")
    first = _python(code, str(lab.home), cwd=tmp_path)  # fills the caches (as the lab's own run did)
    assert first.returncode == 0, first.stderr
    out = _python(code, str(lab.home), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rc, *modules = out.stdout.strip().splitlines()[-1].split()[1:]
    packages = {m.split(".")[0] for m in modules}
    assert rc == "0"
    assert {"wasmtime", "jsonschema_rs"} <= packages  # the run did happen
    assert "skill_ledger.domain.skill" in modules  # the decision read the journal's aggregates
    assert not packages & {"cryptography", "cyclonedx", "sqlite_utils", "psycopg"}, packages
    assert not [m for m in modules if m.startswith(("eventsourcing.application", "eventsourcing.persistence",
                                                    "eventsourcing.sqlite"))]
    assert not [m for m in modules if m.startswith(("skill_ledger.adapters.usecases", "skill_ledger.domain.artifact"))]


def test_skills_run_as_a_process(lab, tmp_path):
    skills_bin = Path(sys.executable).with_name("skills")  # the console script of the venv under test
    cmd = [str(skills_bin)] if skills_bin.exists() else [sys.executable, "-m", "skill_ledger"]
    out = subprocess.run([*cmd, "--home", str(lab.home), "run", "acme.echo", "--input", '{"text": "proc"}',
                          "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["output"] == {"text": "proc"}


# --- tool schemas on the host (issue 10), as an attacker would meet them -----------------------


def _skills_process(lab, *args: str) -> subprocess.CompletedProcess:
    """``skills ARGS`` as its own process, with a generous bound that only a hang would reach."""
    skills_bin = Path(sys.executable).with_name("skills")
    cmd = [str(skills_bin)] if skills_bin.exists() else [sys.executable, "-m", "skill_ledger"]
    out = subprocess.run([*cmd, "--home", str(lab.home), "--json", *args], capture_output=True, text=True,
                         timeout=60)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def _active(skills, lab, skill_id: str) -> str:
    """The audit may refuse such schemas (a check of its own): the operator overrides, so what is
    tested is the runner's own defence."""
    status = {e["skill_id"]: e["status"] for e in js(skills("list", "--json"))["entries"]}[skill_id]
    if status != "active":
        assert skills("enable", skill_id, "--override", "--reason", "test the runner").exit_code == 0
    return skill_id


def test_a_remote_ref_server_that_never_answers_does_not_hold_run(skills, lab):
    server = kit.SilentServer()
    try:
        sid = _active(skills, lab, lab.install(kit.json_module(kit.ECHO_BODY, name="probe"), tools=[
            ("probe", {"$ref": f"http://127.0.0.1:{server.port}/probe.json"}, kit.ANY)]))
        out = _skills_process(lab, "run", "acme.probe", "--skill", sid, "--timeout-ms", "100", "--input", "{}")
        assert out.returncode == 2, out.stderr
        assert json.loads(out.stdout)["error"]["code"] == "invalid_input"
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("error[invalid_input]")
        assert server.accepted == 0
    finally:
        server.close()


def test_a_backtracking_pattern_is_answered_at_once(skills, lab):
    """``^(a+)+$`` on 26 a's and a "!": 9.9 s on a backtracking engine, doubling per character; 10,000
    a's would never end there. The linear-time engine answers both."""
    sid = _active(skills, lab, lab.install(kit.json_module(kit.ECHO_BODY, name="redos"), tools=[
        ("redos", {"type": "object", "properties": {"text": {"type": "string", "pattern": "^(a+)+$"}}}, kit.ANY)]))
    for n in (26, 10_000):
        out = _skills_process(lab, "run", "acme.redos", "--skill", sid, "--timeout-ms", "100",
                              "--input", json.dumps({"text": "a" * n + "!"}))
        assert out.returncode == 2 and json.loads(out.stdout)["error"]["code"] == "invalid_input", out.stderr


def test_a_file_ref_reads_nothing(skills, lab, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"const": "host-file-contents-7f3a"}')
    fifo = tmp_path / "blocks.json"
    os.mkfifo(fifo)  # reading it would hang the command
    for target in (secret, fifo):
        sid = _active(skills, lab, lab.install(kit.json_module(kit.ECHO_BODY, name="fileref"), tools=[
            ("fileref", {"$ref": f"file://{target}"}, kit.ANY)]))
        out = _skills_process(lab, "run", "acme.fileref", "--skill", sid, "--input", "{}")
        assert out.returncode == 2 and json.loads(out.stdout)["error"]["code"] == "invalid_input", out.stderr
        assert "host-file-contents" not in out.stdout + out.stderr
