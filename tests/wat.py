"""WAT sources used by the tests, and a cached compiler to binary (``wasmtime.wat2wasm``).

``wat2wasm`` only parses: a type-invalid module still compiles to bytes here, which is what
the validation tests need. Import it from a test as::

    try:
        from tests import wat
    except ImportError:  # tests/ is not a package
        sys.path.insert(0, str(Path(__file__).resolve().parents[1])); import wat
"""

from __future__ import annotations

import functools

import wasmtime

EMPTY = b"\x00asm\x01\x00\x00\x00"
COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"
GARBAGE = b"\x00asm\x01\x00\x00\x00\xde\xad\xbe\xef"


@functools.lru_cache(maxsize=None)
def wasm(source: str) -> bytes:
    """Compile WAT text to a binary module (cached: the tests reuse a few sources)."""
    return bytes(wasmtime.wat2wasm(source))


# json-v1: memory, alloc, one tool export (the tool's name) and a skills:host/v1 import.
def json_tool(*names: str, memory_pages: int = 1) -> str:
    tools = "\n".join(
        f'  (func (export "{n}") (param i32 i32) (result i64) (i64.extend_i32_u (local.get 1)))' for n in names
    )
    return f"""(module
  (import "skills:host/v1" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") {memory_pages} 16)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
{tools})"""


ECHO = json_tool("echo")

# palyra-v1: run() and only the palyra host-capabilities imports.
PALYRA_V1 = """(module
  (import "palyra:plugins/host-capabilities@0.1.0" "http-count" (func (result i32)))
  (import "palyra:plugins/host-capabilities@0.1.0" "http-handle" (func (param i32) (result i32)))
  (func (export "run") (result i32) (i32.const 0)))"""

# wasi-command: _start and wasi_snapshot_preview1.
WASI_COMMAND = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))"""

# a wasi_snapshot_preview1 user that is not a command (no _start).
WASI_REACTOR = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "echo") (param i32 i32) (result i64) (i64.const 0)))"""

WASI_FILESYSTEM = """(module
  (import "wasi:filesystem/types@0.2.0" "read-via-stream" (func (param i32) (result i32)))
  (func (export "echo") (param i32 i32) (result i64) (i64.const 0)))"""

OUTSIDE_ALLOWLIST = """(module
  (import "env" "abort" (func))
  (import "skills:host/v1" "log" (func (param i32 i32 i32)))
  (import "Env" "x" (global i32))
  (func (export "echo") (param i32 i32) (result i64) (i64.const 0)))"""

TYPE_INVALID = """(module (func (export "echo") (result i32)))"""

# every import and export kind, a non-exported defined memory, an imported memory.
ALL_KINDS = """(module
  (type $s (struct (field i32)))
  (import "skills:host/v1" "log" (func $log (param i32 i32 i32)))
  (import "skills:host/v1" "mem" (memory 2 8))
  (import "skills:host/v1" "tab" (table 1 10 funcref))
  (import "skills:host/v1" "g" (global (mut i64)))
  (import "skills:host/v1" "t" (tag (param i32)))
  (memory 3)
  (memory (export "out") 1)
  (table (export "tbl") 2 externref)
  (global (export "version") i32 (i32.const 1))
  (global (export "counter") (mut f64) (f64.const 0))
  (tag (export "oops") (param i64))
  (func (export "run") (param i32 i32) (result i64) (i64.const 0))
  (func (export "simd") (param v128) (result v128) (local.get 0))
  (func (export "typed") (param (ref null $s)) (result anyref) (ref.null any)))"""


def many_exports(n: int) -> str:
    funcs = "\n".join(f'  (func (export "f{i}"))' for i in range(n))
    return f"(module\n{funcs})"


def memories(imported_pages: int | None, defined_pages: int | None, exported: bool = False) -> str:
    parts = ["(module"]
    if imported_pages is not None:
        parts.append(f'  (import "skills:host/v1" "memory" (memory {imported_pages}))')
    if defined_pages is not None:
        export = ' (export "memory")' if exported else ""
        parts.append(f"  (memory{export} {defined_pages})")
    parts.append("  (func (export \"echo\") (param i32 i32) (result i64) (i64.const 0)))")
    return "\n".join(parts)
