"""SBOM and provenance document checks (``artifact-format.md`` §7).

Both are free-form JSON apart from a few required members; the checks run in the
spec's order and raise ``invalid_sbom`` / ``invalid_provenance``. Duplicate members
are not rejected here (the spec says so), unlike the fixed-schema documents.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidProvenance, InvalidSbom
from .text import StrictJsonError, loads_strict


def validate_sbom(data: bytes) -> dict[str, Any]:
    try:
        doc = loads_strict(data, reject_duplicates=False)
    except StrictJsonError as e:
        raise InvalidSbom(str(e)) from None
    if not isinstance(doc, dict):
        raise InvalidSbom("SBOM must be JSON object")
    if doc.get("bomFormat") != "CycloneDX":
        raise InvalidSbom("must declare bomFormat='CycloneDX'")
    spec_version = doc.get("specVersion")
    if not isinstance(spec_version, str) or not spec_version:
        raise InvalidSbom("must include specVersion")
    return doc


def validate_provenance(data: bytes) -> dict[str, Any]:
    try:
        doc = loads_strict(data, reject_duplicates=False)
    except StrictJsonError as e:
        raise InvalidProvenance(str(e)) from None
    if not isinstance(doc, dict):
        raise InvalidProvenance("provenance must be JSON object")
    if not isinstance(doc.get("builder"), dict):
        raise InvalidProvenance("must include builder object")
    subject = doc.get("subject")
    if not isinstance(subject, list) or not subject:
        raise InvalidProvenance("must include non-empty subject array")
    return doc
