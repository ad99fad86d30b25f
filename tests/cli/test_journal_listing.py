"""``skills journal`` listing flags (issue 12, "Consistent flags and output"): ``--actor``
filters (it used to be silently ignored), ``--since``/``--until`` take ISO-8601 times as
``--as-of`` does, ``--format csv``, and ``--help`` says NDJSON."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import helpers_ledger as h
import pytest
import tlog_helpers as t

from skill_ledger.adapters.usecases import lifecycle
from skill_ledger.adapters.usecases.install import install


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("listing") / "home"
    alice = h.ledger_for(home, actor="user:alice")
    try:
        install(alice, "/a", data=h.build("acme.alpha", "1.0.0", "acme"), allow_tofu=True)  # 1-6
    finally:
        alice.close()
    bob = h.ledger_for(home, actor="user:bob")
    try:
        lifecycle.quarantine(bob, "acme.alpha", None, "bob looked")  # 7
        lifecycle.enable(bob, "acme.alpha", None, "bob checked")  # 8-10
    finally:
        bob.close()
    return home


def ndjson(result) -> list[dict]:
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_actor_filters_the_events(journal: Path) -> None:
    everything = ndjson(t.skills(journal, "journal", "--json"))
    bobs = ndjson(t.skills(journal, "journal", "--json", "--actor", "user:bob"))
    assert bobs and {e["actor"]["principal"] for e in bobs} == {"user:bob"}
    assert [e["position"] for e in bobs] == [e["position"] for e in everything if e["actor"]["principal"] == "user:bob"]
    assert ndjson(t.skills(journal, "--actor", "user:alice", "journal", "--json", "--limit", "2")) == everything[:2]
    assert ndjson(t.skills(journal, "journal", "--json", "--actor", "user:nobody")) == []
    # the filter and --limit: the first N of that actor's events
    assert ndjson(t.skills(journal, "journal", "--json", "--actor", "user:bob", "--limit", "1")) == bobs[:1]


def test_a_root_level_actor_or_skills_actor_does_not_hide_events(journal: Path, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    """``--actor`` before the subcommand is the principal a command records (a wrapper's default):
    on a listing it must not silently become a filter; only ``journal --actor`` filters."""
    everything = ndjson(t.skills(journal, "journal", "--json"))
    assert {e["actor"]["principal"] for e in everything} == {"user:alice", "user:bob"}
    assert ndjson(t.skills(journal, "--actor", "user:bob", "journal", "--json")) == everything
    monkeypatch.setenv("SKILLS_ACTOR", "user:bob")
    assert ndjson(t.skills(journal, "journal", "--json")) == everything


def test_since_and_until_take_times(journal: Path) -> None:
    everything = ndjson(t.skills(journal, "journal", "--json"))
    at = {e["position"]: e["recorded_at"] for e in everything}
    since = ndjson(t.skills(journal, "journal", "--json", "--since", at[7]))
    assert [e["position"] for e in since] == [p for p in at if at[p] >= at[7]]
    until = ndjson(t.skills(journal, "journal", "--json", "--until", at[7].replace("+00:00", "Z")))
    assert [e["position"] for e in until] == [p for p in at if at[p] <= at[7]]
    both = ndjson(t.skills(journal, "journal", "--json", "--since", "2", "--until", at[6]))
    assert [e["position"] for e in both] == [p for p in at if p > 2 and at[p] <= at[6]]
    r = t.skills(journal, "journal", "--since", "last tuesday")
    assert r.exit_code == 2 and "ISO-8601" in r.stderr


def test_csv_has_a_header_and_one_row_per_event(journal: Path) -> None:
    r = t.skills(journal, "journal", "--format", "csv", "--kind", "skill.quarantined")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 1
    row = rows[0]
    assert (row["position"], row["kind"], row["principal"]) == ("7", "skill.quarantined", "user:bob")
    assert json.loads(row["data"])["reason"] == "bob looked" and len(row["hash"]) == 64
    assert row["summary"].startswith("quarantined 1.0.0")
    r = t.skills(journal, "journal", "--format", "csv", "--json")
    assert r.exit_code == 2
    assert ndjson(t.skills(journal, "journal", "--format", "ndjson")) == ndjson(t.skills(journal, "journal", "--json"))


def test_help_says_ndjson(journal: Path) -> None:
    r = t.skills(journal, "journal", "--help")
    assert r.exit_code == 0 and "NDJSON" in r.stdout and "one JSON document" not in r.stdout
    for sub in ("verify", "checkpoint", "prove", "consistency", "verify-proof", "export"):
        assert sub in r.stdout
