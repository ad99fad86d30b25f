"""``skills run`` and ``skills secret set|list|remove``.

The runner (and with it wasmtime and jsonschema) is imported inside the command function only,
so no other command pays for it.
"""

from __future__ import annotations

import sys

import click

from skill_ledger.cli.base import SKILL_ID, SubGroup, global_options, obj
from skill_ledger.cli.output import emit, kv, notice, safe, table, terminal_width, to_jsonable

MAX_INPUT_FILE_BYTES = 16 * 1024 * 1024


@click.command("run")
@click.argument("tool_id")
@click.option("--input", "input_json", metavar="JSON", help="The tool's input, a JSON document (default: {}).")
@click.option("--input-file", type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE",
              help="Read the input JSON from FILE ('-' for stdin).")
@click.option("--skill", "skill_id", type=SKILL_ID, metavar="SKILL_ID",
              help="The skill that declares the tool (when several do).")
@click.option("--version", "version", metavar="V", help="The skill version (default: the current one).")
@click.option("--timeout-ms", type=click.IntRange(min=1), metavar="N",
              help="Wall-clock limit; the effective one is min(this, the manifest's quotas.wall_clock_timeout_ms).")
@global_options
def run(tool_id: str, input_json: str | None, input_file: str | None, skill_id: str | None, version: str | None,
        timeout_ms: int | None) -> None:
    """Run a tool of the current (or given) version of the skill that declares it.

    The views find the tool; the journal decides: refused unless the version is active and
    eligible and its key trusted (exit 7, recorded as skill.execution_denied); views that
    disagree with the journal are rebuilt and the call refused (projection_drift, exit 9); a
    stored artifact that no longer matches its digest is quarantined (exit 5); a trap,
    timeout, quota or bad output exits 8.
    """
    from skill_ledger.domain.errors import UsageError

    if input_json is not None and input_file is not None:
        raise UsageError("give at most one of --input JSON and --input-file FILE")
    data: str | bytes | None = input_json
    if input_file == "-":
        data = sys.stdin.buffer.read(MAX_INPUT_FILE_BYTES + 1)
        if len(data) > MAX_INPUT_FILE_BYTES:
            raise UsageError(f"the input on stdin is larger than {MAX_INPUT_FILE_BYTES} bytes")
    elif input_file is not None:
        data = _read_input_file(input_file)

    from skill_ledger.adapters.runner import run_tool

    result = run_tool(obj().settings(), tool_id, data, skill_id=skill_id, version=version, timeout_ms=timeout_ms,
                      notify=notice)

    def human(d: dict) -> None:
        from skill_ledger.cli.output import json_text, safe_lines

        kv([("tool", d["tool_id"]), ("skill", f"{d['skill_id']} {d['version']}"), ("abi", d["abi"]),
            ("exit_code", d["exit_code"]), ("duration", f"{d['duration_ms']:.3f} ms"),
            ("fuel_consumed", d["fuel_consumed"])])
        click.echo("output:")
        click.echo(safe_lines(json_text(d["output"])))
        for entry in d["log"]:  # a guest's words: escaped, never obeyed by the terminal
            click.echo(f"[{safe(entry['source'])} {safe(entry['level'])}] {safe(entry['message'])}", err=True)

    emit(obj().as_json, to_jsonable(result), human)


def _read_input_file(path: str) -> bytes:
    """The input file's bytes. Opened without blocking and refused unless it is a regular file
    (a FIFO would otherwise hold the command until something writes to it): ``io``, exit 3."""
    from skill_ledger.adapters.storage.blobs import NotRegularFile, open_regular
    from skill_ledger.domain.errors import FileNotFound, IoError, UsageError

    try:
        with open_regular(path, follow_symlinks=True) as f:
            data = f.read(MAX_INPUT_FILE_BYTES + 1)
    except FileNotFoundError:
        raise FileNotFound(path) from None
    except NotRegularFile as e:
        raise IoError(f"{path} is {e.kind}, not a regular file") from None
    except PermissionError:
        raise IoError(f"permission denied: {path}") from None
    except OSError as e:
        raise IoError(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_INPUT_FILE_BYTES:
        raise UsageError(f"{path} is larger than {MAX_INPUT_FILE_BYTES} bytes")
    return data


# --- secrets ---------------------------------------------------------------------------------

SCOPE_HELP = """SCOPE is one of:

\b
  global              every skill that declares the key (capabilities.secrets)
  skill:<skill_id>    one skill's own secrets (e.g. skill:examples.hello)
  principal:<id>      the secrets of one principal
  channel:<id>        the secrets of one channel

KEY is an identifier ([a-z0-9._:-])."""


@click.group("secret", cls=SubGroup)
def secret() -> None:
    """The local secret source (<home>/secrets.json, mode 0600) that tools read with secret_get.

    Values are read from stdin and never printed, logged or journaled; each set and removal is
    recorded as an event with the scope and key names only (a skill's own scope on the skill's
    stream, shown by `skills history`).
    """


def _store():
    from skill_ledger.adapters.storage.secrets import SecretStore

    return SecretStore(obj().settings().secrets_path)


REASON = click.option("--reason", metavar="TEXT", help="Why (recorded on the event).")


def _session():
    from skill_ledger.adapters.usecases.session import ledger_session

    return ledger_session(obj().settings(), notify=notice)


@secret.command("set", epilog=SCOPE_HELP)
@click.argument("scope")
@click.argument("key")
@REASON
@global_options
def secret_set(scope: str, key: str, reason: str | None) -> None:
    """Store the value of SCOPE/KEY, read from stdin (a terminal prompts without echo)."""
    from skill_ledger.adapters.storage.secrets import check_name
    from skill_ledger.adapters.usecases.secrets import set_secret
    from skill_ledger.domain.errors import UsageError

    scope, key = check_name(scope, key)  # before prompting for a value
    if sys.stdin.isatty():
        value = click.prompt(f"value for {scope}/{key}", hide_input=True, err=True)
    else:
        raw = sys.stdin.buffer.read(64 * 1024 + 3)
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("the secret value on stdin is not UTF-8") from None
        if value.endswith("\r\n"):
            value = value[:-2]
        elif value.endswith("\n"):
            value = value[:-1]
    with _session() as ledger:
        result = set_secret(ledger, _store(), scope, key, value, reason)
    data = {"scope": result.scope, "key": result.key, "stored": True, "replaced": result.replaced,
            "positions": result.positions}
    emit(obj().as_json, data, lambda d: click.echo(
        f"stored {safe(d['scope'])}/{safe(d['key'])}" + (" (replaced the previous value)" if d["replaced"] else "")
        + f"; journal position {', '.join(map(str, d['positions']))}"))


@secret.command("list")
@click.option("--wide", is_flag=True, help="Do not cut long cells to fit the terminal.")
@global_options
def secret_list(wide: bool) -> None:
    """The stored secret names (scope and key; never values)."""
    names = [{"scope": s, "key": k} for s, k in _store().names()]

    def human(d: dict) -> None:
        if not d["secrets"]:
            click.echo("no secrets stored")
        table(["scope", "key"], [[e["scope"], e["key"]] for e in d["secrets"]],
              width=None if wide else terminal_width())

    emit(obj().as_json, {"count": len(names), "secrets": names}, human)


@secret.command("remove", epilog=SCOPE_HELP)
@click.argument("scope")
@click.argument("key")
@REASON
@global_options
def secret_remove(scope: str, key: str, reason: str | None) -> None:
    """Delete SCOPE/KEY from the secret source (recorded when there was a value)."""
    from skill_ledger.adapters.storage.secrets import check_name
    from skill_ledger.adapters.usecases.secrets import remove_secret

    scope, key = check_name(scope, key)
    with _session() as ledger:
        result = remove_secret(ledger, _store(), scope, key, reason)
    data = {"scope": result.scope, "key": result.key, "removed": result.changed, "positions": result.positions}
    emit(obj().as_json, data, lambda d: click.echo(
        f"{'removed' if d['removed'] else 'no such secret'}: {safe(d['scope'])}/{safe(d['key'])}"
        + (f"; journal position {', '.join(map(str, d['positions']))}" if d["positions"] else "")))


COMMANDS = [run, secret]
