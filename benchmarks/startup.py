"""Benchmark: what an agent pays on every call, as processes (issue 9).

Setup (not timed): ``skills demo`` prepares a fresh home (the example skill built, installed,
run, quarantined and re-enabled, so its ``examples.echo`` tool is active), then one
``skills run`` fills the caches a warm call finds (views at the journal's head, the
verified-artifact record, the compiled module).

Measured in one run, interleaved (one round runs each command once, in turn), medians:

* ``python -c pass`` with the same interpreter: bare Python start-up (the floor of ``--version``);
* ``skills --version``: Python start-up, the CLI's imports and the version lookup;
* ``skills run examples.echo --input <1 KiB> --json`` in the prepared home: the warm path of
  a real run (read model check, gate, cached module, the sandboxed call), against ``--version``.

Targets: ``skills --version`` <= 2x ``python -c pass``; ``skills run`` <= 2x ``skills --version``.

Also measured in the same rounds, and reported (no target), the part no code of ours can remove:
the same interpreter importing only the libraries each command cannot do without, so that
``figure - library floor`` is what the project itself costs:

* ``python -c "import click"``: the floor of any ``skills`` command;
* ``python -c "import click, msgspec, sqlite3, wasmtime, jsonschema_rs"``: the floor of ``skills run``
  (the CLI, the JSON codec, the views, the sandbox, the input and output schema checks).

The processes run in the benchmark's own environment, ``PYTHON*`` variables included: with
``PYTHONDONTWRITEBYTECODE=1`` (as in this workplace) an editable install compiles the project's
modules on every start, which is part of what is measured. ``--bytecode`` runs every process with
bytecode caching enabled instead, as an installed wheel has it.

    .venv/bin/python benchmarks/startup.py [--json] [--repeat N] [--bytecode] [--check]
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parents[1]
TARGET_VERSION_RATIO = 2.0  # skills --version / python -c pass
TARGET_RUN_RATIO = 2.0  # skills run / skills --version
RUN_LIBRARIES = ("click", "msgspec", "sqlite3", "wasmtime", "jsonschema_rs")
INPUT = json.dumps({"text": "x" * (1024 - len('{"text": ""}'))})
assert len(INPUT) == 1024


def skills_command() -> list[str]:
    """The console script next to this interpreter (what a user calls), else ``-m skill_ledger``."""
    script = Path(sys.executable).parent / "skills"
    return [str(script)] if script.exists() else [sys.executable, "-m", "skill_ledger"]


def environment(bytecode: bool, cache_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLS_")}
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(cache_dir)  # caches outside the checkout
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, cwd=cwd, env=env)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... exited {out.returncode}: {out.stderr.decode()[-2000:]}")
    return elapsed


def measure(repeat: int, bytecode: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="skills-bench-startup-"))
    try:
        home = tmp / "home"
        env = environment(bytecode, tmp / "pycache")
        skills = skills_command()
        commands = {
            "python": [sys.executable, "-c", "pass"],
            "import_click": [sys.executable, "-c", "import click"],
            "import_run_libraries": [sys.executable, "-c", f"import {', '.join(RUN_LIBRARIES)}"],
            "version": [*skills, "--version"],
            "run": [*skills, "--home", str(home), "run", "examples.echo", "--input", INPUT, "--json"],
        }
        t0 = time.perf_counter()
        timed([*skills, "--home", str(home), "demo", "--json"], env, tmp)
        setup_s = time.perf_counter() - t0
        for argv in commands.values():  # warm-up: caches, page cache, bytecode (with --bytecode)
            timed(argv, env, tmp)
        runs: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(repeat):
            for name, argv in commands.items():
                runs[name].append(timed(argv, env, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = {name: statistics.median(values) for name, values in runs.items()}
    ratios = {"version_vs_python": med["version"] / med["python"], "run_vs_version": med["run"] / med["version"],
              "import_click_vs_python": med["import_click"] / med["python"],
              "run_libraries_vs_version": med["import_run_libraries"] / med["version"]}
    return {
        "figures": {"skills_version_s": med["version"], "skills_run_s": med["run"],
                    "skills_version_runs_s": runs["version"], "skills_run_runs_s": runs["run"]},
        "floor": {"python_pass_s": med["python"], "python_pass_runs_s": runs["python"],
                  "import_click_s": med["import_click"], "import_run_libraries_s": med["import_run_libraries"],
                  "run_libraries": list(RUN_LIBRARIES)},
        "ratios": ratios,
        "own_cost_s": {"skills_version": med["version"] - med["import_click"],
                       "skills_run": med["run"] - med["import_run_libraries"]},
        "target": {"max_version_vs_python": TARGET_VERSION_RATIO, "max_run_vs_version": TARGET_RUN_RATIO},
        "met": {"version_vs_python": ratios["version_vs_python"] <= TARGET_VERSION_RATIO,
                "run_vs_version": ratios["run_vs_version"] <= TARGET_RUN_RATIO},
        "setup": {"demo_s": setup_s, "command": skills, "bytecode": bytecode, "repeat": repeat},
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                        "dont_write_bytecode": os.environ.get("PYTHONDONTWRITEBYTECODE", "") != "" and not bytecode},
    }


def table(r: dict) -> str:
    f, fl, ra, met = r["figures"], r["floor"], r["ratios"], r["met"]
    ok = {True: "OK", False: "MISSED"}
    rows = [("measure", "figure", "floor", "ratio", "target"),
            ("skills --version vs python -c pass", f"{f['skills_version_s'] * 1e3:.1f} ms",
             f"{fl['python_pass_s'] * 1e3:.1f} ms", f"{ra['version_vs_python']:.2f}x",
             f"<= {TARGET_VERSION_RATIO}x {ok[met['version_vs_python']]}"),
            ("skills run (warm echo, 1 KiB) vs skills --version", f"{f['skills_run_s'] * 1e3:.1f} ms",
             f"{f['skills_version_s'] * 1e3:.1f} ms", f"{ra['run_vs_version']:.2f}x",
             f"<= {TARGET_RUN_RATIO}x {ok[met['run_vs_version']]}"),
            ("library floor: python -c 'import click' vs python -c pass", f"{fl['import_click_s'] * 1e3:.1f} ms",
             f"{fl['python_pass_s'] * 1e3:.1f} ms", f"{ra['import_click_vs_python']:.2f}x", "(reported)"),
            (f"library floor: import {', '.join(fl['run_libraries'])} vs skills --version",
             f"{fl['import_run_libraries_s'] * 1e3:.1f} ms", f"{f['skills_version_s'] * 1e3:.1f} ms",
             f"{ra['run_libraries_vs_version']:.2f}x", "(reported)"),
            ("own cost: skills --version - import click", f"{r['own_cost_s']['skills_version'] * 1e3:.1f} ms",
             "", "", "(reported)"),
            ("own cost: skills run - its library floor", f"{r['own_cost_s']['skills_run'] * 1e3:.1f} ms",
             "", "", "(reported)")]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object {figures, floor, ratios, ...}")
    ap.add_argument("--repeat", type=int, default=21, help="interleaved rounds (default 21)")
    ap.add_argument("--bytecode", action="store_true",
                    help="run the processes with bytecode caching on (as an installed wheel has it)")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be positive")
    r = measure(args.repeat, args.bytecode)
    print(json.dumps(r) if args.json else table(r))
    return 1 if args.check and not all(r["met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
