"""``skills search``: full-text search over the installed skills (``projections.search``).

Each searched field is found; the results follow installs, quarantines and removals (the
catch-up keeps the ``search`` rows and their FTS5 index up to date); a rebuild gives the
same rows and the same results; the command's JSON and human output, a query FTS5 cannot
parse (exit 2, no traceback) and a query that matches nothing (exit 0, count 0)."""

from __future__ import annotations

import json
from pathlib import Path

import helpers_ledger as h
import pytest
from click.testing import CliRunner

from skill_ledger.adapters.readmodel.views import discard, open_views
from skill_ledger.adapters.usecases import lifecycle
from skill_ledger.adapters.usecases.install import install
from skill_ledger.cli.commands.search import search as search_command
from skill_ledger.domain.artifact import build_artifact
from skill_ledger.domain.errors import UsageError
from skill_ledger.projections.records import manifest_facts
from skill_ledger.projections.schema import SEARCH
from skill_ledger.projections.search import check_query, search, search_row

FIELDS = ("skill_id", "name", "description", "publisher", "tool_ids", "tool_descriptions")


def manifest(skill_id: str, publisher: str, *, name: str, summary: str | None = None,
             description: str | None = None, tools: tuple[tuple[str, str], ...] = (("echo", "Echo"),),
             version: str = "1.0.0") -> str:
    tool_tables = "".join(f'''[[entrypoints.tools]]
id = "{publisher}.{tool}"
name = "{tool}"
description = "{text}"
input_schema = {{ type = "object" }}
output_schema = {{ type = "object" }}

''' for tool, text in tools)
    operator = "".join(f'{key} = "{value}"\n' for key, value in (("summary", summary), ("description", description))
                       if value)
    return f'''manifest_version = 2
skill_id = "{skill_id}"
name = "{name}"
version = "{version}"
publisher = "{publisher}"

[entrypoints]
{tool_tables}
[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"

[operator]
display_name = "{name}"
{operator}'''


def module(tools: tuple[tuple[str, str], ...]) -> bytes:
    """A module that passes the audit and exports one function per tool."""
    exports = "".join(f'(func (export "{tool}") (param i32 i32) (result i64) (i64.const 0))' for tool, _ in tools)
    return h.wasm(h.GOOD_WAT.replace('(func (export "echo")', '(func $echo')[:-1] + exports + ")")


def artifact(skill_id: str, publisher: str, **kw) -> bytes:
    tools = kw.get("tools", (("echo", "Echo"),))
    return build_artifact(manifest(skill_id, publisher, **kw), [("echo.wasm", module(tools))], [("note.txt", b"x")],
                          h.SBOM, h.PROVENANCE, h.SEEDS[publisher], 1_700_000_000_000).artifact


FLEET = {
    # skill_id: (publisher, fields) -- each skill has one distinctive word in one field
    "acme.alpha": ("acme", {"name": "Weather Station"}),
    "acme.beta": ("acme", {"name": "Beta", "summary": "Translates invoices", "description": "Uses OCR"}),
    "globex.gamma": ("globex", {"name": "Gamma", "tools": (("forecast", "Predicts tides"),)}),
    "globex.delta": ("globex", {"name": "Delta", "tools": (("echo", "Echo"), ("lookup", "Finds mangoes"))}),
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("search") / "home"
    ledger = h.ledger_for(home)
    for skill_id, (publisher, fields) in FLEET.items():
        install(ledger, f"/a/{skill_id}", data=artifact(skill_id, publisher, **fields), allow_tofu=True)
    h.catch_up(ledger)
    yield ledger
    ledger.close()


def found(ledger, query: str) -> list[tuple[str, str, list[str]]]:
    store = open_views(ledger.settings)
    try:
        result = search(store.con, query)
    finally:
        store.close()
    assert result.count == len(result.results)
    return [(hit.skill_id, hit.version, hit.matched) for hit in result.results]


@pytest.mark.parametrize("query,skill_id,field", [
    ("alpha", "acme.alpha", "skill_id"),
    ('"acme.alpha"', "acme.alpha", "skill_id"),
    ("weather", "acme.alpha", "name"),
    ("invoices", "acme.beta", "description"),  # operator.summary
    ("ocr", "acme.beta", "description"),  # operator.description
    ("forecast", "globex.gamma", "tool_ids"),
    ("tides", "globex.gamma", "tool_descriptions"),
    ("mangoes", "globex.delta", "tool_descriptions"),
])
def test_each_field_is_searched(fleet, query: str, skill_id: str, field: str) -> None:
    hits = found(fleet, query)
    assert [s for s, _v, _m in hits] == [skill_id]
    assert field in hits[0][2]


def test_publisher_prefix_phrase_and_column_queries(fleet) -> None:
    assert {s for s, _v, m in found(fleet, "globex") if "publisher" in m} == {"globex.gamma", "globex.delta"}
    assert [s for s, _v, _m in found(fleet, "weath*")] == ["acme.alpha"]
    assert [s for s, _v, _m in found(fleet, '"predicts tides"')] == ["globex.gamma"]
    assert found(fleet, '"tides predicts"') == []
    assert [s for s, _v, _m in found(fleet, "publisher:acme AND name:beta")] == ["acme.beta"]
    assert {s for s, _v, _m in found(fleet, "tides OR mangoes")} == {"globex.gamma", "globex.delta"}


def test_an_id_ranks_above_a_description(tmp_path: Path) -> None:
    """bm25 with weights: the skill named for the word comes before one that only mentions it."""
    ledger = h.ledger_for(tmp_path / "home")
    try:
        install(ledger, "/a/1", data=artifact("acme.mentions", "acme", name="Other", summary="a tool for radar"),
                       allow_tofu=True)
        install(ledger, "/a/2", data=artifact("acme.radar", "acme", name="Radar"))
        h.catch_up(ledger)
        assert [s for s, _v, _m in found(ledger, "radar")] == ["acme.radar", "acme.mentions"]
    finally:
        ledger.close()


def test_results_follow_install_quarantine_and_remove(tmp_path: Path) -> None:
    ledger = h.ledger_for(tmp_path / "home")
    try:
        def hits():
            h.catch_up(ledger)
            store = open_views(ledger.settings)
            try:
                return [(x.skill_id, x.version, x.current, x.status) for x in search(store.con, "weather").results]
            finally:
                store.close()

        assert hits() == []
        install(ledger, "/a/1", data=artifact("acme.alpha", "acme", name="Weather Station"), allow_tofu=True)
        assert hits() == [("acme.alpha", "1.0.0", True, "active")]
        install(ledger, "/a/2", data=artifact("acme.alpha", "acme", name="Weather Station", version="2.0.0"))
        assert hits() == [("acme.alpha", "1.0.0", False, "active"), ("acme.alpha", "2.0.0", True, "active")]
        lifecycle.quarantine(ledger, "acme.alpha", None, "look closer")
        assert hits() == [("acme.alpha", "1.0.0", False, "active"), ("acme.alpha", "2.0.0", True, "quarantined")]
        lifecycle.remove(ledger, "acme.alpha", "2.0.0", "unused")
        assert [(s, v) for s, v, _c, _st in hits()] == [("acme.alpha", "1.0.0")]
        lifecycle.remove(ledger, "acme.alpha", "1.0.0", "unused")
        assert hits() == []
        # installed again (the same version, so the same rows come back)
        install(ledger, "/a/3", data=artifact("acme.alpha", "acme", name="Weather Station", version="2.0.0"))
        assert [(s, v) for s, v, _c, _st in hits()] == [("acme.alpha", "2.0.0")]
        assert h.projection_mismatches(ledger, tmp_path, batches=(None, 1), shards=(2,)) == []
        store = open_views(ledger.settings)
        try:
            assert store.integrity_problem() is None  # the FTS index matches its rows
        finally:
            store.close()
    finally:
        ledger.close()


def test_a_rebuild_finds_the_same(fleet, tmp_path: Path) -> None:
    rebuilt = h.rebuilt_views(fleet, tmp_path)
    live = open_views(fleet.settings)
    try:
        for query in ("weather", "globex", "echo", "tides OR invoices", "acme*"):
            assert search(rebuilt.con, query) == search(live.con, query)
        assert rebuilt.integrity_problem() is None
        assert h.projection_mismatches(fleet, tmp_path, shards=(3,)) == []
    finally:
        live.close()
        discard(rebuilt)


def test_an_index_out_of_step_with_its_rows_is_reported(tmp_path: Path) -> None:
    """``index verify`` compares the FTS index with its rows: text changed behind its back."""
    ledger = h.ledger_for(tmp_path / "home")
    try:
        install(ledger, "/a/1", data=artifact("acme.alpha", "acme", name="Weather Station"), allow_tofu=True)
        h.catch_up(ledger)
        store = open_views(ledger.settings)
        store.con.execute("DROP TRIGGER search_au")
        store.con.execute("UPDATE search SET name = 'Something Else'")
        assert "full-text index" in (store.integrity_problem() or "")
        store.close()
        proc = h.run_cli("--json", "index", "verify", home=tmp_path / "home")
        assert proc.returncode == 9, proc.stderr
        tables = [d["table"] for d in json.loads(proc.stdout)["differences"]]
        assert tables[0] == "*" and "search" in tables  # the index, and the row itself
    finally:
        ledger.close()


def test_a_manifest_of_another_shape_gives_what_it_can() -> None:
    """Search text from a recorded manifest whose members have other types (say, written by a
    newer version): what is text is kept, the rest counts as absent."""
    odd = (b'{"skill_id": "acme.x", "name": 5, "operator": {"summary": "Sums", "description": ["x"]}, '
           b'"entrypoints": {"tools": [{"id": " acme.t ", "description": 7}, {"id": "acme.u", "description": "Us"}]}}')
    row = dict(zip(SEARCH.names, search_row("acme.x", "1.0.0", "acme", manifest_facts(odd))))
    assert row == {"skill_id": "acme.x", "version": "1.0.0", "publisher": "acme", "name": None, "description": "Sums",
                   "tool_ids": "acme.t acme.u", "tool_descriptions": "Us"}
    # an operator section that is not an object, tools that are not objects
    odd = b'{"skill_id": "acme.x", "name": "X", "operator": "none", "entrypoints": {"tools": [3, {"id": "acme.t"}]}}'
    row = dict(zip(SEARCH.names, search_row("acme.x", "1.0.0", None, manifest_facts(odd))))
    assert (row["name"], row["description"], row["tool_ids"], row["tool_descriptions"]) == ("X", None, "acme.t", None)
    for junk in (b"not json", b"[1]", b"null"):
        assert search_row("acme.x", "1.0.0", None, manifest_facts(junk))[3:] == (None, None, None, None)


# --- the command ----------------------------------------------------------------------------


def run(home: Path, *args: str):
    """``skills search`` through the root group (so errors map to exit codes as in production),
    registered here until the CLI's command table lists it."""
    from skill_ledger.cli.main import cli

    if "search" not in cli.commands:
        cli.add_command(search_command)
    return CliRunner().invoke(cli, ["--home", str(home), "search", *args], catch_exceptions=False)


def test_the_command_json(fleet) -> None:
    result = run(fleet.settings.home, "--json", "tides", "OR", "invoices")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["query"] == "tides OR invoices" and doc["count"] == 2
    assert {r["skill_id"] for r in doc["results"]} == {"globex.gamma", "acme.beta"}
    hit = next(r for r in doc["results"] if r["skill_id"] == "globex.gamma")
    assert hit == {"skill_id": "globex.gamma", "version": "1.0.0", "name": "Gamma", "publisher": "globex",
                   "current": True, "status": "active", "matched": ["tool_descriptions"],
                   "snippet": "Predicts [tides]"}
    assert set(hit["matched"]) <= set(FIELDS)


def test_the_command_table(fleet) -> None:
    result = run(fleet.settings.home, "weather")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["SKILL", "VERSION", "CURRENT", "STATUS", "MATCHED", "SNIPPET"]
    assert lines[1].split()[:5] == ["acme.alpha", "1.0.0", "*", "active", "name"] and "[Weather]" in lines[1]


def test_no_match_is_success_with_count_0(fleet) -> None:
    result = run(fleet.settings.home, "--json", "zeppelin")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"query": "zeppelin", "count": 0, "results": []}
    result = run(fleet.settings.home, "zeppelin")
    assert result.exit_code == 0 and "no installed skill matches 'zeppelin'" in result.stdout


@pytest.mark.parametrize("query", ['"unbalanced', "acme.echo", "nosuchcolumn:x", "AND", "   "])
def test_a_query_fts5_cannot_parse_is_a_usage_error(fleet, query: str) -> None:
    result = run(fleet.settings.home, "--json", query)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error[usage_error]: ") and "Traceback" not in result.stderr
    assert json.loads(result.stdout)["error"]["code"] == "usage_error"
    with pytest.raises(UsageError):
        store = open_views(fleet.settings)
        try:
            search(store.con, query)
        finally:
            store.close()


def test_the_usage_error_suggests_quotes_only_for_punctuation() -> None:
    with pytest.raises(UsageError, match="quote words with punctuation"):
        check_query("acme.echo")
    with pytest.raises(UsageError) as refused:
        check_query("AND")
    assert "quote" not in refused.value.message
    check_query('"acme.echo" OR weath*')
