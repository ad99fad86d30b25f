"""The MCP server: ``tools/list`` from the catalog, ``tools/call`` through the runner, and
``notifications/tools/list_changed`` when the served tools change.

Built on the SDK's low-level ``Server`` (our schemas are the manifests' own, passed through
exactly, and every result is built here). Both protocol eras are served:

* handshake-era connections (``initialize``, up to 2025-11-25: what desktop and IDE clients
  speak) get ``notifications/tools/list_changed`` on their connection's standalone channel
  (stdio's stdout, HTTP's GET stream);
* 2026-07-28 connections hear about changes through ``subscriptions/listen`` (the SDK's
  ``ListenHandler`` over an in-memory bus).

Changes are noticed two ways, both cheap (``Catalog.refresh`` compares the journal's head
first): a poll every ``poll_interval`` seconds, and before every call (the call's worker
thread refreshes the catalog, then resolves the name, then runs it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from skill_ledger import __version__

from .calls import CallPool, as_error, error_result
from .catalog import Catalog
from .names import client_actor

__all__ = ["DEFAULT_POLL_INTERVAL", "SkillsMcp"]

log = logging.getLogger("skill_ledger.mcp")

DEFAULT_POLL_INTERVAL = 1.0
INSTRUCTIONS = ("Tools of the skills installed in this skill-ledger home. Every call is gated like `skills run`: "
                "a version that is quarantined, disabled, removed or no longer eligible is refused, and the refusal "
                "is recorded in the journal. Tool errors read `error[<code>]: <message>`.")


class _Server(Server[Any]):
    """The SDK's low-level server, advertising ``tools.listChanged`` on every transport (the
    streamable-HTTP manager builds its initialization options without arguments)."""

    def create_initialization_options(self, notification_options: NotificationOptions | None = None,
                                      experimental_capabilities: dict[str, dict[str, Any]] | None = None,
                                      extensions: dict[str, dict[str, Any]] | None = None) -> InitializationOptions:
        return super().create_initialization_options(notification_options or NotificationOptions(tools_changed=True),
                                                     experimental_capabilities, extensions)


class _Unknown(Exception):
    """A call of a name this server never served."""


class SkillsMcp:
    """One server process: the catalog, the call pool, the connections to notify."""

    def __init__(self, catalog: Catalog, pool: CallPool, *, poll_interval: float = DEFAULT_POLL_INTERVAL) -> None:
        self.catalog = catalog
        self.pool = pool
        self.poll_interval = poll_interval
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        self._connections: dict[int, Any] = {}  # handshake-era connections, until they close
        self._last_poll_problem: str | None = None
        self._warned_no_connection = False
        self.server = _Server("skill-ledger", version=__version__, instructions=INSTRUCTIONS,
                              on_list_tools=self._list_tools, on_call_tool=self._call_tool,
                              on_subscriptions_listen=self.listen)
        self.server.add_notification_handler("notifications/initialized", types.NotificationParams,
                                             self._initialized)

    # --- handlers ---------------------------------------------------------------------------

    async def _initialized(self, ctx: Any, params: Any) -> None:
        self._remember(ctx)

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        self._remember(ctx)
        if await self._refresh():
            await self.announce()
        return types.ListToolsResult(tools=self.catalog.tools())

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        self._remember(ctx)
        info = ctx.session.client_params.client_info if ctx.session.client_params is not None else None
        actor = client_actor(info.name if info is not None else None)
        arguments = params.arguments if params.arguments is not None else {}
        try:
            changed, result = await asyncio.wrap_future(self.pool.submit(self._call, params.name, arguments, actor))
        except _Unknown:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}") from None
        if changed:
            await self.announce()
        log.debug("call %s by %s: %s", params.name, actor, "error" if result.is_error else "ok")
        return result

    def _call(self, name: str, arguments: dict[str, Any], actor: str) -> tuple[bool, types.CallToolResult]:
        """In a worker thread: catch the catalog up, resolve the name, run it."""
        try:
            changed = self.catalog.refresh()
        except Exception as e:  # noqa: BLE001 - the journal or the views could not be read: this call fails
            return False, error_result(as_error(e))
        target = self.catalog.target(name)
        if target is None:
            raise _Unknown(name)
        result = self.pool.run(target, arguments, actor)
        if result.is_error and not target.listed:
            log.info("call of %s (no longer listed) by %s: %s", name, actor, result.content[0].text)
        return changed, result

    # --- keeping clients current ---------------------------------------------------------------

    def _remember(self, ctx: Any) -> None:
        """Keep a handshake-era connection to notify, until it closes.

        The SDK hands handlers a per-request ``ServerSession``; its connection (the standalone
        channel, and the teardown stack that tells us when it closes) is not public API in
        mcp 2.3. Should a later 2.x move it, this says so once on stderr, and the end-to-end
        tests that wait for the notification fail."""
        session = ctx.session
        if session.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return  # 2026-07-28: changes reach these clients through subscriptions/listen
        connection = getattr(session, "_connection", None)
        if connection is None or not hasattr(connection, "exit_stack"):
            if not self._warned_no_connection:
                log.warning("this MCP SDK does not expose the client's connection: clients will not be told "
                            "when the tool list changes (their calls are still gated)")
                self._warned_no_connection = True
            return
        if id(connection) in self._connections:
            return
        key = id(connection)
        self._connections[key] = connection
        connection.exit_stack.callback(self._connections.pop, key, None)

    async def _refresh(self) -> bool:
        return await anyio.to_thread.run_sync(self.catalog.refresh)

    async def announce(self) -> None:
        """Tell every client that the tool list changed."""
        log.info("the served tools changed (journal position %s): %d tools; notifying clients",
                 self.catalog.position, len(self.catalog.tools()))
        for connection in list(self._connections.values()):
            await connection.send_tool_list_changed()  # best effort: never raises
        await self.bus.publish(ToolsListChanged())

    async def watch(self) -> None:
        """Poll the journal's head and announce changes, for the life of the server."""
        while True:
            await anyio.sleep(self.poll_interval)
            try:
                changed = await self._refresh()
            except Exception as e:  # noqa: BLE001 - a journal that is briefly unreadable must not stop serving
                problem = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
                if problem != self._last_poll_problem:
                    log.warning("cannot read the journal to refresh the tool list: %s", problem)
                self._last_poll_problem = problem
                continue
            if self._last_poll_problem is not None:
                log.warning("the journal is readable again")
                self._last_poll_problem = None
            if changed:
                await self.announce()
