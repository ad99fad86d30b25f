"""The command framework: global options accepted before or after the subcommand, one
error renderer (``error[<code>]: message`` on stderr, plus a JSON error document on
stdout with ``--json``), and the exit-code mapping. Commands only parse, call one use
case or query, and render."""

from __future__ import annotations

import errno
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from skill_ledger.domain.errors import SkillLedgerError

from .errors import USAGE, exit_code_for

F = TypeVar("F", bound=Callable[..., Any])


class CliContext:
    """Raw global option values; turned into Settings only when a command needs state."""

    def __init__(self) -> None:
        self.as_json = False
        self.home: str | None = None
        self.journal: str | None = None
        self.actor: str | None = None
        self.command = ""
        self._settings: Any = None

    def settings(self) -> Any:
        if self._settings is None:
            from skill_ledger.adapters.settings import resolve

            self._settings = resolve(home=self.home, journal=self.journal, actor=self.actor, command=self.command)
        return self._settings


def _store(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is None or value is False:
            return
        obj = ctx.ensure_object(CliContext)
        setattr(obj, attr, value)

    return callback


def global_options(f: F) -> F:
    """``--json``, ``--home``, ``--journal``, ``--actor`` on a command (they also work on the root)."""
    options = [
        click.option("--json", "as_json", is_flag=True, default=False, expose_value=False, is_eager=True,
                     callback=_store("as_json"), help="Machine output: one JSON document on stdout."),
        click.option("--home", metavar="DIR", expose_value=False, callback=_store("home"),
                     help="State directory [env: SKILLS_HOME; default: $XDG_STATE_HOME/skill-ledger]."),
        click.option("--journal", metavar="URL", expose_value=False, callback=_store("journal"),
                     help="Event store: a SQLite path or postgresql://... [env: SKILLS_JOURNAL; default: <home>/journal.db]."),
        click.option("--actor", metavar="PRINCIPAL", expose_value=False, callback=_store("actor"),
                     help="Principal recorded on appended events [env: SKILLS_ACTOR; default: user:<login>]."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def obj() -> CliContext:
    return click.get_current_context().ensure_object(CliContext)


def _json_text(value: Any) -> str:
    from .output import json_text as render  # msgspec: imported by the commands that print JSON

    return render(value)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from skill_ledger.versions import version_info, version_text

    info = version_info()
    click.echo(_json_text(info) if ctx.ensure_object(CliContext).as_json else version_text(info))
    ctx.exit(0)


def version_option(f: F) -> F:
    return click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
                        help="Show the versions of skill-ledger, of the runtime used for compat checks, of the "
                             "protocol, and of wasmtime, eventsourcing and cryptography.")(f)


def render_error(error: SkillLedgerError, as_json: bool) -> int:
    click.echo(f"error[{error.code}]: {error.message}", err=True)
    if as_json:
        click.echo(_json_text({"error": error.to_dict()}))
    return exit_code_for(error.code, error.details)


_FULL_OR_READ_ONLY = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _storage_error(e: Exception) -> SkillLedgerError | None:
    """A database failure (SQLite or the event store) as a clean error, or None for anything else."""
    import sqlite3

    from skill_ledger.domain.errors import ConcurrencyConflict, JournalUnavailable

    if isinstance(e, OSError) and e.errno in _FULL_OR_READ_ONLY:
        from skill_ledger.domain.errors import StorageError

        where = f" ({e.filename})" if e.filename else ""
        return StorageError(f"our state could not be written{where}: {e.strerror or e} (free disk space, or make "
                            "the home writable, and try again)")
    is_storage = isinstance(e, sqlite3.Error) or type(e).__module__.startswith("eventsourcing")
    if not is_storage:
        return None
    text = str(e) or type(e).__name__
    if "locked" in text.lower() or "busy" in text.lower():
        return ConcurrencyConflict(f"the database stayed locked by another writer: {text}")
    from skill_ledger.adapters.journal.sqlite import is_storage_failure

    if is_storage_failure(e):  # a full disk or a read-only file: the environment, not the journal
        from skill_ledger.domain.errors import StorageError

        return StorageError(f"a state database could not be written: {text} (free disk space, or make the home "
                            "writable, and try again)")
    return JournalUnavailable(f"a state database failed: {text}")


class SkillsGroup(click.Group):
    """Root group: maps errors to exit codes; never shows a traceback for an expected failure.

    Its subcommands are named in a table (``name -> "module:attribute"``) and imported only when
    one is invoked, listed (``--help``) or completed, so a command pays for its own imports only.
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def _load(self, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = self.lazy_commands.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        cmd = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(cmd, click.Command) or cmd.name != cmd_name:  # a wrong table entry is a bug
            raise RuntimeError(f"{target} is not the {cmd_name!r} command")
        return cmd

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        wants_json = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
        try:
            context = CliContext()
            context.as_json = wants_json
            extra.setdefault("obj", context)
            rv = super().main(args=argv, prog_name=prog_name or "skills", complete_var=complete_var,
                              standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except SkillLedgerError as e:
            code = render_error(e, wants_json)
        except click.exceptions.Exit as e:
            code = e.exit_code
        except click.UsageError as e:
            e.show()
            click.echo(f"error[usage_error]: {e.format_message()}", err=True)
            if wants_json:
                click.echo(_json_text({"error": {"code": "usage_error", "message": e.format_message(), "details": {}}}))
            code = USAGE
        except click.ClickException as e:
            e.show()
            code = e.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            code = 1
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            code = 130
        except BrokenPipeError:
            # The reader went away (e.g. `skills journal | head`); not an error of ours.
            try:
                sys.stdout = open(os.devnull, "w")
            except OSError:
                pass
            code = 0
        except Exception as e:  # noqa: BLE001 - storage failures are not bugs; everything else re-raises
            storage = _storage_error(e)
            if storage is None:
                raise
            code = render_error(storage, wants_json)
        if not standalone_mode:
            return code
        sys.exit(code)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = self._load(cmd_name)
        if cmd is not None:
            ctx.ensure_object(CliContext).command = cmd_name
        return cmd


class SubGroup(click.Group):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            o = ctx.ensure_object(CliContext)
            o.command = f"{ctx.info_name} {cmd_name}"
        return cmd
