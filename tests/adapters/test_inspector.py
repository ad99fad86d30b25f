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
            "Invalid input WebAssembly code at offset 34: type mismatch: expected i32 but nothing on stack",
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
    assert cache_info()["compiles"] == 0


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


def test_cache_skips_recompiling_unchanged_modules() -> None:
    clear_cache()
    data = wat.wasm(wat.json_tool("cached_tool"))
    first = inspect_module("modules/a.wasm", data)
    assert cache_info()["compiles"] == 1
    second = inspect_module("modules/b.wasm", data)  # same bytes at another path
    info = cache_info()
    assert (info["compiles"], info["hits"], info["misses"], info["size"]) == (1, 1, 1, 1)
    assert second.path == "modules/b.wasm"
    assert second == msgspec.structs.replace(first, path="modules/b.wasm")
    # invalid modules are cached too
    inspect_module("modules/x.wasm", wat.wasm(wat.TYPE_INVALID))
    inspect_module("modules/x.wasm", wat.wasm(wat.TYPE_INVALID))
    assert cache_info()["compiles"] == 2


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cache()
    monkeypatch.setattr(inspector, "CACHE_SIZE", 2)
    modules = [wat.wasm(wat.json_tool(f"t{i}")) for i in range(3)]
    for m in modules:
        inspect_module("modules/m.wasm", m)
    assert cache_info()["size"] == 2
    inspect_module("modules/m.wasm", modules[0])  # evicted (least recently used): compiled again
    assert cache_info()["compiles"] == 4
    inspect_module("modules/m.wasm", modules[2])
    assert cache_info()["compiles"] == 4


def test_max_bytes_skips_compiling_oversized_modules() -> None:
    clear_cache()
    data = wat.wasm(wat.many_exports(10))
    f = inspect_module("modules/big.wasm", data, max_bytes=len(data) - 1)
    assert not f.valid
    assert f.error == f"not inspected: {len(data)} bytes exceeds the inspection limit of {len(data) - 1}"
    assert cache_info()["compiles"] == 0 and cache_info()["size"] == 0
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
