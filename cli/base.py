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
        self.interrupt_state: str | None = None
        self._settings: Any = None

    def settings(self, *, home_must_be_usable: bool = True) -> Any:
        if self._settings is None:
            from skill_ledger.adapters.settings import resolve

            self._settings = resolve(home=self.home, journal=self.journal, actor=self.actor, command=self.command,
                                     home_must_be_usable=home_must_be_usable)
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


def render_error(error: SkillLedgerError, as_json: bool, command: str = "") -> int:
    """The one error line on stderr (outside text escaped; a hint where the CLI has one for this
    command), plus the JSON error document with ``--json``; returns the exit status."""
    from .errors import hint_for
    from .output import safe

    hint = hint_for(error, command)
    click.echo(f"error[{error.code}]: {safe(error.message)}" + (f"; hint: {safe(hint)}" if hint else ""), err=True)
    if as_json:
        doc = error.to_dict()
        if hint:
            doc["hint"] = hint
        click.echo(_json_text({"error": doc}))
    return exit_code_for(error.code, error.details)


def _usage_line(e: click.UsageError, as_json: bool) -> int:
    """A click usage error as one line (its "did you mean" suggestion included), pointing at the
    command's ``--help``; never click's ``Usage:``/``Error:`` block."""
    from .output import safe

    message = e.format_message()
    where = e.ctx.command_path if e.ctx is not None else "skills"
    click.echo(f"error[usage_error]: {safe(message)} (see '{safe(where)} --help')", err=True)
    if as_json:
        click.echo(_json_text({"error": {"code": "usage_error", "message": message, "details": {}}}))
    return USAGE


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


class SuggestingGroup(click.Group):
    """A group whose unknown subcommand error suggests the nearest names, like click does for options."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                             list[str]]:
        name = args[0] if args else ""
        if args and self.get_command(ctx, name) is None and not ctx.resilient_parsing and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)


class SkillsGroup(SuggestingGroup):
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
        context = extra.setdefault("obj", CliContext())
        if not isinstance(context, CliContext):  # a caller's own object: the CLI keeps its state apart
            context = CliContext()
        context.as_json = wants_json
        try:
            try:
                rv = super().main(args=argv, prog_name=prog_name or "skills", complete_var=complete_var,
                                  standalone_mode=False, **extra)
                code = rv if isinstance(rv, int) else 0
                sys.stdout.flush()  # a reader that went away is found here, not at interpreter exit
            except SkillLedgerError as e:
                code = render_error(e, wants_json, context.command)
            except click.exceptions.Exit as e:
                code = e.exit_code
            except click.UsageError as e:
                code = _usage_line(e, wants_json)
            except click.ClickException as e:  # a parameter type's own failure (e.g. a file): input
                code = _usage_line(click.UsageError(e.format_message()), wants_json)
            except click.Abort as e:
                code = _aborted(e, context)
            except KeyboardInterrupt:
                code = _interrupted(context)
            except _ReaderGone:
                raise BrokenPipeError() from None
            except Exception as e:  # noqa: BLE001 - storage failures are not bugs; everything else re-raises
                if isinstance(e, BrokenPipeError):
                    raise
                storage = _storage_error(e)
                if storage is None:
                    raise
                code = render_error(storage, wants_json, context.command)
        except BrokenPipeError:
            code = _reader_gone()
        if not standalone_mode:
            return code
        sys.exit(code)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # click would turn it into exit 1; here it becomes a quiet exit (see main)
            raise _ReaderGone() from None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = self._load(cmd_name)
        if cmd is not None:
            ctx.ensure_object(CliContext).command = cmd_name
        return cmd


class _ReaderGone(Exception):
    """A broken pipe on our output, carried past click (which would exit 1 on it)."""


INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C

# What an interrupted command leaves, unless the command said more precisely (CliContext.interrupt_state).
DEFAULT_INTERRUPT_STATE = ("what was appended before the interrupt stays recorded and nothing is half-written "
                           "(each change is one transaction); run the command again to finish")
READ_ONLY_STATE = "nothing was changed"


def _interrupted(context: CliContext) -> int:
    """Ctrl-C: one line saying what state the command left, exit 130 (never "Aborted!", never 1)."""
    try:
        click.echo(f"interrupted: {context.interrupt_state or DEFAULT_INTERRUPT_STATE}", err=True)
    except OSError:
        pass
    return INTERRUPTED


def _aborted(e: click.Abort, context: CliContext) -> int:
    """click turns Ctrl-C (and end of input at a prompt) into ``Abort``."""
    if isinstance(e.__cause__, EOFError):
        return render_error(_usage_error("the input ended before a value was given"), context.as_json,
                            context.command)
    return _interrupted(context)


def _usage_error(message: str) -> SkillLedgerError:
    from skill_ledger.domain.errors import UsageError

    return UsageError(message)


def _reader_gone() -> int:
    """The reader of our output went away (``skills journal | head``): not an error of ours. Exit
    quietly, and point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    return 0


class SubGroup(SuggestingGroup):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            o = ctx.ensure_object(CliContext)
            o.command = f"{ctx.info_name} {cmd_name}"
        return cmd


# --- parameter types ---------------------------------------------------------------------------


class SkillIdType(click.ParamType):
    """A skill id (``artifact-format.md`` §4.2), checked as it is parsed: a malformed id is a usage
    error (exit 2) in every command, never a lookup that finds nothing."""

    name = "SKILL_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from skill_ledger.domain.errors import SkillLedgerError as Invalid
        from skill_ledger.domain.errors import UsageError
        from skill_ledger.domain.grammars import skill_id

        try:
            return skill_id(str(value))
        except Invalid:
            raise UsageError(f"invalid skill id {str(value)!r}: skill ids are dot-separated segments of "
                             "[a-z0-9_-] (e.g. examples.hello)", {"skill_id": str(value)}) from None


SKILL_ID = SkillIdType()


def skill_id_argument(required: bool = True) -> Callable[[F], F]:
    return click.argument("skill_id", type=SKILL_ID, required=required)


def reason_option(what: str = "change") -> Callable[[F], F]:
    """``--reason TEXT``, required on every state change: the journal records who did what and why."""
    return click.option("--reason", required=True, metavar="TEXT",
                        help=f"Why (recorded on the event; required for every {what}).")


def set_interrupt_state(state: str) -> None:
    """What this command leaves behind if it is interrupted from here on (said on Ctrl-C)."""
    obj().interrupt_state = state
