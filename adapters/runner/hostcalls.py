"""The host functions: ``palyra:plugins/host-capabilities@0.1.0`` and ``skills:host/v1``.

Every function checks its grant on every call, counts toward the run's host-call budget
(``capability_denied`` past it), refuses re-entrant calls (a guest ``alloc`` that calls back
into the host), reads and writes guest memory only after masking pointers to u32 and
bounds-checking them (an out-of-bounds buffer is a ``trap``), and checks the run's deadline
when it returns (``execution_timed_out``). Host I/O is given the time left before the
deadline as its timeout, so a slow server cannot hold a run past it.

The functions are defined once per process on a ``Linker`` per ABI; each call finds its run
through a thread-local set while the run's guest code executes (stores are single-threaded).
"""

from __future__ import annotations

import fnmatch
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import wasmtime

from skill_ledger.adapters.storage.secrets import SecretStore
from skill_ledger.domain.abi import ENV_FUNCTIONS, ENV_MODULE, PALYRA_FUNCTIONS, SKILLS_HOST_FUNCTIONS
from skill_ledger.domain.constants import HOST_CAPABILITIES_MODULE, SKILLS_HOST_MODULE, WASI_PREVIEW1_MODULE
from skill_ledger.domain.errors import CapabilityDenied, ConfigurationError, ExecutionError
from skill_ledger.domain.grants import CapabilityGrants
from skill_ledger.domain.manifest import Manifest

from . import storage
from .limits import RunLimits

I32 = wasmtime.ValType.i32()
I64 = wasmtime.ValType.i64()

# Exact signatures, in the inspector's notation ("(i32, i32) -> (i64)").
HANDLE_BASE = {"http": 10000, "secret": 20000, "storage": 30000, "channel": 40000}
LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
SECRET_DENIED, SECRET_NOT_SET, SECRET_UNAVAILABLE = -1, -2, -3
ALLOC_FAILED = -6
MAX_NAME_BYTES = 512
MAX_REQUEST_BYTES = 1 << 20
REDACTED = "[redacted]"
ABORT_MAX_UNITS = 1024  # UTF-16 code units read of an abort message (and of its file name)
_CUT = "_cut"  # a log entry's internal truncation note (never rendered as a key)

_local = threading.local()


def current() -> "HostContext":
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        raise ExecutionError("a host function was called outside a run", code="trap")
    return ctx


class HostContext:
    """One run's view of the host: its grants, limits, deadline, log and budget."""

    def __init__(self, *, skill_id: str, tool_name: str, manifest: Manifest, grants: CapabilityGrants,
                 limits: RunLimits, deadline: float, data_dir: Path, secrets: SecretStore,
                 resolver: Callable[[str, int, float], list[str]] | None = None) -> None:
        self.skill_id = skill_id
        self.tool_name = tool_name
        self.manifest = manifest
        self.grants = grants
        self.limits = limits
        self.deadline = deadline
        self.data_dir = data_dir
        self.secrets = secrets
        self.resolver = resolver
        self.calls = 0
        self.depth = 0
        self.log: list[dict[str, Any]] = []
        self.log_bytes = 0
        self.log_dropped = 0
        self.notices: list[dict[str, Any]] = []
        self.stdout: Any = None  # a WASI command's captured streams (abi.Capture) and exit status
        self.stderr: Any = None
        self.exit_code: int | None = None
        self.secret_values: set[str] = set()
        self._storage_fd: int | None = None

    # --- the run's bookkeeping -----------------------------------------------------------

    def __enter__(self) -> "HostContext":
        _local.ctx = self
        return self

    def __exit__(self, *exc: Any) -> None:
        _local.ctx = None

    def close(self) -> None:
        if self._storage_fd is not None:
            os.close(self._storage_fd)
            self._storage_fd = None

    def begin(self, name: str) -> None:
        if self.depth:
            raise CapabilityDenied(f"re-entrant host call to {name} (from inside another host call)",
                                   {"host_call": name})
        self.calls += 1
        if self.calls > self.limits.host_call_budget:
            raise CapabilityDenied(f"the run exceeded its host-call budget of {self.limits.host_call_budget} calls",
                                   {"host_call": name, "budget": self.limits.host_call_budget})
        self.depth = 1

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check_deadline(self) -> None:
        if time.monotonic() >= self.deadline:
            raise timed_out(self)

    def add_log(self, source: str, level: str, message: str, *, cut: str = "", **extra: Any) -> None:
        """One log entry, while the log has room (entries and bytes); ``cut`` is the note of a
        message truncated at capture (redaction then trims the cut edge: see :meth:`redact`)."""
        size = len(message)
        if len(self.log) >= self.limits.log_max_entries or self.log_bytes + size > self.limits.log_max_bytes:
            self.log_dropped += 1
            return
        self.log_bytes += size
        self.log.append({"source": source, "level": level, "message": message, **extra, _CUT: cut})

    def note(self, message: str, **extra: Any) -> None:
        """A host notice that is always in the result (truncated output, dropped entries)."""
        self.notices.append({"source": "host", "level": "warn", "message": message, **extra})

    def denied(self, call: str, reason: str, **extra: Any) -> None:
        """A refused capability: the guest gets an error code; the log says why (names only)."""
        self.add_log("host", "warn", f"{call} denied: {reason}", code="capability_denied", call=call, **extra)

    def failed(self, call: str, reason: str, rc: int, **extra: Any) -> None:
        self.add_log("host", "warn", f"{call} failed: {reason}", call=call, rc=rc, **extra)

    def finished_log(self) -> list[dict[str, Any]]:
        out = []
        for e in self.log:
            entry = {k: v for k, v in e.items() if k != _CUT}
            entry["message"] = self.redact(e["message"], cut_end=bool(e[_CUT])) + e[_CUT]
            out.append(entry)
        out.extend(self.notices)
        if self.log_dropped:
            out.append({"source": "host", "level": "warn", "code": "log_truncated",
                        "message": f"log truncated: {self.log_dropped} more entries dropped "
                                   f"(at most {self.limits.log_max_entries} entries, "
                                   f"{self.limits.log_max_bytes} bytes)"})
        return out

    def redact(self, text: str, *, cut_start: bool = False, cut_end: bool = False) -> str:
        """``text`` with every secret value fetched by this run replaced, *then* trimmed at an
        edge where it was cut: a secret cut in two no longer matches, so as many characters as
        the longest secret are dropped from that edge (nothing when no secret was fetched)."""
        if not self.secret_values:
            return text
        for value in sorted(self.secret_values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, REDACTED)
        longest = max(len(v) for v in self.secret_values)
        if cut_end:
            text = text[:max(0, len(text) - longest)]
        if cut_start:
            text = text[longest:]
        return text

    def redact_value(self, value: Any) -> Any:
        if not self.secret_values:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        if isinstance(value, dict):
            return {self.redact(k): self.redact_value(v) for k, v in value.items()}
        return value

    def storage_fd(self) -> int:
        if self._storage_fd is None:
            self._storage_fd = storage.skill_dir_fd(self.data_dir, self.skill_id)
        return self._storage_fd


def timed_out(ctx: HostContext) -> ExecutionError:
    return ExecutionError("the run exceeded its wall-clock limit (inside a host call)",
                          {"timeout_ms": ctx.limits.timeout_ms}, code="execution_timed_out")


# --- guest memory ------------------------------------------------------------------------


def _memory(caller: wasmtime.Caller) -> wasmtime.Memory:
    mem = caller.get("memory")
    if not isinstance(mem, wasmtime.Memory):
        raise ExecutionError("the module exports no memory named 'memory' for host calls", code="trap")
    return mem


def _range(caller: wasmtime.Caller, ptr: int, length: int, what: str) -> tuple[wasmtime.Memory, int, int]:
    mem = _memory(caller)
    p, n = ptr & 0xFFFFFFFF, length & 0xFFFFFFFF
    size = mem.data_len(caller)
    if p + n > size:
        raise ExecutionError(f"out-of-bounds guest buffer for {what}: {p}+{n} (memory is {size} bytes)",
                             {"pointer": p, "length": n, "memory_bytes": size}, code="trap")
    return mem, p, n


def read_guest(caller: wasmtime.Caller, ptr: int, length: int, what: str) -> bytes:
    mem, p, n = _range(caller, ptr, length, what)
    return bytes(mem.read(caller, p, p + n)) if n else b""


def write_guest(caller: wasmtime.Caller, ptr: int, capacity: int, data: bytes, what: str) -> None:
    mem, p, n = _range(caller, ptr, capacity, what)
    if len(data) > n:
        raise ExecutionError(f"host result does not fit the guest buffer for {what}", code="trap")
    if data:
        mem.write(caller, data, p)


def _request(caller: wasmtime.Caller, ptr: int, length: int, what: str, limit: int) -> Any:
    _, _, n = _range(caller, ptr, length, what)
    if n > limit:
        return _BAD
    try:
        return msgspec.json.decode(read_guest(caller, ptr, length, what))
    except (msgspec.MsgspecError, RecursionError):
        return _BAD


_BAD = object()


# --- palyra:plugins/host-capabilities@0.1.0 ------------------------------------------------


def _granted(ctx: HostContext, cls: str) -> list[str]:
    g = ctx.grants
    return {"http": g.http_hosts, "secret": g.secret_keys, "storage": g.storage_prefixes, "channel": g.channels}[cls]


def _palyra_count(cls: str) -> Callable[..., int]:
    def count(ctx: HostContext, caller: wasmtime.Caller) -> int:
        return len(_granted(ctx, cls))

    return count


def _palyra_handle(cls: str) -> Callable[..., int]:
    def handle(ctx: HostContext, caller: wasmtime.Caller, index: int) -> int:
        items = _granted(ctx, cls)
        return HANDLE_BASE[cls] + index if 0 <= index < len(items) else -1

    return handle


# --- skills:host/v1 --------------------------------------------------------------------------


def host_log(ctx: HostContext, caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
    _, _, n = _range(caller, ptr, length, "log")
    cap = min(n, ctx.limits.log_message_max_bytes)
    text = read_guest(caller, ptr, cap, "log").decode("utf-8", errors="replace")
    ctx.add_log("guest", LOG_LEVELS[min(max(level, 0), len(LOG_LEVELS) - 1)], text,
                cut=f"... [{n - cap} bytes truncated]" if cap < n else "")


def _secret_declared(manifest: Manifest, scope: str, key: str) -> bool:
    for s in manifest.capabilities.secrets:
        if s.scope.strip() == scope and any(k == key or ("*" in k and fnmatch.fnmatchcase(key, k))
                                            for k in s.key_names):
            return True
    return False


def secret_get(ctx: HostContext, caller: wasmtime.Caller, name_ptr: int, name_len: int, out_ptr: int,
               out_cap: int) -> int:
    _, _, n = _range(caller, name_ptr, name_len, "secret_get name")
    _range(caller, out_ptr, out_cap, "secret_get output")
    if n > MAX_NAME_BYTES:
        ctx.denied("secret_get", "the secret name is too long")
        return SECRET_DENIED
    name = read_guest(caller, name_ptr, name_len, "secret_get name").decode("utf-8", errors="replace")
    scope, sep, key = name.partition("/")
    if not sep or not _secret_declared(ctx.manifest, scope, key):
        ctx.denied("secret_get", f"secret {name!r} is not declared by the manifest", secret=name)
        return SECRET_DENIED
    try:
        value = ctx.secrets.get(scope, key)
    except ConfigurationError as e:
        ctx.failed("secret_get", e.message, SECRET_UNAVAILABLE, secret=name)
        return SECRET_UNAVAILABLE
    if value is None:
        ctx.failed("secret_get", f"secret {name!r} is not set (skills secret set {scope} {key})", SECRET_NOT_SET,
                   secret=name)
        return SECRET_NOT_SET
    ctx.secret_values.add(value)
    data = value.encode("utf-8")
    if len(data) <= (out_cap & 0xFFFFFFFF):
        write_guest(caller, out_ptr, out_cap, data, "secret_get output")
    return len(data)


def _alloc_and_write(ctx: HostContext, caller: wasmtime.Caller, data: bytes, call: str) -> int:
    alloc = caller.get("alloc")
    if not isinstance(alloc, wasmtime.Func):
        ctx.failed(call, "the module exports no alloc function to receive the response", ALLOC_FAILED)
        return ALLOC_FAILED
    ptr = alloc(caller, len(data))
    if not isinstance(ptr, int):
        ctx.failed(call, "alloc returned no pointer", ALLOC_FAILED)
        return ALLOC_FAILED
    if ptr == 0 and data:
        ctx.failed(call, "alloc failed", ALLOC_FAILED)
        return ALLOC_FAILED
    write_guest(caller, ptr, len(data), data, f"{call} response")
    return ((ptr & 0xFFFFFFFF) << 32) | len(data)


def http_fetch(ctx: HostContext, caller: wasmtime.Caller, req_ptr: int, req_len: int) -> int:
    from . import egress  # http.client and ssl: only for runs that fetch

    request = _request(caller, req_ptr, req_len, "http_fetch request", MAX_REQUEST_BYTES)
    if request is _BAD:
        ctx.failed("http_fetch", "the request is not a JSON object of at most 1 MiB", egress.INVALID)
        return egress.INVALID
    if not ctx.grants.http_hosts:
        ctx.denied("http_fetch", "the manifest grants no HTTP egress")
        return egress.DENIED
    fetcher = egress.Fetcher(ctx.grants.http_hosts, ctx.deadline,
                             max_response_bytes=ctx.limits.http_max_response_bytes,
                             max_redirects=ctx.limits.http_max_redirects, resolver=ctx.resolver)
    try:
        response = fetcher.fetch(request)
    except egress.Deadline:
        raise timed_out(ctx) from None
    except egress.EgressError as e:
        extra = {"target": e.where} if e.where else {}
        if e.rc == egress.DENIED:
            ctx.denied("http_fetch", e.reason, **extra)
        else:
            ctx.failed("http_fetch", e.reason, e.rc, **extra)
        return e.rc
    return _alloc_and_write(ctx, caller, msgspec.json.encode(response), "http_fetch")


def _storage_path(ctx: HostContext, caller: wasmtime.Caller, ptr: int, length: int, call: str,
                  roots: list[str]) -> list[str] | int:
    request = _request(caller, ptr, length, f"{call} request", MAX_NAME_BYTES * 8)
    path = request.get("path") if isinstance(request, dict) else request
    if not isinstance(path, str):
        ctx.failed(call, 'the request must be {"path": "..."} or a JSON string', storage.INVALID)
        return storage.INVALID
    try:
        parts = storage.split_path(path)
    except storage.StorageError as e:
        (ctx.denied(call, e.reason, path=path) if e.rc == storage.DENIED else ctx.failed(call, e.reason, e.rc))
        return e.rc
    if not storage.under_roots(parts, roots):
        ctx.denied(call, f"{path!r} is not under a declared {'write' if call == 'storage_write' else 'read'} root",
                   path=path)
        return storage.DENIED
    return parts


def storage_read(ctx: HostContext, caller: wasmtime.Caller, req_ptr: int, req_len: int, out_ptr: int,
                 out_cap: int) -> int:
    _range(caller, out_ptr, out_cap, "storage_read output")
    fs = ctx.manifest.capabilities.filesystem
    parts = _storage_path(ctx, caller, req_ptr, req_len, "storage_read", [*fs.read_roots, *fs.write_roots])
    if isinstance(parts, int):
        return parts
    try:
        data = storage.read_file(ctx.storage_fd(), parts, ctx.limits.storage_max_bytes)
    except storage.StorageError as e:
        path = "/".join(parts)
        (ctx.denied("storage_read", e.reason, path=path) if e.rc == storage.DENIED
         else ctx.failed("storage_read", e.reason, e.rc, path=path))
        return e.rc
    if len(data) <= (out_cap & 0xFFFFFFFF):
        write_guest(caller, out_ptr, out_cap, data, "storage_read output")
    return len(data)


def storage_write(ctx: HostContext, caller: wasmtime.Caller, req_ptr: int, req_len: int, data_ptr: int,
                  data_len: int) -> int:
    _, _, n = _range(caller, data_ptr, data_len, "storage_write data")
    parts = _storage_path(ctx, caller, req_ptr, req_len, "storage_write",
                          list(ctx.manifest.capabilities.filesystem.write_roots))
    if isinstance(parts, int):
        return parts
    if n > ctx.limits.storage_max_bytes:
        ctx.failed("storage_write", f"more than {ctx.limits.storage_max_bytes} bytes", storage.TOO_LARGE)
        return storage.TOO_LARGE
    try:
        storage.write_file(ctx.storage_fd(), parts, read_guest(caller, data_ptr, data_len, "storage_write data"))
    except storage.StorageError as e:
        path = "/".join(parts)
        (ctx.denied("storage_write", e.reason, path=path) if e.rc == storage.DENIED
         else ctx.failed("storage_write", e.reason, e.rc, path=path))
        return e.rc
    return n


# --- env.abort (AssemblyScript's default build) ----------------------------------------------


def _as_string(caller: wasmtime.Caller, ptr: int) -> tuple[str, bool]:
    """An AssemblyScript string: UTF-16LE, its byte length in the u32 at ``ptr - 4``; at most
    ``ABORT_MAX_UNITS`` code units are read. (text, cut); unreadable gives a placeholder."""
    p = ptr & 0xFFFFFFFF
    mem = caller.get("memory")
    if p < 4 or not isinstance(mem, wasmtime.Memory) or p > mem.data_len(caller):
        return ("(none)" if p == 0 else "(unreadable)"), False
    length = struct.unpack("<I", read_guest(caller, p - 4, 4, "abort string header"))[0]
    available = mem.data_len(caller) - p
    take = min(length, available, ABORT_MAX_UNITS * 2) & ~1
    text = read_guest(caller, p, take, "abort string").decode("utf-16-le", errors="replace")
    return text, take < length


def env_abort(ctx: HostContext, caller: wasmtime.Caller, msg_ptr: int, file_ptr: int, line: int, column: int) -> None:
    """AssemblyScript's ``abort(message, fileName, line, column)``: the run traps with the message."""
    message, message_cut = _as_string(caller, msg_ptr)
    file_name, file_cut = _as_string(caller, file_ptr)
    message = ctx.redact(message, cut_end=message_cut) + ("..." if message_cut else "")
    file_name = ctx.redact(file_name, cut_end=file_cut) + ("..." if file_cut else "")
    where = f"{file_name}:{line & 0xFFFFFFFF}:{column & 0xFFFFFFFF}"
    raise ExecutionError(f"the module aborted: {message} (at {where})",
                         {"abort": {"message": message, "file": file_name, "line": line & 0xFFFFFFFF,
                                    "column": column & 0xFFFFFFFF}}, code="trap")


# --- a deadline-aware poll_oneoff for WASI ---------------------------------------------------

_SUB = struct.Struct("<QB7xIxxxxQQH6x")  # userdata, tag, clock id | fd, timeout, precision, flags (48 bytes)
_EVENT = struct.Struct("<QHB5xQH6x")  # userdata, errno, type, nbytes, flags (32 bytes)
WASI_EINVAL = 28


def poll_oneoff(caller: wasmtime.Caller, in_ptr: int, out_ptr: int, nsubs: int, nevents_ptr: int) -> int:
    """WASI's sleep, bounded by the run's deadline (the built-in one blocks in native code where
    the epoch cannot interrupt it). File descriptor subscriptions are reported ready at once:
    stdin is an in-memory buffer and stdout/stderr never block."""
    ctx = current()
    n = nsubs & 0xFFFFFFFF
    if n == 0 or n > 4096:
        return WASI_EINVAL
    raw = read_guest(caller, in_ptr, n * _SUB.size, "poll_oneoff subscriptions")
    _range(caller, out_ptr, n * _EVENT.size, "poll_oneoff events")
    _range(caller, nevents_ptr, 4, "poll_oneoff nevents")
    subs = [_SUB.unpack_from(raw, i * _SUB.size) for i in range(n)]
    events: list[bytes] = []
    ready = [s for s in subs if s[1] in (1, 2)]
    if ready:
        events = [_EVENT.pack(s[0], 0, s[1], 0, 0) for s in ready]
    else:
        waits: list[tuple[float, int]] = []
        for userdata, tag, clock_id, timeout, _precision, flags in subs:
            if tag != 0:
                return WASI_EINVAL
            seconds = timeout / 1e9
            if flags & 1:  # absolute time on the given clock
                now = time.time() if clock_id == 0 else time.monotonic()
                seconds = timeout / 1e9 - now
            waits.append((max(0.0, seconds), userdata))
        shortest = min(w for w, _ in waits)
        left = ctx.remaining()
        if shortest >= left:
            time.sleep(max(0.0, left))
            raise timed_out(ctx)
        time.sleep(shortest)
        events = [_EVENT.pack(u, 0, 0, 0, 0) for w, u in waits if w <= shortest]
    write_guest(caller, out_ptr, n * _EVENT.size, b"".join(events), "poll_oneoff events")
    write_guest(caller, nevents_ptr, 4, struct.pack("<I", len(events)), "poll_oneoff nevents")
    ctx.check_deadline()
    return 0


# --- linkers ---------------------------------------------------------------------------------


def _wrap(impl: Callable[..., Any]) -> Callable[..., Any]:
    name = impl.__name__

    def host_function(caller: wasmtime.Caller, *args: int) -> Any:
        ctx = current()
        ctx.begin(name)
        try:
            result = impl(ctx, caller, *args)
        finally:
            ctx.depth = 0
        ctx.check_deadline()
        return result

    return host_function


def _functype(signature: str) -> wasmtime.FuncType:
    params_text, results_text = signature.split(" -> ")
    kinds = {"i32": I32, "i64": I64}

    def parse(text: str) -> list[wasmtime.ValType]:
        inner = text.strip()[1:-1].strip()
        return [kinds[t.strip()] for t in inner.split(",")] if inner else []

    return wasmtime.FuncType(parse(params_text), parse(results_text))


_SKILLS_IMPLS: dict[str, Callable[..., Any]] = {
    "log": host_log, "secret_get": secret_get, "http_fetch": http_fetch,
    "storage_read": storage_read, "storage_write": storage_write,
}


_ENV_IMPLS: dict[str, Callable[..., Any]] = {"abort": env_abort}


def _palyra_impls() -> dict[str, Callable[..., Any]]:
    out: dict[str, Callable[..., Any]] = {}
    for cls in HANDLE_BASE:
        count, handle = _palyra_count(cls), _palyra_handle(cls)
        count.__name__, handle.__name__ = f"{cls}-count", f"{cls}-handle"
        out[f"{cls}-count"], out[f"{cls}-handle"] = count, handle
    return out


_linkers: dict[str, wasmtime.Linker] = {}
_linkers_lock = threading.Lock()


def linker(abi: str, eng: wasmtime.Engine) -> wasmtime.Linker:
    """The process-wide linker of an ABI (host functions find their run through a thread-local)."""
    with _linkers_lock:
        found = _linkers.get(abi)
        if found is not None:
            return found
        lk = wasmtime.Linker(eng)
        if abi == "palyra-v1":
            for name, impl in _palyra_impls().items():
                lk.define_func(HOST_CAPABILITIES_MODULE, name, _functype(PALYRA_FUNCTIONS[name]), _wrap(impl),
                               access_caller=True)
        else:
            if abi == "wasi-command":
                lk.define_wasi()
                lk.allow_shadowing = True
                lk.define_func(WASI_PREVIEW1_MODULE, "poll_oneoff", _functype("(i32, i32, i32, i32) -> (i32)"),
                               poll_oneoff, access_caller=True)
                lk.allow_shadowing = False
            for name, impl in _SKILLS_IMPLS.items():
                lk.define_func(SKILLS_HOST_MODULE, name, _functype(SKILLS_HOST_FUNCTIONS[name]), _wrap(impl),
                               access_caller=True)
            for name, impl in _ENV_IMPLS.items():
                lk.define_func(ENV_MODULE, name, _functype(ENV_FUNCTIONS[name]), _wrap(impl), access_caller=True)
        _linkers[abi] = lk
        return lk


__all__ = ["HostContext", "PALYRA_FUNCTIONS", "SKILLS_HOST_FUNCTIONS", "linker", "read_guest", "write_guest"]
