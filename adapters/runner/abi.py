"""Running the module ABIs of ``runtime.md`` in a fresh ``Store`` with fuel, memory/table/instance
limits and the epoch deadline.

Which ABI serves a tool is a pure rule (``domain/abi.py``, shared with the audit): any import outside
the ABI's set, a known import with another signature, or an imported memory, table, global or tag,
and the module is not instantiated (``capability_denied``).
"""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any

import msgspec
import wasmtime
from wasmtime import _ffi as wasmtime_ffi  # stdin bytes: bound in the C API, not wrapped by wasmtime-py

from skill_ledger.domain.abi import JSON_V1, PALYRA_V1, WASI_COMMAND, AbiPlan, plan  # noqa: F401 (re-exported)
from skill_ledger.domain.constants import WASM_PAGE_SIZE
from skill_ledger.domain.errors import CapabilityDenied, ExecutionError, SkillLedgerError
from skill_ledger.domain.tool_decl import Invocation

from . import storage
from .engine import deadline_ticks, engine
from .hostcalls import HostContext, linker

_LIMIT_ERRORS = ("exceeds memory limits", "exceeds table limits", "resource limit exceeded")
_PROC_FD = os.path.isdir("/proc/self/fd")
_IMPORT_ERRORS = ("unknown import", "incompatible import type", "types incompatible")


class Outcome(msgspec.Struct):
    output: Any  # json-v1: the parsed output; palyra-v1: {"exit_code": n}; wasi-command: None (see ctx.stdout)
    exit_code: int
    fuel_consumed: int
    duration_ms: float


# --- running it ------------------------------------------------------------------------------


def _i32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _last_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__


def _at_memory_limit(store: wasmtime.Store, memory: Any, limit: int) -> bool:
    """Whether the guest's memory cannot grow by another page: a trap then is the limit's doing."""
    if not isinstance(memory, wasmtime.Memory):
        return False
    try:
        return memory.data_len(store) + WASM_PAGE_SIZE > limit
    except Exception:  # noqa: BLE001 - a store that cannot be read tells us nothing
        return False


def classify(e: BaseException, store: wasmtime.Store, memory: Any, ctx: HostContext) -> SkillLedgerError:
    limits = ctx.limits
    details: dict[str, Any] = {}
    if isinstance(e, SkillLedgerError):
        return e
    if isinstance(e, wasmtime.Trap):
        code = e.trap_code
        reason = _last_line(e)
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return ExecutionError(f"the run used up its fuel budget of {limits.fuel}", {"fuel": limits.fuel},
                                  code="fuel_exhausted")
        if code == wasmtime.TrapCode.INTERRUPT:
            return ExecutionError(f"the run exceeded its wall-clock limit of {limits.timeout_ms} ms",
                                  {"timeout_ms": limits.timeout_ms}, code="execution_timed_out")
        if code in (wasmtime.TrapCode.UNREACHABLE, wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS) and _at_memory_limit(
                store, memory, limits.memory_bytes):
            return ExecutionError(f"the module trapped at its memory limit of {limits.memory_bytes} bytes ({reason})",
                                  {"max_memory_bytes": limits.memory_bytes, "trap": reason},
                                  code="memory_limit_exceeded")
        details["trap_code"] = code.name if code is not None else None
        return ExecutionError(f"the module trapped: {reason}", {**details, "trap": reason}, code="trap")
    if isinstance(e, wasmtime.WasmtimeError):
        reason = _last_line(e)
        if any(s in reason for s in _LIMIT_ERRORS):
            return ExecutionError(f"the module needs more than the run's limits: {reason}",
                                  {"max_memory_bytes": limits.memory_bytes, "reason": reason},
                                  code="memory_limit_exceeded")
        if any(s in reason for s in _IMPORT_ERRORS):
            return CapabilityDenied(f"the module was not instantiated: {reason}", {"reason": reason})
        return ExecutionError(f"the module failed: {reason}", {"reason": reason}, code="trap")
    raise e


class Capture:
    """A WASI output stream: the first ``cap`` bytes are kept, the rest discarded (and counted),
    as a terminal would; the last ``tail_cap`` bytes are kept too (the end of stderr is what an
    error quotes). The guest's write always succeeds: a full buffer is never its problem. The
    callback must never raise (wasmtime-py would print and fail the write)."""

    def __init__(self, cap: int, tail_cap: int = 0) -> None:
        self.cap = cap
        self.tail_cap = tail_cap
        self.parts: list[bytes] = []
        self.size = 0
        self.discarded = 0
        self.tail = b""

    def write(self, chunk: bytes) -> None:
        try:
            take = max(0, min(len(chunk), self.cap - self.size))
            if take:
                self.parts.append(chunk[:take])
                self.size += take
            self.discarded += len(chunk) - take
            if self.tail_cap:
                self.tail = (self.tail + chunk[-self.tail_cap:])[-self.tail_cap:]
        except Exception:  # noqa: BLE001, S110 - never let an exception reach wasmtime's callback
            pass

    def data(self) -> bytes:
        return b"".join(self.parts)

    @property
    def total(self) -> int:
        return self.size + self.discarded


def _stdin_bytes(config: wasmtime.WasiConfig, data: bytes) -> None:
    vec = wasmtime_ffi.wasm_byte_vec_t()
    buf = ctypes.create_string_buffer(data, len(data))
    wasmtime_ffi.wasm_byte_vec_new(ctypes.byref(vec), len(data), ctypes.cast(buf, ctypes.POINTER(ctypes.c_uint8)))
    wasmtime_ffi.wasi_config_set_stdin_bytes(config.ptr(), ctypes.byref(vec))  # takes ownership of vec


def _wasi_config(ctx: HostContext, invocation: Invocation, opened: list[int]) -> wasmtime.WasiConfig:
    """Closed by default: argv and environment only as the tool declares them (else
    [skill_id, tool] and none), stdin as declared, bounded stdout/stderr, and a preopen per
    declared root (read-only for read roots). No network, no inherited anything."""
    w = wasmtime.WasiConfig()
    w.argv = invocation.argv
    if invocation.env:
        w.env = invocation.env
    _stdin_bytes(w, invocation.stdin)
    ctx.stdout = Capture(ctx.limits.output_max_bytes)
    ctx.stderr = Capture(ctx.limits.log_max_bytes, ctx.limits.stderr_tail_bytes)
    w.stdout_custom = ctx.stdout.write
    w.stderr_custom = ctx.stderr.write
    fs = ctx.manifest.capabilities.filesystem
    roots = {r: False for r in fs.read_roots} | {r: True for r in fs.write_roots}
    for root, mutable in sorted(roots.items()):
        fd = storage.open_root(ctx.storage_fd(), root)
        if fd is None:
            continue  # a wildcard root has no single directory to preopen
        opened.append(fd)
        # The directory we opened without following symlinks, not a path someone could swap
        # (where /proc is missing, the path just checked by that walk).
        host = f"/proc/self/fd/{fd}" if _PROC_FD else str(ctx.data_dir / ctx.skill_id / root.strip("/"))
        w.preopen_dir(host, "/" + root.strip("/"), fs_mutable=mutable)
    return w


def execute(p: AbiPlan, module: wasmtime.Module, ctx: HostContext, payload: bytes, *,
            memory_export: str | None = "memory", invocation: Invocation | None = None,
            initialize: bool = False) -> Outcome:
    """Run the plan in a fresh store. json-v1 gets ``payload`` (and ``_initialize`` first when
    ``initialize``); a WASI command gets ``invocation`` (argv, environment, stdin) and leaves
    its stdout and stderr in ``ctx.stdout`` / ``ctx.stderr`` and its status in ``exit_code``."""
    eng = engine()
    limits = ctx.limits
    store = wasmtime.Store(eng)
    opened: list[int] = []
    memory: Any = None
    try:
        store.set_fuel(limits.fuel)
        store.set_limits(memory_size=limits.memory_bytes, table_elements=limits.table_elements,
                         instances=limits.instances, tables=limits.tables, memories=limits.memories)
        if p.abi == WASI_COMMAND:
            store.set_wasi(_wasi_config(ctx, invocation or Invocation([ctx.skill_id, ctx.tool_name], [], payload),
                                        opened))
        with ctx:
            store.set_epoch_deadline(deadline_ticks(ctx.deadline))
            started = time.perf_counter()
            exit_code = 0
            output: Any = None
            try:
                instance = linker(p.abi, eng).instantiate(store, module)
                exports = instance.exports(store)
                memory = exports.get(memory_export) if memory_export else None
                if p.abi == JSON_V1:
                    if initialize:
                        exports["_initialize"](store)
                    output = _call_json(p, store, exports, exports.get("memory"), ctx, payload)
                elif p.abi == PALYRA_V1:
                    exit_code = _i32(exports[p.entry](store))
                    output = {"exit_code": exit_code}
                else:
                    exports[p.entry](store)
            except wasmtime.ExitTrap as e:  # proc_exit, from _start or from a start function
                exit_code = e.code
            except (wasmtime.Trap, wasmtime.WasmtimeError, SkillLedgerError) as e:
                raise classify(e, store, memory, ctx) from None  # ctx.exit_code stays None: it never exited
            if p.abi == WASI_COMMAND:
                ctx.exit_code = exit_code
            duration_ms = (time.perf_counter() - started) * 1000
        return Outcome(output, exit_code, limits.fuel - store.get_fuel(), round(duration_ms, 3))
    finally:
        store.close()  # never leave a WASI store with Python callbacks alive (a panic at exit)
        for fd in opened:
            os.close(fd)
        ctx.close()


def _call_json(p: AbiPlan, store: wasmtime.Store, exports: Any, memory: Any, ctx: HostContext,
               payload: bytes) -> Any:
    limits = ctx.limits
    n = len(payload)
    ptr = exports["alloc"](store, n) & 0xFFFFFFFF
    if (ptr == 0 and n) or ptr + n > memory.data_len(store):
        if _at_memory_limit(store, memory, limits.memory_bytes) or ptr == 0:
            raise ExecutionError(f"alloc({n}) for the input failed within the memory limit of "
                                 f"{limits.memory_bytes} bytes", {"input_bytes": n}, code="memory_limit_exceeded")
        raise ExecutionError(f"alloc({n}) returned an out-of-bounds pointer {ptr}", code="trap")
    if n:
        memory.write(store, payload, ptr)
    packed = exports[p.entry](store, _i32(ptr), n) & 0xFFFFFFFFFFFFFFFF
    out_ptr, out_len = packed >> 32, packed & 0xFFFFFFFF
    if out_len > limits.output_max_bytes:
        raise ExecutionError(f"the output is {out_len} bytes, above the cap of {limits.output_max_bytes}",
                             {"output_bytes": out_len, "cap": limits.output_max_bytes}, code="invalid_output")
    size = memory.data_len(store)
    if out_ptr + out_len > size:
        raise ExecutionError(f"the output buffer {out_ptr}+{out_len} lies outside guest memory ({size} bytes)",
                             code="invalid_output")
    raw = bytes(memory.read(store, out_ptr, out_ptr + out_len)) if out_len else b""
    return parse_output(raw, limits.output_max_bytes, "output")


def parse_output(raw: bytes, cap: int, what: str) -> Any:
    """JSON output (json-v1's buffer, a WASI command's stdout) decoded, or ``invalid_output``."""
    if len(raw) > cap:
        raise ExecutionError(f"the {what} is larger than the cap of {cap} bytes", {"cap": cap}, code="invalid_output")
    if not raw.strip():
        raise ExecutionError(f"the module produced no {what}", code="invalid_output")
    try:
        return msgspec.json.decode(raw)
    except (msgspec.MsgspecError, RecursionError):
        raise ExecutionError(f"the {what} is not valid UTF-8 JSON (or is nested too deeply)", {"bytes": len(raw)},
                             code="invalid_output") from None
