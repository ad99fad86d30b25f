"""``skills check``: is each current version ready to run? (projection facts plus the
stored artifact's presence; a full digest check is ``skills verify``'s job)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.blobs import BlobStore
from skill_ledger.projections.queries import current_rows


def readiness(settings: Settings, con: sqlite3.Connection, skill_id: str | None) -> list[dict[str, Any]]:
    blobs = BlobStore(settings.home / "blobs")
    rows = current_rows(con, skill_id)
    if skill_id and not rows:
        from skill_ledger.domain.errors import NotInstalled

        raise NotInstalled(f"skill {skill_id} has no current version", {"skill_id": skill_id})
    out = []
    for r in rows:
        reasons = [f"not eligible: {reason}" for reason in json.loads(r["eligibility_reasons"])]
        if r["status"] != "active" and not any(r["status"] in x for x in reasons):
            reasons.append(f"status is {r['status'] or 'not active'}")
        if not blobs.exists(r["artifact_sha256"]):
            reasons.append("stored artifact is missing")
        out.append({"skill_id": r["skill_id"], "version": r["version"], "ready": not reasons, "reasons": reasons})
    return out
