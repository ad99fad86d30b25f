"""The catalog: which MCP tools the server offers, read from the projected state.

One MCP tool per tool of every current, active and eligible version in the installed-skills
index (narrowed by ``--skill`` and ``--publisher``), named by ``names.tool_names``, described
and typed by the manifest as the index recorded it. The list is a view, not a decision:
every call goes through the runner's gate, which confirms the version from the journal.

Keeping it fresh is cheap: :meth:`Catalog.refresh` reads the journal's head (one indexed
query on a read-only connection; PostgreSQL: the recorder's ``max(id)``) and only when it
moved catches the views up and reads the current versions again. It says whether the set of
tools changed, so the server tells its clients (``notifications/tools/list_changed``) only
when there is something new to list.

A name that was served once keeps resolving for the life of the process (:meth:`target`),
to its skill's current version (or the version it was served for, once the skill is
removed): a client that calls it after the version was quarantined, disabled or removed
elsewhere is refused *by the gate*, and the refusal is recorded (``skill.execution_denied``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import mcp_types as types
import msgspec
from pydantic import ValidationError

from skill_ledger.adapters.readmodel.views import open_views
from skill_ledger.adapters.settings import Settings
from skill_ledger.domain.text import trim
from skill_ledger.projections.queries import current_rows

from .names import tool_names

__all__ = ["Catalog", "Entry", "Target", "input_schema_for", "output_schema_for"]

log = logging.getLogger("skill_ledger.mcp")

META = "skill-ledger/"  # our keys in a tool's _meta (io.modelcontextprotocol/* is the protocol's)
MAX_REMEMBERED_NAMES = 4096  # names served earlier in this process that still resolve


class Entry(msgspec.Struct, frozen=True):
    """One served tool: its MCP name and the skill version and tool it stands for."""

    name: str
    skill_id: str
    version: str
    tool_id: str
    publisher: str
    output_schema: dict[str, Any] | None  # the advertised outputSchema: results carry structuredContent

    @property
    def has_output_schema(self) -> bool:
        return self.output_schema is not None


class Target(msgspec.Struct, frozen=True):
    """What a call of a name runs: the runner's (tool id, skill id, version)."""

    entry: Entry
    version: str  # the version the runner is asked for (see Catalog.target)
    listed: bool  # the name is in the current list


def input_schema_for(schema: Any) -> dict[str, Any] | None:
    """The manifest's input schema as MCP's ``inputSchema`` (root ``type: "object"``).

    MCP sends arguments as a JSON object, so a schema without a root ``type`` is narrowed to
    objects (``type`` added beside its other keywords, which keeps their meaning) and a type
    list naming ``object`` becomes ``object``. A schema that admits no object at all cannot be
    called over MCP: ``None``."""
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if kind is None or (isinstance(kind, list) and "object" in kind):
        return {**schema, "type": "object"}
    return dict(schema) if kind == "object" else None


def output_schema_for(schema: Any) -> dict[str, Any] | None:
    """The manifest's output schema as MCP's ``outputSchema``, only when it promises an object
    (MCP requires that root, and a result then carries ``structuredContent``)."""
    if isinstance(schema, dict) and schema.get("type") == "object":
        return dict(schema)
    return None


class _Head:
    """The journal's newest position, read cheaply."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._con: sqlite3.Connection | None = None
        self.ledger: Any = None  # PostgreSQL: one open ledger, also handed to open_views

    def position(self) -> int | None:
        """``None`` when there is no journal yet."""
        s = self.settings
        if not s.journal_is_sqlite:
            if self.ledger is None:
                from skill_ledger.adapters.usecases.unit_of_work import Ledger

                self.ledger = Ledger(s)
            return self.ledger.head()
        if self._con is None:
            if not s.journal_path.exists():
                return None
            self._con = sqlite3.connect(f"file:{s.journal_path}?mode=ro", uri=True, timeout=30,
                                        check_same_thread=False)
        try:
            return self._con.execute("SELECT max(rowid) FROM stored_events").fetchone()[0] or 0
        except sqlite3.Error as e:
            if "no such table" in str(e):
                return None  # created, not initialised yet
            raise

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None


_UNSEEN = object()


class Catalog:
    def __init__(self, settings: Settings, *, skills: frozenset[str] = frozenset(),
                 publishers: frozenset[str] = frozenset(), notify: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.skills = skills
        self.publishers = publishers
        self.notify = notify
        self._lock = threading.Lock()
        self._head = _Head(settings)
        self._seen: object = _UNSEEN
        self._tools: list[types.Tool] = []
        self._entries: dict[str, Entry] = {}
        self._remembered: OrderedDict[str, Entry] = OrderedDict()
        self._current: dict[str, str] = {}  # skill id -> its current installed version (any status)
        self.fingerprint = ""
        self.position: int | None = None

    def close(self) -> None:
        with self._lock:
            self._head.close()

    # --- reading ----------------------------------------------------------------------------

    def tools(self) -> list[types.Tool]:
        with self._lock:
            return list(self._tools)

    def target(self, name: str) -> Target | None:
        """What calling ``name`` runs, or ``None`` for a name never served in this process.

        A listed name runs the version it is listed for. A name no longer listed runs its
        skill's current version (whatever its status: the gate refuses and records what may
        not run) or, when the skill has no installed version left, the version it was served
        for (the gate refuses it as ``not_installed``)."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                return Target(entry, entry.version, True)
            entry = self._remembered.get(name)
            if entry is None:
                return None
            return Target(entry, self._current.get(entry.skill_id, entry.version), False)

    # --- refreshing -------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Catch up with the journal if it moved; whether the served tools changed."""
        with self._lock:
            head = self._head.position()
            if self._seen is not _UNSEEN and head == self._seen:
                return False
            store = open_views(self.settings, notify=self.notify, ledger=self._head.ledger)
            try:
                position = store.position()
                rows = current_rows(store.con)
            finally:
                store.close()
            tools, entries, current = self._build(rows)
            self._seen, self.position = head, position
            self._current = current
            for name, entry in entries.items():
                self._remembered.pop(name, None)
                self._remembered[name] = entry
            while len(self._remembered) > MAX_REMEMBERED_NAMES:
                self._remembered.popitem(last=False)
            fingerprint = hashlib.sha256(json.dumps(
                [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools],
                sort_keys=True).encode()).hexdigest()
            changed = fingerprint != self.fingerprint
            self._tools, self._entries, self.fingerprint = tools, entries, fingerprint
            return changed

    def _selected(self, row: sqlite3.Row) -> bool:
        return ((not self.skills or row["skill_id"] in self.skills)
                and (not self.publishers or row["publisher"] in self.publishers))

    def _build(self, rows: list[sqlite3.Row]) -> tuple[list[types.Tool], dict[str, Entry], dict[str, str]]:
        current = {r["skill_id"]: r["version"] for r in rows}
        declared: dict[tuple[str, str], tuple[sqlite3.Row, dict[str, Any]]] = {}
        for row in rows:
            if not self._selected(row) or row["status"] != "active" or not row["eligible"]:
                continue
            manifest = json.loads(row["manifest"] or "{}")
            for tool in (manifest.get("entrypoints") or {}).get("tools") or []:
                if isinstance(tool, dict) and isinstance(tool.get("id"), str):
                    declared[(row["skill_id"], trim(tool["id"]))] = (row, tool)
        names = tool_names(declared)
        tools: list[types.Tool] = []
        entries: dict[str, Entry] = {}
        for key, name in sorted(names.items(), key=lambda kv: kv[1]):
            row, tool = declared[key]
            made = self._tool(name, row, key[1], tool)
            if made is not None:
                tools.append(made)
                entries[name] = Entry(name, row["skill_id"], row["version"], key[1], row["publisher"] or "",
                                      output_schema_for(tool.get("output_schema")))
        return tools, entries, current

    def _tool(self, name: str, row: sqlite3.Row, tool_id: str, tool: dict[str, Any]) -> types.Tool | None:
        where = f"tool {tool_id} of {row['skill_id']} {row['version']}"
        input_schema = input_schema_for(tool.get("input_schema"))
        if input_schema is None:
            log.warning("not served: %s: its input_schema admits no JSON object (MCP arguments are one)", where)
            return None
        meta = {f"{META}skill_id": row["skill_id"], f"{META}version": row["version"], f"{META}tool_id": tool_id,
                f"{META}publisher": row["publisher"]}
        if isinstance(tool.get("risk"), dict):
            meta[f"{META}risk"] = tool["risk"]
        try:
            return types.Tool(name=name, title=tool.get("name") if isinstance(tool.get("name"), str) else None,
                              description=tool.get("description") if isinstance(tool.get("description"), str) else None,
                              input_schema=input_schema, output_schema=output_schema_for(tool.get("output_schema")),
                              _meta=meta)
        except ValidationError as e:
            log.warning("not served: %s: its schemas are not valid MCP tool schemas (%s)", where,
                        e.errors()[0].get("msg", "invalid") if e.errors() else "invalid")
            return None
