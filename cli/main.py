"""The ``skills`` command: the root group and the table of its subcommands.

A subcommand's module is imported only when that subcommand runs (or ``--help`` lists it, or
shell completion asks for it): ``skills --version`` imports no command module, and ``skills run``
imports the runner but not the ledger, the packager or the audit.
"""

from __future__ import annotations

import click

from .base import CliContext, SkillsGroup, global_options, version_option

_COMMANDS = "skill_ledger.cli.commands"

# name -> "module:attribute". The module path of each command's home; tests check that every
# command defined under cli/commands is listed here and that each entry resolves to it.
COMMANDS: dict[str, str] = {
    "audit": f"{_COMMANDS}.audit:audit",
    "check": f"{_COMMANDS}.read:check",
    "demo": f"{_COMMANDS}.demo:demo",
    "disable": f"{_COMMANDS}.lifecycle:disable",
    "doctor": f"{_COMMANDS}.doctor:doctor",
    "enable": f"{_COMMANDS}.lifecycle:enable",
    "history": f"{_COMMANDS}.read:history",
    "index": f"{_COMMANDS}.index:index",
    "info": f"{_COMMANDS}.read:info",
    "install": f"{_COMMANDS}.lifecycle:install",
    "journal": f"{_COMMANDS}.journal:journal",
    "keys": f"{_COMMANDS}.keys:keys",
    "list": f"{_COMMANDS}.read:list_",
    "mcp": f"{_COMMANDS}.mcp:mcp",
    "package": f"{_COMMANDS}.package:package",
    "policy": f"{_COMMANDS}.trust:policy",
    "quarantine": f"{_COMMANDS}.lifecycle:quarantine",
    "reaudit": f"{_COMMANDS}.audit:reaudit",
    "registry": f"{_COMMANDS}.registry:registry",
    "remove": f"{_COMMANDS}.lifecycle:remove",
    "rollback": f"{_COMMANDS}.lifecycle:rollback",
    "run": f"{_COMMANDS}.run:run",
    "search": f"{_COMMANDS}.search:search",
    "secret": f"{_COMMANDS}.run:secret",
    "trust": f"{_COMMANDS}.trust:trust",
    "update": f"{_COMMANDS}.registry:update",
    "verify": f"{_COMMANDS}.audit:verify",
}


@click.group(cls=SkillsGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@version_option
@global_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """skill-ledger: install, trust, audit and run signed WebAssembly skills.

    Every decision is an event in an append-only journal; every view is a
    projection of it. Exit codes: 0 ok, 1 bug, 2 usage, 3 artifact rejected,
    4 trust rejected, 5 audit failed/quarantined, 6 not found, 7 execution denied,
    8 execution failed, 9 journal integrity.
    """
    ctx.ensure_object(CliContext)


def main() -> None:
    cli.main(prog_name="skills")


if __name__ == "__main__":
    main()
