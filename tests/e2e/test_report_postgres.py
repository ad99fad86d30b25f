"""``skills report compliance`` over a journal on PostgreSQL: the report scenario
(``tests/helpers_report.py``) recorded in a private PostgreSQL server (``tests/pg_server.py``;
the tests fail, never skip, without its binaries), reported through the CLI, is byte for byte
the report the engine makes of the same events exported from that journal; an event edited by
a superuser with the guard switched off is reported at the top and exits 9."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import pg_server  # noqa: E402
from helpers_report import Scenario  # noqa: E402

from skill_ledger import __version__  # noqa: E402
from skill_ledger.cli.main import cli  # noqa: E402
from skill_ledger.projections.report import JournalVerification, build_report, render  # noqa: E402

AT = "2026-12-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def pg() -> Iterator[pg_server.PgServer]:
    try:
        server = pg_server.start()
    except pg_server.PgUnavailable as e:
        pytest.fail(f"cannot run the PostgreSQL report tests: {e}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def report(home: Path, url: str, fmt: str, *args: str) -> tuple[int, bytes, str]:
    r = CliRunner().invoke(cli, ["--home", str(home), "--journal", url, "--actor", "user:auditor", "report",
                                 "compliance", "--format", fmt, "--generated-at", AT, *args])
    assert pg_server.APP_PASSWORD not in r.stderr and "Traceback" not in r.stderr
    return r.exit_code, r.stdout_bytes, r.stderr


def test_a_postgres_journal_reports_as_its_exported_events_do(tmp_path: Path, pg: pg_server.PgServer) -> None:
    url = pg.url(pg.create_database())
    scenario = Scenario(tmp_path / "home", url).run()
    expected = build_report(iter(scenario.events), generated_at=AT, generated_by="user:auditor",
                            project_version=__version__, journal_verification=JournalVerification(ok=True))
    kinds = {f.kind for f in expected.findings}
    assert {"enable_override_after_failed_audit", "artifact_tampered_or_missing", "quarantine_lifted",
            "policy_loosened", "artifact_rejected", "execution_denied"} <= kinds
    for fmt in ("json", "markdown", "html"):
        code, out, err = report(scenario.home, url, fmt)
        assert code == 0, err
        assert out == render(expected, fmt), fmt
    since = scenario.one("publisher.key_revoked")["position"] - 1
    code, out, _ = report(scenario.home, url, "json", "--since", str(since), "--skill", "initech.alpha")
    d = json.loads(out)
    assert code == 0 and [t["skill_id"] for t in d["timelines"]] == ["initech.alpha"]
    assert [(q["skill_id"], q["version"]) for r in d["trust"]["revocations"] for q in r["quarantined"]] == [
        ("initech.alpha", "1.0.0")]


def test_an_edited_postgres_journal_is_reported_and_exits_9(tmp_path: Path, pg: pg_server.PgServer) -> None:
    dbname = pg.create_database()
    url = pg.url(dbname)
    scenario = Scenario(tmp_path / "home", url).run()
    target = scenario.one("skill.quarantined", "skill:acme.echo", reason="suspicious traffic")["position"]
    with pg.superuser(dbname) as con:  # what an attacker with superuser rights can do
        con.execute("ALTER TABLE stored_events DISABLE TRIGGER stored_events_no_update")
        changed = con.execute(
            "UPDATE stored_events SET state = convert_to(replace(convert_from(state, 'UTF8'), "
            "'suspicious traffic', 'routine check'), 'UTF8') WHERE notification_id = %s", (target,)).rowcount
        assert changed == 1
        con.execute("ALTER TABLE stored_events ENABLE TRIGGER stored_events_no_update")
    code, out, err = report(scenario.home, url, "json")
    d = json.loads(out)
    assert code == 9 and f"error[journal_tampered]: the journal does not verify at position {target}" in err
    assert d["summary"]["verdict"] == "journal_verification_failed"
    assert d["findings"][0]["id"] == f"F-JOURNAL-{target:06d}"
    code, out, _ = report(scenario.home, url, "html")
    page = out.decode()
    assert code == 9 and page.index('class="banner fail"') < page.index('id="summary"')
