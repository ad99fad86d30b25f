"""What a folded batch writes: the fold's rows as (statement, rows) pairs for ``executemany``,
every statement made from the table declarations (``projections.schema``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .schema import (
    AUDITS,
    MANIFESTS,
    POLICY,
    REJECTIONS,
    SEARCH,
    TIMELINE,
    TOOLS,
    TRUST_KEYS,
    VERSION_FACTS,
    VERSION_STATES,
    VERSIONS,
)

if TYPE_CHECKING:
    from .fold import Fold

Statements = list[tuple[str, list[Any]]]

_DELETE_BY_VERSION = "DELETE FROM {} WHERE skill_id = ? AND version = ?"


def statements(fold: Fold, *, index: bool = True, others: bool = True, replace: bool = True) -> Statements:
    """What a batch writes, as plain values: the ``index`` projection's rows and/or the others'.
    ``replace=False``: the file holds no index rows yet (a replay from scratch), so there are
    no old tool and search rows to delete first."""
    out: Statements = []
    if index:
        out += index_statements(fold, replace=replace)
    if others:
        out += other_statements(fold)
    return out


def index_statements(fold: Fold, *, replace: bool = True) -> Statements:
    """Version, tool and search rows. A re-recorded artifact replaces its version's tools and
    search text: they are deleted first (a plain DELETE, so that the full-text index's
    triggers see it; ``OR REPLACE`` would remove the old row without firing them)."""
    out: Statements = []
    if fold.dirty_versions:
        out.append((VERSIONS.insert_sql("INSERT OR REPLACE"),
                    [VERSIONS.values(fold.versions[k]) for k in sorted(fold.dirty_versions)]))  # type: ignore[arg-type]
    if fold.tools:
        changed = sorted(fold.tools)
        if replace:
            out.append((_DELETE_BY_VERSION.format(TOOLS.name), changed))
        out.append((TOOLS.insert_sql(), [TOOLS.row(tool_id=t, skill_id=skill_id, version=version)
                                         for skill_id, version in changed for t in fold.tools[(skill_id, version)]]))
        if replace:
            out.append((_DELETE_BY_VERSION.format(SEARCH.name), changed))
        out.append((SEARCH.insert_sql(), [fold.search[k] for k in changed]))
    return out


def other_statements(fold: Fold) -> Statements:
    """Everything but the index's rows (manifest rows included: they never change)."""
    out: Statements = []
    if fold.manifests:
        out.append((MANIFESTS.insert_sql("INSERT OR IGNORE"), [fold.manifests[k] for k in sorted(fold.manifests)]))
    if fold.dirty_trust:
        out.append((TRUST_KEYS.insert_sql("INSERT OR REPLACE"),
                    [TRUST_KEYS.values(fold.trust[k]) for k in sorted(fold.dirty_trust)]))  # type: ignore[arg-type]
    for table, rows in ((AUDITS, fold.audits), (TIMELINE, fold.timeline), (REJECTIONS, fold.rejections)):
        if rows:
            out.append((table.insert_sql(), rows))
    out += history_statements(fold)
    if fold.policy is not None:
        out.append((POLICY.insert_sql("INSERT OR REPLACE"), [fold.policy]))
    out += [(sql, [params]) for sql, params in fold.registries]  # in event order
    return out


def history_statements(fold: Fold) -> Statements:
    """The ``history`` projection's rows: each version row's new state (and facts) of the batch."""
    return [(table.insert_sql(), list(rows.values()))
            for table, rows in ((VERSION_FACTS, fold.version_facts), (VERSION_STATES, fold.version_states)) if rows]
