"""MCP names: the tool name a client sees for a skill's tool, and the actor a client's
calls are recorded under.

Tool names (``docs/mcp.md``): MCP clients and the model APIs behind them accept
``^[A-Za-z0-9_-]{1,64}$`` (the SDK's own SEP-986 check also allows dots and 128
characters; the stricter set is what every client takes). A skill's tool id is
``<publisher>.<name>`` over ``[a-z0-9._-:]``, so:

1. the base name is the tool id with every ``.`` and ``:`` replaced by ``_``
   (``examples.echo`` -> ``examples_echo``);
2. a base name that more than one served tool would get (two skills declaring the same
   tool id, or ids differing only in ``.`` / ``_``), or that is longer than 64 characters,
   is not used by any of them: each gets ``<base cut to 55>_<8 hex>``, the hex being the
   start of SHA-256 over ``skill_id NUL tool_id``;
3. should that still collide (a base name that happens to end like a suffix), the colliding
   tools take 16 hex digits instead; a tool that would still collide is not served.

So a name depends only on the tool id, its skill id and whether another served tool claims
the same base name. Two tools never share a name, and a name never silently moves to another
skill's tool: when a second skill starts declaring a tool id, the bare name disappears (the
clients are told the list changed) rather than starting to call the newcomer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

__all__ = ["MAX_NAME", "client_actor", "tool_names"]

MAX_NAME = 64
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]")
_NOT_ACTOR = re.compile(r"[^A-Za-z0-9._-]")
MAX_CLIENT_NAME = 64

Key = tuple[str, str]  # (skill_id, tool_id)


def _base(tool_id: str) -> str:
    return _NOT_NAME.sub("_", tool_id)


def _suffixed(base: str, key: Key, digits: int) -> str:
    h = hashlib.sha256(f"{key[0]}\0{key[1]}".encode()).hexdigest()[:digits]
    return f"{base[:MAX_NAME - digits - 1]}_{h}"


def tool_names(keys: Iterable[Key]) -> dict[Key, str]:
    """The MCP name of each (skill id, tool id); a key whose name cannot be made unique is left out."""
    keys = sorted(set(keys))
    names: dict[Key, str] = {}
    by_base: dict[str, list[Key]] = {}
    for key in keys:
        by_base.setdefault(_base(key[1]), []).append(key)
    for base, members in by_base.items():
        for key in members:
            names[key] = base if len(members) == 1 and 0 < len(base) <= MAX_NAME else _suffixed(base, key, 8)
    for digits in (16, None):
        claimed: dict[str, list[Key]] = {}
        for key, name in names.items():
            claimed.setdefault(name, []).append(key)
        clashes = [key for members in claimed.values() if len(members) > 1 for key in members]
        if not clashes:
            break
        for key in clashes:
            if digits is None:
                del names[key]
            else:
                names[key] = _suffixed(_base(key[1]), key, digits)
    return names


def client_actor(client_name: str | None) -> str:
    """The principal recorded for a client's calls: ``mcp:<clientInfo.name>``, with anything
    outside ``[A-Za-z0-9._-]`` replaced by ``_`` and cut to 64 characters (the name is
    whatever the client claims: it names, it does not authenticate)."""
    name = _NOT_ACTOR.sub("_", (client_name or "").strip())[:MAX_CLIENT_NAME]
    return f"mcp:{name or 'unknown'}"
