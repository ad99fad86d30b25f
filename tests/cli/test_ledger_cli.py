"""The lifecycle, trust, policy and read commands through the CLI: outputs, JSON shapes, exit codes."""

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import builders as b  # noqa: E402

from skill_ledger.cli.main import cli  # noqa: E402
from skill_ledger.domain.signing import public_key_from_seed  # noqa: E402

KEY_A = public_key_from_seed(b.SEED_A).hex()


@pytest.fixture
def run(tmp_path):
    home = tmp_path / "home"
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--home", str(home), "--actor", "user:cli-test", *args], input=input)

    invoke.home = home
    invoke.tmp = tmp_path
    return invoke


def js(result):
    return json.loads(result.stdout)


def installed(run, name="a.skill", **kw):
    path = b.write(run.tmp, name, b.artifact(**kw))
    return run("install", "--artifact", path, "--allow-tofu", "--json")


def test_install_json_shape_and_positions(run):
    r = installed(run)
    assert r.exit_code == 0, r.stderr
    d = js(r)
    assert set(d) >= {"skill_id", "version", "publisher", "trust_decision", "status", "current", "payload_sha256",
                      "artifact_sha256", "key_id", "audit", "positions"}
    assert d["audit"] == {"passed": True, "failed_checks": [], "warning_checks": ["vulnerability_feed_hook"]}
    assert d["positions"] == [1, 2, 3, 4, 5, 6]


def test_install_exit_codes(run):
    bad = b.write(run.tmp, "bad.skill", b"PK\x03\x04 nope")
    r = run("install", "--artifact", bad, "--json")
    assert r.exit_code == 3 and r.stderr.startswith("error[zip]: ")
    assert js(r)["error"]["code"] == "zip" and js(r)["error"]["details"]["positions"] == [1]
    r = run("install", "--artifact", b.write(run.tmp, "a.skill", b.artifact()))
    assert r.exit_code == 4 and "error[untrusted_publisher]" in r.stderr
    r = run("install", "--artifact", str(run.tmp / "missing.skill"))
    assert r.exit_code == 6 and "error[file_not_found]" in r.stderr
    r = run("install")
    assert r.exit_code == 2
    failing = b.artifact("acme.big", manifest_text=b.manifest("acme.big", extra="") .replace(
        "[operator]", "[capabilities]\ndevice_capabilities = [\"camera\"]\n\n[operator]"))
    r = run("install", "--artifact", b.write(run.tmp, "big.skill", failing), "--allow-tofu", "--json")
    assert r.exit_code == 5 and js(r)["status"] == "quarantined"
    assert js(r)["audit"]["failed_checks"] == ["forbidden_device_capabilities"]


def test_lifecycle_round_trip_and_list_filters(run):
    installed(run)
    installed(run, "b.skill", skill_id="acme.other")
    r = run("quarantine", "acme.other", "--reason", "suspicious", "--json")
    assert r.exit_code == 0 and js(r)["status"] == "quarantined" and js(r)["changed"] is True
    r = run("quarantine", "acme.other", "--reason", "again", "--json")
    assert js(r)["changed"] is False and js(r)["positions"] == []
    r = run("list", "--status", "quarantined", "--json")
    assert [e["skill_id"] for e in js(r)["entries"]] == ["acme.other"]
    assert js(run("list", "--eligible-only", "--json"))["count"] == 1
    assert js(run("list", "--publisher", "nobody", "--json"))["count"] == 0
    r = run("disable", "acme.other", "--reason", "x")
    assert r.exit_code == 2 and "invalid_transition" in r.stderr
    r = run("enable", "acme.other", "--reason", "checked", "--json")
    assert r.exit_code == 0 and js(r)["status"] == "active"
    r = run("disable", "acme.echo", "--reason", "pause", "--json")
    assert js(r)["status"] == "disabled"
    r = run("check", "--strict", "--json")
    assert r.exit_code == 5
    results = {x["skill_id"]: x for x in js(r)["results"]}
    assert results["acme.other"]["ready"] and not results["acme.echo"]["ready"]
    r = run("remove", "acme.echo", "--reason", "retired", "--json")
    assert r.exit_code == 0 and js(r)["current"] is None
    assert run("info", "acme.echo").exit_code == 6


def test_info_history_and_journal(run):
    installed(run)
    run("quarantine", "acme.echo", "--reason", "look")
    d = js(run("info", "acme.echo", "--json"))
    assert d["status"] == "quarantined" and d["status_reason"] == "look"
    assert d["capability_grants"] == {"http_hosts": [], "secret_keys": [], "storage_prefixes": [], "channels": []}
    h = js(run("history", "acme.echo", "--json"))
    assert [e["kind"] for e in h["events"]][:2] == ["publisher.key_pinned", "skill.artifact_verified"]
    r = run("journal", "--json", "--kind", "skill.quarantined")
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["data"]["reason"] == "look"
    r = run("journal", "--json", "--since", "2", "--until", "4")
    assert [json.loads(x)["position"] for x in r.stdout.strip().splitlines()] == [3, 4]
    assert len(run("journal", "--json", "--limit", "2").stdout.strip().splitlines()) == 2
    assert run("journal", "--kind", "no.such.kind").exit_code == 2
    r = run("journal", "verify", "--json")
    assert r.exit_code == 0 and js(r)["ok"] and js(r)["events"] == 7
    r = run("journal", "checkpoint", "--json")
    assert r.exit_code == 0 and js(r)["event_count"] == 7
    assert js(run("journal", "verify", "--json"))["checkpoints"] == 1


def test_index_commands_and_palyra_export(run):
    installed(run)
    d = js(run("index", "status", "--json"))
    assert d["head"] == 6 and {p["name"] for p in d["projections"]} == {"index", "trust", "audits", "timeline", "history"}
    r = run("index", "rebuild", "--json")
    assert r.exit_code == 0 and js(r)["replayed"] == 6
    assert run("index", "verify").exit_code == 0
    r = run("index", "export", "--format", "palyra")
    doc = json.loads(r.stdout)
    assert doc["schema_version"] == 1
    (entry,) = doc["entries"]
    assert set(entry) == {"skill_id", "version", "publisher", "current", "installed_at_unix_ms", "artifact_sha256",
                          "payload_sha256", "signature_key_id", "trust_decision", "source", "missing_secrets"}
    out = run.tmp / "index.json"
    assert run("index", "export", "--output", str(out), "--json").exit_code == 0
    assert json.loads(out.read_text())["entries"][0]["skill_id"] == "acme.echo"


def test_trust_commands_round_trip(run):
    r = run("trust", "allow", "acme", KEY_A, "--reason", "vendor key", "--json")
    assert r.exit_code == 0 and js(r)["changed"] and js(r)["positions"] == [1]
    assert run("trust", "allow", "acme", "zz", "--reason", "x").exit_code == 2  # a bad key is a usage error
    listed = js(run("trust", "list", "--json"))["publishers"]
    assert listed[0]["keys"][0]["kind"] == "allowlisted" and listed[0]["keys"][0]["state"] == "active"
    exported = run("trust", "export").stdout
    assert json.loads(exported) == {"trusted_publishers": {"acme": [KEY_A]}, "tofu_publishers": {}}
    path = run.tmp / "trust.json"
    path.write_text(exported)
    other = CliRunner().invoke(cli, ["--home", str(run.tmp / "other"), "trust", "import", str(path), "--reason",
                                     "migrate", "--json"])
    assert other.exit_code == 0 and len(json.loads(other.stdout)["allowlisted"]) == 1
    installed(run)
    r = run("trust", "revoke", "acme", KEY_A, "--reason", "leaked", "--json")
    assert js(r)["quarantined"] == [{"skill_id": "acme.echo", "version": "1.0.0", "reason_code": "trust_revoked"}]
    assert js(run("trust", "export"))["trusted_publishers"] == {}


def test_policy_show_and_set(run):
    d = js(run("policy", "show", "--json"))
    assert d["policy_version"] == 0 and d["policy"]["max_exported_functions"] == 128
    r = run("policy", "set", "max_exported_functions=64", "--reason", "tighten", "--json")
    assert r.exit_code == 0 and js(r)["policy_version"] == 1 and js(r)["positions"] == [1]
    assert run("policy", "set", "bogus=1", "--reason", "x").exit_code == 2


def test_global_options_work_after_the_subcommand(tmp_path):
    home = tmp_path / "h"
    r = CliRunner().invoke(cli, ["list", "--home", str(home), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == {"count": 0, "as_of": None, "entries": []}


@pytest.mark.parametrize("make", ["garbage-file", "directory"])
def test_an_unusable_journal_is_a_clean_error(tmp_path, make):
    journal = tmp_path / "journal.db"
    if make == "garbage-file":
        journal.write_bytes(b"this is not sqlite" * 100)
    else:
        journal.mkdir()
    for args in (["list"], ["journal", "verify"], ["install", "--artifact", str(tmp_path / "x")]):
        r = CliRunner().invoke(cli, ["--home", str(tmp_path / "h"), "--journal", str(journal), "--json", *args])
        if args[0] == "install":  # the artifact is checked first
            continue
        assert r.exit_code == 9, (args, r.output)
        assert json.loads(r.stdout)["error"]["code"] == "journal_unavailable"
        assert "Traceback" not in r.output


def test_package_verify_reads_the_trust_projected_from_the_journal(run):
    path = b.write(run.tmp, "a.skill", b.artifact())
    assert run("package", "verify", "--artifact", path).exit_code == 4
    run("trust", "allow", "acme", KEY_A, "--reason", "vendor")
    r = run("package", "verify", "--artifact", path, "--json")
    assert r.exit_code == 0 and js(r)["trust_decision"] == "allowlisted"
    run("trust", "revoke", "acme", KEY_A, "--reason", "leaked")
    r = run("package", "verify", "--artifact", path, "--allow-tofu")
    assert r.exit_code == 4 and "key_revoked" in r.stderr
    head = js(run("index", "status", "--json"))["head"]
    run("package", "verify", "--artifact", b.write(run.tmp, "b.skill", b.artifact("acme.b", seed=b.SEED_B)),
        "--allow-tofu")
    assert js(run("index", "status", "--json"))["head"] == head  # read-only: the pin is not recorded


def test_palyra_export_lists_declared_secrets_that_are_not_set(run):
    text = b.manifest("acme.sec").replace(
        "[operator]", '[[capabilities.secrets]]\nscope = "skill:acme.sec"\nkey_names = ["token"]\n\n[operator]')
    path = b.write(run.tmp, "s.skill", b.artifact("acme.sec", manifest_text=text))
    assert run("install", "--artifact", path, "--allow-tofu").exit_code == 0
    (entry,) = json.loads(run("index", "export").stdout)["entries"]
    assert entry["missing_secrets"] == [{"scope": "skill:acme.sec", "key": "token"}]
    assert run("secret", "set", "skill:acme.sec", "token", input="s3cret-value\n").exit_code == 0
    exported = run("index", "export").stdout
    assert json.loads(exported)["entries"][0]["missing_secrets"] == []
    assert "s3cret" not in exported
