"""The Skill aggregate's rules: what each command decides and records."""

import msgspec
import pytest

from skill_ledger.domain.audit import AuditCheck, AuditReport
from skill_ledger.domain.errors import (
    ArtifactMissing,
    ArtifactTampered,
    AuditFailed,
    InvalidTransition,
    JournalTampered,
    KeyRevoked,
    NotInstalled,
    PayloadHashMismatch,
    UsageError,
    VersionConflict,
)
from skill_ledger.domain.events import Actor
from skill_ledger.domain.skill import (
    ACTIVE,
    DISABLED,
    QUARANTINED,
    ArtifactFacts,
    ArtifactVerified,
    Installed,
    Skill,
    quarantine_code_for,
)

ACTOR = Actor("user:alice", "host", "test")


def report(passed: bool = True, failing: tuple[str, ...] = ("wasm_import_allowlist",)) -> AuditReport:
    """An audit report: passing, or failing the given checks (with one quarantine reason each)."""
    checks = tuple(AuditCheck(check_id=c, status="fail", severity="error", message=f"{c} failed")
                   for c in (() if passed else failing))
    return AuditReport(
        skill_id="acme.x", version="1.0.0", publisher="acme", accepted=True, passed=passed,
        should_quarantine=not passed, trust_decision="allowlisted", payload_sha256="p", generated_at_unix_ms=0,
        policy={}, manifest_warnings=(), checks=(AuditCheck(check_id="signature_validity", status="pass",
                                                            severity="info", message="ok"), *checks),
        quarantine_reasons=tuple(f"{c} failed" for c in (() if passed else failing)),
        vulnerability_scan=AuditCheck(check_id="vulnerability_feed", status="skipped", severity="info", message="-"),
    )


def facts(version: str, payload: str = "p", key: str = "k1") -> ArtifactFacts:
    return ArtifactFacts(version=version, publisher="acme", payload_sha256=payload, artifact_sha256="a" + payload,
                         key_id="ed25519:" + key, key_hex=key, trust_decision="allowlisted", manifest={},
                         manifest_warnings=[], source="file:x")


def install(skill: Skill, version: str, passed: bool = True, payload: str = "p", key: str = "k1") -> bool:
    return skill.install(ACTOR, facts(version, payload, key), report(passed), 0, "sha256/x")


def enable(skill: Skill, version: str, passed: bool = True, override: bool = False) -> bool:
    return skill.enable(ACTOR, version, "ok", trust_decision="allowlisted", audit=report(passed), policy_version=0,
                        override=override)


def kinds(skill: Skill) -> list[str]:
    return [e.KIND for e in skill.collect_events()]


def replayed(skill: Skill) -> Skill:
    events = skill.collect_events()
    agg = None
    for e in events:
        agg = e.mutate(agg)
    return agg


def test_install_records_the_lifecycle_and_makes_current():
    s = Skill.start("acme.x")
    assert install(s, "1.0.0") is True
    assert kinds(s) == ["skill.artifact_verified", "skill.audited", "skill.installed", "skill.current_changed",
                        "skill.activated"]
    assert s.current == "1.0.0" and s.versions["1.0.0"].status == ACTIVE


def test_failed_install_is_quarantined_and_does_not_displace_an_active_current():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    install(s, "2.0.0", passed=False, payload="p2")
    assert s.current == "1.0.0"
    assert s.versions["2.0.0"].status == QUARANTINED
    assert s.versions["2.0.0"].status_reason_code == "audit_failed"
    assert s.versions["2.0.0"].status_reason == "wasm_import_allowlist failed"


def test_failed_first_install_still_becomes_current():
    s = Skill.start("acme.x")
    install(s, "1.0.0", passed=False)
    assert s.current == "1.0.0" and s.versions["1.0.0"].status == QUARANTINED


# --- install decides: already installed or a version conflict ------------------------------


def test_installing_the_same_payload_again_is_already_installed_and_records_nothing():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.collect_events()
    assert s.admits("1.0.0", "p") is False
    assert install(s, "1.0.0") is False
    assert kinds(s) == []


def test_installing_a_different_payload_as_an_installed_version_is_a_version_conflict():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.collect_events()
    with pytest.raises(VersionConflict) as e:
        install(s, "1.0.0", payload="other")
    assert e.value.code == "version_conflict"
    assert e.value.details == {"skill_id": "acme.x", "version": "1.0.0", "installed_version": "1.0.0",
                               "installed_payload_sha256": "p", "payload_sha256": "other"}
    assert kinds(s) == [] and s.versions["1.0.0"].payload_sha256 == "p"


# --- identity: versions equal under SemVer are one version ---------------------------------


def lenient_journal(*versions: str) -> Skill:
    """A skill stream as an engine before strict versions recorded it: each version installed
    (artifact_verified + installed), with its own payload, replayed from the events alone."""
    s = Skill.start("acme.x")
    for n, version in enumerate(versions):
        s._record(ArtifactVerified, ACTOR, **msgspec.structs.asdict(facts(version, payload=f"p{n}")))
        s._record(Installed, ACTOR, version=version, artifact_sha256=f"ap{n}", payload_sha256=f"p{n}", blob="b")
    return replayed(s)


@pytest.mark.parametrize("alias", ["01.0.0", "+1.0.0", "1.0.00", " 1.0.0"])
def test_version_aliases_of_1_0_0_cannot_be_installed_next_to_it(alias):
    """The attack: ``01.0.0``, ``+1.0.0``, ``1.0.00`` and ``" 1.0.0"`` installed beside ``1.0.0`` with other
    payloads. A new version must be strict SemVer; and an alias an older journal recorded is the same version."""
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    with pytest.raises(Exception) as refused:
        install(s, alias, payload="other")
    assert refused.value.code == "manifest_validation"
    assert refused.value.details["code"] in ("semver_component_invalid", "semver_format_invalid")
    old = lenient_journal(alias)  # recorded by an older engine: it still replays
    assert old.versions[alias].installed and old.versions[alias].sort_key == (1, 0, 0)
    with pytest.raises(VersionConflict) as conflict:
        install(old, "1.0.0", payload="other")
    assert conflict.value.details["installed_version"] == alias and conflict.value.details["version"] == "1.0.0"
    assert old.collect_events() == []


def test_an_old_journal_with_aliases_installed_side_by_side_still_replays():
    s = lenient_journal("1.0.0", "01.0.0", " 1.0.0")
    assert [v.version for v in s.installed_versions()] == ["1.0.0", "01.0.0", " 1.0.0"]
    assert s.admits("1.0.0", "p0") is False  # this very payload: nothing to do
    with pytest.raises(VersionConflict):
        s.admits("1.0.0", "p9")
    assert s.admits("1.0.1", "p9") is True


def test_a_removed_alias_does_not_block_the_version():
    s = lenient_journal("01.0.0")
    s.remove(ACTOR, "01.0.0", "alias")
    assert s.admits("1.0.0", "other") is True


def test_a_removed_version_may_be_installed_again_with_another_payload():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.remove(ACTOR, "1.0.0", None)
    assert s.admits("1.0.0", "other") is True
    assert install(s, "1.0.0", payload="other")
    assert s.versions["1.0.0"].payload_sha256 == "other" and s.versions["1.0.0"].status == ACTIVE


# --- enable decides: a failed audit refuses without an override ----------------------------


def test_enable_after_a_failed_audit_without_override_is_audit_failed_with_the_audit_recorded():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.quarantine(ACTOR, "1.0.0", "operator", "look")
    s.collect_events()
    with pytest.raises(AuditFailed) as e:
        enable(s, "1.0.0", passed=False)
    assert e.value.details["failed_checks"] == ["wasm_import_allowlist"]
    assert e.value.details["quarantine_reasons"] == ["wasm_import_allowlist failed"]
    # the fresh verification and the failed audit stay pending, for the caller to save
    assert kinds(s) == ["skill.verified", "skill.audited"]
    v = s.versions["1.0.0"]
    assert v.status == QUARANTINED and v.last_audit["trigger"] == "enable" and v.last_audit["passed"] is False


def test_enable_with_override_records_the_override_and_activates():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.disable(ACTOR, "1.0.0", "pause")
    s.collect_events()
    assert enable(s, "1.0.0", passed=False, override=True) is True
    events = s.collect_events()
    assert [e.KIND for e in events] == ["skill.verified", "skill.audited", "skill.enabled"]
    assert (events[-1].override, events[-1].audit_passed) == (True, False)
    assert s.versions["1.0.0"].status == ACTIVE and s.versions["1.0.0"].status_reason_code == "override"


def test_an_override_of_a_passing_audit_is_not_recorded_as_one():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.quarantine(ACTOR, "1.0.0", "operator", "look")
    s.collect_events()
    assert enable(s, "1.0.0", passed=True, override=True)
    enabled = s.collect_events()[-1]
    assert (enabled.override, enabled.audit_passed) == (False, True)


def test_enable_of_an_active_version_records_nothing():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.collect_events()
    assert enable(s, "1.0.0", passed=False) is False
    assert kinds(s) == []


# --- the periodic re-audit records only what changed ---------------------------------------


def test_reaudit_with_an_unchanged_result_records_nothing():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.collect_events()
    assert s.reaudit(ACTOR, "1.0.0", "allowlisted", report(True), 0) is None
    assert kinds(s) == []


def test_reaudit_under_a_new_policy_records_the_audit_once():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.collect_events()
    assert s.reaudit(ACTOR, "1.0.0", "allowlisted", report(True), 1) is None
    [audited] = s.collect_events()
    assert (audited.KIND, audited.trigger, audited.policy_version) == ("skill.audited", "policy_change", 1)
    assert s.reaudit(ACTOR, "1.0.0", "allowlisted", report(True), 1) is None
    assert kinds(s) == []


def test_reaudit_failing_after_a_policy_change_quarantines_with_policy_change():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.collect_events()
    assert s.reaudit(ACTOR, "1.0.0", "allowlisted", report(False), 2) == "policy_change"
    audited, quarantined = s.collect_events()
    assert audited.trigger == "policy_change" and audited.passed is False
    assert (quarantined.reason_code, quarantined.details) == ("policy_change", {"policy_version": 2,
                                                                               "trigger": "policy_change"})


def test_reaudit_failing_under_the_same_policy_quarantines_with_audit_failed_once():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.collect_events()
    assert s.reaudit(ACTOR, "1.0.0", "allowlisted", report(False), 0) == "audit_failed"
    assert [(e.KIND, getattr(e, "trigger", None)) for e in s.collect_events()] == [
        ("skill.audited", "periodic"), ("skill.quarantined", None)]
    # the same failure again: nothing new (already quarantined, same result)
    assert s.reaudit(ACTOR, "1.0.0", "allowlisted", report(False), 0) is None
    assert kinds(s) == []
    # a different failing check is a changed result: recorded, but no second quarantine
    assert s.reaudit(ACTOR, "1.0.0", "allowlisted", report(False, ("wasm_exported_function_limit",)), 0) is None
    assert kinds(s) == ["skill.audited"]


def test_a_passing_reaudit_never_reactivates_a_quarantined_version():
    s = Skill.start("acme.x")
    install(s, "1.0.0", passed=False)
    s.collect_events()
    assert s.reaudit(ACTOR, "1.0.0", "allowlisted", report(True), 0) is None
    assert kinds(s) == ["skill.audited"] and s.versions["1.0.0"].status == QUARANTINED


def test_reaudit_under_a_changed_trust_decision_is_a_trust_change():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.collect_events()
    s.reaudit(ACTOR, "1.0.0", "tofu_pinned", report(False), 0)
    assert s.collect_events()[0].trigger == "periodic"  # tofu_pinned is how a pinned key reads later
    s2 = Skill.start("acme.y")
    install(s2, "1.0.0")
    s2.collect_events()
    s2.reaudit(ACTOR, "1.0.0", "tofu_newly_pinned", report(False), 0)
    assert s2.collect_events()[0].trigger == "trust_change"


# --- a failed verification quarantines with the code of its kind ---------------------------


@pytest.mark.parametrize("error, code", [
    (ArtifactMissing("gone"), "artifact_missing"),
    (ArtifactTampered("flipped"), "artifact_tampered"),
    (KeyRevoked("acme", "ed25519:k1"), "trust_revoked"),
    (PayloadHashMismatch(), "artifact_tampered"),
])
def test_a_failed_verification_quarantines_with_the_code_of_its_kind(error, code):
    assert quarantine_code_for(error) == code
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.collect_events()
    assert s.quarantine_unverified(ACTOR, "1.0.0", error) is True
    assert s.quarantine_unverified(ACTOR, "1.0.0", error) is False
    [q] = s.collect_events()
    assert (q.reason_code, q.reason) == (code, error.message)


def test_a_revoked_key_quarantines_only_the_versions_it_signed():
    s = Skill.start("acme.x")
    install(s, "1.0.0", key="k1")
    install(s, "2.0.0", payload="p2", key="k2")
    s.collect_events()
    assert s.quarantine_signed_by(ACTOR, "acme", "k1", "ed25519:k1", "leaked") == ["1.0.0"]
    [q] = s.collect_events()
    assert (q.version, q.reason_code, q.reason) == ("1.0.0", "trust_revoked",
                                                    "publisher acme key ed25519:k1 was revoked: leaked")
    assert s.quarantine_signed_by(ACTOR, "acme", "k1", "ed25519:k1", "leaked") == []


# --- the other commands --------------------------------------------------------------------


def test_quarantine_is_idempotent():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.collect_events()
    assert s.quarantine(ACTOR, "1.0.0", "operator", "why") is True
    assert s.quarantine(ACTOR, "1.0.0", "operator", "again") is False
    assert kinds(s) == ["skill.quarantined"]


def test_manual_audit_quarantines_a_failure_unless_told_not_to():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.collect_events()
    assert s.manual_audit(ACTOR, "1.0.0", report(False), 3, quarantine=False) is False
    assert kinds(s) == ["skill.audited"]
    assert s.manual_audit(ACTOR, "1.0.0", report(False), 3) is True
    audited, quarantined = s.collect_events()
    assert audited.trigger == "manual" and quarantined.details == {"policy_version": 3}


def test_disable_of_quarantined_is_refused_and_enable_reactivates():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.quarantine(ACTOR, "1.0.0", "operator", "why")
    with pytest.raises(InvalidTransition):
        s.disable(ACTOR, "1.0.0", "pause")
    assert enable(s, "1.0.0")
    assert s.versions["1.0.0"].status == ACTIVE
    assert s.disable(ACTOR, "1.0.0", "pause") and s.versions["1.0.0"].status == DISABLED
    assert s.disable(ACTOR, "1.0.0", "pause") is False


def test_commands_on_unknown_versions_are_not_installed():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    for command in (lambda: s.quarantine(ACTOR, "9.9.9", "operator", "x"),
                    lambda: s.remove(ACTOR, "9.9.9", None),
                    lambda: s.rollback(ACTOR, "9.9.9", None),
                    lambda: enable(s, "9.9.9"),
                    lambda: s.reaudit(ACTOR, "9.9.9", "allowlisted", report(True), 0)):
        with pytest.raises(NotInstalled):
            command()


def test_remove_current_promotes_the_highest_remaining_version():
    s = Skill.start("acme.x")
    for v in ("1.0.0", "1.10.0", "1.2.0"):
        install(s, v)
    assert s.current == "1.2.0"
    s.remove(ACTOR, "1.2.0", None)
    assert s.current == "1.10.0"  # semver order, not text order
    s.remove(ACTOR, "1.10.0", None)
    s.remove(ACTOR, "1.0.0", None)
    assert s.current is None and s.installed_versions() == []


def test_rollback_defaults_to_the_previous_current():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    install(s, "2.0.0")
    assert s.rollback(ACTOR, None, "bad release") == "1.0.0"
    assert s.current == "1.0.0"
    with pytest.raises(UsageError):
        s.rollback(ACTOR, "1.0.0", None)


def test_rollback_skips_removed_previous_currents():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    install(s, "2.0.0")
    install(s, "3.0.0")
    s.remove(ACTOR, "2.0.0", None)
    assert s.rollback(ACTOR, None, None) == "1.0.0"


def test_rollback_without_earlier_version_is_not_installed():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    with pytest.raises(NotInstalled):
        s.rollback(ACTOR, None, None)


def test_reinstall_after_removal_starts_a_fresh_version_state():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.quarantine(ACTOR, "1.0.0", "operator", "x")
    s.remove(ACTOR, "1.0.0", None)
    install(s, "1.0.0")
    assert s.versions["1.0.0"].status == ACTIVE and s.current == "1.0.0"


def test_replay_reaches_the_same_state():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    install(s, "2.0.0", passed=False)
    enable(s, "2.0.0", passed=False, override=True)
    s.rollback(ACTOR, "2.0.0", None)
    s.record_audit(ACTOR, "2.0.0", "manual", 3, report(True))
    again = replayed(s)
    assert again.version == s.version and again.current == s.current
    for v in s.versions:
        assert vars(again.versions[v]) == vars(s.versions[v])


def test_unknown_audit_trigger_is_a_bug():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    with pytest.raises(ValueError):
        s.record_audit(ACTOR, "1.0.0", "whenever", 0, report(True))


# --- replay: skill.installed depends on the version's skill.artifact_verified ---------------


def _event(cls, skill: Skill, position: int, **data):
    return cls(originator_id=skill.id, originator_version=position, timestamp=cls.create_timestamp(),
               stream=skill.stream, actor=ACTOR, **data)


def test_installed_without_its_artifact_verified_is_refused_on_replay():
    s = Skill.start("acme.x")
    orphan = _event(Installed, s, 1, version="1.0.0", artifact_sha256="ap", payload_sha256="p", blob="sha256/x")
    with pytest.raises(JournalTampered, match="before its skill.artifact_verified"):
        orphan.mutate(None)


def test_installed_of_another_artifact_than_the_verified_one_is_refused_on_replay():
    s = Skill.start("acme.x")
    verified = _event(ArtifactVerified, s, 1, **msgspec.structs.asdict(facts("1.0.0")))
    agg = verified.mutate(None)
    other = _event(Installed, s, 2, version="1.0.0", artifact_sha256="other", payload_sha256="p", blob="sha256/x")
    with pytest.raises(JournalTampered, match="does not follow"):
        other.mutate(agg)


# --- outside text is bounded on every event that carries it -----------------------------------


def test_reasons_details_and_check_messages_are_bounded_when_recorded():
    long = "r" * 50_000
    s = Skill.start("acme.x")
    failing = AuditCheck(check_id="wasm_import_allowlist", status="fail", severity="error", message="m" * 9_000,
                         details={"imports": ["i" * 3_000] * 40})
    bad = msgspec.structs.replace(report(False), checks=(failing,), quarantine_reasons=("q" * 9_000,))
    s.install(ACTOR, msgspec.structs.replace(facts("1.0.0"), source="file:" + long,
                                             manifest_warnings=[{"code": "w", "message": long}]), bad, 0, "b")
    s.quarantine(ACTOR, "1.0.0", "operator", long)  # already quarantined by the audit: nothing recorded
    s.enable(ACTOR, "1.0.0", long, trust_decision="allowlisted", audit=report(), policy_version=0)
    s.disable(ACTOR, "1.0.0", long)
    s.enable(ACTOR, "1.0.0", long, trust_decision="allowlisted", audit=report(), policy_version=0)
    s.quarantine(ACTOR, "1.0.0", "operator", long, {"why": long, "many": list(range(10_000))})
    s.deny_execution(ACTOR, "1.0.0", "t" * 10_000, "not_active")
    s.remove(ACTOR, "1.0.0", long)
    events = s.collect_events()
    for event in events:
        assert len(msgspec.json.encode(event)) < 40_000, event.KIND
        for name in ("reason", "source", "tool_id"):
            value = getattr(event, name, None)
            if isinstance(value, str) and len(value) > 100:
                assert len(value.encode()) <= 4_096 and value.endswith("bytes]"), (event.KIND, name)
    by_kind = {e.KIND: e for e in events}  # the last of each kind
    verified = by_kind["skill.artifact_verified"]
    assert verified.manifest_warnings[0]["message"].endswith("bytes]")
    audited = [e for e in events if e.KIND == "skill.audited"][0]
    assert audited.checks[0]["message"].endswith("bytes]") and audited.quarantine_reasons[0].endswith("bytes]")
    assert len(msgspec.json.encode(audited.checks[0]["details"])) <= 16_384
    quarantined = by_kind["skill.quarantined"]
    assert quarantined.reason.endswith("bytes]") and quarantined.details["why"].endswith("bytes]")
    assert "many" not in quarantined.details and quarantined.details["…"].startswith("[truncated: 1 members")
    assert by_kind["skill.execution_denied"].tool_id.endswith("bytes]")
    assert {e.KIND for e in events} >= {"skill.disabled", "skill.enabled", "skill.removed", "skill.current_changed"}


# --- the Intake aggregate: a rejection is recorded once per artifact and error -----------------


def test_intake_records_each_error_once_and_bounds_it():
    from skill_ledger.domain.intake import ArtifactRejected, Intake

    intake = Intake.start("a" * 64)
    details = {"detail": "d" * 5_000}
    assert intake.reject(ACTOR, source="file:x", error_code="manifest_validation", message="m" * 20_000,
                         details=details) is True
    assert intake.reject(ACTOR, source="file:elsewhere", error_code="manifest_validation", message="m" * 20_000,
                         details=details) is False  # same digest, same error, another path: nothing
    assert intake.reject(ACTOR, source="file:x", error_code="untrusted_publisher", message="m", details={}) is True
    (first, second) = intake.collect_events()
    assert len(first.message.encode()) <= 4_096 and len(first.details["detail"].encode()) <= 1_024
    # replayed (as an old journal with an unbounded message would be), the same error is still known
    old = Intake.start("a" * 64)
    old._record(ArtifactRejected, ACTOR, artifact_sha256="a" * 64, source="s", error_code="manifest_validation",
                message="m" * 20_000, details=details, skill_id=None, version=None, publisher=None)
    agg = None
    for e in old.collect_events():
        agg = e.mutate(agg)
    assert agg.reject(ACTOR, source="s", error_code="manifest_validation", message="m" * 20_000,
                      details=details) is False


@pytest.mark.parametrize("how", ["disable", "quarantine"])
def test_rollback_onto_a_version_that_cannot_run_is_refused_with_the_way_out(how):
    """Issue 12: a rollback onto a disabled (or quarantined) version used to succeed silently and
    leave a current version every run refuses."""
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    install(s, "2.0.0")
    install(s, "3.0.0")
    if how == "disable":
        s.disable(ACTOR, "2.0.0", "paused")
    else:
        s.quarantine(ACTOR, "2.0.0", "operator", "odd")
    s.collect_events()
    with pytest.raises(InvalidTransition) as info:
        s.rollback(ACTOR, "2.0.0", "3.0.0 misbehaves")
    assert "skills enable acme.x --version 2.0.0" in info.value.message
    assert info.value.details == {"skill_id": "acme.x", "version": "2.0.0",
                                  "status": DISABLED if how == "disable" else QUARANTINED, "active_versions": ["1.0.0"]}
    assert s.collect_events() == [] and s.current == "3.0.0"
    with pytest.raises(InvalidTransition):  # the default target (the previous current) is refused the same way
        s.rollback(ACTOR, None, "3.0.0 misbehaves")
    assert s.rollback(ACTOR, "1.0.0", "3.0.0 misbehaves") == "1.0.0"


def test_secret_events_of_the_skills_own_scope_carry_names_only():
    s = Skill.start("acme.x")
    s.record_secret_set(ACTOR, "skill:acme.x", "token", False, "rotation")
    s.record_secret_removed(ACTOR, "skill:acme.x", "token", None)
    events = s.collect_events()
    assert [e.KIND for e in events] == ["skill.secret_set", "skill.secret_removed"]
    assert {k: getattr(events[0], k) for k in ("scope", "key", "replaced", "reason")} == {
        "scope": "skill:acme.x", "key": "token", "replaced": False, "reason": "rotation"}
    again = None
    for e in events:
        again = e.mutate(again)
    assert again.secret_keys == set() and again.versions == {} and again.current is None
