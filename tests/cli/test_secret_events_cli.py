"""`secret set` and `secret remove` leave a trace (issue 12): an event with the scope and key
names, never the value; a skill's own scope on the skill's stream (shown by `history`), any
other scope on ``secrets:<scope>``."""

from __future__ import annotations

import json

import pytest
from clikit import Skills

VALUE = "s3cret-value-7f3a"


@pytest.fixture
def skills(tmp_path):
    s = Skills(tmp_path)
    assert s.install().exit_code == 0
    return s


def journal_bytes(skills) -> bytes:
    """Every byte the journal database holds (WAL included)."""
    return b"".join(p.read_bytes() for p in skills.home.glob("journal.db*"))


def test_a_skill_scoped_secret_is_recorded_on_the_skills_stream_without_its_value(skills):
    r, doc = skills.json("secret", "set", "skill:acme.echo", "token", "--reason", "rotate", input=VALUE + "\n")
    assert r.exit_code == 0 and doc["positions"]
    (event,) = skills.events("--kind", "skill.secret_set")
    assert event["stream"] == "skill:acme.echo" and event["position"] == doc["positions"][0]
    assert event["data"] == {"scope": "skill:acme.echo", "key": "token", "replaced": False, "reason": "rotate"}
    assert event["actor"]["principal"] == "user:cli"
    assert skills("secret", "set", "skill:acme.echo", "token", input="second-value-9c2e").exit_code == 0
    assert skills("secret", "remove", "skill:acme.echo", "token").exit_code == 0
    history = skills.json("history", "acme.echo")[1]["events"]
    assert [e["kind"] for e in history][-3:] == ["skill.secret_set", "skill.secret_set", "skill.secret_removed"]
    assert [e["data"]["replaced"] for e in history[-3:-1]] == [False, True]
    text = skills("history", "acme.echo", "--wide").stdout
    assert "secret skill:acme.echo/token set (value not recorded)  [reason: rotate]" in text
    assert "secret skill:acme.echo/token replaced" in text and "secret skill:acme.echo/token removed" in text
    assert VALUE.encode() not in journal_bytes(skills) and b"second-value-9c2e" not in journal_bytes(skills)
    assert VALUE not in skills("journal", "--json").stdout


def test_other_scopes_have_a_stream_of_their_own(skills):
    assert skills("secret", "set", "global", "api_key", input=VALUE).exit_code == 0
    assert skills("secret", "set", "principal:alice", "pw", input=VALUE).exit_code == 0
    events = skills.events("--kind", "secret.set")
    assert [(e["stream"], e["data"]["key"]) for e in events] == [("secrets:global", "api_key"),
                                                                 ("secrets:principal:alice", "pw")]
    r, doc = skills.json("secret", "remove", "global", "api_key")
    assert doc["removed"] and skills.events("--kind", "secret.removed")[0]["position"] == doc["positions"][0]
    assert VALUE.encode() not in journal_bytes(skills)


def test_removing_a_secret_that_is_not_there_records_nothing(skills):
    before = len(skills.events())
    r, doc = skills.json("secret", "remove", "global", "nothing")
    assert r.exit_code == 0 and doc == {"scope": "global", "key": "nothing", "removed": False, "positions": []}
    assert len(skills.events()) == before


def test_a_refused_value_records_nothing(skills):
    before = len(skills.events())
    assert skills("secret", "set", "global", "k", input="").exit_code == 2  # empty value
    assert skills("secret", "set", "nonsense", "k", input="v").exit_code == 2  # bad scope
    assert len(skills.events()) == before
    assert json.loads(skills("secret", "list", "--json").stdout)["count"] == 0


def test_a_secret_set_before_its_skill_is_installed_shows_in_its_history_later(tmp_path):
    s = Skills(tmp_path)
    assert s("secret", "set", "skill:acme.echo", "token", input=VALUE).exit_code == 0
    assert s.install().exit_code == 0
    kinds = [e["kind"] for e in s.json("history", "acme.echo")[1]["events"]]
    assert kinds.index("skill.secret_set") < kinds.index("skill.installed")
    assert s.json("list")[1]["count"] == 1 and s("index", "verify").exit_code == 0
