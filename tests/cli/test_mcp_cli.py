"""``skills mcp``: its flags and the usage errors it reports before serving anything.

Serving itself is tested with a real MCP client in ``tests/e2e/test_mcp.py``."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from skill_ledger.cli.commands.mcp import mcp
from skill_ledger.cli.main import cli

TOKEN = "t" * 40


@pytest.fixture
def run(tmp_path):
    group = copy.copy(cli)  # the root group with `mcp` added, until cli/main.py's table lists it
    group.commands = {**cli.commands, "mcp": mcp}
    group.lazy_commands = {k: v for k, v in cli.lazy_commands.items() if k != "mcp"}
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(group, ["--home", str(tmp_path / "home"), *map(str, args)], catch_exceptions=False)

    return invoke


@pytest.fixture
def token(tmp_path):
    p = tmp_path / "token"
    p.write_text(TOKEN)
    p.chmod(0o600)
    return p


def test_help_describes_the_command(run):
    r = run("mcp", "--help")
    assert r.exit_code == 0
    for option in ("--transport", "--host", "--port", "--skill", "--publisher", "--token-file"):
        assert option in r.output
    assert "mcp:<client name>" in r.output


@pytest.mark.parametrize("args, message", [
    (["--port", "9000"], "apply to --transport http only"),
    (["--token-file", "x"], "apply to --transport http only"),
    (["--host", "0.0.0.0"], "apply to --transport http only"),
    (["--skill", "Not A Skill"], "invalid --skill"),
    (["--transport", "http", "--host", "0.0.0.0"], "not a loopback address: give --token-file"),
    (["--transport", "http", "--host", "::"], "not a loopback address: give --token-file"),
])
def test_usage_errors(run, tmp_path, args, message):
    r = run("mcp", *args)
    assert r.exit_code == 2, r.output
    assert "error[usage_error]" in r.stderr and message in r.stderr
    assert r.stdout == ""
    assert not (tmp_path / "home").exists()  # refused before any state was opened


def test_an_unknown_transport_is_a_click_usage_error(run):
    r = run("mcp", "--transport", "sse")
    assert r.exit_code == 2 and "'sse' is not one of" in r.stderr


def test_a_token_file_others_can_read_is_refused(run, token):
    token.chmod(0o644)
    r = run("mcp", "--transport", "http", "--token-file", token)
    assert r.exit_code == 2 and "chmod 600" in r.stderr and TOKEN not in r.output


def test_a_missing_token_file_is_not_found(run, tmp_path):
    r = run("mcp", "--transport", "http", "--token-file", tmp_path / "absent")
    assert r.exit_code == 6 and "error[file_not_found]" in r.stderr


def test_json_does_not_apply_and_says_so_in_one_json_document(run):
    for args in (["--json", "mcp"], ["mcp", "--json"]):
        r = run(*args)
        assert r.exit_code == 2
        assert json.loads(r.stdout)["error"]["code"] == "usage_error"
        assert "--json does not apply" in r.stderr


def test_serving_an_empty_stdin_ends_cleanly_and_leaves_logging_as_it_was(run, tmp_path):
    import logging

    before = logging.getLogger().handlers[:]
    r = run("mcp")  # the test runner's stdin is not the process's fd 0: the SDK's own claim serves it
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and "serving 0 tools" in r.stderr
    assert logging.getLogger().handlers == before
