"""History questions answered from the projections: ``skills list --as-of`` and ``skills info
--as-of``, and journal positions from times.

The ``history`` projection keeps every state a version row has been in (``version_states``,
one row per change, and ``version_facts``, one per verification or install of its artifact),
each valid from its position until the version's next row. The version row as of position
``P`` is, for each version, its newest state and facts at or before ``P``. ``shadow`` puts
exactly that in a temporary table named ``versions`` on the views connection, and the audits
up to ``P`` in a temporary view named ``audits``: SQLite resolves an unqualified name to the
temporary schema first, so the ordinary list and info queries (``projections.queries``) read
the past unchanged, and the output has exactly the shape of today's. The manifests need no
history (a payload's manifest never changes). ``unshadow`` drops both.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from skill_ledger.domain.errors import UsageError

from .schema import FACT_COLUMNS, STATE_COLUMNS, VERSION_FACTS, VERSION_STATES, VERSIONS
from .times import fixed


def _select_list() -> str:
    parts = []
    for name in VERSIONS.names:
        if name in FACT_COLUMNS:
            parts.append(f"f.{name}")
        elif name in STATE_COLUMNS:
            parts.append(f"s.{name}")
        elif name == "updated_position":
            parts.append("s.valid_from AS updated_position")
        else:
            parts.append(f"s.{name}")
    return ", ".join(parts)


def _newest(table: str, columns: tuple[str, ...]) -> str:
    # SQLite takes the bare columns of a max() aggregate from the row that has the maximum.
    return (f"SELECT skill_id, version, max(valid_from) AS valid_from, {', '.join(columns)} FROM main.{table} "
            f"WHERE valid_from <= :p GROUP BY skill_id, version")


_SHADOW_VERSIONS = (
    f"CREATE TEMP TABLE versions AS SELECT {_select_list()} "
    f"FROM ({_newest(VERSION_STATES.name, STATE_COLUMNS)}) s "
    f"JOIN ({_newest(VERSION_FACTS.name, FACT_COLUMNS)}) f USING (skill_id, version)"
)


def shadow(con: sqlite3.Connection, position: int) -> None:
    """Make ``versions`` and ``audits`` on ``con`` read as of journal ``position`` (until
    ``unshadow``). The connection must not be used to write the views meanwhile."""
    unshadow(con)
    con.execute(_SHADOW_VERSIONS, {"p": position})
    # An integer, not a parameter: a view cannot take one.
    con.execute(f"CREATE TEMP VIEW audits AS SELECT * FROM main.audits WHERE position <= {int(position)}")


def unshadow(con: sqlite3.Connection) -> None:
    con.execute("DROP VIEW IF EXISTS temp.audits")
    con.execute("DROP TABLE IF EXISTS temp.versions")


def resolve_when(con: sqlite3.Connection, value: str, flag: str, *, head: int | None = None,
                 before: bool = False) -> int:
    """A journal position given as ``POSITION`` or an ISO-8601 time (naive means UTC). A time
    is the last position recorded at or before it (``before``: strictly before it, for a range
    that starts at that time). A position beyond ``head`` is refused, not clamped."""
    text = value.strip()
    if text.isdigit():
        position = int(text)
        if head is not None and position > head:
            raise UsageError(f"{flag} {position} is beyond the journal's head (position {head})")
        return position
    try:
        t = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise UsageError(f"{flag} expects a journal position or an ISO-8601 time, got {value!r}") from None
    op = "<" if before else "<="
    row = con.execute(f"SELECT max(position) FROM main.timeline WHERE recorded_at {op} ?", (fixed(t),)).fetchone()
    return int(row[0] or 0)
