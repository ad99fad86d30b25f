"""Benchmark: journal append and full projection rebuild (issue 3).

Data: journals of 10k, 100k and 1M events (``--sizes``) with many skills (one per ~40
events) from many publishers and a realistic mix: installs (artifact_verified with a real
manifest, audited with a real audit report, installed, current_changed, activated or
quarantined), updates to a second version, quarantines, enables (verified + audited +
enabled), disables, periodic re-audits, rollbacks, removals, execution denials, TOFU pins,
allowlisted and revoked keys (with the quarantines a revocation causes), policy changes
and rejected artifacts (intake streams). Events are produced by the real aggregates
(``domain``) and written by the real ``LedgerApplication`` and ``ChainedSQLiteRecorder``,
so encoding, the hash chain and the append-only triggers are the production ones.

Figures, in one run:

* append throughput: events/s, one command per transaction (``app.save`` of one command's
  aggregates), on a fresh journal; also with the aggregate re-read first, as a use case does;
* full projection rebuild (``rebuild_views`` with the worker processes of
  ``adapters.readmodel.rebuild``: exactly what ``skills index rebuild`` does, sharded between as many
  processes as it would use here) into a fresh ``views.db``, for each size; also the same
  rebuild in one process, for comparison. The journals themselves are generated through a
  bulk path (many commands' aggregates saved per transaction, same recorder and hashes);
* floor for the rebuild: a bare ``SELECT`` over ``stored_events`` decoding each row's JSON
  state with msgspec (one process); ratio rebuild / floor;
* linearity: rebuild time of 1M / rebuild time of 100k;
* ``skills list`` on the 100k journal as a process (warm, views caught up) against
  ``skills --version`` as a process; ratio.

Targets: rebuild >= 50k events/s and <= 3x the floor; 1M <= 12x the 100k time;
``skills list`` < 2x ``skills --version``.

Before each timed run the journal file is read once (so the floor and the rebuild both find
it in the page cache) and dirty pages are flushed (``os.sync``); floor and rebuild runs are
interleaved and the medians of ``--repeat`` runs are reported.

    .venv/bin/python benchmarks/journal.py [--json] [--sizes 10k,100k,1M] [--keep DIR]
        [--append-commands N] [--runs N] [--repeat N] [--processes N] [--profile] [--check]
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
import socket
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

import msgspec  # noqa: E402

from skill_ledger.adapters.journal.sqlite import LedgerApplication, open_journal  # noqa: E402
from skill_ledger.adapters.readmodel.rebuild import SubprocessShards, process_count, rebuild_views  # noqa: E402
from skill_ledger.adapters.settings import resolve  # noqa: E402
from skill_ledger.domain.artifact import build_artifact, inspect_artifact  # noqa: E402
from skill_ledger.domain.audit_policy import POLICY_KEY, AuditPolicy  # noqa: E402
from skill_ledger.domain.errors import SkillLedgerError  # noqa: E402
from skill_ledger.domain.events import Actor, LedgerAggregate  # noqa: E402
from skill_ledger.domain.intake import Intake  # noqa: E402
from skill_ledger.domain.manifest import manifest_to_json  # noqa: E402
from skill_ledger.domain.policy import apply_settings  # noqa: E402
from skill_ledger.domain.publisher import Publisher  # noqa: E402
from skill_ledger.domain.signing import key_id, public_key_from_seed  # noqa: E402
from skill_ledger.domain.skill import ACTIVE, DISABLED, QUARANTINED, ArtifactFacts, Skill  # noqa: E402
from skill_ledger.projections.store import ViewStore  # noqa: E402

TARGET_EVENTS_PER_S = 50_000
TARGET_FLOOR_RATIO = 3.0
TARGET_LINEARITY = 12.0
TARGET_LIST_RATIO = 2.0
BULK_EVENTS_PER_TRANSACTION = 5_000
EVENTS_PER_SKILL = 40
SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
PROVENANCE = b'{"builder":{"id":"bench"},"subject":[{"name":"hello"}]}'


def parse_size(text: str) -> int:
    t = text.strip().lower().replace("_", "")
    mult = 1
    if t.endswith("k"):
        t, mult = t[:-1], 1_000
    elif t.endswith("m"):
        t, mult = t[:-1], 1_000_000
    return int(float(t) * mult)


def label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


# --- realistic payloads -------------------------------------------------------------------


class Templates:
    """A real manifest (JSON form) and real audit reports, from the bundled example skill."""

    def __init__(self, scratch: Path) -> None:
        from skill_ledger.adapters.settings import resolve
        from skill_ledger.adapters.usecases.unit_of_work import Ledger
        from skill_ledger.adapters.usecases.verification import audit

        manifest = (ROOT / "examples" / "hello" / "skill.toml").read_text()
        modules = [(name, (ROOT / "examples" / "hello" / "modules" / name).read_bytes())
                   for name in ("echo.wasm", "wordcount.wasm")]  # each tool's module: the audit passes
        asset = (ROOT / "examples" / "hello" / "assets" / "prompt.txt").read_bytes()
        data = build_artifact(manifest, modules, [("prompt.txt", asset)], SBOM, PROVENANCE,
                              bytes([5]) * 32, 1).artifact
        inspected = inspect_artifact(data)
        self.manifest = manifest_to_json(inspected.manifest)
        self.warnings = [msgspec.to_builtins(w) for w in inspected.manifest_warnings]
        ledger = Ledger(resolve(home=str(scratch / "templates"), journal=None, actor="user:bench", command="bench"))
        try:
            self.passed = audit(ledger, inspected, "tofu_newly_pinned").report
        finally:
            ledger.close()
        checks = tuple(msgspec.structs.replace(c, status="fail") if c.check_id == "wasm_import_allowlist" else c
                       for c in self.passed.checks)
        self.failed = msgspec.structs.replace(self.passed, passed=False, should_quarantine=True, checks=checks,
                                              quarantine_reasons=("module imports outside the allowlist",))

    def manifest_for(self, skill_id: str, version: str, publisher: str) -> dict[str, Any]:
        m = dict(self.manifest)
        m.update(skill_id=skill_id, version=version, publisher=publisher)
        return m


# --- the generator ------------------------------------------------------------------------


def digest(*parts: object) -> str:
    import hashlib

    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


class Generator:
    """Commands on in-memory aggregates; ``flush`` saves what they recorded in one transaction."""

    def __init__(self, app: LedgerApplication, templates: Templates, rng: random.Random, n_skills: int) -> None:
        self.app = app
        self.t = templates
        self.rng = rng
        self.n_skills = max(3, n_skills)
        self.n_publishers = max(3, self.n_skills // 50)
        self.actor = Actor("user:bench", socket.gethostname(), "bench")
        self.skills: list[Skill] = []
        self.publishers: dict[str, Publisher] = {}
        self.keys: dict[str, tuple[str, str]] = {}
        self.policy = AuditPolicy.start(POLICY_KEY)
        self.dirty: dict[str, LedgerAggregate] = {}
        self.pending = 0
        self.events = 0
        self.commands = 0

    # plumbing ---------------------------------------------------------------------------

    def _mark(self, agg: LedgerAggregate, before: int) -> None:
        n = agg.version - before
        if n:
            self.dirty[agg.stream] = agg
            self.pending += n

    def flush(self) -> int:
        if not self.dirty:
            return 0
        n = self.pending
        self.app.save(*self.dirty.values())
        self.dirty.clear()
        self.pending = 0
        self.events += n
        return n

    def publisher(self, name: str) -> Publisher:
        pub = self.publishers.get(name)
        if pub is None:
            pub = self.publishers[name] = Publisher.start(name)
            seed = digest("seed", name)[:64]
            key = public_key_from_seed(bytes.fromhex(seed)).hex()
            self.keys[name] = (key, key_id(bytes.fromhex(key)))
        return pub

    # commands ---------------------------------------------------------------------------

    def install(self, skill: Skill, version: str, publisher: str) -> None:
        pub = self.publisher(publisher)
        key, kid = self.keys[publisher]
        pb, sb = pub.version, skill.version
        decision = "tofu_pinned" if pub.keys else "tofu_newly_pinned"
        if not pub.keys:
            pub.pin(self.actor, key, kid, skill.skill_id, version, digest("payload", skill.skill_id, version))
        passed = self.rng.random() > 0.08
        report = self.t.passed if passed else self.t.failed
        payload, artifact = digest("payload", skill.skill_id, version), digest("artifact", skill.skill_id, version)
        facts = ArtifactFacts(
            version=version, publisher=publisher, payload_sha256=payload, artifact_sha256=artifact,
            key_id=kid, key_hex=key, trust_decision=decision, manifest=self.t.manifest_for(skill.skill_id, version,
                                                                                        publisher),
            manifest_warnings=self.t.warnings, source=f"file:/srv/skills/{skill.skill_id}-{version}.palyra-skill")
        skill.install(self.actor, facts, report, self.policy.policy_version, f"sha256/{artifact}")
        self._mark(pub, pb)
        self._mark(skill, sb)

    def new_skill(self) -> None:
        i = len(self.skills)
        publisher = f"pub{self.rng.randrange(self.n_publishers):04d}"
        skill = Skill.start(f"{publisher}.skill{i:06d}")
        self.skills.append(skill)
        self.install(skill, "1.0.0", publisher)

    def operate(self) -> None:
        """One command on an existing skill (or on trust, policy, intake)."""
        rng = self.rng
        skill = rng.choice(self.skills)
        installed = skill.installed_versions()
        v = skill.versions.get(skill.current) if skill.current else None
        r = rng.random()
        before = skill.version
        reason = f"ticket {rng.randrange(100000)}"
        if v is None or not v.installed:
            if installed:
                skill.rollback(self.actor, installed[-1].version, reason)
            else:
                self.install(skill, f"1.{len(skill.versions)}.0", f"{skill.skill_id.split('.')[0]}")
                return
        elif r < 0.20:
            skill.quarantine(self.actor, v.version, "operator", reason)
        elif r < 0.42:
            if v.status != ACTIVE:
                skill.enable(self.actor, v.version, reason, trust_decision="tofu_pinned", audit=self.t.passed,
                             policy_version=self.policy.policy_version)
            else:
                skill.record_audit(self.actor, v.version, "periodic", self.policy.policy_version, self.t.passed)
        elif r < 0.50:
            if v.status not in (QUARANTINED, DISABLED):
                skill.disable(self.actor, v.version, reason)
        elif r < 0.62:
            major = len(skill.versions) + 1
            self.install(skill, f"{major}.0.0", v.publisher)
            return
        elif r < 0.68:
            if len(installed) > 1:
                skill.rollback(self.actor, None, reason)
        elif r < 0.72:
            if len(installed) > 1:
                skill.remove(self.actor, installed[0].version, reason)
        elif r < 0.80:
            skill.deny_execution(self.actor, v.version, f"{v.publisher}.echo", "not_active")
        elif r < 0.88:
            intake = Intake.start(digest("rejected", self.commands))
            intake.reject(self.actor, source="file:/tmp/upload.palyra-skill",
                          error_code=rng.choice(["untrusted_publisher", "payload_hash_mismatch", "version_conflict"]),
                          message="rejected by the benchmark", details={}, skill_id=skill.skill_id,
                          version=v.version, publisher=v.publisher)
            self._mark(intake, 0)
        elif r < 0.93:
            pub = self.publisher(v.publisher)
            pb = pub.version
            extra = public_key_from_seed(bytes.fromhex(digest("extra", self.commands)[:64])).hex()
            pub.allowlist(self.actor, extra, key_id(bytes.fromhex(extra)), reason)
            self._mark(pub, pb)
        elif r < 0.935:
            self._revoke_extra_key(v.publisher, reason)
        elif r < 0.937:
            pb = self.policy.version
            n = 64 + rng.randrange(64)
            self.policy.change(self.actor, apply_settings(self.policy.values, [f"max_exported_functions={n}"]), reason)
            self._mark(self.policy, pb)
        else:
            skill.record_audit(self.actor, v.version, "periodic", self.policy.policy_version, self.t.passed)
        self._mark(skill, before)

    def _revoke_extra_key(self, publisher: str, reason: str) -> None:
        """Revoke an allowlisted extra key (never the signing key: the fleet stays usable);
        a revocation of a signing key is simulated on one skill by the quarantine it causes."""
        pub = self.publisher(publisher)
        extra = [k for k in pub.keys.values() if k.kind == "allowlisted" and k.state == "active"]
        if not extra:
            return
        pb = pub.version
        pub.revoke(self.actor, extra[0].key_hex, extra[0].key_id, reason)
        self._mark(pub, pb)

    def step(self) -> None:
        self.commands += 1
        try:
            if len(self.skills) < self.n_skills and (not self.skills or self.rng.random() < 0.25):
                self.new_skill()
            else:
                self.operate()
        except SkillLedgerError:  # the aggregate refused (e.g. nothing to roll back to): nothing recorded
            pass


def generate(path: Path, target: int, templates: Templates, seed: int = 1) -> dict[str, Any]:
    """A journal of about ``target`` events through the bulk path (big transactions)."""
    app = open_journal("sqlite://" + str(path))
    try:
        gen = Generator(app, templates, random.Random(seed), target // EVENTS_PER_SKILL)
        t0 = time.perf_counter()
        while gen.events + gen.pending < target:
            gen.step()
            if gen.pending >= BULK_EVENTS_PER_TRANSACTION:
                gen.flush()
        gen.flush()
        elapsed = time.perf_counter() - t0
        head = app.recorder.max_notification_id() or 0
    finally:
        app.close()
    return {"events": head, "skills": len(gen.skills), "publishers": len(gen.publishers), "commands": gen.commands,
            "generate_s": elapsed}


def append_throughput(path: Path, templates: Templates, commands: int) -> dict[str, Any]:
    """One command per transaction on a fresh journal: save only, and re-read + save."""
    app = open_journal("sqlite://" + str(path))
    try:
        gen = Generator(app, templates, random.Random(2), max(3, commands // 8))
        save_s = 0.0
        events = 0
        for _ in range(commands):
            gen.step()
            t0 = time.perf_counter()
            events += gen.flush()
            save_s += time.perf_counter() - t0
        # the same, with the aggregate re-read from the journal first (what a use case does)
        reread_s, reread_events = 0.0, 0
        rng = random.Random(3)
        for _ in range(max(50, commands // 4)):
            t0 = time.perf_counter()
            skill = app.repository.get(rng.choice(gen.skills).id)
            v = skill.versions.get(skill.current) if skill.current else None
            if v is not None and v.installed:
                before = skill.version
                if v.status == QUARANTINED:
                    skill.enable(gen.actor, v.version, "bench", trust_decision="tofu_pinned", audit=templates.passed,
                                 policy_version=0)
                else:
                    skill.quarantine(gen.actor, v.version, "operator", "bench")
                app.save(skill)
                reread_events += skill.version - before
            reread_s += time.perf_counter() - t0
    finally:
        app.close()
    return {"commands": commands, "events": events, "save_s": save_s,
            "events_per_s": events / save_s if save_s else 0.0, "commands_per_s": commands / save_s if save_s else 0.0,
            "with_reread_events": reread_events, "with_reread_s": reread_s,
            "with_reread_events_per_s": reread_events / reread_s if reread_s else 0.0}


# --- measurements ---------------------------------------------------------------------------


def journal_identity(path: Path) -> str:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT hash FROM event_chain WHERE position = 1").fetchone()
    finally:
        con.close()
    return row[0] if row else ""


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def warm(path: Path) -> None:
    """Read the whole file once (into the page cache), then flush dirty pages."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass
    os.sync()


def rebuild(home: Path, processes: int, profile: bool = False) -> tuple[float, int, str | None]:
    """``skills index rebuild``: ``rebuild_views`` from the journal into a fresh
    ``<home>/views.db``, sharded between ``processes`` processes (1: this one alone)."""
    views = home / "views.db"
    remove_db(views)
    warm(home / "journal.db")
    app = open_journal("sqlite://" + str(home / "journal.db"))
    store = ViewStore(views, journal_identity=journal_identity(home / "journal.db"))
    settings = resolve(home=str(home), journal=None, actor="user:bench")
    shards = SubprocessShards(settings, processes) if processes > 1 else None
    profiler = cProfile.Profile() if profile else None
    try:
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        n = rebuild_views(store, app.recorder, shards=shards)
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - t0
    finally:
        store.close()
        app.close()
    text = None
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        out2 = io.StringIO()
        pstats.Stats(profiler, stream=out2).sort_stats("tottime").print_stats(25)
        text = out.getvalue() + out2.getvalue()
    return elapsed, n, text


def floor(path: Path) -> tuple[float, int]:
    """A bare SELECT over the stored events, decoding each row's JSON state."""
    decode = msgspec.json.Decoder().decode
    warm(path)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        t0 = time.perf_counter()
        n = 0
        for _position, _version, _topic, state in con.execute(
                "SELECT rowid, originator_version, topic, state FROM stored_events ORDER BY rowid"):
            decode(state)
            n += 1
        elapsed = time.perf_counter() - t0
    finally:
        con.close()
    return elapsed, n


def skills_command() -> list[str]:
    script = Path(sys.executable).parent / "skills"
    return [str(script)] if script.exists() else [sys.executable, "-m", "skill_ledger"]


def process_times(args: list[str], runs: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLS_")}
    env["PYTHONPATH"] = str(ROOT)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
        out.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return out


def list_vs_version(home: Path, runs: int) -> dict[str, Any]:
    skills = skills_command()
    list_args = [*skills, "--home", str(home), "list"]
    version_args = [*skills, "--version"]
    process_times(list_args, 1)  # warm: catches up (nothing to do after the rebuild) and fills caches
    process_times(version_args, 1)
    lists, versions = [], []
    for _ in range(runs):  # interleaved
        lists += process_times(list_args, 1)
        versions += process_times(version_args, 1)
    lm, vm = statistics.median(lists), statistics.median(versions)
    con = sqlite3.connect(f"file:{home / 'views.db'}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT count(*) FROM versions WHERE installed = 1").fetchone()[0]
    finally:
        con.close()
    return {"list_s": lm, "version_s": vm, "ratio": lm / vm, "list_runs_s": lists, "version_runs_s": versions,
            "entries": rows}


# --- the run ----------------------------------------------------------------------------------


def run(sizes: list[int], workdir: Path, append_commands: int, runs: int, profile: bool,
        repeat: int = 3, processes: int = 1, log=lambda s: None) -> dict[str, Any]:
    templates = Templates(workdir)
    log(f"append: {append_commands} commands, one per transaction")
    append = append_throughput(workdir / "append.db", templates, append_commands)
    remove_db(workdir / "append.db")
    figures: dict[str, Any] = {"append": append}
    floors: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    profiles: dict[str, str] = {}
    for size in sizes:
        name = label(size)
        home = workdir / f"home-{name}"
        marker = home / "bench.json"
        if marker.exists() and json.loads(marker.read_text()).get("target") == size:
            gen = json.loads(marker.read_text())["generated"]
            gen["reused"] = True
            log(f"{name}: reusing {home}")
        else:
            if home.exists():
                shutil.rmtree(home)
            home.mkdir(parents=True, mode=0o700)
            log(f"{name}: generating")
            gen = generate(home / "journal.db", size, templates)
            marker.write_text(json.dumps({"target": size, "generated": gen}))
        floor_runs, rebuild_runs = [], []
        for i in range(repeat):  # interleaved
            log(f"{name}: {gen['events']} events; floor and rebuild ({processes} processes), run {i + 1}/{repeat}")
            floor_s, n = floor(home / "journal.db")
            floor_runs.append(floor_s)
            rebuild_s, replayed, prof = rebuild(home, processes, profile=profile and size == max(sizes) and i == 0)
            rebuild_runs.append(rebuild_s)
            assert replayed == n == gen["events"], (replayed, n, gen["events"])
            if prof:
                profiles[name] = prof
        log(f"{name}: rebuild in one process")
        one_s, replayed, _ = rebuild(home, 1)
        assert replayed == n
        floor_s, rebuild_s = statistics.median(floor_runs), statistics.median(rebuild_runs)
        figures[name] = {"events": n, "skills": gen["skills"], "publishers": gen["publishers"],
                         "generate_s": gen["generate_s"], "rebuild_s": rebuild_s, "rebuild_runs_s": rebuild_runs,
                         "rebuild_events_per_s": n / rebuild_s, "processes": processes,
                         "rebuild_one_process_s": one_s, "rebuild_one_process_events_per_s": n / one_s,
                         "journal_bytes": (home / "journal.db").stat().st_size}
        floors[name] = {"select_decode_s": floor_s, "select_decode_runs_s": floor_runs, "events_per_s": n / floor_s}
        ratios[f"rebuild_over_floor_{name}"] = rebuild_s / floor_s
    if 1_000_000 in sizes and 100_000 in sizes:
        ratios["rebuild_1M_over_100k"] = figures["1M"]["rebuild_s"] / figures["100k"]["rebuild_s"]
    list_size = 100_000 if 100_000 in sizes else max(sizes)
    log(f"skills list on {label(list_size)} vs skills --version")
    lv = list_vs_version(workdir / f"home-{label(list_size)}", runs)
    figures[f"skills_list_{label(list_size)}"] = {k: lv[k] for k in ("list_s", "list_runs_s", "entries")}
    floors["skills_version"] = {k: lv[k] for k in ("version_s", "version_runs_s")}
    ratios[f"list_over_version_{label(list_size)}"] = lv["ratio"]

    met: dict[str, bool] = {}
    for size in sizes:
        name = label(size)
        met[f"rebuild_events_per_s_{name}"] = figures[name]["rebuild_events_per_s"] >= TARGET_EVENTS_PER_S
        met[f"rebuild_over_floor_{name}"] = ratios[f"rebuild_over_floor_{name}"] <= TARGET_FLOOR_RATIO
    if "rebuild_1M_over_100k" in ratios:
        met["rebuild_1M_over_100k"] = ratios["rebuild_1M_over_100k"] <= TARGET_LINEARITY
    met[f"list_over_version_{label(list_size)}"] = lv["ratio"] < TARGET_LIST_RATIO
    return {
        "benchmark": "journal",
        "figures": figures,
        "floor": floors,
        "ratios": ratios,
        "target": {"rebuild_events_per_s": TARGET_EVENTS_PER_S, "rebuild_over_floor": TARGET_FLOOR_RATIO,
                   "rebuild_1M_over_100k": TARGET_LINEARITY, "list_over_version": TARGET_LIST_RATIO},
        "met": met,
        "profiles": profiles,
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                        "sqlite": sqlite3.sqlite_version},
    }


def table(r: dict[str, Any]) -> str:
    f, fl, ra = r["figures"], r["floor"], r["ratios"]
    a = f["append"]
    lines = [
        "journal benchmark (issue 3)",
        "",
        f"append, one command per transaction: {a['events_per_s']:,.0f} events/s "
        f"({a['commands_per_s']:,.0f} commands/s; {a['events']} events in {a['commands']} commands)",
        f"  with the aggregate re-read first:  {a['with_reread_events_per_s']:,.0f} events/s",
        "",
    ]
    head = ("size", "events", "skills", "processes", "rebuild", "rebuild ev/s", "floor", "floor ev/s",
            "rebuild/floor", "1 process", "1 process ev/s")
    rows = [head]
    for name, fig in f.items():
        if name == "append" or name.startswith("skills_list"):
            continue
        rows.append((name, f"{fig['events']:,}", f"{fig['skills']:,}", str(fig["processes"]),
                     f"{fig['rebuild_s']:.2f} s", f"{fig['rebuild_events_per_s']:,.0f}",
                     f"{fl[name]['select_decode_s']:.2f} s", f"{fl[name]['events_per_s']:,.0f}",
                     f"{ra[f'rebuild_over_floor_{name}']:.2f}x", f"{fig['rebuild_one_process_s']:.2f} s",
                     f"{fig['rebuild_one_process_events_per_s']:,.0f}"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines += ["  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in rows]
    lines.append("")
    if "rebuild_1M_over_100k" in ra:
        lines.append(f"rebuild time 1M / 100k: {ra['rebuild_1M_over_100k']:.2f}x (target <= {TARGET_LINEARITY:g}x)")
    for key, fig in f.items():
        if key.startswith("skills_list_"):
            size = key.rsplit("_", 1)[1]
            lines.append(f"skills list on {size} ({fig['entries']} entries): {fig['list_s'] * 1000:.0f} ms; "
                         f"skills --version: {fl['skills_version']['version_s'] * 1000:.0f} ms; "
                         f"ratio {ra[f'list_over_version_{size}']:.2f}x (target < {TARGET_LIST_RATIO:g}x)")
    lines.append("")
    lines.append("targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in r["met"].items()))
    for name, text in r.get("profiles", {}).items():
        lines += ["", f"profile of the {name} rebuild:", text]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON object (figures, floor, ratios)")
    p.add_argument("--sizes", default="10k,100k,1M", help="journal sizes in events (default: 10k,100k,1M)")
    p.add_argument("--append-commands", type=int, default=1000,
                   help="commands for the append figure, one transaction each (default 1000)")
    p.add_argument("--runs", type=int, default=5, help="process runs for skills list / --version (default 5)")
    p.add_argument("--repeat", type=int, default=3, help="floor and rebuild runs per size, medians (default 3)")
    p.add_argument("--processes", type=int, default=None,
                   help="processes for the rebuild (default: what skills index rebuild uses here)")
    p.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it (journals found there are reused)")
    p.add_argument("--profile", action="store_true", help="cProfile the rebuild of the largest size")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    sizes = sorted({parse_size(s) for s in args.sizes.split(",") if s.strip()})
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="skills-bench-journal-"))
    workdir.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(f"[journal bench] {message}", file=sys.stderr, flush=True)

    try:
        processes = args.processes or process_count()
        result = run(sizes, workdir, args.append_commands, args.runs, args.profile, args.repeat, processes, log)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result))
    return 1 if args.check and not all(result["met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
