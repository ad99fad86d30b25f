"""The runner's engine: one wasmtime ``Engine`` per process, an epoch ticker, and the
compiled-module cache.

* The engine is the inspector's (``adapters.inspector.engine``): one per process, fuel and
  epoch interruption on. Modules are tied to the engine that compiled them.
* The ticker thread advances the epoch on the *monotonic clock* (not by counting sleeps), so
  a deadline N ms away fires after N ms plus at most one tick, however long the timeout is.
* Compiled modules are cached in ``<home>/cache/modules/`` (0700), keyed by the module's
  SHA-256, the wasmtime version and the engine settings. Deserializing runs native code, so
  a file is only loaded from that directory, only when the directory and the file belong to
  this user and nobody else can write them, and only when its bytes hash to the digest this
  code recorded next to it when it wrote it. Anything else is recompiled.
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

from skill_ledger.adapters.audit.inspector import engine as shared_engine
from skill_ledger.adapters.audit.inspector import inspect_module
from skill_ledger.adapters.storage.files import atomic_write, ensure_private_dir
from skill_ledger.domain.audit import ModuleFacts
from skill_ledger.domain.errors import ExecutionError

__all__ = ["LoadedModule", "ModuleCache", "deadline_ticks", "engine", "settings_fingerprint"]

TICK_S = 0.005  # epoch granularity: a deadline fires at most one tick (plus scheduling) late
CACHE_FORMAT = 1
MAX_CACHED_BYTES = 512 * 1024 * 1024  # a compiled module larger than this is not read back
MEMORY_CACHE_SIZE = 64

Notify = Callable[[str], None]

# The settings the shared engine is built with (adapters/inspector.py). A serialized module only
# loads into the same wasmtime version and configuration, so both are part of the cache key; a
# stale entry after a configuration change fails to deserialize and is recompiled.
ENGINE_SETTINGS = "consume_fuel=1;epoch_interruption=1"


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
    return f"format={CACHE_FORMAT};wasmtime={wasmtime_version()};{ENGINE_SETTINGS};arch={platform.machine()}"


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


_ticker: _Ticker | None = None
_ticker_lock = threading.Lock()


def engine() -> wasmtime.Engine:
    """The process-wide engine, with its epoch ticker running."""
    global _ticker
    eng = shared_engine()
    if _ticker is None:
        with _ticker_lock:
            if _ticker is None:
                _ticker = _Ticker(eng)
    return eng


def deadline_ticks(deadline: float) -> int:
    engine()
    assert _ticker is not None
    return _ticker.ticks_until(deadline)


# --- the compiled-module cache -------------------------------------------------------------


class LoadedModule(msgspec.Struct, frozen=True):
    module: wasmtime.Module
    facts: ModuleFacts
    source: str  # "memory", "disk" or "compiled"


class _Meta(msgspec.Struct, frozen=True):
    format: int
    module_sha256: str
    settings: str
    cwasm_sha256: str
    facts: ModuleFacts


_memory: OrderedDict[str, tuple[wasmtime.Module, ModuleFacts]] = OrderedDict()
_memory_lock = threading.Lock()


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


class ModuleCache:
    """Compiled modules by module SHA-256: in process first, then ``<home>/cache/modules/``."""

    def __init__(self, cache_dir: Path, *, notify: Notify | None = None) -> None:
        self.parent = Path(cache_dir)
        self.directory = self.parent / "modules"
        self.notify = notify or (lambda message: None)
        self._usable: bool | None = None

    def key(self, module_sha256: str) -> str:
        return hashlib.sha256(f"{module_sha256}\n{settings_fingerprint()}".encode()).hexdigest()

    def usable(self) -> bool:
        """Create the directory (0700) and check it; an unsafe directory is never read or written."""
        if self._usable is None:
            problem = private_dir_problem(self.parent) or private_dir_problem(self.directory)
            if problem is not None:
                try:
                    ensure_private_dir(self.parent)
                    ensure_private_dir(self.directory)
                except Exception:  # noqa: BLE001 - no cache is a slower run, never a failed one
                    pass
                problem = private_dir_problem(self.parent) or private_dir_problem(self.directory)
            if problem is not None:
                self.notify(f"warning: compiled-module cache {self.directory} (or its parent) {problem}; "
                            "compiling in memory only")
            self._usable = problem is None
        return self._usable

    def get(self, module_sha256: str, path: str, wasm: Callable[[], bytes]) -> LoadedModule:
        """The compiled module and its facts; ``wasm()`` supplies the bytes on a miss."""
        with _memory_lock:
            hit = _memory.get(module_sha256)
            if hit is not None:
                _memory.move_to_end(module_sha256)
                return LoadedModule(hit[0], msgspec.structs.replace(hit[1], path=path), "memory")
        loaded = self._from_disk(module_sha256) if self.usable() else None
        if loaded is None:
            loaded = self._compile(module_sha256, path, wasm())
        with _memory_lock:
            _memory[module_sha256] = (loaded.module, loaded.facts)
            while len(_memory) > MEMORY_CACHE_SIZE:
                _memory.popitem(last=False)
        return LoadedModule(loaded.module, msgspec.structs.replace(loaded.facts, path=path), loaded.source)

    def _from_disk(self, module_sha256: str) -> LoadedModule | None:
        if private_dir_problem(self.directory) is not None:
            return None
        key = self.key(module_sha256)
        raw_meta = read_private_file(self.directory / f"{key}.json", 4 * 1024 * 1024)
        if raw_meta is None:
            return None
        try:
            meta = msgspec.json.decode(raw_meta, type=_Meta)
        except msgspec.MsgspecError:
            return None
        if (meta.format, meta.module_sha256, meta.settings) != (CACHE_FORMAT, module_sha256, settings_fingerprint()):
            return None
        code = read_private_file(self.directory / f"{key}.cwasm", MAX_CACHED_BYTES)
        if code is None or hashlib.sha256(code).hexdigest() != meta.cwasm_sha256:
            return None
        try:
            module = wasmtime.Module.deserialize(engine(), code)
        except wasmtime.WasmtimeError:
            return None  # another engine configuration: recompiled and overwritten below
        return LoadedModule(module, meta.facts, "disk")

    def _compile(self, module_sha256: str, path: str, data: bytes) -> LoadedModule:
        if hashlib.sha256(data).hexdigest() != module_sha256:
            raise ExecutionError(f"module {path} does not match its recorded digest", {"module_path": path},
                                 code="trap")
        facts = inspect_module(path, data)
        if not facts.valid:
            raise ExecutionError(f"module {path} is not a valid WebAssembly module: {facts.error}",
                                 {"module_path": path}, code="trap")
        try:
            module = wasmtime.Module(engine(), data)
        except wasmtime.WasmtimeError as e:
            raise ExecutionError(f"module {path} failed to compile: {str(e).strip().splitlines()[-1]}",
                                 {"module_path": path}, code="trap") from None
        if self.usable():
            self._store(module_sha256, module, facts)
        return LoadedModule(module, facts, "compiled")

    def _store(self, module_sha256: str, module: wasmtime.Module, facts: ModuleFacts) -> None:
        key = self.key(module_sha256)
        code = bytes(module.serialize())
        meta = _Meta(CACHE_FORMAT, module_sha256, settings_fingerprint(), hashlib.sha256(code).hexdigest(),
                     msgspec.structs.replace(facts, path=""))
        try:  # the code first: a reader trusts a .cwasm only through the digest in its .json
            atomic_write(self.directory / f"{key}.cwasm", code, mode=0o600)
            atomic_write(self.directory / f"{key}.json", msgspec.json.encode(meta), mode=0o600)
        except Exception as e:  # noqa: BLE001 - a cache that cannot be written only costs time
            self.notify(f"warning: cannot write the compiled-module cache: {getattr(e, 'message', e)}")


def clear_memory_cache() -> None:
    with _memory_lock:
        _memory.clear()
