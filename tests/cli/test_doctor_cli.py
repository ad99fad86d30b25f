"""``skills doctor`` through the CLI, on healthy and broken homes: every problem is one line
with ``ok``/``warn``/``fail`` and a fix, never a traceback; exit 0 (nothing failed), 5 (files,
permissions, artifacts, cache) or 9 (journal integrity, drift, reachability), 9 winning."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import builders as b  # noqa: E402

from skill_ledger.adapters.journal.sqlite import GUARDED_TABLES, guard_statements  # noqa: E402
from skill_ledger.cli.errors import exit_code_for  # noqa: E402
from skill_ledger.cli.main import cli  # noqa: E402

CHECK_KEYS = {"id", "status", "message", "fix", "area", "code"}


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()
    home = tmp_path / "home"

    def invoke(*args: str, home_dir: Path | str | None = None):
        result = runner.invoke(cli, ["--home", str(home_dir or home), "--actor", "user:doctor-test", *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
        assert "Traceback" not in result.output
        return result

    invoke.home = home
    invoke.tmp = tmp_path
    return invoke


@pytest.fixture
def healthy(run):
    """A home with one installed skill, a checkpoint, and private files."""
    path = b.write(run.tmp, "a.palyra-skill", b.artifact())
    assert run("install", "--artifact", path, "--allow-tofu").exit_code == 0
    assert run("journal", "checkpoint").exit_code == 0
    for name in ("journal.db", "journal.db-wal", "journal.db-shm", "views.db", "views.db-wal", "views.db-shm"):
        if (run.home / name).exists():
            os.chmod(run.home / name, 0o600)
    return run


CODES: dict[int, str | None] = {}  # the error code of the last failing run, by exit status (for asserts)


def doctor(run, *args: str, home_dir: Path | str | None = None) -> tuple[int, dict]:
    """(exit status, report): the report is the document itself on success, and the error
    document's details on failure (whose code must give that exit status)."""
    result = run("doctor", "--json", *args, home_dir=home_dir)
    doc = json.loads(result.stdout)
    if result.exit_code == 0:
        assert "error" not in doc and result.stderr == ""
        return 0, doc
    assert set(doc) == {"error"}, doc
    error = doc["error"]
    assert exit_code_for(error["code"]) == result.exit_code, error["code"]
    assert result.stderr.splitlines() == [f"error[{error['code']}]: {error['message']}"]
    CODES[result.exit_code] = error["code"]
    return result.exit_code, error["details"]


def by_id(doc: dict) -> dict[str, dict]:
    return {c["id"]: c for c in doc["checks"]}


def blob_path(home: Path) -> Path:
    (blob,) = (home / "blobs" / "sha256").iterdir()
    return blob


# --- a healthy home -------------------------------------------------------------------------


def test_a_healthy_home_is_all_ok_with_the_documented_json_shape(healthy):
    code, doc = doctor(healthy)
    assert code == 0, doc
    assert set(doc) == {"home", "journal", "thorough", "checks", "summary"}
    assert all(set(c) == CHECK_KEYS for c in doc["checks"])
    checks = by_id(doc)
    for cid in ("home", "journal", "file:journal.db", "file:views.db", "file:journal-signing-key.pem",
                "file:journal-anchor.json", "journal.verify", "views", "blobs", "checkpoint.age",
                "checkpoint.anchor", "cache", "versions"):
        assert checks[cid]["status"] == "ok", checks[cid]
        assert checks[cid]["fix"] is None
    assert doc["summary"] == {"ok": len(doc["checks"]), "warn": 0, "fail": 0, "failing_area": None}
    assert "1 stored artifact(s)" in checks["blobs"]["message"]


def test_thorough_recomputes_digests_and_replays_the_views(healthy):
    code, doc = doctor(healthy, "--thorough")
    assert code == 0 and doc["thorough"] is True
    checks = by_id(doc)
    assert "digests recomputed" in checks["blobs"]["message"]
    assert "equal a fresh replay" in checks["views"]["message"]


def test_human_output_is_one_line_per_check_with_the_fix_under_it(healthy):
    os.chmod(healthy.home / "journal-anchor.json", 0o644)
    result = healthy("doctor")
    lines = result.stdout.splitlines()
    assert lines[-1].endswith("1 warn, 0 fail")
    warn = next(i for i, line in enumerate(lines) if line.startswith("warn  file:journal-anchor.json"))
    assert lines[warn + 1].split() == ["fix:", "chmod", "600", str(healthy.home / "journal-anchor.json")]
    assert all(line.split()[0] in {"ok", "warn", "fail", "fix:"} for line in lines[:-1])
    assert result.exit_code == 0


def test_a_failing_report_goes_to_stderr_with_one_error_line(healthy):
    blob_path(healthy.home).unlink()
    result = healthy("doctor")
    assert result.exit_code == 5 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith("error[")] == [lines[-1]]
    assert lines[-1].startswith("error[artifact_missing]: 1 check(s) failed; first blobs: ")
    assert any(line.startswith("fail  blobs") for line in lines) and lines[-2].endswith("1 fail")


# --- broken homes: the home itself --------------------------------------------------------------


def test_a_missing_home_is_a_fail_line(run):
    code, doc = doctor(run)
    assert code == 5 and CODES[5] == "home_check_failed"
    home = by_id(doc)["home"]
    assert home["status"] == "fail" and "does not exist" in home["message"] and "mkdir -m 700" in home["fix"]
    assert [c["id"] for c in doc["checks"]] == ["home", "versions"]
    assert not run.home.exists()  # the doctor creates nothing


def test_a_home_that_is_a_file_is_a_fail_line(run):
    target = run.tmp / "not-a-dir"
    target.write_text("x")
    code, doc = doctor(run, home_dir=target)
    assert code == 5 and by_id(doc)["home"]["message"].endswith("is a file, not a directory")
    code, doc = doctor(run, home_dir=target / "below")
    assert code == 5 and "lies below a file" in by_id(doc)["home"]["message"]


def test_a_home_open_to_others_fails_with_chmod_700(healthy):
    os.chmod(healthy.home, 0o755)
    code, doc = doctor(healthy)
    home = by_id(doc)["home"]
    assert code == 5 and home["status"] == "fail" and home["area"] == "files"
    assert home["fix"] == f"chmod 700 {healthy.home}" and "0755" in home["message"]


def test_a_home_owned_by_another_user_fails(healthy):
    os.chown(healthy.home, 65534, 65534)
    try:
        code, doc = doctor(healthy)
    finally:
        os.chown(healthy.home, os.getuid(), os.getgid())
    assert code == 5 and "owned by uid 65534" in by_id(doc)["home"]["message"]


def test_a_symlinked_home_is_a_warning(healthy):
    link = healthy.tmp / "link-home"
    link.symlink_to(healthy.home)
    code, doc = doctor(healthy, home_dir=link)
    home = by_id(doc)["home"]
    assert code == 0 and home["status"] == "warn" and "symbolic link" in home["message"]


# --- broken homes: file permissions -------------------------------------------------------------


@pytest.mark.parametrize("name", ["journal-signing-key.pem", "cache.key"])
def test_a_secret_file_readable_by_others_fails(healthy, name):
    if not (healthy.home / name).exists():
        (healthy.home / name).write_text("0" * 64 + "\n")
    os.chmod(healthy.home / name, 0o640)
    code, doc = doctor(healthy)
    check = by_id(doc)[f"file:{name}"]
    assert code == 5 and check["status"] == "fail" and check["fix"] == f"chmod 600 {healthy.home / name}"


def test_a_world_writable_journal_fails_and_a_world_readable_one_warns(healthy):
    os.chmod(healthy.home / "journal.db", 0o644)
    code, doc = doctor(healthy)
    assert code == 0 and by_id(doc)["file:journal.db"]["status"] == "warn"
    os.chmod(healthy.home / "journal.db", 0o666)
    code, doc = doctor(healthy)
    check = by_id(doc)["file:journal.db"]
    assert code == 5 and check["status"] == "fail" and "0666" in check["message"]


def test_a_symlinked_secrets_file_fails(healthy):
    elsewhere = healthy.tmp / "elsewhere.json"
    elsewhere.write_text("{}")
    (healthy.home / "secrets.json").symlink_to(elsewhere)
    code, doc = doctor(healthy)
    check = by_id(doc)["file:secrets.json"]
    assert code == 5 and check["status"] == "fail" and "symbolic link" in check["message"]
    assert check["fix"].startswith("cp --remove-destination")


def test_a_state_file_owned_by_another_user_fails(healthy):
    os.chown(healthy.home / "views.db", 65534, 65534)
    code, doc = doctor(healthy)
    check = by_id(doc)["file:views.db"]
    assert code == 5 and check["status"] == "fail" and check["fix"].startswith("chown")


# --- broken homes: stored artifacts -------------------------------------------------------------


def test_a_missing_blob_fails_naming_the_version_and_the_verify_command(healthy):
    blob_path(healthy.home).unlink()
    code, doc = doctor(healthy)
    blobs = by_id(doc)["blobs"]
    assert code == 5 and blobs["status"] == "fail" and blobs["area"] == "files"
    assert CODES[5] == "artifact_missing" and "acme.echo 1.0.0: missing" in blobs["message"]
    assert blobs["fix"].startswith("skills verify acme.echo --version 1.0.0")


def test_a_blob_replaced_by_a_fifo_fails_without_hanging(healthy):
    blob = blob_path(healthy.home)
    blob.unlink()
    os.mkfifo(blob)
    code, doc = doctor(healthy)
    assert code == 5 and "a FIFO, not a regular file" in by_id(doc)["blobs"]["message"]


def test_a_tampered_blob_of_the_same_size_is_found_by_thorough(healthy):
    blob = blob_path(healthy.home)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))
    code, doc = doctor(healthy)
    assert code == 0, doc  # the cheap checks cannot see a same-size edit
    code, doc = doctor(healthy, "--thorough")
    assert code == 5 and "tampered" in by_id(doc)["blobs"]["message"] and CODES[5] == "artifact_tampered"


# --- broken homes: the journal and the views ----------------------------------------------------


def _tamper_journal(home: Path) -> None:
    con = sqlite3.connect(str(home / "journal.db"), isolation_level=None)
    for table in GUARDED_TABLES:
        for op in ("update", "delete"):
            con.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
    con.execute("UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), 'user:doctor-test', "
                "'user:someone-else') AS BLOB) WHERE rowid = 2")
    for statement in guard_statements():
        con.execute(statement)
    con.close()


def test_a_tampered_journal_fails_with_exit_9_naming_the_position(healthy):
    """The edit is under the newest checkpoint: --thorough verifies every event (the default
    verifies what follows the checkpoint, as ``journal verify --since-checkpoint``)."""
    _tamper_journal(healthy.home)
    code, doc = doctor(healthy, "--thorough")
    check = by_id(doc)["journal.verify"]
    assert code == 9 and check["status"] == "fail" and check["area"] == "journal"
    assert CODES[9] == "journal_tampered"
    assert "first bad position 2" in check["message"] and "skills journal verify" in check["fix"]


def test_the_doctor_does_not_put_back_a_dropped_guard(healthy):
    """It reads the journal as it is: a second run still sees the missing append-only triggers."""
    con = sqlite3.connect(str(healthy.home / "journal.db"), isolation_level=None)
    con.execute(f"DROP TRIGGER {GUARDED_TABLES[0]}_no_delete")
    con.close()
    for _ in range(2):
        code, doc = doctor(healthy, "--thorough")
        check = by_id(doc)["journal.verify"]
        assert code == 9 and "guard_missing" in check["message"], check


def test_journal_failures_win_over_file_failures(healthy):
    _tamper_journal(healthy.home)
    blob_path(healthy.home).unlink()
    code, doc = doctor(healthy, "--thorough")
    assert code == 9 and doc["summary"]["failing_area"] == "journal" and CODES[9] == "journal_tampered"
    assert by_id(doc)["blobs"]["status"] == "fail"


def test_a_journal_that_is_not_a_database_fails_cleanly(healthy):
    for suffix in ("", "-wal", "-shm"):
        if (healthy.home / f"journal.db{suffix}").exists():
            (healthy.home / f"journal.db{suffix}").unlink()
    (healthy.home / "journal.db").write_bytes(b"not a database" * 100)
    os.chmod(healthy.home / "journal.db", 0o600)
    code, doc = doctor(healthy)
    assert code == 9 and CODES[9] == "journal_unavailable"
    check = by_id(doc)["journal"]
    assert check["status"] == "fail" and "[journal_unavailable]" in check["message"]
    assert "not a database" in check["message"] and "restore journal.db" in check["fix"]
    assert doc["summary"]["fail"] == 1  # nothing that reads the journal is tried after that


def test_drifted_views_are_found_by_thorough(healthy):
    con = sqlite3.connect(str(healthy.home / "views.db"))
    with con:
        assert con.execute("UPDATE versions SET status = 'quarantined'").rowcount == 1
    con.close()
    code, doc = doctor(healthy)
    assert code == 0  # positions agree with the head: only a replay sees the edit
    code, doc = doctor(healthy, "--thorough")
    views = by_id(doc)["views"]
    assert code == 9 and views["status"] == "fail" and views["fix"] == "skills index rebuild"
    assert CODES[9] == "projection_drift"
    assert "table versions" in views["message"]


def test_views_ahead_of_the_journal_fail_with_exit_9(healthy):
    con = sqlite3.connect(str(healthy.home / "views.db"))
    with con:
        con.execute("UPDATE positions SET position = position + 5")
    con.close()
    code, doc = doctor(healthy)
    views = by_id(doc)["views"]
    assert code == 9 and views["status"] == "fail" and "ahead of the journal" in views["message"]
    assert CODES[9] == "projection_drift"


def test_missing_views_are_a_warning(healthy):
    for suffix in ("", "-wal", "-shm"):
        if (healthy.home / f"views.db{suffix}").exists():
            (healthy.home / f"views.db{suffix}").unlink()
    code, doc = doctor(healthy)
    assert code == 0 and by_id(doc)["views"]["status"] == "warn"


# --- checkpoints --------------------------------------------------------------------------------


def test_no_checkpoint_is_a_warning_with_the_command(run):
    path = b.write(run.tmp, "a.palyra-skill", b.artifact())
    assert run("install", "--artifact", path, "--allow-tofu").exit_code == 0
    code, doc = doctor(run)
    check = by_id(doc)["checkpoint.age"]
    assert check["status"] == "warn" and check["fix"].startswith("skills journal checkpoint")
    assert by_id(doc)["checkpoint.anchor"]["status"] == "ok"
    assert code in (0, 5)  # a checkpoint's absence alone never fails (journal.db may be 0644 today)
    assert doc["summary"]["failing_area"] != "journal"


def test_an_old_checkpoint_is_a_warning(healthy):
    code, doc = doctor(healthy, "--max-checkpoint-age", "0")
    check = by_id(doc)["checkpoint.age"]
    assert code == 0 and check["status"] == "warn" and "older than 0s" in check["message"]


@pytest.mark.parametrize("name", ["journal-anchor.json", "journal-signing-key.pem"])
def test_a_missing_anchor_or_key_with_checkpoints_fails(healthy, name):
    (healthy.home / name).unlink()
    code, doc = doctor(healthy)
    check = by_id(doc)["checkpoint.anchor"]
    assert code == 9 and check["status"] == "fail" and name in check["message"]
    assert "restore" in check["fix"] and CODES[9] == "journal_tampered"


def test_a_bad_max_checkpoint_age_is_a_usage_error(healthy):
    result = healthy("doctor", "--max-checkpoint-age", "soon")
    assert result.exit_code == 2 and "error[usage_error]" in result.stderr


# --- the cache ----------------------------------------------------------------------------------


def test_injected_and_stale_cache_entries_are_counted(healthy):
    modules = healthy.home / "cache" / "modules"
    modules.mkdir(parents=True, mode=0o700, exist_ok=True)
    os.chmod(healthy.home / "cache", 0o700)
    (modules / ("ab" * 32 + ".json")).write_text('{"format": 2}')
    os.chmod(modules / ("ab" * 32 + ".json"), 0o600)
    code, doc = doctor(healthy)
    cache = by_id(doc)["cache"]
    assert code == 0 and cache["status"] == "warn" and "1 not written with this home's key" in cache["message"]
    (modules / ("ab" * 32 + ".json")).unlink()
    (modules / ("cd" * 32 + ".cwasm")).write_bytes(b"\0")
    code, doc = doctor(healthy)
    assert by_id(doc)["cache"]["status"] == "warn" and "1 stale" in by_id(doc)["cache"]["message"]


def test_a_cache_directory_writable_by_others_fails(healthy):
    (healthy.home / "cache").mkdir(exist_ok=True)
    os.chmod(healthy.home / "cache", 0o777)
    code, doc = doctor(healthy)
    cache = by_id(doc)["cache"]
    assert code == 5 and cache["status"] == "fail" and cache["fix"].startswith("rm -rf")
    assert CODES[5] == "home_check_failed"


# --- PostgreSQL ---------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: nothing listens there


def test_an_unreachable_postgresql_journal_fails_without_showing_the_password(healthy):
    url = f"postgresql://ledger:hunter2-secret@127.0.0.1:{_closed_port()}/skills"
    result = healthy("--journal", url, "doctor", "--json")
    error = json.loads(result.stdout)["error"]
    doc = error["details"]
    check = by_id(doc)["journal"]
    assert result.exit_code == 9 and error["code"] == "journal_unavailable"
    assert check["status"] == "fail" and check["area"] == "journal"
    assert "not reachable" in check["message"] and "pg_isready" in check["fix"]
    assert "hunter2" not in result.output and doc["journal"].startswith("postgresql://ledger:***@127.0.0.1:")
    assert "journal.verify" not in by_id(doc)  # nothing else of the journal could be looked at
    human = healthy("--journal", url, "doctor")
    assert human.exit_code == 9 and "hunter2" not in human.output
