"""The ``skills`` command."""

from __future__ import annotations

import click

from skill_ledger.cli.commands.keys import keys
from skill_ledger.cli.commands.package import package

from .base import CliContext, SkillsGroup, global_options, version_option
from .commands import audit, demo, lifecycle, read, trust
from .commands import index as index_commands
from .commands import journal as journal_commands
from .commands import run as run_commands


@click.group(cls=SkillsGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


for command in [keys, package, *lifecycle.COMMANDS, *audit.COMMANDS, *trust.COMMANDS, *read.COMMANDS,
                *journal_commands.COMMANDS, *index_commands.COMMANDS, *demo.COMMANDS, *run_commands.COMMANDS]:
    cli.add_command(command)


def main() -> None:
    cli.main(prog_name="skills")


if __name__ == "__main__":
    main()
