"""Read queries over the projections. Plain sqlite3 on the views connection: no journal
replay, no eventsourcing import, so ordinary reads stay fast."""

from __future__ import annotations

import functools
import json
import sqlite3
from typing import Any, NamedTuple

from skill_ledger.domain.text import trim

VERSION_ORDER = "v.skill_id, v.v_major, v.v_minor, v.v_patch, v.version"
# A version row with its artifact's manifest facts (kept once per payload in ``manifests``).
VERSION_WITH_MANIFEST = ("SELECT v.*, m.manifest, m.manifest_warnings, m.capability_grants, m.policy_bindings "
                         "FROM versions v LEFT JOIN manifests m ON m.payload_sha256 = v.payload_sha256")


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


@functools.lru_cache(maxsize=256)
def reasons(value: str) -> tuple[str, ...]:
    """Eligibility reasons: a handful of distinct JSON lists across the whole index."""
    return tuple(json.loads(value))


def entry(row: sqlite3.Row) -> dict[str, Any]:
    """One installed-skills index entry in the ``skills list`` shape."""
    return {
        "skill_id": row["skill_id"],
        "version": row["version"],
        "publisher": row["publisher"],
        "name": row["name"],
        "current": bool(row["current"]),
        "status": row["status"],
        "status_reason": row["status_reason"],
        "status_reason_code": row["status_reason_code"],
        "trust_decision": row["trust_decision"],
        "key_id": row["key_id"],
        "payload_sha256": row["payload_sha256"],
        "artifact_sha256": row["artifact_sha256"],
        "installed_at": row["installed_at"],
        "last_audit": None if row["last_audit_at"] is None else {
            "at": row["last_audit_at"],
            "trigger": row["last_audit_trigger"],
            "passed": bool(row["last_audit_passed"]),
            "policy_version": row["last_audit_policy_version"],
        },
        "eligibility": {"eligible": bool(row["eligible"]), "reasons": list(reasons(row["eligibility_reasons"]))},
        "tool_count": row["tool_count"],
        "installed": bool(row["installed"]),
    }


LIST_COLUMNS = (
    "skill_id, version, publisher, name, current, status, status_reason, status_reason_code, trust_decision, "
    "key_id, payload_sha256, artifact_sha256, installed_at, last_audit_at, last_audit_trigger, last_audit_passed, "
    "last_audit_policy_version, eligible, eligibility_reasons, tool_count, installed"
)


class ListRow(NamedTuple):
    """What the human ``skills list`` table shows of an entry (laid out by the CLI)."""

    skill_id: str
    version: str
    current: int
    status: str | None
    eligible: int
    eligibility_reasons: str  # JSON list: see ``reasons``
    trust_decision: str | None
    last_audit_at: str | None
    last_audit_passed: int | None
    last_audit_trigger: str | None
    tool_count: int | None
    installed: int  # 0 only for a removed version (``include_removed``)


def list_rows(con: sqlite3.Connection, **filters: Any) -> list[ListRow]:
    """The entries of ``skills list`` as plain rows, in index order (thousands of them cost
    one tuple each, not a dict per entry)."""
    sql, params = _list_query(", ".join(ListRow._fields), **filters)
    cursor = con.cursor()
    cursor.row_factory = None
    return [ListRow._make(r) for r in cursor.execute(sql, params)]


def list_entries(con: sqlite3.Connection, **filters: Any) -> list[dict[str, Any]]:
    sql, params = _list_query(LIST_COLUMNS, **filters)
    cursor = con.cursor()
    cursor.row_factory = _dict_row  # cheaper than sqlite3.Row for thousands of rows
    return [entry(r) for r in cursor.execute(sql, params)]


def _list_query(columns: str, *, publisher: str | None = None, status: str | None = None,
                current_only: bool = False, eligible_only: bool = False,
                include_removed: bool = False) -> tuple[str, list[Any]]:
    sql = f"SELECT {columns} FROM versions v WHERE {'1 = 1' if include_removed else 'installed = 1'}"
    params: list[Any] = []
    if publisher:
        sql += " AND publisher = ?"
        params.append(publisher)
    if status:
        sql += " AND status = ?"
        params.append(status)
    if current_only:
        sql += " AND current = 1"
    if eligible_only:
        sql += " AND eligible = 1"
    return sql + f" ORDER BY {VERSION_ORDER}", params


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(_column_names(cursor.description), row))


@functools.lru_cache(maxsize=16)
def _column_names(description: tuple[tuple[Any, ...], ...]) -> tuple[str, ...]:
    return tuple(d[0] for d in description)


def version_row(con: sqlite3.Connection, skill_id: str, version: str | None) -> sqlite3.Row | None:
    if version is None:
        return con.execute(f"{VERSION_WITH_MANIFEST} WHERE v.skill_id=? AND v.current=1 AND v.installed=1",
                           (skill_id,)).fetchone()
    return con.execute(f"{VERSION_WITH_MANIFEST} WHERE v.skill_id=? AND v.version=?", (skill_id, version)).fetchone()


def skill_known(con: sqlite3.Connection, skill_id: str) -> bool:
    return con.execute("SELECT 1 FROM versions WHERE skill_id=? LIMIT 1", (skill_id,)).fetchone() is not None


def info(con: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    manifest = _loads(row["manifest"]) or {}
    out = entry(row)
    out["installed"] = bool(row["installed"])
    out["key_hex"] = row["key_hex"]
    out["source"] = row["source"]
    out["manifest"] = manifest
    out["manifest_warnings"] = _loads(row["manifest_warnings"])
    out["tools"] = [
        {"id": t.get("id"), "name": t.get("name"), "description": t.get("description"),
         "input_schema": t.get("input_schema"), "output_schema": t.get("output_schema"), "risk": t.get("risk")}
        for t in manifest.get("entrypoints", {}).get("tools", [])
    ]
    out["capability_grants"] = _loads(row["capability_grants"])
    out["policy_bindings"] = _loads(row["policy_bindings"])
    out["audits"] = audits(con, row["skill_id"], row["version"])
    return out


def audits(con: sqlite3.Connection, skill_id: str, version: str) -> list[dict[str, Any]]:
    return [
        {"position": r["position"], "at": r["at"], "trigger": r["trigger"], "policy_version": r["policy_version"],
         "passed": bool(r["passed"]), "should_quarantine": bool(r["should_quarantine"]),
         "failed_checks": _loads(r["failed_checks"]), "warning_checks": _loads(r["warning_checks"]),
         "quarantine_reasons": _loads(r["quarantine_reasons"])}
        for r in con.execute("SELECT * FROM audits WHERE skill_id=? AND version=? ORDER BY position",
                             (skill_id, version))
    ]


def current_rows(con: sqlite3.Connection, skill_id: str | None = None) -> list[sqlite3.Row]:
    sql = f"{VERSION_WITH_MANIFEST} WHERE v.current=1 AND v.installed=1"
    params: list[Any] = []
    if skill_id:
        sql += " AND v.skill_id=?"
        params.append(skill_id)
    return list(con.execute(sql + " ORDER BY v.skill_id", params))


def trust_publishers(con: sqlite3.Connection) -> list[dict[str, Any]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in con.execute("SELECT * FROM trust_keys ORDER BY publisher, key_hex"):
        out.setdefault(r["publisher"], []).append({
            "key_hex": r["key_hex"], "key_id": r["key_id"], "kind": r["kind"], "state": r["state"],
            "since": r["since"], "first_skill_id": r["first_skill_id"], "first_version": r["first_version"],
        })
    return [{"publisher": p, "keys": keys} for p, keys in out.items()]


def trust_interchange(con: sqlite3.Connection) -> tuple[dict[str, list[str]], dict[str, str], dict[str, list[str]]]:
    """(allowlisted, pinned, revoked) as plain maps of the active trust state."""
    trusted: dict[str, list[str]] = {}
    tofu: dict[str, str] = {}
    revoked: dict[str, list[str]] = {}
    for r in con.execute("SELECT publisher, key_hex, kind, state FROM trust_keys ORDER BY publisher, key_hex"):
        if r["state"] == "revoked":
            revoked.setdefault(r["publisher"], []).append(r["key_hex"])
        elif r["kind"] == "allowlisted":
            trusted.setdefault(r["publisher"], []).append(r["key_hex"])
        else:
            tofu[r["publisher"]] = r["key_hex"]
    return trusted, tofu, revoked


def policy(con: sqlite3.Connection) -> dict[str, Any] | None:
    r = con.execute("SELECT * FROM policy WHERE name='audit'").fetchone()
    if r is None:
        return None
    return {"policy_version": r["policy_version"], "policy": _loads(r["policy"]), "changed": _loads(r["changed"]),
            "updated_at": r["updated_at"], "updated_by": r["updated_by"]}


def publishers_of(con: sqlite3.Connection, skill_id: str) -> list[str]:
    return [r[0] for r in con.execute("SELECT DISTINCT publisher FROM versions WHERE skill_id=? ORDER BY 1",
                                      (skill_id,))]


def timeline(con: sqlite3.Connection, *, since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM timeline WHERE 1=1"
    params: list[Any] = []
    if since:
        sql += " AND recorded_at >= ?"
        params.append(since)
    if until:
        sql += " AND recorded_at <= ?"
        params.append(until)
    return [dict(r) for r in con.execute(sql + " ORDER BY position", params)]


def tool_versions(con: sqlite3.Connection, tool_id: str, *, skill_id: str | None = None,
                  version: str | None = None) -> list[sqlite3.Row]:
    """Versions whose manifest declares the tool ``tool_id`` (the runner's gate): the current
    installed version of each skill, or exactly ``version`` (installed or not) when given;
    narrowed to ``skill_id`` when given."""
    sql = (f"{VERSION_WITH_MANIFEST} JOIN tools t ON t.skill_id = v.skill_id AND t.version = v.version "
           "WHERE t.tool_id = ?")
    params: list[Any] = [trim(tool_id)]
    if version is not None:
        sql += " AND v.version = ?"
        params.append(version)
    else:
        sql += " AND v.current = 1 AND v.installed = 1"
    if skill_id is not None:
        sql += " AND v.skill_id = ?"
        params.append(skill_id)
    return list(con.execute(sql + f" ORDER BY {VERSION_ORDER}", params))


def registries(con: sqlite3.Connection) -> list[dict[str, Any]]:
    """The registries the journal knows (``skills registry list``), added or removed, by name."""
    return [
        {"name": r["name"], "url": r["url"], "status": r["status"], "root_sha256": r["root_sha256"],
         "root_version": r["root_version"], "added_at": r["added_at"], "removed_at": r["removed_at"],
         "removed_reason": r["removed_reason"], "trusted": _loads(r["trusted"]), "trusted_at": r["trusted_at"],
         "installs": r["installs"], "refusals": r["refusals"],
         "last_refusal": None if r["last_refusal_at"] is None else {"at": r["last_refusal_at"],
                                                                    "code": r["last_refusal_code"]}}
        for r in con.execute("SELECT * FROM registries ORDER BY name")
    ]


def registry_names(con: sqlite3.Connection) -> list[str]:
    """Every registry the journal knows, added or removed (their streams hold the installs and
    refusals that ``skills history`` shows with a skill's own events)."""
    return [r[0] for r in con.execute("SELECT name FROM registries ORDER BY name")]
