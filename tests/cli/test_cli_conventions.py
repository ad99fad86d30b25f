"""Global CLI behaviour (cli.md "Global behaviour"): global options before or after the
subcommand, ``--json`` prints exactly one JSON document on every command, the error format
(``error[<code>]: message`` on stderr, ``{"error": {...}}`` on stdout with --json), the
exit-code table, and ``skills --version``."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from skill_ledger.cli.errors import EXIT_CODES, exit_code_for
from skill_ledger.cli.main import cli
from skill_ledger.domain.constants import ENGINE_VERSION, PROTOCOL_MAJOR, RUNTIME_VERSION

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello"
SKILLS = str(Path(sys.executable).with_name("skills"))
SEED0D = bytes([0x0D]) * 32
PUB05_HEX = "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"


@pytest.fixture()
def env(tmp_path):
    return {"SKILLS_HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"), "SKILLS_JOURNAL": None,
            "SKILLS_ACTOR": None}


@pytest.fixture()
def run(env):
    runner = CliRunner()

    def invoke(*args, **kw):
        return runner.invoke(cli, [str(a) for a in args], env={**env, **kw.pop("env", {})}, **kw)

    return invoke


@pytest.fixture()
def key(tmp_path) -> Path:
    p = tmp_path / "key.hex"
    p.write_text(SEED0D.hex())
    return p


@pytest.fixture()
def artifact(tmp_path, run, key) -> Path:
    out = tmp_path / "hello.palyra-skill"
    r = run("package", "build", "--manifest", EXAMPLE / "skill.toml", "--module", EXAMPLE / "modules" / "echo.wasm",
            "--module", EXAMPLE / "modules" / "wordcount.wasm", "--output", out, "--signing-key-file", key)
    assert r.exit_code == 0, r.stderr
    return out


def one_json_document(text: str):
    """Exactly one JSON document (raw_decode then nothing but whitespace)."""
    decoder = json.JSONDecoder()
    stripped = text.strip()
    assert stripped, "no output"
    doc, end = decoder.raw_decode(stripped)
    assert end == len(stripped), f"more than one document: {text!r}"
    return doc


def leaf_commands() -> list[list[str]]:
    """Every leaf command, found the way click finds them (the root group loads its commands lazily)."""
    out = []

    def walk(group: click.Group, prefix: list[str]) -> None:
        ctx = click.Context(group, info_name=prefix[-1] if prefix else "skills")
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            assert cmd is not None, (prefix, name)
            if isinstance(cmd, click.Group):
                walk(cmd, prefix + [name])
            else:
                out.append(prefix + [name])

    walk(cli, [])
    assert len(out) > 30, out  # an empty walk would quietly parametrize nothing
    return out


# --- global options before or after the subcommand --------------------------------------------------------------


@pytest.mark.parametrize(
    "layout",
    [
        ["--json", "keys", "show", "--key", "{key}"],
        ["keys", "--json", "show", "--key", "{key}"],
        ["keys", "show", "--json", "--key", "{key}"],
        ["keys", "show", "--key", "{key}", "--json"],
    ],
    ids=["root", "group", "leaf-first", "leaf-last"],
)
def test_json_flag_anywhere_keys_show(run, key, layout):
    r = run(*[a.format(key=key) for a in layout])
    assert r.exit_code == 0, r.stderr
    assert one_json_document(r.stdout)["key_id"] == "ed25519:defe6330f78fcc11"


@pytest.mark.parametrize("position", ["root", "group", "leaf"])
def test_json_flag_anywhere_package_inspect(run, artifact, position):
    args = {"root": ["--json", "package", "inspect", "--artifact", artifact],
            "group": ["package", "--json", "inspect", "--artifact", artifact],
            "leaf": ["package", "inspect", "--artifact", artifact, "--json"]}[position]
    r = run(*args)
    assert r.exit_code == 0, r.stderr
    assert one_json_document(r.stdout)["manifest"]["skill_id"] == "examples.hello"


@pytest.mark.parametrize("position", ["root", "group", "leaf"])
def test_json_flag_anywhere_on_errors(run, tmp_path, position):
    missing = tmp_path / "missing.palyra-skill"
    args = {"root": ["--json", "package", "verify", "--artifact", missing],
            "group": ["package", "--json", "verify", "--artifact", missing],
            "leaf": ["package", "verify", "--artifact", missing, "--json"]}[position]
    r = run(*args)
    assert r.exit_code == 6
    assert one_json_document(r.stdout)["error"]["code"] == "file_not_found"


def test_global_state_options_accepted_in_every_position(run, tmp_path, key):
    home = tmp_path / "h"
    for args in (
        ["--home", home, "--journal", tmp_path / "j.db", "--actor", "user:a", "keys", "show", "--key", key],
        ["keys", "--home", home, "--actor", "user:a", "show", "--key", key, "--journal", tmp_path / "j.db"],
        ["keys", "show", "--key", key, "--home", home, "--journal", tmp_path / "j.db", "--actor", "user:a"],
    ):
        r = run(*args)
        assert r.exit_code == 0, (args, r.stderr)


def test_home_after_the_subcommand_selects_the_state(run, tmp_path):
    a, b = tmp_path / "home-a", tmp_path / "home-b"
    r = run("trust", "allow", "acme", PUB05_HEX, "--reason", "test", "--home", a, "--json")
    assert r.exit_code == 0, r.stderr
    listed = lambda *args: one_json_document(run(*args).stdout)["publishers"]  # noqa: E731
    assert [p["publisher"] for p in listed("--home", a, "trust", "list", "--json")] == ["acme"]
    assert [p["publisher"] for p in listed("trust", "--home", a, "list", "--json")] == ["acme"]
    assert [p["publisher"] for p in listed("trust", "list", "--json", "--home", a)] == ["acme"]
    assert listed("trust", "list", "--json", "--home", b) == []


def test_home_flag_overrides_environment(run, tmp_path):
    a, b = tmp_path / "home-a", tmp_path / "home-b"
    assert run("trust", "allow", "acme", PUB05_HEX, "--reason", "t", env={"SKILLS_HOME": str(a)}).exit_code == 0
    r = run("trust", "list", "--json", "--home", b, env={"SKILLS_HOME": str(a)})
    assert one_json_document(r.stdout)["publishers"] == []
    r = run("trust", "list", "--json", env={"SKILLS_HOME": str(a)})
    assert [p["publisher"] for p in one_json_document(r.stdout)["publishers"]] == ["acme"]


# --- --json on every command: exactly one JSON document ---------------------------------------------------------


@pytest.mark.parametrize("command", leaf_commands(), ids=" ".join)
@pytest.mark.parametrize("where", ["before", "after"])
def test_every_command_prints_one_json_document(run, tmp_path, command, where):
    """With no arguments a command either succeeds or fails (usage or domain error); either way stdout
    carries exactly one JSON document and there is no traceback."""
    home = ["--home", tmp_path / "h"]
    args = ["--json", *home, *command] if where == "before" else [*command, "--json", *home]
    r = run(*args)
    doc = one_json_document(r.stdout)
    assert isinstance(doc, (dict, list))
    assert "Traceback" not in r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    if r.exit_code != 0:
        assert set(doc) == {"error"}
        assert set(doc["error"]) == {"code", "message", "details"}
        assert r.exit_code == exit_code_for(doc["error"]["code"])


@pytest.mark.parametrize("command", leaf_commands(), ids=" ".join)
def test_every_command_failure_is_reported_without_traceback(run, tmp_path, command):
    """Without --json: nothing on stdout for a failure, no traceback, and a domain failure is exactly
    one ``error[<code>]: message`` line (usage errors are covered by test_usage_error_has_the_error_line)."""
    r = run(*command, "--home", tmp_path / "h")
    if r.exit_code == 0:
        return
    assert "Traceback" not in r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.stdout == ""
    if r.exit_code != 2:
        lines = r.stderr.splitlines()
        assert len([ln for ln in lines if ln.startswith("error[")]) == 1, r.stderr


# --- error format -------------------------------------------------------------------------------------------------


def test_domain_error_format_plain(run, tmp_path):
    r = run("package", "inspect", "--artifact", tmp_path / "nope")
    assert r.exit_code == 6
    assert r.stdout == ""
    assert r.stderr == f"error[file_not_found]: file not found: {tmp_path / 'nope'}\n"


def test_domain_error_format_json(run, tmp_path):
    r = run("package", "inspect", "--artifact", tmp_path / "nope", "--json")
    assert r.exit_code == 6
    assert one_json_document(r.stdout) == {
        "error": {"code": "file_not_found", "message": f"file not found: {tmp_path / 'nope'}",
                  "details": {"path": str(tmp_path / "nope")}}
    }
    assert r.stderr == f"error[file_not_found]: file not found: {tmp_path / 'nope'}\n"


def test_usage_error_json_document(run):
    r = run("package", "inspect", "--json")
    assert r.exit_code == 2
    err = one_json_document(r.stdout)["error"]
    assert err["code"] == "usage_error"
    assert "--artifact" in err["message"]


def test_usage_error_has_the_error_line(run):
    r = run("package", "inspect")
    assert r.exit_code == 2
    assert r.stdout == ""
    assert any(ln.startswith("error[usage_error]: ") and "--artifact" in ln for ln in r.stderr.splitlines()), r.stderr


def test_unknown_command_is_usage(run):
    r = run("--json", "frobnicate")
    assert r.exit_code == 2
    assert one_json_document(r.stdout)["error"]["code"] == "usage_error"


def test_unknown_option_is_usage(run, key):
    r = run("keys", "show", "--key", key, "--bogus", "--json")
    assert r.exit_code == 2
    assert one_json_document(r.stdout)["error"]["code"] == "usage_error"


# --- exit codes -----------------------------------------------------------------------------------------------------

ARTIFACT_KINDS = [
    "manifest_parse", "manifest_validation", "artifact_too_large", "artifact_too_many_entries",
    "artifact_entry_too_large", "missing_artifact_entry", "duplicate_artifact_entry", "invalid_artifact_path",
    "invalid_sbom", "invalid_provenance", "payload_hash_mismatch", "signature_verification_failed",
    "unsupported_protocol_major", "unsupported_runtime_version", "runtime_version_above_supported_maximum", "zip",
    "serialization",
]
TRUST_KINDS = ["untrusted_publisher", "trusted_publisher_key_mismatch", "tofu_key_mismatch"]


@pytest.mark.parametrize("code", ARTIFACT_KINDS)
def test_artifact_kinds_exit_3(code):
    assert exit_code_for(code) == 3


@pytest.mark.parametrize("code", TRUST_KINDS)
def test_trust_kinds_exit_4(code):
    assert exit_code_for(code) == 4


@pytest.mark.parametrize(
    "code, status",
    [("version_conflict", 3), ("downgrade_refused", 3), ("registry_error", 3), ("not_installed", 6),
     ("tool_not_found", 6), ("not_active", 7), ("capability_denied", 7), ("execution_timed_out", 8),
     ("fuel_exhausted", 8), ("memory_limit_exceeded", 8), ("trap", 8), ("invalid_output", 8),
     ("journal_tampered", 9), ("concurrency_conflict", 9), ("usage_error", 2)],
)
def test_ledger_codes_exit_status(code, status):
    assert exit_code_for(code) == status


def test_every_mapped_status_is_in_the_table():
    assert set(EXIT_CODES.values()) <= set(range(0, 10))
    assert exit_code_for("no_such_code_ever") == 1


def _skills(*args, env_extra=None, input=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([SKILLS, *map(str, args)], capture_output=True, text=True, env=env, input=input, timeout=60)


def test_subprocess_exit_codes(tmp_path, key):
    home = {"SKILLS_HOME": str(tmp_path / "home")}
    out = tmp_path / "a.palyra-skill"
    ok = _skills("package", "build", "--manifest", EXAMPLE / "skill.toml", "--module", EXAMPLE / "modules" / "echo.wasm",
                 "--module", EXAMPLE / "modules" / "wordcount.wasm", "--output", out, "--signing-key-file", key, env_extra=home)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.palyra-skill"
    bad.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty archive: no skill.toml
    cases = [
        (["package", "inspect", "--artifact", out], 0, None),
        (["package", "inspect"], 2, None),
        (["package", "inspect", "--artifact", bad], 3, "missing_artifact_entry"),
        (["package", "verify", "--artifact", out], 4, "untrusted_publisher"),
        (["package", "inspect", "--artifact", tmp_path / "none"], 6, "file_not_found"),
    ]
    for args, status, code in cases:
        p = _skills(*args, env_extra=home)
        assert p.returncode == status, (args, p.stderr)
        assert "Traceback" not in p.stderr
        if code:
            assert any(ln.startswith(f"error[{code}]: ") for ln in p.stderr.splitlines()), p.stderr


# --- skills --version -------------------------------------------------------------------------------------------------


def expected_versions() -> dict:
    """What --version must report, computed independently (importlib.metadata, the constants)."""
    libraries = {name: importlib.metadata.version(name) for name in ("wasmtime", "eventsourcing", "cryptography")}
    return {"engine_version": ENGINE_VERSION, "runtime_version": RUNTIME_VERSION, "protocol_major": PROTOCOL_MAJOR,
            "libraries": libraries, "python": platform.python_version()}


def expected_version_lines() -> list[str]:
    v = expected_versions()
    return [f"skills {ENGINE_VERSION} (runtime {RUNTIME_VERSION}, protocol major {PROTOCOL_MAJOR})",
            *(f"{name} {version}" for name, version in v["libraries"].items()), f"Python {v['python']}"]


def test_version_human(run):
    r = run("--version")
    assert r.exit_code == 0
    assert r.stdout.splitlines() == expected_version_lines()


def test_version_subprocess_human_and_json():
    p = _skills("--version")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == expected_version_lines()
    assert p.stderr == ""
    for args in (["--json", "--version"], ["--version", "--json"]):
        p = _skills(*args)
        assert p.returncode == 0
        assert one_json_document(p.stdout) == expected_versions()


@pytest.mark.parametrize("args", [["--json", "--version"], ["--version", "--json"]], ids=["json-first", "json-last"])
def test_version_json_in_process(run, args):
    """The JSON decision must come from the arguments given to the command, not from the process's sys.argv."""
    r = run(*args)
    assert r.exit_code == 0
    assert one_json_document(r.stdout) == expected_versions()


@pytest.mark.parametrize("name", ["wasmtime", "eventsourcing", "cryptography", "click", "msgspec", "sqlite-utils",
                                  "SQLite_Utils", "typing_extensions", "pytest"])
def test_distribution_version_agrees_with_importlib_metadata(name):
    from skill_ledger.versions import distribution_version

    assert distribution_version(name) == importlib.metadata.version(name)


def test_distribution_version_reads_dist_info_and_matches_whole_names(tmp_path):
    from skill_ledger.versions import distribution_version, normalize

    def dist(directory, name, metadata):
        d = directory / name
        d.mkdir(parents=True)
        (d / "METADATA").write_text(metadata)

    first, second = tmp_path / "first", tmp_path / "second"
    dist(first, "eventsourcing_django-0.4.dist-info", "Name: eventsourcing-django\nVersion: 0.4\n")
    dist(first, "Foo.Bar-1.0.dist-info", "Metadata-Version: 2.1\nName: Foo.Bar\n\nVersion: 9 (in the body)\n")
    dist(second, "eventsourcing-9.9.9.dist-info", "Metadata-Version: 2.1\nName: eventsourcing\nVersion: 9.9.9\n\nbody")
    dist(second, "foo_bar-2.0.dist-info", "Name: foo_bar\nversion:  2.0 \n")
    path = [str(tmp_path / "missing"), str(tmp_path / "a-file.zip"), str(first), str(second)]
    (tmp_path / "a-file.zip").write_bytes(b"PK")
    assert distribution_version("eventsourcing", path) == "9.9.9"  # not eventsourcing_django's
    assert distribution_version("eventsourcing-django", path) == "0.4"
    assert distribution_version("foo-bar", path) == "2.0"  # a Version only in the body is no header
    assert distribution_version("wasmtime", path) is None
    assert normalize("Foo._-Bar") == normalize("foo-bar") == "foo-bar"


def test_python_m_skill_ledger_is_the_cli():
    p = subprocess.run([sys.executable, "-m", "skill_ledger", "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == expected_version_lines()


# --- the command table: lazy loading, completeness, what start-up imports -----------------------------------------


def test_every_command_module_command_is_in_the_root_table():
    """Each top-level command defined under cli/commands (a command, or a group with its subcommands) is
    listed in the root group's table, and the table's entry resolves to that very object."""
    import importlib
    import pkgutil

    import skill_ledger.cli.commands as package
    from skill_ledger.cli.main import COMMANDS

    ctx = click.Context(cli, info_name="skills")
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        defined = [v for v in vars(module).values() if isinstance(v, click.Command)]
        nested = {id(sub) for g in defined if isinstance(g, click.Group) for sub in g.commands.values()}
        for cmd in defined:
            if id(cmd) not in nested:
                found[cmd.name] = cmd
    assert set(found) == set(COMMANDS), set(found) ^ set(COMMANDS)
    for name, cmd in found.items():
        assert cli.get_command(ctx, name) is cmd
    assert cli.list_commands(ctx) == sorted(COMMANDS)


def test_help_lists_every_command(run):
    from skill_ledger.cli.main import COMMANDS

    r = run("--help")
    assert r.exit_code == 0
    listed = r.stdout.split("Commands:\n", 1)[1]
    assert [line.split()[0] for line in listed.splitlines() if line.startswith("  ") and not line.startswith("   ")] \
        == sorted(COMMANDS)


def test_a_wrong_table_entry_is_a_bug_not_a_silent_other_command():
    from skill_ledger.cli.base import SkillsGroup

    group = SkillsGroup(name="skills", lazy_commands={"run": "skill_ledger.cli.commands.run:secret"})
    with pytest.raises(RuntimeError, match="is not the 'run' command"):
        group.get_command(click.Context(group), "run")
    assert group.get_command(click.Context(group), "nope") is None


HEAVY = ("wasmtime", "eventsourcing", "cryptography", "jsonschema", "jsonschema_rs", "cyclonedx", "psycopg", "sqlite_utils")


def _imported_after(args: list[str]) -> set[str]:
    """The modules a fresh interpreter has imported after running ``skills ARGS``."""
    code = ("import sys\nfrom skill_ledger.cli.main import cli\n"
            "cli.main(sys.argv[1:], prog_name='skills', standalone_mode=False)\n"
            "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n")
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return set(p.stderr.splitlines()[-1].split())


def _packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_version_imports_no_library_and_no_command():
    imported = _imported_after(["--version"])
    assert not _packages(imported) & {*HEAVY, "msgspec", "sqlite3"}, imported
    assert "importlib.metadata" not in imported
    assert not [m for m in imported if m.startswith("skill_ledger.cli.commands.")]


def test_version_from_the_console_script_imports_not_even_click():
    """``skills --version`` is answered by the console script before click is imported (cli/entry.py);
    test_version_subprocess_human_and_json checks it prints what the click path prints."""
    code = ("import sys\nfrom skill_ledger.cli.entry import main\nmain()\n"
            "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n")
    for args in (["--version"], ["--version", "--json"]):
        p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        imported = _packages(set(p.stderr.splitlines()[-1].split()))
        assert not imported & {*HEAVY, "click", "msgspec", "sqlite3"}, imported


def test_everything_but_version_goes_to_click():
    p = _skills("--version", "list")  # not a bare version probe: click parses it (and --version wins, eagerly)
    assert p.returncode == 0
    assert p.stdout.splitlines() == expected_version_lines()
    p = _skills("--versio")
    assert p.returncode == 2 and "--version" in p.stderr  # click's "did you mean"


def test_help_of_every_command_imports_no_heavy_library():
    """Listing the commands imports every command module: none of them may import a heavy library at
    module level (each imports what it needs when it runs)."""
    imported = _imported_after(["--help"])
    assert not _packages(imported) & set(HEAVY), _packages(imported) & set(HEAVY)


# --- shell completion (click's) -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shell,marker", [("bash", "complete -o nosort -F _skills_completion skills"),
                                          ("zsh", "compdef _skills_completion skills"),
                                          ("fish", "complete --no-files --command skills")])
def test_completion_script_is_produced(shell, marker):
    p = _skills(env_extra={"_SKILLS_COMPLETE": f"{shell}_source"})
    assert p.returncode == 0, p.stderr
    assert marker in p.stdout
    assert "_SKILLS_COMPLETE" in p.stdout  # the script calls back into skills for the candidates


@pytest.mark.parametrize("words,cword,expected", [
    ("skills ru", 1, {"plain,run"}),
    ("skills in", 1, {"plain,index", "plain,info", "plain,install"}),
    ("skills trust a", 2, {"plain,allow"}),
    ("skills --home /tmp/x secret l", 4, {"plain,list"}),
])
def test_completion_candidates(words, cword, expected):
    p = _skills(env_extra={"_SKILLS_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)})
    assert p.returncode == 0, p.stderr
    assert set(p.stdout.split()) == expected
