"""Interchange exports built from the projections: Palyra's installed-skills index and the
trust-store file."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

from skill_ledger.domain.trust import normalize, trust_store_to_dict

# Palyra's daemon reads installed-index.json with deny_unknown_fields and layout version 1.
PALYRA_LAYOUT_VERSION = 1


def _unix_ms(fixed_iso: str | None) -> int:
    if not fixed_iso:
        return 0
    return int(dt.datetime.fromisoformat(fixed_iso).timestamp() * 1000)


def palyra_installed_index(con: sqlite3.Connection, now_ms: int, missing_secrets: Any = None) -> dict[str, Any]:
    """``{schema_version, updated_at_unix_ms, entries: [...]}`` exactly as Palyra's daemon reads it.

    ``missing_secrets(skill_id, version, manifest_json) -> [{scope, key}]`` fills the field
    when a secret source is known (empty otherwise).
    """
    import json

    entries = []
    from .queries import VERSION_ORDER, VERSION_WITH_MANIFEST

    for r in con.execute(f"{VERSION_WITH_MANIFEST} WHERE v.installed=1 ORDER BY {VERSION_ORDER}"):
        missing = missing_secrets(r["skill_id"], r["version"], json.loads(r["manifest"])) if missing_secrets else []
        entries.append({
            "skill_id": r["skill_id"],
            "version": r["version"],
            "publisher": r["publisher"],
            "current": bool(r["current"]),
            "installed_at_unix_ms": _unix_ms(r["installed_at"]),
            "artifact_sha256": r["artifact_sha256"],
            "payload_sha256": r["payload_sha256"],
            "signature_key_id": r["key_id"],
            "trust_decision": r["trust_decision"],
            "source": {"kind": "managed_artifact", "reference": r["blob"] or ""},
            "missing_secrets": missing,
        })
    return {"schema_version": PALYRA_LAYOUT_VERSION, "updated_at_unix_ms": now_ms, "entries": entries}


def trust_store_document(trusted: dict[str, list[str]], tofu: dict[str, str]) -> dict[str, Any]:
    return trust_store_to_dict(normalize(trusted, tofu))
