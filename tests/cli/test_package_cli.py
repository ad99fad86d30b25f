"""``skills package build|inspect|verify`` (cli.md "Keys and packaging"): the output documents,
the trust flags, the failure exit codes, and that nothing is written but the output."""

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

from skill_ledger.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello"
SKILLS = str(Path(sys.executable).with_name("skills"))
SEED0D = bytes([0x0D]) * 32
PUB0D_HEX = "91a28a0b74381593a4d9469579208926afc8ad82c8839b7644359b9eba9a4b3a"
KEYID0D = "ed25519:defe6330f78fcc11"
PUB05_HEX = "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"
ENTRIES = ["assets/prompt.txt", "modules/echo.wasm", "modules/wordcount.wasm", "provenance.json", "sbom.cdx.json",
           "signature.json", "skill.toml"]
# Both modules of the example: its manifest's default_module_path names wordcount.wasm, and the
# build refuses a manifest whose module paths are not all given.
MODULES = ["--module", EXAMPLE / "modules" / "echo.wasm", "--module", EXAMPLE / "modules" / "wordcount.wasm"]


class Env:
    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.key = tmp_path / "key.hex"
        self.key.write_text(SEED0D.hex() + "\n")
        self.runner = CliRunner()
        self.env = {"SKILLS_HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"),
                    "SKILLS_JOURNAL": None, "SOURCE_DATE_EPOCH": None}

    def run(self, *args, env=None, **kw):
        return self.runner.invoke(cli, [str(a) for a in args], env={**self.env, **(env or {})}, **kw)

    def build(self, output: Path | None = None, *extra, key: bool = True, env=None):
        output = output or self.tmp / "hello.palyra-skill"
        args = ["package", "build", "--manifest", EXAMPLE / "skill.toml", *MODULES,
                "--asset", EXAMPLE / "assets" / "prompt.txt", "--output", output]
        if key:
            args += ["--signing-key-file", self.key]
        return self.run(*args, *extra, env=env)

    def artifact(self) -> Path:
        out = self.tmp / "hello.palyra-skill"
        if not out.exists():
            r = self.build(out)
            assert r.exit_code == 0, r.stderr
        return out


@pytest.fixture()
def e(tmp_path) -> Env:
    return Env(tmp_path)


def entries_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def rezip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n in sorted(entries):
            info = zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            z.writestr(info, entries[n])
    return buf.getvalue()


# --- build ------------------------------------------------------------------------------------------------------


def test_build_json_document(e):
    out = e.tmp / "hello.palyra-skill"
    r = e.build(out, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc) == ["artifact", "artifact_sha256", "payload_sha256", "skill_id", "version", "publisher", "key_id",
                         "entries"]
    assert doc["artifact"] == str(out)
    assert doc["artifact_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert doc["skill_id"] == "examples.hello"
    assert doc["version"] == "1.0.0"
    assert doc["publisher"] == "examples"
    assert doc["key_id"] == KEYID0D
    assert doc["entries"] == ENTRIES
    assert sorted(entries_of(out)) == ENTRIES
    assert json.loads(entries_of(out)["signature.json"])["payload_sha256"] == doc["payload_sha256"]


def test_build_human_output(e):
    r = e.build()
    assert r.exit_code == 0
    assert "examples.hello" in r.stdout and KEYID0D in r.stdout
    for name in ENTRIES:
        assert name in r.stdout


def test_build_names_inside_the_artifact(e):
    out = e.tmp / "named.palyra-skill"
    r = e.run("package", "build", "--manifest", EXAMPLE / "skill.toml",
              "--module", f"lib/echo.wasm={EXAMPLE / 'modules' / 'echo.wasm'}",
              *MODULES,
              "--asset", f"templates/prompt.txt={EXAMPLE / 'assets' / 'prompt.txt'}",
              "--output", out, "--signing-key-file", e.key, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["entries"] == [
        "assets/templates/prompt.txt", "modules/echo.wasm", "modules/lib/echo.wasm", "modules/wordcount.wasm",
        "provenance.json", "sbom.cdx.json", "signature.json", "skill.toml",
    ]


def test_build_with_given_sidecars(e):
    sbom = e.tmp / "bom.json"
    sbom.write_bytes(b'{"bomFormat":"CycloneDX","specVersion":"1.6"}')
    prov = e.tmp / "prov.json"
    prov.write_bytes(b'{"builder":{"id":"palyra-ci"},"subject":[{"name":"module.wasm"}]}')
    out = e.tmp / "x.palyra-skill"
    r = e.build(out, "--sbom", sbom, "--provenance", prov)
    assert r.exit_code == 0, r.stderr
    got = entries_of(out)
    assert got["sbom.cdx.json"] == sbom.read_bytes()
    assert got["provenance.json"] == prov.read_bytes()


def test_build_generates_sidecars(e):
    got = entries_of(e.artifact())
    sbom = json.loads(got["sbom.cdx.json"])
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    names = {c["name"] for c in sbom["components"]}
    assert names == {"modules/echo.wasm", "modules/wordcount.wasm", "assets/prompt.txt"}
    prov = json.loads(got["provenance.json"])
    assert isinstance(prov["builder"], dict)
    assert {s["name"] for s in prov["subject"]} == {"modules/echo.wasm", "modules/wordcount.wasm",
                                                    "assets/prompt.txt"}


def test_build_signing_key_from_stdin(e):
    out = e.tmp / "x.palyra-skill"
    r = e.run(
        "package", "build", "--manifest", EXAMPLE / "skill.toml", *MODULES,
        "--output", out, "--signing-key-stdin", "--json", input=base64.b64encode(SEED0D).decode() + "\n")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["key_id"] == KEYID0D


def test_build_signing_key_from_env(e):
    out = e.tmp / "x.palyra-skill"
    r = e.build(out, "--signing-key-env", "MY_KEY", "--json", key=False, env={"MY_KEY": SEED0D.hex()})
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["key_id"] == KEYID0D


def test_build_signing_key_env_unset_is_usage(e):
    out = e.tmp / "x.palyra-skill"
    r = e.build(out, "--signing-key-env", "NOT_SET_ANYWHERE", key=False, env={"NOT_SET_ANYWHERE": None})
    assert r.exit_code == 2
    assert r.stderr.startswith("error[usage_error]: ")
    assert not out.exists()


@pytest.mark.parametrize("extra", [[], ["--signing-key-env", "K"]], ids=["none", "two"])
def test_build_needs_exactly_one_key_source(e, extra):
    out = e.tmp / "x.palyra-skill"
    r = e.build(out, *extra, "--json", key=bool(extra), env={"K": SEED0D.hex()})
    assert r.exit_code == 2
    assert json.loads(r.stdout)["error"]["code"] == "usage_error"
    assert not out.exists()


def test_build_bad_signing_key_writes_nothing(e):
    bad = e.tmp / "bad.key"
    bad.write_text("not a key")
    out = e.tmp / "x.palyra-skill"
    r = e.build(out, "--signing-key-file", bad, key=False)
    assert r.exit_code == 2
    assert r.stderr.startswith("error[invalid_signing_key]: ")
    assert "not a key" not in r.stderr
    assert not out.exists()


def test_build_of_the_readme_tour_without_the_default_module_is_refused(e):
    """The README's tour built the example with echo.wasm alone, and the wordcount tool (served by
    operator.plugin.default_module_path) then had no module; build, install, audit and check all
    succeeded. Now the build says what is missing."""
    out = e.tmp / "x.palyra-skill"
    r = e.run("package", "build", "--manifest", EXAMPLE / "skill.toml", "--module", EXAMPLE / "modules" / "echo.wasm",
              "--output", out, "--signing-key-file", e.key, "--json")
    assert r.exit_code == 3
    err = json.loads(r.stdout)["error"]
    assert (err["code"], err["details"]["code"]) == ("manifest_validation", "default_module_missing")
    assert r.stderr == ("error[manifest_validation]: manifest validation failed: operator.plugin.default_module_path "
                        "'modules/wordcount.wasm' is not among the modules given with --module (modules/echo.wasm); "
                        "add --module for it\n")
    assert not out.exists()


def test_build_refuses_a_schema_reference_outside_the_manifest(e):
    manifest = e.tmp / "skill.toml"
    text = (EXAMPLE / "skill.toml").read_text()
    manifest.write_text(text.replace('text = { type = "string", maxLength = 4096 }',
                                     'text = { "$ref" = "file:///etc/passwd" }', 1))
    r = e.run("package", "build", "--manifest", manifest, *MODULES, "--output", e.tmp / "x.palyra-skill",
              "--signing-key-file", e.key, "--json")
    assert r.exit_code == 3
    err = json.loads(r.stdout)["error"]
    assert (err["code"], err["details"]["code"], err["details"]["tool_id"]) == (
        "manifest_validation", "tool_schema_reference", "examples.echo")
    assert "input_schema references file:///etc/passwd" in err["message"]


def test_build_rejected_manifest_exit_3_and_no_output(e):
    manifest = e.tmp / "skill.toml"
    manifest.write_text((EXAMPLE / "skill.toml").read_text().replace('publisher = "examples"', 'publisher = "Examples"'))
    out = e.tmp / "x.palyra-skill"
    before = sorted(p.name for p in e.tmp.iterdir())
    r = e.run("package", "build", "--manifest", manifest, *MODULES,
              "--output", out, "--signing-key-file", e.key, "--json")
    assert r.exit_code == 3
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "manifest_validation"
    assert err["details"]["code"] == "identifier_invalid"
    assert r.stderr.startswith("error[manifest_validation]: ")
    assert sorted(p.name for p in e.tmp.iterdir()) == before


def test_build_missing_module_is_not_found(e):
    out = e.tmp / "x.palyra-skill"
    r = e.run("package", "build", "--manifest", EXAMPLE / "skill.toml", "--module", e.tmp / "nope.wasm",
              "--output", out, "--signing-key-file", e.key)
    assert r.exit_code == 6
    assert r.stderr.startswith("error[file_not_found]: ")
    assert not out.exists()


def test_build_writes_no_state(e):
    e.artifact()
    assert not (e.tmp / "home").exists()
    assert not (e.tmp / "state").exists()


def test_reproducible_build_is_byte_identical(e):
    a, b = e.tmp / "a.palyra-skill", e.tmp / "b.palyra-skill"
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    assert e.build(a, "--reproducible", env=env).exit_code == 0
    assert e.build(b, "--reproducible", env=env).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    assert json.loads(entries_of(a)["signature.json"])["signed_at_unix_ms"] == 1_700_000_000_000


def test_reproducible_build_with_bad_epoch_is_usage(e):
    out = e.tmp / "x.palyra-skill"
    r = e.build(out, "--reproducible", env={"SOURCE_DATE_EPOCH": "yesterday"})
    assert r.exit_code == 2
    assert not out.exists()


# --- inspect -----------------------------------------------------------------------------------------------------


def test_inspect_json_document(e):
    art = e.artifact()
    r = e.run("package", "inspect", "--artifact", art, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc) == ["manifest", "signature", "payload_sha256", "artifact_sha256", "entries", "manifest_warnings"]
    assert doc["artifact_sha256"] == hashlib.sha256(art.read_bytes()).hexdigest()
    assert doc["manifest"]["skill_id"] == "examples.hello"
    assert doc["signature"]["key_id"] == KEYID0D
    assert doc["signature"]["payload_sha256"] == doc["payload_sha256"]
    got = entries_of(art)
    assert [x["path"] for x in doc["entries"]] == ENTRIES
    for x in doc["entries"]:
        assert x["size"] == len(got[x["path"]])
        assert x["sha256"] == hashlib.sha256(got[x["path"]]).hexdigest()
    assert doc["manifest_warnings"] == []


def test_inspect_takes_no_trust_decision(e):
    r = e.run("package", "inspect", "--artifact", e.artifact())
    assert r.exit_code == 0
    assert "trust not evaluated" in r.stdout


def test_inspect_tampered_artifact_exit_3(e):
    got = entries_of(e.artifact())
    got["assets/prompt.txt"] += b"!"
    bad = e.tmp / "bad.palyra-skill"
    bad.write_bytes(rezip(got))
    r = e.run("package", "inspect", "--artifact", bad, "--json")
    assert r.exit_code == 3
    message = "artifact payload hash mismatch (changed: 'assets/prompt.txt')"  # the entry that changed, named
    assert json.loads(r.stdout) == {"error": {"code": "payload_hash_mismatch", "message": message,
                                              "details": {"changed_entries": ["assets/prompt.txt"]}}}
    assert r.stderr == f"error[payload_hash_mismatch]: {message}\n"


def test_inspect_not_a_zip_exit_3(e):
    bad = e.tmp / "bad.palyra-skill"
    bad.write_bytes(b"hello")
    r = e.run("package", "inspect", "--artifact", bad)
    assert r.exit_code == 3
    assert r.stderr.startswith("error[zip]: ")


def test_inspect_corrupt_deflate_data_is_an_artifact_rejection(e):
    """A CRC/deflate error inside the archive (`io` kind, §12 D5h) rejects the artifact: exit 3, not 1 (a bug)."""
    data = bytearray(e.artifact().read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo("assets/prompt.txt")
    start = info.header_offset + 30 + len(info.filename.encode())
    data[start + info.compress_size // 2] ^= 0xFF
    bad = e.tmp / "crc.palyra-skill"
    bad.write_bytes(bytes(data))
    r = e.run("package", "inspect", "--artifact", bad, "--json")
    assert json.loads(r.stdout)["error"]["code"] == "io"
    assert r.stderr.startswith("error[io]: ")
    assert r.exit_code == 3


def test_inspect_missing_artifact_exit_6(e):
    r = e.run("package", "inspect", "--artifact", e.tmp / "nope.palyra-skill", "--json")
    assert r.exit_code == 6
    assert json.loads(r.stdout)["error"]["code"] == "file_not_found"


# --- verify -------------------------------------------------------------------------------------------------------


def test_verify_without_trust_is_untrusted_exit_4(e):
    r = e.run("package", "verify", "--artifact", e.artifact(), "--json")
    assert r.exit_code == 4
    kid = KEYID0D
    hint = ("pass --allow-tofu to pin its key on first use, or allowlist the key first: "
            f"skills trust allow examples {PUB0D_HEX} --reason TEXT")
    assert json.loads(r.stdout)["error"] == {
        "code": "untrusted_publisher", "message": f"untrusted publisher 'examples' (signed with key {kid})",
        "details": {"publisher": "examples", "presented_key_id": kid, "presented_key_hex": PUB0D_HEX},
        "hint": hint}
    assert r.stderr == (f"error[untrusted_publisher]: untrusted publisher 'examples' (signed with key {kid}); "
                        f"hint: {hint}\n")


def test_verify_allow_tofu_is_read_only(e):
    art = e.artifact()
    for _ in range(2):  # not recorded: the second run would pin on first use again
        r = e.run("package", "verify", "--artifact", art, "--allow-tofu", "--json")
        assert r.exit_code == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["trust_decision"] == "would_pin_on_first_use"  # nothing was pinned: not tofu_newly_pinned
    assert list(doc) == ["accepted", "trust_decision", "payload_sha256", "manifest", "manifest_warnings",
                         "capability_grants", "policy_bindings"]
    assert doc["accepted"] is True
    assert doc["manifest"]["publisher"] == "examples"
    assert doc["capability_grants"] == {"http_hosts": [], "secret_keys": [], "storage_prefixes": [], "channels": []}
    tools = tomllib.loads((EXAMPLE / "skill.toml").read_text())["entrypoints"]["tools"]
    assert doc["policy_bindings"] == [
        {"action": "tool.execute", "resource": f"tool:{t['id']}",
         "requires_approval": bool(t.get("risk", {}).get("default_sensitive") or t.get("risk", {}).get("requires_approval"))}
        for t in sorted(tools, key=lambda t: t["id"])
    ]
    assert not (e.tmp / "home").exists()
    assert not (e.tmp / "state").exists()


def test_verify_trusted_publisher_flag(e):
    r = e.run("package", "verify", "--artifact", e.artifact(), "--trusted-publisher", f"examples={PUB0D_HEX.upper()}",
              "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["trust_decision"] == "allowlisted"


def test_verify_trusted_publisher_other_key_exit_4(e):
    r = e.run("package", "verify", "--artifact", e.artifact(), "--trusted-publisher", f"examples={PUB05_HEX}",
              "--allow-tofu", "--json")
    assert r.exit_code == 4
    assert json.loads(r.stdout)["error"]["code"] == "trusted_publisher_key_mismatch"


def test_verify_trusted_publisher_for_someone_else_does_not_help(e):
    r = e.run("package", "verify", "--artifact", e.artifact(), "--trusted-publisher", f"acme={PUB0D_HEX}")
    assert r.exit_code == 4
    assert r.stderr.startswith("error[untrusted_publisher]: ")


@pytest.mark.parametrize("value", ["examples", f"examples={PUB0D_HEX[:10]}", f"Examples={PUB0D_HEX}"],
                         ids=["no-equals", "short-key", "bad-publisher"])
def test_verify_malformed_trusted_publisher_flag_is_usage(e, value):
    """cli.md: exit 2 is a usage error (bad flags); a malformed flag is not a rejected artifact."""
    r = e.run("package", "verify", "--artifact", e.artifact(), "--trusted-publisher", value, "--json")
    assert "error" in json.loads(r.stdout)
    assert r.exit_code == 2


def test_verify_trust_store_allowlist_and_pin(e):
    art = e.artifact()
    store = e.tmp / "trust.json"
    store.write_text(json.dumps({"trusted_publishers": {"examples": [PUB0D_HEX]}}))
    r = e.run("package", "verify", "--artifact", art, "--trust-store", store, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["trust_decision"] == "allowlisted"

    store.write_text(json.dumps({"tofu_publishers": {"examples": PUB0D_HEX}}))
    r = e.run("package", "verify", "--artifact", art, "--trust-store", store, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["trust_decision"] == "tofu_pinned"
    assert json.loads(store.read_text()) == {"tofu_publishers": {"examples": PUB0D_HEX}}  # never rewritten

    store.write_text(json.dumps({"tofu_publishers": {"examples": PUB05_HEX}}))
    r = e.run("package", "verify", "--artifact", art, "--trust-store", store, "--allow-tofu", "--json")
    assert r.exit_code == 4
    assert json.loads(r.stdout)["error"]["code"] == "tofu_key_mismatch"


def test_verify_trust_store_missing_is_not_found(e):
    r = e.run("package", "verify", "--artifact", e.artifact(), "--trust-store", e.tmp / "none.json", "--json")
    assert r.exit_code == 6
    assert json.loads(r.stdout)["error"]["code"] == "file_not_found"


def test_verify_trust_store_malformed_is_serialization(e):
    store = e.tmp / "trust.json"
    store.write_text('{"trusted_publishers": {"examples": ["nothex"]}}')
    r = e.run("package", "verify", "--artifact", e.artifact(), "--trust-store", store, "--json")
    assert json.loads(r.stdout)["error"]["code"] == "serialization"
    assert r.exit_code != 0 and r.exit_code != 1


def test_verify_uses_the_journal_trust_state_and_records_nothing(e):
    """cli.md: verify runs against the trust state projected from the journal; a TOFU pin is reported, not recorded."""
    art = e.artifact()
    home = e.tmp / "ledger-home"
    r = e.run("trust", "allow", "examples", PUB0D_HEX, "--reason", "test", "--home", home)
    assert r.exit_code == 0, r.stderr
    r = e.run("package", "verify", "--artifact", art, "--home", home, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["trust_decision"] == "allowlisted"

    other_home = e.tmp / "other-home"
    assert e.run("trust", "list", "--home", other_home).exit_code == 0
    r = e.run("package", "verify", "--artifact", art, "--home", other_home, "--allow-tofu", "--json")
    assert json.loads(r.stdout)["trust_decision"] == "would_pin_on_first_use"
    r = e.run("trust", "list", "--home", other_home, "--json")
    assert json.loads(r.stdout)["publishers"] == []


def test_verify_revoked_key_is_refused_even_when_allowlisted_by_flag(e):
    art = e.artifact()
    home = e.tmp / "ledger-home"
    assert e.run("trust", "allow", "examples", PUB0D_HEX, "--reason", "t", "--home", home).exit_code == 0
    assert e.run("trust", "revoke", "examples", PUB0D_HEX, "--reason", "t", "--home", home).exit_code == 0
    r = e.run("package", "verify", "--artifact", art, "--home", home, "--trusted-publisher", f"examples={PUB0D_HEX}",
              "--allow-tofu", "--json")
    assert r.exit_code == 4
    assert json.loads(r.stdout)["error"]["code"] == "key_revoked"


def test_verify_rejected_artifact_exit_3_before_trust(e):
    got = entries_of(e.artifact())
    got["assets/extra.txt"] = b"unsigned"
    bad = e.tmp / "bad.palyra-skill"
    bad.write_bytes(rezip(got))
    r = e.run("package", "verify", "--artifact", bad, "--trusted-publisher", f"examples={PUB0D_HEX}", "--json")
    assert r.exit_code == 3
    assert json.loads(r.stdout)["error"]["code"] == "payload_hash_mismatch"


# --- real processes -------------------------------------------------------------------------------------------------


def test_subprocess_build_inspect_verify(tmp_path):
    env = {**os.environ, "SKILLS_HOME": str(tmp_path / "home")}
    key = tmp_path / "k.pem"
    out = tmp_path / "a.palyra-skill"

    def skills(*args):
        return subprocess.run([SKILLS, *map(str, args)], capture_output=True, text=True, env=env, timeout=60)

    assert skills("keys", "generate", "--output", key).returncode == 0
    p = skills("package", "build", "--manifest", EXAMPLE / "skill.toml", *MODULES,
               "--asset", EXAMPLE / "assets" / "prompt.txt", "--output", out, "--signing-key-file", key, "--json")
    assert p.returncode == 0, p.stderr
    built = json.loads(p.stdout)
    p = skills("package", "inspect", "--artifact", out, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["payload_sha256"] == built["payload_sha256"]
    p = skills("package", "verify", "--artifact", out)
    assert p.returncode == 4
    kid = built["key_id"]
    assert p.stderr.startswith(f"error[untrusted_publisher]: untrusted publisher 'examples' (signed with key {kid}); "
                               "hint: pass --allow-tofu")
    assert p.stderr.count("\n") == 1 and "skills trust allow examples " in p.stderr
    assert p.stdout == ""
    p = skills("package", "verify", "--artifact", out, "--allow-tofu", "--json")
    assert p.returncode == 0
    assert json.loads(p.stdout)["trust_decision"] == "would_pin_on_first_use"
    assert not (tmp_path / "home").exists()
