"""``skills mcp``: the installed skills' tools served over the Model Context Protocol (issue 16).

Any MCP client (a desktop assistant, an IDE agent, an agent framework) can list and call the
tools of the current, active and eligible skill versions; every call goes through the runner's
gate exactly like ``skills run``. ``docs/mcp.md`` is the user's guide.

* ``names``: the MCP tool name of a skill's tool, and the actor a client's calls are recorded as;
* ``catalog``: the served tools, read from the views and refreshed when the journal moves;
* ``calls``: the worker threads and their runners, and the MCP results of runs and refusals;
* ``server``: the SDK's low-level server with our handlers and the list-changed notifications;
* ``transports``: stdio, and streamable HTTP behind a bearer token.
"""

from .transports import DEFAULT_PORT, BearerToken, is_loopback, read_token_file, serve

__all__ = ["DEFAULT_PORT", "BearerToken", "is_loopback", "read_token_file", "serve"]
