"""The runner's engine: one wasmtime ``Engine`` per process, an epoch ticker, and the
compiled-module cache.

* The engine is built from ``compile_worker.engine_config`` (fuel and epoch interruption on),
  the same settings the compile worker uses: its serialized code only loads into an engine
  configured alike.
* The ticker thread advances the epoch on the *monotonic clock* (not by counting sleeps), so
  a deadline N ms away fires after N ms plus at most one tick, however long the timeout is.
* A module's facts (imports, exports, memories) come from validation and the inspector's
  binary reader, never from compiling, so the runner can refuse a module that implements no
  ABI for the tool before it pays for a compilation.
* Compilation happens once per module, in a bounded worker process (``compile_worker.py``).
  Its result goes into ``<home>/cache/modules/`` (0700): ``<key>.cwasm`` (the native code)
  and ``<key>.json`` (the first line an HMAC under the home's key, ``cachekey.py``; then the
  metadata: source module digest, engine settings, the code's digest, the facts). The key
  is the module's SHA-256 with the wasmtime version and the engine settings.
* Deserializing runs native code, so an entry is loaded only from that directory, only when
  directory and files belong to this user and nobody else can write them, only when its HMAC
  verifies under this home's key and the code hashes to the digest it names. An entry that
  fails any check is deleted and the module compiled again, with a notice.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import platform
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import msgspec
import wasmtime

from skill_ledger.adapters.storage.files import atomic_write, ensure_private_dir
from skill_ledger.domain.audit import COMPONENT_VERSION_BYTES, ModuleFacts, wasm_header_problem
from skill_ledger.domain.errors import CapabilityDenied, ExecutionError

from . import compile_worker
from .cachekey import CacheKey, KeyUnavailable
from .limits import DEFAULT_LIMITS, RunLimits
from .wasmbin import HOST_MEMORY_EXPORT, BinaryError, with_memory_export

__all__ = ["LoadedModule", "ModuleCache", "cache_stats", "deadline_ticks", "engine", "read_facts",
           "settings_fingerprint"]

TICK_S = 0.005  # epoch granularity: a deadline fires at most one tick (plus scheduling) late
CACHE_FORMAT = 2  # 2: authenticated entries; modules compiled with a host memory export
MAX_CACHED_BYTES = 512 * 1024 * 1024  # a compiled module larger than this is not kept or read back
MAX_META_BYTES = 4 * 1024 * 1024
MEMORY_CACHE_SIZE = 64
MAC_PURPOSE = f"skill-ledger/module-cache/v{CACHE_FORMAT}"

Notify = Callable[[str], None]


@functools.lru_cache(maxsize=1)
def wasmtime_version() -> str:
    # The installed distribution's directory name is the cheap answer (importlib.metadata
    # costs ~7 ms of imports on every cold ``skills run``); it is the fallback.
    site = Path(wasmtime.__file__).resolve().parent.parent
    found = sorted(site.glob("wasmtime-*.dist-info"))
    if len(found) == 1:
        return found[0].name[len("wasmtime-"):-len(".dist-info")]
    import importlib.metadata

    return importlib.metadata.version("wasmtime")


@functools.lru_cache(maxsize=1)
def settings_fingerprint() -> str:
    return (f"format={CACHE_FORMAT};wasmtime={wasmtime_version()};{compile_worker.ENGINE_SETTINGS};"
            f"arch={platform.machine()}")


# --- the engine and its epoch ticker ---------------------------------------------------------


class _Ticker:
    def __init__(self, eng: wasmtime.Engine) -> None:
        self.engine = eng
        self.t0 = time.monotonic()
        self.count = 0  # epochs added so far (only this thread increments the engine)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="skills-epoch-ticker", daemon=True)
        self._thread.start()
        atexit.register(self.stop)  # before interpreter teardown frees the engine

    def _loop(self) -> None:
        while not self._stop.is_set():
            due = int((time.monotonic() - self.t0) / TICK_S)
            while self.count < due:
                self.engine.increment_epoch()
                self.count += 1
            self._stop.wait(max(0.0, self.t0 + (self.count + 1) * TICK_S - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=0.5)

    def ticks_until(self, deadline: float) -> int:
        """Epoch ticks after the current one that are reached only once ``deadline`` has passed."""
        target = int((deadline - self.t0) / TICK_S) + 1
        return max(1, target - self.count)


_engine: wasmtime.Engine | None = None
_ticker: _Ticker | None = None
_ticker_lock = threading.Lock()


def engine() -> wasmtime.Engine:
    """The process-wide engine, with its epoch ticker running."""
    global _engine, _ticker
    if _ticker is None:
        with _ticker_lock:
            if _ticker is None:
                _engine = wasmtime.Engine(compile_worker.engine_config())
                _ticker = _Ticker(_engine)
    assert _engine is not None
    return _engine


def deadline_ticks(deadline: float) -> int:
    engine()
    assert _ticker is not None
    return _ticker.ticks_until(deadline)


# --- module facts, without compiling ------------------------------------------------------------


def read_facts(path: str, data: bytes) -> ModuleFacts:
    """A module's facts from validation and the inspector's binary reader (no compilation).
    Never raises for bad bytes: they give ``valid=False`` with the reason."""
    from skill_ledger.adapters.audit.inspector import _Malformed, _Reader

    digest = hashlib.sha256(data).hexdigest()

    def invalid(reason: str) -> ModuleFacts:
        return ModuleFacts(path=path, size=len(data), sha256=digest, valid=False, error=reason)

    problem = wasm_header_problem(data)
    if problem is not None:
        return invalid(problem)
    try:
        wasmtime.Module.validate(engine(), data)
    except wasmtime.WasmtimeError as e:
        return invalid(compile_worker._last_line(str(e)) or "the engine rejected the module")
    try:
        imports, exports, memories = _Reader(data).module()
    except _Malformed as e:
        return invalid(f"module structure could not be read: {e}")
    except Exception as e:  # noqa: BLE001 - the reader must never crash a run
        return invalid(f"module structure could not be read ({type(e).__name__})")
    return ModuleFacts(path=path, size=len(data), sha256=digest, valid=True, imports=tuple(imports),
                       exports=tuple(exports), memories=tuple(memories))


def refuse_invalid(facts: ModuleFacts, data: bytes) -> None:
    """Raise the error for a module the runner cannot load (a component gets a clear refusal)."""
    if facts.valid:
        return
    where = {"module_path": facts.path}
    if data[4:8] == COMPONENT_VERSION_BYTES:
        raise CapabilityDenied(
            f"module {facts.path} is a WebAssembly component (WASI preview 2); the runner runs core modules "
            "only (json-v1, palyra-v1, wasi-command): build it as a WASI preview 1 command "
            "(see docs/runtime-abis.md)", {**where, "reason": "component"})
    raise ExecutionError(f"module {facts.path} is not a valid WebAssembly module: {facts.error}", where, code="trap")


def memory_export_for(facts: ModuleFacts) -> str | None:
    """The export the host reads the module's memory through: its own, else one the runner adds."""
    for e in facts.exports:
        if e.kind == "memory":
            return e.name
    if not facts.memories:
        return None
    names = {e.name for e in facts.exports}
    name, n = HOST_MEMORY_EXPORT, 1
    while name in names:
        n += 1
        name = f"{HOST_MEMORY_EXPORT}-{n}"
    return name


# --- the compiled-module cache -------------------------------------------------------------


class LoadedModule(msgspec.Struct, frozen=True):
    module: wasmtime.Module
    facts: ModuleFacts
    memory_export: str | None  # the export to read the guest's memory through (limit checks)
    source: str  # "memory", "disk" or "compiled"


class _Meta(msgspec.Struct, frozen=True):
    format: int
    module_sha256: str
    settings: str
    cwasm_sha256: str
    memory_export: str | None
    facts: ModuleFacts


_memory: OrderedDict[str, tuple[wasmtime.Module, ModuleFacts, str | None]] = OrderedDict()
_memory_lock = threading.Lock()
_stats = {"compiles": 0, "disk_loads": 0, "rejected": 0}


def cache_stats() -> dict[str, int]:
    """Compilations (worker runs), loads from disk and rejected entries in this process."""
    with _memory_lock:
        return dict(_stats)


def private_dir_problem(path: Path) -> str | None:
    """``None`` when ``path`` is a real directory of this user that nobody else can write."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return f"cannot be examined ({e.strerror or e})"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory (a symlink or a file)"
    if st.st_uid != os.getuid():
        return "is owned by another user"
    if stat.S_IMODE(st.st_mode) & 0o022:
        return f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def read_private_file(path: Path, limit: int) -> bytes | None:
    """The bytes of a regular file of this user that nobody else can write; ``None`` otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o022
                or st.st_size > limit):
            return None
        chunks, left = [], st.st_size + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return None if len(data) > limit else data
    except OSError:
        return None
    finally:
        os.close(fd)


class _Rejected(Exception):
    """A cache entry that must not be loaded (deleted, then the module is compiled again)."""


class ModuleCache:
    """Compiled modules by module SHA-256: in process first, then ``<home>/cache/modules/``."""

    def __init__(self, cache_dir: Path, *, notify: Notify | None = None, limits: RunLimits = DEFAULT_LIMITS) -> None:
        self.parent = Path(cache_dir)
        self.directory = self.parent / "modules"
        self.home = self.parent.parent  # the key lives in the home, outside the cache
        self.notify = notify or (lambda message: None)
        self.limits = limits
        self._usable: bool | None = None
        self._key: CacheKey | None = None

    def key(self, module_sha256: str) -> str:
        return hashlib.sha256(f"{module_sha256}\n{settings_fingerprint()}".encode()).hexdigest()

    def usable(self) -> bool:
        """Create the directory (0700) and the home's key and check them; an unsafe directory or
        a missing key means no disk cache (a slower run, never a failed one)."""
        if self._usable is None:
            problem = private_dir_problem(self.parent) or private_dir_problem(self.directory)
            if problem is not None:
                try:
                    ensure_private_dir(self.parent)
                    ensure_private_dir(self.directory)
                except Exception:  # noqa: BLE001
                    pass
                problem = private_dir_problem(self.parent) or private_dir_problem(self.directory)
                problem = problem and f"{self.directory} (or its parent) {problem}"
            if problem is None:
                try:
                    self._key = CacheKey.for_home(self.home)
                except KeyUnavailable as e:
                    problem = f"has no usable key: {e.reason}"
            if problem is not None:
                self.notify(f"warning: the compiled-module cache {problem}; compiling in memory only")
            self._usable = problem is None
        return self._usable

    def get(self, module_sha256: str, path: str, wasm: Callable[[], bytes],
            before_compile: Callable[[ModuleFacts], object] | None = None) -> LoadedModule:
        """The compiled module and its facts; ``wasm()`` supplies the bytes on a miss, and
        ``before_compile(facts)`` may refuse the module (by raising) before it is compiled."""
        with _memory_lock:
            hit = _memory.get(module_sha256)
            if hit is not None:
                _memory.move_to_end(module_sha256)
                return LoadedModule(hit[0], msgspec.structs.replace(hit[1], path=path), hit[2], "memory")
        loaded = self._from_disk(module_sha256) if self.usable() else None
        if loaded is None:
            loaded = self._compile(module_sha256, path, wasm(), before_compile)
        with _memory_lock:
            _memory[module_sha256] = (loaded.module, loaded.facts, loaded.memory_export)
            while len(_memory) > MEMORY_CACHE_SIZE:
                _memory.popitem(last=False)
        return msgspec.structs.replace(loaded, facts=msgspec.structs.replace(loaded.facts, path=path))

    # --- the disk ------------------------------------------------------------------------

    def _paths(self, module_sha256: str) -> tuple[Path, Path]:
        key = self.key(module_sha256)
        return self.directory / f"{key}.json", self.directory / f"{key}.cwasm"

    def _from_disk(self, module_sha256: str) -> LoadedModule | None:
        if private_dir_problem(self.directory) is not None:
            return None
        meta_path, code_path = self._paths(module_sha256)
        if not os.path.lexists(meta_path):
            return None
        try:
            meta, code = self._authenticated(module_sha256, meta_path, code_path)
            try:
                module = wasmtime.Module.deserialize(engine(), code)
            except wasmtime.WasmtimeError as e:
                raise _Rejected(f"does not load ({compile_worker._last_line(str(e))})") from None
        except _Rejected as e:
            self._reject(module_sha256, meta_path, code_path, str(e))
            return None
        with _memory_lock:
            _stats["disk_loads"] += 1
        return LoadedModule(module, meta.facts, meta.memory_export, "disk")

    def _authenticated(self, module_sha256: str, meta_path: Path, code_path: Path) -> tuple[_Meta, bytes]:
        raw = read_private_file(meta_path, MAX_META_BYTES)
        if raw is None:
            raise _Rejected("is not a private regular file of this user")
        assert self._key is not None
        body = self._key.open(MAC_PURPOSE, raw)
        if body is None:
            raise _Rejected("was not written with this home's key (authentication failed)")
        try:
            meta = msgspec.json.decode(body, type=_Meta)
        except msgspec.MsgspecError:
            raise _Rejected("has unreadable metadata") from None
        if (meta.format, meta.module_sha256, meta.settings) != (CACHE_FORMAT, module_sha256, settings_fingerprint()):
            raise _Rejected("names another module or engine")
        code = read_private_file(code_path, MAX_CACHED_BYTES)
        if code is None or hashlib.sha256(code).hexdigest() != meta.cwasm_sha256:
            raise _Rejected("has compiled code that does not match its metadata")
        return meta, code

    def _reject(self, module_sha256: str, meta_path: Path, code_path: Path, reason: str) -> None:
        for p in (meta_path, code_path):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
            except OSError:
                self._usable = False  # an entry we cannot remove: stop using the disk cache in this process
        with _memory_lock:
            _stats["rejected"] += 1
        self.notify(f"warning: compiled-module cache entry {meta_path.stem} (module {module_sha256[:16]}) {reason}; "
                    "deleted, compiling the module again")

    # --- compiling -----------------------------------------------------------------------

    def _compile(self, module_sha256: str, path: str, data: bytes,
                 before_compile: Callable[[ModuleFacts], object] | None) -> LoadedModule:
        where = {"module_path": path}
        if hashlib.sha256(data).hexdigest() != module_sha256:
            raise ExecutionError(f"module {path} does not match its recorded digest", where, code="trap")
        facts = read_facts(path, data)
        refuse_invalid(facts, data)
        if before_compile is not None:
            before_compile(facts)
        memory_export = memory_export_for(facts)
        prepared = data
        if memory_export is not None and not any(e.name == memory_export for e in facts.exports):
            try:
                prepared = with_memory_export(data, memory_export)
            except BinaryError as e:  # cannot happen for a module that validated
                raise ExecutionError(f"module {path} could not be prepared: {e}", where, code="trap") from None
        with _memory_lock:
            _stats["compiles"] += 1
        try:
            code = compile_worker.compile_module(prepared, timeout_ms=self.limits.compile_timeout_ms,
                                                 memory_bytes=self.limits.compile_memory_bytes,
                                                 max_output_bytes=MAX_CACHED_BYTES)
        except compile_worker.CompileLimitExceeded as e:
            raise ExecutionError(f"module {path} was not compiled: {e.reason}",
                                 {**where, "limit": e.which, "compile_timeout_ms": self.limits.compile_timeout_ms,
                                  "compile_memory_bytes": self.limits.compile_memory_bytes},
                                 code="compile_limits_exceeded") from None
        except compile_worker.CompileFailed as e:
            raise ExecutionError(f"module {path} failed to compile: {e.reason}", where, code="trap") from None
        try:
            module = wasmtime.Module.deserialize(engine(), code)
        except wasmtime.WasmtimeError as e:  # the worker's engine settings differ from ours: a bug
            raise ExecutionError(f"module {path} was compiled but does not load into the runner's engine: "
                                 f"{compile_worker._last_line(str(e))}", where, code="internal_error") from None
        if self.usable():
            self._store(module_sha256, code, facts, memory_export)
        return LoadedModule(module, facts, memory_export, "compiled")

    def _store(self, module_sha256: str, code: bytes, facts: ModuleFacts, memory_export: str | None) -> None:
        meta_path, code_path = self._paths(module_sha256)
        body = msgspec.json.encode(_Meta(CACHE_FORMAT, module_sha256, settings_fingerprint(),
                                         hashlib.sha256(code).hexdigest(), memory_export,
                                         msgspec.structs.replace(facts, path="")))
        assert self._key is not None
        try:  # the code first: a reader trusts a .cwasm only through the authenticated .json
            atomic_write(code_path, code, mode=0o600)
            atomic_write(meta_path, self._key.seal(MAC_PURPOSE, body), mode=0o600)
        except Exception as e:  # noqa: BLE001 - a cache that cannot be written only costs time
            self.notify(f"warning: cannot write the compiled-module cache: {getattr(e, 'message', e)}")


def clear_memory_cache() -> None:
    with _memory_lock:
        _memory.clear()
