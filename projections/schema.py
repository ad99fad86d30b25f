"""The read model's tables (``<home>/views.db``), each declared once.

A ``Table`` names its columns (name, type, NOT NULL), its primary key and its indexes;
everything else comes from that declaration: the tables and indexes themselves (created
by sqlite-utils, ``projections.db``), the row type the fold builds (``Table.row``, a named
tuple of the columns in order, filled by keyword), the INSERT statements, and the order in
which ``index verify`` compares rows.

Every table has an explicit primary key (the event-log tables use the journal position),
so a full rebuild and an incremental catch-up produce the same rows. Bump
``SCHEMA_VERSION`` whenever a table or a derivation changes, and register a migration in
``projections.migrations`` if a file of the previous version can be brought forward
without a replay; any other older file is rebuilt from the journal automatically.
"""

from __future__ import annotations

import functools
import keyword
import operator
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

# 10: full-text search; 11: an override of a failed audit keeps the version eligible; 12: registries
# (all migrated in place, projections/migrations.py); 13: the history of the version rows (``list/info
# --as-of``), migrated in place only when there is no version row yet (otherwise only a replay can fill
# it: the file is rebuilt).
SCHEMA_VERSION = 13
NOT_NULL = True


class Column(NamedTuple):
    name: str
    type: type  # str or int: sqlite-utils makes them TEXT and INTEGER
    not_null: bool = False


class Index(NamedTuple):
    name: str
    columns: tuple[str, ...]
    # Only reads need it: a replay into a fresh file creates it once at the end, which is much
    # cheaper than maintaining it row by row.
    for_reads: bool = True


class Table:
    def __init__(self, name: str, pk: tuple[str, ...], columns: Iterable[tuple[Any, ...]],
                 indexes: tuple[Index, ...] = ()) -> None:
        self.name = name
        self.pk = pk
        self.columns = tuple(Column(*c) for c in columns)
        self.names = tuple(c.name for c in self.columns)
        self.indexes = indexes
        missing = set(pk) - set(self.names)
        if missing:
            raise ValueError(f"primary key of {name} names unknown columns {sorted(missing)}")
        # A row kept as a dict by the fold (changed in place), as a tuple in column order.
        self.values: Callable[[dict[str, Any]], tuple[Any, ...]] = operator.itemgetter(*self.names)

    @functools.cached_property
    def row(self) -> Callable[..., tuple[Any, ...]]:
        """``Table.row(position=..., ...)``, every column by name, gives a row: a plain tuple in
        column order (what executemany binds fastest). Made on first use (reads need none)."""
        return _row_maker(self.name, self.names)

    def blank(self) -> dict[str, Any]:
        """A row as a dict, every column None (the fold's mutable rows)."""
        return dict.fromkeys(self.names)

    def insert_sql(self, verb: str = "INSERT") -> str:
        return f"{verb} INTO {self.name} ({', '.join(self.names)}) VALUES ({', '.join('?' * len(self.names))})"

    @property
    def types(self) -> dict[str, type]:
        return {c.name: c.type for c in self.columns}

    @property
    def not_null(self) -> set[str]:
        return {c.name for c in self.columns if c.not_null}

    def __repr__(self) -> str:
        return f"Table({self.name!r})"


def _row_maker(table: str, names: tuple[str, ...]) -> Callable[..., tuple[Any, ...]]:
    """``def row(*, a, b, ...): return (a, b, ...)`` for these columns, generated once (as
    ``collections.namedtuple`` generates its constructor). Every column is a required keyword,
    so a row cannot be built with a value in the wrong column or one missing. It costs a
    quarter of a named tuple's keyword constructor, and ``executemany`` binds plain tuples
    faster than named ones (measured: 100k timeline rows, 0.13 against 0.58 us each to build,
    145 against 206 ms to insert); the fold builds a row per event."""
    for n in names:
        if not n.isidentifier() or keyword.iskeyword(n) or n.startswith("_"):
            raise ValueError(f"column {n!r} of {table} is not usable as a name")
    namespace: dict[str, Any] = {}
    exec(f"def row(*, {', '.join(names)}):\n    return ({', '.join(names)},)\n", namespace)  # noqa: S102
    row = namespace["row"]
    row.__qualname__ = row.__name__ = f"{table}_row"
    return row  # type: ignore[no-any-return]


META = Table("meta", ("key",), [("key", str, NOT_NULL), ("value", str, NOT_NULL)])
POSITIONS = Table("positions", ("projection",), [("projection", str, NOT_NULL), ("position", int, NOT_NULL)])

VERSIONS = Table("versions", ("skill_id", "version"), [
    ("skill_id", str, NOT_NULL), ("version", str, NOT_NULL),
    ("v_major", int), ("v_minor", int), ("v_patch", int),
    ("publisher", str), ("name", str), ("installed", int, NOT_NULL), ("current", int, NOT_NULL),
    ("status", str), ("status_reason_code", str), ("status_reason", str),
    ("trust_decision", str), ("key_id", str), ("key_hex", str),
    ("payload_sha256", str), ("artifact_sha256", str), ("blob", str), ("source", str), ("installed_at", str),
    ("last_audit_at", str), ("last_audit_trigger", str), ("last_audit_passed", int),
    ("last_audit_policy_version", int), ("last_audit_failed_checks", str),
    ("key_revoked", int, NOT_NULL), ("compat_problem", str),
    ("eligible", int, NOT_NULL), ("eligibility_reasons", str, NOT_NULL),
    ("tool_count", int), ("updated_position", int, NOT_NULL),
], indexes=(Index("versions_by_key", ("publisher", "key_hex")),))

# Written once per artifact (by payload digest): version rows stay small, so rewriting one on
# every status change is cheap.
MANIFESTS = Table("manifests", ("payload_sha256",), [
    ("payload_sha256", str, NOT_NULL), ("manifest", str, NOT_NULL), ("manifest_warnings", str, NOT_NULL),
    ("capability_grants", str), ("policy_bindings", str),
])

TOOLS = Table("tools", ("tool_id", "skill_id", "version"), [
    ("tool_id", str, NOT_NULL), ("skill_id", str, NOT_NULL), ("version", str, NOT_NULL),
], indexes=(Index("tools_by_version", ("skill_id", "version"), for_reads=False),))

# The text ``skills search`` finds a version by (``projections.search``), one row per version
# row; the full-text index over it is SEARCH_FTS.
SEARCH = Table("search", ("skill_id", "version"), [
    ("skill_id", str, NOT_NULL), ("version", str, NOT_NULL), ("publisher", str), ("name", str),
    ("description", str), ("tool_ids", str), ("tool_descriptions", str),
])
# The columns of the FTS5 index (sqlite-utils names it ``search_fts``, keeps it in step with
# ``search`` by triggers); in this order for bm25's weights and ``matched``.
SEARCH_FTS_COLUMNS = ("skill_id", "name", "description", "publisher", "tool_ids", "tool_descriptions")
SEARCH_FTS = SEARCH.name + "_fts"

TRUST_KEYS = Table("trust_keys", ("publisher", "key_hex"), [
    ("publisher", str, NOT_NULL), ("key_hex", str, NOT_NULL), ("key_id", str, NOT_NULL), ("kind", str, NOT_NULL),
    ("state", str, NOT_NULL), ("since", str, NOT_NULL), ("first_skill_id", str), ("first_version", str),
    ("updated_position", int, NOT_NULL),
])

AUDITS = Table("audits", ("position",), [
    ("position", int, NOT_NULL), ("skill_id", str, NOT_NULL), ("version", str, NOT_NULL), ("at", str, NOT_NULL),
    ("trigger", str, NOT_NULL), ("policy_version", int, NOT_NULL), ("passed", int, NOT_NULL),
    ("should_quarantine", int, NOT_NULL), ("failed_checks", str, NOT_NULL), ("warning_checks", str, NOT_NULL),
    ("quarantine_reasons", str, NOT_NULL),
], indexes=(Index("audits_by_version", ("skill_id", "version")),))

POLICY = Table("policy", ("name",), [
    ("name", str, NOT_NULL), ("policy_version", int, NOT_NULL), ("policy", str, NOT_NULL),
    ("changed", str, NOT_NULL), ("updated_at", str, NOT_NULL), ("updated_by", str, NOT_NULL),
])

# (No index on the time: only ``--as-of TIME`` looks a time up, once, before a replay that
# costs far more than the scan.)
TIMELINE = Table("timeline", ("position",), [
    ("position", int, NOT_NULL), ("recorded_at", str, NOT_NULL), ("stream", str, NOT_NULL),
    ("stream_version", int, NOT_NULL), ("kind", str, NOT_NULL), ("skill_id", str), ("version", str),
    ("publisher", str), ("principal", str, NOT_NULL), ("host", str, NOT_NULL), ("command", str, NOT_NULL),
    ("reason", str), ("summary", str, NOT_NULL),
])

REJECTIONS = Table("rejections", ("position",), [
    ("position", int, NOT_NULL), ("recorded_at", str, NOT_NULL), ("artifact_sha256", str, NOT_NULL),
    ("source", str), ("error_code", str, NOT_NULL), ("message", str, NOT_NULL), ("skill_id", str),
    ("version", str), ("publisher", str),
])

# The history of the version rows, for ``list --as-of`` and ``info --as-of`` (``projections.asof``):
# a row each time a version row changes, valid from that position until the version's next row.
# The columns that only an artifact's verification and install set (its facts) are kept apart from
# those every status change sets, so the history holds about one small row per event.
FACT_COLUMNS = ("v_major", "v_minor", "v_patch", "publisher", "name", "key_id", "key_hex", "payload_sha256",
                "artifact_sha256", "blob", "source", "installed_at", "compat_problem", "tool_count")
STATE_COLUMNS = ("installed", "current", "status", "status_reason_code", "status_reason", "trust_decision",
                 "last_audit_at", "last_audit_trigger", "last_audit_passed", "last_audit_policy_version",
                 "last_audit_failed_checks", "key_revoked", "eligible", "eligibility_reasons")
_VERSION_COLUMNS = {c.name: c for c in VERSIONS.columns}
VERSION_FACTS = Table("version_facts", ("skill_id", "version", "valid_from"), [
    ("skill_id", str, NOT_NULL), ("version", str, NOT_NULL), ("valid_from", int, NOT_NULL),
    *(_VERSION_COLUMNS[c] for c in FACT_COLUMNS),
])
VERSION_STATES = Table("version_states", ("skill_id", "version", "valid_from"), [
    ("skill_id", str, NOT_NULL), ("version", str, NOT_NULL), ("valid_from", int, NOT_NULL),
    *(_VERSION_COLUMNS[c] for c in STATE_COLUMNS),
])
if set(FACT_COLUMNS) | set(STATE_COLUMNS) | {"skill_id", "version", "updated_position"} != set(VERSIONS.names):
    raise ValueError("the version history must keep every column of versions")

# One row per registry (``skills registry list``): its pinned root, the metadata versions last
# trusted, and how many installs and refusals its stream recorded. Part of the timeline
# projection (its events are timeline lines too).
REGISTRIES = Table("registries", ("name",), [
    ("name", str, NOT_NULL), ("url", str, NOT_NULL), ("status", str, NOT_NULL), ("root_sha256", str, NOT_NULL),
    ("root_version", int, NOT_NULL), ("added_at", str, NOT_NULL), ("removed_at", str), ("removed_reason", str),
    ("trusted", str), ("trusted_at", str), ("installs", int, NOT_NULL), ("refusals", int, NOT_NULL),
    ("last_refusal_at", str), ("last_refusal_code", str), ("updated_position", int, NOT_NULL),
])

# The projections and the tables each one owns. They are caught up together, in one
# transaction per batch, each with its own tracking position.
PROJECTIONS: dict[str, tuple[Table, ...]] = {
    "index": (VERSIONS, MANIFESTS, TOOLS, SEARCH),
    "trust": (TRUST_KEYS,),
    "audits": (AUDITS, POLICY),
    "timeline": (TIMELINE, REJECTIONS, REGISTRIES),
    "history": (VERSION_FACTS, VERSION_STATES),
}
# The tables of the projections (what ``index verify`` compares and a sharded rebuild merges;
# meta holds identities, positions are compared separately).
DATA_TABLES: tuple[Table, ...] = tuple(t for tables in PROJECTIONS.values() for t in tables)
TABLES: tuple[Table, ...] = (META, POSITIONS, *DATA_TABLES)
BY_NAME = {t.name: t for t in TABLES}
