"""``skills mcp``: serve the installed skills' tools to MCP clients (``docs/mcp.md``).

The MCP SDK, the runner and wasmtime are imported inside the command function only, so no
other command pays for them.
"""

from __future__ import annotations

import click

from skill_ledger.cli.base import global_options, obj


@click.command("mcp")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True,
              help="stdio: the client starts this command and speaks on its stdin/stdout; "
                   "http: the SDK's streamable HTTP at http://HOST:PORT/mcp.")
@click.option("--host", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="HTTP: the address to bind. Anything but loopback requires --token-file.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, metavar="N",
              help="HTTP: the port (default 8765; 0 picks a free one, printed on stderr).")
@click.option("--skill", "skills", multiple=True, metavar="SKILL_ID",
              help="Serve only this skill's tools (repeatable).")
@click.option("--publisher", "publishers", multiple=True, metavar="PUBLISHER",
              help="Serve only the tools of this publisher's skills (repeatable).")
@click.option("--token-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="HTTP: require 'Authorization: Bearer <token>', the token read from FILE (mode 0600).")
@global_options
def mcp(transport: str, host: str, port: int | None, skills: tuple[str, ...], publishers: tuple[str, ...],
        token_file: str | None) -> None:
    """Serve the tools of the current, active and eligible skill versions over MCP.

    One MCP tool per skill tool (named after the tool id, dots as underscores). Every call is
    gated like `skills run`: a version quarantined, disabled or removed (by any process) is
    refused on its next call and the refusal recorded, with the client's name as the actor
    (mcp:<client name>). Clients are told when the tool list changes. Logs go to stderr.
    """
    from skill_ledger.domain.errors import ManifestValidationError, UsageError
    from skill_ledger.domain.grammars import skill_id as check_skill_id
    from skill_ledger.domain.text import trim

    if obj().as_json:
        raise UsageError("skills mcp speaks the Model Context Protocol on its own: --json does not apply")
    if transport == "stdio" and (port is not None or token_file is not None or host != "127.0.0.1"):
        raise UsageError("--host, --port and --token-file apply to --transport http only")
    for s in skills:
        try:
            check_skill_id(trim(s))
        except ManifestValidationError as e:  # the grammar's own error, as a usage error
            raise UsageError(f"invalid --skill {s!r}: {e.detail}") from None

    from skill_ledger.adapters.mcp import DEFAULT_PORT, read_token_file, serve

    token = read_token_file(token_file) if token_file is not None else None
    serve(obj().settings(), transport=transport, host=host, port=DEFAULT_PORT if port is None else port,
          skills=frozenset(trim(s) for s in skills), publishers=frozenset(trim(p) for p in publishers if trim(p)),
          token=token)


COMMANDS = [mcp]
