"""Benchmark: ``skills report compliance`` over the journals of ``benchmarks/journal.py`` (issue 13).

Data: the 10k, 100k and 1M-event journals of ``benchmarks/journal.py`` (many skills, every kind
of event): given with ``--journals DIR`` (homes made by ``benchmarks/journal.py --keep DIR``;
each ``journal.db`` is copied into a private directory first, never opened in place), else
generated (``--keep DIR`` keeps and reuses them; 1M events take about two minutes).

Figures, per size and format (json, markdown, html), the window being the whole journal (every
event a timeline entry: the largest report there is):

* the report: ``projections.report.write_report`` over the journal, written to a file, exactly
  what the command does after ``journal verify`` (the second pass in as many processes as the
  command uses here: ``--processes``), timed in a child process from the opening of the journal
  to the last byte written;
* peak RSS of the report made in one process (a child doing both passes alone: the most any
  process needs; a worker holds one range of skills, the parent the rest);
* for reference, ``journal verify`` on the same journal (the command runs it first), and with
  ``--command`` the whole command as a process (``skills report compliance --output``).

Floor: a bare ``SELECT`` over ``stored_events`` decoding each row's JSON state with msgspec, in a
child process too, interleaved with the report runs (medians of ``--repeat`` runs; before each
run the journal file is read once so both find it in the page cache).

Targets: report <= 3x the floor, for each size and format; peak RSS of the report at 1M events
<= 1.5x its peak at 100k, for each format.

    .venv/bin/python benchmarks/report.py [--json] [--sizes 10k,100k,1M] [--formats json,markdown,html]
        [--journals DIR | --keep DIR] [--repeat N] [--processes N] [--command] [--check]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_FLOOR_RATIO = 3.0
TARGET_RSS_RATIO = 1.5
FORMATS = ("json", "markdown", "html")


def _journal_bench() -> Any:
    """``benchmarks/journal.py`` (its journal generator, sizes and labels)."""
    spec = importlib.util.spec_from_file_location("bench_journal", Path(__file__).with_name("journal.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the measured work: each in a child process ------------------------------------------------------


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def child_floor(journal: Path) -> dict[str, Any]:
    import msgspec

    decode = msgspec.json.Decoder().decode
    con = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for _p, _v, _t, state in con.execute("SELECT rowid, originator_version, topic, state FROM stored_events "
                                         "ORDER BY rowid"):
        decode(state)
        n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    con.close()
    return {"wall_s": wall, "cpu_s": cpu, "events": n, "rss_mb": _rss_mb(resource.RUSAGE_SELF)}


def child_report(journal: Path, fmt: str, processes: int) -> dict[str, Any]:
    from skill_ledger.adapters.journal.sqlite import open_journal
    from skill_ledger.adapters.settings import resolve
    from skill_ledger.adapters.usecases.report_workers import ReportWorkers
    from skill_ledger.adapters.usecases.reports import JournalSource
    from skill_ledger.projections.report import JournalVerification, ReportRequest, write_report

    settings = resolve(home=str(journal.parent), journal=str(journal), actor="user:bench", command="bench")
    request = ReportRequest(generated_at="2026-12-01T00:00:00+00:00", generated_by="user:bench",
                            project_version="bench", journal_verification=JournalVerification(ok=True))
    with tempfile.TemporaryDirectory(prefix="report-bench-", dir=journal.parent) as d:
        output = Path(d) / f"report.{fmt}"
        (Path(d) / "spool").mkdir()
        t0, c0 = time.perf_counter(), time.process_time()
        app = open_journal(settings.journal_url, create=False)
        try:
            source = JournalSource(app, app.recorder.max_notification_id() or 0)
            workers = ReportWorkers(settings, processes) if processes > 1 else None
            with open(output, "wb", buffering=1 << 20) as out:
                outcome = write_report(source, out, fmt, request, workdir=Path(d) / "spool", workers=workers)
        finally:
            app.close()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        size = output.stat().st_size
    return {"wall_s": wall, "cpu_s": cpu, "bytes": size, "events": outcome.window.event_count,
            "timeline_entries": outcome.summary.timeline_entries, "rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ``ru_maxrss`` would do, but a forked child's
    counts the parent's pages it shared before exec, so it is read the same way everywhere)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return _rss_mb(resource.RUSAGE_SELF)


def child_verify(journal: Path) -> dict[str, Any]:
    from skill_ledger.adapters.journal.sqlite import open_journal
    from skill_ledger.adapters.journal.verify import verify_journal

    t0 = time.perf_counter()
    app = open_journal(f"sqlite://{journal}", create=False)
    try:
        report = verify_journal(app)
    finally:
        app.close()
    return {"wall_s": time.perf_counter() - t0, "ok": report.ok, "events": report.events}


def _in_child(*args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLS_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", *args], capture_output=True,
                          text=True, env=env, cwd=str(ROOT))
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def command_time(journal: Path, fmt: str, processes: int) -> float:
    skills = Path(sys.executable).parent / "skills"
    cmd = [str(skills) if skills.exists() else sys.executable, *([] if skills.exists() else ["-m", "skill_ledger"])]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLS_")}
    env.update(PYTHONPATH=str(ROOT), SKILLS_REPORT_PROCESSES=str(processes))
    with tempfile.TemporaryDirectory(prefix="report-bench-", dir=journal.parent) as d:
        t0 = time.perf_counter()
        proc = subprocess.run([*cmd, "--home", str(journal.parent), "--journal", str(journal), "report", "compliance",
                               "--format", fmt, "--output", str(Path(d) / f"r.{fmt}")], capture_output=True,
                              text=True, env=env, cwd=str(ROOT))
        elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"skills report compliance exited {proc.returncode}: {proc.stderr[-2000:]}")
    return elapsed


# --- the run ------------------------------------------------------------------------------------------


def journals(bench: Any, sizes: list[int], source: Path | None, keep: Path | None, scratch: Path,
             log: Any) -> dict[int, Path]:
    """A private copy of each size's journal (from ``source``), or the generated one."""
    out: dict[int, Path] = {}
    for size in sizes:
        name = bench.label(size)
        if source is not None:
            original = source / f"home-{name}" / "journal.db"
            if not original.exists():
                raise SystemExit(f"{original} does not exist: make it with benchmarks/journal.py --keep {source}")
            home = scratch / f"home-{name}"
            home.mkdir(mode=0o700)
            log(f"{name}: copying {original}")
            shutil.copyfile(original, home / "journal.db")
            out[size] = home / "journal.db"
            continue
        home = (keep or scratch) / f"home-{name}"
        marker = home / "bench.json"
        if not (marker.exists() and json.loads(marker.read_text()).get("target") == size):
            if home.exists():
                shutil.rmtree(home)
            home.mkdir(parents=True, mode=0o700)
            log(f"{name}: generating (benchmarks/journal.py's generator)")
            gen = bench.generate(home / "journal.db", size, bench.Templates(scratch))
            marker.write_text(json.dumps({"target": size, "generated": gen}))
        out[size] = home / "journal.db"
    return out


def settle(bench: Any, journal: Path) -> None:
    """Before a timed run (not timed): the journal in the page cache, and the previous run's
    output (a gigabyte of JSON at 1M events) written back, so that its writeback does not land
    in this run's time. Each run's own output is written inside its time."""
    os.sync()
    bench.warm(journal)


def run(sizes: list[int], formats: list[str], paths: dict[int, Path], repeat: int, processes: int,
        command: bool, bench: Any, log: Any) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    floors: dict[str, Any] = {}
    ratios: dict[str, float] = {}
    for size in sizes:
        name, journal = bench.label(size), paths[size]
        floor_runs: list[dict[str, Any]] = []
        runs: dict[str, list[dict[str, Any]]] = {f: [] for f in formats}
        for i in range(repeat):  # interleaved: the floor, then each format
            settle(bench, journal)
            floor_runs.append(_in_child("floor", str(journal)))
            for fmt in formats:
                log(f"{name}: {fmt}, run {i + 1}/{repeat}")
                settle(bench, journal)
                runs[fmt].append(_in_child("report", str(journal), fmt, str(processes)))
        alone: dict[str, dict[str, Any]] = {}
        for fmt in formats:  # the memory figure: the whole report in one process
            log(f"{name}: {fmt}, in one process (peak RSS)")
            settle(bench, journal)
            alone[fmt] = runs[fmt][0] if processes == 1 else _in_child("report", str(journal), fmt, "1")
        floor_s = statistics.median(r["wall_s"] for r in floor_runs)
        floors[name] = {"select_decode_s": floor_s, "select_decode_runs_s": [r["wall_s"] for r in floor_runs],
                        "cpu_s": statistics.median(r["cpu_s"] for r in floor_runs),
                        "events": floor_runs[0]["events"], "events_per_s": floor_runs[0]["events"] / floor_s}
        verify = _in_child("verify", str(journal))
        figures[name] = {"journal_bytes": journal.stat().st_size, "verify_s": verify["wall_s"]}
        for fmt in formats:
            rs = runs[fmt]
            report_s = statistics.median(r["wall_s"] for r in rs)
            figures[name][fmt] = {
                "report_s": report_s, "report_runs_s": [r["wall_s"] for r in rs],
                "cpu_s": statistics.median(r["cpu_s"] for r in rs), "bytes": rs[0]["bytes"],
                "timeline_entries": rs[0]["timeline_entries"], "events": rs[0]["events"],
                "peak_rss_mb": alone[fmt]["rss_mb"], "one_process_s": alone[fmt]["wall_s"],
                "parent_peak_rss_mb": max(r["rss_mb"] for r in rs), "processes": processes}
            if command:
                log(f"{name}: {fmt}, the whole command (journal verify included)")
                settle(bench, journal)
                figures[name][fmt]["command_s"] = command_time(journal, fmt, processes)
            ratios[f"report_over_floor_{name}_{fmt}"] = report_s / floor_s
    if 1_000_000 in sizes and 100_000 in sizes:
        for fmt in formats:
            ratios[f"rss_1M_over_100k_{fmt}"] = figures["1M"][fmt]["peak_rss_mb"] / figures["100k"][fmt]["peak_rss_mb"]
    met = {k: v <= (TARGET_RSS_RATIO if k.startswith("rss_") else TARGET_FLOOR_RATIO) for k, v in ratios.items()}
    return {"benchmark": "report", "figures": figures, "floor": floors, "ratios": ratios,
            "target": {"report_over_floor": TARGET_FLOOR_RATIO, "rss_1M_over_100k": TARGET_RSS_RATIO}, "met": met,
            "environment": {"python": platform.python_version(), "machine": platform.machine(),
                            "cpus": os.cpu_count(), "sqlite": sqlite3.sqlite_version, "processes": processes}}


def table(r: dict[str, Any]) -> str:
    lines = [f"skills report compliance, whole-journal window ({r['environment']['processes']} process(es) for the "
             "second pass); floor: SELECT + msgspec decode", ""]
    head = ("size", "format", "report", "floor", "ratio", "one process", "peak RSS", "output", "verify")
    rows = [head]
    for name, fig in r["figures"].items():
        for fmt in FORMATS:
            if fmt not in fig:
                continue
            f = fig[fmt]
            rows.append((name, fmt, f"{f['report_s']:.2f} s", f"{r['floor'][name]['select_decode_s']:.2f} s",
                         f"{r['ratios'][f'report_over_floor_{name}_{fmt}']:.2f}x", f"{f['one_process_s']:.2f} s",
                         f"{f['peak_rss_mb']:.0f} MB", f"{f['bytes'] / 1e6:.0f} MB", f"{fig['verify_s']:.2f} s"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines += ["  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.append("")
    for key, value in r["ratios"].items():
        if key.startswith("rss_"):
            fmt = key.rsplit("_", 1)[1]
            lines.append(f"peak RSS 1M / 100k ({fmt}): {value:.2f}x (target <= {TARGET_RSS_RATIO:g}x)")
    lines.append("targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in r["met"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        what, *rest = argv[1:]
        result = {"floor": lambda: child_floor(Path(rest[0])),
                  "report": lambda: child_report(Path(rest[0]), rest[1], int(rest[2])),
                  "verify": lambda: child_verify(Path(rest[0]))}[what]()
        print(json.dumps(result))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON object (figures, floor, ratios)")
    p.add_argument("--sizes", default="10k,100k,1M", help="journal sizes in events (default: 10k,100k,1M)")
    p.add_argument("--formats", default=",".join(FORMATS), help="report formats (default: json,markdown,html)")
    p.add_argument("--journals", metavar="DIR", help="homes made by benchmarks/journal.py --keep DIR (copied, "
                                                     "never modified)")
    p.add_argument("--keep", metavar="DIR", help="generate the journals into DIR and keep them (reused next time)")
    p.add_argument("--repeat", type=int, default=3, help="floor and report runs per size and format (default 3)")
    p.add_argument("--processes", type=int, default=None,
                   help="processes for the second pass (default: what skills report compliance uses here)")
    p.add_argument("--command", action="store_true", help="also time the whole command (journal verify included)")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    bench = _journal_bench()
    sizes = sorted({bench.parse_size(s) for s in args.sizes.split(",") if s.strip()})
    formats = [f for f in FORMATS if f in args.formats.split(",")]

    def log(message: str) -> None:
        print(f"[report bench] {message}", file=sys.stderr, flush=True)

    from skill_ledger.adapters.usecases.report_workers import process_count

    processes = args.processes or process_count()
    scratch = Path(tempfile.mkdtemp(prefix="skills-bench-report-"))
    try:
        paths = journals(bench, sizes, Path(args.journals) if args.journals else None,
                         Path(args.keep) if args.keep else None, scratch, log)
        result = run(sizes, formats, paths, args.repeat, processes, args.command, bench, log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result) if args.json else table(result))
    return 1 if args.check and not all(result["met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
