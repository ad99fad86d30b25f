"""The module inspector: module bytes in, :class:`domain.audit.ModuleFacts` out, without compiling.

Three layers, each for a reason:

1. The 8-byte core-module header is checked first (``domain.audit.wasm_header_problem``):
   wasmtime also accepts the text format in places, and the audit must not.
2. ``wasmtime.Module.validate`` with an engine configured like the runner's (fuel and epoch
   interruption, so the same feature set) is the validity verdict. Validation is linear in the
   module's size and 100-500 times cheaper than compiling it (SQLite: 0.01 s against 1.3 s), so
   an audit, an install or a re-audit never compiles: the one compilation of a module happens
   in the runner, at its first run, where it is bounded. The error's reason becomes ``error``.
3. The facts (signatures, memories, function count, function body sizes, code size) are read
   by a small bounds-checked binary reader here, not through wasmtime's type reflection: that
   needs a compiled module, and in wasmtime-py 50 reading the parameter types of a function that
   uses ``v128`` or a typed reference *aborts the process* (a Rust panic in the C API). The
   reader reads only validated bytes, and must consume the import, function, export and code
   sections exactly to their ends: a misread shows as "could not be read", an invalid fact that
   fails the audit, never as a missing import.

Nothing here raises for hostile bytes: every failure becomes a ``valid=False`` fact. Facts are
cached in-process by module SHA-256 (LRU), so re-auditing an unchanged fleet reads nothing twice.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec
import wasmtime

from skill_ledger.domain.audit import ExportFact, ImportFact, MemoryFact, ModuleFacts, wasm_header_problem

__all__ = ["CACHE_SIZE", "cache_info", "clear_cache", "engine", "inspect_module", "inspect_modules"]

CACHE_SIZE = 4096
MAX_ERROR_CHARS = 300

_engine: wasmtime.Engine | None = None
_engine_lock = threading.Lock()
_cache: OrderedDict[str, ModuleFacts] = OrderedDict()
_cache_lock = threading.Lock()
_stats = {"hits": 0, "misses": 0, "validations": 0}


def engine() -> wasmtime.Engine:
    """The process-wide engine, created on first use (a Config is consumed by its Engine)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            cfg = wasmtime.Config()
            cfg.consume_fuel = True
            cfg.epoch_interruption = True
            _engine = wasmtime.Engine(cfg)
        return _engine


def cache_info() -> dict[str, int]:
    """Hits and misses of the facts cache and how many modules the engine validated; ``compiles``
    is always 0 (the inspector never compiles; benchmarks count it next to the runner's)."""
    with _cache_lock:
        return {**_stats, "compiles": 0, "size": len(_cache), "maxsize": CACHE_SIZE}


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
        for k in _stats:
            _stats[k] = 0


def inspect_modules(entries: Mapping[str, bytes], max_bytes: int | None = None) -> dict[str, ModuleFacts]:
    """Facts for every ``modules/*.wasm`` entry of an artifact, by path."""
    from skill_ledger.domain.artifact import is_module_path  # not at import: the runner's start-up

    return {p: inspect_module(p, d, max_bytes) for p, d in sorted(entries.items()) if is_module_path(p)}


def inspect_module(path: str, data: bytes, max_bytes: int | None = None) -> ModuleFacts:
    """Facts for one module. Never raises for bad bytes, never compiles.

    With ``max_bytes`` (the policy's ``max_module_bytes``), a larger module is not looked at: the
    audit fails it on size and looks no further.
    """
    data = bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    with _cache_lock:
        cached = _cache.get(digest)
        if cached is not None:
            _cache.move_to_end(digest)
            _stats["hits"] += 1
            return msgspec.structs.replace(cached, path=path)
        _stats["misses"] += 1
    if max_bytes is not None and len(data) > max_bytes:
        error = f"not inspected: {len(data)} bytes exceeds the inspection limit of {max_bytes}"
        return ModuleFacts(path=path, size=len(data), sha256=digest, valid=False, error=error)
    facts = _inspect(data, digest)
    with _cache_lock:
        _cache[digest] = facts
        _cache.move_to_end(digest)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return msgspec.structs.replace(facts, path=path)


def _inspect(data: bytes, digest: str) -> ModuleFacts:
    def invalid(reason: str) -> ModuleFacts:
        return ModuleFacts(path="", size=len(data), sha256=digest, valid=False, error=reason)

    problem = wasm_header_problem(data)
    if problem is not None:
        return invalid(problem)
    try:
        with _cache_lock:
            _stats["validations"] += 1
        wasmtime.Module.validate(engine(), data)
    except wasmtime.WasmtimeError as e:
        return invalid(_reason(str(e)))
    except Exception as e:  # noqa: BLE001 - a hostile module must never escape as an exception
        return invalid(f"the engine could not validate the module ({type(e).__name__})")
    try:
        structure = _Reader(data).structure()
    except _Malformed as e:
        return invalid(f"module structure could not be read: {e}")
    except Exception as e:  # noqa: BLE001 - defensive: the reader itself must never crash an audit
        return invalid(f"module structure could not be read ({type(e).__name__})")
    return ModuleFacts(
        path="",
        size=len(data),
        sha256=digest,
        valid=True,
        imports=tuple(structure.imports),
        exports=tuple(structure.exports),
        memories=tuple(structure.memories),
        function_count=structure.function_count,
        largest_function_bytes=structure.largest_function_bytes,
        code_bytes=structure.code_bytes,
    )


def _reason(message: str) -> str:
    """One line: the innermost cause of a wasmtime error chain, whitespace collapsed, bounded."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    if not lines:
        return "the engine rejected the module"
    if "Caused by:" in lines:  # "failed to ...\n\nCaused by:\n    0: ...\n    1: the reason"
        last = lines[-1]
        head, sep, rest = last.partition(": ")
        text = rest if sep and head.isascii() and head.isdigit() else last
    else:
        text = " ".join(lines)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


# --- the binary reader --------------------------------------------------------------------


class _Malformed(Exception):
    pass


_VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128", 0x78: "i8", 0x77: "i16"}
# Abstract heap types (one byte) and the shorthand reference types they spell alone.
_HEAPTYPES = {
    0x70: "func", 0x6F: "extern", 0x6E: "any", 0x6D: "eq", 0x6C: "i31", 0x6B: "struct", 0x6A: "array",
    0x69: "exn", 0x68: "cont", 0x71: "none", 0x72: "noextern", 0x73: "nofunc", 0x74: "noexn", 0x75: "nocont",
}  # fmt: skip
_SHORTHAND = {b: n + "ref" for b, n in _HEAPTYPES.items() if not n.startswith("no")} | {
    0x71: "nullref", 0x72: "nullexternref", 0x73: "nullfuncref", 0x74: "nullexnref", 0x75: "nullcontref",
}  # fmt: skip
_EXTERN_KINDS = {0x00: "func", 0x01: "table", 0x02: "memory", 0x03: "global", 0x04: "tag"}
_MAX_ITEMS = 1_000_000  # a vector count beyond this is hostile (and beyond engine limits anyway)
# Sections whose every byte the reader understands: reading one must end exactly at its end
# (types, imports, functions, memories, exports, code), so a misread cannot go unnoticed.
_EXACT_SECTIONS = frozenset({1, 2, 3, 5, 7, 10})


class _Structure(NamedTuple):
    imports: list[ImportFact]
    exports: list[ExportFact]
    memories: list[MemoryFact]
    function_count: int  # defined functions (imports are not compiled)
    largest_function_bytes: int
    code_bytes: int  # the code section's size


class _Reader:
    """Reads just enough of a (validated) core module: types, imports, functions, tables,
    memories, globals, exports, tags. Every read is bounds-checked against ``end``."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 8
        self.end = len(data)

    # primitives
    def byte(self) -> int:
        if self.pos >= self.end:
            raise _Malformed(f"unexpected end at offset {self.pos}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def peek(self) -> int:
        if self.pos >= self.end:
            raise _Malformed(f"unexpected end at offset {self.pos}")
        return self.data[self.pos]

    def uleb(self, bits: int) -> int:
        result = shift = 0
        for _ in range((bits + 6) // 7):
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if result >> bits:
                    raise _Malformed("integer too large")
                return result
        raise _Malformed("integer representation too long")

    def sleb(self, bits: int) -> int:
        result = shift = 0
        for _ in range((bits + 6) // 7):
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b & 0x40:
                    result -= 1 << shift
                return result
        raise _Malformed("integer representation too long")

    def count(self) -> int:
        n = self.uleb(32)
        if n > _MAX_ITEMS or n > self.end - self.pos:  # every item takes at least one byte
            raise _Malformed("vector length out of range")
        return n

    def skip(self, n: int) -> None:
        if n > self.end - self.pos:
            raise _Malformed("unexpected end")
        self.pos += n

    def name(self) -> str:
        n = self.uleb(32)
        if n > self.end - self.pos:
            raise _Malformed("name runs past the end")
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Malformed("name is not UTF-8") from None

    # types
    def heaptype(self) -> str:
        b = self.peek()
        if b in _HEAPTYPES:
            self.pos += 1
            return _HEAPTYPES[b]
        if b == 0x65:  # shared abstract heap type
            self.pos += 1
            b = self.byte()
            if b not in _HEAPTYPES:
                raise _Malformed("bad shared heap type")
            return "shared " + _HEAPTYPES[b]
        index = self.sleb(33)
        if index < 0:
            raise _Malformed("bad heap type")
        return str(index)

    def valtype(self) -> str:
        b = self.byte()
        if b in _VALTYPES:
            return _VALTYPES[b]
        if b in _SHORTHAND:
            return _SHORTHAND[b]
        if b in (0x63, 0x64):
            return f"(ref {'null ' if b == 0x63 else ''}{self.heaptype()})"
        if b == 0x65:
            self.pos -= 1
            return f"(ref null {self.heaptype()})"
        raise _Malformed(f"unknown value type 0x{b:02x}")

    def limits(self, memory: bool) -> tuple[int, int | None, bool, bool]:
        flags = self.byte()
        if flags & ~0x0F or (not memory and flags & 0x0A):
            raise _Malformed(f"unknown limits flags 0x{flags:02x}")
        is64 = bool(flags & 0x04)
        bits = 64 if is64 else 32
        minimum = self.uleb(bits)
        maximum = self.uleb(bits) if flags & 0x01 else None
        if flags & 0x08:
            self.uleb(32)  # custom page size (log2): not enabled by default, rejected by the engine
        return minimum, maximum, is64, bool(flags & 0x02)

    def tabletype(self) -> str:
        elem = self.valtype()
        minimum, maximum, is64, _ = self.limits(memory=False)
        return f"table {'i64 ' if is64 else ''}{elem} {minimum}..{'' if maximum is None else maximum}"

    def memtype(self, imported: bool) -> MemoryFact:
        minimum, maximum, is64, shared = self.limits(memory=True)
        return MemoryFact(minimum_pages=minimum, maximum_pages=maximum, imported=imported, is_64=is64, shared=shared)

    def globaltype(self) -> str:
        content = self.valtype()
        mut = self.byte()
        if mut not in (0, 1):
            raise _Malformed("bad global mutability")
        return f"global {content} {'mut' if mut else 'const'}"

    def comptype(self) -> str | None:
        form = self.byte()
        if form == 0x60:
            params = [self.valtype() for _ in range(self.count())]
            results = [self.valtype() for _ in range(self.count())]
            return f"({', '.join(params)}) -> ({', '.join(results)})"
        if form == 0x5F:  # struct
            for _ in range(self.count()):
                self.valtype()
                self.byte()
            return None
        if form == 0x5E:  # array
            self.valtype()
            self.byte()
            return None
        raise _Malformed(f"unknown composite type 0x{form:02x}")

    def subtype(self) -> str | None:
        b = self.peek()
        if b in (0x50, 0x4F):
            self.pos += 1
            for _ in range(self.count()):
                self.uleb(32)
        return self.comptype()

    def const_expr(self) -> None:
        """Skip a constant expression (the opcodes constant expressions may use)."""
        while True:
            op = self.byte()
            if op == 0x0B:
                return
            if op in (0x41, 0x23, 0xD2):  # i32.const, global.get, ref.func
                self.sleb(32) if op == 0x41 else self.uleb(32)
            elif op == 0x42:
                self.sleb(64)
            elif op == 0x43:
                self.skip(4)
            elif op == 0x44:
                self.skip(8)
            elif op == 0xD0:  # ref.null
                self.heaptype()
            elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
                pass
            elif op == 0xFD:  # v128.const
                if self.uleb(32) != 12:
                    raise _Malformed("unsupported constant instruction")
                self.skip(16)
            elif op == 0xFB:  # GC constant instructions
                sub = self.uleb(32)
                if sub in (0, 1, 6, 7):
                    self.uleb(32)
                elif sub == 8:
                    self.uleb(32)
                    self.uleb(32)
                elif sub not in (0x1A, 0x1B, 0x1C):
                    raise _Malformed("unsupported constant instruction")
            else:
                raise _Malformed("unsupported constant instruction")

    # the module
    def module(self) -> tuple[list[ImportFact], list[ExportFact], list[MemoryFact]]:
        """Imports, exports and memories (what the runner's ``read_facts`` takes)."""
        s = self.structure()
        return s.imports, s.exports, s.memories

    def structure(self) -> _Structure:
        types: list[str | None] = []
        funcs: list[str] = []
        tables: list[str] = []
        memories: list[MemoryFact] = []
        globals_: list[str] = []
        tags: list[str] = []
        imports: list[ImportFact] = []
        raw_exports: list[tuple[str, int, int]] = []
        declared_functions: int | None = None  # the function section's count (defined functions)
        bodies: list[int] = []  # the code section's body sizes
        code_bytes = 0

        def functype(index: int) -> str:
            if index >= len(types) or types[index] is None:
                raise _Malformed(f"type index {index} is not a function type")
            return types[index]  # type: ignore[return-value]

        while self.pos < self.end:
            section = self.byte()
            size = self.uleb(32)
            if size > self.end - self.pos:
                raise _Malformed(f"section {section} runs past the end")
            body_end = self.pos + size
            outer_end, self.end = self.end, body_end
            if section == 1:
                for _ in range(self.count()):
                    if self.peek() == 0x4E:  # rec group
                        self.pos += 1
                        types.extend(self.subtype() for _ in range(self.count()))
                    else:
                        types.append(self.subtype())
            elif section == 2:
                for _ in range(self.count()):
                    module, name = self.name(), self.name()
                    kind = _EXTERN_KINDS.get(self.byte())
                    if kind == "func":
                        t = functype(self.uleb(32))
                        funcs.append(t)
                    elif kind == "table":
                        t = self.tabletype()
                        tables.append(t)
                    elif kind == "memory":
                        mem = self.memtype(imported=True)
                        memories.append(mem)
                        t = _memory_text(mem)
                    elif kind == "global":
                        t = self.globaltype()
                        globals_.append(t)
                    elif kind == "tag":
                        self.byte()  # attribute (0 = exception)
                        t = "tag " + functype(self.uleb(32))
                        tags.append(t)
                    else:
                        raise _Malformed("unknown import kind")
                    imports.append(ImportFact(module=module, name=name, kind=kind, type=t))
            elif section == 3:
                declared_functions = self.count()
                funcs.extend(functype(self.uleb(32)) for _ in range(declared_functions))
            elif section == 4:
                self._tables(tables)
            elif section == 5:
                memories.extend(self.memtype(imported=False) for _ in range(self.count()))
            elif section == 6:
                self._globals(globals_)
            elif section == 7:
                for _ in range(self.count()):
                    name = self.name()
                    kind_byte = self.byte()
                    raw_exports.append((name, kind_byte, self.uleb(32)))
            elif section == 10:
                code_bytes = size
                for _ in range(self.count()):
                    body = self.uleb(32)
                    self.skip(body)
                    bodies.append(body)
            elif section == 13:
                for _ in range(self.count()):
                    self.byte()
                    tags.append("tag " + functype(self.uleb(32)))
            if section in _EXACT_SECTIONS and self.pos != body_end:
                raise _Malformed(f"section {section} was not read to its end")
            self.pos, self.end = body_end, outer_end
        if len(bodies) != (declared_functions or 0):
            raise _Malformed("the code section does not match the function section")

        spaces: dict[int, list[Any]] = {0: funcs, 1: tables, 2: memories, 3: globals_, 4: tags}
        exports: list[ExportFact] = []
        for name, kind_byte, index in raw_exports:
            space = spaces.get(kind_byte)
            if space is None:
                raise _Malformed("unknown export kind")
            if index >= len(space):
                raise _Malformed(f"export '{name}' refers to a missing item")
            item = space[index]
            t = _memory_text(item) if isinstance(item, MemoryFact) else item
            exports.append(ExportFact(name=name, kind=_EXTERN_KINDS[kind_byte], type=t))  # type: ignore[arg-type]
        return _Structure(imports, exports, memories, len(bodies), max(bodies, default=0), code_bytes)

    def _tables(self, tables: list[str]) -> None:
        # Best effort past a table initialiser we cannot skip: the rest are typed "table".
        n = self.count()
        for i in range(n):
            try:
                if self.peek() == 0x40:
                    self.pos += 1
                    if self.byte() != 0x00:
                        raise _Malformed("bad table encoding")
                    t = self.tabletype()
                    self.const_expr()
                else:
                    t = self.tabletype()
            except _Malformed:
                tables.extend("table" for _ in range(n - i))
                return
            tables.append(t)

    def _globals(self, globals_: list[str]) -> None:
        n = self.count()
        for i in range(n):
            try:
                t = self.globaltype()
                self.const_expr()
            except _Malformed:
                globals_.extend("global" for _ in range(n - i))
                return
            globals_.append(t)


def _memory_text(m: MemoryFact) -> str:
    maximum = "" if m.maximum_pages is None else str(m.maximum_pages)
    return f"memory {'i64 ' if m.is_64 else ''}{m.minimum_pages}..{maximum}{' shared' if m.shared else ''}"
