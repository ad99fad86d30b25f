"""The Skill aggregate's rules: what each command decides and records."""

import pytest

from skill_ledger.domain.errors import InvalidTransition, NotInstalled, UsageError
from skill_ledger.domain.events import Actor
from skill_ledger.domain.skill import ACTIVE, DISABLED, QUARANTINED, Skill

ACTOR = Actor("user:alice", "host", "test")


def verified(skill: Skill, version: str, payload: str = "p", key: str = "k1") -> None:
    skill.record_verification(ACTOR, version=version, publisher="acme", payload_sha256=payload,
                              artifact_sha256="a" + version, key_id="ed25519:" + key, key_hex=key,
                              trust_decision="allowlisted", manifest={}, manifest_warnings=[], source="file:x")


def install(skill: Skill, version: str, passed: bool = True) -> None:
    verified(skill, version)
    skill.install(ACTOR, version, "a" + version, "p", "sha256/x", audit_passed=passed, quarantine_reason="bad")


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
    install(s, "1.0.0")
    assert kinds(s) == ["skill.artifact_verified", "skill.installed", "skill.current_changed", "skill.activated"]
    assert s.current == "1.0.0" and s.versions["1.0.0"].status == ACTIVE


def test_failed_install_is_quarantined_and_does_not_displace_an_active_current():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    install(s, "2.0.0", passed=False)
    assert s.current == "1.0.0"
    assert s.versions["2.0.0"].status == QUARANTINED
    assert s.versions["2.0.0"].status_reason_code == "audit_failed"


def test_failed_first_install_still_becomes_current():
    s = Skill.start("acme.x")
    install(s, "1.0.0", passed=False)
    assert s.current == "1.0.0" and s.versions["1.0.0"].status == QUARANTINED


def test_quarantine_is_idempotent():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.collect_events()
    assert s.quarantine(ACTOR, "1.0.0", "operator", "why") is True
    assert s.quarantine(ACTOR, "1.0.0", "operator", "again") is False
    assert kinds(s) == ["skill.quarantined"]


def test_disable_of_quarantined_is_refused_and_enable_reactivates():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    s.quarantine(ACTOR, "1.0.0", "operator", "why")
    with pytest.raises(InvalidTransition):
        s.disable(ACTOR, "1.0.0", "pause")
    assert s.enable(ACTOR, "1.0.0", "ok", override=False, audit_passed=True)
    assert s.versions["1.0.0"].status == ACTIVE
    assert s.disable(ACTOR, "1.0.0", "pause") and s.versions["1.0.0"].status == DISABLED
    assert s.disable(ACTOR, "1.0.0", "pause") is False


def test_commands_on_unknown_versions_are_not_installed():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    for command in (lambda: s.quarantine(ACTOR, "9.9.9", "operator", "x"),
                    lambda: s.remove(ACTOR, "9.9.9", None),
                    lambda: s.rollback(ACTOR, "9.9.9", None)):
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
    s.enable(ACTOR, "2.0.0", "override", override=True, audit_passed=False)
    s.rollback(ACTOR, "2.0.0", None)
    s.record_audit(ACTOR, "2.0.0", "manual", 3, {"passed": True, "should_quarantine": False, "checks": [],
                                                   "quarantine_reasons": []})
    again = replayed(s)
    assert again.version == s.version and again.current == s.current
    for v in s.versions:
        assert vars(again.versions[v]) == vars(s.versions[v])


def test_unknown_audit_trigger_is_a_bug():
    s = Skill.start("acme.x")
    install(s, "1.0.0")
    with pytest.raises(ValueError):
        s.record_audit(ACTOR, "1.0.0", "whenever", 0, {"passed": True, "should_quarantine": False, "checks": [],
                                                        "quarantine_reasons": []})
