"""The wasmtime module inspector: real facts, invalid modules as facts, hostile bytes, the cache."""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

import msgspec
import pytest

from skill_ledger.adapters.audit import inspector
from skill_ledger.adapters.audit.inspector import cache_info, clear_cache, inspect_module, inspect_modules
from skill_ledger.domain.audit import ExportFact, ImportFact, MemoryFact, ModuleFacts

try:
    from tests import wat
except ImportError:  # tests/ is not a package: pytest puts only this directory on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import wat  # type: ignore[no-redef]


def test_facts_of_a_module_with_every_kind() -> None:
    data = wat.wasm(wat.ALL_KINDS)
    f = inspect_module("modules/all.wasm", data)
    assert (f.path, f.size, f.sha256, f.valid, f.error) == (
        "modules/all.wasm",
        len(data),
        hashlib.sha256(data).hexdigest(),
        True,
        None,
    )
    host = "skills:host/v1"
    assert f.imports == (
        ImportFact(module=host, name="log", kind="func", type="(i32, i32, i32) -> ()"),
        ImportFact(module=host, name="mem", kind="memory", type="memory 2..8"),
        ImportFact(module=host, name="tab", kind="table", type="table funcref 1..10"),
        ImportFact(module=host, name="g", kind="global", type="global i64 mut"),
        ImportFact(module=host, name="t", kind="tag", type="tag (i32) -> ()"),
    )
    # v128 and typed references would abort the process through wasmtime's type reflection
    assert f.exports == (
        ExportFact(name="out", kind="memory", type="memory 1.."),
        ExportFact(name="tbl", kind="table", type="table externref 2.."),
        ExportFact(name="version", kind="global", type="global i32 const"),
        ExportFact(name="counter", kind="global", type="global f64 mut"),
        ExportFact(name="oops", kind="tag", type="tag (i64) -> ()"),
        ExportFact(name="run", kind="func", type="(i32, i32) -> (i64)"),
        ExportFact(name="simd", kind="func", type="(v128) -> (v128)"),
        ExportFact(name="typed", kind="func", type="((ref null 0)) -> (anyref)"),
    )
    # imported first, then defined: the non-exported memory 3 is included
    assert f.memories == (
        MemoryFact(minimum_pages=2, maximum_pages=8, imported=True),
        MemoryFact(minimum_pages=3, maximum_pages=None, imported=False),
        MemoryFact(minimum_pages=1, maximum_pages=None, imported=False),
    )
    assert f.exported_functions() == ["run", "simd", "typed"]
    assert f.exports_function("run") and not f.exports_function("out")
    assert f.import_modules() == [host]
    assert not f.is_wasi_command()
    assert f.declared_min_memory_bytes() == 6 * 65536
    assert f.export_type("run") == "(i32, i32) -> (i64)"


def test_json_and_wasi_modules() -> None:
    echo = inspect_module("modules/echo.wasm", wat.wasm(wat.ECHO))
    assert echo.exports == (
        ExportFact(name="memory", kind="memory", type="memory 1..16"),
        ExportFact(name="alloc", kind="func", type="(i32) -> (i32)"),
        ExportFact(name="echo", kind="func", type="(i32, i32) -> (i64)"),
    )
    cmd = inspect_module("modules/cmd.wasm", wat.wasm(wat.WASI_COMMAND))
    assert cmd.is_wasi_command() and cmd.import_modules() == ["wasi_snapshot_preview1"]


def test_memory_variants() -> None:
    src = """(module
      (import "a" "m" (memory i64 1 2))
      (memory 1 4 shared)
      (memory i64 3)
      (export "s" (memory 1)))"""
    f = inspect_module("modules/m.wasm", wat.wasm(src))
    assert f.valid, f.error
    assert f.memories == (
        MemoryFact(minimum_pages=1, maximum_pages=2, imported=True, is_64=True),
        MemoryFact(minimum_pages=1, maximum_pages=4, imported=False, shared=True),
        MemoryFact(minimum_pages=3, maximum_pages=None, imported=False, is_64=True),
    )
    assert f.imports[0].type == "memory i64 1..2"
    assert f.exports == (ExportFact(name="s", kind="memory", type="memory 1..4 shared"),)


def test_gc_types_and_initialised_tables_and_globals() -> None:
    src = """(module
      (rec (type $a (struct (field (mut i32)) (field i8))) (type $b (sub (array i16))))
      (type $f (sub final (func (param (ref $a)) (result (ref null $b)))))
      (global $g0 i32 (i32.const 7))
      (global (export "g1") i32 (i32.add (global.get $g0) (i32.const 1)))
      (global (export "g2") (ref null $a) (struct.new $a (i32.const 1) (i32.const 2)))
      (global (export "g3") v128 (v128.const i64x2 1 2))
      (table (export "t") 1 funcref (ref.func $h))
      (func $h (export "h") (type $f) (ref.null $b)))"""
    f = inspect_module("modules/gc.wasm", wat.wasm(src))
    assert f.valid, f.error
    assert {e.name: e.type for e in f.exports} == {
        "g1": "global i32 const",
        "g2": "global (ref null 0) const",
        "g3": "global v128 const",
        "t": "table funcref 1..",
        "h": "((ref 0)) -> ((ref null 1))",
    }


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "not a binary WebAssembly module (missing \\0asm header)"),
        (b"\x00asm", "truncated WebAssembly header"),
        (b"(module)", "WebAssembly text format (WAT) is not accepted; package the binary module"),
        (wat.COMPONENT_HEADER, "a WebAssembly component-model binary is not a core module"),
        (wat.GARBAGE, "malformed section id (at offset 0x8)"),
        (
            wat.wasm(wat.TYPE_INVALID),
            "type mismatch: expected i32 but nothing on stack (at offset 0x22)",
        ),
        (wat.wasm("(module (memory 70000))"), "memory size must be at most 0x10000 65536-byte pages (at offset 0xb)"),
    ],
)
def test_invalid_modules_are_facts(data: bytes, error: str) -> None:
    f = inspect_module("modules/x.wasm", data)
    assert f == ModuleFacts(
        path="modules/x.wasm", size=len(data), sha256=hashlib.sha256(data).hexdigest(), valid=False, error=error
    )


def test_wat_text_never_reaches_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cache()

    def boom(*args: object) -> None:
        raise AssertionError("the engine was called")

    monkeypatch.setattr(inspector.wasmtime, "Module", boom)
    assert not inspect_module("modules/x.wasm", wat.ECHO.encode()).valid
    assert cache_info()["validations"] == 0


def test_hostile_and_truncated_binaries_never_raise() -> None:
    seeds = [wat.wasm(s) for s in (wat.ECHO, wat.ALL_KINDS, wat.WASI_COMMAND, wat.OUTSIDE_ALLOWLIST)]
    rng = random.Random(7)
    cases: list[bytes] = []
    for seed in seeds:
        cases.extend(seed[:n] for n in range(9, len(seed), 3))  # truncations
    for _ in range(300):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(8, len(data))] = rng.randrange(256)
        cases.append(bytes(data))
    # huge declared counts and sizes, over-long LEB128s
    cases += [
        wat.EMPTY + b"\x01\xff\xff\xff\xff\x0f",
        wat.EMPTY + b"\x05\x05\xff\xff\xff\xff\x0f",
        wat.EMPTY + b"\x05\x80\x80\x80\x80\x80\x80\x01",
        wat.EMPTY + b"\x02\x06\x01\xff\xff\xff\xff\x0f",
    ]
    for data in cases:
        f = inspect_module("modules/x.wasm", data)
        assert f.valid or f.error


def test_the_reader_never_raises_on_its_own() -> None:
    # the reader only ever sees validated modules; it must still fail cleanly on anything
    rng = random.Random(11)
    seed = wat.wasm(wat.ALL_KINDS)
    for _ in range(2000):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(8, len(data))] = rng.randrange(256)
        try:
            inspector._Reader(bytes(data)).module()
        except inspector._Malformed:
            pass


def test_cache_skips_revalidating_unchanged_modules() -> None:
    clear_cache()
    data = wat.wasm(wat.json_tool("cached_tool"))
    first = inspect_module("modules/a.wasm", data)
    assert cache_info()["validations"] == 1
    second = inspect_module("modules/b.wasm", data)  # same bytes at another path
    info = cache_info()
    assert (info["validations"], info["hits"], info["misses"], info["size"]) == (1, 1, 1, 1)
    assert second.path == "modules/b.wasm"
    assert second == msgspec.structs.replace(first, path="modules/b.wasm")
    # invalid modules are cached too
    inspect_module("modules/x.wasm", wat.wasm(wat.TYPE_INVALID))
    inspect_module("modules/x.wasm", wat.wasm(wat.TYPE_INVALID))
    assert cache_info()["validations"] == 2


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cache()
    monkeypatch.setattr(inspector, "CACHE_SIZE", 2)
    modules = [wat.wasm(wat.json_tool(f"t{i}")) for i in range(3)]
    for m in modules:
        inspect_module("modules/m.wasm", m)
    assert cache_info()["size"] == 2
    inspect_module("modules/m.wasm", modules[0])  # evicted (least recently used): validated again
    assert cache_info()["validations"] == 4
    inspect_module("modules/m.wasm", modules[2])
    assert cache_info()["validations"] == 4


def test_max_bytes_skips_validating_oversized_modules() -> None:
    clear_cache()
    data = wat.wasm(wat.many_exports(10))
    f = inspect_module("modules/big.wasm", data, max_bytes=len(data) - 1)
    assert not f.valid
    assert f.error == f"not inspected: {len(data)} bytes exceeds the inspection limit of {len(data) - 1}"
    assert cache_info()["validations"] == 0 and cache_info()["size"] == 0
    assert inspect_module("modules/big.wasm", data, max_bytes=len(data)).valid


def test_inspect_modules_takes_only_module_entries() -> None:
    entries = {
        "skill.toml": b"x",
        "modules/b.wasm": wat.wasm(wat.ECHO),
        "modules/a.wasm": wat.EMPTY,
        "assets/x.wasm": wat.EMPTY,
    }
    facts = inspect_modules(entries)
    assert list(facts) == ["modules/a.wasm", "modules/b.wasm"]
    assert all(f.path == p and f.valid for p, f in facts.items())


def test_one_engine_per_process() -> None:
    assert inspector.engine() is inspector.engine()


# --- validation without compiling (issue 17) ----------------------------------------------


def test_inspecting_never_compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validity comes from Module.validate; a compile (what cost the audit 100-500 times more)
    would call Module's constructor."""
    clear_cache()

    def no_compile(self: object, *args: object) -> None:
        raise AssertionError("the inspector compiled a module")

    monkeypatch.setattr(inspector.wasmtime.Module, "__init__", no_compile)
    for source in (wat.ECHO, wat.ALL_KINDS, wat.WASI_COMMAND, wat.TYPE_INVALID):
        inspect_module("modules/m.wasm", wat.wasm(source))
    assert cache_info()["validations"] == 4


SOURCES = [wat.ECHO, wat.ALL_KINDS, wat.WASI_COMMAND, wat.WASI_REACTOR, wat.PALYRA_V1, wat.OUTSIDE_ALLOWLIST,
           wat.WASI_FILESYSTEM, wat.many_exports(30), wat.memories(2, 3, exported=True)]


@pytest.mark.parametrize("source", SOURCES, ids=range(len(SOURCES)))
def test_the_reader_sees_what_wasmtime_sees(source: str) -> None:
    """The cross-check the inspector no longer pays for at every audit (it needs a compiled
    module), run here instead: the reader's imports and exports are wasmtime's, name for name."""
    import wasmtime

    data = wat.wasm(source)
    facts = inspect_module("modules/m.wasm", data)
    module = wasmtime.Module(inspector.engine(), data)
    assert sorted((i.module, i.name, _kind(i.type)) for i in module.imports) == sorted(
        (i.module, i.name, i.kind) for i in facts.imports)
    assert [(e.name, _kind(e.type)) for e in module.exports] == [(e.name, e.kind) for e in facts.exports]


def _kind(t: object) -> str:
    import wasmtime

    kinds = {wasmtime.FuncType: "func", wasmtime.MemoryType: "memory", wasmtime.TableType: "table",
             wasmtime.GlobalType: "global", wasmtime.TagType: "tag"}
    return next(name for cls, name in kinds.items() if isinstance(t, cls))


# --- what compiling would cost: functions, bodies, code size ---------------------------------


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _section(section_id: int, body: bytes) -> bytes:
    return bytes([section_id]) + _leb(len(body)) + body


def _module_with_bodies(body_sizes: list[int], imported_functions: int = 0) -> bytes:
    """A module of () -> () functions whose bodies are exactly ``body_sizes`` bytes
    (no locals, ``nop``s, ``end``), with ``imported_functions`` imports of the same type."""
    types = _section(1, b"\x01\x60\x00\x00")
    imports = b"".join(b"\x03env" + bytes([1 + len(str(i))]) + b"f" + str(i).encode() + b"\x00\x00"
                       for i in range(imported_functions))
    import_section = _section(2, _leb(imported_functions) + imports) if imported_functions else b""
    functions = _section(3, _leb(len(body_sizes)) + b"\x00" * len(body_sizes))
    bodies = b"".join(_leb(n) + b"\x00" + b"\x01" * (n - 2) + b"\x0b" for n in body_sizes)
    code = _section(10, _leb(len(body_sizes)) + bodies)
    return wat.EMPTY + types + import_section + functions + code


def test_the_reader_counts_defined_functions_and_measures_bodies_and_code() -> None:
    sizes = [2, 300, 70_000, 5]
    data = _module_with_bodies(sizes, imported_functions=3)
    facts = inspect_module("modules/m.wasm", data)
    assert facts.valid, facts.error
    # the code section's contents: the count, then each body's size and the body
    code_contents = _leb(4) + b"".join(_leb(n) + b"\x00" + b"\x01" * (n - 2) + b"\x0b" for n in sizes)
    assert data.endswith(_section(10, code_contents))
    assert (facts.function_count, facts.largest_function_bytes) == (4, 70_000)  # imports are not compiled
    assert facts.code_bytes == len(code_contents) == 1 + sum(len(_leb(n)) + n for n in sizes)


def test_a_module_without_code_has_no_code_facts() -> None:
    facts = inspect_module("modules/m.wasm", wat.wasm('(module (memory (export "memory") 1))'))
    assert (facts.valid, facts.function_count, facts.largest_function_bytes, facts.code_bytes) == (True, 0, 0, 0)


def test_the_reader_refuses_a_section_it_did_not_read_to_its_end() -> None:
    # the function section declares 1 function but holds 2 bytes more than that: the engine
    # would refuse it too; the reader must never take such a reading as the module's structure
    data = wat.EMPTY + _section(1, b"\x01\x60\x00\x00") + _section(3, b"\x01\x00\x00\x00") + \
        _section(10, b"\x01\x02\x00\x0b")
    with pytest.raises(inspector._Malformed, match="section 3 was not read to its end"):
        inspector._Reader(data).module()
    assert not inspect_module("modules/m.wasm", data).valid


def test_the_reader_refuses_a_code_section_that_does_not_match_the_functions() -> None:
    data = wat.EMPTY + _section(1, b"\x01\x60\x00\x00") + _section(3, b"\x02\x00\x00") + \
        _section(10, b"\x01\x02\x00\x0b")
    with pytest.raises(inspector._Malformed, match="does not match the function section"):
        inspector._Reader(data).module()


def test_engine_errors_become_one_bounded_line() -> None:
    assert inspector._reason("failed to parse\n\nCaused by:\n    0: outer\n    1: inner reason\n") == "inner reason"
    assert inspector._reason("first line\n  second line") == "first line second line"
    assert inspector._reason("") == "the engine rejected the module"
    long = inspector._reason("x" * 1000)
    assert len(long) == inspector.MAX_ERROR_CHARS and long.endswith("...")
