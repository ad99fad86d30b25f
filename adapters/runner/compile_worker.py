"""Compiling untrusted modules in a worker process with resource limits.

A module that passed the audit can still be a compile bomb: a 258 KB module of nested
``if`` blocks takes Cranelift 21 s and 1.2 GB. So the runner never compiles in its own
process. :func:`compile_module` starts this file as a script (``python -I``: no
environment-controlled imports, only the standard library and wasmtime), hands it the module
on stdin, and gets the serialized native code back through an unnamed temporary file. The
worker, before it imports wasmtime:

* caps its address space (``RLIMIT_AS``): an allocation past it aborts the worker, never the
  runner; the limit covers everything the compiler maps, so it is set well above what a real
  module needs (the SQLite amalgamation: under 100 MB resident);
* caps its CPU time (``RLIMIT_CPU``): a backstop for the parent's wall-clock timeout, which
  kills the worker first; and it asks the kernel to kill it if the parent dies;
* writes no core dump.

The parent classifies what happened: the serialized module, an invalid module (its error),
or a limit (``compile_limits_exceeded``: time, memory, or a crash of the compiler). Only
the parent holds the cache key and writes the cache entry (``engine.py``), so nothing that
touches the untrusted bytes can write into the cache under the key.

The worker builds its engine from :func:`engine_config`, the same function the runner's
engine uses: serialized code only loads into an engine of the same settings.
"""

from __future__ import annotations

import os
import sys

__all__ = ["CompileFailed", "CompileLimitExceeded", "compile_module", "engine_config"]

EXIT_INVALID = 3  # the module does not compile (its error on stderr)
EXIT_USAGE = 4
_ALLOC_FAILED = "memory allocation of"  # Rust's message when an allocation fails (then abort)


def engine_config():  # a wasmtime.Config; wasmtime is imported lazily (the worker sets limits first)
    """The engine settings shared by the worker and the runner (part of the cache key)."""
    import wasmtime

    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    cfg.epoch_interruption = True
    return cfg


ENGINE_SETTINGS = "consume_fuel=1;epoch_interruption=1"  # what engine_config sets, for the cache key


# --- the parent's side -----------------------------------------------------------------------


class CompileFailed(Exception):
    """The module does not compile (``reason`` is the engine's last line)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CompileLimitExceeded(Exception):
    """The compilation hit a limit: ``which`` is ``time``, ``memory`` or ``crash``."""

    def __init__(self, which: str, reason: str) -> None:
        super().__init__(reason)
        self.which = which
        self.reason = reason


def compile_module(data: bytes, *, timeout_ms: int, memory_bytes: int, max_output_bytes: int) -> bytes:
    """The serialized module compiled from ``data`` in a bounded worker process."""
    import signal
    import subprocess
    import tempfile

    cpu_seconds = max(1, -(-timeout_ms // 1000) * max(1, os.cpu_count() or 1))
    with tempfile.TemporaryFile(prefix="skills-compile-") as out:
        argv = [sys.executable, "-I", __file__, str(memory_bytes), str(cpu_seconds), str(out.fileno())]
        env = {"MALLOC_ARENA_MAX": "2", "RUST_BACKTRACE": "0", "PATH": os.defpath}
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                pass_fds=(out.fileno(),), env=env, cwd="/")
        try:
            _, err = proc.communicate(data, timeout=timeout_ms / 1000)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise CompileLimitExceeded("time", f"compiling took longer than the limit of {timeout_ms} ms") from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        message = _last_line(err.decode("utf-8", errors="replace"))
        rc = proc.returncode
        if rc == 0:
            size = os.fstat(out.fileno()).st_size
            if size > max_output_bytes:
                raise CompileLimitExceeded("memory", f"the compiled code is {size} bytes, above the cache's "
                                                     f"limit of {max_output_bytes}")
            out.seek(0)
            return out.read()
        if rc == EXIT_INVALID:
            raise CompileFailed(message or "the engine rejected the module")
        if rc in (-signal.SIGXCPU, -signal.SIGKILL):
            raise CompileLimitExceeded("time", f"compiling used up the CPU time limit of {cpu_seconds} s")
        if _ALLOC_FAILED in err.decode("utf-8", errors="replace") or rc == -signal.SIGABRT:
            raise CompileLimitExceeded("memory", f"compiling needed more than the memory limit of {memory_bytes} "
                                                 "bytes (address space)")
        if rc == -signal.SIGSEGV:  # the compiler's stack: a nesting bomb, or a bug in the compiler
            raise CompileLimitExceeded("crash", "the compiler crashed (SIGSEGV) on this module")
        raise CompileLimitExceeded("crash", f"the compile worker failed (exit status {rc})"
                                            + (f": {message}" if message else ""))


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ""
    last = lines[-1]
    head, sep, rest = last.partition(": ")  # wasmtime numbers its "Caused by" chain: "1: ..."
    return (rest if sep and head.isascii() and head.isdigit() else last)[:500]


# --- the worker's side -----------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent exits (a killed runner leaves no compiler)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere: RLIMIT_CPU still ends it


def _worker(argv: list[str]) -> int:
    import resource

    try:
        memory_bytes, cpu_seconds, out_fd = int(argv[0]), int(argv[1]), int(argv[2])
    except (IndexError, ValueError):
        print("usage: compile_worker.py MEMORY_BYTES CPU_SECONDS OUT_FD", file=sys.stderr)
        return EXIT_USAGE
    _die_with_parent()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    data = sys.stdin.buffer.read()

    import wasmtime

    try:
        module = wasmtime.Module(wasmtime.Engine(engine_config()), data)
    except wasmtime.WasmtimeError as e:
        print(_last_line(str(e)) or "the engine rejected the module", file=sys.stderr)
        return EXIT_INVALID
    code = bytes(module.serialize())
    view = memoryview(code)
    while view:
        view = view[os.write(out_fd, view):]
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
