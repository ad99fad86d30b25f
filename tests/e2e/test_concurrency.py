"""Several processes at once on one journal (events.md guarantee 2).

Worker processes (this file run as a script) wait at a barrier, then run random
install / quarantine / enable / disable commands, each as a CLI command would (one
ledger session, projections caught up afterwards), and report the journal positions
each command appended. Afterwards:

* no lost events: every reported position is in the journal, carries the reporting
  worker's actor and the right kind, and every appended event was reported by someone;
* the chains verify; each version was installed exactly once; the live projections
  (caught up by the workers themselves, concurrently) equal a serial replay of the
  journal, row for row, and agree with the write side;
* two processes installing the same skill version at the same moment end with one
  install and one ``already_installed`` (same payload) or ``version_conflict``
  (different payload), both through the CLI, on one home (install lock) and on two
  homes sharing one journal (optimistic concurrency).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
for _p in (str(HERE.parents[2]), str(HERE.parents[1])):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import helpers_ledger as h  # noqa: E402

SKILLS = {"acme.alpha": "acme", "acme.beta": "acme", "globex.gamma": "globex"}
ARTIFACTS = {  # name -> (skill_id, version, publisher, asset)
    "alpha-1.0.0": ("acme.alpha", "1.0.0", "acme", b"hello"),
    "alpha-1.0.0-other": ("acme.alpha", "1.0.0", "acme", b"another payload"),
    "alpha-1.1.0": ("acme.alpha", "1.1.0", "acme", b"hello"),
    "beta-1.0.0": ("acme.beta", "1.0.0", "acme", b"hello"),
    "gamma-1.0.0": ("globex.gamma", "1.0.0", "globex", b"hello"),
    "gamma-2.0.0": ("globex.gamma", "2.0.0", "globex", b"hello"),
}


def artifact_bytes(name: str) -> bytes:
    skill_id, version, publisher, asset = ARTIFACTS[name]
    return h.build(skill_id, version, publisher, asset=asset)


def wait_for(path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit("barrier timed out")
        time.sleep(0.002)


# --- the worker (runs in a subprocess) ----------------------------------------------------


def worker(home: str, journal: str, name: str, seed: int, ops: int, go: str) -> None:
    from eventsourcing.persistence import IntegrityError, OperationalError

    from skill_ledger.adapters.journal.sqlite import LedgerApplication
    from skill_ledger.adapters.usecases import lifecycle
    from skill_ledger.adapters.usecases.install import install
    from skill_ledger.adapters.usecases.session import ledger_session
    from skill_ledger.domain.errors import SkillLedgerError

    conflicts = [0]
    real_save = LedgerApplication.save

    def counting_save(self, *args, **kwargs):  # how often optimistic concurrency had to retry
        try:
            return real_save(self, *args, **kwargs)
        except (IntegrityError, OperationalError):
            conflicts[0] += 1
            raise

    LedgerApplication.save = counting_save  # type: ignore[method-assign]
    rng = random.Random(seed)
    data = {n: artifact_bytes(n) for n in ARTIFACTS}
    settings = h.resolve(home=home, journal=journal, actor=f"user:{name}", command="worker")
    print("ready", flush=True)
    wait_for(go)
    for i in range(ops):
        op = rng.choices(["install", "quarantine", "enable", "disable"], [4, 2, 3, 1])[0]
        skill = rng.choice(sorted(SKILLS))
        record: dict[str, Any] = {"op": op, "worker": name}
        try:
            with ledger_session(settings) as ledger:
                if op == "install":
                    art = rng.choice(sorted(ARTIFACTS))
                    record["artifact"] = art
                    trusted = [(ARTIFACTS[art][2], h.key_hex(h.SEEDS[ARTIFACTS[art][2]]))]
                    r = install(ledger, f"/concurrency/{art}", data=data[art], trusted_publishers=trusted)
                    record.update(already_installed=r.already_installed, skill_id=r.skill_id, version=r.version)
                elif op == "quarantine":
                    r = lifecycle.quarantine(ledger, skill, None, f"{name} {i}")
                elif op == "enable":
                    r = lifecycle.enable(ledger, skill, None, f"{name} {i}")
                else:
                    r = lifecycle.disable(ledger, skill, None, f"{name} {i}")
                record["positions"] = list(r.positions)
                record["code"] = "ok"
        except SkillLedgerError as e:
            record["code"] = e.code
            record["positions"] = list(e.details.get("positions", []))
        print(json.dumps(record), flush=True)
    print(json.dumps({"worker": name, "conflicts": conflicts[0]}), flush=True)


def open_rounds(workdir: str, rounds: int) -> None:
    """Round i: wait at barrier ``go-i``, then open the brand-new journal ``j-i`` as every
    command does (``Ledger(settings)``); print ok or the error code."""
    from skill_ledger.adapters.usecases.unit_of_work import Ledger
    from skill_ledger.domain.errors import SkillLedgerError

    print("ready", flush=True)
    for i in range(rounds):
        wait_for(f"{workdir}/go-{i}")
        settings = h.resolve(home=f"{workdir}/home-{i}", journal=None, actor="user:opener", command="open")
        try:
            Ledger(settings).close()
            print(f"{i} ok", flush=True)
        except SkillLedgerError as e:
            print(f"{i} {e.code}: {e.message}", flush=True)


def cli_at(go: str, args: list[str]) -> None:
    """Import everything, wait at the barrier, then run ``skills ARGS`` (one real CLI run)."""
    from skill_ledger.cli.main import cli

    print("ready", flush=True)
    wait_for(go)
    cli.main(args=args, prog_name="skills")


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7])
    elif sys.argv[1] == "open-rounds":
        open_rounds(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "cli-at":
        cli_at(sys.argv[2], sys.argv[3:])
    sys.exit(0)


# --- the tests ----------------------------------------------------------------------------

import pytest  # noqa: E402

from skill_ledger.adapters.journal.verify import verify_journal  # noqa: E402
from skill_ledger.adapters.usecases import lifecycle  # noqa: E402
from skill_ledger.adapters.usecases.install import install  # noqa: E402
from skill_ledger.domain.skill import Skill  # noqa: E402

pytestmark = pytest.mark.slow
OPS = 60  # commands per worker


def start_all(commands: list[list[str]], go: Path) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([h.PYTHON, str(HERE), *c], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=h.cli_env(), cwd=str(h.ROOT)) for c in commands]
    try:
        for p in procs:
            line = p.stdout.readline()
            assert line.strip() == "ready", line + p.stderr.read()
        go.touch()  # all imported and waiting: start together
    except BaseException:
        for p in procs:
            p.kill()
        raise
    return procs


def finish(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=180)
        out.append((p.returncode, stdout, stderr))
    return out


def test_many_processes_lose_no_event(tmp_path: Path) -> None:
    home = tmp_path / "home"
    journal = str(home / "journal.db")
    go = tmp_path / "go"
    workers = [f"w{i}" for i in range(4)]
    h.ledger_for(home).close()  # the journal exists (creating it concurrently is tested on its own)
    procs = start_all([["worker", str(home), journal, w, str(100 + i), str(OPS), str(go)]
                       for i, w in enumerate(workers)], go)
    results = finish(procs)
    records: list[dict[str, Any]] = []
    retried = 0
    for rc, stdout, stderr in results:
        assert rc == 0, stderr
        assert "Traceback" not in stderr and "warning: projections not caught up" not in stderr, stderr
        lines = [json.loads(line) for line in stdout.splitlines()]
        records += [r for r in lines if "op" in r]
        retried += sum(r.get("conflicts", 0) for r in lines)
    print(f"{len(records)} commands, {retried} optimistic-concurrency retries")
    assert len(records) == 4 * OPS
    codes = Counter(r["code"] for r in records)
    assert "concurrency_conflict" not in codes, codes  # retried until it committed
    assert codes["ok"] > 20, codes

    ledger = h.ledger_for(home)
    try:
        events = h.journal_events(ledger)
        by_position = {e["position"]: e for e in events}
        reported: dict[int, str] = {}
        for r in records:
            for p in r["positions"]:
                assert p not in reported, f"position {p} reported by {reported[p]} and {r['worker']}"
                reported[p] = r["worker"]
                assert p in by_position, f"{r} reported position {p}, which is not in the journal"
                assert by_position[p]["state"]["actor"]["principal"] == f"user:{r['worker']}"
        assert set(reported) == set(by_position), (
            f"appended but never reported: {sorted(set(by_position) - set(reported))[:10]}")
        assert [e["position"] for e in events] == list(range(1, len(events) + 1))

        report = verify_journal(ledger.app)
        assert report.ok, report.problems

        # each version installed exactly once, the other attempts were no-ops or conflicts
        installs = Counter((e["stream"], e["state"]["version"]) for e in events if e["kind"] == "skill.installed")
        assert installs and set(installs.values()) == {1}, installs
        for (stream, version) in installs:
            attempts = [r for r in records if r["op"] == "install" and r["code"] == "ok"
                        and f"skill:{r['skill_id']}" == stream and r["version"] == version]
            assert sum(not r["already_installed"] for r in attempts) == 1, attempts
        conflicts = [r for r in records if r["code"] == "version_conflict"]
        for r in conflicts:  # the same artifact refused again for the same reason records nothing more
            assert [by_position[p]["kind"] for p in r["positions"]] in ([], ["artifact.rejected"])
        rejected = Counter((e["stream"], e["state"]["error_code"], e["state"]["message"],
                            json.dumps(e["state"]["details"], sort_keys=True))
                           for e in events if e["kind"] == "artifact.rejected")
        assert set(rejected.values()) <= {1}, rejected

        # the workers' own catch-ups left the views at the head, equal to a serial replay
        problems = h.state_problems(ledger) + h.projection_mismatches(ledger, tmp_path, batches=(None, 5))
        assert not problems, "\n".join(problems)
        live = h.live_views(ledger)
        try:
            rows = {(r[0], r[1]): (r[2], r[3]) for r in live.con.execute(
                "SELECT skill_id, version, status, current FROM versions WHERE installed = 1")}
        finally:
            live.close()
        expected = {}
        for skill_id in ledger.skill_ids():
            skill = ledger.load(Skill, skill_id)
            for v in skill.installed_versions():
                expected[(skill_id, v.version)] = (v.status, int(skill.current == v.version))
        assert rows == expected
    finally:
        ledger.close()


@pytest.mark.parametrize("same_payload", [True, False])
@pytest.mark.parametrize("homes", ["one_home", "two_homes_one_journal"])
def test_two_cli_installs_of_one_version_race(tmp_path: Path, same_payload: bool, homes: str) -> None:
    first = h.write(tmp_path, "a.palyra-skill", artifact_bytes("alpha-1.0.0"))
    second = h.write(tmp_path, "b.palyra-skill",
                     artifact_bytes("alpha-1.0.0" if same_payload else "alpha-1.0.0-other"))
    journal = str(tmp_path / "h0" / "journal.db")
    home_of = [tmp_path / "h0", tmp_path / ("h0" if homes == "one_home" else "h1")]
    trusted = f"acme={h.key_hex(h.SEEDS['acme'])}"
    go = tmp_path / "go"
    h.ledger_for(home_of[0]).close()  # the journal exists (creating it concurrently is tested on its own)
    procs = start_all([["cli-at", str(go), "--home", str(home_of[i]), "--journal", journal, "--json",
                        "--actor", f"user:p{i}", "install", "--artifact", art, "--trusted-publisher", trusted]
                       for i, art in enumerate([first, second])], go)
    results = finish(procs)
    docs = []
    for rc, stdout, stderr in results:
        assert "Traceback" not in stderr, stderr
        docs.append((rc, json.loads(stdout)))
        assert rc in (0, 3), f"exit {rc}: {stderr}"
    rcs = sorted(rc for rc, _ in docs)
    if same_payload:
        assert rcs == [0, 0], docs
        assert sorted(d["already_installed"] for _rc, d in docs) == [False, True], docs
    else:
        assert rcs == [0, 3], docs
        loser = next(d for rc, d in docs if rc == 3)
        assert loser["error"]["code"] == "version_conflict"
    ledger = h.ledger_for(home_of[0])
    try:
        events = h.journal_events(ledger)
        assert [e["kind"] for e in events].count("skill.installed") == 1
        assert [e["kind"] for e in events].count("publisher.key_allowlisted") == 1
        assert verify_journal(ledger.app).ok
        winner = next(d for rc, d in docs if rc == 0 and not d["already_installed"])
        assert set(winner["positions"]) <= {e["position"] for e in events}
    finally:
        ledger.close()


def test_processes_opening_a_new_journal_at_once_all_succeed(tmp_path: Path) -> None:
    """The first commands on a new home often start together (a provisioning script, two
    terminals). Every command opens the journal with CREATE_TABLE: on a new file that
    switches it to WAL mode, which SQLite refuses at once with 'database is locked' (no
    busy wait) while another connection has the file open, and the create statements run
    in a deferred transaction whose read-then-write upgrade fails the same way when another
    process wrote in between. Either must be waited for or retried, never surface as
    exit 9 (journal_unavailable)."""
    rounds, processes = 30, 4
    procs = [subprocess.Popen([h.PYTHON, str(HERE), "open-rounds", str(tmp_path), str(rounds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=h.cli_env(),
                              cwd=str(h.ROOT)) for _ in range(processes)]
    try:
        for p in procs:
            line = p.stdout.readline()
            assert line.strip() == "ready", line + p.stderr.read()
        failures = []
        for i in range(rounds):
            (tmp_path / f"go-{i}").touch()
            for p in procs:
                line = p.stdout.readline().strip()
                if not line.endswith(" ok"):
                    failures.append(line)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert not failures, f"{len(failures)} of {rounds * processes} opens failed, e.g. {failures[0]}"


def test_concurrent_rebuilds_of_one_home_take_turns(tmp_path: Path) -> None:
    """Three ``index rebuild`` processes (sharded, through the crash driver's threshold) and
    readers at once: the rebuilds take turns on the lock beside views.db, every one
    succeeds, and the result equals a rebuild, with nothing half-built left behind."""
    home = tmp_path / "home"
    ledger = h.ledger_for(home)
    try:
        for skill_id, publisher in (("acme.alpha", "acme"), ("globex.gamma", "globex"), ("acme.beta", "acme")):
            install(ledger, f"/a/{skill_id}", data=h.build(skill_id, "1.0.0", publisher), allow_tofu=True)
            for i in range(20):
                lifecycle.quarantine(ledger, skill_id, None, f"cycle {i}")
                lifecycle.enable(ledger, skill_id, None, f"cycle {i}")
        h.catch_up(ledger)
    finally:
        ledger.close()
    driver = Path(__file__).resolve().parent / "crash_driver.py"
    env = h.cli_env(SKILLS_REBUILD_PROCESSES="2", SKILLS_TEST_SHARD_MIN_EVENTS="1")
    rebuilds = [subprocess.Popen([h.PYTHON, str(driver), "cli", "--home", str(home), "--json", "index", "rebuild"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(h.ROOT))
                for _ in range(3)]
    readers = [h.run_cli("--json", "list", home=home) for _ in range(3)]
    results = [p.communicate(timeout=120) for p in rebuilds]
    for proc, (out, err) in zip(rebuilds, results):
        assert proc.returncode == 0, err
        assert json.loads(out)["replayed"] > 200
        assert "Traceback" not in err
    for r in readers:
        assert r.returncode == 0 and len(json.loads(r.stdout)["entries"]) == 3, r.stderr
    leftovers = [p.name for p in home.iterdir() if "-shard" in p.name or p.name.endswith(".rebuild")]
    assert leftovers == []
    ledger = h.ledger_for(home)
    try:
        assert h.projection_mismatches(ledger, tmp_path) == []
    finally:
        ledger.close()
