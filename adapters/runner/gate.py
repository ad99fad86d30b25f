"""The gate: nothing runs unless the projected state says it may, and the stored bytes are
the ones the journal recorded (``runtime.md`` "Before anything runs").

1. The tool id resolves to one skill version in the index projection.
2. That version is ``active`` and eligible; otherwise ``skill.execution_denied`` is recorded
   and the run refused (``not_active``, exit 7).
3. The stored artifact's SHA-256 equals the recorded ``artifact_sha256``, and its payload hash,
   signature and key are verified again; a mismatch quarantines the version
   (``artifact_tampered`` / ``artifact_missing``, exit 5).
4. The input validates against the tool's ``input_schema`` (``invalid_input``, exit 2).

Step 3 is remembered: a verified artifact is recorded (in process and in
``<home>/cache/verified/<digest>.json``) with the file's (device, inode, size, mtime_ns,
ctime_ns); while the file still has exactly that identity it is not read or hashed again.
Any write to the file (or a replacement, a chmod, a touch) changes its ctime or inode.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import msgspec

from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.blobs import BlobStore
from skill_ledger.adapters.storage.files import atomic_write, ensure_private_dir
from skill_ledger.domain.errors import (
    ArtifactError,
    ArtifactMissing,
    ArtifactTampered,
    InvalidInput,
    NotActive,
    NotInstalled,
    SkillLedgerError,
    ToolNotFound,
    UsageError,
)

from .cachekey import seal, unseal
from .engine import private_dir_problem, read_facts, read_private_file

Notify = Callable[[str], None]
StatKey = tuple[int, int, int, int, int]
RECORD_FORMAT = 1
RECORD_PURPOSE = "skill-ledger/verified-artifact/v1"  # records are sealed under the home's cache key


class ToolModule(msgspec.Struct, frozen=True):
    module_path: str | None
    reason: str | None = None


class ArtifactRecord(msgspec.Struct, frozen=True):
    """What a full verification of one stored artifact established."""

    format: int
    artifact_sha256: str
    stat: StatKey
    payload_sha256: str
    key_hex: str
    modules: dict[str, str]  # module path -> sha256
    tools: dict[str, ToolModule]  # tool id -> the module that serves it


# --- 1. which version ------------------------------------------------------------------------


def find_version(con: sqlite3.Connection, tool_id: str, skill_id: str | None, version: str | None) -> sqlite3.Row:
    from skill_ledger.projections.queries import tool_versions, version_row

    rows = tool_versions(con, tool_id, skill_id=skill_id, version=version)
    where = {"tool_id": tool_id, "skill_id": skill_id, "version": version}
    if len(rows) > 1:
        candidates = [f"{r['skill_id']} {r['version']}" for r in rows]
        raise UsageError(f"tool {tool_id} is declared by several skills ({', '.join(candidates)}); "
                         "choose one with --skill", {**where, "candidates": candidates})
    if rows:
        return rows[0]
    if skill_id is not None and version is not None and version_row(con, skill_id, version) is None:
        raise NotInstalled(f"{skill_id} {version} was never installed", where)
    narrowed = "".join([f" of skill {skill_id}" if skill_id else "",
                        f" version {version}" if version else " (current versions)"])
    raise ToolNotFound(f"no installed skill{narrowed} declares a tool {tool_id}", where)


# --- 2. may it run ---------------------------------------------------------------------------


def refusal(row: sqlite3.Row) -> tuple[str, list[str]] | None:
    """``None`` when the version is active and eligible, else (reason code, reasons)."""
    reasons: list[str] = json.loads(row["eligibility_reasons"] or "[]")
    if not row["installed"]:
        return "not_installed", reasons or ["not_installed"]
    if row["status"] != "active":
        code = row["status"] or "not_active"
        return code, reasons or [code]
    if not row["eligible"]:
        return (reasons[0] if reasons else "not_eligible"), reasons or ["not_eligible"]
    return None


def deny(settings: Settings, row: sqlite3.Row, tool_id: str, code: str, reasons: list[str],
         notify: Notify | None) -> NoReturn:
    from skill_ledger.adapters.usecases.lifecycle import deny_execution
    from skill_ledger.adapters.usecases.session import ledger_session

    with ledger_session(settings, notify=notify) as ledger:
        positions = deny_execution(ledger, row["skill_id"], row["version"], tool_id, code)
    status = row["status"] if row["installed"] else "removed"
    raise NotActive(
        f"{row['skill_id']} {row['version']} may not run: status {status or 'none'}"
        + (f", not eligible ({', '.join(reasons)})" if reasons else ""),
        {"skill_id": row["skill_id"], "version": row["version"], "tool_id": tool_id, "status": status,
         "reason_code": code, "reasons": reasons, "positions": positions},
    )


# --- 3. the stored artifact ------------------------------------------------------------------


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


_records: dict[str, ArtifactRecord] = {}  # blob path -> record (in process)
_records_lock = threading.Lock()


class ArtifactCheck:
    """Verifies stored artifacts, remembering verified files by their stat identity."""

    def __init__(self, settings: Settings, *, notify: Notify | None = None) -> None:
        self.settings = settings
        self.notify = notify
        self.blobs = BlobStore(settings.home / "blobs")
        self.directory = settings.cache_dir / "verified"
        self._dir_ok: bool | None = None

    def verify(self, row: sqlite3.Row) -> tuple[ArtifactRecord, dict[str, bytes] | None]:
        """The record for the row's artifact; the artifact's entries when it had to be read."""
        digest = row["artifact_sha256"]
        path = self.blobs.path_for(digest)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self.quarantine(row, ArtifactMissing(
                f"stored artifact of {row['skill_id']} {row['version']} is missing: {path}",
                {"skill_id": row["skill_id"], "version": row["version"], "artifact_sha256": digest,
                 "path": str(path)}))
        key = stat_key(st)
        record = self._remembered(str(path), digest, key)
        if record is not None and self._matches(record, row):
            return record, None
        return self._full(row, path, key)

    def _matches(self, record: ArtifactRecord, row: sqlite3.Row) -> bool:
        return (record.artifact_sha256, record.payload_sha256, record.key_hex) == (
            row["artifact_sha256"], row["payload_sha256"], row["key_hex"])

    def _remembered(self, path: str, digest: str, key: StatKey) -> ArtifactRecord | None:
        with _records_lock:
            record = _records.get(path)
        if record is not None and record.stat == key and record.artifact_sha256 == digest:
            return record
        if not self._dir_usable(create=False):
            return None
        raw = read_private_file(self.directory / f"{digest}.json", 1024 * 1024)
        raw = unseal(self.settings.home, RECORD_PURPOSE, raw) if raw is not None else None  # forged: verify fully
        if raw is None:
            return None
        try:
            record = msgspec.json.decode(raw, type=ArtifactRecord)
        except msgspec.MsgspecError:
            return None
        if record.format != RECORD_FORMAT or record.stat != key or record.artifact_sha256 != digest:
            return None
        with _records_lock:
            _records[path] = record
        return record

    def _full(self, row: sqlite3.Row, path: Path, key: StatKey) -> tuple[ArtifactRecord, dict[str, bytes]]:
        from skill_ledger.domain.artifact import inspect_artifact, is_module_path
        from skill_ledger.domain.audit import resolve_tool_module
        from skill_ledger.domain.manifest import tool_ids

        skill_id, version, digest = row["skill_id"], row["version"], row["artifact_sha256"]
        where = {"skill_id": skill_id, "version": version, "artifact_sha256": digest}
        try:
            data = self.blobs.read_verified(digest, skill_id=skill_id, version=version)
            inspected = inspect_artifact(data)
            if inspected.payload_sha256 != row["payload_sha256"] or inspected.public_key_hex != row["key_hex"]:
                raise ArtifactTampered(f"stored artifact of {skill_id} {version} has another payload or key than "
                                       "the one recorded at install", where)
        except (ArtifactTampered, ArtifactMissing) as e:
            self.quarantine(row, e)
        except ArtifactError as e:
            self.quarantine(row, ArtifactTampered(
                f"stored artifact of {skill_id} {version} no longer verifies: {e.message}",
                {**where, "error_code": e.code}))
        entries = inspected.entries
        facts = {p: read_facts(p, d) for p, d in entries.items() if is_module_path(p)}  # validated, not compiled
        m = inspected.manifest
        tools = {}
        for tid, tool in zip(tool_ids(m), m.entrypoints.tools):
            r = resolve_tool_module(m, facts, tool)
            tools[tid] = ToolModule(r.module_path, r.reason)
        record = ArtifactRecord(RECORD_FORMAT, digest, key, inspected.payload_sha256, inspected.public_key_hex,
                                {p: facts[p].sha256 for p in entries if is_module_path(p)}, tools)
        try:
            unchanged = stat_key(os.stat(path)) == key
        except OSError:
            unchanged = False
        if unchanged:  # only remember what was verified while the file kept this identity
            with _records_lock:
                _records[str(path)] = record
            if self._dir_usable(create=True):
                sealed = seal(self.settings.home, RECORD_PURPOSE, msgspec.json.encode(record))
                try:
                    if sealed is not None:
                        atomic_write(self.directory / f"{digest}.json", sealed, mode=0o600)
                except Exception:  # noqa: BLE001 - the record only saves time
                    pass
        return record, entries

    def _dir_usable(self, *, create: bool) -> bool:
        if self._dir_ok is None or (create and not self._dir_ok):
            if create:
                try:
                    ensure_private_dir(self.settings.cache_dir)
                    ensure_private_dir(self.directory)
                except SkillLedgerError:
                    pass
            ok = private_dir_problem(self.settings.cache_dir) is None and private_dir_problem(self.directory) is None
            if not ok and not create:
                return False  # not there yet: decided again when a record is written
            self._dir_ok = ok
        return self._dir_ok

    def quarantine(self, row: sqlite3.Row, error: ArtifactTampered | ArtifactMissing) -> NoReturn:
        from skill_ledger.adapters.usecases.lifecycle import quarantine_for
        from skill_ledger.adapters.usecases.session import ledger_session

        with ledger_session(self.settings, notify=self.notify) as ledger:
            result = quarantine_for(ledger, row["skill_id"], row["version"], error.code, error.message,
                                    {k: v for k, v in error.details.items() if k != "path"})
        error.details["positions"] = result.positions
        error.details["quarantined"] = True
        raise error


def forget_verified() -> None:
    """Drop the in-process records (tests; the on-disk ones are checked against the file anyway)."""
    with _records_lock:
        _records.clear()


# --- 4. the input ----------------------------------------------------------------------------


class SchemaCheck:
    """A tool schema compiled for the host (``adapters/schemas.py``: no retrieval, linear-time patterns)."""

    def __init__(self, schema: Any, what: str) -> None:
        from skill_ledger.adapters.schemas import SchemaInvalid, compile_schema

        self.what = what
        try:
            self.compiled = compile_schema(schema)
            self.problem: str | None = None
        except SchemaInvalid as e:
            self.compiled = None
            self.problem = e.problem

    def errors(self, value: Any) -> str | None:
        """``None`` when ``value`` is valid, else one readable reason."""
        if self.compiled is None:
            return f"the tool's {self.what} is not a valid JSON Schema: {self.problem}"
        return self.compiled.problem(value)


def check_input(schema: SchemaCheck, value: Any, where: dict[str, Any]) -> None:
    problem = schema.errors(value)
    if problem is not None:
        raise InvalidInput(f"the input does not match the tool's input_schema: {problem}", where)
