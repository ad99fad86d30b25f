"""Packaging use cases (no journal writes): build, inspect and verify ``.palyra-skill`` files.

The domain does the work on bytes; this module reads input files under the format's
limits (while streaming), generates missing sidecars, and writes the output atomically
so a failed build never leaves a partial file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import msgspec

from skill_ledger.adapters.storage.files import atomic_write, read_bounded
from skill_ledger.adapters.storage.truststore_file import load_trust_store
from skill_ledger.domain.artifact import (
    BuildResult,
    InspectResult,
    Verification,
    build_artifact,
    inspect_artifact,
    verify_inspected,
)
from skill_ledger.domain.audit_tools import (
    describe_compile_problems,
    describe_references,
    schema_reference_problems,
)
from skill_ledger.domain.constants import (
    ASSET_PREFIX,
    MAX_ARTIFACT_BYTES,
    MAX_ENTRY_BYTES,
    MODULE_PREFIX,
    PROVENANCE_ENTRY,
    SBOM_ENTRY,
)
from skill_ledger.domain.documents import validate_provenance, validate_sbom
from skill_ledger.domain.errors import (
    ArtifactEntryTooLarge,
    FileNotFound,
    ManifestParseError,
    ManifestValidationError,
    UsageError,
)
from skill_ledger.domain.grammars import normalize_path
from skill_ledger.domain.manifest import Manifest, check_runtime_compat, parse_manifest, tool_ids
from skill_ledger.domain.trust import TrustStore, add_trusted_key

from .sidecars import generate_provenance, generate_sbom

MAX_MANIFEST_BYTES = 1024 * 1024
MAX_SIDECAR_BYTES = MAX_ENTRY_BYTES


class FileSpec(msgspec.Struct, frozen=True):
    """``[IN_ARTIFACT=]FILE``: the name inside the artifact and the file on disk."""

    name: str
    path: str


def parse_file_spec(value: str) -> FileSpec:
    """``name=path`` when the whole value is not itself an existing file; else ``path`` (name = base name)."""
    if "=" in value and not os.path.exists(value):
        name, path = value.split("=", 1)
        if not name or not path:
            raise UsageError(f"expected [IN_ARTIFACT=]FILE, got {value!r}")
        return FileSpec(name, path)
    return FileSpec(os.path.basename(value), value)


def _read_entry(spec: FileSpec, prefix: str) -> tuple[str, bytes]:
    data = read_bounded(
        spec.path,
        MAX_ENTRY_BYTES,
        too_large=lambda actual, limit: ArtifactEntryTooLarge(prefix + spec.name, actual, limit),
    )
    return spec.name, data


def read_manifest_text(path: str) -> str:
    data = read_bounded(path, MAX_MANIFEST_BYTES, too_large=lambda a, l: ManifestParseError(f"skill.toml is larger than {l} bytes"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestParseError(f"skill.toml is not valid UTF-8: {e}") from None


def build_package(
    *,
    manifest_path: str,
    modules: Sequence[FileSpec],
    assets: Sequence[FileSpec],
    sbom_path: str | None,
    provenance_path: str | None,
    output: str,
    signing_seed: bytes,
    signed_at_unix_ms: int,
) -> BuildResult:
    manifest_text = read_manifest_text(manifest_path)
    # §13 order: manifest, compat, SBOM, provenance, then modules and assets. The schema and
    # module-path checks are this project's: what the audit would fail is refused here first.
    manifest = parse_manifest(manifest_text)
    check_runtime_compat(manifest)
    check_tool_schemas(manifest)
    sbom = _read_sidecar(sbom_path, SBOM_ENTRY) if sbom_path is not None else None
    if sbom is not None:
        validate_sbom(sbom)
    provenance = _read_sidecar(provenance_path, PROVENANCE_ENTRY) if provenance_path is not None else None
    if provenance is not None:
        validate_provenance(provenance)
    module_entries = [_read_entry(s, MODULE_PREFIX) for s in modules]
    asset_entries = [_read_entry(s, ASSET_PREFIX) for s in assets]
    if sbom is None or provenance is None:
        listed = _listed_files(module_entries, asset_entries)
        if sbom is None:
            sbom = generate_sbom(manifest.skill_id, manifest.version, manifest.publisher, listed, signed_at_unix_ms)
        if provenance is None:
            provenance = generate_provenance(manifest.skill_id, manifest.version, listed, signed_at_unix_ms)
    result = build_artifact(
        manifest_text, module_entries, asset_entries, sbom, provenance, signing_seed, signed_at_unix_ms
    )
    check_module_paths(manifest, [name for name, _ in module_entries])  # entry names are checked by now
    atomic_write(output, result.artifact, mode=0o644)
    return result


def check_tool_schemas(manifest: Manifest) -> None:
    """Refuse a tool schema the audit would fail: a reference outside the schema document
    (``tool_schema_references``), or a schema that does not compile for the host
    (``tool_schema_compiles``: invalid, or a pattern that needs backtracking)."""
    from skill_ledger.adapters.audit.schema_facts import schema_facts

    for tool_id, tool in zip(tool_ids(manifest), manifest.entrypoints.tools):
        refs = schema_reference_problems(tool)
        if refs:
            raise ManifestValidationError("tool_schema_reference", describe_references(tool_id, refs),
                                          tool_id=tool_id)
    problems: dict[str, dict[str, str]] = {}
    for fact in schema_facts(manifest):
        if fact.problem is not None:
            problems.setdefault(fact.tool_id, {})[fact.member] = fact.problem
    if problems:
        tool_id, by_member = next(iter(problems.items()))  # the first tool, in manifest order
        raise ManifestValidationError("tool_schema_invalid", describe_compile_problems(tool_id, by_member),
                                      tool_id=tool_id)


def check_module_paths(manifest: Manifest, module_names: Sequence[str]) -> None:
    """Refuse a manifest that names a module the build is not given: the artifact would install,
    and its tools would have no module to run on (``operator.plugin.default_module_path`` is the
    only module path a manifest names)."""
    given = sorted(MODULE_PREFIX + normalize_path(name) for name in module_names)
    default = manifest.operator.plugin.default_module_path
    if default is not None and normalize_path(default) not in given:
        raise ManifestValidationError(
            "default_module_missing",
            f"operator.plugin.default_module_path '{default}' is not among the modules given with --module "
            f"({', '.join(given) or 'none'}); add --module for it",
            default_module_path=default,
            modules=given,
        )


def _read_sidecar(path: str, entry: str) -> bytes:
    return read_bounded(path, MAX_SIDECAR_BYTES,
                        too_large=lambda actual, limit: ArtifactEntryTooLarge(entry, actual, limit))


def _listed_files(modules: list[tuple[str, bytes]], assets: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    out = []
    for prefix, entries in ((MODULE_PREFIX, modules), (ASSET_PREFIX, assets)):
        for name, data in entries:
            out.append((prefix + normalize_path(name), data))
    return out


def read_artifact(path: str) -> bytes:
    if not Path(path).exists():
        raise FileNotFound(path)
    return read_bounded(path, MAX_ARTIFACT_BYTES)


def inspect_package(path: str) -> InspectResult:
    return inspect_artifact(read_artifact(path))


def parse_trusted_publisher(value: str) -> tuple[str, str]:
    """``PUBLISHER=HEXKEY`` from a flag, validated (a malformed flag is a usage error, exit 2)."""
    if "=" not in value:
        raise UsageError(f"--trusted-publisher expects PUBLISHER=HEXKEY, got {value!r}")
    pub, key = value.split("=", 1)
    try:
        add_trusted_key(TrustStore(), pub, key)
    except ManifestValidationError as e:
        raise UsageError(f"--trusted-publisher {value!r}: {e.detail}", {"code": e.rule}) from None
    return pub, key


def trust_from_flags(
    trusted_publishers: Sequence[str], trust_store_path: str | None, base: TrustStore | None = None
) -> TrustStore:
    """The trust state for a read-only verify: ``base`` + the store file + ``PUB=HEX`` flags."""
    store = base or TrustStore()
    if trust_store_path:
        if not Path(trust_store_path).exists():
            raise FileNotFound(trust_store_path)
        store = store.merged_with(load_trust_store(trust_store_path))
    for value in trusted_publishers:
        pub, key = parse_trusted_publisher(value)
        store = add_trusted_key(store, pub, key)
    return store


def verify_package(path: str, store: TrustStore, allow_tofu: bool, now_ms: int) -> Verification:
    """Read-only: a new TOFU pin shows as ``tofu_newly_pinned`` and is not persisted."""
    return verify_inspected(inspect_package(path), store, allow_tofu, now_ms)


def signing_time_ms(reproducible: bool, env: dict[str, str] | None = None) -> int:
    """Wall-clock milliseconds, or ``SOURCE_DATE_EPOCH`` (seconds; 0 when unset) for reproducible builds."""
    import time

    if not reproducible:
        return time.time_ns() // 1_000_000
    raw = (os.environ if env is None else env).get("SOURCE_DATE_EPOCH", "0").strip() or "0"
    if not raw.isascii() or not raw.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH must be a non-negative integer number of seconds, got {raw!r}")
    return int(raw) * 1000
