"""Terminal escape injection (issue 10): outside text in human output, and in the one-line
errors, is shown with its control, bidi and other format characters escaped, never obeyed.

One test per vector: a manifest's name and tool descriptions in ``skills info`` (clear screen,
OSC title, OSC 52 clipboard write, U+202E), an invalid secret scope carrying OSC 52 echoed by
``install`` and ``package inspect`` of an unsigned artifact, and a guest's log text in ``skills
run``. The JSON output carries the same text, escaped by the JSON encoder."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters" / "runner"))
import builders as b  # noqa: E402
import runner_kit as kit  # noqa: E402

from skill_ledger.cli.main import cli  # noqa: E402
from skill_ledger.cli.output import csv_cell, safe, table_lines  # noqa: E402

CLEAR = "\x1b[2J"
OSC_TITLE = "\x1b]0;owned\x07"
OSC_52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"  # writes "echo pwned" to the clipboard
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
HOSTILE = (CLEAR, OSC_TITLE, OSC_52, RLO)


def raw_control(text: str) -> list[str]:
    """The characters a terminal would act on: controls other than the line break, and U+202E."""
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0 or c == RLO]


def toml(text: str) -> str:
    return json.dumps(text)  # a JSON string is a TOML basic string with the same escapes


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--home", str(tmp_path / "home"), *map(str, args)], input=input)

    invoke.tmp = tmp_path
    return invoke


def test_safe_escapes_every_vector_visibly():
    assert safe(CLEAR) == "\\x1b[2J"
    assert safe(OSC_TITLE) == "\\x1b]0;owned\\x07"
    assert safe(RLO + "txt.exe") == "\\u202etxt.exe"
    assert safe("a\nb\tc\r") == "a\\nb\\tc\\r"
    assert safe("\u2028\u2066\u200b\ufeff\U000e0041\x85") == "\\u2028\\u2066\\u200b\\ufeff\\U000e0041\\x85"
    assert safe("naïve 日本語 café\u00a0") == "naïve 日本語 café\u00a0"  # printable text is left alone
    assert safe(12) == "12"


def test_table_cells_and_csv_cells_are_escaped():
    lines = table_lines(["name"], [[OSC_52 + "x"]])
    assert not raw_control("\n".join(lines)) and "\\x1b]52;c;" in lines[1]
    assert not raw_control(csv_cell(CLEAR + "=cmd"))
    assert csv_cell("=HYPERLINK(\"http://x\")").startswith("'=")  # a spreadsheet formula stays text


def test_info_escapes_the_manifest_name_and_tool_descriptions(run):
    text = b.manifest("acme.echo").replace('name = "Echo"', f"name = {toml('Echo' + CLEAR + OSC_TITLE)}", 1)
    text = text.replace('description = "Echo"', f"description = {toml('desc' + OSC_52 + RLO + 'fdp.exe')}")
    path = b.write(run.tmp, "a.skill", b.artifact(manifest_text=text))
    assert run("install", "--artifact", path, "--allow-tofu").exit_code == 0
    r = run("info", "acme.echo", "--wide")
    assert r.exit_code == 0, r.output
    assert raw_control(r.output) == []
    assert "Echo\\x1b[2J\\x1b]0;owned\\x07" in r.stdout
    assert "desc\\x1b]52;c;ZWNobyBwd25lZA==\\x07\\u202efdp.exe" in r.stdout
    doc = json.loads(run("info", "acme.echo", "--json").stdout)  # JSON: the text itself, escaped by JSON
    assert doc["name"] == "Echo" + CLEAR + OSC_TITLE and doc["tools"][0]["description"].endswith(RLO + "fdp.exe")


def _unsigned_with_scope(scope: str) -> bytes:
    """An unsigned artifact (no signature entry) whose manifest declares a hostile secret scope."""
    text = b.manifest("acme.echo").replace(
        "[operator]", f"[[capabilities.secrets]]\nscope = {toml(scope)}\nkey_names = [\"k\"]\n\n[operator]")
    entries = {"skill.toml": text.encode(), "sbom.cdx.json": b.SBOM, "provenance.json": b.PROVENANCE,
               "modules/echo.wasm": b.wasm()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            z.writestr(info, entries[name])
    return buf.getvalue()


@pytest.mark.parametrize("command", [("install", "--allow-tofu"), ("package", "inspect")])
def test_an_invalid_secret_scope_with_osc52_is_escaped_in_the_error(run, command):
    path = b.write(run.tmp, "evil.skill", _unsigned_with_scope("global" + OSC_52))
    r = run(*command, "--artifact", path)
    assert r.exit_code == 3, r.output
    assert r.stderr.startswith("error[manifest_validation]: ") and r.stderr.count("\n") == 1
    assert raw_control(r.stderr) == [] and "\\x1b]52;c;" in r.stderr


def test_a_guests_log_text_is_escaped(tmp_path):
    message = "log" + OSC_52 + RLO + "!"
    data = "".join(f"\\{b:02x}" for b in message.encode("utf-8"))
    wat = kit.json_module(f"(call $log (i32.const 2) (i32.const 3000) (i32.const {len(message.encode())})) "
                          + kit.ECHO_BODY, name="echo", extra=f'(data (i32.const 3000) "{data}")')
    lab = kit.Lab(tmp_path / "home")
    try:
        sid = lab.install(wat, tools=[("echo", kit.ANY, kit.ANY)])
    finally:
        lab.close()
    r = CliRunner().invoke(cli, ["--home", str(tmp_path / "home"), "run", "acme.echo", "--skill", sid,
                                 "--input", json.dumps({"t": CLEAR + RLO})])
    assert r.exit_code == 0, r.output
    assert raw_control(r.output) == []
    assert "[guest info] log\\x1b]52;c;ZWNobyBwd25lZA==\\x07\\u202e!" in r.stderr
    assert '"t": "\\u001b[2J\\u202e"' in r.stdout  # JSON escapes the ESC; the RLO is escaped for the terminal
