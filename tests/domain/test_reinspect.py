"""reinspect_artifact: the periodic re-audit's fast path must decide like inspect_artifact."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import builders as b  # noqa: E402

from skill_ledger.domain.artifact import inspect_artifact, reinspect_artifact  # noqa: E402
from skill_ledger.domain.errors import PayloadHashMismatch, SignatureVerificationFailed  # noqa: E402
from skill_ledger.domain.ziparchive import decode_archive, encode_archive  # noqa: E402


def test_same_result_as_a_full_inspect():
    data = b.artifact()
    full = inspect_artifact(data)
    fast = reinspect_artifact(data, full.manifest, full.payload_sha256)
    assert fast == full


def test_another_payload_is_a_mismatch_even_when_validly_signed():
    first = inspect_artifact(b.artifact())
    other = b.artifact(asset=b"other bytes")  # same skill and version, re-signed
    with pytest.raises(PayloadHashMismatch):
        reinspect_artifact(other, first.manifest, first.payload_sha256)


def test_a_broken_signature_is_still_found():
    data = b.artifact()
    full = inspect_artifact(data)
    entries = decode_archive(data)
    entries["signature.json"] = entries["signature.json"].replace(b'"publisher": "acme"', b'"publisher": "evil"')
    with pytest.raises(SignatureVerificationFailed):
        reinspect_artifact(encode_archive(entries), full.manifest, full.payload_sha256)
