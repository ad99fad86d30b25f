"""The served tools, read from a real home's views (``adapters/mcp/catalog.py``)."""

from __future__ import annotations

import logging

import mcp_kit as kit
import pytest
import runner_kit as rk

from skill_ledger.adapters.mcp.catalog import Catalog, input_schema_for, output_schema_for
from skill_ledger.adapters.usecases import lifecycle
from skill_ledger.adapters.usecases.session import ledger_session


@pytest.fixture
def home(tmp_path):
    h = kit.Home(tmp_path / "home")
    h.install_example()
    yield h
    h.close()


def change(home: kit.Home, action: str, skill_id: str, *args) -> None:
    with ledger_session(home.settings) as ledger:
        getattr(lifecycle, action)(ledger, skill_id, *args)


def echo_as(export: str) -> str:
    """A json-v1 echo whose export serves the tool ``export`` (the audit checks each tool has one)."""
    return rk.json_module(rk.ECHO_BODY, name=export)


def catalog(home: kit.Home, **kw) -> Catalog:
    c = Catalog(home.settings, **kw)
    c.refresh()
    return c


def names(c: Catalog) -> list[str]:
    return [t.name for t in c.tools()]


def test_every_tool_of_every_current_active_eligible_version_is_served(home):
    home.install(rk.ECHO, tools=[("echo", rk.OBJECT, rk.OBJECT)], skill_id="acme.one")
    c = catalog(home)
    assert names(c) == ["acme_echo", "examples_echo", "examples_wordcount"]
    echo = next(t for t in c.tools() if t.name == "examples_echo")
    assert echo.title == "echo" and echo.description == "Returns its input unchanged"
    assert echo.input_schema["required"] == ["text"] and echo.output_schema["required"] == ["text"]
    assert echo.meta["skill-ledger/skill_id"] == "examples.hello"
    assert echo.meta["skill-ledger/tool_id"] == "examples.echo"
    assert echo.meta["skill-ledger/version"] == "1.0.0"


def test_quarantined_and_disabled_versions_are_not_served(home):
    home.install(rk.ECHO, tools=[("echo", rk.OBJECT, rk.OBJECT)], skill_id="acme.one")
    change(home, "quarantine", "examples.hello", None, "test")
    change(home, "disable", "acme.one", None, "test")
    assert names(catalog(home)) == []


def test_skill_and_publisher_filters_narrow_the_set(home):
    home.install(rk.ECHO, tools=[("echo", rk.OBJECT, rk.OBJECT)], skill_id="acme.one")
    assert names(catalog(home, skills=frozenset({"acme.one"}))) == ["acme_echo"]
    assert names(catalog(home, publishers=frozenset({"examples"}))) == ["examples_echo", "examples_wordcount"]
    assert names(catalog(home, skills=frozenset({"acme.one"}), publishers=frozenset({"examples"}))) == []
    assert names(catalog(home, skills=frozenset({"not.installed"}))) == []


def test_refresh_reports_a_change_only_when_the_served_tools_change(home):
    c = catalog(home)
    assert c.refresh() is False  # the journal did not move
    with ledger_session(home.settings) as ledger:  # the journal moves, the tools do not
        lifecycle.deny_execution(ledger, "examples.hello", "1.0.0", "examples.echo", "quarantined")
    assert c.refresh() is False
    change(home, "quarantine", "examples.hello", None, "test")
    assert c.refresh() is True and names(c) == []
    change(home, "enable", "examples.hello", None, "checked")
    assert c.refresh() is True and names(c) == ["examples_echo", "examples_wordcount"]


def test_a_name_no_longer_listed_still_resolves_so_the_gate_can_refuse_it(home):
    c = catalog(home)
    listed = c.target("examples_echo")
    assert listed.listed and (listed.entry.skill_id, listed.entry.tool_id, listed.version) == \
        ("examples.hello", "examples.echo", "1.0.0")
    change(home, "quarantine", "examples.hello", None, "test")
    c.refresh()
    stale = c.target("examples_echo")
    assert not stale.listed and stale.version == "1.0.0"  # the current version: the gate refuses it
    change(home, "remove", "examples.hello", None)
    c.refresh()
    assert c.target("examples_echo").version == "1.0.0"  # no version left: the one it was served for
    assert c.target("never_served") is None


def test_after_an_upgrade_a_stale_name_runs_the_current_version(home):
    home.install(rk.ECHO, tools=[("echo", rk.OBJECT, rk.OBJECT)], skill_id="acme.one")
    c = catalog(home)
    home.install(echo_as("other"), tools=[("other", rk.OBJECT, rk.OBJECT)], skill_id="acme.one", version="2.0.0")
    assert c.refresh() is True
    assert "acme_echo" not in names(c) and "acme_other" in names(c)
    assert c.target("acme_echo").version == "2.0.0"  # which declares no such tool: the runner says so


def test_a_tool_whose_input_cannot_be_an_object_is_not_served(home, caplog):
    home.install({"text.wasm": echo_as("text"), "any.wasm": echo_as("any")},
                 tools=[("text", {"type": "string"}, rk.ANY), ("any", rk.ANY, rk.ANY)], skill_id="acme.two")
    with caplog.at_level(logging.WARNING, logger="skill_ledger.mcp"):
        c = catalog(home, skills=frozenset({"acme.two"}))
    assert names(c) == ["acme_any"]
    assert c.tools()[0].input_schema == {"type": "object"} and c.tools()[0].output_schema is None
    assert "not served: tool acme.text of acme.two 1.0.0" in caplog.text


def test_schema_adaptation():
    assert input_schema_for({}) == {"type": "object"}
    assert input_schema_for({"properties": {"a": {}}}) == {"properties": {"a": {}}, "type": "object"}
    assert input_schema_for({"type": ["object", "null"]}) == {"type": "object"}
    assert input_schema_for({"type": "object", "required": ["a"]}) == {"type": "object", "required": ["a"]}
    assert input_schema_for({"type": "array"}) is None
    assert input_schema_for(["not", "a", "schema"]) is None
    assert output_schema_for({"type": "object"}) == {"type": "object"}
    assert output_schema_for({}) is None and output_schema_for({"type": "string"}) is None
