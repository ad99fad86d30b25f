"""The runner: run one tool of an installed skill in a wasmtime sandbox, gated by the
projected state (``runtime.md``).

    result = run_tool(settings, "examples.echo", '{"text": "hi"}')

``Runner`` keeps its read model, caches and compiled modules between calls (a long-lived
caller makes one and calls ``run`` many times); ``run_tool`` is the one-shot form. A warm
call costs two indexed SQLite reads (journal head, views position), one ``stat`` of the
stored artifact, the schema checks, and the sandboxed call itself: it never scans the
journal nor re-hashes an unchanged artifact. A ``Runner`` serves one thread at a time (wasmtime
stores are single-threaded); make one per thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgspec

from skill_ledger.adapters.readmodel.views import open_views
from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.secrets import SecretStore
from skill_ledger.domain.errors import SkillLedgerError, ToolNotFound, UsageError
from skill_ledger.domain.grants import CapabilityGrants, capability_grants
from skill_ledger.domain.manifest import Manifest, Tool, manifest_from_json, tool_ids
from skill_ledger.domain.text import trim

from .call import Calls, ToolCall
from .engine import ModuleCache
from .gate import ArtifactCheck, SchemaCheck, check_input, deny, find_version, refusal
from .limits import DEFAULT_LIMITS, RunLimits, limits_for

__all__ = ["Capabilities", "RunLimits", "RunResult", "Runner", "run_tool"]

Notify = Callable[[str], None]


class Capabilities(msgspec.Struct, frozen=True):
    http_hosts: list[str]
    storage_roots: list[str]
    secret_count: int


class RunResult(msgspec.Struct, frozen=True):
    tool_id: str
    skill_id: str
    version: str
    abi: str
    output: Any
    exit_code: int
    duration_ms: float
    fuel_consumed: int
    log: list[dict[str, Any]]
    capabilities: Capabilities


class _Version:
    """What the runner derives once from a version's recorded manifest."""

    def __init__(self, manifest_json: dict[str, Any]) -> None:
        self.manifest: Manifest = manifest_from_json(manifest_json)
        self.grants: CapabilityGrants = capability_grants(self.manifest)
        self.tools: dict[str, Tool] = dict(zip(tool_ids(self.manifest), self.manifest.entrypoints.tools))
        fs = self.manifest.capabilities.filesystem
        self.capabilities = Capabilities(self.grants.http_hosts, sorted({*fs.read_roots, *fs.write_roots}),
                                         len(self.grants.secret_keys))
        self._schemas: dict[tuple[str, str], SchemaCheck] = {}

    def schema(self, tool: Tool, which: str) -> SchemaCheck:
        key = (tool.id, which)
        check = self._schemas.get(key)
        if check is None:
            check = self._schemas[key] = SchemaCheck(getattr(tool, which), which)
        return check


_versions: OrderedDict[tuple[str, str, str], _Version] = OrderedDict()
_versions_lock = threading.Lock()


def _version(row: sqlite3.Row) -> _Version:
    key = (row["skill_id"], row["version"], row["payload_sha256"])
    with _versions_lock:
        found = _versions.get(key)
        if found is not None:
            _versions.move_to_end(key)
            return found
    import json

    made = _Version(json.loads(row["manifest"]))
    with _versions_lock:
        _versions[key] = made
        while len(_versions) > 256:
            _versions.popitem(last=False)
    return made


class Runner:
    def __init__(self, settings: Settings, *, notify: Notify | None = None, limits: RunLimits = DEFAULT_LIMITS,
                 resolver: Any = None) -> None:
        self.settings = settings
        self.notify = notify
        self.limits = limits
        self.resolver = resolver  # egress DNS resolver (tests); None: the system's
        self.artifacts = ArtifactCheck(settings, notify=notify)
        self.modules = ModuleCache(settings.cache_dir, notify=notify, limits=limits)
        self.secrets = SecretStore(settings.secrets_path)
        self.calls = Calls(settings, modules=self.modules, secrets=self.secrets, notify=notify)
        self._store: Any = None
        self._journal: sqlite3.Connection | None = None
        self._rows: dict[tuple[str, str | None, str | None], sqlite3.Row] = {}

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- the read model, fresh for every call -----------------------------------------------

    def _head(self) -> int | None:
        if not self.settings.journal_is_sqlite:
            return None
        if self._journal is None:
            path = self.settings.journal_path
            if not path.exists():
                return None
            try:
                self._journal = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False)
            except sqlite3.Error:
                return None
        try:
            return self._journal.execute("SELECT max(rowid) FROM stored_events").fetchone()[0] or 0
        except sqlite3.Error:
            return None

    def _views(self) -> Any:
        if self._store is not None:
            head = self._head()
            if head is not None and head == self._store.position():
                return self._store
            self._store.close()
            self._store = None
            self._rows.clear()
        self._store = open_views(self.settings, notify=self.notify)
        return self._store

    def _row(self, tool_id: str, skill_id: str | None, version: str | None) -> sqlite3.Row:
        store = self._views()
        key = (tool_id, skill_id, version)
        row = self._rows.get(key)
        if row is None:
            row = find_version(store.con, tool_id, skill_id, version)
            self._rows[key] = row
        return row

    # --- one run --------------------------------------------------------------------------

    def run(self, tool_id: str, input_json: str | bytes | None = None, *, skill_id: str | None = None,
            version: str | None = None, timeout_ms: int | None = None) -> RunResult:
        value, payload = self._input(input_json)
        if timeout_ms is not None and timeout_ms <= 0:
            raise UsageError("--timeout-ms must be a positive number of milliseconds", {"timeout_ms": timeout_ms})
        row = self._row(tool_id, skill_id, version)
        v = _version(row)
        tool = v.tools.get(trim(tool_id))
        if tool is None:  # the projection and the manifest disagree: treat as unknown
            raise ToolNotFound(f"{row['skill_id']} {row['version']} declares no tool {tool_id}",
                               {"tool_id": tool_id, "skill_id": row["skill_id"], "version": row["version"]})
        where = {"tool_id": tool.id, "skill_id": row["skill_id"], "version": row["version"]}
        refused = refusal(row)
        if refused is not None:
            self._rows.clear()
            deny(self.settings, row, tool.id, refused[0], refused[1], self.notify)
        try:
            record, entries = self.artifacts.verify(row)
        except SkillLedgerError:
            self._rows.clear()
            raise
        check_input(v.schema(tool, "input_schema"), value, where)

        resolved = record.tools.get(trim(tool.id))
        if resolved is None or resolved.module_path is None:
            raise ToolNotFound(f"no module of {row['skill_id']} {row['version']} serves tool {tool.id}: "
                               f"{resolved.reason if resolved else 'unknown tool'}", where)
        limits = limits_for(v.manifest.capabilities.quotas, timeout_ms, base=self.limits)
        done = self.calls.run(ToolCall(
            skill_id=row["skill_id"], tool=tool, manifest=v.manifest, grants=v.grants,
            module_path=resolved.module_path, module_sha256=record.modules[resolved.module_path],
            artifact_sha256=row["artifact_sha256"], output_schema=v.schema(tool, "output_schema"), limits=limits,
            where=where), value, payload, lambda: self._entries(row, entries), resolver=self.resolver)
        return RunResult(tool.id, row["skill_id"], row["version"], done.abi, done.output, done.exit_code,
                         done.duration_ms, done.fuel_consumed, done.log, v.capabilities)

    def _input(self, input_json: str | bytes | None) -> tuple[Any, bytes]:
        raw = b"{}" if input_json is None else input_json.encode("utf-8") if isinstance(input_json, str) else input_json
        if len(raw) > self.limits.input_max_bytes:
            raise UsageError(f"the input is larger than {self.limits.input_max_bytes} bytes")
        try:
            value = msgspec.json.decode(raw)
        except msgspec.MsgspecError as e:
            raise UsageError(f"the input is not valid JSON: {e}") from None
        except RecursionError:
            raise UsageError("the input JSON is nested too deeply") from None
        return value, msgspec.json.encode(value)

    def _entries(self, row: sqlite3.Row, entries: dict[str, bytes] | None) -> dict[str, bytes]:
        if entries is None:
            from skill_ledger.domain.errors import ArtifactMissing, ArtifactTampered
            from skill_ledger.domain.ziparchive import decode_archive

            try:
                data = self.artifacts.blobs.read_verified(row["artifact_sha256"], skill_id=row["skill_id"],
                                                          version=row["version"])
            except (ArtifactTampered, ArtifactMissing) as e:
                self.artifacts.quarantine(row, e)
            entries = decode_archive(data)
        return entries


def run_tool(settings: Settings, tool_id: str, input_json: str | bytes | None = None, *,
             skill_id: str | None = None, version: str | None = None, timeout_ms: int | None = None,
             notify: Notify | None = None) -> RunResult:
    """Run one tool once (see :class:`Runner` for repeated calls)."""
    with Runner(settings, notify=notify) as runner:
        return runner.run(tool_id, input_json, skill_id=skill_id, version=version, timeout_ms=timeout_ms)
