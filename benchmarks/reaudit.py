"""Benchmark: re-audit of N installed versions, and the audit of the 1.3 MB SQLite module, against
floors measured in the same run.

The audit does not compile (issue 17): a module's validity comes from ``wasmtime.Module.validate``
and its facts from the inspector's own reader, so the floor is ``validate`` plus that reading,
not a compilation. The compile floor of the earlier benchmark is still measured, for comparison.

Setup (not timed against the targets, but reported): N distinct json-v1-like modules of a few
KB each (WAT compiled with ``wasmtime.wat2wasm``; 1 to 12 exported tools, internal helpers, a
loop per tool, a data segment; every module's bytes distinct, so no cache by digest applies on
the first pass), each packaged like ``skills package build`` does (generated CycloneDX SBOM and
provenance, Ed25519 signature) and installed through ``Ledger.install`` into a fresh home with a
real SQLite journal.

Measured in one run:

* floor: ``Module.validate(engine, bytes)`` plus ``inspector._Reader(bytes).module()`` for every
  module, with an engine configured like ``adapters/audit/inspector.py`` (consume_fuel,
  epoch_interruption); measured three times (before the first pass, between the passes, at the
  end) and the median is used; the compile floor (``wasmtime.Module(engine, bytes)``) likewise;
* first pass: a new ``Reauditor`` over a new ``Ledger`` with the inspector's and the schema
  compiler's in-process caches cleared (as a fresh ``skills reaudit`` process sees it);
* second pass: the same ``Reauditor`` again over the unchanged fleet (caches warm);
* extra: a fresh ``Reauditor`` with the facts caches still warm;
* SQLite (``--sqlite``, built by ``scripts/build-sqlite-wasm``, skipped with ``--no-sqlite``):
  the audit of one artifact holding the 1.16 MB SQLite demo module
  (``adapters.usecases.verification.audit``: the module's facts, the schemas, every check), its
  caches cleared before each run, against the floor of ``Module.validate`` plus the reader on that
  module (medians of ``--repeat`` runs); and ``audit_installed`` (verify the stored artifact, audit,
  record) for the whole command's cost without the process start.

Targets: SQLite audit / floor <= 2 (issue 17), first pass / compile floor <= 0.5 (the re-audit
costs less than compiling the fleet alone would), first / second >= 10.

    .venv/bin/python benchmarks/reaudit.py [--count N] [--json] [--profile] [--keep DIR]
                                           [--sqlite PATH | --no-sqlite] [--repeat N]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import wasmtime  # noqa: E402

from skill_ledger.adapters.audit import inspector  # noqa: E402
from skill_ledger.adapters.audit.reaudit import Reauditor  # noqa: E402
from skill_ledger.adapters.packaging.sidecars import generate_provenance, generate_sbom  # noqa: E402
from skill_ledger.adapters.settings import resolve  # noqa: E402
from skill_ledger.adapters.usecases.install import install  # noqa: E402
from skill_ledger.adapters.usecases.unit_of_work import Ledger  # noqa: E402
from skill_ledger.domain.artifact import build_artifact  # noqa: E402

TARGET_SQLITE_RATIO = 2.0
TARGET_COMPILE_FLOOR_RATIO = 0.5
TARGET_SECOND_SPEEDUP = 10.0
SEED = bytes(range(32))


# --- the fleet --------------------------------------------------------------------------


def module_wat(i: int, rng: random.Random) -> tuple[str, list[str]]:
    """A json-v1-like module: host log import, memory, bump allocator, ``tools`` exported tool
    functions (each loops over its input and calls helpers), internal helpers, a data segment."""
    tools = [f"tool{t}" for t in range(rng.randint(1, 12))]
    helpers = rng.randint(10, 48)
    parts = [
        "(module",
        '  (import "skills:host/v1" "log" (func $log (param i32 i32 i32)))',
        '  (memory (export "memory") 1 16)',
        "  (global $heap (mut i32) (i32.const 4096))",
        f'  (data (i32.const 64) "skill-{i:05d}-{rng.getrandbits(64):016x}")',
        '  (func $alloc (export "alloc") (param $n i32) (result i32) (local $p i32)',
        "    (local.set $p (global.get $heap))",
        "    (global.set $heap (i32.add (global.get $heap) (i32.and (i32.add (local.get $n) (i32.const 7))"
        " (i32.const -8))))",
        "    (local.get $p))",
    ]
    for k in range(helpers):
        a, b, c = rng.getrandbits(31), rng.getrandbits(31), rng.randint(1, 31)
        d = rng.getrandbits(31)
        parts.append(
            f"  (func $h{k} (param $x i32) (result i32) (local $y i32)\n"
            f"    (local.set $y (i32.xor (i32.rotl (i32.mul (local.get $x) (i32.const {a})) (i32.const {c}))"
            f" (i32.add (local.get $x) (i32.const {b}))))\n"
            f"    (if (result i32) (i32.gt_u (local.get $y) (i32.const {d}))\n"
            f"      (then (i32.sub (local.get $y) (i32.shr_u (local.get $x) (i32.const {c % 7 + 1}))))\n"
            f"      (else (i32.add (i32.load (i32.and (local.get $y) (i32.const 65532))) (i32.const {d >> 3})))))"
        )
    for t, name in enumerate(tools):
        h1, h2 = rng.randrange(helpers), rng.randrange(helpers)
        salt = rng.getrandbits(31)
        parts.append(
            f'  (func (export "{name}") (param $p i32) (param $n i32) (result i64)\n'
            "    (local $i i32) (local $acc i32) (local $out i32)\n"
            f"    (local.set $acc (i32.const {salt}))\n"
            "    (local.set $out (call $alloc (local.get $n)))\n"
            "    (block $done (loop $next\n"
            "      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))\n"
            f"      (local.set $acc (call $h{h1} (i32.add (local.get $acc)"
            " (i32.load8_u (i32.add (local.get $p) (local.get $i))))))\n"
            "      (i32.store8 (i32.add (local.get $out) (local.get $i))"
            " (i32.load8_u (i32.add (local.get $p) (local.get $i))))\n"
            "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
            "      (br $next)))\n"
            f"    (if (i32.eqz (call $h{h2} (local.get $acc)))\n"
            f"      (then (call $log (i32.const {t}) (i32.const 64) (i32.const 28))))\n"
            "    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))"
            " (i64.extend_i32_u (local.get $n))))"
        )
    parts.append(")")
    return "\n".join(parts), tools


def manifest(skill_id: str, tools: list[str]) -> str:
    tool_text = "".join(
        f'[[entrypoints.tools]]\nid = "bench.{t}"\nname = "{t}"\ndescription = "Benchmark tool {t}"\n'
        'input_schema = { type = "object", properties = { text = { type = "string" } } }\n'
        'output_schema = { type = "object" }\n'
        for t in tools
    )
    return (
        f'manifest_version = 2\nskill_id = "{skill_id}"\nname = "Bench {skill_id}"\nversion = "1.0.0"\n'
        f'publisher = "bench"\n\n[entrypoints]\n{tool_text}\n'
        '[capabilities.quotas]\nwall_clock_timeout_ms = 2000\nfuel_budget = 5000000\nmax_memory_bytes = 1048576\n\n'
        '[compat]\nrequired_protocol_major = 1\nmin_palyra_version = "0.1.0"\n\n'
        '[operator]\ndisplay_name = "Benchmark skill"\ncategories = ["bench"]\n'
    )


def build_fleet(count: int, seed: int) -> list[tuple[str, bytes, bytes]]:
    """``(skill_id, module bytes, artifact bytes)`` for ``count`` skills."""
    rng = random.Random(seed)
    fleet = []
    signed_at = 1_760_000_000_000
    for i in range(count):
        skill_id = f"bench.s{i:05d}"
        wat, tools = module_wat(i, rng)
        module = bytes(wasmtime.wat2wasm(wat))
        files = [("modules/skill.wasm", module), ("assets/README.txt", f"skill {i}\n".encode())]
        sbom = generate_sbom(skill_id, "1.0.0", "bench", files, signed_at)
        provenance = generate_provenance(skill_id, "1.0.0", files, signed_at)
        art = build_artifact(manifest(skill_id, tools), [("skill.wasm", module)],
                             [("README.txt", f"skill {i}\n".encode())], sbom, provenance, SEED, signed_at)
        fleet.append((skill_id, module, art.artifact))
    return fleet


# --- measurements -----------------------------------------------------------------------


def _engine() -> wasmtime.Engine:
    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    cfg.epoch_interruption = True
    return wasmtime.Engine(cfg)


def floor_seconds(modules: list[bytes]) -> float:
    """What the audit must do per module: validate it and read its structure."""
    engine = _engine()
    started = time.perf_counter()
    for m in modules:
        wasmtime.Module.validate(engine, m)
        inspector._Reader(m).module()
    return time.perf_counter() - started


def compile_floor_seconds(modules: list[bytes]) -> float:
    """Compiling every module (what the audit did before issue 17)."""
    engine = _engine()
    started = time.perf_counter()
    for m in modules:
        wasmtime.Module(engine, m)
    return time.perf_counter() - started


def clear_caches() -> None:
    inspector.clear_cache()
    try:
        from skill_ledger.adapters.audit import schema_facts
    except ImportError:  # an engine from before the schema checks (benchmarking an older checkout)
        return
    schema_facts.clear_cache()


def _inspections() -> int:
    info = inspector.cache_info()
    return info.get("validations", info.get("compiles", 0))


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def settings(home: Path):
    return resolve(home=str(home), journal=None, actor="user:bench", command="bench")


def run(count: int, seed: int, keep: str | None, profile: bool) -> dict:
    home_root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench-reaudit-"))
    home = home_root / "home"
    try:
        t = time.perf_counter()
        fleet = build_fleet(count, seed)
        build_s = time.perf_counter() - t
        modules = [m for _, m, _ in fleet]
        sizes = sorted(len(m) for m in modules)
        assert len(set(modules)) == count, "module bytes must be distinct"

        t = time.perf_counter()
        ledger = Ledger(settings(home))
        try:
            for skill_id, _, data in fleet:
                r = install(ledger, f"{skill_id}.palyra-skill", data=data, allow_tofu=True, source="bench")
                assert r.status == "active", r
        finally:
            ledger.close()
        install_s = time.perf_counter() - t

        # floors and first pass, all cold (the facts caches are emptied)
        floors, compile_floors = [floor_seconds(modules)], [compile_floor_seconds(modules)]
        clear_caches()
        ledger = Ledger(settings(home))
        try:
            head_before = ledger.head()
            reauditor = Reauditor(ledger)
            profiler = cProfile.Profile() if profile else None
            t = time.perf_counter()
            if profiler:
                profiler.enable()
            first = reauditor.run_pass()
            if profiler:
                profiler.disable()
            first_s = time.perf_counter() - t
            inspections = _inspections()
            floors.append(floor_seconds(modules))
            compile_floors.append(compile_floor_seconds(modules))

            t = time.perf_counter()
            second = reauditor.run_pass()
            second_s = time.perf_counter() - t

            t = time.perf_counter()
            fresh = Reauditor(ledger).run_pass()
            fresh_warm_s = time.perf_counter() - t
            head_after = ledger.head()
        finally:
            ledger.close()
        floors.append(floor_seconds(modules))
        compile_floors.append(compile_floor_seconds(modules))
        floor_s = sorted(floors)[1]  # the median of three: before, between and after the passes
        compile_floor_s = sorted(compile_floors)[1]

        assert first.checked == second.checked == fresh.checked == count
        assert first.passed == count and not first.quarantined

        result = {
            "benchmark": "reaudit",
            "count": count,
            "figures": {
                "first_pass_s": round(first_s, 4),
                "second_pass_s": round(second_s, 5),
                "fresh_reauditor_warm_cache_s": round(fresh_warm_s, 4),
                "first_pass_module_inspections": inspections,
                "second_pass_skipped": second.skipped_unchanged,
                "events_appended": head_after - head_before,
                "module_bytes": {"min": sizes[0], "median": sizes[len(sizes) // 2], "max": sizes[-1],
                                 "total": sum(sizes)},
                "setup": {"build_s": round(build_s, 3), "install_s": round(install_s, 3),
                          "install_per_version_ms": round(install_s / count * 1000, 2)},
            },
            "floor": {"validate_and_read_s": round(floor_s, 4), "runs_s": [round(f, 4) for f in floors],
                      "compile_s": round(compile_floor_s, 4), "compile_runs_s": [round(f, 4) for f in compile_floors],
                      "what": "Module.validate + the inspector's reader for every module (the audit's floor); "
                              "wasmtime.Module(engine, bytes) for every module (compile), same engine config"},
            "ratios": {"first_over_floor": round(first_s / floor_s, 2),
                       "first_over_compile_floor": round(first_s / compile_floor_s, 3),
                       "first_over_second": round(first_s / second_s, 1) if second_s else None},
            "targets": {"first_over_compile_floor_max": TARGET_COMPILE_FLOOR_RATIO,
                        "first_over_second_min": TARGET_SECOND_SPEEDUP},
            "met": {"first_over_compile_floor": first_s / compile_floor_s <= TARGET_COMPILE_FLOOR_RATIO,
                    "first_over_second": second_s == 0 or first_s / second_s >= TARGET_SECOND_SPEEDUP},
            "environment": {"python": platform.python_version(), "wasmtime": _version("wasmtime"), "cpus": os.cpu_count(),
                            "machine": platform.machine()},
        }
        if profiler:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(40)
            result["profile"] = out.getvalue()
        return result
    finally:
        if not keep:
            shutil.rmtree(home_root, ignore_errors=True)


# --- the audit of one large real module (SQLite) -------------------------------------------


def sqlite_module(path: str | None) -> Path:
    """The SQLite demo module: ``path``, else the corpus cache's build (built when missing)."""
    if path:
        return Path(path)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import corpus_sqlite

    return corpus_sqlite.build_sqlite()


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def sqlite_audit(path: Path, repeat: int) -> dict:
    from skill_ledger.adapters.usecases.verification import audit, audit_installed
    from skill_ledger.domain.artifact import inspect_artifact

    module = path.read_bytes()
    tool = ("sqlite_demo", '{ type = "object" }', '{ type = "object", properties = { count = { type = "integer" }, '
            'sum = { type = "integer" } } }')
    text = manifest("bench.sqlite", [tool[0]]).replace(
        'input_schema = { type = "object", properties = { text = { type = "string" } } }\n'
        'output_schema = { type = "object" }', f"input_schema = {tool[1]}\noutput_schema = {tool[2]}")
    files = [("modules/sqlite_demo.wasm", module)]
    art = build_artifact(text, [("sqlite_demo.wasm", module)], [], generate_sbom("bench.sqlite", "1.0.0", "bench",
                         files, 1), generate_provenance("bench.sqlite", "1.0.0", files, 1), SEED, 1).artifact
    inspected = inspect_artifact(art)
    engine = inspector.engine()
    home_root = Path(tempfile.mkdtemp(prefix="bench-sqlite-"))
    try:
        ledger = Ledger(settings(home_root / "home"))
        try:
            clear_caches()
            r = install(ledger, "sqlite.palyra-skill", data=art, allow_tofu=True, source="bench")
            assert r.status == "active", r

            def audit_once() -> None:
                clear_caches()
                report = audit(ledger, inspected, "allowlisted").report
                assert report.passed, report.failed_checks()

            def audit_installed_once() -> None:
                clear_caches()
                assert audit_installed(ledger, "bench.sqlite", None).report.passed

            def floor_once() -> None:
                wasmtime.Module.validate(engine, module)
                inspector._Reader(module).module()

            # interleaved, so that a change in the machine's load affects the floor and the audit alike
            runs: dict[str, list[float]] = {"floor": [], "audit": [], "audit_installed": []}
            for _ in range(repeat):
                for name, fn in (("floor", floor_once), ("audit", audit_once),
                                 ("audit_installed", audit_installed_once)):
                    started = time.perf_counter()
                    fn()
                    runs[name].append(time.perf_counter() - started)
            floor, audit_s, audit_installed_s = (sorted(v)[len(v) // 2] for v in runs.values())
            compile_s = _median(lambda: wasmtime.Module(engine, module), min(repeat, 3))
        finally:
            ledger.close()
    finally:
        shutil.rmtree(home_root, ignore_errors=True)
    return {
        "module_bytes": len(module),
        "audit_s": round(audit_s, 4),
        "audit_installed_s": round(audit_installed_s, 4),
        "floor_s": round(floor, 4),
        "compile_s": round(compile_s, 3),
        "audit_over_floor": round(audit_s / floor, 2),
        "target_audit_over_floor_max": TARGET_SQLITE_RATIO,
        "met": audit_s / floor <= TARGET_SQLITE_RATIO,
        "what": "verification.audit of the artifact (facts, schemas, checks; caches cleared) against "
                "Module.validate + the inspector's reader; audit_installed adds verifying the stored artifact "
                "and recording the result",
    }


def table(r: dict) -> str:
    f, fl, ra = r["figures"], r["floor"], r["ratios"]
    rows = [
        ("versions", f"{r['count']}"),
        ("module size min/median/max", "{min}/{median}/{max} B".format(**f["module_bytes"])),
        ("setup: build artifacts", f"{f['setup']['build_s']:.2f} s"),
        ("setup: Ledger.install", f"{f['setup']['install_s']:.2f} s ({f['setup']['install_per_version_ms']} ms each)"),
        ("floor (validate + read)", f"{fl['validate_and_read_s']:.3f} s (median of "
                                    f"{', '.join(f'{x:.3f}' for x in fl['runs_s'])})"),
        ("compile floor (wasmtime.Module)", f"{fl['compile_s']:.3f} s (median of "
                                            f"{', '.join(f'{x:.3f}' for x in fl['compile_runs_s'])})"),
        ("first pass (cold caches)", f"{f['first_pass_s']:.3f} s, {f['first_pass_module_inspections']} inspections"),
        ("second pass (unchanged, warm)", f"{f['second_pass_s'] * 1000:.2f} ms, {f['second_pass_skipped']} skipped"),
        ("fresh Reauditor, warm caches", f"{f['fresh_reauditor_warm_cache_s']:.3f} s"),
        ("events appended by the passes", f"{f['events_appended']}"),
        ("first / floor", f"{ra['first_over_floor']:.2f}x"),
        ("first / compile floor", f"{ra['first_over_compile_floor']:.3f}x (target <= {TARGET_COMPILE_FLOOR_RATIO}) "
                                  f"{'OK' if r['met']['first_over_compile_floor'] else 'MISSED'}"),
        ("first / second", f"{ra['first_over_second']}x (target >= {TARGET_SECOND_SPEEDUP:g}) "
                           f"{'OK' if r['met']['first_over_second'] else 'MISSED'}"),
    ]
    sq = r.get("sqlite")
    if sq:
        rows += [
            ("sqlite module", f"{sq['module_bytes']} B, compile {sq['compile_s']:.2f} s"),
            ("sqlite floor (validate + read)", f"{sq['floor_s'] * 1000:.2f} ms"),
            ("sqlite audit", f"{sq['audit_s'] * 1000:.2f} ms = {sq['audit_over_floor']}x floor (target <= "
                             f"{TARGET_SQLITE_RATIO:g}) {'OK' if sq['met'] else 'MISSED'}"),
            ("sqlite audit_installed", f"{sq['audit_installed_s'] * 1000:.2f} ms (verify + audit + record)"),
        ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000, help="installed versions (default 1000)")
    ap.add_argument("--seed", type=int, default=4, help="fleet generator seed")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--profile", action="store_true", help="cProfile the first pass and print the top functions")
    ap.add_argument("--keep", metavar="DIR", help="build the home under DIR and keep it")
    ap.add_argument("--sqlite", metavar="PATH", help="the SQLite demo module (default: scripts/build-sqlite-wasm's)")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite audit")
    ap.add_argument("--repeat", type=int, default=5, help="runs per SQLite figure (default 5; medians)")
    args = ap.parse_args(argv)
    if args.count < 1:
        ap.error("--count must be at least 1")
    r = run(args.count, args.seed, args.keep, args.profile)
    if not args.no_sqlite:
        r["sqlite"] = sqlite_audit(sqlite_module(args.sqlite), max(args.repeat, 1))
    profile = r.pop("profile", None)
    if args.json:
        if profile:
            r["profile"] = profile
        print(json.dumps(r, indent=None, sort_keys=False))
    else:
        print(table(r))
        if profile:
            print(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
