"""``skills report compliance`` through the command line, over the report scenario's journal
(``tests/helpers_report.py``: installs, a failed audit and its override, a lifted quarantine, a
revocation quarantining two versions, a tamper detection, a policy loosening, rejections,
denials, a checkpoint): the findings and their citations (each checked with ``skills journal
--since N-1 --until N``), the window by position and by time, the filters, in all three
formats; stdout and ``--json``; determinism; an edited chain (exit 9, said at the top); usage
errors."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from helpers_report import HOSTILE, SECRET_VALUES, Scenario  # noqa: E402

from skill_ledger.cli.main import cli  # noqa: E402

FORMATS = ("json", "markdown", "html")
AT = "2026-12-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return Scenario(tmp_path_factory.mktemp("report-cli") / "home").run()


def skills(home: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--home", str(home), "--actor", "user:auditor", *args])


def report(home: Path, tmp: Path, fmt: str, *args: str, expect: int = 0) -> bytes:
    out = tmp / f"report-{fmt}-{abs(hash(args))}.{fmt}"
    r = skills(home, "report", "compliance", "--format", fmt, "--output", str(out), "--generated-at", AT, *args)
    assert r.exit_code == expect, (r.exit_code, r.stderr, r.stdout)
    return out.read_bytes()


def doc(home: Path, tmp: Path, *args: str, expect: int = 0) -> dict[str, Any]:
    return json.loads(report(home, tmp, "json", *args, expect=expect))


def journal_event(home: Path, position: int) -> dict[str, Any]:
    r = skills(home, "--json", "journal", "--since", str(position - 1), "--until", str(position))
    assert r.exit_code == 0, r.stderr
    [line] = r.stdout.splitlines()
    return json.loads(line)


def pairs(x: Any) -> list[tuple[int, str]]:
    """Every (position, hash) pair in a JSON report."""
    if isinstance(x, dict):
        here = [(x["position"], x["hash"])] if isinstance(x.get("position"), int) and isinstance(
            x.get("hash"), str) else []
        return here + [p for v in x.values() for p in pairs(v)]
    if isinstance(x, list):
        return [p for v in x for p in pairs(v)]
    return []


def timeline_positions(d: dict[str, Any]) -> set[int]:
    return {e["position"] for t in d["timelines"] for e in t["entries"]}


# --- findings and citations --------------------------------------------------------------------


def test_every_exception_is_a_finding_in_every_format(scenario: Scenario, tmp_path: Path) -> None:
    s, home = scenario, scenario.home
    d = doc(home, tmp_path, "--max-audit-age", "0s")
    kinds = {f["kind"]: f for f in d["findings"]}
    assert set(kinds) == {"enable_override_after_failed_audit", "artifact_tampered_or_missing", "quarantine_lifted",
                          "policy_loosened", "stale_audit", "tofu_only_publisher", "checkpoint_missing",
                          "artifact_rejected", "execution_denied", "registry_refused"}
    override = s.one("skill.enabled", "skill:acme.bad", override=True)
    assert kinds["enable_override_after_failed_audit"]["id"] == f"F-OVERRIDE-{override['position']:06d}"
    tamper = s.one("skill.quarantined", "skill:acme.tamper", reason_code="artifact_tampered")
    assert kinds["artifact_tampered_or_missing"]["id"] == f"F-TAMPER-{tamper['position']:06d}"
    denied = [f for f in d["findings"] if f["kind"] == "execution_denied"]
    assert [(f["count"], len(f["evidence"])) for f in denied] == [(2, 2)]
    assert len([f for f in d["findings"] if f["kind"] == "artifact_rejected"]) == 2
    [revocation] = d["trust"]["revocations"]
    assert [q["skill_id"] for q in revocation["quarantined"]] == ["initech.alpha", "initech.beta"]
    assert d["summary"]["verdict"] == "findings" and d["scope"]["journal_verification"]["ok"] is True
    page = report(home, tmp_path, "html", "--max-audit-age", "0s").decode()
    md = report(home, tmp_path, "markdown", "--max-audit-age", "0s").decode()
    for f in d["findings"]:
        assert f'id="{f["id"]}"' in page and f"`{f['id']}`" in md
        for e in f["evidence"]:
            assert f'href="#ev-{e["position"]}"' in page and f"](#ev-{e['position']})" in md
            assert f'id="ev-{e["position"]}"' in page and f'<a id="ev-{e["position"]}"></a>' in md
    assert HOSTILE not in page  # escaped
    for text in (page, md, json.dumps(d)):  # the secrets set in the scenario: names shown, values never
        assert "api_token" in text.replace("\\_", "_") and not any(v in text for v in SECRET_VALUES)
    assert page.index("<h1>Compliance report</h1>") < page.index('id="summary"') < page.index('id="findings"') \
        < page.index('id="posture"') < page.index('id="timelines"') < page.index('id="appendix"')


def test_every_citation_checks_out_with_skills_journal(scenario: Scenario, tmp_path: Path) -> None:
    """Each (position, hash) the report cites is the event ``skills journal --since N-1 --until N``
    prints, whose hash a reviewer can recompute from the printed event alone."""
    home = scenario.home
    for args in ((), ("--since", "30", "--until", "50")):
        d = doc(home, tmp_path, *args)
        cited = dict(pairs(d))
        assert len(cited) > 20
        for position, hash_ in sorted(cited.items()):
            e = journal_event(home, position)
            assert e["hash"] == hash_, position
            body = {k: v for k, v in e.items() if k != "hash"}
            canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            assert hashlib.sha256(canonical).hexdigest() == hash_, position


# --- the window and the filters ------------------------------------------------------------------


def test_window_by_position_and_by_time_give_the_same_report(scenario: Scenario, tmp_path: Path) -> None:
    s, home = scenario, scenario.home
    since = s.one("skill.enabled", "skill:acme.bad", override=True)["position"] - 1
    until = s.one("publisher.key_revoked")["position"] + 2
    by_position = doc(home, tmp_path, "--since", str(since), "--until", str(until))
    w = by_position["scope"]["window"]
    assert (w["since_position"], w["until_position"], w["first_position"], w["last_position"], w["event_count"]) == (
        since, until, since + 1, until, until - since)
    assert timeline_positions(by_position) == {e["position"] for e in s.events if since < e["position"] <= until
                                               and e["stream"].startswith("skill:")}
    assert {f["kind"] for f in by_position["findings"]} == {"enable_override_after_failed_audit", "quarantine_lifted",
                                                           "tofu_only_publisher", "checkpoint_missing"}
    # the same window given as times: from the first event's time, up to the last one's
    first, last = s.events[since]["recorded_at"], s.events[until - 1]["recorded_at"]
    by_time = doc(home, tmp_path, "--since", first, "--until", last)
    wt = by_time["scope"]["window"]
    assert (wt["since_position"], wt["until_position"], wt["since_requested"], wt["until_requested"]) == (
        since, until, first, last)
    assert wt["end_time"] == last
    for key in ("findings", "posture", "timelines", "trust", "rejections", "other_events", "cited_events"):
        assert by_time[key] == by_position[key], key
    for fmt, start, end in (("markdown", "## What happened in the window", "## Rejected artifacts"),
                            ("html", '<section id="timelines">', '<section id="rejections">')):
        text = report(home, tmp_path, fmt, "--since", first, "--until", last).decode()
        timelines = text[text.index(start):text.index(end)]
        assert {int(p) for p in re.findall(r'id="ev-(\d+)"', timelines)} == timeline_positions(by_position), fmt


def test_filters_by_skill_and_publisher(scenario: Scenario, tmp_path: Path) -> None:
    home = scenario.home
    d = doc(home, tmp_path, "--skill", "acme.echo")
    assert {p["skill_id"] for p in d["posture"]} == {"acme.echo"} and [t["skill_id"] for t in d["timelines"]] == [
        "acme.echo"]
    assert d["scope"]["filters"]["skills"] == ["acme.echo"]
    d = doc(home, tmp_path, "--publisher", "initech", "--publisher", "globex")
    assert {p["publisher"] for p in d["posture"]} == {"initech", "globex"}
    assert [r["publisher"] for r in d["trust"]["revocations"]] == ["initech"]
    assert d["scope"]["filters"]["publishers"] == ["globex", "initech"]


# --- output, determinism ---------------------------------------------------------------------------


def test_stdout_json_result_and_determinism(scenario: Scenario, tmp_path: Path) -> None:
    home = scenario.home
    r = skills(home, "report", "compliance", "--format", "json", "--generated-at", AT)
    assert r.exit_code == 0 and json.loads(r.stdout)["scope"]["generated_at"] == AT
    assert "compliance report (json," in r.stderr and "written to stdout" in r.stderr
    for fmt in FORMATS:  # byte-identical twice, and what stdout carries is what --output writes
        first, second = report(home, tmp_path, fmt), report(home, tmp_path, fmt)
        assert first == second, fmt
        out = skills(home, "report", "compliance", "--format", fmt, "--generated-at", AT)
        assert out.stdout_bytes == first, fmt
    target = tmp_path / "r.html"
    r = skills(home, "--json", "report", "compliance", "--output", str(target), "--generated-at", AT)
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)
    assert set(result) == {"output", "format", "bytes", "journal_head", "window", "summary", "journal_verification"}
    assert (result["output"], result["format"], result["bytes"]) == (str(target), "html", target.stat().st_size)
    assert result["journal_head"]["position"] == scenario.events[-1]["position"]
    assert result["journal_head"]["hash"] == scenario.events[-1]["hash"]
    assert result["summary"]["findings"] == {"high": 2, "medium": 5, "low": 3}
    assert target.read_bytes().startswith(b"<!DOCTYPE html>")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".r.html.")], "no temporary file left"


def test_usage_errors_exit_2_before_reading(scenario: Scenario, tmp_path: Path) -> None:
    home = scenario.home
    cases = [
        (["--json"], "--json prints the command's result"),
        (["--since", "yesterday"], "--since expects a journal position or an ISO-8601 time"),
        (["--until", "2026-13-45"], "--until expects"),
        (["--since", "9", "--until", "3"], "is after --until"),
        (["--max-audit-age", "3 weeks"], "invalid duration"),
        (["--skill", "Not A Skill"], "invalid skill id"),
        (["--generated-at", "soon"], "--generated-at expects"),
        (["--format", "pdf"], "Invalid value for '--format'"),
    ]
    for args, message in cases:
        prefix = ["--json"] if args == ["--json"] else []
        rest = [] if args == ["--json"] else args
        r = skills(home, *prefix, "report", "compliance", *rest)
        assert r.exit_code == 2, (args, r.exit_code, r.stderr)
        assert message in r.stderr, (args, r.stderr)


# --- a journal that does not verify ------------------------------------------------------------------


def test_an_edited_chain_is_reported_at_the_top_and_exits_9(scenario: Scenario, tmp_path: Path) -> None:
    home = tmp_path / "edited"
    shutil.copytree(scenario.home, home)
    target = scenario.one("skill.quarantined", "skill:acme.echo", reason="suspicious traffic")
    con = sqlite3.connect(home / "journal.db")
    con.execute("DROP TRIGGER stored_events_no_update")  # what an attacker with the file can do
    con.execute("UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), 'suspicious traffic', "
                "'routine check') AS BLOB) WHERE rowid = ?", (target["position"],))
    con.commit()
    con.close()
    position = target["position"]
    d = doc(home, tmp_path, expect=9)
    assert d["summary"]["verdict"] == "journal_verification_failed"
    v = d["scope"]["journal_verification"]
    assert (v["ok"], v["first_bad_position"]) == (False, position) and "hash_mismatch" in v["message"]
    assert (d["findings"][0]["kind"], d["findings"][0]["id"]) == ("journal_verification_failed",
                                                                  f"F-JOURNAL-{position:06d}")
    page = report(home, tmp_path, "html", expect=9).decode()
    assert page.index('class="banner fail"') < page.index('id="summary"') < page.index('id="findings"')
    assert "JOURNAL VERIFICATION FAILED at position" in page
    md = report(home, tmp_path, "markdown", expect=9).decode()
    assert md.index("JOURNAL VERIFICATION FAILED") < md.index("## Summary")
    r = skills(home, "report", "compliance", "--format", "markdown")
    assert r.exit_code == 9 and r.stdout.startswith("# Compliance report\n\n> **🛑 JOURNAL VERIFICATION FAILED**")
    assert f"error[journal_tampered]: the journal does not verify at position {position}" in r.stderr
    r = skills(home, "--json", "report", "compliance", "--output", str(tmp_path / "x.json"))
    assert r.exit_code == 9 and json.loads(r.stdout)["journal_verification"]["ok"] is False


def _tamper(home: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Edit the journal as an intruder with the file would: guard off, edit, guard back on."""
    from skill_ledger.adapters.journal.sqlite import guard_statements

    con = sqlite3.connect(home / "journal.db", isolation_level=None)
    for table in ("stored_events", "event_chain"):
        for op in ("update", "delete", "replace"):
            con.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
    for sql, args in statements:
        con.execute(sql, args)
    for statement in guard_statements():
        con.execute(statement)
    con.close()


def _fails_at_the_top(home: Path, tmp_path: Path, code: str) -> dict[str, Any]:
    d = doc(home, tmp_path, expect=9)
    v = d["scope"]["journal_verification"]
    assert d["summary"]["verdict"] == "journal_verification_failed" and v["ok"] is False and code in v["message"]
    assert d["findings"][0]["kind"] == "journal_verification_failed" and d["findings"][0]["severity"] == "high"
    md = report(home, tmp_path, "markdown", expect=9).decode()
    assert md.startswith("# Compliance report\n\n> **🛑 JOURNAL VERIFICATION FAILED**")
    page = report(home, tmp_path, "html", expect=9).decode()
    assert page.index('class="banner fail"') < page.index('id="summary"')
    return d


def test_a_state_rewritten_to_the_same_meaning_fails_the_report(scenario: Scenario, tmp_path: Path) -> None:
    """Hash-chain format 2 binds the stored bytes: the quarantine's state re-serialised (same
    members, other whitespace and order) is caught by the verification the report runs first."""
    home = tmp_path / "rewritten"
    shutil.copytree(scenario.home, home)
    target = scenario.one("skill.quarantined", "skill:acme.echo", reason="suspicious traffic")["position"]
    con = sqlite3.connect(home / "journal.db")
    state = con.execute("SELECT state FROM stored_events WHERE rowid = ?", (target,)).fetchone()[0]
    con.close()
    same = json.dumps(json.loads(state), sort_keys=True, indent=1).encode()
    _tamper(home, ("UPDATE stored_events SET state = ? WHERE rowid = ?", (same, target)))
    d = _fails_at_the_top(home, tmp_path, "state_not_canonical")
    assert d["scope"]["journal_verification"]["first_bad_position"] == target
    assert d["findings"][0]["id"] == f"F-JOURNAL-{target:06d}"


def test_a_journal_truncated_behind_its_views_fails_the_report(scenario: Scenario, tmp_path: Path) -> None:
    """The last events cut off the journal (chain and guard intact: ``journal verify`` alone
    cannot tell). The views had projected them: the report, like every read, says the journal
    was truncated, at the top, and exits 9; the views are left as they were."""
    home = tmp_path / "truncated"
    shutil.copytree(scenario.home, home)
    assert skills(home, "list").exit_code == 0  # the views catch up with the whole journal
    head = scenario.events[-1]["position"]
    views = (home / "views.db").read_bytes()
    _tamper(home, ("DELETE FROM stored_events WHERE rowid > ?", (head - 3,)),
            ("DELETE FROM event_chain WHERE position > ?", (head - 3,)))
    assert skills(home, "journal", "verify").exit_code == 0  # the chain that is left is whole
    d = _fails_at_the_top(home, tmp_path, "truncated")
    assert d["scope"]["journal_head"]["position"] == head - 3
    assert f"up to position {head}" in d["scope"]["journal_verification"]["message"]
    assert (home / "views.db").read_bytes() == views
    other = tmp_path / "other"  # views of another journal prove nothing about this one
    shutil.copytree(home, other)
    (other / "journal.db").unlink()
    (other / "journal-anchor.json").unlink()  # (the checkpoint anchor is of the first journal too)
    # and so is its key: a home with a checkpoint key but no anchor fails closed (the anchor was deleted)
    (other / "journal-signing-key.pem").unlink()
    Scenario(other).d.do("user:x", "trust allow", "allow", "acme", "11" * 32, "another journal")
    assert doc(other, tmp_path)["scope"]["journal_verification"]["ok"] is True


# --- the second pass in worker processes -------------------------------------------------------------


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "interpreter"])
def test_worker_processes_write_the_same_report_and_a_failed_one_is_redone(scenario: Scenario, tmp_path: Path,
                                                                         fork: bool) -> None:
    """Ranges of skills folded by real worker processes (forks of this one, or new interpreters:
    ``python -m ...report_workers``) give the bytes one process writes, in every format; a
    worker that cannot open the journal is replaced by the parent folding its range, with a
    notice, and the report is still the same."""
    import io
    import tempfile

    from skill_ledger.adapters.settings import resolve
    from skill_ledger.adapters.usecases.report_workers import ReportWorkers
    from skill_ledger.adapters.usecases.reports import JournalSource, _journal
    from skill_ledger.projections.report import JournalVerification, ReportRequest, write_report

    settings = resolve(home=str(scenario.home), journal=None, actor="user:auditor", command="report compliance")
    request = ReportRequest(generated_at=AT, generated_by="user:auditor", project_version="0",
                            journal_verification=JournalVerification(ok=True), max_audit_age=None)
    notices: list[str] = []

    def write(fmt: str, workers: Any) -> bytes:
        out = io.BytesIO()
        with _journal(settings) as app, tempfile.TemporaryDirectory(dir=tmp_path) as d:
            source = JournalSource(app, app.recorder.max_notification_id())
            write_report(source, out, fmt, request, workdir=Path(d), workers=workers, notify=notices.append,
                         sharded_min_events=0)
        return out.getvalue()

    for fmt in FORMATS:
        alone = write(fmt, None)
        assert write(fmt, ReportWorkers(settings, 3, fork=fork)) == alone, fmt
    assert notices == []
    broken = resolve(home=str(scenario.home), journal=str(tmp_path / "missing" / "journal.db"), actor="x")
    assert write("json", ReportWorkers(broken, 3, fork=fork)) == write("json", None)
    assert len(notices) == 2 and all("a report worker failed" in n and "folding its skills in this process" in n
                                     for n in notices)
