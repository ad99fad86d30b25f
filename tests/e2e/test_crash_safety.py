"""Crash safety: SIGKILL a ``skills`` process at many points of install, remove,
quarantine and rebuild (crash points wrapped around the real functions by
``crash_driver.py``), and at random times during a stream of commands and of rebuilds.

After every crash, and again after the restart (the next command), the state must be
sound (events.md guarantees 3 and 4, blobstore ordering rule):

* ``skills journal verify`` passes;
* every install in the journal is complete (verified, audited, installed, current,
  activated|quarantined) or absent; a crash inside the journal transaction leaves none
  of the command's events;
* the views, as the crash left them, show no version installed or active that the
  journal (up to the views' position) does not;
* every blob a still-installed version references exists with its digest (orphans are
  allowed);
* after the restart the projections equal a full rebuild, row for row, and the
  interrupted command can simply be run again.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import helpers_ledger as h
import pytest

DRIVER = Path(__file__).resolve().parent / "crash_driver.py"
sys.path.insert(0, str(DRIVER.parent))
from crash_driver import POINTS  # noqa: E402

from skill_ledger.adapters.usecases import lifecycle  # noqa: E402
from skill_ledger.adapters.usecases.install import install  # noqa: E402

pytestmark = pytest.mark.slow


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("artifacts")
    return {
        "alpha1": h.write(d, "alpha-1.0.0.palyra-skill", h.build("acme.alpha", "1.0.0", "acme")),
        "alpha11": h.write(d, "alpha-1.1.0.palyra-skill", h.build("acme.alpha", "1.1.0", "acme")),
        "gamma1": h.write(d, "gamma-1.0.0.palyra-skill", h.build("globex.gamma", "1.0.0", "globex")),
        "delta1": h.write(d, "delta-1.0.0.palyra-skill", h.build("acme.delta", "1.0.0", "acme")),
    }


@pytest.fixture(scope="module")
def base_home(tmp_path_factory: pytest.TempPathFactory, artifacts: dict[str, str]) -> Path:
    """acme.alpha 1.0.0 and globex.gamma 1.0.0 installed, acme.alpha quarantined once and
    re-enabled, views caught up; copied for each case."""
    home = tmp_path_factory.mktemp("base") / "home"
    ledger = h.ledger_for(home)
    try:
        install(ledger, artifacts["alpha1"], allow_tofu=True)
        install(ledger, artifacts["gamma1"], allow_tofu=True)
        lifecycle.quarantine(ledger, "acme.alpha", None, "base")
        lifecycle.enable(ledger, "acme.alpha", None, "base")
        h.catch_up(ledger)
    finally:
        ledger.close()
    return home


@pytest.fixture(scope="module")
def big_home(tmp_path_factory: pytest.TempPathFactory, base_home: Path) -> Path:
    """The base home plus ~300 more events (quarantine/enable cycles), for rebuild crashes."""
    home = tmp_path_factory.mktemp("big") / "home"
    shutil.copytree(base_home, home)
    ledger = h.ledger_for(home)
    try:
        for i in range(60):
            skill = "acme.alpha" if i % 2 else "globex.gamma"
            lifecycle.quarantine(ledger, skill, None, f"cycle {i}")
            lifecycle.enable(ledger, skill, None, f"cycle {i}")
        h.catch_up(ledger)
        assert ledger.head() > 250
    finally:
        ledger.close()
    return home


def fresh(template: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(template, home)
    return home


def crash(home: Path, point: str, *args: str, after: int = 1, batch: int | None = None,
          **extra_env: str) -> subprocess.CompletedProcess:
    env = h.cli_env(SKILLS_TEST_CRASH_AT=point, SKILLS_TEST_CRASH_AFTER=str(after), **extra_env)
    if batch:
        env["SKILLS_TEST_BATCH"] = str(batch)
    proc = subprocess.run([h.PYTHON, str(DRIVER), "cli", "--home", str(home), *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=str(h.ROOT))
    assert proc.returncode == -signal.SIGKILL, (
        f"crash point {point} (hit {after}) was never reached: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def head_of(home: Path) -> int:
    ledger = h.ledger_for(home)
    try:
        return ledger.head()
    finally:
        ledger.close()


def assert_sound_after_crash(home: Path) -> None:
    """The checks of the module docstring: before the restart, then after it."""
    # the views as the crash left them (no catch-up yet)
    ledger = h.ledger_for(home)
    try:
        problems = h.views_problems(home / "views.db", h.journal_events(ledger))
    finally:
        ledger.close()
    assert not problems, problems
    verify = h.run_cli("--json", "journal", "verify", home=home)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["ok"] is True
    # restart: the next read catches up (or rebuilds) and must not fail
    listed = h.run_cli("--json", "list", home=home)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    ledger = h.ledger_for(home)
    try:
        problems = h.state_problems(ledger) + h.projection_mismatches(ledger, home.parent)
    finally:
        ledger.close()
    assert not problems, "\n".join(problems)
    # what `skills list` shows is exactly the journal's installed versions
    entries = {(e["skill_id"], e["version"]) for e in json.loads(listed.stdout)["entries"]}
    ledger = h.ledger_for(home)
    try:
        assert entries == set(h.installed_versions_from_journal(h.journal_events(ledger)))
    finally:
        ledger.close()


# --- crash points during one command ------------------------------------------------------

# point -> was the command's journal transaction committed when the process died?
INSTALL_POINTS = {
    "blob.before_put": False,
    "fs.before_rename": False,
    "blob.after_put": False,
    "ledger.before_save": False,
    "journal.before_chain": False,
    "journal.before_commit": False,
    "ledger.after_save": True,
    "views.before_catch_up": True,
    "views.batch": True,
    "views.before_commit": True,
    "views.after_catch_up": True,
}


@pytest.mark.parametrize("point", sorted(INSTALL_POINTS))
def test_install_killed_at(point: str, base_home: Path, tmp_path: Path, artifacts: dict[str, str]) -> None:
    home = fresh(base_home, tmp_path)
    before = head_of(home)
    crash(home, point, "install", "--artifact", artifacts["alpha11"])
    committed = INSTALL_POINTS[point]
    after = head_of(home)
    assert (after > before) is committed, f"head {before} -> {after} after a crash at {point}"
    if committed:
        assert after == before + 5  # verified, audited, installed, current_changed, activated
    assert_sound_after_crash(home)
    # the interrupted install can be repeated: it completes, or was already complete
    again = h.run_cli("--json", "install", "--artifact", artifacts["alpha11"], home=home)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["status"] == "active" and result["current"] is True
    assert result["already_installed"] is committed
    assert_sound_after_crash(home)


def test_first_install_on_a_new_home_killed_before_commit(tmp_path: Path, artifacts: dict[str, str]) -> None:
    """The very first command: a TOFU pin and the install in one transaction; none of it
    may survive, and the pin must not survive without the install."""
    home = tmp_path / "home"
    crash(home, "journal.before_commit", "install", "--artifact", artifacts["delta1"], "--allow-tofu")
    assert head_of(home) == 0
    assert_sound_after_crash(home)
    again = h.run_cli("--json", "install", "--artifact", artifacts["delta1"], "--allow-tofu", home=home)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["trust_decision"] == "tofu_newly_pinned"


@pytest.mark.parametrize("point", ["ledger.after_save", "blob.before_delete", "journal.before_commit"])
def test_remove_killed_at(point: str, base_home: Path, tmp_path: Path) -> None:
    """The blob is released only after the removal is committed: a crash in between
    leaves an orphan blob (allowed), never a recorded version without its blob."""
    home = fresh(base_home, tmp_path)
    blobs_before = set(os.listdir(home / "blobs" / "sha256"))
    crash(home, point, "remove", "globex.gamma", "--reason", "crash test")
    assert set(os.listdir(home / "blobs" / "sha256")) == blobs_before  # nothing deleted yet
    assert_sound_after_crash(home)


@pytest.mark.parametrize("point", ["journal.before_chain", "journal.before_commit", "views.before_commit"])
def test_quarantine_killed_at(point: str, base_home: Path, tmp_path: Path) -> None:
    home = fresh(base_home, tmp_path)
    before = head_of(home)
    crash(home, point, "quarantine", "acme.alpha", "--reason", "crash test")
    assert head_of(home) == before + (1 if point.startswith("views.") else 0)
    assert_sound_after_crash(home)


# point, hit, batch size
REBUILD_POINTS = [
    ("views.before_create", 1, None),
    ("views.batch", 2, 32),         # two batches committed, the third not started
    ("views.before_commit", 2, 32),  # inside the second batch's transaction
    ("views.before_commit", 1, None),  # the whole journal in one transaction
]


@pytest.mark.parametrize("point,after,batch", REBUILD_POINTS)
def test_rebuild_killed_at(point: str, after: int, batch: int | None, big_home: Path, tmp_path: Path) -> None:
    home = fresh(big_home, tmp_path)
    crash(home, point, "index", "rebuild", after=after, batch=batch)
    assert_sound_after_crash(home)


# point, hit, batch size: a rebuild sharded between this process and a worker
SHARDED_REBUILD_POINTS = [
    ("views.batch", 2, 32),            # shard 0 half folded, the worker running
    ("views.before_merge", 1, None),   # shard 0 folded, the worker's file not merged
    ("views.after_merge", 1, None),    # merged, not yet swapped in
]


def shard_workers_of(home: Path) -> list[int]:
    """Rebuild worker processes still working for ``home`` once the rebuild was killed, found by
    their command line: a new interpreter's names the rebuild module and the home's files; a
    fork's is its parent's, the crash driver's, which names the home (and the driver is gone)."""
    out = []
    for pid in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        mentions_home = any(str(home).encode() in part for part in cmdline)
        worker = b"skill_ledger.adapters.readmodel.rebuild" in cmdline or any(
            part.endswith(b"crash_driver.py") for part in cmdline)
        if mentions_home and worker and state != "Z":
            out.append(int(pid))
    return out


@pytest.mark.parametrize("point,after,batch", SHARDED_REBUILD_POINTS)
def test_sharded_rebuild_killed_at(point: str, after: int, batch: int | None, big_home: Path,
                                   tmp_path: Path) -> None:
    home = fresh(big_home, tmp_path)
    crash(home, point, "index", "rebuild", after=after, batch=batch, SKILLS_REBUILD_PROCESSES="2",
          SKILLS_TEST_SHARD_MIN_EVENTS="1")
    assert_sound_after_crash(home)
    deadline = time.monotonic() + 60  # an orphaned worker finishes or stops at its next batch
    while shard_workers_of(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shard_workers_of(home) == []
    again = h.run_cli("--json", "index", "rebuild", home=home, env=h.cli_env(SKILLS_REBUILD_PROCESSES="2"))
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in home.iterdir() if "-shard" in p.name or p.name.endswith(".rebuild")) == []
    assert_sound_after_crash(home)


def test_sharded_rebuild_through_the_cli(big_home: Path, tmp_path: Path) -> None:
    """Not killed: the driver's sharded ``index rebuild`` equals a rebuild in one process."""
    home = fresh(big_home, tmp_path)
    proc = subprocess.run([h.PYTHON, str(DRIVER), "cli", "--home", str(home), "--json", "index", "rebuild"],
                          capture_output=True, text=True, timeout=120, cwd=str(h.ROOT),
                          env=h.cli_env(SKILLS_REBUILD_PROCESSES="3", SKILLS_TEST_SHARD_MIN_EVENTS="1"))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert json.loads(proc.stdout)["replayed"] == head_of(home)
    assert_sound_after_crash(home)


# --- kills at random times ----------------------------------------------------------------


def kill_at_random(args: list[str], rng: random.Random, window: float, env: dict[str, str] | None = None) -> int:
    """Start the driver, wait for it to be ready, SIGKILL it after a random delay; the
    number of commands it completed."""
    proc = subprocess.Popen([h.PYTHON, str(DRIVER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env or h.cli_env(), cwd=str(h.ROOT))
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", line + proc.stderr.read()
        time.sleep(rng.uniform(0.0, window))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, err
    assert "Traceback" not in err, err
    return out.count("done")


def test_commands_killed_at_random_times(base_home: Path, tmp_path: Path) -> None:
    home = fresh(base_home, tmp_path)
    rng = random.Random(20261125)
    completed = 0
    for round_ in range(6):
        completed += kill_at_random(["loop", str(home), str(round_)], rng, 1.2)
        assert_sound_after_crash(home)
    assert completed > 10, "the loop hardly ran: the kills were not exercising anything"


def test_rebuilds_killed_at_random_times(big_home: Path, tmp_path: Path) -> None:
    home = fresh(big_home, tmp_path)
    rng = random.Random(7)
    for _ in range(4):
        kill_at_random(["rebuild", str(home)], rng, 0.6, env=h.cli_env(SKILLS_TEST_BATCH="16"))
        assert_sound_after_crash(home)


def test_every_driver_point_is_exercised() -> None:
    used = (set(INSTALL_POINTS) | {p for p, _a, _b in REBUILD_POINTS + SHARDED_REBUILD_POINTS}
            | {"blob.before_delete"})
    assert used == set(POINTS), set(POINTS) ^ used


def test_the_crash_hook_fires_only_when_armed_and_on_the_nth_hit() -> None:
    from crash_hooks import crash_point, hits

    crash_point("never.armed")  # unset: a no-op in this process
    assert hits("never.armed") == 0
    script = (f"import sys; sys.path.insert(0, {str(DRIVER.parent)!r}); from crash_hooks import crash_point\n"
              "for i in range(5):\n    crash_point('other'); crash_point('p'); print(i, flush=True)\n")

    def run(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run([h.PYTHON, "-c", script], capture_output=True, text=True, env=h.cli_env(**env),
                              cwd=str(h.ROOT), timeout=60)

    assert run().returncode == 0
    first = run(SKILLS_TEST_CRASH_AT="p")
    assert first.returncode == -signal.SIGKILL and first.stdout == ""
    third = run(SKILLS_TEST_CRASH_AT="p", SKILLS_TEST_CRASH_AFTER="3")
    assert third.returncode == -signal.SIGKILL and third.stdout.split() == ["0", "1"]
