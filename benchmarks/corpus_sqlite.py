"""The SQLite amalgamation as a wasm32-wasi module, and what it costs to validate, compile and
inspect it and the corpus modules (issue 17, "Cost").

Source: ``deps/sqlite3/sqlite3.c`` of npm's ``better-sqlite3`` package (SQLite 3.54.1; Debian
ships no amalgamation: ``libsqlite3-dev`` has only the library, and the bundled copy in
``librust-libsqlite3-sys-dev`` is removed). ``npm pack`` fetches the pinned tarball (npm checks
its registry integrity hash), and the two files are checked against the SHA-256s below.
The module (``tests/corpus/sqlite/sqlite_demo.c`` linked with the amalgamation, about 25 s of
clang) is cached with the corpus (``tests/corpus/build.py``), so it is built once.

Measured in this process, each a median of repeated runs, per module:

* ``validate``: ``wasmtime.Module.validate(engine, bytes)``, the validity verdict alone;
* ``compile``: ``wasmtime.Module(engine, bytes)`` (what the inspector does to decide validity,
  and what the runner's module cache does again on a first run);
* ``inspect``: ``inspector.inspect_module`` with its in-process cache cleared (today's audit
  of one module: the compile plus the binary reader);
* ``reader``: the inspector's binary reader alone (imports, exports, memories): with
  ``validate``, the floor issue 17 sets for the audit (target: audit <= 2x that floor).

The engine is the inspector's (fuel and epoch interruption on), like the runner's.

    scripts/build-sqlite-wasm                       # fetch the source and build the module only
    .venv/bin/python benchmarks/corpus_sqlite.py [--json] [--repeat N] [--build-only]

Not run by the test suite (the build needs the npm registry once, and 25 s).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import wasmtime  # noqa: E402

from corpus import build  # noqa: E402
from skill_ledger.adapters.audit import inspector  # noqa: E402

PACKAGE = "better-sqlite3@13.2.0"
SOURCES = {  # file inside the package: its SHA-256 (SQLite 3.54.1)
    "package/deps/sqlite3/sqlite3.c": "75a4760a7b9727a4c4c877aec92eacf39e52a8f2921ce00bd33be6d3a8e8e254",
    "package/deps/sqlite3/sqlite3.h": "d6c84557261893439b341d2e6c35187ae3ea24fbfd843ad94616f72d89242b8c",
}
DRIVER = ROOT / "tests" / "corpus" / "sqlite" / "sqlite_demo.c"
# What wasi-libc lacks for SQLite's unix VFS: no threads, no dlopen, no WAL (shared memory),
# and the emulations wasi-libc ships for mmap, getpid and process clocks.
SQLITE_FLAGS = (
    "-DSQLITE_THREADSAFE=0", "-DSQLITE_OMIT_LOAD_EXTENSION", "-DSQLITE_OMIT_WAL",
    "-D_WASI_EMULATED_MMAN", "-D_WASI_EMULATED_GETPID", "-D_WASI_EMULATED_PROCESS_CLOCKS",
    "-lwasi-emulated-mman", "-lwasi-emulated-getpid", "-lwasi-emulated-process-clocks",
)  # fmt: skip


def sqlite_source(cache: Path) -> Path:
    """The directory holding the checked ``sqlite3.c`` and ``sqlite3.h``, fetched once."""
    target = cache / "sqlite-3.54.1"
    if all(_sha256(target / Path(name).name) == digest for name, digest in SOURCES.items()):
        return target
    if shutil.which("npm") is None:
        raise SystemExit(f"npm is needed once to fetch {PACKAGE} (the SQLite amalgamation): apt-get install npm")
    with tempfile.TemporaryDirectory() as work:
        done = subprocess.run(["npm", "pack", "--silent", PACKAGE], cwd=work, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"npm pack {PACKAGE} failed: {done.stderr.strip()}")
        tarball = Path(work) / done.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as tar:
            for name in SOURCES:
                tar.extract(name, work, filter="data")
        staging = Path(tempfile.mkdtemp(dir=cache, prefix=".sqlite-"))
        for name, digest in SOURCES.items():
            got = _sha256(Path(work) / name)
            if got != digest:
                shutil.rmtree(staging)
                raise SystemExit(f"{name} of {PACKAGE} has SHA-256 {got}, expected {digest}")
            shutil.copyfile(Path(work) / name, staging / Path(name).name)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def build_sqlite(cache: Path | None = None) -> Path:
    """The SQLite demo command as a wasm32-wasi module (built once, then from the cache)."""
    cache = cache or build.cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    source = sqlite_source(cache)
    return build.cached_build("sqlite_demo", [DRIVER, source / "sqlite3.c"], "command",
                              extra=(f"-I{source}", *SQLITE_FLAGS), cache=cache)


# --- measurements ---------------------------------------------------------------------------


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(name: str, data: bytes, repeat: int) -> dict[str, float | int | str]:
    engine = inspector.engine()

    def inspect() -> None:
        inspector.clear_cache()
        facts = inspector.inspect_module(name, data)
        assert facts.valid, facts.error

    figures = {
        "validate_s": median_seconds(lambda: wasmtime.Module.validate(engine, data), max(repeat, 5)),
        "reader_s": median_seconds(lambda: inspector._Reader(data).module(), max(repeat, 5)),
        "compile_s": median_seconds(lambda: wasmtime.Module(engine, data), repeat),
        "inspect_s": median_seconds(inspect, repeat),
    }
    floor = figures["validate_s"] + figures["reader_s"]
    return {"module": name, "bytes": len(data), **{k: round(v, 6) for k, v in figures.items()},
            "compile_over_validate": round(figures["compile_s"] / figures["validate_s"], 1),
            "inspect_over_floor": round(figures["inspect_s"] / floor, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--repeat", type=int, default=3, help="runs per compile/inspect figure (default 3)")
    parser.add_argument("--build-only", action="store_true", help="fetch and build the module, print its path")
    args = parser.parse_args()
    sqlite = build_sqlite()
    if args.build_only:
        print(sqlite)
        return
    modules = {"sqlite_demo": sqlite, **build.build_corpus()}
    rows = [measure(name, path.read_bytes(), args.repeat) for name, path in modules.items()]
    if args.json:
        big = rows[0]
        print(json.dumps({
            "benchmark": "corpus_sqlite", "machine": platform.machine(), "wasmtime": _wasmtime_version(),
            "figures": rows, "floor": {"sqlite_validate_plus_reader_s": big["validate_s"] + big["reader_s"]},
            "ratios": {"sqlite_inspect_over_floor": big["inspect_over_floor"],
                       "sqlite_compile_over_validate": big["compile_over_validate"]},
        }))
        return
    print(f"{'module':24} {'bytes':>9} {'validate':>10} {'reader':>10} {'compile':>10} {'inspect':>10} "
          f"{'compile/validate':>17} {'inspect/floor':>14}")
    for r in rows:
        print(f"{r['module']:24} {r['bytes']:>9} {r['validate_s']:>10.4f} {r['reader_s']:>10.4f} "
              f"{r['compile_s']:>10.4f} {r['inspect_s']:>10.4f} {r['compile_over_validate']:>16}x "
              f"{r['inspect_over_floor']:>13}x")
    print("seconds, medians; floor = validate + reader (issue 17's target: audit <= 2x floor)")


def _wasmtime_version() -> str:
    from importlib.metadata import version

    return version("wasmtime")


if __name__ == "__main__":
    main()
