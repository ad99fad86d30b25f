"""Tampering with stored artifacts on disk, and trust revocation: ``Ledger.verify``, a
``Reauditor`` pass and the ``skills verify`` / ``skills reaudit`` commands each quarantine the
version with the right reason code and exit 5; ``list`` and ``info`` then show it quarantined
and not eligible. ``skills audit --artifact`` is read-only.

Real signed artifacts (modules compiled from WAT), real SQLite journals in tmp_path, the real
``skills`` executable in subprocesses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers_audit as h  # noqa: E402

from skill_ledger.adapters.audit.reaudit import Quarantine, Reauditor  # noqa: E402
from skill_ledger.adapters.usecases import verification  # noqa: E402
from skill_ledger.domain.errors import SkillLedgerError  # noqa: E402

TAMPERS = ["flip", "truncate", "delete", "replace"]
EXPECTED_CODE = {"flip": "artifact_tampered", "truncate": "artifact_tampered", "delete": "artifact_missing",
                 "replace": "artifact_tampered"}


def _install_fleet(home: Path, *skill_ids: str) -> dict[str, str]:
    """Install one version of each skill; returns skill_id -> artifact_sha256."""
    out = {}
    for i, sid in enumerate(skill_ids):
        r = h.install(home, h.artifact(sid, salt=i))
        assert r.status == "active", r
        out[sid] = r.artifact_sha256
    return out


def _replacement(skill_id: str) -> bytes:
    """Another validly signed artifact of the same skill and version, same key, different payload."""
    return h.artifact(skill_id, asset=b"a different asset, hence a different payload", salt=999)


def _tamper(home: Path, sid: str, digest: str, how: str) -> None:
    h.tamper(home, digest, how, _replacement(sid) if how == "replace" else None)


def _assert_quarantined_in_views(home: Path, sid: str, code: str) -> None:
    e = h.entry(home, sid)
    assert e["status"] == "quarantined"
    assert e["status_reason_code"] == code
    assert e["eligibility"]["eligible"] is False
    assert "quarantined" in e["eligibility"]["reasons"]
    info = h.cli(home, "info", sid)
    assert info.rc == 0, info
    assert info.json["status"] == "quarantined"
    assert info.json["status_reason_code"] == code
    assert info.json["eligibility"]["eligible"] is False
    assert "quarantined" in info.json["eligibility"]["reasons"]


def test_replacement_is_really_a_valid_artifact_of_the_same_version(tmp_path: Path) -> None:
    """The 'replace' tamper must be a *valid* signed artifact, or the test proves less than it claims."""
    from skill_ledger.domain.artifact import inspect_artifact

    original = inspect_artifact(h.artifact("acme.same"))
    other = inspect_artifact(_replacement("acme.same"))
    assert (other.manifest.skill_id, other.manifest.version, other.public_key_hex) == (
        original.manifest.skill_id, original.manifest.version, original.public_key_hex)
    assert other.payload_sha256 != original.payload_sha256


@pytest.mark.parametrize("how", TAMPERS)
def test_verify_quarantines_a_tampered_artifact(tmp_path: Path, how: str) -> None:
    home = tmp_path / "home"
    digests = _install_fleet(home, "acme.api", "acme.cli", "acme.clean")
    code = EXPECTED_CODE[how]
    _tamper(home, "acme.api", digests["acme.api"], how)
    _tamper(home, "acme.cli", digests["acme.cli"], how)

    # the use case
    before = h.head(home)
    with h.ledger(home, "verify") as lg:
        result = verification.verify(lg, "acme.api", None)
    assert (result.ok, result.reason_code, result.status) == (False, code, "quarantined")
    q = h.skill_events(home, "acme.api", "skill.quarantined", after=before)
    assert [e["data"]["reason_code"] for e in q] == [code]
    assert q[0]["data"]["version"] == "1.0.0"
    assert q[0]["data"]["details"]["artifact_sha256"] == digests["acme.api"]
    assert not h.skill_events(home, "acme.api", "skill.verified", after=before)

    # the command: exit 5, the reason code in the JSON, quarantined in the journal
    before = h.head(home)
    r = h.cli(home, "verify", "acme.cli")
    assert r.rc == 5, r
    assert (r.json["ok"], r.json["reason_code"], r.json["status"]) == (False, code, "quarantined")
    assert [e["data"]["reason_code"] for e in h.skill_events(home, "acme.cli", "skill.quarantined", after=before)] \
        == [code]

    # verifying again: still exit 5, nothing new recorded (already quarantined)
    before = h.head(home)
    again = h.cli(home, "verify", "acme.cli")
    assert (again.rc, again.json["reason_code"]) == (5, code), again
    assert h.head(home) == before

    # the untouched skill verifies
    ok = h.cli(home, "verify", "acme.clean")
    assert ok.rc == 0 and ok.json["ok"] is True, ok

    for sid in ("acme.api", "acme.cli"):
        _assert_quarantined_in_views(home, sid, code)
    clean = h.entry(home, "acme.clean")
    assert clean["status"] == "active" and clean["eligibility"] == {"eligible": True, "reasons": []}


@pytest.mark.parametrize("how", TAMPERS)
def test_reaudit_quarantines_a_tampered_artifact(tmp_path: Path, how: str) -> None:
    home = tmp_path / "home"
    digests = _install_fleet(home, "acme.one", "acme.two", "acme.clean")
    code = EXPECTED_CODE[how]

    with h.ledger(home, "reaudit") as lg:
        reauditor = Reauditor(lg)
        first = reauditor.run_pass()  # warms the reauditor's memo: the next pass may skip unchanged versions
        assert (first.checked, first.passed, first.quarantined, first.positions) == (3, 3, [], [])

        # tampered between two passes of the same long-lived reauditor: the memo must not hide it
        _tamper(home, "acme.one", digests["acme.one"], how)
        second = reauditor.run_pass()
        assert second.quarantined == [Quarantine("acme.one", "1.0.0", code)]
        assert second.checked == 3 and second.passed == 2
        q = h.skill_events(home, "acme.one", "skill.quarantined")
        assert [e["data"]["reason_code"] for e in q] == [code]

        # the command, in another process: exit 5, only the newly quarantined version listed
        _tamper(home, "acme.two", digests["acme.two"], how)
        r = h.cli(home, "reaudit")
        assert r.rc == 5, r
        assert r.json["quarantined"] == [{"skill_id": "acme.two", "version": "1.0.0", "reason_code": code}]
        assert r.json["checked"] == 3

        # a pass over the now settled fleet quarantines nothing more and writes nothing
        before = h.head(home)
        third = reauditor.run_pass()
        assert (third.quarantined, third.positions) == ([], [])
        assert h.head(home) == before

    again = h.cli(home, "reaudit")
    assert (again.rc, again.json["quarantined"], again.json["positions"]) == (0, [], []), again
    for sid in ("acme.one", "acme.two"):
        _assert_quarantined_in_views(home, sid, code)
    assert h.entry(home, "acme.clean")["eligibility"]["eligible"] is True


def test_a_tampered_version_is_not_counted_as_passed_by_later_passes(tmp_path: Path) -> None:
    """``passed`` must not change from one pass to the next when nothing changed: a pass that
    skips an unchanged, tampered (quarantined) version must not count it as passed because its
    last *audit* (at install, before the tampering) passed."""
    home, how = tmp_path / "home", "flip"
    digests = _install_fleet(home, "acme.bad", "acme.good")
    _tamper(home, "acme.bad", digests["acme.bad"], how)
    with h.ledger(home, "reaudit") as lg:
        reauditor = Reauditor(lg)
        first = reauditor.run_pass()
        assert first.quarantined == [Quarantine("acme.bad", "1.0.0", EXPECTED_CODE[how])]
        assert first.passed == 1
        second = reauditor.run_pass()
    fresh = h.cli(home, "reaudit")
    assert fresh.json["passed"] == 1, fresh
    assert second.passed == 1, f"pass 2 reported {second.passed} passed; pass 1 and a fresh process say 1"


@pytest.mark.parametrize("how", ["flip", "delete"])
def test_enable_refuses_a_tampered_version_even_with_override(tmp_path: Path, how: str) -> None:
    home = tmp_path / "home"
    digests = _install_fleet(home, "acme.x")
    _tamper(home, "acme.x", digests["acme.x"], how)
    assert h.cli(home, "verify", "acme.x").rc == 5
    r = h.cli(home, "enable", "acme.x", "--reason", "try", "--override")
    assert r.rc == 5, r
    assert r.json["error"]["code"] == EXPECTED_CODE[how]
    assert h.entry(home, "acme.x")["status"] == "quarantined"


# --- trust ------------------------------------------------------------------------------


def test_verify_quarantines_a_version_whose_key_was_revoked(tmp_path: Path) -> None:
    """A revocation the install did not see (it raced the revocation's sweep): ``verify`` and a
    re-audit pass find it and quarantine with ``trust_revoked``."""
    home = tmp_path / "home"
    _install_fleet(home, "acme.api", "acme.cli", "acme.pass")
    other = h.install(home, h.artifact("other.safe", publisher="other", seed=h.SEED_B))
    assert other.status == "active"
    h.record_revocation_only(home, "acme", h.SEED_A)
    assert h.entry(home, "acme.api")["status"] == "active"  # nothing quarantined yet

    with h.ledger(home, "verify") as lg:
        result = verification.verify(lg, "acme.api", None)
    assert (result.ok, result.reason_code, result.status) == (False, "trust_revoked", "quarantined")

    r = h.cli(home, "verify", "acme.cli")
    assert r.rc == 5, r
    assert (r.json["reason_code"], r.json["status"]) == ("trust_revoked", "quarantined")

    re = h.cli(home, "reaudit")
    assert re.rc == 5, re
    assert re.json["quarantined"] == [{"skill_id": "acme.pass", "version": "1.0.0", "reason_code": "trust_revoked"}]

    for sid in ("acme.api", "acme.cli", "acme.pass"):
        e = h.entry(home, sid)
        assert (e["status"], e["status_reason_code"]) == ("quarantined", "trust_revoked")
        assert e["eligibility"]["eligible"] is False
        assert set(e["eligibility"]["reasons"]) >= {"quarantined", "key_revoked"}
    assert h.entry(home, "other.safe")["eligibility"] == {"eligible": True, "reasons": []}
    assert h.cli(home, "verify", "other.safe").rc == 0


def test_trust_revoke_command_quarantines_and_verify_reports_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _install_fleet(home, "acme.a", "acme.b")
    r = h.cli(home, "trust", "revoke", "acme", h.public_hex(h.SEED_A), "--reason", "leaked")
    assert r.rc == 0, r
    for sid in ("acme.a", "acme.b"):
        e = h.entry(home, sid)
        assert (e["status"], e["status_reason_code"]) == ("quarantined", "trust_revoked")
        assert set(e["eligibility"]["reasons"]) >= {"quarantined", "key_revoked"}
    v = h.cli(home, "verify", "acme.a")
    assert (v.rc, v.json["reason_code"]) == (5, "trust_revoked"), v
    e = h.cli(home, "enable", "acme.a", "--reason", "no", "--override")
    assert e.rc == 4, e
    assert e.json["error"]["code"] == "key_revoked"


# --- audit --artifact is read-only ------------------------------------------------------


def test_audit_artifact_is_read_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _install_fleet(home, "acme.installed")
    good = h.write(tmp_path, "good.zip", h.artifact("newpub.good", publisher="newpub", seed=h.SEED_B))
    bad = h.write(tmp_path, "bad.zip", h.artifact(
        "newpub.bad", publisher="newpub", seed=h.SEED_B,
        module_bytes=h.module("echo", imports=[("env", "abort")])))
    before = h.head(home)
    trust_before = h.cli(home, "trust", "list").json

    r = h.cli(home, "audit", "--artifact", str(good), "--allow-tofu")
    assert r.rc == 0, r
    assert (r.json["skill_id"], r.json["passed"], r.json["trust_decision"]) == (
        "newpub.good", True, "tofu_newly_pinned")

    r = h.cli(home, "audit", "--artifact", str(bad), "--allow-tofu")
    assert r.rc == 5, r
    assert r.json["passed"] is False and r.json["should_quarantine"] is True
    fails = [c for c in r.json["checks"] if c["status"] == "fail"]
    assert [c["check_id"] for c in fails] == ["wasm_import_allowlist"]
    assert fails[0]["details"]["disallowed_import_modules"] == ["env"]

    # with the key given for this run only
    r = h.cli(home, "audit", "--artifact", str(good), "--trusted-publisher", f"newpub={h.public_hex(h.SEED_B)}")
    assert (r.rc, r.json["trust_decision"]) == (0, "allowlisted"), r

    # an unknown publisher without --allow-tofu is a trust error, and still records nothing
    r = h.cli(home, "audit", "--artifact", str(good))
    assert r.rc == 4, r
    assert r.json["error"]["code"] == "untrusted_publisher"

    assert h.head(home) == before  # no pin, no allowlist, no artifact.rejected, no audit
    assert h.cli(home, "trust", "list").json == trust_before
    assert [e["skill_id"] for e in h.cli(home, "list").json["entries"]] == ["acme.installed"]


# --- one verification service for verify, audit, enable and the re-audit ---------------------


def _first_quarantine(home: Path, sid: str, before: int) -> tuple[str, str]:
    [q] = h.skill_events(home, sid, "skill.quarantined", after=before)
    return q["data"]["reason_code"], q["data"]["details"]["artifact_sha256"]


@pytest.mark.parametrize("how", ["flip", "delete"])
def test_verify_audit_enable_and_reaudit_quarantine_a_damaged_artifact_alike(tmp_path: Path, how: str) -> None:
    """The four ways an installed artifact is checked again record the same quarantine: the
    reason code of the failure's kind, its message and the artifact's digest in the details."""
    from skill_ledger.adapters.usecases import lifecycle

    home = tmp_path / "home"
    sids = ("acme.verify", "acme.audit", "acme.enable", "acme.reaudit")
    digests = _install_fleet(home, *sids)
    with h.ledger(home) as lg:
        lifecycle.disable(lg, "acme.enable", None, "pause")  # enable acts only on a version not active
    for sid in sids:
        _tamper(home, sid, digests[sid], how)
    before = h.head(home)
    with h.ledger(home, "check") as lg:
        assert verification.verify(lg, "acme.verify", None).ok is False
        with pytest.raises(SkillLedgerError) as audit_error:
            verification.audit_installed(lg, "acme.audit", None)
        with pytest.raises(SkillLedgerError) as enable_error:
            lifecycle.enable(lg, "acme.enable", None, "try", override=True)
        assert Reauditor(lg).run_pass().quarantined == [Quarantine("acme.reaudit", "1.0.0", EXPECTED_CODE[how])]
    for error in (audit_error.value, enable_error.value):
        assert error.code == EXPECTED_CODE[how] and error.details["positions"], error
    for sid in sids:
        assert _first_quarantine(home, sid, before) == (EXPECTED_CODE[how], digests[sid])


def test_audit_without_quarantine_records_nothing_for_a_damaged_artifact(tmp_path: Path) -> None:
    home = tmp_path / "home"
    digests = _install_fleet(home, "acme.kept")
    _tamper(home, "acme.kept", digests["acme.kept"], "flip")
    before = h.head(home)
    with h.ledger(home, "audit") as lg:
        with pytest.raises(SkillLedgerError) as e:
            verification.audit_installed(lg, "acme.kept", None, quarantine=False)
    assert e.value.code == "artifact_tampered" and "positions" not in e.value.details
    assert h.head(home) == before


def test_the_verifier_reports_a_revoked_key_as_trust_revoked(tmp_path: Path) -> None:
    """A revocation the install did not see: the verifier refuses the key and quarantines the
    version as ``trust_revoked``; ``quarantine=False`` only reports it."""
    from skill_ledger.adapters.usecases.verification import StoredArtifactVerifier, Unverified, Verified

    home = tmp_path / "home"
    _install_fleet(home, "acme.signed")
    with h.ledger(home) as lg:
        skill = lg.skill("acme.signed")
        check = StoredArtifactVerifier(lg).check(skill, skill.installed())
        assert isinstance(check, Verified) and check.trust_decision == "tofu_pinned"
    h.record_revocation_only(home, "acme", h.SEED_A)
    with h.ledger(home) as lg:
        skill = lg.skill("acme.signed")
        verifier = StoredArtifactVerifier(lg)
        report_only = verifier.check(skill, skill.installed(), quarantine=False)
        assert isinstance(report_only, Unverified) and not skill.has_pending
        assert (report_only.error.code, report_only.reason_code, report_only.quarantined) == (
            "key_revoked", "trust_revoked", False)
        check = verifier.check(skill, skill.installed())
        assert isinstance(check, Unverified) and check.quarantined and skill.has_pending
        lg.save(skill)
    assert h.entry(home, "acme.signed")["status_reason_code"] == "trust_revoked"
