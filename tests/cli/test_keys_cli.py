"""``skills keys generate|show`` (cli.md "Keys and packaging")."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from skill_ledger.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
SKILLS = str(Path(sys.executable).with_name("skills"))
SEED0D = bytes([0x0D]) * 32
SEED05 = bytes([0x05]) * 32
FACTS0D = {
    "key_id": "ed25519:defe6330f78fcc11",
    "public_key_hex": "91a28a0b74381593a4d9469579208926afc8ad82c8839b7644359b9eba9a4b3a",
    "public_key_base64": "kaKKC3Q4FZOk2UaVeSCJJq/IrYLIg5t2RDWbnrqaSzo=",
}
FACTS05 = {
    "key_id": "ed25519:7599776c3085e3f9",
    "public_key_hex": "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1",
    "public_key_base64": "bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E=",
}


@pytest.fixture()
def run(tmp_path):
    runner = CliRunner()
    env = {"SKILLS_HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"), "SKILLS_JOURNAL": None}

    def invoke(*args, **kw):
        return runner.invoke(cli, [str(a) for a in args], env=env, **kw)

    return invoke


def pem(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --- generate --------------------------------------------------------------------------------------------------


def test_generate_json_reports_the_written_key(run, tmp_path):
    out = tmp_path / "k.pem"
    r = run("keys", "generate", "--output", out, "--json")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    doc = json.loads(r.stdout)
    assert list(doc) == ["key_id", "public_key_hex", "public_key_base64", "path"]
    assert doc["path"] == str(out)
    key = serialization.load_pem_private_key(out.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    pub = key.public_key().public_bytes_raw()
    assert doc["public_key_hex"] == pub.hex()
    assert doc["public_key_base64"] == base64.b64encode(pub).decode()
    assert doc["key_id"] == "ed25519:" + hashlib.sha256(pub).hexdigest()[:16]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_generate_never_prints_the_private_key(run, tmp_path):
    out = tmp_path / "k.pem"
    r = run("keys", "generate", "--output", out)
    assert r.exit_code == 0
    seed = serialization.load_pem_private_key(out.read_bytes(), password=None).private_bytes_raw()
    for text in (r.stdout, r.stderr):
        assert seed.hex() not in text
        assert base64.b64encode(seed).decode() not in text
        assert "PRIVATE KEY" not in text


def test_generate_human_output(run, tmp_path):
    out = tmp_path / "k.pem"
    r = run("keys", "generate", "-o", out)
    assert r.exit_code == 0
    lines = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert set(lines) == {"key_id", "public_key_hex", "public_key_base64", "path"}
    assert lines["path"].strip() == str(out)
    assert lines["key_id"].startswith("ed25519:")


def test_generate_refuses_to_overwrite(run, tmp_path):
    out = tmp_path / "k.pem"
    out.write_bytes(b"precious")
    r = run("keys", "generate", "--output", out, "--json")
    assert r.exit_code == 2
    assert r.stderr.startswith("error[usage_error]: ")
    assert json.loads(r.stdout)["error"]["code"] == "usage_error"
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem"]


def test_generate_force_overwrites_with_mode_0600(run, tmp_path):
    out = tmp_path / "k.pem"
    out.write_bytes(b"old")
    out.chmod(0o644)
    r = run("keys", "generate", "--output", out, "--force", "--json")
    assert r.exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    shown = json.loads(run("keys", "show", "--key", out, "--json").stdout)
    assert shown == json.loads(r.stdout)


def test_generate_requires_output(run):
    r = run("keys", "generate")
    assert r.exit_code == 2


def test_generate_writes_no_state(run, tmp_path):
    run("keys", "generate", "--output", tmp_path / "k.pem")
    assert not (tmp_path / "home").exists()
    assert not (tmp_path / "state").exists()


# --- show ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, facts",
    [
        (pem(SEED0D), FACTS0D),
        (SEED0D, FACTS0D),
        (SEED0D.hex().encode() + b"\n", FACTS0D),
        (SEED0D.hex().upper().encode(), FACTS0D),
        (b"DQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0=\n", FACTS0D),
        (pem(SEED05), FACTS05),
        (SEED05.hex().encode(), FACTS05),
    ],
    ids=["pem", "raw", "hex", "hex-upper", "base64", "pem-05", "hex-05"],
)
def test_show_formats_and_reference_vectors(run, tmp_path, content, facts):
    p = tmp_path / "key"
    p.write_bytes(content)
    r = run("keys", "show", "--key", p, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == {**facts, "path": str(p)}


def test_show_missing_file_is_not_found(run, tmp_path):
    r = run("keys", "show", "--key", tmp_path / "none", "--json")
    assert r.exit_code == 6
    assert r.stderr.startswith("error[file_not_found]: ")
    assert json.loads(r.stdout)["error"]["code"] == "file_not_found"


@pytest.mark.parametrize("content", [b"garbage", bytes(33), b"0d" * 31], ids=["text", "33-bytes", "short-hex"])
def test_show_invalid_key(run, tmp_path, content):
    p = tmp_path / "key"
    p.write_bytes(content)
    r = run("keys", "show", "--key", p, "--json")
    assert r.exit_code == 2
    assert r.stderr.startswith("error[invalid_signing_key]: signing key length is invalid")
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "invalid_signing_key"
    assert isinstance(err["details"]["actual"], int)


def test_show_encrypted_pem_is_invalid_key(run, tmp_path):
    p = tmp_path / "key"
    p.write_bytes(Ed25519PrivateKey.from_private_bytes(SEED0D).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")))
    r = run("keys", "show", "--key", p)
    assert r.exit_code == 2
    assert "invalid_signing_key" in r.stderr


def test_generated_key_signs_artifacts_with_the_shown_key_id(run, tmp_path):
    key = tmp_path / "k.pem"
    gen = json.loads(run("keys", "generate", "--output", key, "--json").stdout)
    ex = ROOT / "examples" / "hello"
    r = run("package", "build", "--manifest", ex / "skill.toml", "--module", ex / "modules" / "echo.wasm",
            "--module", ex / "modules" / "wordcount.wasm", "--output", tmp_path / "a.palyra-skill", "--signing-key-file", key, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["key_id"] == gen["key_id"]


# --- real processes ------------------------------------------------------------------------------------------


def test_subprocess_generate_and_refuse(tmp_path):
    env = {**os.environ, "SKILLS_HOME": str(tmp_path / "home")}
    key = tmp_path / "k.pem"
    p = subprocess.run([SKILLS, "keys", "generate", "--output", str(key), "--json"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    facts = json.loads(p.stdout)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    p = subprocess.run([SKILLS, "keys", "generate", "--output", str(key)], capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 2
    assert p.stderr.splitlines() == [p.stderr.splitlines()[0]]
    assert p.stderr.startswith("error[usage_error]: ")
    assert p.stdout == ""
    p = subprocess.run([SKILLS, "keys", "show", "--key", str(key), "--json"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 0
    assert json.loads(p.stdout) == facts
