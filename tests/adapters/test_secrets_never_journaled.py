"""Secrets never enter the journal (events.md guarantee 5), nor the views.

After a realistic run of commands, the bytes of journal.db and views.db (with their WAL
files), of every other file under the home except the secret store and the key files
themselves, and of the journal/history/index/trust exports contain none of:

* a publisher's signing key (the seed in raw, hex and base64 forms, the PEM, its DER),
  used through ``--signing-key-file`` and ``--signing-key-env``, nor the home's journal
  checkpoint key;
* a secret value set with ``skills secret set`` and read by a tool through
  ``secret_get`` (the run's own output and log redact it as well).
"""

from __future__ import annotations

import base64
import json
import os
import secrets as pysecrets
import subprocess
from pathlib import Path

import helpers_ledger as h
import pytest

from skill_ledger.domain.signing import parse_signing_key, public_key_from_seed

# A json-v1 tool that reads global/api_token, logs it and returns it as {"v": "<value>"}.
LEAK_WAT = r"""(module
  (import "skills:host/v1" "log" (func $log (param i32 i32 i32)))
  (import "skills:host/v1" "secret_get" (func $secret_get (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 16)
  (global $heap (mut i32) (i32.const 8192))
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32) (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $p))
  (data (i32.const 100) "global/api_token")
  (data (i32.const 2042) "{\"v\":\"")
  (func (export "leak") (param $ptr i32) (param $len i32) (result i64)
    (local $n i32)
    (local.set $n (call $secret_get (i32.const 100) (i32.const 16) (i32.const 2048) (i32.const 1024)))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (local.set $n (i32.const 0))))
    (call $log (i32.const 2) (i32.const 2048) (local.get $n))
    (i32.store8 (i32.add (i32.const 2048) (local.get $n)) (i32.const 34))
    (i32.store8 (i32.add (i32.const 2049) (local.get $n)) (i32.const 125))
    (i64.or (i64.shl (i64.const 2042) (i64.const 32)) (i64.extend_i32_u (i32.add (local.get $n) (i32.const 8))))))"""

SECRETS_MANIFEST = """[capabilities]
http_egress_allowlist = []

[[capabilities.secrets]]
scope = "global"
key_names = ["api_token"]
"""

EXCLUDED = {"secrets.json", ".secrets.lock", "journal-signing-key.pem"}


def forms_of_seed(seed: bytes) -> list[bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(seed)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    out = [seed, seed.hex().encode(), seed.hex().upper().encode(), der, pem, body, base64.b64encode(der)]
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        b = enc(seed)
        out += [b, b.rstrip(b"=")]
    assert public_key_from_seed(seed) not in out  # the public key is fine to record
    return out


def stored_bytes(home: Path) -> dict[str, bytes]:
    """Every file under the home (journal and views with their WAL files, blobs, caches,
    data) except the secret store and the key files, whose job is to hold secrets."""
    out = {}
    for path in sorted(home.rglob("*")):
        if path.is_file() and path.name not in EXCLUDED:
            out[str(path.relative_to(home))] = path.read_bytes()
    assert any(name.startswith("journal.db") for name in out) and any(n.startswith("views.db") for n in out)
    return out


def cli(home: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
        expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*h.SKILLS, "--home", str(home), *args], capture_output=True, text=True, input=stdin,
                          env=env or h.cli_env(), timeout=120, cwd=str(h.ROOT))
    if expect is not None:
        assert proc.returncode == expect, f"skills {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}"
    return proc


def exports(home: Path) -> dict[str, str]:
    return {
        "journal": cli(home, "--json", "journal").stdout,
        "list": cli(home, "--json", "list").stdout,
        "trust export": cli(home, "trust", "export").stdout,
        "index export": cli(home, "index", "export").stdout,
    }


def find(needles: list[bytes], haystacks: dict[str, bytes]) -> list[str]:
    return [f"{name} contains secret form #{i}" for name, data in haystacks.items()
            for i, needle in enumerate(needles) if needle in data]


@pytest.mark.slow
def test_signing_keys_never_reach_the_journal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = tmp_path / "publisher.pem"
    cli(home, "keys", "generate", "--output", str(key))
    pem = key.read_bytes()
    seed = parse_signing_key(pem)
    env = h.cli_env(PUBLISHER_KEY_PEM=pem.decode())
    manifest = h.ROOT / "examples" / "hello" / "skill.toml"
    module = h.ROOT / "examples" / "hello" / "modules" / "echo.wasm"
    wordcount = h.ROOT / "examples" / "hello" / "modules" / "wordcount.wasm"
    first, second = tmp_path / "hello-1.palyra-skill", tmp_path / "hello-2.palyra-skill"
    cli(home, "package", "build", "--manifest", str(manifest), "--module", str(module), "--module", str(wordcount),
        "--signing-key-file", str(key), "--output", str(first))
    manifest2 = tmp_path / "skill.toml"
    manifest2.write_text(manifest.read_text().replace('version = "1.0.0"', 'version = "1.1.0"'))
    cli(home, "package", "build", "--manifest", str(manifest2), "--module", str(module), "--module", str(wordcount),
        "--signing-key-env", "PUBLISHER_KEY_PEM", "--output", str(second), env=env)
    cli(home, "install", "--artifact", str(first), "--allow-tofu", env=env)
    cli(home, "install", "--artifact", str(second), env=env)
    cli(home, "quarantine", "examples.hello", "--reason", "checking")
    cli(home, "enable", "examples.hello", "--reason", "checked")
    cli(home, "install", "--artifact", str(key), expect=3)  # the key file installed by mistake
    cli(home, "trust", "allow", "examples", public_key_from_seed(bytes([9]) * 32).hex(), "--reason", "second key")
    cli(home, "journal", "checkpoint")
    journal_seed = parse_signing_key((home / "journal-signing-key.pem").read_bytes())
    cli(home, "journal", "verify")

    needles = forms_of_seed(seed) + forms_of_seed(journal_seed)
    stored = stored_bytes(home)
    # positive control: the scan does see what the journal holds (the public keys)
    assert find([public_key_from_seed(seed).hex().encode()], {k: v for k, v in stored.items() if "journal" in k})
    problems = find(needles, stored)
    problems += find(needles, {k: v.encode() for k, v in exports(home).items()})
    assert not problems, problems


@pytest.mark.slow
def test_secret_values_never_reach_the_journal_or_the_views(tmp_path: Path) -> None:
    home = tmp_path / "home"
    value = "sk-live-" + pysecrets.token_hex(16)
    artifact = h.write(tmp_path, "secretive.palyra-skill",
                       h.build("acme.secretive", "1.0.0", "acme", wat=LEAK_WAT, tool="leak", extra=SECRETS_MANIFEST))
    cli(home, "secret", "set", "global", "api_token", stdin=value + "\n")
    listed = cli(home, "--json", "secret", "list").stdout
    assert "api_token" in listed and value not in listed
    installed = cli(home, "--json", "install", "--artifact", artifact, "--allow-tofu", expect=None)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    ran = cli(home, "--json", "run", "acme.leak", "--skill", "acme.secretive", "--input", "{}", expect=None)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout)["output"] == {"v": "[redacted]"}, ran.stdout  # the tool did read the secret
    assert value not in ran.stdout + ran.stderr

    cli(home, "quarantine", "acme.secretive", "--reason", "no runs for now")
    denied = cli(home, "--json", "run", "acme.leak", "--skill", "acme.secretive", "--input", "{}", expect=7)
    assert value not in denied.stdout + denied.stderr
    cli(home, "enable", "acme.secretive", "--reason", "runs again")
    again = cli(home, "run", "acme.leak", "--skill", "acme.secretive", "--input", "{}", expect=None)
    assert again.returncode == 0 and value not in again.stdout + again.stderr
    cli(home, "secret", "remove", "global", "api_token")
    cli(home, "journal", "verify")

    kinds = [json.loads(line)["kind"] for line in exports(home)["journal"].splitlines()]
    assert "skill.execution_denied" in kinds  # the denial was journaled, by name only
    needles = [value.encode(), base64.b64encode(value.encode()), value.encode().hex().encode()]
    stored = stored_bytes(home)
    # positive control: the secret's name (scope/key, from the manifest) is in the journal
    assert find([b"api_token"], {k: v for k, v in stored.items() if k.startswith("journal.db")})
    problems = find(needles, stored)
    problems += find(needles, {k: v.encode() for k, v in exports(home).items()})
    assert not problems, problems
    assert os.stat(home / "secrets.json").st_mode & 0o077 == 0
