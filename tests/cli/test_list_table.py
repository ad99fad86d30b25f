"""The human ``skills list`` table (``cli.output.list_table`` over ``queries.list_rows``)
equals the same table rendered cell by cell from the JSON entries, for every filter."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import helpers_ledger as h
import pytest

from skill_ledger.adapters.readmodel.views import open_views
from skill_ledger.adapters.usecases import lifecycle, trust
from skill_ledger.adapters.usecases.install import install
from skill_ledger.cli.output import list_table, table
from skill_ledger.projections.queries import list_entries, list_rows


def reference(entries: list[dict]) -> list[str]:
    def audit(a: dict | None) -> str:
        return "-" if not a else f"{'passed' if a['passed'] else 'FAILED'} ({a['trigger']}, {a['at'][:19]})"

    rows = [[e["skill_id"], e["version"], "*" if e["current"] else "", e["status"] or "-",
             "yes" if e["eligibility"]["eligible"] else "no: " + ",".join(e["eligibility"]["reasons"]),
             e["trust_decision"] or "-", audit(e["last_audit"]), e["tool_count"]] for e in entries]
    out = io.StringIO()
    with redirect_stdout(out):
        table(["skill", "version", "current", "status", "eligible", "trust", "last audit", "tools"], rows)
    return out.getvalue().splitlines()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("list") / "home"
    ledger = h.ledger_for(home)
    install(ledger, "/a/1", data=h.build("acme.alpha", "1.0.0", "acme"), allow_tofu=True)
    install(ledger, "/a/2", data=h.build("acme.alpha", "10.0.0", "acme"))
    install(ledger, "/a/3", data=h.build("acme.alpha", "2.0.0", "acme"))
    install(ledger, "/a/4", data=h.build("acme.a-very-long-skill-name", "1.0.0", "acme"))
    install(ledger, "/a/5", data=h.build("globex.gamma", "1.0.0", "globex", wat=h.BAD_AUDIT_WAT), allow_tofu=True)
    install(ledger, "/a/6", data=h.build("globex.delta", "1.0.0", "globex"))
    lifecycle.disable(ledger, "globex.delta", None, "later")
    trust.revoke(ledger, "globex", h.key_hex(h.SEEDS["globex"]), "lost")  # two reasons on one entry
    h.catch_up(ledger)
    store = open_views(ledger.settings)
    yield store
    store.close()
    ledger.close()


@pytest.mark.parametrize("filters", [
    {}, {"publisher": "globex"}, {"status": "active"}, {"current_only": True}, {"eligible_only": True},
    {"publisher": "nobody"},
])
def test_list_table_equals_the_cell_by_cell_rendering(fleet, filters: dict) -> None:
    entries = list_entries(fleet.con, **filters)
    assert list_table(list_rows(fleet.con, **filters)) == reference(entries)
    if filters == {}:
        lines = list_table(list_rows(fleet.con))
        assert len(lines) == 7 and lines[0].startswith("SKILL")
        assert any("no: quarantined,key_revoked" in line for line in lines)
        # semantic version order, not text order
        assert [line.split()[1] for line in lines if line.startswith("acme.alpha ")] == ["1.0.0", "2.0.0", "10.0.0"]


def test_no_entries_no_lines(tmp_path: Path) -> None:
    ledger = h.ledger_for(tmp_path / "home")
    try:
        store = open_views(ledger.settings)
        assert list_table(list_rows(store.con)) == []
        store.close()
    finally:
        ledger.close()
