"""Generated sidecar documents for ``package build``: a CycloneDX 1.6 SBOM (through
cyclonedx-python-lib) and a provenance statement (in-toto Statement v1 with a SLSA
provenance v1 predicate, plus the top-level ``builder``/``subject`` members that the
artifact format requires and Palyra reads).

Both are deterministic given the same inputs and time, so ``--reproducible`` builds
are byte-identical.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
import warnings
from collections.abc import Sequence

from skill_ledger.domain.constants import ENGINE_VERSION
from skill_ledger.domain.text import dumps_pretty

BUILDER_ID = f"https://github.com/skill-ledger/skill-ledger/package-build@{ENGINE_VERSION}"


def _iso(unix_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix_ms / 1000, tz=dt.timezone.utc)


def generate_sbom(skill_id: str, version: str, publisher: str, files: Sequence[tuple[str, bytes]], unix_ms: int) -> bytes:
    """CycloneDX 1.6 JSON listing every module and asset (artifact path) with its SHA-256."""
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.contact import OrganizationalEntity
    from cyclonedx.output import OutputFormat, make_outputter
    from cyclonedx.schema import SchemaVersion

    bom = Bom()
    root = Component(
        name=skill_id,
        version=version,
        type=ComponentType.APPLICATION,
        bom_ref=f"skill:{skill_id}@{version}",
        supplier=OrganizationalEntity(name=publisher),
    )
    bom.metadata.component = root
    bom.metadata.timestamp = _iso(unix_ms)
    digest_of_inputs = hashlib.sha256()
    for path, data in sorted(files):
        sha = hashlib.sha256(data).hexdigest()
        digest_of_inputs.update(f"{path}\0{sha}\n".encode())
        bom.components.add(
            Component(
                name=path,
                type=ComponentType.FILE,
                bom_ref=path,
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha)],
            )
        )
        bom.register_dependency(root, [c for c in bom.components if c.bom_ref.value == path])
    # A serial number derived from the content keeps reproducible builds byte-identical.
    bom.serial_number = uuid.uuid5(uuid.NAMESPACE_URL, f"skill-ledger:{skill_id}@{version}:{digest_of_inputs.hexdigest()}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=2)
    return text.encode("utf-8")


def generate_provenance(
    skill_id: str, version: str, files: Sequence[tuple[str, bytes]], unix_ms: int, builder_id: str = BUILDER_ID
) -> bytes:
    subjects = [
        {"name": path, "digest": {"sha256": hashlib.sha256(data).hexdigest()}} for path, data in sorted(files)
    ]
    started = _iso(unix_ms).isoformat().replace("+00:00", "Z")
    doc = {
        "_type": "https://in-toto.io/Statement/v1",
        "predicateType": "https://slsa.dev/provenance/v1",
        "builder": {"id": builder_id, "version": ENGINE_VERSION},
        "build_time": started,
        "subject": subjects,
        "predicate": {
            "buildDefinition": {
                "buildType": "https://github.com/skill-ledger/skill-ledger/package-build/v1",
                "externalParameters": {"skill_id": skill_id, "version": version},
            },
            "runDetails": {"builder": {"id": builder_id}, "metadata": {"startedOn": started}},
        },
    }
    return dumps_pretty(doc).encode("utf-8")
