"""Packaging adapters on real files: build/inspect/verify use cases, generated sidecars,
trust-store files (§16.4) and signing-key files.

Guarantees under test: a failed build leaves no partial output and writes nothing anywhere;
size limits are enforced while reading (a huge sparse file is refused without being read);
reproducible builds are byte-identical; the generated SBOM is CycloneDX 1.6 and lists every
module and asset with its SHA-256; trust-store load/save follow §16.4; key files are PKCS#8
PEM with mode 0600 and are never silently overwritten.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import time
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from skill_ledger.adapters.packaging.package import (
    FileSpec,
    build_package,
    inspect_package,
    parse_file_spec,
    read_artifact,
    signing_time_ms,
    trust_from_flags,
    verify_package,
)
from skill_ledger.adapters.packaging.sidecars import generate_provenance, generate_sbom
from skill_ledger.adapters.storage import files as fsutil
from skill_ledger.adapters.storage.keys import generate_key_file, key_facts_from_file, read_seed_file
from skill_ledger.adapters.storage.truststore_file import load_trust_store, save_trust_store
from skill_ledger.domain.documents import validate_provenance, validate_sbom
from skill_ledger.domain.errors import (
    ArtifactEntryTooLarge,
    ArtifactTooLarge,
    FileNotFound,
    InvalidSbom,
    InvalidSigningKey,
    IoError,
    ManifestParseError,
    ManifestValidationError,
    SerializationError,
    SkillLedgerError,
    UsageError,
)
from skill_ledger.domain.trust import TrustDecision, TrustStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello"
MiB = 1024 * 1024
SEED0D = bytes([0x0D]) * 32
PUB0D_HEX = "91a28a0b74381593a4d9469579208926afc8ad82c8839b7644359b9eba9a4b3a"
KEYID0D = "ed25519:defe6330f78fcc11"
PUB05_HEX = "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"


# --- helpers ---------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[int, str, int]]:
    """Every file and directory under ``root``: (mode, sha256 of content, size)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        if p.is_file():
            out[str(p.relative_to(root))] = (st.st_mode, hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size)
        else:
            out[str(p.relative_to(root)) + "/"] = (st.st_mode, "", 0)
    return out


@pytest.fixture()
def inputs(tmp_path: Path) -> Path:
    """A copy of the example skill plus a raw 32-byte signing key, under tmp_path/in."""
    src = tmp_path / "in"
    shutil.copytree(EXAMPLE, src)
    (src / "key.bin").write_bytes(SEED0D)
    return src


def build(inputs: Path, output: Path, *, modules=None, assets=None, manifest=None, sbom=None, provenance=None,
          signed_at=1_700_000_000_000):
    return build_package(
        manifest_path=str(manifest or inputs / "skill.toml"),
        modules=modules if modules is not None else example_modules(inputs),
        assets=assets if assets is not None else [FileSpec("prompt.txt", str(inputs / "assets" / "prompt.txt"))],
        sbom_path=sbom,
        provenance_path=provenance,
        output=str(output),
        signing_seed=SEED0D,
        signed_at_unix_ms=signed_at,
    )


def example_modules(inputs: Path) -> list[FileSpec]:
    """Both modules of the example (its manifest's default_module_path names wordcount.wasm)."""
    return [FileSpec(name, str(inputs / "modules" / name)) for name in ("echo.wasm", "wordcount.wasm")]


def zip_entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


# --- build: success writes exactly the output ------------------------------------------------------------


def test_build_writes_only_the_output_file(tmp_path, inputs):
    out = tmp_path / "out" / "hello.palyra-skill"
    before = snapshot(tmp_path)
    result = build(inputs, out)
    after = snapshot(tmp_path)
    assert set(after) - set(before) == {"out/", "out/hello.palyra-skill"}
    assert {k: v for k, v in after.items() if k in before} == before
    data = out.read_bytes()
    assert data == result.artifact
    assert hashlib.sha256(data).hexdigest() == result.artifact_sha256
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert result.entries == sorted(zip_entries(out))


def test_build_then_inspect_and_verify_files(tmp_path, inputs):
    out = tmp_path / "hello.palyra-skill"
    result = build(inputs, out)
    inspected = inspect_package(str(out))
    assert inspected.payload_sha256 == result.payload_sha256
    assert inspected.artifact_sha256 == result.artifact_sha256
    v = verify_package(str(out), TrustStore({"examples": (PUB0D_HEX,)}), False, 0)
    assert v.report.trust_decision is TrustDecision.ALLOWLISTED
    v = verify_package(str(out), TrustStore(), True, 0)
    assert v.report.trust_decision is TrustDecision.TOFU_NEWLY_PINNED


def test_build_replaces_existing_output(tmp_path, inputs):
    out = tmp_path / "hello.palyra-skill"
    out.write_bytes(b"old")
    build(inputs, out)
    assert out.read_bytes()[:2] == b"PK"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --- build failures: no partial output, nothing written anywhere -------------------------------------------


def _bad_manifest(inputs: Path) -> dict:
    p = inputs / "bad.toml"
    p.write_text((inputs / "skill.toml").read_text().replace('name = "Hello"', 'name = " "'))
    return {"manifest": p}


def _unparsable_manifest(inputs: Path) -> dict:
    p = inputs / "bad.toml"
    p.write_text("manifest_version = [")
    return {"manifest": p}


def _not_wasm(inputs: Path) -> dict:
    return {"modules": [FileSpec("echo.txt", str(inputs / "modules" / "echo.wasm"))]}


def _duplicate(inputs: Path) -> dict:
    m = str(inputs / "modules" / "echo.wasm")
    return {"modules": [FileSpec("a/x.wasm", m), FileSpec("a\\x.wasm", m)]}


def _traversal(inputs: Path) -> dict:
    return {"assets": [FileSpec("../../etc/passwd", str(inputs / "assets" / "prompt.txt"))]}


def _huge_module(inputs: Path) -> dict:
    p = inputs / "huge.wasm"
    with open(p, "wb") as f:
        f.truncate(16 * MiB + 1)
    return {"modules": [FileSpec("huge.wasm", str(p))]}


def _missing_module(inputs: Path) -> dict:
    return {"modules": [FileSpec("gone.wasm", str(inputs / "gone.wasm"))]}


def _bad_sbom(inputs: Path) -> dict:
    p = inputs / "sbom.json"
    p.write_text('{"bomFormat": "SPDX"}')
    return {"sbom": str(p)}


def _no_modules(inputs: Path) -> dict:
    return {"modules": []}


@pytest.mark.parametrize(
    "make, code",
    [
        (_bad_manifest, "manifest_validation"),
        (_unparsable_manifest, "manifest_parse"),
        (_not_wasm, "manifest_validation"),
        (_duplicate, "duplicate_artifact_entry"),
        (_traversal, "invalid_artifact_path"),
        (_huge_module, "artifact_entry_too_large"),
        (_missing_module, "file_not_found"),
        (_bad_sbom, "invalid_sbom"),
        (_no_modules, "manifest_validation"),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_failed_build_leaves_nothing(tmp_path, inputs, make, code):
    kwargs = make(inputs)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "x.palyra-skill"
    before = snapshot(tmp_path)
    with pytest.raises(SkillLedgerError) as e:
        build(inputs, out, **kwargs)
    assert e.value.code == code
    assert snapshot(tmp_path) == before


def test_failed_build_keeps_previous_output_intact(tmp_path, inputs):
    out = tmp_path / "x.palyra-skill"
    out.write_bytes(b"previous artifact")
    before = snapshot(tmp_path)
    with pytest.raises(ManifestValidationError):
        build(inputs, out, **_not_wasm(inputs))
    assert snapshot(tmp_path) == before


# --- what the audit would fail, refused at build (issue 10) --------------------------------------------


def test_build_refuses_a_manifest_whose_default_module_is_not_given(tmp_path, inputs):
    """The README's tour built the example with echo.wasm alone: its manifest's default_module_path
    names wordcount.wasm, so the wordcount tool had no module to run on, and build, install, audit
    and check all succeeded."""
    out = tmp_path / "x.palyra-skill"
    before = snapshot(tmp_path)
    with pytest.raises(ManifestValidationError) as e:
        build(inputs, out, modules=[FileSpec("echo.wasm", str(inputs / "modules" / "echo.wasm"))])
    assert e.value.rule == "default_module_missing"
    assert e.value.message == (
        "manifest validation failed: operator.plugin.default_module_path 'modules/wordcount.wasm' is not among the "
        "modules given with --module (modules/echo.wasm); add --module for it")
    assert e.value.details["modules"] == ["modules/echo.wasm"]
    assert snapshot(tmp_path) == before
    # the same module under the named path is enough
    build(inputs, out, modules=[FileSpec("wordcount.wasm", str(inputs / "modules" / "wordcount.wasm"))])
    assert "modules/wordcount.wasm" in zip_entries(out)


def _with_schema(inputs: Path, old: str, new: str) -> Path:
    text = (inputs / "skill.toml").read_text()
    assert old in text
    path = inputs / "changed.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_build_refuses_a_remote_schema_reference(tmp_path, inputs):
    manifest = _with_schema(inputs, "text = { type = \"string\", maxLength = 4096 }",
                            'text = { "$ref" = "http://127.0.0.1:8765/probe.json" }')
    with pytest.raises(ManifestValidationError) as e:
        build(inputs, tmp_path / "x.palyra-skill", manifest=manifest)
    assert e.value.rule == "tool_schema_reference"
    assert e.value.details["tool_id"] == "examples.echo"
    assert "input_schema references http://127.0.0.1:8765/probe.json" in e.value.message
    assert not (tmp_path / "x.palyra-skill").exists()


def test_build_refuses_a_schema_that_does_not_compile_for_the_host(tmp_path, inputs):
    manifest = _with_schema(inputs, "words = { type = \"integer\", minimum = 0 }",
                            'words = { type = "string", pattern = "^(a)\\\\1$" }')
    with pytest.raises(ManifestValidationError) as e:
        build(inputs, tmp_path / "x.palyra-skill", manifest=manifest)
    assert e.value.rule == "tool_schema_invalid"
    assert e.value.details["tool_id"] == "examples.wordcount"
    assert "output_schema: " in e.value.message and "back-references" in e.value.message


def test_write_failure_leaves_no_partial_or_temporary_file(tmp_path, inputs, monkeypatch):
    out = tmp_path / "out" / "x.palyra-skill"
    out.parent.mkdir()
    out.write_bytes(b"previous artifact")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil.os, "fsync", broken_fsync)
    with pytest.raises(IoError):
        build(inputs, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.palyra-skill"]
    assert out.read_bytes() == b"previous artifact"


def test_output_is_a_directory_is_io_error_and_leaves_no_temp(tmp_path, inputs):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(IoError):
        build(inputs, out)
    assert list(tmp_path.glob(".out.*")) == []
    assert list(out.iterdir()) == []


# --- limits enforced while reading ----------------------------------------------------------------------------


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def test_sparse_terabyte_module_is_refused_without_reading_it(tmp_path, inputs):
    big = _sparse(tmp_path / "big.wasm", 1 << 40)
    start = time.perf_counter()
    with pytest.raises(ArtifactEntryTooLarge) as e:
        build(inputs, tmp_path / "x.palyra-skill", modules=[FileSpec("big.wasm", str(big))])
    assert time.perf_counter() - start < 1.0
    assert e.value.details == {"path": "modules/big.wasm", "actual": 1 << 40, "limit": 16 * MiB}
    assert not (tmp_path / "x.palyra-skill").exists()


def test_sparse_asset_over_limit_is_refused_with_asset_path(tmp_path, inputs):
    big = _sparse(tmp_path / "big.bin", 16 * MiB + 1)
    with pytest.raises(ArtifactEntryTooLarge) as e:
        build(inputs, tmp_path / "x.palyra-skill", assets=[FileSpec("data/big.bin", str(big))])
    assert e.value.details["path"] == "assets/data/big.bin"
    assert e.value.details["actual"] == 16 * MiB + 1


def test_module_of_exactly_16_mib_is_accepted(tmp_path, inputs):
    edge = _sparse(tmp_path / "edge.wasm", 16 * MiB)
    out = tmp_path / "x.palyra-skill"
    build(inputs, out, modules=[FileSpec("edge.wasm", str(edge)), *example_modules(inputs)[1:]])
    assert len(inspect_package(str(out)).entries["modules/edge.wasm"]) == 16 * MiB


def test_sparse_sbom_over_limit_is_entry_too_large_for_sbom(tmp_path, inputs):
    """§13 insert(): a sidecar over 16 MiB is artifact_entry_too_large naming 'sbom.cdx.json'."""
    big = _sparse(tmp_path / "sbom.json", 16 * MiB + 1)
    with pytest.raises(ArtifactEntryTooLarge) as e:
        build(inputs, tmp_path / "x.palyra-skill", sbom=str(big))
    assert e.value.details == {"path": "sbom.cdx.json", "actual": 16 * MiB + 1, "limit": 16 * MiB}


def test_manifest_over_limit_is_refused_without_reading_it(tmp_path, inputs):
    big = _sparse(tmp_path / "skill.toml", 1 << 40)
    start = time.perf_counter()
    with pytest.raises(ManifestParseError):
        build(inputs, tmp_path / "x.palyra-skill", manifest=big)
    assert time.perf_counter() - start < 1.0


def test_manifest_errors_come_before_module_size_errors(tmp_path, inputs):
    """§13 order: parse the manifest (step 1) before any module is considered (step 4)."""
    big = _sparse(tmp_path / "big.wasm", 16 * MiB + 1)
    with pytest.raises(ManifestValidationError):
        build(inputs, tmp_path / "x.palyra-skill", modules=[FileSpec("big.wasm", str(big))], **_bad_manifest(inputs))


def test_artifact_file_over_64_mib_is_refused_without_reading_it(tmp_path):
    big = _sparse(tmp_path / "big.palyra-skill", 1 << 40)
    start = time.perf_counter()
    with pytest.raises(ArtifactTooLarge) as e:
        read_artifact(str(big))
    assert time.perf_counter() - start < 1.0
    assert e.value.details == {"actual": 1 << 40, "limit": 64 * MiB}


def test_read_bounded_refuses_a_file_that_grew_past_its_stat(tmp_path, monkeypatch):
    """The limit holds on the bytes actually read, not only on the size stat reported."""
    p = tmp_path / "f"
    p.write_bytes(b"x" * 100)
    real_fstat = os.fstat

    def lying_fstat(fd):
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 10,
                               st.st_atime, st.st_mtime, st.st_ctime))

    monkeypatch.setattr(fsutil.os, "fstat", lying_fstat)
    with pytest.raises(ArtifactTooLarge):
        fsutil.read_bounded(p, 50)


def test_missing_artifact_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFound):
        inspect_package(str(tmp_path / "nope.palyra-skill"))


# --- reproducible builds -------------------------------------------------------------------------------------


def test_signing_time_from_source_date_epoch():
    assert signing_time_ms(True, {"SOURCE_DATE_EPOCH": "1700000000"}) == 1_700_000_000_000
    assert signing_time_ms(True, {}) == 0
    with pytest.raises(UsageError):
        signing_time_ms(True, {"SOURCE_DATE_EPOCH": "-5"})
    with pytest.raises(UsageError):
        signing_time_ms(True, {"SOURCE_DATE_EPOCH": "١٢"})
    now = signing_time_ms(False, {"SOURCE_DATE_EPOCH": "1"})
    assert abs(now - time.time() * 1000) < 60_000


def test_reproducible_builds_are_byte_identical_across_input_locations(tmp_path, inputs):
    other = tmp_path / "elsewhere" / "copy"
    shutil.copytree(inputs, other)
    t = signing_time_ms(True, {"SOURCE_DATE_EPOCH": "1700000000"})
    a = build(inputs, tmp_path / "a.palyra-skill", signed_at=t)
    b = build(other, tmp_path / "b.palyra-skill", signed_at=t,
              modules=example_modules(other),
              assets=[FileSpec("prompt.txt", str(other / "assets" / "prompt.txt"))])
    assert (tmp_path / "a.palyra-skill").read_bytes() == (tmp_path / "b.palyra-skill").read_bytes()
    assert a.artifact_sha256 == b.artifact_sha256
    assert json.loads(zip_entries(tmp_path / "a.palyra-skill")["signature.json"])["signed_at_unix_ms"] == t


def test_different_time_gives_different_bytes(tmp_path, inputs):
    a = build(inputs, tmp_path / "a.palyra-skill", signed_at=1000)
    b = build(inputs, tmp_path / "b.palyra-skill", signed_at=2000)
    assert a.artifact != b.artifact


# --- generated SBOM and provenance ---------------------------------------------------------------------------


def test_generated_sbom_is_cyclonedx_1_6_listing_every_module_and_asset(tmp_path, inputs):
    extra = inputs / "assets" / "extra.bin"
    extra.write_bytes(os.urandom(100))
    out = tmp_path / "x.palyra-skill"
    build(inputs, out, assets=[FileSpec("prompt.txt", str(inputs / "assets" / "prompt.txt")),
                               FileSpec("data/extra.bin", str(extra))])
    entries = zip_entries(out)
    raw = entries["sbom.cdx.json"]
    doc = validate_sbom(raw)
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"

    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(raw.decode()) is None

    listed = {}
    for c in doc["components"]:
        hashes = {h["alg"]: h["content"] for h in c.get("hashes", [])}
        listed[c["name"]] = hashes.get("SHA-256")
    expected = {
        p: hashlib.sha256(d).hexdigest() for p, d in entries.items() if p.startswith(("modules/", "assets/"))
    }
    assert len(expected) == 4  # two modules, two assets
    assert listed == expected
    assert doc["metadata"]["component"]["name"] == "examples.hello"
    assert doc["metadata"]["component"]["version"] == "1.0.0"


def test_generated_provenance_passes_section_7_and_lists_subjects(tmp_path, inputs):
    out = tmp_path / "x.palyra-skill"
    build(inputs, out, signed_at=1_700_000_000_000)
    entries = zip_entries(out)
    doc = validate_provenance(entries["provenance.json"])
    assert isinstance(doc["builder"], dict) and doc["builder"]["id"]
    subjects = {s["name"]: s["digest"]["sha256"] for s in doc["subject"]}
    assert subjects == {
        p: hashlib.sha256(d).hexdigest() for p, d in entries.items() if p.startswith(("modules/", "assets/"))
    }
    assert "2023-11-14T22:13:20" in entries["provenance.json"].decode()


def test_generators_are_deterministic_and_valid_directly():
    files = [("modules/a.wasm", b"\0asm\1\0\0\0"), ("assets/b.txt", b"b")]
    s1 = generate_sbom("a.b", "1.0.0", "pub", files, 5)
    assert s1 == generate_sbom("a.b", "1.0.0", "pub", list(reversed(files)), 5)
    validate_sbom(s1)
    p1 = generate_provenance("a.b", "1.0.0", files, 5)
    assert p1 == generate_provenance("a.b", "1.0.0", list(reversed(files)), 5)
    validate_provenance(p1)
    assert generate_sbom("a.b", "1.0.0", "pub", files[:1], 5) != s1


def test_given_sidecars_are_packaged_verbatim(tmp_path, inputs):
    sbom = inputs / "sbom.json"
    sbom.write_bytes(b'{"bomFormat":"CycloneDX","specVersion":"1.5","x":[1,2]}')
    prov = inputs / "prov.json"
    prov.write_bytes(b'{"builder":{"id":"ci"},"subject":[{"name":"echo.wasm"}]}')
    out = tmp_path / "x.palyra-skill"
    build(inputs, out, sbom=str(sbom), provenance=str(prov))
    entries = zip_entries(out)
    assert entries["sbom.cdx.json"] == sbom.read_bytes()
    assert entries["provenance.json"] == prov.read_bytes()


def test_invalid_given_sbom_is_rejected(tmp_path, inputs):
    sbom = inputs / "sbom.json"
    sbom.write_bytes(b'{"bomFormat":"CycloneDX","specVersion":""}')
    with pytest.raises(InvalidSbom):
        build(inputs, tmp_path / "x.palyra-skill", sbom=str(sbom))


# --- file specs ------------------------------------------------------------------------------------------------


def test_parse_file_spec(tmp_path):
    f = tmp_path / "m.wasm"
    f.write_bytes(b"")
    assert parse_file_spec(str(f)) == FileSpec("m.wasm", str(f))
    assert parse_file_spec(f"lib/x.wasm={f}") == FileSpec("lib/x.wasm", str(f))
    odd = tmp_path / "a=b.wasm"
    odd.write_bytes(b"")
    assert parse_file_spec(str(odd)) == FileSpec("a=b.wasm", str(odd))
    with pytest.raises(UsageError):
        parse_file_spec(f"={f}")


# --- trust-store files (§16.4) ---------------------------------------------------------------------------------


def test_trust_store_missing_file_is_empty(tmp_path):
    assert load_trust_store(str(tmp_path / "none.json")) == TrustStore()


@pytest.mark.parametrize("content", [b"", b" ", b"\n\n", b" \t\r\n\f "], ids=["empty", "space", "newlines", "mixed"])
def test_trust_store_whitespace_only_is_empty(tmp_path, content):
    p = tmp_path / "trust.json"
    p.write_bytes(content)
    assert load_trust_store(str(p)) == TrustStore()


def test_trust_store_vertical_tab_is_not_ascii_whitespace(tmp_path):
    p = tmp_path / "trust.json"
    p.write_bytes(b"\x0b")
    with pytest.raises(SerializationError):
        load_trust_store(str(p))


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"[]",
        b'{"trusted_publishers": {}, "extra": 1}',
        b'{"trusted_publishers": {"acme": ["%s"], "acme": ["%s"]}}' % (PUB05_HEX.encode(), PUB0D_HEX.encode()),
        b'{"tofu_publishers": {"acme": "abc"}}',
        b'{"trusted_publishers": {"Acme": ["%s"]}}' % PUB05_HEX.encode(),
        b'{"trusted_publishers": {"acme": []}}',
        b'\xef\xbb\xbf{}',
        b'{"tofu_publishers": {"acme": NaN}}',
    ],
    ids=["syntax", "array", "unknown-member", "duplicate-publisher", "short-key", "uppercase-publisher",
         "empty-key-list", "bom", "nan"],
)
def test_trust_store_bad_content_is_serialization(tmp_path, content):
    p = tmp_path / "trust.json"
    p.write_bytes(content)
    with pytest.raises(SerializationError) as e:
        load_trust_store(str(p))
    assert str(p) in e.value.message or "trust" in e.value.message


def test_trust_store_parse_error_names_the_file(tmp_path):
    p = tmp_path / "trust.json"
    p.write_bytes(b"{")
    with pytest.raises(SerializationError) as e:
        load_trust_store(str(p))
    assert f"failed to parse trust store {p}" in e.value.message


def test_trust_store_read_error_is_io(tmp_path):
    d = tmp_path / "dir.json"
    d.mkdir()
    with pytest.raises(IoError):
        load_trust_store(str(d))


def test_trust_store_load_normalises(tmp_path):
    p = tmp_path / "trust.json"
    p.write_text(json.dumps({
        "trusted_publishers": {" acme ": [PUB0D_HEX.upper(), PUB05_HEX, PUB05_HEX]},
        "tofu_publishers": {"solo": " " + PUB05_HEX + " "},
    }))
    store = load_trust_store(str(p))
    assert store.trusted_publishers == {"acme": (PUB05_HEX, PUB0D_HEX)}
    assert store.tofu_publishers == {"solo": PUB05_HEX}


def test_trust_store_save_format(tmp_path):
    store = TrustStore({"zeta": (PUB0D_HEX,), "acme": (PUB05_HEX, PUB0D_HEX)}, {"solo": PUB05_HEX, "beta": PUB0D_HEX})
    p = tmp_path / "deep" / "er" / "trust.json"
    save_trust_store(str(p), store)
    text = p.read_bytes().decode("utf-8")
    assert not text.endswith("\n")
    expected = {
        "trusted_publishers": {"acme": sorted([PUB05_HEX, PUB0D_HEX]), "zeta": [PUB0D_HEX]},
        "tofu_publishers": {"beta": PUB0D_HEX, "solo": PUB05_HEX},
    }
    assert text == json.dumps(expected, indent=2, ensure_ascii=False)
    assert list(json.loads(text)) == ["trusted_publishers", "tofu_publishers"]
    assert load_trust_store(str(p)) == TrustStore(
        {"acme": tuple(sorted([PUB05_HEX, PUB0D_HEX])), "zeta": (PUB0D_HEX,)}, {"beta": PUB0D_HEX, "solo": PUB05_HEX}
    )


def test_trust_store_save_empty(tmp_path):
    p = tmp_path / "trust.json"
    save_trust_store(str(p), TrustStore())
    assert p.read_text() == '{\n  "trusted_publishers": {},\n  "tofu_publishers": {}\n}'


def test_trust_store_save_is_atomic_replace(tmp_path):
    p = tmp_path / "trust.json"
    save_trust_store(str(p), TrustStore({"acme": (PUB05_HEX,)}))
    old = p.read_bytes()
    with open(p, "rb") as reader:  # a reader holding the old file keeps seeing the old, complete content
        save_trust_store(str(p), TrustStore({"other": (PUB0D_HEX,)}))
        assert reader.read() == old
    assert "other" in p.read_text()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["trust.json"]


def test_trust_store_failed_save_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "trust.json"
    save_trust_store(str(p), TrustStore({"acme": (PUB05_HEX,)}))
    old = p.read_bytes()

    def broken_replace(src, dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fsutil.os, "replace", broken_replace)
    with pytest.raises(IoError):
        save_trust_store(str(p), TrustStore({"other": (PUB0D_HEX,)}))
    assert p.read_bytes() == old
    assert sorted(x.name for x in tmp_path.iterdir()) == ["trust.json"]


def test_trust_store_save_under_a_file_is_io(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(IoError):
        save_trust_store(str(blocker / "trust.json"), TrustStore())


def test_trust_from_flags_merges_file_and_flags(tmp_path):
    p = tmp_path / "trust.json"
    save_trust_store(str(p), TrustStore({"acme": (PUB05_HEX,)}, {"solo": PUB0D_HEX}))
    store = trust_from_flags([f"acme={PUB0D_HEX.upper()}", f"beta={PUB05_HEX}"], str(p))
    assert store.trusted_publishers == {"acme": tuple(sorted([PUB05_HEX, PUB0D_HEX])), "beta": (PUB05_HEX,)}
    assert store.tofu_publishers == {"solo": PUB0D_HEX}
    with pytest.raises(FileNotFound):
        trust_from_flags([], str(tmp_path / "missing.json"))
    with pytest.raises(UsageError):
        trust_from_flags(["acme"], None)


# --- key files ------------------------------------------------------------------------------------------------


def test_generate_writes_pkcs8_pem_mode_0600(tmp_path):
    old = os.umask(0)
    try:
        facts = generate_key_file(str(tmp_path / "k.pem"), force=False)
    finally:
        os.umask(old)
    p = tmp_path / "k.pem"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    pem = p.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    pub = key.public_key().public_bytes_raw()
    assert facts.public_key_hex == pub.hex()
    assert facts.public_key_base64 == base64.b64encode(pub).decode()
    assert facts.key_id == "ed25519:" + hashlib.sha256(pub).hexdigest()[:16]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["k.pem"]


def test_generate_refuses_to_overwrite_without_force(tmp_path):
    p = tmp_path / "k.pem"
    p.write_bytes(b"precious")
    with pytest.raises(UsageError):
        generate_key_file(str(p), force=False)
    assert p.read_bytes() == b"precious"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["k.pem"]


def test_generate_with_force_replaces_and_tightens_mode(tmp_path):
    p = tmp_path / "k.pem"
    p.write_bytes(b"old")
    p.chmod(0o644)
    facts = generate_key_file(str(p), force=True)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert key_facts_from_file(str(p)) == facts


def test_generate_makes_distinct_keys(tmp_path):
    a = generate_key_file(str(tmp_path / "a.pem"), force=False)
    b = generate_key_file(str(tmp_path / "b.pem"), force=False)
    assert a.key_id != b.key_id


@pytest.mark.parametrize(
    "content",
    [
        SEED0D,
        SEED0D.hex().encode(),
        SEED0D.hex().upper().encode() + b"\n",
        b"DQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0=",
        b"  DQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0=\r\n",
        Ed25519PrivateKey.from_private_bytes(SEED0D).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    ],
    ids=["raw", "hex", "hex-upper-newline", "base64", "base64-padded-ws", "pem"],
)
def test_show_reads_every_key_format(tmp_path, content):
    p = tmp_path / "key"
    p.write_bytes(content)
    facts = key_facts_from_file(str(p))
    assert facts.key_id == KEYID0D
    assert facts.public_key_hex == PUB0D_HEX
    assert facts.public_key_base64 == "kaKKC3Q4FZOk2UaVeSCJJq/IrYLIg5t2RDWbnrqaSzo="
    assert read_seed_file(str(p)) == SEED0D


def test_show_raw_32_bytes_even_when_printable(tmp_path):
    seed = b"0123456789abcdef0123456789abcdef"  # 32 bytes of printable text: raw, not hex
    p = tmp_path / "key"
    p.write_bytes(seed)
    assert read_seed_file(str(p)) == seed


@pytest.mark.parametrize(
    "content",
    [
        b"not a key",
        bytes(31),
        SEED0D.hex().encode()[:-2],
        Ed25519PrivateKey.from_private_bytes(SEED0D).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")),
    ],
    ids=["text", "31-bytes", "short-hex", "encrypted-pem"],
)
def test_show_rejects_bad_keys_without_echoing_them(tmp_path, content):
    p = tmp_path / "key"
    p.write_bytes(content)
    with pytest.raises(InvalidSigningKey) as e:
        key_facts_from_file(str(p))
    assert e.value.message.startswith("signing key length is invalid: ")
    assert e.value.details == {"actual": int(e.value.message.rsplit(" ", 1)[1])}
    assert b"PRIVATE" not in e.value.message.encode() and "not a key" not in e.value.message


def test_show_missing_file(tmp_path):
    with pytest.raises(FileNotFound):
        key_facts_from_file(str(tmp_path / "none"))


def test_huge_key_file_is_refused_without_reading_it(tmp_path):
    p = _sparse(tmp_path / "key", 1 << 40)
    start = time.perf_counter()
    with pytest.raises(InvalidSigningKey):
        read_seed_file(str(p))
    assert time.perf_counter() - start < 1.0
