"""The compliance report engine, read as a reviewer reads it: a real journal (real ledger, signed
artifacts, real SQLite) with every kind of exception, its findings and their citations, the
window and the filters, determinism, the three formats, escaping of hostile text, a journal
that does not verify, malformed events, and the streaming bounds (``test_report_streaming.py``
has the engine's spool and memory). The scenario is ``tests/helpers_report.py``."""

from __future__ import annotations

import datetime as dt
import html.parser
import json
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

TESTS = Path(__file__).resolve().parents[1]
for p in (str(TESTS), str(TESTS / "projections")):
    if p not in sys.path:
        sys.path.insert(0, p)

import helpers_audit as ha  # noqa: E402
from helpers_report import (  # noqa: E402
    GENERATED_AT,
    HOSTILE,
    SECRET_VALUES,
    SEED_ACME,
    SEED_INITECH,
    Driver,
    Scenario,
    artifact,
)
from report_synthetic import synthetic_events  # noqa: E402

from skill_ledger.projections.report import (  # noqa: E402
    FINDING_KINDS,
    JournalVerification,
    Report,
    build_report,
    load_schema,
    render,
    render_html,
    render_json,
    render_markdown,
)
from skill_ledger.projections.report.render import md_escape  # noqa: E402
from skill_ledger.projections.report.schema import generated_schema  # noqa: E402


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return Scenario(tmp_path_factory.mktemp("report") / "home").run()


def by_kind(report: Report) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for f in report.findings:
        out.setdefault(f.kind, []).append(f)
    return out


def fid(tag: str, event: dict[str, Any]) -> str:
    return f"F-{tag}-{event['position']:06d}"


def cites(finding: Any, *events: dict[str, Any]) -> bool:
    evidence = {(e.position, e.hash) for e in finding.evidence}
    return all((e["position"], e["hash"]) in evidence for e in events)


# --- findings and citations ---------------------------------------------------------------------


def test_every_finding_of_the_scenario_with_its_id_severity_and_evidence(scenario: Scenario) -> None:
    s, r = scenario, scenario.report()
    found = by_kind(r)
    assert sorted(found) == sorted(["enable_override_after_failed_audit", "artifact_tampered_or_missing",
                                    "quarantine_lifted", "policy_loosened", "tofu_only_publisher",
                                    "checkpoint_missing", "artifact_rejected", "execution_denied",
                                    "registry_refused"])
    assert r.summary.verdict == "findings"

    override = s.one("skill.enabled", "skill:acme.bad", override=True)
    [f] = found["enable_override_after_failed_audit"]
    enable_audit = s.one("skill.audited", "skill:acme.bad", trigger="enable")
    install_quarantine = s.one("skill.quarantined", "skill:acme.bad", reason_code="audit_failed")
    assert (f.id, f.severity, f.skill_id, f.version, f.actor) == (fid("OVERRIDE", override), "high", "acme.bad",
                                                                   "1.0.0", "user:carol")
    assert enable_audit["data"]["passed"] is False
    assert cites(f, override, enable_audit, install_quarantine)
    assert "vendor says it is fine" in f.detail

    [f] = found["artifact_tampered_or_missing"]
    q = s.one("skill.quarantined", "skill:acme.tamper", reason_code="artifact_tampered")
    assert (f.id, f.severity, f.skill_id) == (fid("TAMPER", q), "high", "acme.tamper")
    assert cites(f, q, s.one("skill.installed", "skill:acme.tamper"))

    [f] = found["quarantine_lifted"]  # the enable after a disable lifts no quarantine: one finding
    lift = s.one("skill.enabled", "skill:acme.echo", reason="false alarm")
    assert (f.id, f.severity, f.version) == (fid("LIFTED", lift), "medium", "1.0.0")
    assert cites(f, lift, s.one("skill.quarantined", "skill:acme.echo", reason="suspicious traffic"))

    [f] = found["policy_loosened"]  # the second change only tightens: no finding
    loosen = s.find("policy.changed")[0]
    assert (f.id, f.severity, f.actor) == (fid("POLICY", loosen), "medium", "user:erin")
    assert {(c.key, c.direction) for c in f.changes} == {("allowed_import_modules", "looser"),
                                                         ("max_module_bytes", "looser")}
    change = next(c for c in f.changes if c.key == "allowed_import_modules")
    assert set(change.new) - set(change.old) == {"env"}
    assert cites(f, loosen)

    [f] = found["tofu_only_publisher"]
    pin = s.one("publisher.key_pinned", "publisher:globex")
    assert (f.id, f.publisher, f.severity) == (fid("TOFU", pin), "globex", "medium")

    rejections = found["artifact_rejected"]
    assert sorted(f.severity for f in rejections) == ["low", "low"]
    rejected = s.find("artifact.rejected")
    assert sorted(f.id for f in rejections) == sorted(fid("REJECTED", e) for e in rejected)
    assert {e["data"]["error_code"] for e in rejected} >= {"untrusted_publisher"}

    [f] = found["execution_denied"]  # two denials of one tool and version: one finding, count 2
    denials = s.find("skill.execution_denied")
    assert (f.id, f.count, f.severity) == (fid("DENIED", denials[0]), 2, "low")
    assert cites(f, *denials)

    [f] = found["checkpoint_missing"]
    assert f.severity == "medium"
    assert cites(f, s.events[-1])

    [f] = found["registry_refused"]
    refused = s.one("registry.update_refused", "registry:corp")
    assert (f.id, f.severity, f.skill_id, f.version, f.actor) == (fid("REGISTRY", refused), "medium", "initech.alpha",
                                                                   "2.0.0", "user:frank")
    assert "registry_rollback" in f.title and "BadVersionNumberError" in f.detail and cites(f, refused)


def shown_events(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Every event the JSON report shows as itself: the entries of the window and the appendix."""
    shown: dict[int, dict[str, Any]] = {}
    entries = [e for t in doc["timelines"] for e in t["entries"]] + doc["trust"]["events"] + doc["other_events"]
    for e in entries + doc["cited_events"]:
        assert e["position"] not in shown, f"event {e['position']} shown twice"
        shown[e["position"]] = e
    for x in doc["rejections"]:
        assert x["position"] not in shown
        shown[x["position"]] = {**x, "kind": "artifact.rejected", "stream": f"intake:{x['artifact_sha256']}"}
    return shown


def citations(doc: dict[str, Any]) -> list[tuple[int, str]]:
    """Every (position, hash) pair anywhere in the report."""
    found: list[tuple[int, str]] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if isinstance(x.get("position"), int) and isinstance(x.get("hash"), str):
                found.append((x["position"], x["hash"]))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    return found


def test_every_citation_is_an_event_of_the_journal_shown_once_with_its_hash(scenario: Scenario) -> None:
    """Each event is shown once (an entry of the window, or the appendix when it is not one), with
    the journal's hash, kind, time, stream and actor; every citation anywhere resolves to it."""
    journal = {e["position"]: e for e in scenario.events}
    for kw in ({}, {"since": 30, "until": 50}, {"skills": ["acme.echo"]}, {"publishers": ["initech"]}):
        doc = json.loads(render_json(scenario.report(**kw)))
        shown = shown_events(doc)
        for position, e in shown.items():
            j = journal[position]
            assert (e["hash"], e["kind"], e["recorded_at"], e["stream"], e["actor"]["principal"]) == (
                j["hash"], j["kind"], j["recorded_at"], j["stream"], j["actor"]["principal"]), position
        cited = citations(doc)
        assert cited
        for position, hash_ in cited:
            assert shown[position]["hash"] == hash_ == journal[position]["hash"], (kw, position)
        assert [c["position"] for c in doc["cited_events"]] == sorted({c["position"] for c in doc["cited_events"]})
        window = doc["scope"]["window"]
        since = window["since_position"] or 0
        for c in doc["cited_events"]:  # the appendix holds what is not an entry: outside the window, or filtered
            assert kw.get("skills") or kw.get("publishers") or not since < c["position"] <= window["until_position"]
    windowed = json.loads(render_json(scenario.report(since=40)))
    assert {c["position"] for c in windowed["cited_events"]} >= {4, 12}  # acme.echo's install, globex's pin


def test_revocation_lists_the_two_versions_it_quarantined_and_the_delay(scenario: Scenario) -> None:
    s, r = scenario, scenario.report()
    [rv] = r.trust.revocations
    revoke = s.one("publisher.key_revoked", "publisher:initech")
    assert (rv.publisher, rv.position, rv.hash, rv.reason, rv.actor.principal) == (
        "initech", revoke["position"], revoke["hash"], "key leaked", "user:dave")
    quarantines = s.find("skill.quarantined", reason_code="trust_revoked")
    assert len(quarantines) == 2
    assert [(q.skill_id, q.version, q.position) for q in rv.quarantined] == [
        (e["stream"][6:], "1.0.0", e["position"]) for e in quarantines]
    for q, e in zip(rv.quarantined, quarantines, strict=True):
        expected = (dt.datetime.fromisoformat(e["recorded_at"]) - dt.datetime.fromisoformat(revoke["recorded_at"]))
        assert q.delay_seconds == pytest.approx(expected.total_seconds()) and q.delay_seconds >= 0
    assert rv.not_quarantined == []
    keys = {(k.publisher, k.kind, k.state) for k in r.trust.keys}
    assert keys == {("acme", "allowlisted", "active"), ("globex", "tofu", "active"),
                    ("initech", "allowlisted", "revoked")}
    acme = next(k for k in r.trust.keys if k.publisher == "acme")
    assert acme.allowlisted is not None and acme.allowlisted.reason == "vendor contract 7"


def test_posture_at_the_end_of_the_journal(scenario: Scenario) -> None:
    r = scenario.report()
    rows = {(p.skill_id, p.version): p for p in r.posture}
    assert set(rows) == {("acme.echo", "1.0.0"), ("acme.echo", "1.1.0"), ("globex.widget", "1.0.0"),
                         ("initech.alpha", "1.0.0"), ("initech.beta", "1.0.0"), ("acme.bad", "1.0.0"),
                         ("acme.tamper", "1.0.0")}
    echo, removed = rows[("acme.echo", "1.0.0")], rows[("acme.echo", "1.1.0")]
    assert (echo.status, echo.current, echo.eligible, echo.trust_decision) == ("active", True, True, "allowlisted")
    assert (removed.installed, removed.status, removed.current, removed.eligibility_reasons) == (
        False, "removed", False, ["not_installed"])
    bad = rows[("acme.bad", "1.0.0")]
    # An override is the operator's recorded decision: the version is eligible (issue 10), and the
    # failed audit stays on record (the finding above, the last audit below).
    assert (bad.status, bad.status_reason_code, bad.eligible) == ("active", "override", True)
    assert bad.eligibility_reasons == [] and bad.last_audit is not None
    assert (bad.last_audit.trigger, bad.last_audit.passed) == ("enable", False)
    alpha = rows[("initech.alpha", "1.0.0")]
    assert (alpha.status, alpha.status_reason_code, alpha.key_revoked) == ("quarantined", "trust_revoked", True)
    assert set(alpha.eligibility_reasons) == {"quarantined", "key_revoked"}
    widget = rows[("globex.widget", "1.0.0")]
    assert (widget.trust_decision, widget.description) == ("tofu_newly_pinned", HOSTILE)
    assert rows[("acme.tamper", "1.0.0")].status_reason_code == "artifact_tampered"
    assert (r.summary.versions, r.summary.skills, r.summary.active_versions, r.summary.quarantined_versions) == (
        7, 6, 3, 3)


def test_timelines_hold_every_skill_event_with_actor_reason_and_code(scenario: Scenario) -> None:
    s, r = scenario, scenario.report()
    timelines = {t.skill_id: t.entries for t in r.timelines}
    skill_events = [e for e in s.events if e["stream"].startswith("skill:")]
    assert sum(len(v) for v in timelines.values()) == len(skill_events)
    echo = timelines["acme.echo"]
    kinds = [e.kind for e in echo]
    for kind in ("skill.artifact_verified", "skill.audited", "skill.installed", "skill.current_changed",
                 "skill.activated", "skill.quarantined", "skill.enabled", "skill.disabled", "skill.removed"):
        assert kind in kinds
    rollback = next(e for e in echo if e.kind == "skill.current_changed" and e.details["cause"] == "rollback")
    assert (rollback.details["from_version"], rollback.details["to_version"], rollback.reason) == (
        "1.1.0", "1.0.0", "1.1.0 misbehaves")
    q = next(e for e in echo if e.kind == "skill.quarantined")
    assert (q.reason_code, q.reason, q.actor.principal, q.actor.command) == (
        "operator", "suspicious traffic", "user:alice", "quarantine")
    override = next(e for e in timelines["acme.bad"] if e.kind == "skill.enabled")
    assert override.details == {"override": True, "audit_passed": False} and override.reason_code == "override"
    denial = next(e for e in timelines["acme.tamper"] if e.kind == "skill.execution_denied")
    assert (denial.reason_code, denial.details["tool_id"], denial.actor.principal) == (
        "quarantined", "acme.echo", "agent:bot")
    verified = [e for e in timelines["acme.tamper"] if e.kind == "skill.quarantined"]
    assert verified[0].actor.principal == "service:reaudit"
    assert [e.position for e in echo] == sorted(e.position for e in echo)


def test_secret_events_show_names_and_never_a_value_in_any_format(scenario: Scenario) -> None:
    """``skills secret set|remove`` of a skill's scope is in that skill's timeline, of another
    scope among the other events: scope, key, replaced, actor and reason; the values stored
    are nowhere in the report, in any format (nor in the journal it is built from)."""
    s, r = scenario, scenario.report()
    acme_bad = {e.position: e for t in r.timelines if t.skill_id == "acme.bad" for e in t.entries}
    sets = s.find("skill.secret_set", "skill:acme.bad")
    removed = s.one("skill.secret_removed", "skill:acme.bad")
    assert len(sets) == 2
    first, second = (acme_bad[e["position"]] for e in sets)
    assert (first.details, first.reason, first.actor.principal) == (
        {"scope": "skill:acme.bad", "key": "api_token", "replaced": False}, "vendor token", "user:alice")
    assert second.details["replaced"] is True and "replacing the value stored before" in second.summary
    assert acme_bad[removed["position"]].details == {"scope": "skill:acme.bad", "key": "api_token"}
    others = {e.position: e for e in r.other_events}
    for kind in ("secret.set", "secret.removed"):
        e = s.one(kind, "secrets:global")
        assert others[e["position"]].details["key"] == "smtp_password", kind
    assert not any(v in json.dumps(e) for e in s.events for v in SECRET_VALUES)
    for fmt in ("json", "markdown", "html"):
        text = render(r, fmt).decode()
        shown = md_escape if fmt == "markdown" else str
        assert shown("api_token") in text and shown("smtp_password") in text, fmt
        assert not any(v in text for v in SECRET_VALUES), fmt


def test_registry_events_are_trust_entries_and_go_with_their_skill(scenario: Scenario) -> None:
    """A registry pinned, its metadata trusted, a skill installed from it, a refusal and its
    removal are trust entries (with the pinned root and the metadata versions); with ``--skill``
    the install from it stays with its skill and the registry's own events stay (they concern
    every skill installed from it)."""
    s, r = scenario, scenario.report()
    trust = {e.position: e for e in r.trust.events}
    registry = [e for e in s.events if e["stream"] == "registry:corp"]
    assert [e["kind"] for e in registry] == ["registry.added", "registry.metadata_trusted",
                                            "registry.target_installed", "registry.update_refused",
                                            "registry.removed"]
    assert all(e["position"] in trust for e in registry)
    added, trusted, installed, refused, gone = (trust[e["position"]] for e in registry)
    assert (added.details["root_sha256"], added.details["root_version"], added.actor.principal) == ("ab" * 32, 1,
                                                                                                    "user:frank")
    assert {k: v for k, v in trusted.details.items() if k.startswith("metadata_")} == {
        "metadata_root": 1, "metadata_snapshot": 5, "metadata_targets": 4, "metadata_timestamp": 7}
    assert (installed.details["skill_id"], installed.version) == ("initech.alpha", "1.0.0")
    assert (refused.reason_code, refused.details["tuf_error"]) == ("registry_rollback", "BadVersionNumberError")
    assert gone.reason == "moved to the new registry"
    only_beta = {e.kind for e in scenario.report(skills=("initech.beta",)).trust.events if e.stream == "registry:corp"}
    assert only_beta == {"registry.added", "registry.metadata_trusted", "registry.removed"}
    only_alpha = scenario.report(skills=("initech.alpha",))
    assert {e.kind for e in only_alpha.trust.events if e.stream == "registry:corp"} == {
        "registry.added", "registry.metadata_trusted", "registry.target_installed", "registry.update_refused",
        "registry.removed"}
    assert "registry_refused" in {f.kind for f in only_alpha.findings}


def test_the_os_account_is_shown_beside_the_declared_principal(scenario: Scenario) -> None:
    import os
    import pwd

    me = pwd.getpwuid(os.geteuid()).pw_name
    r = scenario.report()
    entry = r.timelines[0].entries[0]
    assert (entry.actor.os_user, entry.actor.os_uid) == (me, os.geteuid())
    for fmt in ("markdown", "html"):
        text = render(r, fmt).decode()
        shown = md_escape if fmt == "markdown" else str
        assert shown(f"user:alice (OS user {me})") in text, fmt


# --- window and filters ---------------------------------------------------------------------------


def test_window_by_position_limits_timelines_and_findings_and_sets_the_posture(scenario: Scenario) -> None:
    s = scenario
    since = s.one("skill.enabled", "skill:acme.bad", override=True)["position"] - 1
    until = s.one("publisher.key_revoked")["position"] + 2  # the revocation and its two quarantines
    r = s.report(since=since, until=until)
    assert (r.scope.window.since_position, r.scope.window.until_position) == (since, until)
    assert (r.scope.window.first_position, r.scope.window.last_position) == (since + 1, until)
    assert r.scope.window.event_count == until - since
    assert {f.kind for f in r.findings} == {"enable_override_after_failed_audit", "quarantine_lifted",
                                            "tofu_only_publisher", "checkpoint_missing"}
    for t in r.timelines:
        assert all(since < e.position <= until for e in t.entries)
    rows = {(p.skill_id, p.version): p for p in r.posture}
    assert ("acme.tamper", "1.0.0") not in rows  # installed after the window
    assert rows[("acme.echo", "1.1.0")].installed and rows[("acme.echo", "1.1.0")].current
    assert rows[("initech.beta", "1.0.0")].status == "quarantined"
    assert [rv.quarantined.__len__() for rv in r.trust.revocations] == [2]
    assert [pv.version for pv in r.scope.policy_versions] == [0]
    # events before the window count for the posture but are not in its timeline
    assert "globex.widget" not in {t.skill_id for t in r.timelines}


def test_a_window_ending_inside_a_checkpoint_is_covered(scenario: Scenario) -> None:
    s = scenario
    checkpoint = s.one("journal.checkpoint")
    r = s.report(until=checkpoint["position"])  # a report made right after `journal checkpoint`
    cov = r.scope.checkpoint
    assert cov.covering is not None and cov.covering.position == checkpoint["position"]
    assert cov.covering.covers_position == checkpoint["position"] - 1
    assert "checkpoint_missing" not in {f.kind for f in r.findings}
    later = s.report(until=checkpoint["position"] + 1)
    assert later.scope.checkpoint.covering is None
    assert "checkpoint_missing" in {f.kind for f in later.findings}
    earlier = s.report(until=checkpoint["position"] - 3)  # a later checkpoint covers an earlier window
    assert earlier.scope.checkpoint.covering is not None
    assert earlier.scope.checkpoint.covering.position == checkpoint["position"]


def test_skill_and_publisher_filters(scenario: Scenario) -> None:
    s = scenario
    r = s.report(skills=["acme.echo"])
    assert {p.skill_id for p in r.posture} == {"acme.echo"}
    assert {t.skill_id for t in r.timelines} == {"acme.echo"}
    assert {f.kind for f in r.findings} == {"quarantine_lifted", "policy_loosened", "checkpoint_missing"}
    assert {k.publisher for k in r.trust.keys} == {"acme"} and r.trust.revocations == []
    assert r.rejections == [] or all(x.skill_id == "acme.echo" for x in r.rejections)
    assert r.scope.filters.skills == ["acme.echo"]

    r = s.report(publishers=["initech", "globex"])
    assert {p.publisher for p in r.posture} == {"initech", "globex"}
    assert {f.kind for f in r.findings} == {"tofu_only_publisher", "policy_loosened", "checkpoint_missing"}
    assert [rv.publisher for rv in r.trust.revocations] == ["initech"]
    assert {k.publisher for k in r.trust.keys} == {"initech", "globex"}
    assert [x.error_code for x in r.rejections] == []  # the rejected publishers are acme and stranger

    r = s.report(publishers=["stranger"])
    assert r.posture == [] and [x.publisher for x in r.rejections] == ["stranger"]
    assert "artifact_rejected" in {f.kind for f in r.findings}


def test_stale_audits_against_max_audit_age(scenario: Scenario) -> None:
    s = scenario
    fresh = s.report(max_audit_age=dt.timedelta(days=1))
    assert "stale_audit" not in {f.kind for f in fresh.findings}
    assert fresh.scope.filters.max_audit_age_seconds == 86400
    stale = by_kind(s.report(max_audit_age=dt.timedelta(0)))["stale_audit"]
    active = {(p.skill_id, p.version) for p in s.report().posture if p.installed and p.status == "active"}
    assert {(f.skill_id, f.version) for f in stale} == active
    for f in stale:
        last_audit = [e for e in s.find("skill.audited", f"skill:{f.skill_id}", version=f.version)][-1]
        assert f.id == fid("STALE", last_audit) and cites(f, last_audit)
    # judged at the window's end time, which the caller may give
    late = s.report(max_audit_age=dt.timedelta(days=1),
                    window_end_time=dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
    assert {(f.skill_id, f.version) for f in by_kind(late)["stale_audit"]} == active


def test_deterministic_byte_for_byte_in_every_format(scenario: Scenario) -> None:
    s = scenario
    fresh = Driver(s.home).events()  # read the journal again
    kw: dict[str, Any] = dict(generated_at=GENERATED_AT, generated_by="user:auditor", project_version="0.2.0",
                              journal_verification=JournalVerification(ok=True), max_audit_age=dt.timedelta(hours=1))
    a = build_report(iter(s.events), **kw)
    b = build_report((dict(e) for e in fresh), **kw)
    for fmt in ("json", "markdown", "html"):
        assert render(a, fmt) == render(b, fmt)
    assert json.loads(render_json(a))["scope"]["generated_at"] == GENERATED_AT


# --- formats --------------------------------------------------------------------------------------


def test_json_validates_against_the_shipped_schema_which_matches_the_model(scenario: Scenario) -> None:
    schema = load_schema()
    assert schema == generated_schema(), "schema file drifted: run python -m skill_ledger.projections.report.schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    doc = json.loads(render_json(scenario.report(max_audit_age=dt.timedelta(0))))
    assert doc["report_version"] == 1
    assert sorted(validator.iter_errors(doc), key=str) == []
    assert msgspec.json.decode(render_json(scenario.report()), type=Report) == scenario.report()
    assert set(schema["$defs"]["Finding"]["properties"]["kind"]["enum"]) == set(FINDING_KINDS)
    for path, value in ((("findings", 0, "severity"), "critical"), (("summary", "verdict"), "fine"),
                        (("findings", 0, "id"), "F-1"), (("timelines", 0, "entries", 0, "position"), 0)):
        bad = json.loads(json.dumps(doc))
        target = bad
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        assert list(validator.iter_errors(bad)), path
    extra = json.loads(json.dumps(doc))
    extra["summary"]["surprise"] = 1
    assert list(validator.iter_errors(extra))


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data
        else:
            self.text.append(data)


def test_html_is_self_contained_and_shows_hostile_text_as_text(scenario: Scenario) -> None:
    import base64
    import hashlib

    out = render_html(scenario.report())
    p = _Tags()
    p.feed(out)
    tags = {t for t, _ in p.tags}
    assert "script" not in tags and "img" not in tags and "link" not in tags and "iframe" not in tags
    assert tags <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "div",
                    "section", "table", "tr", "th", "td", "span", "strong", "code", "a", "article", "br"}
    ids = {a["id"] for _, a in p.tags if a.get("id")}
    for tag, attrs in p.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        assert "src" not in attrs
        if tag == "a":  # every link stays in the file and lands on a section or a cited event
            href = attrs["href"] or ""
            assert href.startswith("#") and href[1:] in ids, href
    assert "url(" not in p.style and "@import" not in p.style
    csp = next(a["content"] for t, a in p.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "script-src 'none'" in (csp or "") and "default-src 'none'" in (csp or "")
    digest = base64.b64encode(hashlib.sha256(p.style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in (csp or ""), "the inline style must be the one the policy allows"
    text = "".join(p.text)
    assert HOSTILE in text  # shown verbatim, as text
    assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in out
    assert "&lt;img src=x onerror=&#34;document.body.dataset.pwned=1&#34;&gt;" in out
    assert out.index("<h1>Compliance report</h1>") < out.index('id="summary"') < out.index('id="findings"')
    for section in ("summary", "findings", "posture", "trust", "policy", "timelines", "rejections", "appendix"):
        assert section in ids
    for f in scenario.report().findings:
        assert f.id in ids


def test_markdown_escapes_hostile_text(scenario: Scenario) -> None:
    out = render_markdown(scenario.report())
    assert "<script" not in out and "<img" not in out
    assert "](https" not in out and "![" not in out
    assert r'&lt;script&gt;document\.title\=\"pwned\"&lt;\/script&gt;' in out
    assert "\\[click\\]\\(https\\:\\/\\/evil\\.example\\/x\\)" in out
    # the only raw HTML is the anchors of the events shown, the only links point to them
    shown = shown_events(json.loads(render_json(scenario.report())))
    assert set(re.findall(r"<[^>]*>", out)) == {f'<a id="ev-{p}">' for p in shown} | {"</a>"}
    targets = re.findall(r"\]\(([^)]*)\)", out)
    assert targets and {t[4:] for t in targets} <= {str(p) for p in shown}
    width = None
    for line in out.splitlines():  # a description cannot add a table cell: every row has its header's width
        if not line.startswith("|"):
            width = None
            continue
        cells = len(re.findall(r"(?<!\\)\|", line))
        width = width or cells
        assert cells == width, line


def test_md_escape() -> None:
    assert md_escape("a*b_c`d") == "a\\*b\\_c\\`d"
    assert md_escape("<b>&") == "&lt;b&gt;&amp;"
    assert md_escape("line\nbreak\r# not a heading") == "line break \\# not a heading"
    assert md_escape("www.evil.example") == "www\\.evil\\.example"
    assert md_escape("x\u202ey\u200b") == "x\\[U\\+202E\\]y\\[U\\+200B\\]"
    assert md_escape(None) == "\\-"


def test_three_formats_agree_on_the_findings(scenario: Scenario) -> None:
    r = scenario.report()
    md, page = render_markdown(r), render_html(r)
    for f in r.findings:
        assert f"`{f.id}`" in md and f'id="{f.id}"' in page
        for e in f.evidence:
            assert f"(#ev-{e.position})" in md and f'href="#ev-{e.position}"' in page
    with pytest.raises(ValueError):
        render(r, "pdf")


# --- a journal that does not verify -------------------------------------------------------------


def test_a_tampered_journal_is_reported_failed_at_the_top(tmp_path: Path) -> None:
    home = tmp_path / "home"
    d = Driver(home)
    d.do("user:alice", "trust allow", "allow", "acme", ha.public_hex(SEED_ACME), "contract")
    d.install("user:alice", artifact("acme.echo", "1.0.0", "acme", SEED_ACME))
    d.do("user:alice", "quarantine", "quarantine", "acme.echo", "1.0.0", "suspicious traffic")
    target = next(e for e in d.events() if e["kind"] == "skill.quarantined")
    con = sqlite3.connect(home / "journal.db")
    con.execute("DROP TRIGGER stored_events_no_update")  # what an attacker with the file can do
    con.execute("UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), 'suspicious traffic', "
                "'routine check') AS BLOB) WHERE rowid = ?", (target["position"],))
    con.commit()
    con.close()
    verification = d.verification()
    assert verification.ok is False and verification.first_bad_position == target["position"]
    events = d.events()
    r = build_report(iter(events), generated_at=GENERATED_AT, generated_by="user:auditor", project_version="0.2.0",
                     journal_verification=verification)
    assert r.summary.verdict == "journal_verification_failed"
    first = r.findings[0]
    assert (first.kind, first.severity, first.id) == ("journal_verification_failed", "high",
                                                      f"F-JOURNAL-{target['position']:06d}")
    assert [e.position for e in first.evidence] == [target["position"]]
    page = render_html(r)
    assert page.index('class="banner fail"') < page.index('id="summary"')
    assert "JOURNAL VERIFICATION FAILED" in page
    md = render_markdown(r)
    assert md.index("JOURNAL VERIFICATION FAILED") < md.index("## Summary")
    assert json.loads(render_json(r))["summary"]["verdict"] == "journal_verification_failed"
    unverified = build_report(iter(events), generated_at=GENERATED_AT, generated_by="user:auditor",
                              project_version="0.2.0", journal_verification=JournalVerification(ok=None))
    assert unverified.summary.verdict == "journal_not_verified"
    assert 'class="banner warn" id="verification-not-run"' in render_html(unverified)


def test_a_revocation_whose_quarantine_never_happened_is_a_finding(tmp_path: Path) -> None:
    home = tmp_path / "home"
    d = Driver(home)
    d.do("user:alice", "trust allow", "allow", "initech", ha.public_hex(SEED_INITECH), "partner")
    d.install("user:alice", artifact("initech.alpha", "1.0.0", "initech", SEED_INITECH))
    ha.record_revocation_only(home, "initech", SEED_INITECH, "key leaked")  # the sweep was interrupted
    events = d.events()
    r = build_report(iter(events), generated_at=GENERATED_AT, generated_by="user:auditor", project_version="0.2.0",
                     journal_verification=d.verification())
    [f] = by_kind(r)["revoked_key_active"]
    install = next(e for e in events if e["kind"] == "skill.installed")
    revoke = next(e for e in events if e["kind"] == "publisher.key_revoked")
    assert (f.id, f.severity, f.skill_id) == (fid("REVOKED", install), "high", "initech.alpha")
    assert cites(f, install, revoke)
    [rv] = r.trust.revocations
    assert rv.quarantined == [] and [(u.skill_id, u.status) for u in rv.not_quarantined] == [("initech.alpha",
                                                                                              "active")]
    [row] = r.posture
    assert (row.status, row.key_revoked, row.eligible) == ("active", True, False)


# --- robustness: unknown and malformed events ----------------------------------------------------


def _ev(position: int, stream: str, kind: str, data: Any) -> dict[str, Any]:
    return {"position": position, "recorded_at": f"2026-01-01T00:00:{position:02d}+00:00", "stream": stream,
            "stream_version": 1, "kind": kind, "actor": {"principal": "user:x", "host": "h", "command": "c"},
            "data": data, "prev_hash": "0" * 64, "hash": f"{position:064x}"}


def test_unknown_kinds_and_malformed_data_are_carried_generically() -> None:
    events = list(synthetic_events(120, skills=3))
    n = events[-1]["position"]
    extra = [
        _ev(n + 1, "secret:acme.skill0", "secret.set", {"skill_id": "acme.skill0", "scope": "s", "key": "token"}),
        _ev(n + 2, "skill:acme.skill0", "skill.overridden_somehow", {"version": "1.0.0", "reason": "why not"}),
        _ev(n + 3, "registry:main", "registry.synced", {"count": 3}),
        _ev(n + 4, "skill:acme.skill0", "skill.audited", {"trigger": "manual"}),  # no version
        _ev(n + 5, "skill:acme.skill0", "skill.enabled", "not a dict"),
        _ev(n + 6, "publisher:acme", "publisher.key_revoked", {"key_id": "k"}),  # no key
        _ev(n + 7, "policy:audit", "policy.changed", {"policy": ["not", "a", "dict"]}),
        _ev(n + 8, "skill:acme.skill0", "skill.quarantined", {"version": "7.7.7", "reason_code": "operator"}),
        _ev(n + 9, "registry:main", "registry.update_refused", {"name": "main"}),  # no code
        _ev(n + 10, "secrets:global", "secret.set", {"scope": "global", "value": "leaked?"}),  # no key
        _ev(n + 11, "registry:main", "registry.metadata_trusted", {"name": "main", "metadata": "x"}),
        _ev(n + 12, "skill:acme.skill0", "skill.secret_set", {"scope": 7, "key": "k", "value": "leaked?"}),
    ]
    r = build_report(iter(events + extra), since=n, generated_at=GENERATED_AT, generated_by="t",
                     project_version="0", journal_verification=JournalVerification(ok=True))
    timeline = {e.position: e for t in r.timelines for e in t.entries}
    others = {e.position: e for e in r.other_events}
    assert (others[n + 1].kind, others[n + 1].stream) == ("secret.set", "secret:acme.skill0")
    assert (timeline[n + 2].kind, timeline[n + 2].version, timeline[n + 2].reason) == (
        "skill.overridden_somehow", "1.0.0", "why not")
    assert {n + 4, n + 5, n + 8} <= set(timeline) and timeline[n + 5].details == {}
    assert [e.kind for e in r.other_events] == ["secret.set", "registry.synced", "policy.changed",
                                                "registry.update_refused", "secret.set"]
    assert [e.position for e in r.trust.events] == [n + 6, n + 11]
    assert r.trust.events[1].details == {"name": "main"} and timeline[n + 12].details == {"scope": 7, "key": "k"}
    assert {f.kind for f in r.findings} == {"checkpoint_missing"}
    assert set(shown_events(json.loads(render_json(r)))) >= {n + i for i in range(1, 13)}
    assert not any("leaked?" in render(r, fmt).decode() for fmt in ("json", "markdown", "html"))
    jsonschema.validate(json.loads(render_json(r)), load_schema())
    render_html(r), render_markdown(r)
    with pytest.raises(ValueError, match="increasing position"):
        build_report(iter([extra[1], extra[0]]), generated_at=GENERATED_AT, generated_by="t", project_version="0",
                     journal_verification=JournalVerification(ok=True))


def test_a_version_never_audited_is_stale_and_cites_its_install() -> None:
    verified = {"version": "1.0.0", "publisher": "acme", "payload_sha256": "a" * 64, "artifact_sha256": "a" * 64,
                "key_id": "k", "key_hex": "b" * 64, "trust_decision": "allowlisted", "manifest": {},
                "manifest_warnings": [], "source": "s"}
    events = [_ev(1, "skill:acme.x", "skill.artifact_verified", verified),
              _ev(2, "skill:acme.x", "skill.installed", {"version": "1.0.0", "artifact_sha256": "a" * 64,
                                                          "payload_sha256": "a" * 64, "blob": "a" * 64}),
              _ev(3, "skill:acme.x", "skill.activated", {"version": "1.0.0"})]
    r = build_report(iter(events), max_audit_age=dt.timedelta(days=365), generated_at=GENERATED_AT,
                     generated_by="t", project_version="0", journal_verification=JournalVerification(ok=True))
    [stale] = by_kind(r)["stale_audit"]
    assert stale.id == "F-STALE-000002" and [e.position for e in stale.evidence] == [2, 3]
    assert "No audit" in stale.detail
    [row] = r.posture
    assert row.last_audit is None and row.eligibility_reasons == ["incompatible"]  # no compat section recorded


def test_policy_change_directions() -> None:
    from skill_ledger.projections.report.rules import change_direction

    assert change_direction("max_module_bytes", 10, 20) == "looser"
    assert change_direction("max_exported_functions", 20, 10) == "tighter"
    assert change_direction("allow_device_capabilities", False, True) == "looser"
    assert change_direction("allow_wildcard_capabilities", True, False) == "tighter"
    assert change_direction("allowed_import_modules", ["a"], ["a", "b"]) == "looser"
    assert change_direction("allowed_import_modules", ["a", "b"], ["b"]) == "tighter"
    assert change_direction("allowed_import_modules", ["a"], ["b"]) == "looser"  # swapped: b is new
    assert change_direction("vulnerability_feed_path", "/feed.json", None) == "looser"
    assert change_direction("vulnerability_feed_path", "/feed.json", "  ") == "looser"
    assert change_direction("vulnerability_feed_path", None, "/feed.json") == "tighter"
    assert change_direction("vulnerability_feed_path", "/a.json", "/b.json") == "unknown"
    assert change_direction("max_module_bytes", 10, "20") == "unknown"
    assert change_direction("a_future_member", 1, 2) == "unknown"
