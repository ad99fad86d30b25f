"""Re-audit: policy changes quarantine (and never re-activate), idle passes write nothing, a
failing install audit quarantines, eligibility names its reasons, the vulnerability feed.

Real signed artifacts (WAT compiled to binary), real SQLite journals in tmp_path, the real
``skills`` executable in subprocesses where the command line is part of the contract.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers_audit as h  # noqa: E402

from skill_ledger.adapters.audit.reaudit import Quarantine, Reauditor  # noqa: E402
from skill_ledger.adapters.usecases import lifecycle, trust, verification  # noqa: E402
from skill_ledger.adapters.usecases.policy import set_policy  # noqa: E402
from skill_ledger.domain.constants import PROTOCOL_MAJOR, RUNTIME_VERSION  # noqa: E402
from skill_ledger.domain.eligibility import compat_problem, eligibility  # noqa: E402
from skill_ledger.domain.errors import IoError, SerializationError  # noqa: E402

WIDE_TOOLS = ("a", "b", "c")  # exports alloc + 3 tools = 4 functions
NARROW_TOOLS = ("echo",)  # exports alloc + echo = 2 functions


def _audited(home: Path, sid: str, after: int = 0) -> list[dict]:
    return [e["data"] for e in h.skill_events(home, sid, "skill.audited", after)]


def _quarantined(home: Path, sid: str, after: int = 0) -> list[dict]:
    return [e["data"] for e in h.skill_events(home, sid, "skill.quarantined", after)]


def _check(data: dict, check_id: str) -> list[dict]:
    return [c for c in data["checks"] if c["check_id"] == check_id]


# --- policy change ------------------------------------------------------------------------


def test_tightening_the_policy_quarantines_with_policy_change_and_loosening_does_not_reactivate(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert h.install(home, h.artifact("acme.wide", tools=WIDE_TOOLS)).status == "active"
    assert h.install(home, h.artifact("acme.narrow", tools=NARROW_TOOLS, salt=1)).status == "active"

    # tighten below acme.wide's 4 exported functions, re-audit in the same command
    before = h.head(home)
    r = h.cli(home, "policy", "set", "max_exported_functions=3", "--reason", "tighten", "--reaudit")
    assert r.rc == 5, r
    assert r.json["policy_version"] == 1
    assert r.json["reaudit"]["quarantined"] == [
        {"skill_id": "acme.wide", "version": "1.0.0", "reason_code": "policy_change"}]

    [audit] = _audited(home, "acme.wide", before)
    assert (audit["trigger"], audit["policy_version"], audit["passed"], audit["should_quarantine"]) == (
        "policy_change", 1, False, True)
    [limit] = _check(audit, "wasm_exported_function_limit")
    assert limit["status"] == "fail"
    assert (limit["details"]["exported_functions"], limit["details"]["max_exported_functions"]) == (4, 3)
    [q] = _quarantined(home, "acme.wide", before)
    assert q["reason_code"] == "policy_change"
    assert "exports too many functions (4 > 3)" in q["reason"]
    # the narrow skill is re-audited under the new policy version, passes, stays active
    [narrow] = _audited(home, "acme.narrow", before)
    assert (narrow["trigger"], narrow["policy_version"], narrow["passed"]) == ("policy_change", 1, True)
    assert not _quarantined(home, "acme.narrow")

    e = h.entry(home, "acme.wide")
    assert (e["status"], e["status_reason_code"]) == ("quarantined", "policy_change")
    assert e["last_audit"]["trigger"] == "policy_change" and e["last_audit"]["passed"] is False
    assert e["eligibility"] == {"eligible": False, "reasons": ["quarantined", "audit_failed"]}

    # loosen it back: the audit passes again, but nothing re-activates a quarantined version
    assert h.cli(home, "policy", "set", "max_exported_functions=128", "--reason", "loosen").rc == 0
    before = h.head(home)
    r = h.cli(home, "reaudit")
    assert r.rc == 0, r
    assert r.json["quarantined"] == []
    [audit] = _audited(home, "acme.wide", before)
    assert (audit["passed"], audit["policy_version"]) == (True, 2)
    kinds = {ev["kind"] for ev in h.events(home, after=before)}
    assert kinds == {"skill.audited"}, kinds  # no skill.enabled / skill.activated
    e = h.entry(home, "acme.wide")
    assert e["status"] == "quarantined"
    assert e["eligibility"] == {"eligible": False, "reasons": ["quarantined"]}

    # enable then works (re-verify, re-audit under policy 2, re-activate)
    r = h.cli(home, "enable", "acme.wide", "--reason", "policy loosened")
    assert r.rc == 0, r
    assert r.json["status"] == "active"
    e = h.entry(home, "acme.wide")
    assert e["status"] == "active" and e["eligibility"] == {"eligible": True, "reasons": []}
    assert _audited(home, "acme.wide")[-1]["trigger"] == "enable"


def test_enable_refuses_while_the_policy_still_fails_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    h.install(home, h.artifact("acme.wide", tools=WIDE_TOOLS))
    assert h.cli(home, "policy", "set", "max_exported_functions=3", "--reason", "tighten", "--reaudit").rc == 5
    r = h.cli(home, "enable", "acme.wide", "--reason", "please")
    assert r.rc == 5, r
    assert r.json["error"]["code"] == "audit_failed"
    assert h.entry(home, "acme.wide")["status"] == "quarantined"
    r = h.cli(home, "enable", "acme.wide", "--reason", "accepted risk", "--override")
    assert r.rc == 0, r
    [enabled] = [e["data"] for e in h.skill_events(home, "acme.wide", "skill.enabled")]
    assert (enabled["override"], enabled["audit_passed"]) == (True, False)


# --- idle re-audit ---------------------------------------------------------------------------


def _idle_fleet(home: Path) -> None:
    """Active, quarantined (tampered, missing, failed install audit, revoked key) and disabled
    versions; then an unrelated policy change, so that the first pass does have work to record."""
    for i, sid in enumerate(("acme.a1", "acme.a2", "acme.tampered", "acme.missing", "acme.disabled")):
        h.install(home, h.artifact(sid, salt=i))
    h.install(home, h.artifact("acme.a1", version="1.1.0", salt=100))
    failed = h.install(home, h.artifact("acme.failed", module_bytes=h.module("echo", imports=[("env", "x")])))
    assert failed.status == "quarantined"
    h.install(home, h.artifact("other.revoked", publisher="other", seed=h.SEED_B))
    with h.ledger(home) as lg:
        trust.revoke(lg, "other", h.public_hex(h.SEED_B), "leaked")
        lifecycle.disable(lg, "acme.disabled", None, "maintenance")
        tampered = lg.skill("acme.tampered").installed().artifact_sha256
        missing = lg.skill("acme.missing").installed().artifact_sha256
    h.tamper(home, tampered, "flip")
    h.tamper(home, missing, "delete")
    with h.ledger(home) as lg:
        assert not verification.verify(lg, "acme.tampered", None).ok
        set_policy(lg, ["max_module_bytes=9000000"], "unrelated change")


@pytest.mark.parametrize("mode", ["one_reauditor", "fresh_instances", "processes"])
def test_ten_idle_passes_append_nothing_after_the_first(tmp_path: Path, mode: str) -> None:
    home = tmp_path / "home"
    _idle_fleet(home)
    heads = [h.head(home)]
    if mode == "one_reauditor":
        with h.ledger(home, "reaudit") as lg:
            reauditor = Reauditor(lg)
            for _ in range(10):
                reauditor.run_pass()
                heads.append(h.head(home))
    elif mode == "fresh_instances":
        for _ in range(10):
            with h.ledger(home, "reaudit") as lg:
                Reauditor(lg).run_pass()
            heads.append(h.head(home))
    else:
        for _ in range(10):
            r = h.cli(home, "reaudit")
            assert r.rc in (0, 5), r
            heads.append(h.head(home))

    first = h.events(home, after=heads[0])
    # pass 1: one skill.audited per auditable version (the policy version changed), plus the
    # quarantine of acme.missing, whose blob was deleted; nothing else
    audited = sorted((e["stream"], e["data"]["version"]) for e in first if e["kind"] == "skill.audited")
    assert audited == [("skill:acme.a1", "1.0.0"), ("skill:acme.a1", "1.1.0"), ("skill:acme.a2", "1.0.0"),
                       ("skill:acme.disabled", "1.0.0"), ("skill:acme.failed", "1.0.0")]
    assert [(e["stream"], e["data"]["reason_code"]) for e in first if e["kind"] == "skill.quarantined"] == [
        ("skill:acme.missing", "artifact_missing")]
    assert len(first) == 6
    assert heads[2:] == [heads[1]] * 9, f"journal head per pass: {heads}"


def test_a_fresh_process_after_a_long_lived_one_appends_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _idle_fleet(home)
    with h.ledger(home, "reaudit") as lg:
        Reauditor(lg).run_pass()
    settled = h.head(home)
    r = h.cli(home, "reaudit")
    assert r.json["positions"] == [] and h.head(home) == settled, r
    assert r.json["checked"] == 8


# --- install ------------------------------------------------------------------------------


def test_a_failing_install_audit_installs_the_version_quarantined(tmp_path: Path) -> None:
    home = tmp_path / "home"
    good = h.write(tmp_path, "good.zip", h.artifact("acme.x", version="1.0.0"))
    bad = h.write(tmp_path, "bad.zip", h.artifact(
        "acme.x", version="1.1.0", module_bytes=h.module("echo", imports=[("env", "abort")])))
    assert h.cli(home, "install", "--artifact", str(good), "--allow-tofu").rc == 0
    before = h.head(home)
    r = h.cli(home, "install", "--artifact", str(bad))
    assert r.rc == 5, r
    assert (r.json["status"], r.json["version"], r.json["current"]) == ("quarantined", "1.1.0", False)
    assert r.json["audit"]["passed"] is False
    assert r.json["audit"]["failed_checks"] == ["wasm_import_allowlist"]

    [audit] = _audited(home, "acme.x", before)
    assert (audit["version"], audit["trigger"], audit["passed"]) == ("1.1.0", "install", False)
    [q] = _quarantined(home, "acme.x", before)
    assert (q["version"], q["reason_code"]) == ("1.1.0", "audit_failed")
    assert "outside the allowlist: env" in q["reason"]
    assert not [e for e in h.events(home, after=before) if e["kind"] == "skill.activated"]

    e = h.entry(home, "acme.x", "1.1.0")
    assert (e["status"], e["status_reason_code"], e["current"]) == ("quarantined", "audit_failed", False)
    assert e["eligibility"] == {"eligible": False, "reasons": ["quarantined", "audit_failed"]}
    assert h.entry(home, "acme.x", "1.0.0")["current"] is True  # a failed install does not displace it


# --- eligibility --------------------------------------------------------------------------


def test_eligibility_reasons_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    h.install(home, h.artifact("acme.ok", salt=1))
    h.install(home, h.artifact("acme.quarantined", salt=2))
    h.install(home, h.artifact("acme.disabled", salt=3))
    h.install(home, h.artifact("acme.lastfailed", tools=WIDE_TOOLS, salt=4))
    h.install(home, h.artifact("other.revoked", publisher="other", seed=h.SEED_B))
    assert h.cli(home, "quarantine", "acme.quarantined", "--reason", "operator says so").rc == 0
    assert h.cli(home, "disable", "acme.disabled", "--reason", "maintenance").rc == 0
    assert h.cli(home, "trust", "revoke", "other", h.public_hex(h.SEED_B), "--reason", "leaked").rc == 0
    # a failing audit recorded without quarantine: active, but its last audit failed
    assert h.cli(home, "policy", "set", "max_exported_functions=3", "--reason", "tighten").rc == 0
    r = h.cli(home, "audit", "acme.lastfailed", "--no-quarantine")
    assert r.rc == 5 and r.json["quarantined"] is False, r

    listed = {e["skill_id"]: e for e in h.cli(home, "list").json["entries"]}
    expected = {
        "acme.ok": ("active", True, []),
        "acme.quarantined": ("quarantined", False, ["quarantined"]),
        "acme.disabled": ("disabled", False, ["disabled"]),
        "acme.lastfailed": ("active", False, ["audit_failed"]),
        "other.revoked": ("quarantined", False, ["quarantined", "key_revoked"]),
    }
    got = {sid: (e["status"], e["eligibility"]["eligible"], e["eligibility"]["reasons"]) for sid, e in listed.items()}
    assert got == expected
    assert listed["acme.lastfailed"]["last_audit"]["passed"] is False
    assert listed["acme.lastfailed"]["last_audit"]["trigger"] == "manual"
    assert listed["acme.ok"]["last_audit"]["trigger"] == "install"

    eligible = h.cli(home, "list", "--eligible-only").json["entries"]
    assert [e["skill_id"] for e in eligible] == ["acme.ok"]
    info = h.cli(home, "info", "acme.lastfailed").json
    assert info["eligibility"] == {"eligible": False, "reasons": ["audit_failed"]}
    assert [(a["trigger"], a["passed"], a["policy_version"]) for a in info["audits"]] == [
        ("install", True, 0), ("manual", False, 1)]
    assert info["audits"][-1]["failed_checks"] == ["wasm_exported_function_limit"]


COMPAT = {"required_protocol_major": PROTOCOL_MAJOR, "min_palyra_version": "0.0.1"}


def _bump(version: str, by: int = 1) -> str:
    major, minor, patch = (int(x) for x in version.split("."))
    return f"{major}.{minor}.{patch + by}"


def _below(version: str) -> str:
    major, minor, patch = (int(x) for x in version.split("."))
    return f"{major}.{minor}.{patch - 1}" if patch else f"{major}.{minor - 1}.999" if minor else f"{major - 1}.999.999"


@pytest.mark.parametrize("compat", [
    {**COMPAT, "max_palyra_version": _below(RUNTIME_VERSION)},
    {**COMPAT, "min_palyra_version": _bump(RUNTIME_VERSION)},
    {**COMPAT, "required_protocol_major": PROTOCOL_MAJOR + 1},
    {**COMPAT, "max_palyra_version": "not.a.version"},
    None,
])
def test_an_incompatible_version_is_not_eligible(compat: dict | None) -> None:
    problem = compat_problem(compat)
    assert isinstance(problem, str) and problem
    assert eligibility(installed=True, status="active", key_revoked=False, last_audit_passed=True,
                       compat=problem) == (False, ["incompatible"])


@pytest.mark.parametrize("compat", [
    COMPAT,
    {**COMPAT, "max_palyra_version": RUNTIME_VERSION},
    {**COMPAT, "min_palyra_version": RUNTIME_VERSION, "max_palyra_version": _bump(RUNTIME_VERSION, 5)},
])
def test_a_compatible_version_is_eligible(compat: dict) -> None:
    assert compat_problem(compat) is None
    assert eligibility(installed=True, status="active", key_revoked=False, last_audit_passed=True,
                       compat=None) == (True, [])


def test_eligibility_reasons_accumulate_in_order() -> None:
    assert eligibility(installed=True, status="quarantined", key_revoked=True, last_audit_passed=False,
                       compat="x") == (False, ["quarantined", "key_revoked", "audit_failed", "incompatible"])
    assert eligibility(installed=True, status="disabled", key_revoked=False, last_audit_passed=None,
                       compat=None) == (False, ["disabled"])
    assert compat_problem(COMPAT, runtime_version="9.9.9") is None
    assert compat_problem({**COMPAT, "max_palyra_version": "1.0.0"}, runtime_version="1.0.1") is not None


# --- the vulnerability feed ---------------------------------------------------------------


def _feed(path: Path, *entries: dict) -> Path:
    path.write_text(json.dumps({"schema_version": 1, "entries": list(entries)}))
    return path


def _module_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_a_feed_advisory_quarantines_and_names_the_advisory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    vulnerable = h.module("echo", salt=7)
    h.install(home, h.artifact("acme.vuln", module_bytes=vulnerable))
    h.install(home, h.artifact("acme.safe", salt=8))
    feed = _feed(tmp_path / "feed.json", {"sha256": _module_sha(vulnerable).upper(), "id": "ADV-2026-0042",
                                          "reason": "echo leaks memory"})
    before = h.head(home)
    r = h.cli(home, "policy", "set", f"vulnerability_feed_path={feed}", "--reason", "feed", "--reaudit")
    assert r.rc == 5, r
    assert r.json["reaudit"]["quarantined"] == [
        {"skill_id": "acme.vuln", "version": "1.0.0", "reason_code": "policy_change"}]
    [audit] = _audited(home, "acme.vuln", before)
    [check] = _check(audit, "vulnerability_feed")
    assert check["status"] == "fail"
    assert check["details"]["matches"] == [{"subject": "modules/echo.wasm", "sha256": _module_sha(vulnerable),
                                            "id": "ADV-2026-0042", "reason": "echo leaks memory"}]
    assert any("1 vulnerability feed entr" in m for m in audit["quarantine_reasons"])
    [safe] = _audited(home, "acme.safe", before)
    assert safe["passed"] is True
    assert _check(safe, "vulnerability_feed")[0]["status"] == "pass"
    info = h.cli(home, "info", "acme.vuln").json
    assert info["status"] == "quarantined" and info["audits"][-1]["failed_checks"] == ["vulnerability_feed"]


def _feed_fleet(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """Two skills audited clean under a policy whose feed is empty."""
    home = tmp_path / "home"
    vulnerable = h.module("echo", salt=17)
    h.install(home, h.artifact("acme.vuln", module_bytes=vulnerable))
    h.install(home, h.artifact("acme.safe", salt=18))
    feed = _feed(tmp_path / "feed.json")
    with h.ledger(home) as lg:
        set_policy(lg, [f"vulnerability_feed_path={feed}"], "feed")
    return home, feed, vulnerable


def test_a_new_advisory_in_an_unchanged_policy_quarantines_on_the_next_periodic_pass(tmp_path: Path) -> None:
    home, feed, vulnerable = _feed_fleet(tmp_path)
    assert h.cli(home, "reaudit").json["quarantined"] == []
    # the feed file is updated out of band; the policy (its path) does not change
    _feed(feed, {"sha256": _module_sha(vulnerable), "id": "ADV-2026-0099"})
    before = h.head(home)
    r = h.cli(home, "reaudit")
    assert r.rc == 5, r
    assert r.json["quarantined"] == [{"skill_id": "acme.vuln", "version": "1.0.0", "reason_code": "audit_failed"}]
    [audit] = _audited(home, "acme.vuln", before)
    assert audit["trigger"] == "periodic"
    assert _check(audit, "vulnerability_feed")[0]["details"]["matches"][0]["id"] == "ADV-2026-0099"


def test_a_long_lived_reauditor_sees_a_new_advisory_in_the_feed(tmp_path: Path) -> None:
    """``skills reaudit --watch`` keeps one Reauditor: its skip-unchanged memo must notice that the
    feed file changed, or a service re-auditing every 6 hours never sees a new advisory."""
    home, feed, vulnerable = _feed_fleet(tmp_path)
    with h.ledger(home, "reaudit") as lg:
        reauditor = Reauditor(lg)
        assert reauditor.run_pass().quarantined == []
        _feed(feed, {"sha256": _module_sha(vulnerable), "id": "ADV-2026-0100"})
        second = reauditor.run_pass()
    assert second.quarantined == [Quarantine("acme.vuln", "1.0.0", "audit_failed")], second


def test_a_long_lived_reauditor_does_not_treat_a_vanished_feed_as_clean(tmp_path: Path) -> None:
    """§19.5: a broken feed configuration is never silently treated as "no known
    vulnerabilities". A watch loop whose feed file disappears must fail its next pass, as a
    fresh ``skills reaudit`` does, not report a clean pass from its memo."""
    home, feed, _ = _feed_fleet(tmp_path)
    feed.unlink()
    fresh = h.cli(home, "reaudit")
    assert fresh.json["error"]["code"] == "io", fresh
    _feed(feed)
    with h.ledger(home, "reaudit") as lg:
        reauditor = Reauditor(lg)
        assert reauditor.run_pass().quarantined == []
        feed.unlink()
        with pytest.raises(IoError):
            reauditor.run_pass()


@pytest.mark.parametrize("content, code, error", [
    (None, "io", IoError),
    (b"{not json", "serialization", SerializationError),
    (b'{"schema_version": 2, "entries": []}', "serialization", SerializationError),
    (b'{"schema_version": 1, "entries": [{"sha256": "abc"}]}', "serialization", SerializationError),
])
def test_a_broken_feed_is_an_error_not_a_clean_audit(tmp_path: Path, content: bytes | None, code: str,
                                                     error: type) -> None:
    home = tmp_path / "home"
    h.install(home, h.artifact("acme.one"))
    feed = tmp_path / "feed.json"
    if content is not None:
        feed.write_bytes(content)
    with h.ledger(home) as lg:
        set_policy(lg, [f"vulnerability_feed_path={feed}"], "feed")
    before = h.head(home)

    with h.ledger(home, "reaudit") as lg:
        with pytest.raises(error):
            Reauditor(lg).run_pass()
    r = h.cli(home, "reaudit")
    assert r.rc not in (0, 5), r
    assert r.json["error"]["code"] == code
    assert f"error[{code}]" in r.stderr and "Traceback" not in r.stderr
    assert "feed" in r.json["error"]["message"]
    a = h.cli(home, "audit", "acme.one")
    assert a.rc not in (0, 5) and a.json["error"]["code"] == code, a

    assert h.head(home) == before  # no report, no audit recorded, nothing quarantined
    assert h.entry(home, "acme.one")["status"] == "active"
