"""``skills reaudit --watch`` also compares the views with the journal (``index verify``): in its
first pass and then every ``--verify-interval`` (default 24h; 0 disables). Views edited behind
the journal's back (a quarantined version shown active, a row deleted) are reported as drift:
one log line, ``views_verify`` in that pass's result, and the service keeps running."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import helpers_ledger as h
import pytest

from skill_ledger.adapters.usecases import lifecycle
from skill_ledger.adapters.usecases.install import install


@pytest.fixture
def fleet(home: Path) -> Path:
    ledger = h.ledger_for(home)
    try:
        install(ledger, "/a", data=h.build("acme.alpha", "1.0.0", "acme"), allow_tofu=True)
        install(ledger, "/g", data=h.build("globex.gamma", "1.0.0", "globex"), allow_tofu=True)
        lifecycle.quarantine(ledger, "globex.gamma", None, "looks odd")
        h.catch_up(ledger)
    finally:
        ledger.close()
    return home


def watch(home: Path, *args: str) -> tuple[list[dict], list[str]]:
    """Two passes a second apart, as JSON lines; (the pass documents, the stderr lines)."""
    proc = h.run_cli("--json", "reaudit", "--watch", "--interval", "1s", "--max-runs", "2", *args, home=home,
                     timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr.splitlines()


def edit_views(home: Path, sql: str) -> None:
    con = sqlite3.connect(home / "views.db")
    try:
        assert con.execute(sql).rowcount == 1
        con.commit()
    finally:
        con.close()


@pytest.mark.parametrize("edit", [
    "UPDATE versions SET status = 'active' WHERE skill_id = 'globex.gamma'",  # a quarantine hidden
    "DELETE FROM versions WHERE skill_id = 'acme.alpha'",  # an installed version hidden
], ids=["quarantine_hidden", "version_hidden"])
def test_drifted_views_are_reported_and_the_service_keeps_running(fleet: Path, edit: str) -> None:
    edit_views(fleet, edit)
    passes, err = watch(fleet)
    assert [p["pass"] for p in passes] == [1, 2]  # it kept running after the drift
    first = passes[0]["views_verify"]
    assert first["ok"] is False and first["differences"] >= 1 and "versions" in first["first"]
    assert passes[1]["views_verify"] is None  # the next comparison is due in 24h
    drift = [line for line in err if "VIEWS DRIFT" in line]
    assert len(drift) == 1 and drift[0].startswith("reaudit: pass 1: VIEWS DRIFT") and "index verify" in drift[0]
    # The re-audit itself decides from the journal: nothing was quarantined or re-activated.
    assert all(p["quarantined"] == [] and p["positions"] == [] for p in passes)


def test_matching_views_are_logged_once_per_comparison(fleet: Path) -> None:
    passes, err = watch(fleet, "--verify-interval", "1s")
    assert [p["views_verify"] for p in passes] == [{"ok": True, "differences": 0, "first": None}] * 2
    assert [line for line in err if "views match the journal" in line] == [
        "reaudit: pass 1: views match the journal", "reaudit: pass 2: views match the journal"]


def test_verify_interval_zero_disables_the_comparison(fleet: Path) -> None:
    edit_views(fleet, "DELETE FROM versions WHERE skill_id = 'acme.alpha'")
    passes, err = watch(fleet, "--verify-interval", "0")
    assert [p["views_verify"] for p in passes] == [None, None]
    assert not any("views" in line.lower() for line in err if line.startswith("reaudit: pass"))


def test_a_bad_verify_interval_is_a_usage_error(fleet: Path) -> None:
    proc = h.run_cli("reaudit", "--watch", "--verify-interval", "1w", home=fleet)
    assert proc.returncode == 2 and "error[usage_error]" in proc.stderr
