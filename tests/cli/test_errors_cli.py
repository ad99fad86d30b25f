"""Errors that help (issue 12): one line each, saying what is wrong and what to do next."""

from __future__ import annotations

import json
import os
import stat

import builders as b
import pytest
from clikit import KEY_A, KEY_B, KEY_ID_A, KEY_ID_B, Skills

from skill_ledger.cli.main import cli  # noqa: F401  (the command table is imported by Skills)


@pytest.fixture
def skills(tmp_path):
    return Skills(tmp_path)


def one_line(text: str) -> bool:
    return text.count("\n") == 1 and text.endswith("\n")


def test_a_file_that_is_not_a_zip_is_called_not_an_archive(skills):
    readme = skills.tmp / "README.md"
    readme.write_text("# a readme, not a skill\n" * 20)
    for command in (("install",), ("package", "inspect"), ("package", "verify")):
        r = skills(*command, "--artifact", readme)
        assert r.exit_code == 3, r.output
        assert r.stderr.startswith("error[zip]: ") and one_line(r.stderr)
        assert "not a .palyra-skill archive" in r.stderr and "not a ZIP file" in r.stderr


def test_a_truncated_zip_is_called_truncated(skills):
    data = b.artifact()
    path = b.write(skills.tmp, "cut.skill", data[: len(data) // 2])
    r = skills("package", "inspect", "--artifact", path)
    assert r.exit_code == 3 and "truncated or damaged ZIP archive" in r.stderr


@pytest.mark.parametrize("name", ["echo.wat", "echo.wasm"])
def test_a_text_module_is_a_usage_error_with_the_way_to_compile_it(skills, name):
    wat = skills.tmp / name
    wat.write_text(b.ECHO_WAT)
    manifest = skills.tmp / "skill.toml"
    manifest.write_text(b.manifest())
    key = skills.tmp / "k.pem"
    assert skills("keys", "generate", "--output", key).exit_code == 0
    r = skills("package", "build", "--manifest", manifest, "--module", wat, "--output", skills.tmp / "o.skill",
               "--signing-key-file", key, "--json")
    assert r.exit_code == 2, r.output
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "usage_error" and "WebAssembly text module (WAT)" in err["message"]
    assert "wat2wasm" in err["message"] and "--module echo.wasm" in err["message"]
    assert not (skills.tmp / "o.skill").exists()


def test_package_verify_of_an_untrusted_publisher_names_the_ways_to_trust_it(skills):
    path = b.write(skills.tmp, "a.skill", b.artifact())
    r, doc = skills.json("package", "verify", "--artifact", path)
    assert r.exit_code == 4 and one_line(r.stderr)
    assert "--allow-tofu" in r.stderr and f"skills trust allow acme {KEY_A} --reason TEXT" in r.stderr
    assert doc["error"]["hint"].startswith("pass --allow-tofu")
    assert doc["error"]["details"]["presented_key_id"] == KEY_ID_A
    # the hint's command works as printed
    assert skills("trust", "allow", "acme", KEY_A, "--reason", "vendor key").exit_code == 0
    assert skills("package", "verify", "--artifact", path).exit_code == 0


def test_tofu_key_mismatch_shows_the_pinned_and_the_presented_key_ids(skills):
    assert skills.install().exit_code == 0  # pins key A for acme
    r = skills.install("b.skill", skill_id="acme.other", seed=b.SEED_B)
    assert r.exit_code == 4
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "tofu_key_mismatch"
    assert err["message"] == f"TOFU pinned key mismatch for 'acme': pinned {KEY_ID_A}, presented {KEY_ID_B}"
    assert (err["details"]["pinned_key_id"], err["details"]["presented_key_id"]) == (KEY_ID_A, KEY_ID_B)
    assert f"skills trust revoke acme {KEY_ID_A}" in err["hint"] and f"skills trust allow acme {KEY_B}" in err["hint"]
    assert KEY_ID_A in r.stderr and KEY_ID_B in r.stderr and one_line(r.stderr)


def test_payload_hash_mismatch_names_an_entry_added_outside_the_integrity_list(skills):
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(b.artifact())) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    entries["assets/extra.txt"] = b"not signed"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n in sorted(entries):
            info = zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr, info.create_system = zipfile.ZIP_DEFLATED, 0o100644 << 16, 3
            z.writestr(info, entries[n])
    r, doc = skills.json("package", "inspect", "--artifact", b.write(skills.tmp, "x.skill", buf.getvalue()))
    assert r.exit_code == 3
    assert doc["error"]["message"] == "artifact payload hash mismatch (not in the integrity list: 'assets/extra.txt')"
    assert doc["error"]["details"] == {"unlisted_entries": ["assets/extra.txt"]}


COMMANDS_WITH_A_SKILL_ID = [
    ("info", "Bad_ID!"), ("check", "Bad_ID!"), ("history", "Bad_ID!"), ("verify", "Bad_ID!"), ("audit", "Bad_ID!"),
    ("quarantine", "BAD..ID", "--reason", "x"), ("disable", "a..b", "--reason", "x"),
    ("enable", "A.B", "--reason", "x"),
    ("rollback", "a b", "--reason", "x"), ("remove", "x/y", "--reason", "x"),
    ("run", "acme.echo", "--skill", "Bad_ID!"),
]


@pytest.mark.parametrize("args", COMMANDS_WITH_A_SKILL_ID, ids=lambda a: a[0])
def test_an_invalid_skill_id_is_a_usage_error_in_every_command(skills, args):
    assert skills.install().exit_code == 0
    r, doc = skills.json(*args)
    assert r.exit_code == 2, r.output
    assert doc["error"]["code"] == "usage_error" and "invalid skill id" in doc["error"]["message"]
    assert r.stderr.startswith("error[usage_error]: invalid skill id") and one_line(r.stderr)


@pytest.mark.parametrize("args,says", [
    (["list", "--jsn"], "No such option '--jsn'. Did you mean '--json'?"),
    (["lst"], "No such command 'lst'. Did you mean 'list'?"),
    (["trust", "alow", "p", "k"], "No such command 'alow'. Did you mean 'allow'?"),
    (["quarantine"], "Missing argument 'SKILL_ID'."),
    (["list", "--status", "gone"], "Invalid value for '--status'"),
])
def test_a_usage_error_is_one_line_with_clicks_suggestion(skills, args, says):
    r = skills(*args)
    assert r.exit_code == 2
    assert r.stderr.startswith("error[usage_error]: ") and one_line(r.stderr), r.stderr
    assert says in r.stderr and "--help'" in r.stderr
    assert "Usage:" not in r.output and "Error:" not in r.output
    r = skills(*args, "--json")
    assert r.exit_code == 2 and one_line(r.stderr) and json.loads(r.stdout)["error"]["code"] == "usage_error"


def test_secret_scope_forms_are_in_the_help_and_in_the_error(skills):
    r = skills("secret", "set", "--help")
    assert r.exit_code == 0
    for form in ("global", "skill:<skill_id>", "principal:<id>", "channel:<id>"):
        assert form in r.stdout
    r = skills("secret", "set", "examples.hello", "token", input="v")
    assert r.exit_code == 2 and one_line(r.stderr)
    assert "invalid secret scope 'examples.hello'" in r.stderr and "skill:<skill_id>" in r.stderr


def test_the_stored_artifact_check_names_the_tampering(skills):
    """``skills check`` checks the digest (not only presence) and says what it checked."""
    assert skills.install().exit_code == 0
    r, doc = skills.json("check")
    (result,) = doc["results"]
    assert result["ready"] and result["checked"][-1] == "artifact digest (sha256 recomputed)"
    assert "(checked status, eligibility, artifact digest" in skills("check").stdout
    digest = json.loads(skills("list", "--json").stdout)["entries"][0]["artifact_sha256"]
    blob = skills.home / "blobs" / "sha256" / digest
    os.chmod(blob, stat.S_IMODE(blob.stat().st_mode) | stat.S_IWUSR)
    blob.write_bytes(blob.read_bytes() + b"junk")
    r, doc = skills.json("check", "--strict")
    assert r.exit_code == 5
    (result,) = doc["results"]
    assert not result["ready"] and "does not match the digest recorded at install" in result["reasons"][0]
    assert "NOT READY" in skills("check").stdout
    assert skills.events("--kind", "skill.quarantined") == []  # read-only: `verify` quarantines, check does not


def test_check_trusts_a_file_a_run_verified_while_its_identity_is_unchanged(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters" / "runner"))
    import runner_kit as kit

    lab = kit.Lab(tmp_path / "home")
    try:
        sid = lab.install(kit.ECHO, tools=[("echo", kit.ANY, kit.ANY)])
        lab.run(sid, {"x": 1}, tool="echo")  # a full verification, remembered by the file's identity
    finally:
        lab.close()
    skills = Skills(tmp_path)
    (result,) = json.loads(skills("check", "--json").stdout)["results"]
    assert result["ready"]
    assert result["checked"][-1] == "artifact digest (file unchanged since its last full verification)"
