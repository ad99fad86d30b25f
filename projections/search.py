"""``skills search``: full-text search over the installed skills.

Each version row has one ``search`` row with the text it is found by: its skill id, name,
description (the manifest's ``operator.summary`` and ``operator.description``), publisher,
tool ids and tool descriptions. The fold writes it when the version's artifact is recorded
(``skill.artifact_verified``), so it is caught up and rebuilt like every other view; an
FTS5 index made by sqlite-utils (``search_fts``) follows the rows through triggers. A query
is SQLite's FTS5 syntax (words, ``"phrases"``, ``prefix*``, ``OR``/``NOT``, ``column:word``),
and only installed versions are found, with their current status.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import msgspec

from skill_ledger.domain.errors import UsageError

from .records import ManifestFacts
from .schema import SEARCH, SEARCH_FTS, SEARCH_FTS_COLUMNS

# bm25 weights, in SEARCH_FTS_COLUMNS order: a hit in an id or a name counts more than one in
# a description.
WEIGHTS = {"skill_id": 10.0, "name": 8.0, "description": 2.0, "publisher": 4.0, "tool_ids": 6.0,
           "tool_descriptions": 1.0}
SNIPPET_TOKENS = 12
MARK = ("[", "]")


# --- the rows ------------------------------------------------------------------------------


def search_row(skill_id: str, version: str, publisher: str | None, facts: ManifestFacts) -> tuple[Any, ...]:
    """The ``search`` row of a version, from the facts of its recorded manifest
    (``records.manifest_facts``). The fold and the migration that adds the table both make
    it this way, so they give the same row."""
    return SEARCH.row(skill_id=skill_id, version=version, publisher=publisher,
                      name=facts.name if isinstance(facts.name, str) else None, description=facts.description,
                      tool_ids=" ".join([i for i in facts.tool_ids if i]) or None,
                      tool_descriptions=facts.tool_descriptions)


# --- the query -----------------------------------------------------------------------------


class SearchHit(msgspec.Struct, frozen=True):
    skill_id: str
    version: str
    name: str | None
    publisher: str | None
    current: bool
    status: str | None
    matched: list[str]  # the searched fields the query matched, in SEARCH_FTS_COLUMNS order
    snippet: str  # the best-matching stretch of text, matches in [brackets]


class SearchResult(msgspec.Struct, frozen=True):
    query: str
    count: int
    results: list[SearchHit]


_HIT_SQL = (
    "SELECT v.skill_id, v.version, v.name, v.publisher, v.current, v.status, "
    + ", ".join(f"instr(coalesce(highlight({SEARCH_FTS}, {i}, char(1), ''), ''), char(1)) > 0"
                for i in range(len(SEARCH_FTS_COLUMNS)))
    + f", snippet({SEARCH_FTS}, -1, '{MARK[0]}', '{MARK[1]}', '…', {SNIPPET_TOKENS}) "
    f"FROM {SEARCH_FTS} JOIN {SEARCH.name} s ON s.rowid = {SEARCH_FTS}.rowid "
    "JOIN versions v ON v.skill_id = s.skill_id AND v.version = s.version "
    f"WHERE {SEARCH_FTS} MATCH ? AND v.installed = 1 "
    f"ORDER BY bm25({SEARCH_FTS}, {', '.join(str(WEIGHTS[c]) for c in SEARCH_FTS_COLUMNS)}), "
    "v.skill_id, v.v_major, v.v_minor, v.v_patch, v.version"
)


def search(con: sqlite3.Connection, query: str) -> SearchResult:
    """The installed versions whose text matches ``query`` (FTS5 syntax), best match first.
    A query FTS5 cannot parse is a ``UsageError``."""
    check_query(query)
    cursor = con.cursor()
    cursor.row_factory = None
    hits = []
    n = len(SEARCH_FTS_COLUMNS)
    for row in cursor.execute(_HIT_SQL, (query,)):
        flags = row[6:6 + n]
        hits.append(SearchHit(row[0], row[1], row[2], row[3], bool(row[4]), row[5],
                              [c for c, hit in zip(SEARCH_FTS_COLUMNS, flags) if hit], row[6 + n] or ""))
    return SearchResult(query, len(hits), hits)


def check_query(query: str) -> None:
    """Raise ``UsageError`` unless FTS5 accepts ``query``. Tried on an empty in-memory index
    with the same columns, so that only the query itself can fail there (never the views
    file: a locked or damaged database is not the user's mistake)."""
    if not query.strip():
        raise UsageError("the search text is empty")
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute(f"CREATE VIRTUAL TABLE q USING fts5({', '.join(SEARCH_FTS_COLUMNS)})")
        probe.execute("SELECT rowid FROM q WHERE q MATCH ?", (query,)).fetchall()
    except sqlite3.OperationalError as e:
        near = re.search(r'syntax error near "(.)"$', str(e))
        hint = ("; quote words with punctuation, for example '\"acme.echo\"'"
                if near and not near.group(1).isalnum() and near.group(1) != '"' else "")
        raise UsageError(f"invalid search {query!r}: {e}{hint}", {"query": query}) from None
    finally:
        probe.close()
