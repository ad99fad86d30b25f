"""Benchmark: the verifiable journal (issue 14): full and since-checkpoint verification, proofs,
and history read from the projections.

Data: the journals of ``benchmarks/journal.py`` (10k, 100k and 1M events of a realistic mix),
taken from ``--journals DIR`` (the layout ``journal.py --keep DIR`` leaves: ``DIR/home-<size>/
journal.db``; they are copied, never changed) or generated into the work directory. Each copy
gets a first checkpoint (timed: it verifies everything, then builds the stored tree), then
``--after`` (1,000) more events: about a third continue skills the journal had (quarantines
and enables, through the use cases), the rest are new skills (the benchmark's generator).

Figures, in one run, medians of ``--repeat`` interleaved runs:

* full ``journal verify`` (in process, as the command runs it: worker processes from 262,144
  events on) against a **floor**: a bare ``SELECT`` of the stored rows verify reads (events
  joined with their chain rows) plus one SHA-256 over each row's stored state bytes; also the
  floor over ``stored_events`` alone. Target: at most 2x the floor, for each size;
* ``journal verify --since-checkpoint`` with ``--after`` events after the checkpoint. Target:
  the 1M time at most 2x the 10k time (cost of the events after it, not of the journal);
* ``journal prove`` in process on the biggest journal, ``--proofs`` random positions. Target:
  under 50 ms each (the slowest is reported);
* ``skills list --as-of POSITION --json`` (half the journal) against ``skills list --json`` on the
  biggest journal's home, as processes (views caught up: the rebuild is timed too). Target: at
  most 3x.

    .venv/bin/python benchmarks/tlog.py [--json] [--journals DIR] [--sizes 10k,100k,1M] [--after N]
        [--repeat N] [--runs N] [--proofs N] [--keep DIR] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
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
for _p in (str(ROOT), str(ROOT / "benchmarks")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import journal as jb
from eventsourcing.application import AggregateNotFoundError

from skill_ledger.adapters.journal.proofs import prove_inclusion
from skill_ledger.adapters.journal.sqlite import open_journal
from skill_ledger.adapters.journal.verify import verify_settings_journal
from skill_ledger.adapters.settings import resolve
from skill_ledger.adapters.usecases.checkpoints import home_public_key, record_checkpoint
from skill_ledger.adapters.usecases.unit_of_work import Ledger
from skill_ledger.domain.audit_policy import POLICY_KEY, AuditPolicy
from skill_ledger.domain.skill import Skill

TARGET_VERIFY_OVER_FLOOR = 2.0
TARGET_SINCE_RATIO = 2.0
TARGET_PROVE_MS = 50.0
TARGET_AS_OF_OVER_LIST = 3.0


def settings(home: Path) -> Any:
    return resolve(home=str(home), journal=None, actor="user:bench", command="bench")


class AfterGenerator(jb.Generator):
    """The benchmark's generator, for skills and publishers the journal does not have yet."""

    def new_skill(self) -> None:
        i = len(self.skills)
        publisher = f"after{self.rng.randrange(self.n_publishers):04d}"
        skill = Skill.start(f"{publisher}.skill{i:06d}")
        self.skills.append(skill)
        self.install(skill, "1.0.0", publisher)


def append_after(path: Path, templates: jb.Templates, events: int) -> int:
    app = open_journal("sqlite://" + str(path))
    try:
        gen = AfterGenerator(app, templates, random.Random(7), max(3, events // 20))
        gen.commands = 10**9  # intake streams and extra keys are named by the command count: new names
        try:  # the journal's own audit policy, not a new stream of the same name
            gen.policy = app.repository.get(AuditPolicy.id_for(POLICY_KEY))
        except AggregateNotFoundError:
            pass
        while gen.events + gen.pending < events:
            gen.step()
            gen.flush()  # one command per transaction, as the ledger appends
        return gen.events
    finally:
        app.close()


def touch_existing(home: Path, commands: int) -> int:
    """Quarantine or re-enable skills the journal already had (their streams continue across the
    checkpoint, so ``--since-checkpoint`` proves their earlier events are in the signed tree)."""
    from skill_ledger.adapters.usecases import lifecycle
    from skill_ledger.domain.errors import SkillLedgerError

    ledger = Ledger(settings(home))
    rng = random.Random(13)
    try:
        before = ledger.head()
        skill_ids = ledger.skill_ids()
        for _ in range(commands):
            skill_id = rng.choice(skill_ids)
            try:
                lifecycle.quarantine(ledger, skill_id, None, "bench: after the checkpoint")
            except SkillLedgerError:
                try:
                    lifecycle.enable(ledger, skill_id, None, "bench: after the checkpoint")
                except SkillLedgerError:
                    continue
        return ledger.head() - before
    finally:
        ledger.close()


def floor(path: Path) -> tuple[float, float, int]:
    """(joined rows, stored_events alone, rows): a bare SELECT plus one SHA-256 per row's state."""
    sha = hashlib.sha256
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        t0 = time.perf_counter()
        n = 0
        for row in con.execute("SELECT e.rowid, e.originator_id, e.originator_version, e.topic, e.state, "
                               "c.prev_hash, c.hash FROM stored_events e LEFT JOIN event_chain c "
                               "ON c.position = e.rowid ORDER BY e.rowid"):
            sha(row[4]).digest()
            n += 1
        joined = time.perf_counter() - t0
        t0 = time.perf_counter()
        for row in con.execute("SELECT rowid, state FROM stored_events ORDER BY rowid"):
            sha(row[1]).digest()
        bare = time.perf_counter() - t0
    finally:
        con.close()
    return joined, bare, n


def timed_verify(home: Path, since: bool) -> tuple[float, Any]:
    t0 = time.perf_counter()
    report = verify_settings_journal(settings(home), since_checkpoint=since)
    elapsed = time.perf_counter() - t0
    if not report.ok:
        raise SystemExit(f"the benchmark journal at {home} does not verify: {report.problems[:3]}")
    return elapsed, report


def prepare(name: str, source: Path | None, workdir: Path, size: int, templates: jb.Templates, after: int,
            log: Any) -> dict[str, Any]:
    home = workdir / f"tlog-{name}"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, mode=0o700)
    if source is not None and (source / f"home-{name}" / "journal.db").exists():
        log(f"{name}: copying {source / f'home-{name}' / 'journal.db'}")
        shutil.copyfile(source / f"home-{name}" / "journal.db", home / "journal.db")
    else:
        log(f"{name}: generating")
        jb.generate(home / "journal.db", size, templates)
    ledger = Ledger(settings(home))
    try:
        events = ledger.head()
        log(f"{name}: first checkpoint over {events} events (verifies everything, builds the tree)")
        t0 = time.perf_counter()
        record_checkpoint(ledger)
        first_checkpoint_s = time.perf_counter() - t0
    finally:
        ledger.close()
    touched = touch_existing(home, after // 4)  # about a third of the events: streams begun before it
    added = touched + append_after(home / "journal.db", templates, after - touched)
    return {"home": home, "events": events + 1 + added, "after": added + 1, "first_checkpoint_s": first_checkpoint_s}


def processes(args: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, timeout=600, check=False)
        out.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return out


def as_of_vs_list(home: Path, runs: int, log: Any) -> dict[str, Any]:
    skills = [sys.executable, "-m", "skill_ledger", "--home", str(home)]
    log("rebuilding the views of the biggest journal (history included)")
    t0 = time.perf_counter()
    processes([*skills, "index", "rebuild"], 1)
    rebuild_s = time.perf_counter() - t0
    head = Ledger(settings(home))
    try:
        position = head.head() // 2
    finally:
        head.close()
    plain, as_of = [*skills, "list", "--json"], [*skills, "list", "--json", "--as-of", str(position)]
    processes(plain, 1)
    processes(as_of, 1)
    lists, past = [], []
    for _ in range(runs):  # interleaved
        lists += processes(plain, 1)
        past += processes(as_of, 1)
    return {"position": position, "list_s": statistics.median(lists), "as_of_s": statistics.median(past),
            "list_runs_s": lists, "as_of_runs_s": past, "rebuild_s": rebuild_s}


def prove_times(home: Path, count: int) -> dict[str, Any]:
    s = settings(home)
    key = home_public_key(s)
    ledger = Ledger(s)
    rng = random.Random(11)
    times = []
    try:
        size = ledger.head()
        prove_inclusion(ledger.app, 1, checkpoint_size=None, key=key)  # warm
        for _ in range(count):
            position = rng.randrange(1, size // 2)
            t0 = time.perf_counter()
            doc = prove_inclusion(ledger.app, position, checkpoint_size=None, key=key)
            times.append((time.perf_counter() - t0) * 1000)
            assert doc["position"] == position
    finally:
        ledger.close()
    return {"median_ms": statistics.median(times), "max_ms": max(times), "proofs": count,
            "proof_hashes": len(doc["proof"])}


def run(sizes: list[int], workdir: Path, source: Path | None, after: int, repeat: int, runs: int, proofs: int,
        log: Any) -> dict[str, Any]:
    templates = jb.Templates(workdir)
    figures: dict[str, Any] = {}
    floors: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    met: dict[str, bool] = {}
    homes: dict[str, Path] = {}
    for size in sizes:
        name = jb.label(size)
        prep = prepare(name, source, workdir, size, templates, after, log)
        home = homes[name] = prep["home"]
        verify_runs, since_runs, joined_runs, bare_runs = [], [], [], []
        for i in range(repeat):  # interleaved
            log(f"{name}: floor, full verify, since-checkpoint verify, run {i + 1}/{repeat}")
            jb.warm(home / "journal.db")
            joined, bare, n = floor(home / "journal.db")
            joined_runs.append(joined)
            bare_runs.append(bare)
            elapsed, report = timed_verify(home, since=False)
            verify_runs.append(elapsed)
            assert report.events == n, (report.events, n)
            elapsed, report = timed_verify(home, since=True)
            since_runs.append(elapsed)
            assert report.mode == "since_checkpoint" and report.events == prep["after"], report
        figures[name] = {"events": prep["events"], "first_checkpoint_s": prep["first_checkpoint_s"],
                         "verify_s": statistics.median(verify_runs), "verify_runs_s": verify_runs,
                         "since_checkpoint_s": statistics.median(since_runs), "since_checkpoint_runs_s": since_runs,
                         "events_after_checkpoint": prep["after"]}
        floors[name] = {"select_join_sha256_s": statistics.median(joined_runs), "select_join_runs_s": joined_runs,
                        "select_events_sha256_s": statistics.median(bare_runs)}
        ratios[f"verify_over_floor_{name}"] = figures[name]["verify_s"] / floors[name]["select_join_sha256_s"]
        ratios[f"verify_over_events_floor_{name}"] = figures[name]["verify_s"] / floors[name]["select_events_sha256_s"]
        met[f"verify_over_floor_{name}"] = ratios[f"verify_over_floor_{name}"] <= TARGET_VERIFY_OVER_FLOOR
    small, big = jb.label(min(sizes)), jb.label(max(sizes))
    if small != big:
        ratios[f"since_checkpoint_{big}_over_{small}"] = (figures[big]["since_checkpoint_s"]
                                                          / figures[small]["since_checkpoint_s"])
        met[f"since_checkpoint_{big}_over_{small}"] = ratios[f"since_checkpoint_{big}_over_{small}"] <= TARGET_SINCE_RATIO
    log(f"{big}: {proofs} proofs")
    figures[f"prove_{big}"] = prove_times(homes[big], proofs)
    met[f"prove_{big}"] = figures[f"prove_{big}"]["max_ms"] < TARGET_PROVE_MS
    figures[f"list_as_of_{big}"] = as_of_vs_list(homes[big], runs, log)
    ratios[f"list_as_of_over_list_{big}"] = figures[f"list_as_of_{big}"]["as_of_s"] / figures[f"list_as_of_{big}"]["list_s"]
    met[f"list_as_of_over_list_{big}"] = ratios[f"list_as_of_over_list_{big}"] <= TARGET_AS_OF_OVER_LIST
    return {"benchmark": "tlog", "figures": figures, "floor": floors, "ratios": ratios,
            "target": {"verify_over_floor": TARGET_VERIFY_OVER_FLOOR, "since_checkpoint_ratio": TARGET_SINCE_RATIO,
                       "prove_ms": TARGET_PROVE_MS, "list_as_of_over_list": TARGET_AS_OF_OVER_LIST},
            "met": met,
            "environment": {"python": platform.python_version(), "machine": platform.machine(),
                            "cpus": os.cpu_count(), "sqlite": sqlite3.sqlite_version,
                            "load_average": os.getloadavg()}}


def table(r: dict[str, Any]) -> str:
    f, fl, ra = r["figures"], r["floor"], r["ratios"]
    lines = ["verifiable journal benchmark (issue 14)", ""]
    head = ("size", "events", "1st checkpoint", "verify", "floor (join)", "verify/floor", "floor (events)",
            "since-checkpoint")
    rows = [head]
    for name in fl:
        g = f[name]
        rows.append((name, f"{g['events']:,}", f"{g['first_checkpoint_s']:.2f} s", f"{g['verify_s']:.2f} s",
                     f"{fl[name]['select_join_sha256_s']:.2f} s", f"{ra[f'verify_over_floor_{name}']:.2f}x",
                     f"{fl[name]['select_events_sha256_s']:.2f} s",
                     f"{g['since_checkpoint_s'] * 1000:.0f} ms ({g['events_after_checkpoint']} after)"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines += ["  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in rows]
    lines.append("")
    for key, value in ra.items():
        if key.startswith("since_checkpoint_"):
            lines.append(f"since-checkpoint {key.split('_', 2)[2].replace('_', ' ')}: {value:.2f}x "
                         f"(target <= {TARGET_SINCE_RATIO:g}x)")
    for key, value in f.items():
        if key.startswith("prove_"):
            lines.append(f"journal prove on {key[6:]}: median {value['median_ms']:.1f} ms, slowest "
                         f"{value['max_ms']:.1f} ms over {value['proofs']} proofs (target < {TARGET_PROVE_MS:g} ms)")
        if key.startswith("list_as_of_"):
            lines.append(f"list --as-of {value['position']} on {key[11:]}: {value['as_of_s']:.2f} s; list: "
                         f"{value['list_s']:.2f} s; ratio {ra['list_as_of_over_list_' + key[11:]]:.2f}x "
                         f"(target <= {TARGET_AS_OF_OVER_LIST:g}x); views rebuild {value['rebuild_s']:.1f} s")
    lines += ["", "targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in r["met"].items()),
              f"load average during the run: {', '.join(f'{x:.1f}' for x in r['environment']['load_average'])}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON object (figures, floor, ratios)")
    p.add_argument("--journals", metavar="DIR", help="take the journals from DIR/home-<size>/journal.db (copied)")
    p.add_argument("--sizes", default="10k,100k,1M", help="journal sizes in events (default: 10k,100k,1M)")
    p.add_argument("--after", type=int, default=1000, help="events after the checkpoint (default 1000)")
    p.add_argument("--repeat", type=int, default=3, help="floor and verify runs per size, medians (default 3)")
    p.add_argument("--runs", type=int, default=5, help="process runs for list and list --as-of (default 5)")
    p.add_argument("--proofs", type=int, default=200, help="random positions proven (default 200)")
    p.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary directory)")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    sizes = sorted({jb.parse_size(s) for s in args.sizes.split(",") if s.strip()})
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="skills-bench-tlog-"))
    workdir.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(f"[tlog bench] {message}", file=sys.stderr, flush=True)

    try:
        result = run(sizes, workdir, Path(args.journals) if args.journals else None, args.after, args.repeat,
                     args.runs, args.proofs, log)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result) if args.json else table(result))
    return 1 if args.check and not all(result["met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
