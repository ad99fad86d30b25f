"""The runner: run one tool of an installed skill in a wasmtime sandbox, found through the
views and confirmed from the journal (``runtime.md``, issue 11).

    result = run_tool(settings, "examples.echo", '{"text": "hi"}')

``Runner`` keeps its read model, its journal confirmations, caches and compiled modules
between calls (a long-lived caller makes one and calls ``run`` many times); ``run_tool`` is
the one-shot form. A warm call costs two indexed SQLite reads (journal head, views
position), one ``stat`` of the stored artifact, the schema checks, and the sandboxed call
itself: the journal confirmation (``confirm.py``) is cached by the journal position, and at
a new position one more indexed query tells whether the streams it read changed. A one-shot
call pays one confirmation (three short streams replayed). A ``Runner`` serves one thread
at a time (wasmtime stores are single-threaded); make one per thread.
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
from skill_ledger.domain.errors import ExecutionError, SkillLedgerError, ToolNotFound, UsageError
from skill_ledger.domain.grants import CapabilityGrants, capability_grants
from skill_ledger.domain.manifest import Manifest, Tool, manifest_from_json, tool_ids
from skill_ledger.domain.text import trim

from .call import Calls, ToolCall
from .confirm import Confirmed, JournalReader, confirm_version, differences, open_reader, refusal
from .engine import ModuleCache
from .gate import ArtifactCheck, SchemaCheck, check_input, deny, drifted, find_version
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
    """What the runner derives once from a version's manifest as the journal recorded it."""

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


def _version(c: Confirmed) -> _Version:
    # The payload hash binds skill.toml, so one (skill, version, payload) has one manifest.
    key = (c.skill_id, c.version or "", c.payload_sha256)
    with _versions_lock:
        found = _versions.get(key)
        if found is not None:
            _versions.move_to_end(key)
            return found
    made = _Version(c.manifest)
    with _versions_lock:
        _versions[key] = made
        while len(_versions) > 256:
            _versions.popitem(last=False)
    return made


MAX_CONFIRMATIONS = 1024  # per Runner: (skill, requested version) pairs remembered


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
        self._reader: JournalReader | None = None
        self._rows: dict[tuple[str, str | None, str | None], sqlite3.Row] = {}
        self._rows_at = -1  # the views position the rows were looked up at
        self._confirmed: dict[tuple[str, str | None], Confirmed] = {}
        # (skill, requested version) -> the views row, confirmation and tool last found to agree
        self._agreed: dict[tuple[str, str | None], tuple[sqlite3.Row, Confirmed, str]] = {}

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- the views (lookup) and the journal (decision) -------------------------------------

    def _journal(self) -> JournalReader:
        if self._reader is None:
            self._reader = open_reader(self.settings)
        return self._reader

    def _views(self) -> tuple[Any, int]:
        """The views, caught up with the journal, and the position they are at (rows looked up at
        another position are forgotten: another process may have caught the views up meanwhile)."""
        head = self._journal().head()
        position = None
        if self._store is not None:
            position = self._store.position()
            if head is None or head != position:
                self._store.close()
                self._store = None
        if self._store is None:
            self._store = open_views(self.settings, notify=self.notify)
            position = self._store.position()
        assert position is not None
        if position != self._rows_at:
            self._rows.clear()
            self._rows_at = position
        return self._store, position

    def _row(self, tool_id: str, skill_id: str | None, version: str | None, store: Any = None) -> sqlite3.Row:
        """The views' row of the version that declares the tool (a candidate, not a decision)."""
        key = (tool_id, skill_id, version)
        row = self._rows.get(key)
        if row is None:
            row = find_version((store or self._views()[0]).con, tool_id, skill_id, version)
            self._rows[key] = row
        return row

    def _confirmation(self, skill_id: str, version: str | None, position: int) -> Confirmed:
        """The journal's word on the version, as of ``position`` (cached while its streams are unchanged)."""
        key = (skill_id, version)
        c = self._confirmed.get(key)
        if c is not None and c.head != position:
            unchanged = c.head < position and not self._journal().changed(c.streams, c.head, position)
            c = msgspec.structs.replace(c, head=position) if unchanged else None
        if c is None:
            c = confirm_version(self._journal(), skill_id, version, position)
        if len(self._confirmed) >= MAX_CONFIRMATIONS and key not in self._confirmed:
            self._confirmed.clear()
            self._agreed.clear()
        self._confirmed[key] = c
        return c

    def _confirmed_tool(self, tool_id: str, skill_id: str | None, version: str | None) -> tuple[Confirmed, Tool]:
        """Find the tool's version in the views, confirm it from the journal, and check that the
        two agree (drift is reported, the views rebuilt and the call refused)."""
        store, position = self._views()
        row = self._row(tool_id, skill_id, version, store)
        c = self._confirmation(row["skill_id"], version, position)
        tool = _version(c).tools.get(trim(tool_id)) if c.version is not None else None
        key = (row["skill_id"], version)
        agreed = self._agreed.get(key)
        if agreed is None or agreed[0] is not row or agreed[1] is not c or agreed[2] != trim(tool_id):
            found = differences(row, c, tool is not None)
            if found:
                self._forget()
                head = self._journal().head()
                drifted(self.settings, c, found, self.notify, rebuild=head is None or position <= head)
            self._agreed[key] = (row, c, trim(tool_id))
        if tool is None:  # unreachable: differences() reports a tool the journal's manifest lacks
            raise ToolNotFound(f"{c.skill_id} {c.version} declares no tool {tool_id}", {"tool_id": tool_id})
        return c, tool

    def _forget(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        self._rows.clear()
        self._confirmed.clear()
        self._agreed.clear()

    # --- one run --------------------------------------------------------------------------

    def run(self, tool_id: str, input_json: str | bytes | None = None, *, skill_id: str | None = None,
            version: str | None = None, timeout_ms: int | None = None) -> RunResult:
        value, payload = self._input(input_json)
        if timeout_ms is not None and timeout_ms <= 0:
            raise UsageError("--timeout-ms must be a positive number of milliseconds", {"timeout_ms": timeout_ms})
        c, tool = self._confirmed_tool(tool_id, skill_id, version)
        v = _version(c)
        where = {"tool_id": tool.id, "skill_id": c.skill_id, "version": c.version}
        refused = refusal(c)
        if refused is not None:
            self._rows.clear()
            deny(self.settings, c, tool.id, refused[0], refused[1], self.notify)
        try:
            record, entries = self.artifacts.verify(c)
        except SkillLedgerError:
            self._rows.clear()
            raise
        validating = check_input(v.schema(tool, "input_schema"), value, where)

        resolved = record.tools.get(trim(tool.id))
        if resolved is None or resolved.module_path is None:
            raise ToolNotFound(f"no module of {c.skill_id} {c.version} serves tool {tool.id}: "
                               f"{resolved.reason if resolved else 'unknown tool'}", where)
        limits = limits_for(v.manifest.capabilities.quotas, timeout_ms, policy=c.policy, base=self.limits)
        _time_left(limits, validating, where)
        done = self.calls.run(ToolCall(
            skill_id=c.skill_id, tool=tool, manifest=v.manifest, grants=v.grants,
            module_path=resolved.module_path, module_sha256=record.modules[resolved.module_path],
            artifact_sha256=c.artifact_sha256, output_schema=v.schema(tool, "output_schema"), limits=limits,
            where=where, input_validation_s=validating), value, payload, lambda: self._entries(c, entries),
            resolver=self.resolver)
        return RunResult(tool.id, c.skill_id, c.version or "", done.abi, done.output, done.exit_code,
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

    def _entries(self, c: Confirmed, entries: dict[str, bytes] | None) -> dict[str, bytes]:
        if entries is None:
            from skill_ledger.domain.errors import ArtifactMissing, ArtifactTampered
            from skill_ledger.domain.ziparchive import decode_archive

            try:
                data = self.artifacts.blobs.read_verified(c.artifact_sha256, skill_id=c.skill_id,
                                                          version=c.version or "")
            except (ArtifactTampered, ArtifactMissing) as e:
                self.artifacts.quarantine(c, e)
            entries = decode_archive(data)
        return entries


def _time_left(limits: RunLimits, validating_s: float, where: dict[str, Any]) -> float:
    """What is left of the wall clock after validating the input (tool schemas run on the host, so
    they count against the call's deadline); nothing is run when validation alone used it up."""
    left_s = limits.timeout_ms / 1000 - validating_s
    if left_s <= 0:
        raise ExecutionError(f"validating the input took {validating_s * 1000:.1f} ms, the whole wall-clock "
                             f"limit of {limits.timeout_ms} ms; nothing was run",
                             {**where, "timeout_ms": limits.timeout_ms}, code="execution_timed_out")
    return left_s


def run_tool(settings: Settings, tool_id: str, input_json: str | bytes | None = None, *,
             skill_id: str | None = None, version: str | None = None, timeout_ms: int | None = None,
             notify: Notify | None = None) -> RunResult:
    """Run one tool once (see :class:`Runner` for repeated calls)."""
    with Runner(settings, notify=notify) as runner:
        return runner.run(tool_id, input_json, skill_id=skill_id, version=version, timeout_ms=timeout_ms)
