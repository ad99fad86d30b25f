"""The gate: nothing runs unless the journal says it may, and the stored bytes are the ones
the journal recorded (``runtime.md`` "Before anything runs", issue 11).

1. The tool id resolves to one skill version in the index projection (the views find the
   candidate; they decide nothing).
2. The journal confirms it (``confirm.py``): the version is current (or the one asked for),
   ``active`` and eligible, its key trusted; the artifact digest, payload hash, key and
   manifest come from the journal. Where the views' row disagrees, that is drift: reported,
   the views rebuilt, the call refused (``projection_drift``, exit 9). A version the journal
   does not let run is refused with ``skill.execution_denied`` recorded (``not_active``, exit 7).
3. The stored artifact's SHA-256 equals the journal's ``artifact_sha256``, and its payload
   hash, signature and key are verified again; a mismatch quarantines the version
   (``artifact_tampered``; a missing blob, or anything in its place that is not a regular
   file, ``artifact_missing``; exit 5).
4. The input validates against the tool's ``input_schema`` (``invalid_input``, exit 2).

Step 3 is remembered: a verified artifact is recorded (in process and in
``<home>/cache/verified/<digest>.json``) with the file's (device, inode, size, mtime_ns,
ctime_ns); while the file still has exactly that identity it is not read or hashed again.
Any write to the file (or a replacement, a chmod, a touch) changes its ctime or inode. The
records on disk are sealed under the home's cache key (``cachekey.py``), and a record only
ever stands for the digest, payload hash and key the journal confirmed.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
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
    ProjectionDrift,
    SkillLedgerError,
    ToolNotFound,
    UsageError,
)

from .cachekey import seal, unseal
from .confirm import Confirmed
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


# --- 2. may it run (the journal decides; see confirm.py) ---------------------------------------


def deny(settings: Settings, c: Confirmed, tool_id: str, code: str, reasons: list[str],
         notify: Notify | None) -> NoReturn:
    from skill_ledger.adapters.usecases.lifecycle import deny_execution
    from skill_ledger.adapters.usecases.session import ledger_session

    with ledger_session(settings, notify=notify) as ledger:
        positions = deny_execution(ledger, c.skill_id, c.version or "", tool_id, code)
    status = c.status if c.installed else "removed"
    why = f", not eligible ({', '.join(reasons)})" if reasons and c.trust_problem is None else ""
    if c.trust_problem is not None and code == c.trust_problem[0]:
        why = f", its signing key is not trusted ({c.trust_problem[1]})"
    raise NotActive(
        f"{c.skill_id} {c.version} may not run: status {status or 'none'}{why}",
        {"skill_id": c.skill_id, "version": c.version, "tool_id": tool_id, "status": status,
         "reason_code": code, "reasons": reasons, "positions": positions},
    )


def drifted(settings: Settings, c: Confirmed, differences: list[dict[str, Any]], notify: Notify | None, *,
            rebuild: bool = True) -> NoReturn:
    """Report views that disagree with the journal, rebuild them, and refuse the call."""
    version = c.version or "(none)"
    fields = ", ".join(d["field"] for d in differences)
    rebuilt = False
    if rebuild:
        if notify:
            notify(f"notice: views.db disagrees with the journal about {c.skill_id} {version} ({fields}); "
                   "rebuilding the views from the journal")
        rebuilt = rebuild_views(settings, notify)
    raise ProjectionDrift(
        f"the projections disagree with the journal about {c.skill_id} {version} ({fields}); "
        + ("the views were rebuilt from the journal; " if rebuilt else "")
        + "nothing was run",
        {"skill_id": c.skill_id, "version": c.version, "differences": differences, "views_rebuilt": rebuilt,
         "journal_position": c.head})


def rebuild_views(settings: Settings, notify: Notify | None) -> bool:
    """Replay the journal into fresh views and swap them in (``skills index rebuild``'s own path)."""
    from skill_ledger.adapters.readmodel.rebuild import rebuild_home

    try:
        rebuild_home(settings, notify=notify)
    except (SkillLedgerError, OSError, sqlite3.Error) as e:
        if notify:
            message = e.message if isinstance(e, SkillLedgerError) else str(e)
            notify(f"warning: the views could not be rebuilt ({message}); `skills index rebuild` retries")
        return False
    return True


# --- 3. the stored artifact ------------------------------------------------------------------


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


_records: dict[str, ArtifactRecord] = {}  # blob path -> record (in process)
_records_lock = threading.Lock()


class ArtifactCheck:
    """Verifies stored artifacts against the journal's facts (a :class:`Confirmed` version),
    remembering verified files by their stat identity."""

    def __init__(self, settings: Settings, *, notify: Notify | None = None) -> None:
        self.settings = settings
        self.notify = notify
        self.blobs = BlobStore(settings.home / "blobs")
        self.directory = settings.cache_dir / "verified"
        self._dir_ok: bool | None = None

    def verify(self, c: Confirmed) -> tuple[ArtifactRecord, dict[str, bytes] | None]:
        """The record for the version's artifact; the artifact's entries when it had to be read."""
        digest = c.artifact_sha256
        path = self.blobs.path_for(digest)
        try:
            st = os.lstat(path)  # the entry itself: a link is not a blob (read_verified refuses it)
        except FileNotFoundError:
            self.quarantine(c, ArtifactMissing(
                f"stored artifact of {c.skill_id} {c.version} is missing: {path}",
                {"skill_id": c.skill_id, "version": c.version, "artifact_sha256": digest, "path": str(path)}))
        key = stat_key(st)
        record = self._remembered(str(path), digest, key) if stat.S_ISREG(st.st_mode) else None
        if record is not None and self._matches(record, c):
            return record, None
        return self._full(c, path, key)

    def unchanged_since_verified(self, digest: str) -> bool:
        """Whether the stored artifact ``digest`` still has exactly the file identity it had when a
        run last verified it in full (read-only: ``skills check`` asks this before hashing)."""
        path = self.blobs.path_for(digest)
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and self._remembered(str(path), digest, stat_key(st)) is not None

    def _matches(self, record: ArtifactRecord, c: Confirmed) -> bool:
        return (record.artifact_sha256, record.payload_sha256, record.key_hex) == (
            c.artifact_sha256, c.payload_sha256, c.key_hex)

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

    def _full(self, c: Confirmed, path: Path, key: StatKey) -> tuple[ArtifactRecord, dict[str, bytes]]:
        from skill_ledger.domain.artifact import inspect_artifact, is_module_path
        from skill_ledger.domain.audit import resolve_tool_module
        from skill_ledger.domain.manifest import tool_ids

        skill_id, version, digest = c.skill_id, c.version or "", c.artifact_sha256
        where = {"skill_id": skill_id, "version": version, "artifact_sha256": digest}
        try:
            data = self.blobs.read_verified(digest, skill_id=skill_id, version=version)
            inspected = inspect_artifact(data)
            if inspected.payload_sha256 != c.payload_sha256 or inspected.public_key_hex != c.key_hex:
                raise ArtifactTampered(f"stored artifact of {skill_id} {version} has another payload or key than "
                                       "the one recorded at install", where)
        except (ArtifactTampered, ArtifactMissing) as e:
            self.quarantine(c, e)
        except ArtifactError as e:
            self.quarantine(c, ArtifactTampered(
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
            unchanged = stat_key(os.lstat(path)) == key
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

    def quarantine(self, c: Confirmed, error: ArtifactTampered | ArtifactMissing) -> NoReturn:
        from skill_ledger.adapters.usecases.lifecycle import quarantine_for
        from skill_ledger.adapters.usecases.session import ledger_session

        with ledger_session(self.settings, notify=self.notify) as ledger:
            result = quarantine_for(ledger, c.skill_id, c.version or "", error.code, error.message,
                                    {k: v for k, v in error.details.items() if k != "path"})
        error.details["positions"] = result.positions
        error.details["quarantined"] = True
        raise error


def forget_verified() -> None:
    """Drop the in-process records (tests; the on-disk ones are checked against the file anyway)."""
    with _records_lock:
        _records.clear()


# --- 4. the input (and the output): schemas on the host -----------------------------------------


class SchemaCheck:
    """A tool schema compiled for the host (``adapters/schemas.py``: no retrieval, linear-time patterns).

    A schema that refers outside its own document is refused before it is compiled (nothing
    is ever fetched or read for it), and so is one that does not compile: the run is then
    refused with a clean error (``invalid_input`` for the input, ``invalid_output`` for the
    output), never a traceback."""

    def __init__(self, schema: Any, what: str) -> None:
        from skill_ledger.adapters.schemas import SchemaInvalid, compile_schema
        from skill_ledger.domain.schemas import non_local_refs

        self.what = what
        self.compiled: Any = None
        self.problem: str | None = None
        refs = non_local_refs(schema)
        if refs:
            ref = refs[0] if len(refs[0]) <= 120 else refs[0][:117] + "..."
            self.problem = f"it refers outside the schema document ({ref!r}); references are never retrieved"
            return
        try:
            self.compiled = compile_schema(schema)
        except SchemaInvalid as e:
            self.problem = e.problem

    def errors(self, value: Any) -> str | None:
        """``None`` when ``value`` is valid, else one readable reason."""
        if self.compiled is None:
            return f"the tool's {self.what} is not a valid JSON Schema: {self.problem}"
        try:
            return self.compiled.problem(value)  # type: ignore[no-any-return]
        except (ValueError, TypeError, RecursionError) as e:  # a value or schema the validator cannot take
            return f"the tool's {self.what} cannot be evaluated on this value: {type(e).__name__}"

    def timed(self, value: Any) -> tuple[str | None, float]:
        """:meth:`errors` and the seconds it took (validation counts against the run's deadline)."""
        started = time.monotonic()
        problem = self.errors(value)
        return problem, time.monotonic() - started


def check_input(schema: SchemaCheck, value: Any, where: dict[str, Any]) -> float:
    """Validate the input; the seconds validation took."""
    problem, took = schema.timed(value)
    if problem is not None:
        raise InvalidInput(f"the input does not match the tool's input_schema: {problem}", where)
    return took
