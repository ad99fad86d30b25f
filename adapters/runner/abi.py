"""Running the module ABIs of ``runtime.md`` in a fresh ``Store`` with fuel, memory/table/instance
limits and the epoch deadline.

Which ABI serves a tool is a pure rule (``domain/abi.py``, shared with the audit): any import outside
the ABI's set, a known import with another signature, or an imported memory, table, global or tag,
and the module is not instantiated (``capability_denied``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import time
from typing import Any

import msgspec
import wasmtime
from wasmtime import _ffi as wasmtime_ffi  # stdin bytes: bound in the C API, not wrapped by wasmtime-py

from skill_ledger.domain.abi import JSON_V1, PALYRA_V1, WASI_COMMAND, AbiPlan, plan  # noqa: F401 (re-exported)
from skill_ledger.domain.constants import WASM_PAGE_SIZE
from skill_ledger.domain.errors import CapabilityDenied, ExecutionError, SkillLedgerError

from . import storage
from .engine import deadline_ticks, engine
from .hostcalls import HostContext, linker

_LIMIT_ERRORS = ("exceeds memory limits", "exceeds table limits", "resource limit exceeded")
_PROC_FD = os.path.isdir("/proc/self/fd")
_IMPORT_ERRORS = ("unknown import", "incompatible import type", "types incompatible")


class Outcome(msgspec.Struct):
    output: Any
    exit_code: int
    fuel_consumed: int
    duration_ms: float
    stderr: str = ""



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


class _Capture:
    """A bounded WASI output stream (the callback must never raise: wasmtime-py prints then)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.parts: list[bytes] = []
        self.size = 0
        self.overflow = False

    def write(self, chunk: bytes) -> int | None:
        if self.size + len(chunk) > self.cap:
            self.overflow = True
            return -errno.EFBIG
        self.parts.append(chunk)
        self.size += len(chunk)
        return None

    def data(self) -> bytes:
        return b"".join(self.parts)


def _stdin_bytes(config: wasmtime.WasiConfig, data: bytes) -> None:
    vec = wasmtime_ffi.wasm_byte_vec_t()
    buf = ctypes.create_string_buffer(data, len(data))
    wasmtime_ffi.wasm_byte_vec_new(ctypes.byref(vec), len(data), ctypes.cast(buf, ctypes.POINTER(ctypes.c_uint8)))
    wasmtime_ffi.wasi_config_set_stdin_bytes(config.ptr(), ctypes.byref(vec))  # takes ownership of vec


def _wasi_config(ctx: HostContext, payload: bytes, opened: list[int]) -> tuple[wasmtime.WasiConfig, _Capture, _Capture]:
    """Closed by default: argv [skill_id, tool], no environment, stdin = the input, bounded
    stdout/stderr, and a preopen per declared root (read-only for read roots)."""
    w = wasmtime.WasiConfig()
    w.argv = [ctx.skill_id, ctx.tool_name]
    _stdin_bytes(w, payload)
    out, err = _Capture(ctx.limits.output_max_bytes), _Capture(ctx.limits.log_max_bytes)
    w.stdout_custom = out.write
    w.stderr_custom = err.write
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
    return w, out, err


def execute(p: AbiPlan, module: wasmtime.Module, ctx: HostContext, payload: bytes) -> Outcome:
    eng = engine()
    limits = ctx.limits
    store = wasmtime.Store(eng)
    opened: list[int] = []
    memory: Any = None
    capture: tuple[_Capture, _Capture] | None = None
    try:
        store.set_fuel(limits.fuel)
        store.set_limits(memory_size=limits.memory_bytes, table_elements=limits.table_elements,
                         instances=limits.instances, tables=limits.tables, memories=limits.memories)
        if p.abi == WASI_COMMAND:
            config, out, err = _wasi_config(ctx, payload, opened)
            capture = (out, err)
            store.set_wasi(config)
        with ctx:
            store.set_epoch_deadline(deadline_ticks(ctx.deadline))
            started = time.perf_counter()
            exit_code = 0
            try:
                instance = linker(p.abi, eng).instantiate(store, module)
                exports = instance.exports(store)
                memory = exports.get("memory")
                if p.abi == JSON_V1:
                    output = _call_json(p, store, exports, memory, ctx, payload)
                elif p.abi == PALYRA_V1:
                    exit_code = _i32(exports[p.entry](store))
                    output = {"exit_code": exit_code}
                else:
                    try:
                        exports[p.entry](store)
                    except wasmtime.ExitTrap as e:
                        exit_code = e.code
                    output = None
            except wasmtime.ExitTrap as e:  # proc_exit from a start function
                exit_code, output = e.code, None
            except (wasmtime.Trap, wasmtime.WasmtimeError, SkillLedgerError) as e:
                raise classify(e, store, memory, ctx) from None
            duration_ms = (time.perf_counter() - started) * 1000
        fuel_consumed = limits.fuel - store.get_fuel()
        stderr = ""
        if capture is not None:
            out, err = capture
            output = _parse_output(out.data(), out.overflow, limits.output_max_bytes, "stdout")
            stderr = err.data().decode("utf-8", errors="replace") + ("\n[stderr truncated]" if err.overflow else "")
        return Outcome(output, exit_code, fuel_consumed, round(duration_ms, 3), stderr)
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
    return _parse_output(raw, False, limits.output_max_bytes, "output")


def _parse_output(raw: bytes, overflow: bool, cap: int, what: str) -> Any:
    if overflow or len(raw) > cap:
        raise ExecutionError(f"the {what} is larger than the cap of {cap} bytes", {"cap": cap}, code="invalid_output")
    if not raw.strip():
        raise ExecutionError(f"the module produced no {what}", code="invalid_output")
    try:
        return msgspec.json.decode(raw)
    except (msgspec.MsgspecError, RecursionError):
        raise ExecutionError(f"the {what} is not valid UTF-8 JSON (or is nested too deeply)", {"bytes": len(raw)},
                             code="invalid_output") from None
