"""Human output (issue 12): tables that fit the terminal, status colours that respect NO_COLOR,
CSV for list and history, removed versions on request, the reason a re-audit left a version
quarantined, and (issue 17) each tool's runner ABI and each module's interface in ``info``."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import builders as b
import pytest
from clikit import Skills

from skill_ledger.cli import output

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters" / "runner"))
import runner_kit as kit  # noqa: E402

LONG_ID = "acme." + "a-very-long-skill-name-" * 3 + "x"


@pytest.fixture
def skills(tmp_path):
    s = Skills(tmp_path)
    assert s.install().exit_code == 0
    assert s.install("long.skill", skill_id=LONG_ID).exit_code == 0
    return s


def as_terminal(monkeypatch):
    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
    monkeypatch.setattr(output, "stderr_is_tty", lambda: True)


def test_the_list_fits_the_terminal_width_and_wide_disables_it(skills):
    lines = skills("list", env={"COLUMNS": "70"}).stdout.splitlines()
    assert lines[0].startswith("SKILL") and all(len(line) <= 70 for line in lines)
    assert any("…" in line for line in lines)
    wide = skills("list", "--wide", env={"COLUMNS": "70"}).stdout
    assert LONG_ID in wide and "…" not in wide and max(map(len, wide.splitlines())) > 70
    piped = skills("list").stdout  # not a terminal, no COLUMNS: never cut
    assert LONG_ID in piped


def test_every_table_fits(skills):
    for args in (["info", LONG_ID], ["history", LONG_ID], ["trust", "list"], ["search", "echo"]):
        r = skills(*args, env={"COLUMNS": "60"})
        assert r.exit_code == 0, (args, r.output)
        lines = r.stdout.splitlines()
        if args[0] == "info":  # its tools table (the key-value lines above it are not a table)
            lines = lines[lines.index("tools:") + 1: lines.index("modules:")]
        assert lines and all(len(line) <= 60 for line in lines), (args, r.stdout)


def test_status_values_are_coloured_on_a_terminal_unless_no_color(skills, monkeypatch):
    as_terminal(monkeypatch)
    assert skills("quarantine", LONG_ID, "--reason", "odd").exit_code == 0
    coloured = skills("list", "--wide", env={"NO_COLOR": ""}, color=True).stdout
    assert "\x1b[32mactive\x1b[0m" in coloured and "\x1b[31mquarantined\x1b[0m" in coloured
    plain = skills("list", "--wide", env={"NO_COLOR": "1"}, color=True).stdout
    assert "\x1b[" not in plain and "quarantined" in plain
    monkeypatch.setattr(output, "stdout_is_tty", lambda: False)
    assert "\x1b[" not in skills("list", "--wide", color=True).stdout  # not a terminal: no colour


def test_list_as_csv(skills):
    r = skills("list", "--format", "csv")
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["skill_id"] for row in rows] == [LONG_ID, "acme.echo"]
    assert rows[1]["status"] == "active" and rows[1]["eligible"] == "true" and rows[1]["eligibility_reasons"] == "[]"
    assert r.stdout_bytes.endswith(b"\r\n")  # RFC 4180 line ends
    r = skills("list", "--format", "csv", "--json")
    assert r.exit_code == 2 and "either --json or --format csv" in r.stderr


def test_history_as_csv_with_formulas_kept_as_text(skills):
    assert skills("quarantine", "acme.echo", "--reason", "=HYPERLINK(\"http://evil\")").exit_code == 0
    r = skills("history", "acme.echo", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows[0].keys() >= {"position", "recorded_at", "kind", "principal", "reason", "summary"}
    last = rows[-1]
    assert last["kind"] == "skill.quarantined" and last["principal"] == "user:cli"
    assert last["reason"] == "'=HYPERLINK(\"http://evil\")"  # a spreadsheet shows it, never evaluates it


def test_list_all_shows_removed_versions(skills):
    assert skills.install("b.skill", version="1.1.0").exit_code == 0
    assert skills("remove", "acme.echo", "--version", "1.0.0", "--reason", "old").exit_code == 0
    listed = [(e["version"], e["status"]) for e in skills.json("list")[1]["entries"] if e["skill_id"] == "acme.echo"]
    assert listed == [("1.1.0", "active")]
    everything = skills.json("list", "--all")[1]["entries"]
    assert [(e["version"], e["status"], e["installed"]) for e in everything if e["skill_id"] == "acme.echo"] == [
        ("1.0.0", "removed", False), ("1.1.0", "active", True)]
    assert "removed" in skills("list", "--all").stdout and "removed" not in skills("list").stdout


def test_reaudit_says_why_an_already_quarantined_version_stays_quarantined(tmp_path):
    s = Skills(tmp_path)
    failing = b.manifest("acme.big").replace("[operator]", '[capabilities]\ndevice_capabilities = ["camera"]\n\n'
                                                           "[operator]")
    r = s.install("big.skill", skill_id="acme.big", manifest_text=failing)
    assert r.exit_code == 5  # installed quarantined (audit_failed)
    r, doc = s.json("reaudit")
    assert (doc["checked"], doc["passed"], doc["quarantined"]) == (1, 0, [])
    assert doc["already_quarantined"] == [{"skill_id": "acme.big", "version": "1.0.0", "reason_code": "audit_failed",
                                           "reason": doc["already_quarantined"][0]["reason"]}]
    text = s("reaudit").stdout
    assert "checked 1, passed 0, quarantined 0, already quarantined 1" in text
    assert "still quarantined acme.big 1.0.0 (audit_failed): re-audited, but a re-audit never re-activates" in text
    assert "skills enable acme.big --version 1.0.0 --reason TEXT" in text


# --- info: each tool's ABI and each module's interface (issue 17) --------------------------------


def test_info_shows_the_abi_of_each_tool_and_the_interface_of_each_module(tmp_path):
    lab = kit.Lab(tmp_path / "home")
    try:
        sid = lab.install(kit.ECHO, tools=[("echo", kit.ANY, kit.ANY)])
        # a tool whose module implements no ABI for it: installed (quarantined by the audit), not runnable
        broken = lab.install("(module (memory (export \"memory\") 1) (func (export \"other\")))",
                             tools=[("orphan", kit.ANY, kit.ANY)], skill_id="acme.orphan")
    finally:
        lab.close()
    s = Skills(tmp_path)
    doc = s.json("info", sid)[1]
    (tool,) = doc["tools"]
    assert (tool["abi"], tool["abi_entry"], tool["module_path"], tool["abi_problem"]) == (
        "json-v1", "echo", "modules/m.wasm", None)
    (module,) = doc["modules"]
    assert module["imports"] == ["skills:host/v1.log"] and "echo (i32, i32) -> (i64)" in module["exports"]
    text = s("info", sid, "--wide").stdout
    assert "json-v1" in text and "imports: skills:host/v1.log" in text
    doc = s.json("info", broken)[1]
    (tool,) = doc["tools"]
    assert tool["abi"] is None and tool["abi_problem"]
    assert "NONE" in s("info", broken, "--wide").stdout
