"""Interoperability with artifacts "built by someone else" (artifact-format.md §6-§14).

An independent builder and an independent verifier live in this file. They follow the
spec text literally and use only the standard library (``zipfile``, ``hashlib``, ``json``,
``tomllib``, ``base64``) and ``cryptography``; nothing from this project's ``domain`` or
``adapters`` is imported. The builder packages the Palyra project's own example skill
(``palyra-echo-http``, a manifest_version 1 skill; embedded below byte for byte and compared
with the shared fixture directory when it exists) and ``skills package verify`` must accept
it; the verifier must accept what ``skills package build`` produces.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from skill_ledger.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello"
FIXTURE = Path("/work/shared/fixtures/palyra-echo-http")
SKILLS = str(Path(sys.executable).with_name("skills"))

# The Palyra example skill, embedded so the test also runs on a fresh clone; when the shared copy
# is present, test_embedded_fixture_matches_the_shared_copy checks that the two are identical.
PALYRA_FILES: dict[str, bytes] = {
    "skill.toml": """manifest_version = 1
skill_id = "acme.echo_http"
name = "Echo + HTTP"
version = "1.0.0"
publisher = "acme"

[entrypoints]
[[entrypoints.tools]]
id = "acme.echo"
name = "echo"
description = "Echoes provided text"
input_schema = { type = "object", properties = { text = { type = "string" } }, required = ["text"] }
output_schema = { type = "object", properties = { echo = { type = "string" } }, required = ["echo"] }
risk = { default_sensitive = false, requires_approval = false }

[[entrypoints.tools]]
id = "acme.http_get"
name = "http_get"
description = "Fetches one allowlisted URL"
input_schema = { type = "object", properties = { url = { type = "string" } }, required = ["url"] }
output_schema = { type = "object", properties = { status = { type = "number" }, body = { type = "string" } }, required = ["status"] }
risk = { default_sensitive = true, requires_approval = true }

[capabilities.filesystem]
read_roots = ["skills/data"]
write_roots = ["skills/cache"]

[capabilities]
http_egress_allowlist = ["api.example.com"]
device_capabilities = []
node_capabilities = []

[[capabilities.secrets]]
scope = "skill:acme.echo_http"
key_names = ["api_token"]

[capabilities.quotas]
wall_clock_timeout_ms = 2000
fuel_budget = 5000000
max_memory_bytes = 33554432

[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"
""".encode(),
    "sbom.cdx.json": """{
  "bomFormat": "CycloneDX",
  "specVersion": "1.6",
  "version": 1,
  "metadata": {
    "component": {
      "name": "acme.echo_http",
      "type": "application",
      "version": "1.0.0"
    }
  },
  "components": []
}
""".encode(),
    "provenance.json": """{
  "builder": {
    "id": "local-dev"
  },
  "subject": [
    {
      "name": "module.wasm",
      "digest": {
        "sha256": "placeholder-generated-at-build"
      }
    }
  ]
}
""".encode(),
    "assets/prompt.txt": """You are a tiny echo/http skill.
- Return JSON only.
- Never call hosts outside the allowlist.
""".encode(),
    "module.wasm": bytes.fromhex("0061736d01000000"),
}

CONTEXT = b"palyra.skill.payload.v1"
SEED05 = bytes([0x05]) * 32
SEED0D = bytes([0x0D]) * 32


# --- an independent implementation of the spec ------------------------------------------------------------------------


def spec_payload_sha256(entries: dict[str, bytes]) -> str:
    """§8, literally."""
    h = hashlib.sha256()
    h.update(CONTEXT)
    for path in sorted(entries):
        if path == "signature.json":
            continue
        p = path.encode("utf-8")
        data = entries[path]
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def spec_key_id(public_key: bytes) -> str:
    """§9.2."""
    return "ed25519:" + hashlib.sha256(public_key).digest()[0:8].hex()


def spec_zip(entries: dict[str, bytes], *, stream: bool = False) -> bytes:
    """§11: sorted, deflate, 1980-01-01, 0644 regular files made on Unix, no comment, no ZIP64.

    ``stream=True`` writes through a non-seekable sink, so zipfile emits data descriptors
    (flag bit 3) the way a streaming producer would; §12 D4e accepts them.
    """
    class Sink(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            self.buf += b
            return len(b)

        def seekable(self) -> bool:
            return False

    sink = Sink() if stream else io.BytesIO()
    with zipfile.ZipFile(sink, "w") as z:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            z.writestr(info, entries[name])
    return bytes(sink.buf) if stream else sink.getvalue()


def independent_build(seed: bytes, *, stream: bool = False, signed_at: int = 1_700_000_000_000) -> tuple[bytes, dict]:
    """§13 for the Palyra fixture: module module.wasm, asset prompt.txt, the given sbom and provenance."""
    entries = {
        "modules/module.wasm": PALYRA_FILES["module.wasm"],
        "assets/prompt.txt": PALYRA_FILES["assets/prompt.txt"],
        "sbom.cdx.json": PALYRA_FILES["sbom.cdx.json"],
        "provenance.json": PALYRA_FILES["provenance.json"],
    }
    manifest = PALYRA_FILES["skill.toml"].decode("utf-8")
    assert "[integrity" not in manifest
    integrity = "".join(
        f'\n[[integrity.files]]\npath = "{path}"\nsha256 = "{hashlib.sha256(entries[path]).hexdigest()}"\n'
        for path in sorted(entries)
    )
    entries["skill.toml"] = (manifest.rstrip("\n") + "\n" + integrity).encode("utf-8")
    payload = spec_payload_sha256(entries)
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pk = sk.public_key().public_bytes_raw()
    envelope = {
        "algorithm": "ed25519-sha256",
        "publisher": tomllib.loads(manifest)["publisher"],
        "key_id": spec_key_id(pk),
        "public_key_base64": base64.b64encode(pk).decode("ascii"),
        "payload_sha256": payload,
        "signature_base64": base64.b64encode(sk.sign(payload.encode("ascii"))).decode("ascii"),
        "signed_at_unix_ms": signed_at,
    }
    entries["signature.json"] = json.dumps(envelope, indent=2, ensure_ascii=False).encode("utf-8")
    return spec_zip(entries, stream=stream), {"payload_sha256": payload, "public_key_hex": pk.hex(),
                                              "key_id": envelope["key_id"], "entries": sorted(entries)}


class Rejected(Exception):
    pass


def strict_b64(s: str) -> bytes:
    try:
        raw = base64.b64decode(s, validate=True)
    except ValueError as e:
        raise Rejected(f"bad base64: {e}") from None
    if base64.b64encode(raw).decode("ascii") != s:
        raise Rejected("non-canonical base64")
    return raw


def independent_verify(data: bytes) -> dict:
    """§12 (the parts a careful consumer checks with zipfile), §14 steps 2-9, §9.4 and §7."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        if len(names) != len(set(names)):
            raise Rejected("duplicate entries")
        entries = {}
        for info in infos:
            if info.is_dir() or info.flag_bits & 0x1 or info.compress_type not in (0, 8):
                raise Rejected(f"bad entry {info.filename}")
            parts = info.filename.split("/")
            if info.filename.startswith("/") or ":" in info.filename or any(p in ("", ".", "..") for p in parts):
                raise Rejected(f"bad path {info.filename}")
            entries[info.filename] = z.read(info)
    for required in ("skill.toml", "sbom.cdx.json", "provenance.json", "signature.json"):
        if required not in entries:
            raise Rejected(f"missing {required}")
    manifest = tomllib.loads(entries["skill.toml"].decode("utf-8"))
    sbom = json.loads(entries["sbom.cdx.json"].decode("utf-8"))
    if not (isinstance(sbom, dict) and sbom.get("bomFormat") == "CycloneDX" and isinstance(sbom.get("specVersion"), str)
            and sbom["specVersion"]):
        raise Rejected("sbom")
    prov = json.loads(entries["provenance.json"].decode("utf-8"))
    if not (isinstance(prov, dict) and isinstance(prov.get("builder"), dict) and isinstance(prov.get("subject"), list)
            and prov["subject"]):
        raise Rejected("provenance")
    if not any(p.startswith("modules/") and p.endswith(".wasm") for p in entries):
        raise Rejected("no module")
    env = json.loads(entries["signature.json"].decode("utf-8"))
    if set(env) != {"algorithm", "publisher", "key_id", "public_key_base64", "payload_sha256", "signature_base64",
                    "signed_at_unix_ms"}:
        raise Rejected("envelope members")
    if spec_payload_sha256(entries) != env["payload_sha256"]:
        raise Rejected("payload_hash_mismatch")
    if env["algorithm"] != "ed25519-sha256":
        raise Rejected("algorithm")
    pk = strict_b64(env["public_key_base64"])
    if len(pk) != 32 or env["key_id"] != spec_key_id(pk):
        raise Rejected("key")
    sig = strict_b64(env["signature_base64"])
    if len(sig) != 64:
        raise Rejected("signature length")
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, env["payload_sha256"].encode("ascii"))
    except InvalidSignature:
        raise Rejected("signature_verification_failed") from None
    if env["publisher"] != manifest["publisher"]:
        raise Rejected("publisher")
    expected = {p: hashlib.sha256(d).hexdigest() for p, d in entries.items() if p not in ("skill.toml", "signature.json")}
    declared = {f["path"]: f["sha256"] for f in manifest.get("integrity", {}).get("files", [])}
    if expected != declared:
        raise Rejected("integrity_mismatch")
    listed = [f["path"] for f in manifest["integrity"]["files"]]
    if listed != sorted(listed):
        raise Rejected("integrity list not sorted")
    return {"manifest": manifest, "envelope": env, "entries": entries}


# --- the independent implementation agrees with the spec's own vectors ------------------------------------------------


def test_independent_payload_hash_matches_reference_vectors():
    entries = {"modules/m.wasm": bytes.fromhex("0061736d01000000"), "skill.toml": b"x", "signature.json": b"ignored"}
    assert spec_payload_sha256(entries) == "df0bdd6a3c8db0a6a1e05ad90901b183906b0639180086eb826ed11892a0e8fc"
    assert spec_payload_sha256({}) == "3bd162ecf05b02c0309ca936df625d8a1aef3769e51f91633cea4b96fe8996ed"
    sig = Ed25519PrivateKey.from_private_bytes(SEED05).sign(b"df0bdd6a3c8db0a6a1e05ad90901b183906b0639180086eb826ed11892a0e8fc")
    assert base64.b64encode(sig).decode() == (
        "OObkYBxGVOHg1XJ1Nyz0/PwzglwCPVkBLCbJJ7YSKgw9THqWk5FsagjMxWpSGEJbqV/sB5Ias0BexxS1SBGADw==")
    pk = Ed25519PrivateKey.from_private_bytes(SEED05).public_key().public_bytes_raw()
    assert spec_key_id(pk) == "ed25519:7599776c3085e3f9"


def test_independent_artifact_passes_the_independent_verifier():
    data, facts = independent_build(SEED05)
    checked = independent_verify(data)
    assert checked["envelope"]["payload_sha256"] == facts["payload_sha256"]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    entries["modules/module.wasm"] += b"\0"
    with pytest.raises(Rejected, match="payload_hash_mismatch"):
        independent_verify(spec_zip(entries))


@pytest.mark.skipif(not FIXTURE.is_dir(), reason="the shared Palyra fixture directory is not on this machine")
def test_embedded_fixture_matches_the_shared_copy():
    for name, data in PALYRA_FILES.items():
        assert (FIXTURE / name).read_bytes() == data, name


# --- built by someone else, verified by `skills` ------------------------------------------------------------------------


def _write(tmp_path: Path, data: bytes, name: str = "palyra-echo-http.palyra-skill") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("stream", [False, True], ids=["seekable", "streamed-with-data-descriptors"])
def test_skills_verify_accepts_independent_artifact(tmp_path, stream):
    data, facts = independent_build(SEED05, stream=stream)
    art = _write(tmp_path, data)
    p = subprocess.run([SKILLS, "package", "verify", "--artifact", str(art), "--allow-tofu", "--json"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "SKILLS_HOME": str(tmp_path / "home")})
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["accepted"] is True
    assert doc["trust_decision"] == "would_pin_on_first_use"  # read-only: nothing was pinned
    assert doc["payload_sha256"] == facts["payload_sha256"]
    assert doc["manifest"]["skill_id"] == "acme.echo_http"
    assert doc["manifest"]["manifest_version"] == 1
    assert [w["code"] for w in doc["manifest_warnings"]] == ["legacy_manifest_version", "missing_operator_metadata"]
    assert doc["capability_grants"] == {
        "http_hosts": ["api.example.com"],
        "secret_keys": ["skill:acme.echo_http/api_token"],
        "storage_prefixes": ["skills/cache"],
        "channels": [],
    }
    assert [(b["action"], b["resource"], b["requires_approval"]) for b in doc["policy_bindings"]] == [
        ("skill.capability.filesystem.write", "skill:acme.echo_http", True),
        ("skill.capability.http.egress", "skill:acme.echo_http", True),
        ("skill.capability.vault.read", "skill:acme.echo_http", True),
        ("tool.execute", "tool:acme.echo", False),
        ("tool.execute", "tool:acme.http_get", True),
    ]


def test_skills_inspect_and_allowlist_on_independent_artifact(tmp_path):
    data, facts = independent_build(SEED0D)
    art = _write(tmp_path, data)
    runner = CliRunner()
    env = {"SKILLS_HOME": str(tmp_path / "home")}
    r = runner.invoke(cli, ["package", "inspect", "--artifact", str(art), "--json"], env=env)
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [e["path"] for e in doc["entries"]] == facts["entries"]
    assert doc["signature"]["key_id"] == facts["key_id"] == "ed25519:defe6330f78fcc11"
    r = runner.invoke(cli, ["package", "verify", "--artifact", str(art), "--trusted-publisher",
                            f"acme={facts['public_key_hex']}", "--json"], env=env)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["trust_decision"] == "allowlisted"
    r = runner.invoke(cli, ["package", "verify", "--artifact", str(art), "--trusted-publisher",
                            "acme=" + "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1", "--json"], env=env)
    assert r.exit_code == 4
    assert json.loads(r.stdout)["error"]["code"] == "trusted_publisher_key_mismatch"


def test_skills_rejects_independent_artifact_with_unsigned_extra(tmp_path):
    data, _ = independent_build(SEED05)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    entries["assets/extra.txt"] = b"not signed"
    art = _write(tmp_path, spec_zip(entries))
    p = subprocess.run([SKILLS, "package", "verify", "--artifact", str(art), "--allow-tofu"], capture_output=True,
                       text=True, timeout=60, env={**os.environ, "SKILLS_HOME": str(tmp_path / "home")})
    assert p.returncode == 3
    assert p.stderr == ("error[payload_hash_mismatch]: artifact payload hash mismatch "
                        "(not in the integrity list: 'assets/extra.txt')\n")


# --- built by `skills`, verified by the independent verifier ------------------------------------------------------------


def _skills_build(tmp_path: Path, *extra: str) -> tuple[Path, dict]:
    key = tmp_path / "key"
    key.write_bytes(SEED0D)
    out = tmp_path / "hello.palyra-skill"
    r = CliRunner().invoke(cli, [
        "package", "build", "--manifest", str(EXAMPLE / "skill.toml"),
        "--module", str(EXAMPLE / "modules" / "echo.wasm"), "--module", str(EXAMPLE / "modules" / "wordcount.wasm"),
        "--asset", f"templates/prompt.txt={EXAMPLE / 'assets' / 'prompt.txt'}",
        "--output", str(out), "--signing-key-file", str(key), "--json", *extra,
    ], env={"SKILLS_HOME": str(tmp_path / "home")})
    assert r.exit_code == 0, r.stderr
    return out, json.loads(r.stdout)


def test_independent_verifier_accepts_skills_build(tmp_path):
    out, built = _skills_build(tmp_path)
    checked = independent_verify(out.read_bytes())
    env = checked["envelope"]
    assert env["payload_sha256"] == built["payload_sha256"]
    assert env["key_id"] == built["key_id"] == "ed25519:defe6330f78fcc11"
    assert env["publisher"] == checked["manifest"]["publisher"] == "examples"
    assert list(env) == ["algorithm", "publisher", "key_id", "public_key_base64", "payload_sha256", "signature_base64",
                         "signed_at_unix_ms"]
    assert type(env["signed_at_unix_ms"]) is int
    assert sorted(checked["entries"]) == built["entries"]
    assert checked["entries"]["modules/echo.wasm"] == (EXAMPLE / "modules" / "echo.wasm").read_bytes()
    assert checked["entries"]["assets/templates/prompt.txt"] == (EXAMPLE / "assets" / "prompt.txt").read_bytes()
    # §5.7: compat keys written under their current names, scalars as key = value
    text = checked["entries"]["skill.toml"].decode()
    for needle in ("manifest_version = 2", "required_protocol_major = 1", 'min_palyra_version = "0.1.0"'):
        assert needle in text
    assert "min_runtime_version" not in text and "min_protocol_major" not in text


def test_skills_build_follows_the_zip_encoding_rules(tmp_path):
    """§11 as seen by zipfile, plus the raw layout: entries back to back, then CD, then a bare EOCD."""
    out, _ = _skills_build(tmp_path)
    data = out.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        assert [i.filename for i in infos] == sorted(i.filename for i in infos)
        assert z.comment == b""
        offset = 0
        for i in infos:
            assert not i.is_dir()
            assert i.compress_type == zipfile.ZIP_DEFLATED
            assert i.date_time == (1980, 1, 1, 0, 0, 0)
            assert i.create_system == 3
            assert i.external_attr >> 16 == 0o100644
            assert i.flag_bits & 0x1 == 0
            assert i.extra == b""
            assert i.header_offset == offset
            name_len, extra_len = int.from_bytes(data[offset + 26:offset + 28], "little"), int.from_bytes(
                data[offset + 28:offset + 30], "little")
            offset += 30 + name_len + extra_len + i.compress_size
            assert z.testzip() is None
    eocd = data[-22:]
    assert eocd[:4] == b"PK\x05\x06"
    cd_size = int.from_bytes(eocd[12:16], "little")
    cd_offset = int.from_bytes(eocd[16:20], "little")
    assert cd_offset == offset
    assert cd_offset + cd_size == len(data) - 22
    assert eocd[20:22] == b"\x00\x00"


def test_independent_verifier_catches_tampering_of_skills_build(tmp_path):
    out, _ = _skills_build(tmp_path)
    with zipfile.ZipFile(out) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    entries["assets/templates/prompt.txt"] += b" "
    with pytest.raises(Rejected, match="payload_hash_mismatch"):
        independent_verify(spec_zip(entries))


def test_non_ascii_names_round_trip_both_ways(tmp_path):
    """UTF-8 names with flag bit 11: written by the independent encoder, read by skills, and back."""
    asset = tmp_path / "données.txt"
    asset.write_text("bonjour")
    key = tmp_path / "key"
    key.write_bytes(SEED0D)
    out = tmp_path / "x.palyra-skill"
    r = CliRunner().invoke(cli, [
        "package", "build", "--manifest", str(EXAMPLE / "skill.toml"), "--module", str(EXAMPLE / "modules" / "echo.wasm"),
        "--module", str(EXAMPLE / "modules" / "wordcount.wasm"), "--asset", str(asset), "--output", str(out), "--signing-key-file", str(key), "--json",
    ], env={"SKILLS_HOME": str(tmp_path / "home")})
    assert r.exit_code == 0, r.stderr
    checked = independent_verify(out.read_bytes())
    assert checked["entries"]["assets/données.txt"] == b"bonjour"
    with zipfile.ZipFile(out) as z:
        assert z.getinfo("assets/données.txt").flag_bits & 0x800

    rebuilt = tmp_path / "rebuilt.palyra-skill"
    rebuilt.write_bytes(spec_zip(checked["entries"]))
    r = CliRunner().invoke(cli, ["package", "inspect", "--artifact", str(rebuilt), "--json"],
                           env={"SKILLS_HOME": str(tmp_path / "home")})
    assert r.exit_code == 0, r.stderr
    assert "assets/données.txt" in [e["path"] for e in json.loads(r.stdout)["entries"]]
