"""``skills check``: is each current version ready to run? The projection's facts (status,
eligibility) plus the stored artifact: present, a regular file, and its SHA-256 the digest the
journal recorded. The digest is checked cheaply: a file with exactly the identity (device,
inode, size, mtime, ctime) it had when a run last verified it in full is not read again (the
runner's sealed record, ``adapters/runner/gate.py``); any other file is hashed. What was
checked is part of each result. A full verification (payload hash, signature, trust) is
``skills verify``'s job; ``check`` records nothing.

Also here: the module facts ``skills info`` shows (each tool's ABI, each module's imports and
exports), read from the stored artifact without compiling anything.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.blobs import BlobStore, NotRegularFile, open_regular
from skill_ledger.projections.queries import current_rows

HASH_CHUNK = 1 << 20


def readiness(settings: Settings, con: sqlite3.Connection, skill_id: str | None) -> list[dict[str, Any]]:
    blobs = BlobStore(settings.home / "blobs")
    rows = current_rows(con, skill_id)
    if skill_id and not rows:
        from skill_ledger.domain.errors import NotInstalled

        raise NotInstalled(f"skill {skill_id} has no current version", {"skill_id": skill_id})
    remembered = _runner_records(settings) if rows else None
    out = []
    for r in rows:
        reasons = [f"not eligible: {reason}" for reason in json.loads(r["eligibility_reasons"])]
        if r["status"] != "active" and not any(r["status"] in x for x in reasons):
            reasons.append(f"status is {r['status'] or 'not active'}")
        digest, problem = _digest_check(blobs, r["artifact_sha256"], remembered)
        if problem:
            reasons.append(problem)
        out.append({"skill_id": r["skill_id"], "version": r["version"], "ready": not reasons, "reasons": reasons,
                    "checked": ["status", "eligibility", f"artifact digest ({digest})"]})
    return out


def _runner_records(settings: Settings) -> Any:
    from skill_ledger.adapters.runner.gate import ArtifactCheck  # the runner's records, read-only

    return ArtifactCheck(settings)


def _digest_check(blobs: BlobStore, digest: str, remembered: Any) -> tuple[str, str | None]:
    """(how the digest was checked, the problem or None)."""
    if remembered is not None and remembered.unchanged_since_verified(digest):
        return "file unchanged since its last full verification", None
    path = blobs.path_for(digest)
    h = hashlib.sha256()
    try:
        with open_regular(path) as f:
            while chunk := f.read(HASH_CHUNK):
                h.update(chunk)
    except FileNotFoundError:
        return "missing", "stored artifact is missing"
    except NotRegularFile as e:
        return "unusable", f"stored artifact is {e.kind}, not a regular file"
    except OSError as e:
        return "unreadable", f"stored artifact cannot be read: {e.strerror or e}"
    if h.hexdigest() != digest:
        return "sha256 recomputed", ("stored artifact does not match the digest recorded at install (tampered; "
                                     "`skills verify` quarantines it)")
    return "sha256 recomputed", None


# --- skills info: the modules and the ABI of each tool ----------------------------------------


def module_summary(settings: Settings, artifact_sha256: str) -> dict[str, Any]:
    """What the stored artifact's modules offer: per module its imports and exports, per tool the
    module that serves it and the runner ABI it would run under (or why none). Read from the
    stored bytes and validated, never compiled. ``available`` is false (with ``problem``) when the
    stored artifact cannot be read or does not match its digest."""
    from skill_ledger.adapters.audit.inspector import inspect_modules
    from skill_ledger.domain.abi import plan
    from skill_ledger.domain.artifact import inspect_artifact
    from skill_ledger.domain.audit import resolve_tool_module
    from skill_ledger.domain.errors import CapabilityDenied, SkillLedgerError
    from skill_ledger.domain.manifest import tool_ids

    try:
        inspected = inspect_artifact(BlobStore(settings.home / "blobs").read_verified(artifact_sha256))
    except SkillLedgerError as e:
        return {"available": False, "problem": e.message, "modules": [], "tools": []}
    facts = inspect_modules(inspected.entries)
    modules = [{"path": f.path, "valid": f.valid, "error": f.error, "size": f.size,
                "imports": [f"{i.module}.{i.name}" for i in f.imports],
                "exports": [f"{e.name} {e.type}".rstrip() for e in f.exports]}
               for f in facts.values()]
    m = inspected.manifest
    tools = []
    for tid, tool in zip(tool_ids(m), m.entrypoints.tools):
        resolved = resolve_tool_module(m, facts, tool)
        entry: dict[str, Any] = {"tool_id": tid, "module_path": resolved.module_path, "abi": None, "entry": None,
                                 "problem": None}
        if resolved.module_path is None:
            entry["problem"] = f"no module resolves: {resolved.reason}"
        elif not facts[resolved.module_path].valid:
            entry["problem"] = f"module is not valid: {facts[resolved.module_path].error}"
        else:
            try:
                chosen = plan(facts[resolved.module_path], tool.name, m.operator.plugin.default_entrypoint)
                entry.update(abi=chosen.abi, entry=chosen.entry)
            except CapabilityDenied as e:
                entry["problem"] = e.message
        tools.append(entry)
    return {"available": True, "problem": None, "modules": modules, "tools": tools}
