"""A local attacker (or a clumsy operator) edits the files of a home and runs the CLI (issue 11).

``views.db`` is a disposable projection: editing it must never decide what runs. Every case
here edits the views (or the blob store) the way an attacker with write access to the home
would, then runs ``skills`` as a separate process. A run is decided from the journal: where
the views disagree, the call is refused with ``projection_drift`` (exit 9), the views are
rebuilt, and the journal's answer holds from then on. A FIFO or a directory standing in a
blob's place is ``artifact_missing`` (quarantined), never a hang.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()
for _p in (str(HERE.parents[1]), str(HERE.parents[1] / "adapters" / "runner")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import helpers_ledger as h  # noqa: E402
import runner_kit as kit  # noqa: E402

from skill_ledger.domain.artifact import build_artifact, inspect_artifact  # noqa: E402
from skill_ledger.domain.manifest import manifest_to_json  # noqa: E402

ECHO_TOOLS = [("echo", kit.OBJECT, kit.OBJECT)]
ATTACKER_SEED = bytes([0x66]) * 32
PWNED = '{"pwned":true}'  # what the attacker's code would answer: never seen in any output below


def pwned_module() -> str:
    return kit.json_module(kit.packed(64, len(PWNED)), name="echo", extra='(data (i32.const 64) "{\\"pwned\\":true}")')


@pytest.fixture
def lab(tmp_path):
    lab = kit.Lab(tmp_path / "home")
    lab.sid = lab.install(kit.ECHO, tools=ECHO_TOOLS, skill_id="acme.victim")
    yield lab
    lab.close()


def skills(lab, *args: str, timeout: float = 60):
    proc = h.run_cli(*args, home=lab.home, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def run(lab, *extra: str, text: str = "hi", timeout: float = 60):
    return skills(lab, "--json", "run", "acme.echo", "--input", json.dumps({"text": text}), *extra, timeout=timeout)


def error_of(proc) -> dict:
    return json.loads(proc.stdout)["error"]


def views(lab) -> sqlite3.Connection:
    return sqlite3.connect(lab.settings.views_path)


def edit_views(lab, sql: str, *params) -> None:
    con = views(lab)
    try:
        with con:
            assert con.execute(sql, params).rowcount >= 1, sql
    finally:
        con.close()


def listed(lab) -> dict[tuple[str, str], dict]:
    proc = skills(lab, "--json", "list")
    assert proc.returncode == 0, proc.stderr
    return {(e["skill_id"], e["version"]): e for e in json.loads(proc.stdout)["entries"]}


def assert_drift_then_rebuilt(lab, proc, *fields: str) -> dict:
    """The call was refused as drift (exit 9), said so on stderr, and the views were rebuilt."""
    assert proc.returncode == 9, (proc.stdout, proc.stderr)
    err = error_of(proc)
    assert err["code"] == "projection_drift"
    assert "notice: views.db disagrees with the journal" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("error[projection_drift]")
    found = {d["field"] for d in err["details"]["differences"]}
    assert set(fields) <= found, found
    assert err["details"]["views_rebuilt"] is True
    verified = skills(lab, "--json", "index", "verify")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True, verified.stdout
    return err


# --- deciding to run reads the journal --------------------------------------------------------


def test_setting_a_quarantined_row_to_active_in_the_views_does_not_make_it_run(lab):
    assert skills(lab, "quarantine", lab.sid, "--reason", "suspicious").returncode == 0
    edit_views(lab, "UPDATE versions SET status='active', status_reason_code=NULL, eligible=1, "
                    "eligibility_reasons='[]' WHERE skill_id=?", lab.sid)
    assert listed(lab)[(lab.sid, "1.0.0")]["status"] == "active"  # what the attacker sees
    denials = len(lab.events("skill.execution_denied"))

    proc = run(lab)
    assert_drift_then_rebuilt(lab, proc, "status", "eligible")
    assert "output" not in proc.stdout
    assert listed(lab)[(lab.sid, "1.0.0")]["status"] == "quarantined"
    again = run(lab)  # the journal's answer, now also the views'
    assert again.returncode == 7 and error_of(again)["details"]["reason_code"] == "quarantined"
    assert len(lab.events("skill.execution_denied")) == denials + 1


def test_a_revoked_keys_version_marked_eligible_in_the_views_does_not_run(lab):
    key = h.key_hex(kit.SEED)
    assert skills(lab, "trust", "revoke", "acme", key, "--reason", "leaked").returncode == 0
    edit_views(lab, "UPDATE versions SET status='active', status_reason_code=NULL, key_revoked=0, eligible=1, "
                    "eligibility_reasons='[]' WHERE skill_id=?", lab.sid)
    edit_views(lab, "UPDATE trust_keys SET state='active' WHERE publisher='acme'")
    assert_drift_then_rebuilt(lab, run(lab), "status", "eligible")
    again = run(lab)
    assert again.returncode == 7 and "key_revoked" in error_of(again)["details"]["reasons"]


def test_pointing_a_views_row_at_an_attackers_blob_runs_no_code_signed_by_an_unknown_key(lab):
    """The attacker's artifact (same skill id and tool, their own key, wider grants) is put in the
    blob store and the views' row and manifest point at it."""
    manifest = kit.manifest(lab.sid, ECHO_TOOLS, http=["evil.example"], secrets={"global": ["token"]})
    data = build_artifact(manifest, [("m.wasm", kit.wasm(pwned_module()))], [], kit.SBOM, kit.PROVENANCE,
                          ATTACKER_SEED, 1).artifact
    inspected = inspect_artifact(data)
    digest = hashlib.sha256(data).hexdigest()
    blob = lab.settings.home / "blobs" / "sha256" / digest
    blob.write_bytes(data)
    manifest_json = json.dumps(manifest_to_json(inspected.manifest), separators=(",", ":"))
    grants = json.dumps({"http_hosts": ["evil.example"], "secret_keys": ["global/token"], "storage_prefixes": []})
    edit_views(lab, "INSERT INTO manifests VALUES (?, ?, '[]', ?, NULL)", inspected.payload_sha256, manifest_json,
               grants)
    edit_views(lab, "UPDATE versions SET artifact_sha256=?, payload_sha256=?, key_hex=?, key_id=? WHERE skill_id=?",
               digest, inspected.payload_sha256, inspected.public_key_hex, inspected.signature.key_id, lab.sid)

    proc = run(lab)
    assert_drift_then_rebuilt(lab, proc, "artifact_sha256", "payload_sha256", "key_hex", "manifest")
    assert "pwned" not in proc.stdout + proc.stderr
    ok = run(lab)
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout)
    assert result["output"] == {"text": "hi"}
    assert result["capabilities"] == {"http_hosts": [], "storage_roots": [], "secret_count": 0}


def test_widening_the_grants_in_the_views_manifest_is_drift(lab):
    """The grants a run gets come from the journal's manifest; the views' copy is only compared."""
    con = views(lab)
    try:
        payload, text = con.execute("SELECT m.payload_sha256, m.manifest FROM manifests m JOIN versions v "
                                    "ON v.payload_sha256 = m.payload_sha256 WHERE v.skill_id=?", (lab.sid,)).fetchone()
    finally:
        con.close()
    widened = json.loads(text)
    widened["capabilities"]["http_egress_allowlist"] = ["evil.example"]
    edit_views(lab, "UPDATE manifests SET manifest=? WHERE payload_sha256=?", json.dumps(widened), payload)
    assert_drift_then_rebuilt(lab, run(lab), "manifest")
    assert json.loads(run(lab).stdout)["capabilities"]["http_hosts"] == []


def test_moving_the_current_pointer_in_the_views_to_an_older_version_is_drift(lab):
    lab.install(kit.ECHO, tools=ECHO_TOOLS, skill_id=lab.sid, version="2.0.0")
    edit_views(lab, "UPDATE versions SET current = (version = '1.0.0') WHERE skill_id=?", lab.sid)
    assert_drift_then_rebuilt(lab, run(lab), "current")
    assert json.loads(run(lab).stdout)["version"] == "2.0.0"


def test_a_views_row_for_a_version_the_journal_never_installed_is_drift(lab):
    edit_views(lab, "UPDATE versions SET version='9.9.9' WHERE skill_id=?", lab.sid)
    edit_views(lab, "UPDATE tools SET version='9.9.9' WHERE skill_id=?", lab.sid)
    assert_drift_then_rebuilt(lab, run(lab, "--version", "9.9.9"), "version")
    again = run(lab, "--version", "9.9.9")
    assert again.returncode == 6 and error_of(again)["code"] == "tool_not_found"


def test_mapping_a_tool_in_the_views_to_a_skill_that_does_not_declare_it_is_drift(lab):
    other = lab.install(kit.json_module(kit.ECHO_BODY, name="other"), tools=[("other", kit.OBJECT, kit.OBJECT)])
    edit_views(lab, "UPDATE tools SET skill_id=? WHERE tool_id='acme.echo'", other)
    assert_drift_then_rebuilt(lab, run(lab), "tools")


def test_marking_a_runnable_version_quarantined_in_the_views_is_drift_not_a_denial(lab):
    """The other direction: views that refuse what the journal allows are repaired, and nothing is
    recorded as denied on their word."""
    edit_views(lab, "UPDATE versions SET status='quarantined', eligible=0, "
                    "eligibility_reasons='[\"quarantined\"]' WHERE skill_id=?", lab.sid)
    assert_drift_then_rebuilt(lab, run(lab), "status", "eligible")
    assert lab.events("skill.execution_denied") == []
    assert run(lab).returncode == 0


def test_a_version_whose_key_is_no_longer_trusted_is_denied_by_the_journal(lab):
    """After the publisher's allowlist names another key, the TOFU-pinned key of an installed version
    is no longer trusted: the journal says so, the views do not model it, and the run is denied."""
    assert skills(lab, "trust", "allow", "acme", h.key_hex(ATTACKER_SEED), "--reason", "rotated").returncode == 0
    proc = run(lab)
    assert proc.returncode == 7, proc.stderr
    err = error_of(proc)
    assert (err["code"], err["details"]["reason_code"]) == ("not_active", "trusted_publisher_key_mismatch")
    assert lab.events("skill.execution_denied")[-1]["data"]["reason_code"] == "trusted_publisher_key_mismatch"


# --- override (issue 10) ------------------------------------------------------------------------


def test_an_override_after_a_failed_audit_runs_and_stays_visible(tmp_path):
    lab = kit.Lab(tmp_path / "home", policy=["allowed_import_modules=wasi_snapshot_preview1"])
    try:
        sid = lab.install(kit.ECHO, tools=ECHO_TOOLS, skill_id="acme.accepted")  # imports skills:host/v1
        assert listed(lab)[(sid, "1.0.0")]["status"] == "quarantined"
        enabled = skills(lab, "--json", "enable", sid, "--override", "--reason", "vendor fix pending")
        assert enabled.returncode == 0, enabled.stderr
        assert json.loads(enabled.stdout)["details"]["override"] is True
        entry = listed(lab)[(sid, "1.0.0")]
        assert (entry["status"], entry["eligibility"]) == ("active", {"eligible": True, "reasons": []})

        proc = run(lab)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["output"] == {"text": "hi"}

        info = skills(lab, "info", sid)
        assert "active by --override of a failed audit (vendor fix pending)" in info.stdout
        assert json.loads(skills(lab, "--json", "info", sid).stdout)["status_reason_code"] == "override"
        assert "with --override" in skills(lab, "history", sid).stdout
        # A re-audit that fails exactly as the overridden audit did leaves the decision standing.
        assert skills(lab, "reaudit").returncode == 0
        assert run(lab).returncode == 0
        # A tighter policy is a new finding: quarantined again, and refused.
        assert skills(lab, "policy", "set", "max_exported_functions=1", "--reason", "tighter").returncode == 0
        assert skills(lab, "reaudit").returncode == 5
        refused = run(lab)
        assert refused.returncode == 7 and error_of(refused)["details"]["reason_code"] == "quarantined"
    finally:
        lab.close()


# --- FIFOs and other odd files ------------------------------------------------------------------


def test_a_fifo_as_input_file_is_refused_without_blocking(lab, tmp_path):
    fifo = tmp_path / "input.fifo"
    os.mkfifo(fifo)
    proc = skills(lab, "--json", "run", "acme.echo", "--input-file", str(fifo), timeout=60)
    assert proc.returncode == 3, proc.stderr
    err = error_of(proc)
    assert err["code"] == "io" and "FIFO" in err["message"]


@pytest.mark.parametrize("command", [["run", "acme.echo", "--input", "{}"], ["verify", "acme.victim"],
                                     ["reaudit"]])
@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_fifo_or_directory_in_a_blobs_place_quarantines_as_artifact_missing(lab, command, kind):
    blob = lab.blob(lab.sid)
    os.chmod(blob, 0o644)
    blob.unlink()
    if kind == "fifo":
        os.mkfifo(blob)
    else:
        blob.mkdir()
    proc = skills(lab, "--json", *command, timeout=60)
    assert proc.returncode == 5, (proc.stdout, proc.stderr)
    entry = listed(lab)[(lab.sid, "1.0.0")]
    assert (entry["status"], entry["status_reason_code"]) == ("quarantined", "artifact_missing")
    assert lab.events("skill.quarantined")[-1]["data"]["reason_code"] == "artifact_missing"


def test_reinstalling_the_artifact_replaces_a_fifo_in_its_place(lab, tmp_path):
    data = kit.artifact(kit.manifest(lab.sid, ECHO_TOOLS), {"m.wasm": kit.wasm(kit.ECHO)})
    blob = lab.blob(lab.sid)
    os.chmod(blob, 0o644)
    blob.unlink()
    os.mkfifo(blob)
    path = tmp_path / "again.palyra-skill"
    path.write_bytes(data)
    proc = skills(lab, "--json", "install", "--artifact", str(path), "--allow-tofu", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert blob.is_file() and not blob.is_fifo()
    assert run(lab).returncode == 0


# --- the same on a PostgreSQL journal ----------------------------------------------------------


@pytest.fixture(scope="module")
def pg():
    import pg_server

    try:
        server = pg_server.start()
    except pg_server.PgUnavailable as e:
        pytest.fail(f"cannot run the PostgreSQL journal tests: {e}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def test_views_edited_beside_a_postgresql_journal_do_not_decide_a_run(pg, tmp_path):
    from skill_ledger.adapters.settings import resolve
    from skill_ledger.adapters.usecases.install import install

    url = pg.url(pg.create_database())
    home = tmp_path / "home"
    settings = resolve(home=str(home), journal=url, actor="user:test", command="test")
    path = tmp_path / "victim.palyra-skill"
    path.write_bytes(kit.artifact(kit.manifest("acme.victim", ECHO_TOOLS), {"m.wasm": kit.wasm(kit.ECHO)}))
    with kit.ledger_session(settings) as ledger:
        install(ledger, str(path), allow_tofu=True)

    def pg_skills(*args: str):
        proc = h.run_cli("--journal", url, "--json", *args, home=home, timeout=60)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    ok = pg_skills("run", "acme.echo", "--input", '{"text": "pg"}')
    assert ok.returncode == 0 and json.loads(ok.stdout)["output"] == {"text": "pg"}, ok.stderr
    assert pg_skills("quarantine", "acme.victim", "--reason", "incident").returncode == 0
    con = sqlite3.connect(settings.views_path)
    with con:
        con.execute("UPDATE versions SET status='active', eligible=1, eligibility_reasons='[]'")
    con.close()
    drift = pg_skills("run", "acme.echo", "--input", '{"text": "pg"}')
    assert drift.returncode == 9 and error_of(drift)["code"] == "projection_drift", drift.stderr
    denied = pg_skills("run", "acme.echo", "--input", '{"text": "pg"}')
    assert denied.returncode == 7 and error_of(denied)["details"]["reason_code"] == "quarantined"
