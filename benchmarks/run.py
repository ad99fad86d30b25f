"""Benchmark: running a tool through the runner against bare wasmtime-py (issue 5).

Setup (reported, not timed against a target): the bundled example skill (``examples/hello``)
is signed and installed through ``Ledger.install`` into a fresh home with a real SQLite
journal; one warm call through the runner fills the caches (views, verified-artifact record,
compiled module).

Measured in one run, interleaved, medians:

* warm call, figure: ``Runner.run("examples.echo", <1 KiB JSON>)`` on a long-lived ``Runner``:
  the gate (journal head and views position, tool row, status and eligibility), the stored
  artifact's digest check from the stat cache, input and output JSON Schema validation,
  a fresh ``Store`` with fuel, limits and the epoch deadline, instantiate, ``alloc``, the call,
  reading and decoding the output, the result;
* warm call, floor: the bare wasmtime-py work on the same module and engine: ``Store`` (fuel
  and epoch deadline, which that engine requires), instantiate, ``alloc``, write the input,
  call, read the output bytes;
* cold start, figure: a module loaded from the compiled-module cache in ``<home>/cache/modules``
  as a new process finds it (read, digest check, deserialize) for the echo module and a
  larger generated module; floor: ``wasmtime.Module(engine, bytes)``, i.e. compiling it;
* processes: ``skills run examples.echo --input <1 KiB> --json`` end to end against
  ``skills --version`` (Python start-up and the CLI's imports); ``benchmarks/startup.py``
  measures start-up on its own, against bare Python and the libraries' import floor;
* compilations (issues 10, 17): install -> first run -> second run of the example in one
  process, counting compilations in the audit's inspector, in this process
  (``wasmtime.Module(...)``) and in the bounded compile worker; target: the runs compile the
  module exactly once together (the install's audit compile is reported: removing it is
  the audit's change);
* cold run: ``skills run`` in a new process right after install (no compiled-module cache,
  no verified-artifact record: verify, read facts, compile in the worker, run) against the
  same command once the cache is warm (reported).

Targets: runner - bare <= 1 ms per call; compile / cache load >= 5x; one compilation per module.

    .venv/bin/python benchmarks/run.py [--json] [--calls N] [--repeat N] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import wasmtime

from skill_ledger.adapters.demo import example_inputs
from skill_ledger.adapters.runner import Runner
from skill_ledger.adapters.runner import engine as runner_engine
from skill_ledger.adapters.settings import resolve
from skill_ledger.adapters.usecases.install import install
from skill_ledger.adapters.usecases.session import ledger_session
from skill_ledger.domain.artifact import build_artifact

TARGET_ADDED_MS = 1.0
TARGET_COLD_SPEEDUP = 5.0
TARGET_RUN_COMPILES = 1
SEED = bytes([5]) * 32
SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
PROVENANCE = b'{"builder":{"id":"bench"},"subject":[{"name":"hello"}]}'
INPUT = json.dumps({"text": "x" * (1024 - len('{"text": ""}'))})
assert len(INPUT) == 1024


def install_example(home: Path):
    manifest, modules, _ = example_inputs()
    data = build_artifact(Path(manifest).read_text(), [(m.name, Path(m.path).read_bytes()) for m in modules], [],
                          SBOM, PROVENANCE, SEED, 1).artifact
    path = home.parent / "hello.palyra-skill"
    path.write_bytes(data)
    settings = resolve(home=str(home), journal=None, actor="user:bench", command="bench")
    with ledger_session(settings) as ledger:
        result = install(ledger, str(path), allow_tofu=True)
    assert result.status == "active", result
    echo = next(Path(m.path).read_bytes() for m in modules if m.name == "echo.wasm")
    return settings, echo, len(data)


def bare_caller(echo: bytes):
    """The floor: what any wasmtime-py embedding must do to call the module once."""
    eng = runner_engine.engine()  # the same engine (fuel + epoch interruption) and ticker
    module = wasmtime.Module(eng, echo)
    linker = wasmtime.Linker(eng)
    i32 = wasmtime.ValType.i32()
    linker.define_func("skills:host/v1", "log", wasmtime.FuncType([i32, i32, i32], []), lambda *a: None)
    payload = INPUT.encode()

    def call() -> bytes:
        store = wasmtime.Store(eng)
        store.set_fuel(5_000_000)
        store.set_epoch_deadline(1000)
        ex = linker.instantiate(store, module).exports(store)
        mem = ex["memory"]
        ptr = ex["alloc"](store, len(payload))
        mem.write(store, payload, ptr)
        r = ex["echo"](store, ptr, len(payload)) & 0xFFFFFFFFFFFFFFFF
        return bytes(mem.read(store, r >> 32, (r >> 32) + (r & 0xFFFFFFFF)))

    return call


def per_call(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def medium_module() -> bytes:
    funcs = "\n".join(
        f"""(func $f{i} (export "f{i}") (param $a i32) (param $b i32) (result i32) (local $i i32) (local $s i32)
              (loop $l (local.set $s (i32.add (local.get $s) (i32.mul (local.get $i) (i32.const {i + 3}))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br_if $l (i32.lt_u (local.get $i) (local.get $a))))
              (i32.xor (local.get $s) (local.get $b)))""" for i in range(100))
    return bytes(wasmtime.wat2wasm(f'(module (memory (export "memory") 1) {funcs})'))


def cold_start(cache_dir: Path, data: bytes, repeat: int) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    cache = runner_engine.ModuleCache(cache_dir)
    runner_engine.clear_memory_cache()
    assert cache.get(digest, "modules/m.wasm", lambda: data).source in ("compiled", "disk")
    loads, compiles = [], []
    eng = runner_engine.engine()
    for _ in range(repeat):
        runner_engine.clear_memory_cache()
        t0 = time.perf_counter()
        loaded = runner_engine.ModuleCache(cache_dir).get(digest, "modules/m.wasm", lambda: data)
        loads.append(time.perf_counter() - t0)
        assert loaded.source == "disk"
        t0 = time.perf_counter()
        wasmtime.Module(eng, data)
        compiles.append(time.perf_counter() - t0)
    load, compile_ = statistics.median(loads), statistics.median(compiles)
    return {"module_bytes": len(data), "cache_load_s": load, "compile_s": compile_, "speedup": compile_ / load}


def processes(home: Path, repeat: int) -> tuple[float, float]:
    skills = Path(sys.executable).parent / "skills"  # the console script of this interpreter's environment
    cmd = [str(skills)] if skills.exists() else [sys.executable, "-m", "skill_ledger"]
    run_cmd = [*cmd, "--home", str(home), "run", "examples.echo", "--input", INPUT, "--json"]
    version_cmd = [*cmd, "--version"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLS_")}
    runs, versions = [], []
    for _ in range(repeat):
        for argv, sink in ((run_cmd, runs), (version_cmd, versions)):
            t0 = time.perf_counter()
            out = subprocess.run(argv, capture_output=True, cwd=home.parent, env=env)
            sink.append(time.perf_counter() - t0)
            if out.returncode != 0:
                raise SystemExit(f"{argv[-3:]} failed: {out.stderr.decode()}")
    return statistics.median(runs), statistics.median(versions)


def compile_counts(tmp: Path) -> dict:
    """Compilations during install, the first run and the second run, in one process."""
    from skill_ledger.adapters.audit import inspector
    from skill_ledger.adapters.runner.gate import forget_verified

    in_process = {"n": 0}
    original = wasmtime.Module.__init__

    def counting(module, *args, **kwargs):
        in_process["n"] += 1
        original(module, *args, **kwargs)

    def total() -> int:
        return in_process["n"] + runner_engine.cache_stats()["compiles"]

    runner_engine.clear_memory_cache()
    inspector.clear_cache()
    wasmtime.Module.__init__ = counting
    try:
        counts = {}
        start = total()
        settings, _, _ = install_example(tmp / "count-home")
        counts["install"] = total() - start
        counts["install_inspector"] = inspector.cache_info()["compiles"]
        # the first run as a new process meets it: nothing compiled, inspected or verified in memory
        runner_engine.clear_memory_cache()
        inspector.clear_cache()
        forget_verified()
        with Runner(settings) as runner:
            for label in ("first_run", "second_run"):
                start = total()
                runner.run("examples.echo", INPUT)
                counts[label] = total() - start
    finally:
        wasmtime.Module.__init__ = original
    counts["runs"] = counts["first_run"] + counts["second_run"]
    return counts


def cold_runs(home: Path, repeat: int) -> dict:
    """``skills run`` in a new process with an empty cache (as after install) and a warm one."""
    skills = Path(sys.executable).parent / "skills"
    cmd = [str(skills)] if skills.exists() else [sys.executable, "-m", "skill_ledger"]
    run_cmd = [*cmd, "--home", str(home), "run", "examples.echo", "--input", INPUT, "--json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLS_")}
    cold, warm = [], []
    for _ in range(repeat):
        shutil.rmtree(home / "cache", ignore_errors=True)
        for sink in (cold, warm):
            t0 = time.perf_counter()
            out = subprocess.run(run_cmd, capture_output=True, cwd=home.parent, env=env)
            sink.append(time.perf_counter() - t0)
            if out.returncode != 0:
                raise SystemExit(f"skills run failed: {out.stderr.decode()}")
    return {"cold_s": statistics.median(cold), "warm_cache_s": statistics.median(warm)}


def measure(calls: int, repeat: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="skills-bench-run-"))
    try:
        home = tmp / "home"
        t0 = time.perf_counter()
        settings, echo, artifact_bytes = install_example(home)
        setup_s = time.perf_counter() - t0
        runner = Runner(settings)
        first = runner.run("examples.echo", INPUT)
        assert first.output == json.loads(INPUT)
        bare = bare_caller(echo)
        assert bare() == INPUT.encode()

        def through_runner() -> None:
            runner.run("examples.echo", INPUT)

        for fn in (through_runner, bare):  # warm-up
            per_call(fn, 200)
        runner_s, bare_s = [], []
        for _ in range(repeat):
            runner_s.append(per_call(through_runner, calls))
            bare_s.append(per_call(bare, calls))
        runner.close()
        warm_runner, warm_bare = statistics.median(runner_s), statistics.median(bare_s)

        cold = {"echo": cold_start(tmp / "cold-cache", echo, max(repeat, 15)),
                "medium": cold_start(tmp / "cold-cache", medium_module(), max(repeat, 15))}
        proc_run, proc_version = processes(home, max(3, repeat))
        compiles = compile_counts(tmp)
        cold_run = cold_runs(home, max(3, repeat))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    added_ms = (warm_runner - warm_bare) * 1000
    figures = {
        "warm_call": {"runner_s": warm_runner, "runs_s": runner_s, "input_bytes": len(INPUT), "calls": calls},
        "cold_start": {k: {"cache_load_s": v["cache_load_s"], "module_bytes": v["module_bytes"]}
                       for k, v in cold.items()},
        "process": {"skills_run_s": proc_run},
        "compilations": compiles,
        "cold_run": {"skills_run_cold_s": cold_run["cold_s"]},
    }
    floor = {
        "warm_call": {"bare_wasmtime_s": warm_bare, "runs_s": bare_s},
        "cold_start": {k: {"compile_s": v["compile_s"]} for k, v in cold.items()},
        "process": {"skills_version_s": proc_version},
        "cold_run": {"skills_run_warm_cache_s": cold_run["warm_cache_s"]},
    }
    ratios = {
        "warm_call": warm_runner / warm_bare,
        "cold_start_speedup": {k: v["speedup"] for k, v in cold.items()},
        "process": proc_run / proc_version,
        "cold_run": cold_run["cold_s"] / cold_run["warm_cache_s"],
    }
    return {
        "figures": figures,
        "floor": floor,
        "ratios": ratios,
        "added_ms_per_call": added_ms,
        "target": {"max_added_ms_per_call": TARGET_ADDED_MS, "min_cold_start_speedup": TARGET_COLD_SPEEDUP,
                   "run_compiles": TARGET_RUN_COMPILES},
        "met": {"warm_call": added_ms <= TARGET_ADDED_MS, "run_compiles": compiles["runs"] == TARGET_RUN_COMPILES,
                **{f"cold_start_{k}": v["speedup"] >= TARGET_COLD_SPEEDUP for k, v in cold.items()}},
        "setup": {"install_s": setup_s, "artifact_bytes": artifact_bytes},
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                        "wasmtime": runner_engine.wasmtime_version()},
    }


def table(r: dict) -> str:
    f, fl, ra, met = r["figures"], r["floor"], r["ratios"], r["met"]
    rows = [("measure", "figure", "floor", "ratio", "target"),
            ("warm echo call, 1 KiB (runner vs bare wasmtime)", f"{f['warm_call']['runner_s'] * 1e6:.0f} us",
             f"{fl['warm_call']['bare_wasmtime_s'] * 1e6:.0f} us", f"{ra['warm_call']:.2f}x",
             f"+{r['added_ms_per_call']:.3f} ms <= {TARGET_ADDED_MS} ms {'OK' if met['warm_call'] else 'MISSED'}")]
    for k, v in f["cold_start"].items():
        rows.append((f"cold start, {k} module ({v['module_bytes']} B): cache load vs compile",
                     f"{v['cache_load_s'] * 1e3:.3f} ms", f"{fl['cold_start'][k]['compile_s'] * 1e3:.3f} ms",
                     f"{ra['cold_start_speedup'][k]:.1f}x faster",
                     f">= {TARGET_COLD_SPEEDUP}x {'OK' if met[f'cold_start_{k}'] else 'MISSED'}"))
    rows.append(("process: skills run vs skills --version", f"{f['process']['skills_run_s'] * 1e3:.0f} ms",
                 f"{fl['process']['skills_version_s'] * 1e3:.0f} ms", f"{ra['process']:.2f}x", "(reported)"))
    rows.append(("process: cold skills run after install vs warm cache",
                 f"{f['cold_run']['skills_run_cold_s'] * 1e3:.0f} ms",
                 f"{fl['cold_run']['skills_run_warm_cache_s'] * 1e3:.0f} ms", f"{ra['cold_run']:.2f}x", "(reported)"))
    c = f["compilations"]
    rows.append(("compilations: install / first run / second run", f"{c['install']} / {c['first_run']} / "
                 f"{c['second_run']}", "", "", f"runs = {TARGET_RUN_COMPILES} "
                 f"{'OK' if met['run_compiles'] else 'MISSED'}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object {figures, floor, ratios, ...}")
    ap.add_argument("--calls", type=int, default=500, help="calls per warm measurement (default 500)")
    ap.add_argument("--repeat", type=int, default=7, help="interleaved measurements per side (default 7)")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args(argv)
    if args.calls < 1 or args.repeat < 1:
        ap.error("--calls and --repeat must be positive")
    r = measure(args.calls, args.repeat)
    print(json.dumps(r) if args.json else table(r))
    return 1 if args.check and not all(r["met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
