"""Upcasting with a real event and a real journal.

A SQLite journal is written by the CLI while ``skill.disabled`` is at version 1. Then the event
is "bumped" the way a developer would change it: version 2 adds a ``ticket`` field, and
``upcast_v1_v2`` fills it in for events stored before. The journal written before the bump must
still replay: into aggregates (the old event decodes into the new class, upcast), into
rebuilt projections (the same views as before), through ``skills journal`` (exported as
recorded, so the hash chain still verifies; ``--kind`` still finds the old event), and new
version-2 events are appended next to the old ones.

The bump changes process-wide registries (the library's topic cache, the kind table, the
decoders' caches, the class the ``Skill`` aggregate records); the fixture restores every one
of them, and the last test checks that it did.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import eventsourcing.utils as es_utils
import pytest
from click.testing import CliRunner

import skill_ledger.domain.codec as codec
import skill_ledger.domain.events as events
import skill_ledger.domain.skill as skill_module
import skill_ledger.projections.records as records
from skill_ledger.adapters.journal.sqlite import open_journal
from skill_ledger.cli.main import cli
from skill_ledger.domain.events import topics_for_kinds

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"
SKILL_ID = "examples.hello"
NO_TICKET = "none (disabled before tickets were recorded)"


def skills(home: Path, *args: str | Path) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["--home", str(home), "--actor", "user:op", *map(str, args)])
    return r.exit_code, r.stdout + r.stderr


def skills_json(home: Path, *args: str | Path) -> object:
    code, out = skills(home, *args, "--json")
    assert code == 0, out
    return json.loads(out)


def journal_lines(home: Path, *args: str) -> list[dict]:
    code, out = skills(home, "journal", *args, "--json")
    assert code == 0, out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture
def journal_before_bump(tmp_path: Path) -> Path:
    """A home whose journal was written with ``skill.disabled`` at version 1."""
    home = tmp_path / "home"
    key = tmp_path / "key.hex"
    key.write_text((bytes([7]) * 32).hex())
    artifact = tmp_path / "hello.palyra-skill"
    code, out = skills(home, "package", "build", "--manifest", EXAMPLE / "skill.toml",
                       "--module", EXAMPLE / "modules" / "echo.wasm", "--module", EXAMPLE / "modules" / "wordcount.wasm",
                       "--output", artifact, "--signing-key-file", key)
    assert code == 0, out
    code, out = skills(home, "install", "--artifact", artifact, "--allow-tofu")
    assert code == 0, out
    code, out = skills(home, "disable", SKILL_ID, "--reason", "disabled before the bump")
    assert code == 0, out
    assert [e["kind"] for e in journal_lines(home)][-1] == "skill.disabled"
    return home


@pytest.fixture
def disabled_v2(monkeypatch: pytest.MonkeyPatch) -> Iterator[type]:
    """``skill.disabled`` bumped to version 2 for the duration of a test."""
    topic_cache, type_cache = dict(es_utils._topic_cache), dict(es_utils._type_cache)
    by_kind = {k: list(v) for k, v in events._EVENTS_BY_KIND.items()}
    classes, schemas, kinds = dict(codec._classes), dict(codec._schemas), dict(records._kinds)
    original = skill_module.Disabled
    # The bump replaces the class: nothing may still resolve the kind's topics to the old one.
    for topic in original.topics():
        es_utils._topic_cache.pop(topic, None)
    events._EVENTS_BY_KIND["skill.disabled"] = []
    for cache in (codec._classes, codec._schemas, records._kinds):
        cache.clear()

    class Disabled(original):  # what `class Disabled` in domain/skill.py would become
        KIND: ClassVar[str] = "skill.disabled"
        VERSION: ClassVar[int] = 2
        ticket: str = ""

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state["ticket"] = NO_TICKET

        def apply(self, skill: skill_module.Skill) -> None:
            super().apply(skill)
            skill.tickets = {**getattr(skill, "tickets", {}), self.version: self.ticket}

    monkeypatch.setattr(skill_module, "Disabled", Disabled)  # Skill.disable now records version 2
    try:
        yield Disabled
    finally:
        for live, saved in ((es_utils._topic_cache, topic_cache), (es_utils._type_cache, type_cache),
                            (events._EVENTS_BY_KIND, by_kind), (codec._classes, classes),
                            (codec._schemas, schemas), (records._kinds, kinds)):
            live.clear()
            live.update(saved)


def test_a_journal_written_before_a_version_bump_replays(journal_before_bump: Path, disabled_v2: type):
    home = journal_before_bump
    before = {"list": skills_json(home, "list"), "info": skills_json(home, "info", SKILL_ID),
              "journal": journal_lines(home)}
    old_position = before["journal"][-1]["position"]
    assert topics_for_kinds(["skill.disabled"]) == ["skill.disabled.v1", "skill.disabled.v2"]

    # The aggregate: the stored v1 event decodes into the new class, upcast, and applies.
    app = open_journal(f"sqlite://{home / 'journal.db'}", create=False)
    try:
        skill = app.repository.get(skill_module.Skill.id_for(SKILL_ID))
        stored = [e for e in app.events.get(skill.id) if isinstance(e, disabled_v2)]
    finally:
        app.close()
    assert skill.tickets == {"1.0.0": NO_TICKET}
    assert [(e.reason, e.ticket) for e in stored] == [("disabled before the bump", NO_TICKET)]

    # The projections, rebuilt from scratch through the upcast path, are what they were.
    code, out = skills(home, "index", "rebuild")
    assert code == 0, out
    assert skills_json(home, "list") == before["list"]
    assert skills_json(home, "info", SKILL_ID) == before["info"]

    # The journal is exported as recorded (no upcast: the hash chain covers the stored bytes).
    assert journal_lines(home) == before["journal"]
    old = journal_lines(home, "--kind", "skill.disabled")
    assert [(e["position"], e["data"]) for e in old] == [(old_position, {"version": "1.0.0",
                                                                         "reason": "disabled before the bump"})]

    # Version 2 events are appended next to version 1 ones; both replay; everything verifies.
    assert skills(home, "enable", SKILL_ID, "--reason", "after the bump")[0] == 0
    assert skills(home, "disable", SKILL_ID, "--reason", "again, with a ticket field")[0] == 0
    disabled = journal_lines(home, "--kind", "skill.disabled")
    assert [e["data"].get("ticket") for e in disabled] == [None, ""]
    assert [e["kind"] for e in disabled] == ["skill.disabled", "skill.disabled"]
    app = open_journal(f"sqlite://{home / 'journal.db'}", create=False)
    try:
        assert app.repository.get(skill_module.Skill.id_for(SKILL_ID)).tickets == {"1.0.0": ""}
    finally:
        app.close()
    assert skills_json(home, "journal", "verify")["ok"] is True
    code, out = skills(home, "index", "verify")
    assert code == 0, out
    assert skills_json(home, "info", SKILL_ID)["status"] == "disabled"


def test_the_bump_left_no_trace_in_the_registries():
    """Runs after the test above (file order): the real class is back everywhere."""
    events.load_model()
    assert skill_module.Disabled.VERSION == 1
    assert es_utils.resolve_topic("skill.disabled.v1") is skill_module.Disabled
    assert "skill.disabled.v2" not in es_utils._topic_cache
    assert topics_for_kinds(["skill.disabled"]) == ["skill.disabled.v1"]
    assert events._EVENTS_BY_KIND["skill.disabled"] == [skill_module.Disabled]
    assert codec._topic_info("skill.disabled.v1")[0] is skill_module.Disabled
