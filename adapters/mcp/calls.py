"""Running MCP tool calls: through the runner, in worker threads, one ``Runner`` per thread.

Each call is exactly a ``skills run``: ``Runner.run`` is the gate (``runtime.md``): it
refuses (and records ``skill.execution_denied``) what may not run, verifies the stored
artifact, validates the input, and runs the module in a fresh wasmtime ``Store`` with the
version's fuel, memory and wall-clock limits, its capability grants and its secrets.
Nothing here decides whether a tool may run.

Concurrency: a ``Runner`` serves one thread at a time, so every worker thread keeps its own
(one per actor, since the actor is part of the runner's settings: the events a call appends
name the MCP client). The compiled modules, the verified-artifact records and the parsed
manifests are process-wide caches shared by all of them, so a module is compiled once and
every thread instantiates it into its own ``Store``. wasmtime runs guest code without
holding the GIL, so calls proceed in parallel, and a runaway call only holds its own thread
until its deadline (the epoch interrupt) or its fuel stops it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import mcp_types as types
import msgspec

from skill_ledger.adapters.runner import Runner, RunResult
from skill_ledger.adapters.settings import Settings
from skill_ledger.domain.errors import ExecutionError, JournalUnavailable, SkillLedgerError

from .catalog import META, Target

__all__ = ["CallPool", "as_error", "error_result", "run_result"]

log = logging.getLogger("skill_ledger.mcp")

DEFAULT_WORKERS = 8
RUNNERS_PER_THREAD = 4  # distinct client names served by one thread before the oldest runner is closed
PALYRA_V1 = "palyra-v1"

T = TypeVar("T")


class CallPool:
    """Worker threads, each with its own runners; the rest of the process is asynchronous."""

    def __init__(self, settings: Settings, *, workers: int = DEFAULT_WORKERS,
                 notify: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.notify = notify
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="skills-mcp-call")
        self._local = threading.local()
        self._all: list[Runner] = []
        self._all_lock = threading.Lock()

    def submit(self, fn: Callable[..., T], *args: Any) -> "Future[T]":
        return self._executor.submit(fn, *args)

    def runner(self, actor: str) -> Runner:
        """This worker thread's runner for ``actor`` (call from a worker thread only)."""
        runners: OrderedDict[str, Runner] | None = getattr(self._local, "runners", None)
        if runners is None:
            runners = self._local.runners = OrderedDict()
        found = runners.get(actor)
        if found is not None:
            runners.move_to_end(actor)
            return found
        settings = msgspec.structs.replace(self.settings, actor=actor, command="mcp")
        made = Runner(settings, notify=self.notify)
        runners[actor] = made
        with self._all_lock:
            self._all.append(made)
        while len(runners) > RUNNERS_PER_THREAD:
            _, old = runners.popitem(last=False)
            self._close(old)
        return made

    def _close(self, runner: Runner) -> None:
        with self._all_lock:
            if runner in self._all:
                self._all.remove(runner)
        try:
            runner.close()
        except Exception:  # noqa: BLE001 - closing read connections cannot lose anything
            log.debug("closing a runner failed", exc_info=True)

    def shutdown(self) -> None:
        """Let running calls finish (each is bounded by its own deadline), drop queued ones, and
        close the runners."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._all_lock:
            runners, self._all = self._all, []
        for runner in runners:
            try:
                runner.close()
            except Exception:  # noqa: BLE001
                log.debug("closing a runner failed", exc_info=True)

    def run(self, target: Target, arguments: dict[str, Any] | None, actor: str) -> types.CallToolResult:
        """One call, in a worker thread: the runner's result or its error as an MCP tool result."""
        entry = target.entry
        payload = msgspec.json.encode(arguments if arguments is not None else {})
        try:
            result = self.runner(actor).run(entry.tool_id, payload, skill_id=entry.skill_id, version=target.version)
        except Exception as e:  # noqa: BLE001 - every failure becomes a tool error; the server keeps serving
            return error_result(as_error(e, entry.name))
        return run_result(result, target)


def as_error(e: Exception, tool: str = "") -> SkillLedgerError:
    """Our error as it is; a database failure as ``journal_unavailable`` (as the CLI reports it);
    anything else is a bug: logged in full on stderr, one line to the client."""
    if isinstance(e, SkillLedgerError):
        return e
    if isinstance(e, sqlite3.Error) or type(e).__module__.startswith("eventsourcing"):
        return JournalUnavailable(f"a state database failed: {e or type(e).__name__}")
    log.error("%s failed with an internal error:\n%s", f"tool {tool}" if tool else "a call", traceback.format_exc())
    return SkillLedgerError(f"internal error ({type(e).__name__}); see the server's log")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _output_problem(schema: dict[str, Any], value: Any) -> str | None:
    from skill_ledger.adapters.schemas import SchemaInvalid, compile_schema

    key = msgspec.json.encode(schema)
    with _schemas_lock:
        compiled = _schemas.get(key)
    if compiled is None:
        try:
            compiled = compile_schema(schema)
        except SchemaInvalid as e:
            return f"the tool's output_schema is not a valid JSON Schema: {e.problem}"
        with _schemas_lock:
            _schemas[key] = compiled
            while len(_schemas) > 256:
                _schemas.popitem(last=False)
    return compiled.problem(value)


_schemas: OrderedDict[bytes, Any] = OrderedDict()
_schemas_lock = threading.Lock()


def run_result(result: RunResult, target: Target) -> types.CallToolResult:
    """A successful run: the output as text and, when the tool advertises an ``outputSchema``,
    as ``structuredContent``; the run's facts (version, ABI, fuel, its redacted log) in ``_meta``."""
    output = result.output
    structured = None
    if target.entry.has_output_schema:
        problem = None if isinstance(output, dict) else "the output is not a JSON object"
        if problem is None and result.abi == PALYRA_V1:  # the runner does not check palyra-v1's {"exit_code": n}
            problem = _output_problem(target.entry.output_schema or {}, output)
        if problem is not None:
            return error_result(ExecutionError(
                f"the output does not match the tool's output_schema, which MCP requires of structured "
                f"results: {problem}", {"abi": result.abi}, code="invalid_output"))
        structured = output
    meta = {f"{META}run": {"skill_id": result.skill_id, "version": result.version, "tool_id": result.tool_id,
                           "abi": result.abi, "exit_code": result.exit_code, "duration_ms": result.duration_ms,
                           "fuel_consumed": result.fuel_consumed},
            f"{META}log": result.log}
    return types.CallToolResult(content=[types.TextContent(type="text", text=_text(output))],
                                structured_content=structured, is_error=False, _meta=meta)


def error_result(error: SkillLedgerError) -> types.CallToolResult:
    """A refused or failed call as an MCP tool error (``isError``), so the model can read it:
    ``error[<code>]: <message>`` as ``skills run`` prints it, the reason code of a refusal, and
    the error document in ``_meta``."""
    text = f"error[{error.code}]: {error.message}"
    reason = error.details.get("reason_code")
    if reason:
        text += f" (reason_code: {reason})"
    document = msgspec.to_builtins(error.to_dict(), str_keys=True, enc_hook=str)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True,
                                _meta={f"{META}error": document})
