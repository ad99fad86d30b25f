"""One tool call after the gate: the module and its ABI, the sandboxed run, and what the
result or the error says (``runtime.md``; ``docs/runtime-abis.md``).

Order matters for cost and for honesty:

1. The module's facts (from the cache, or read without compiling) decide the ABI, so a
   module that implements none for the tool is refused before anything is compiled.
2. The compiled module comes from memory, the authenticated disk cache, or the bounded
   compile worker (``engine.py``).
3. A WASI command is driven as its tool declaration says (``assets/tools/<tool id>.json``):
   argv, environment, stdin and stdout modes, the exit statuses that count as success.
4. Its stderr becomes log entries (under the log's entry and byte caps) and its tail and exit
   status go into every error; output past a cap is discarded and the result says so.
5. Secret values are redacted before anything is cut to size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.secrets import SecretStore
from skill_ledger.domain.abi import JSON_V1, PALYRA_V1, WASI_COMMAND, AbiPlan, plan
from skill_ledger.domain.audit import ModuleFacts
from skill_ledger.domain.errors import CapabilityDenied, ExecutionError, SkillLedgerError
from skill_ledger.domain.grants import CapabilityGrants
from skill_ledger.domain.manifest import Manifest, Tool
from skill_ledger.domain.tool_decl import DEFAULT, Invocation, ToolDeclaration, declaration_path, expand

from . import abi
from .declarations import Declarations
from .engine import ModuleCache
from .hostcalls import HostContext
from .limits import RunLimits

__all__ = ["Calls", "Done", "ToolCall"]

Notify = Callable[[str], None]
Entries = Callable[[], Mapping[str, bytes]]


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """What the gate established for one call."""

    skill_id: str
    tool: Tool
    manifest: Manifest
    grants: CapabilityGrants
    module_path: str
    module_sha256: str
    artifact_sha256: str
    output_schema: Any  # gate.SchemaCheck
    limits: RunLimits
    where: dict[str, Any]
    input_validation_s: float = 0.0  # what validating the input took: the module gets the wall clock less that


class Done(msgspec.Struct, frozen=True):
    abi: str
    output: Any
    exit_code: int
    duration_ms: float
    fuel_consumed: int
    log: list[dict[str, Any]]


class Calls:
    def __init__(self, settings: Settings, *, modules: ModuleCache, secrets: SecretStore,
                 notify: Notify | None = None) -> None:
        self.settings = settings
        self.modules = modules
        self.secrets = secrets
        self.declarations = Declarations(settings.cache_dir, notify=notify)
        self._plans: dict[tuple[str, str, str | None], AbiPlan] = {}

    def plan(self, facts: ModuleFacts, tool: Tool, manifest: Manifest) -> AbiPlan:
        default_entry = manifest.operator.plugin.default_entrypoint
        key = (facts.sha256, tool.name, default_entry)
        found = self._plans.get(key)
        if found is None:
            found = plan(facts, tool.name, default_entry)
            if found.abi == JSON_V1 and facts.export_type("_initialize") not in (None, "() -> ()"):
                raise CapabilityDenied(f"module {facts.path} was not instantiated: its _initialize export is not "
                                       "a () -> () function", {"module_path": facts.path})
            self._plans[key] = found
        return found

    def run(self, call: ToolCall, value: Any, payload: bytes, entries: Entries, *, resolver: Any = None) -> Done:
        """Run the call (``entries()`` supplies the verified artifact's entries when a module or
        a declaration is not cached; ``resolver`` is the egress DNS resolver, ``None`` the system's)."""
        tool, path = call.tool, call.module_path
        loaded = self.modules.get(call.module_sha256, path, lambda: entries()[path],
                                  before_compile=lambda facts: self.plan(facts, tool, call.manifest))
        p = self.plan(loaded.facts, tool, call.manifest)
        invocation = self._invocation(call, p, value, payload, entries)
        limits = call.limits
        deadline = time.monotonic() + limits.timeout_ms / 1000 - call.input_validation_s
        ctx = HostContext(skill_id=call.skill_id, tool_name=tool.name, manifest=call.manifest, grants=call.grants,
                          limits=limits, deadline=deadline, data_dir=self.settings.data_dir, secrets=self.secrets,
                          resolver=resolver)
        stderr_read = False
        try:
            outcome = abi.execute(p, loaded.module, ctx, payload, memory_export=loaded.memory_export,
                                  invocation=invocation[0] if invocation else None,
                                  initialize=loaded.facts.exports_function("_initialize"))
            output, exit_code = outcome.output, outcome.exit_code
            if p.abi == WASI_COMMAND:
                stderr_read = _absorb_stderr(ctx)
                output = _program_result(ctx, invocation[1] if invocation else DEFAULT)
            if p.abi != PALYRA_V1:  # palyra-v1's output is the host's {"exit_code": n}
                problem = _schema_problem(call.output_schema, output, ctx)
                if problem is not None:
                    raise ExecutionError(f"the output does not match the tool's output_schema: {problem}",
                                         code="invalid_output")
                if time.monotonic() > deadline:  # validation runs on the host: it counts against the deadline
                    raise ExecutionError(f"the run and the validation of its output exceeded the wall-clock limit "
                                         f"of {limits.timeout_ms} ms", {"timeout_ms": limits.timeout_ms},
                                         code="execution_timed_out")
        except SkillLedgerError as e:
            if p.abi == WASI_COMMAND:
                stderr_read = stderr_read or _absorb_stderr(ctx)
                e.details.setdefault("exit_code", ctx.exit_code)
                e.details["stderr"] = _stderr_tail(ctx)
            e.details.update({**call.where, "abi": p.abi, "log": ctx.finished_log()})
            e.message = ctx.redact(e.message)
            e.args = (e.message,)
            raise
        try:
            output = ctx.redact_value(output)
        except RecursionError:
            raise ExecutionError("the output is nested too deeply", {**call.where, "abi": p.abi},
                                 code="invalid_output") from None
        return Done(p.abi, output, exit_code, outcome.duration_ms, outcome.fuel_consumed, ctx.finished_log())

    def _invocation(self, call: ToolCall, p: AbiPlan, value: Any, payload: bytes,
                    entries: Entries) -> tuple[Invocation, ToolDeclaration] | None:
        """A WASI command's argv, environment and stdin (from its declaration, if any)."""
        declared = self.declarations.get(call.artifact_sha256, call.tool.id, entries)
        if p.abi != WASI_COMMAND:
            if declared is not None:
                raise CapabilityDenied(
                    f"the tool declaration {declaration_path(call.tool.id)} applies to WASI commands only; "
                    f"module {call.module_path} is {p.abi}", {**call.where, "abi": p.abi},
                    code="tool_declaration_invalid")
            return None
        if declared is None:
            return Invocation([call.skill_id, call.tool.name], [], payload), DEFAULT
        return expand(declared, call.tool.name, value, payload), declared


# --- what a WASI program left behind ---------------------------------------------------------------


def _absorb_stderr(ctx: HostContext) -> bool:
    """Add the kept stderr to the log, one entry per non-blank line (the log's caps apply)."""
    err = ctx.stderr
    if err is None:
        return True
    text = err.data().decode("utf-8", errors="replace")
    lines = text.splitlines()
    cap = ctx.limits.log_message_max_bytes
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        last_cut = err.discarded and i == len(lines) - 1 and not text.endswith("\n")
        if len(line) > cap:
            ctx.add_log("stderr", "info", line[:cap], cut=f"... [{len(line) - cap} characters truncated]")
        else:
            ctx.add_log("stderr", "info", line, cut="... [truncated]" if last_cut else "")
    if err.discarded:
        ctx.note(f"stderr truncated: {err.discarded} bytes past the first {err.cap} were discarded",
                 code="output_truncated", stream="stderr", discarded_bytes=err.discarded)
    return True


def _stderr_tail(ctx: HostContext) -> str:
    err = ctx.stderr
    if err is None:
        return ""
    cut = err.total > len(err.tail)
    return ctx.redact(err.tail.decode("utf-8", errors="replace"), cut_start=cut)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _program_result(ctx: HostContext, decl: ToolDeclaration) -> Any:
    """The output of a WASI command that exited: its status first, then its stdout."""
    status = ctx.exit_code if ctx.exit_code is not None else 0
    if status not in decl.success_exit_codes:
        last = _last_line(_stderr_tail(ctx))
        raise ExecutionError(f"the program exited with status {status}" + (f": {last}" if last else ""),
                             {"exit_code": status, "success_exit_codes": list(decl.success_exit_codes)},
                             code="nonzero_exit_status")
    out = ctx.stdout
    if out.discarded:
        ctx.note(f"stdout truncated: {out.discarded} bytes past the first {out.cap} were discarded",
                 code="output_truncated", stream="stdout", discarded_bytes=out.discarded)
    if decl.stdout == "text":
        return ctx.redact(out.data().decode("utf-8", errors="replace"), cut_end=bool(out.discarded))
    if out.discarded:
        raise ExecutionError(f"the stdout is larger than the cap of {out.cap} bytes ({out.total} written; "
                             "the rest was discarded)", {"cap": out.cap, "stdout_bytes": out.total},
                             code="invalid_output")
    return abi.parse_output(out.data(), out.cap, "stdout")


def _schema_problem(check: Any, value: Any, ctx: HostContext) -> str | None:
    """The output schema's complaint, redacted before it is cut to one line."""
    if check.compiled is None:
        return check.errors(value)
    return check.compiled.problem(value, redact=ctx.redact)
