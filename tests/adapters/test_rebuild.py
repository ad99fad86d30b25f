"""Sharded rebuilds with real worker processes (``adapters.rebuild``): the merged views
equal a rebuild in one process, events appended meanwhile are caught up, and a worker that
fails, dies or leaves an incomplete file makes the rebuild fall back to one process."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import helpers_ledger as h
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skill_ledger.adapters.readmodel.rebuild import (
    FORK_MIN_EVENTS,
    PROCESSES_ENV,
    SHARDED_MIN_EVENTS,
    SubprocessShards,
    process_count,
    rebuild_views,
    shard_workers,
)
from skill_ledger.adapters.readmodel.views import discard, journal_identity
from skill_ledger.adapters.usecases import lifecycle, trust
from skill_ledger.adapters.usecases.install import install
from skill_ledger.domain.errors import ConfigurationError
from skill_ledger.domain.events import stream_uuid
from skill_ledger.projections.replay import diff
from skill_ledger.projections.shards import MAX_SHARDS, Shard, in_shard, shard
from skill_ledger.projections.store import ViewStore

# Skills whose streams end in different hex digits (so every shard count below splits them).
FLEET = [("acme.alpha", "acme"), ("acme.beta", "acme"), ("globex.gamma", "globex"), ("acme.echo", "acme"),
         ("acme.other", "acme"), ("globex.delta", "globex"), ("globex.eps", "globex")]


@pytest.fixture(scope="module")
def fleet_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal with a few hundred events over seven skills and two publishers, with
    quarantines, a removal, a rollback, a rejected artifact and a revoked key (whose
    quarantines reach skills in every shard)."""
    home = tmp_path_factory.mktemp("fleet") / "home"
    ledger = h.ledger_for(home)
    try:
        for skill_id, publisher in FLEET:
            for version in ("1.0.0", "1.1.0"):
                install(ledger, f"/a/{skill_id}-{version}", data=h.build(skill_id, version, publisher), allow_tofu=True)
        for round_ in range(6):
            for skill_id, _p in FLEET:
                lifecycle.quarantine(ledger, skill_id, None, f"round {round_}")
                lifecycle.enable(ledger, skill_id, None, f"round {round_}")
        lifecycle.rollback(ledger, "acme.alpha", "1.0.0", "regression")
        lifecycle.remove(ledger, "globex.eps", "1.1.0", "unused")
        with pytest.raises(Exception):
            install(ledger, "/a/corrupt", data=h.corrupt(h.build("acme.beta", "2.0.0", "acme")))
        trust.revoke(ledger, "globex", h.key_hex(h.SEEDS["globex"]), "compromised")
        h.catch_up(ledger)
    finally:
        ledger.close()
    return home


def rebuild_into(home: Path, path: Path, shards=None, notes: list[str] | None = None) -> ViewStore:
    ledger = h.ledger_for(home)
    try:
        store = ViewStore(path, journal_identity=journal_identity(ledger),
                          notify=(notes.append if notes is not None else None))
        rebuild_views(store, ledger.app.recorder, shards=shards, min_events=0)
        return store
    finally:
        ledger.close()


def serial(home: Path, tmp_path: Path) -> ViewStore:
    return rebuild_into(home, tmp_path / "serial.db")


FORKS = pytest.mark.parametrize("fork", [True, False], ids=["forked", "interpreter"])


@FORKS
@pytest.mark.parametrize("count", [2, 3, 5])
def test_sharded_rebuild_equals_a_rebuild_in_one_process(count: int, fork: bool, fleet_home: Path,
                                                         tmp_path: Path) -> None:
    """Shards folded by forks of this process or by new interpreters, merged: the views one
    process builds."""
    one = serial(fleet_home, tmp_path)
    notes: list[str] = []
    shards = SubprocessShards(h.settings_for(fleet_home), count, fork=fork)
    assert shards.min_events == (FORK_MIN_EVENTS if fork else SHARDED_MIN_EVENTS)
    sharded = rebuild_into(fleet_home, tmp_path / "sharded.db", shards, notes)
    try:
        assert notes == []
        assert diff(one, sharded) == []
        assert sharded.positions() == one.positions()
        assert h.dump_difference(h.raw_dump(one.path), h.raw_dump(sharded.path)) == []
        # no shard files are left beside it, and the merged file is no shard's
        assert sorted(p.name for p in tmp_path.iterdir() if "-shard" in p.name) == []
        assert sharded.con.execute("SELECT count(*) FROM meta WHERE key='shard'").fetchone()[0] == 0
        assert one.con.execute("SELECT count(*) FROM versions WHERE key_revoked = 1").fetchone()[0] > 0
    finally:
        discard(one)
        discard(sharded)


class _AppendingShards(SubprocessShards):
    """Appends events to the journal while the workers run (a command during a rebuild)."""

    def start(self, path, s, until, journal_identity):
        worker = super().start(path, s, until, journal_identity)
        ledger = h.ledger_for(self.settings.home)
        try:
            lifecycle.quarantine(ledger, "globex.gamma", None, f"during the rebuild ({s.index})")
        finally:
            ledger.close()
        return worker


def test_events_appended_during_a_sharded_rebuild_are_caught_up(fleet_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    import shutil

    shutil.copytree(fleet_home, home)
    sharded = rebuild_into(home, tmp_path / "sharded.db", _AppendingShards(h.settings_for(home), 3))
    one = serial(home, tmp_path)
    try:
        ledger = h.ledger_for(home)
        head = ledger.head()
        ledger.close()
        assert set(sharded.positions().values()) == {head}
        assert diff(one, sharded) == []
    finally:
        discard(one)
        discard(sharded)


class _BrokenShards(SubprocessShards):
    """Workers that fail in one of several ways."""

    def __init__(self, settings, count, how: str, fork: bool) -> None:
        super().__init__(settings, count, fork=fork)
        self.how = how

    def start(self, path, s, until, journal_identity):
        if self.how == "bad-journal":
            self.settings = h.resolve(home=str(self.settings.home), journal=str(Path(path).parent / "missing.db"),
                                      actor="user:test")
        if self.how == "short":
            until -= 5  # the worker stops early: its file is not complete up to the head
        if self.how == "wrong-identity":
            journal_identity = "0" * 64
        worker = super().start(path, s, until, journal_identity)
        if self.how == "killed":
            os.kill(worker.pid if self.fork else worker.proc.pid, signal.SIGKILL)
        assert hasattr(worker, "pid") == self.fork  # a fork, or a new interpreter, as asked
        return worker


@FORKS
@pytest.mark.parametrize("how", ["bad-journal", "short", "wrong-identity", "killed"])
def test_a_failing_shard_falls_back_to_one_process(how: str, fork: bool, fleet_home: Path, tmp_path: Path) -> None:
    notes: list[str] = []
    one = serial(fleet_home, tmp_path)
    sharded = rebuild_into(fleet_home, tmp_path / "sharded.db", _BrokenShards(h.settings_for(fleet_home), 2, how, fork),
                           notes)
    try:
        assert len(notes) == 1 and "rebuilding in one process" in notes[0], notes
        assert diff(one, sharded) == []
        assert sorted(p.name for p in tmp_path.iterdir() if "-shard" in p.name) == []
    finally:
        discard(one)
        discard(sharded)


def test_a_worker_stops_when_its_rebuild_is_abandoned(fleet_home: Path, tmp_path: Path) -> None:
    """A worker whose parent is gone (the rebuild was killed) stops at its next batch
    instead of finishing a file nobody will merge."""
    import subprocess
    import sys

    env = {**os.environ, "SKILLS_JOURNAL": h.settings_for(fleet_home).journal_url,
           "PYTHONPATH": str(h.ROOT)}
    out = tmp_path / "orphan.db"
    # --parent names a process that is not this worker's parent: as if it had died
    proc = subprocess.run([sys.executable, "-m", "skill_ledger.adapters.readmodel.rebuild", "--shard", "1/2", "--until", "100000",
                           "--output", str(out), "--parent", "1"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=str(h.ROOT))
    assert proc.returncode == 3, proc.stderr


def test_process_count_from_the_environment() -> None:
    assert process_count({PROCESSES_ENV: "3"}) == 3
    assert 1 <= process_count({}) <= 4
    for bad in ("0", "17", "two", "-1"):
        with pytest.raises(ConfigurationError):
            process_count({PROCESSES_ENV: bad})
    settings = h.settings_for("/tmp/unused-home")
    os.environ[PROCESSES_ENV] = "1"
    try:
        assert shard_workers(settings) is None
    finally:
        del os.environ[PROCESSES_ENV]


def test_a_bad_process_count_is_a_configuration_error(tmp_path: Path) -> None:
    proc = h.run_cli("index", "rebuild", home=tmp_path / "home", env=h.cli_env(**{PROCESSES_ENV: "lots"}))
    assert proc.returncode == 2 and proc.stderr.startswith("error[configuration_error]: "), proc.stderr
    assert h.run_cli("index", "rebuild", home=tmp_path / "home",
                     env=h.cli_env(**{PROCESSES_ENV: "2"})).returncode == 0


topics = st.sampled_from(["skill.installed.v1", "skill.audited.v1", "publisher.key_revoked.v1",
                          "policy.changed.v1", "artifact.rejected.v1", "journal.checkpoint.v1"])


@given(topic=topics, name=st.text(min_size=1, max_size=20), count=st.integers(1, MAX_SHARDS))
def test_every_event_is_folded_by_the_right_shards(topic: str, name: str, count: int) -> None:
    oid = stream_uuid(f"{topic.split('.')[0]}:{name}").hex
    folded_by = [k for k in range(count) if in_shard(topic, oid, Shard(k, count))]
    if topic.startswith("skill."):
        assert len(folded_by) == 1  # each skill stream in exactly one shard
        assert in_shard(topic, str(stream_uuid(f"skill:{name}")), Shard(folded_by[0], count))  # dashes or not
    elif topic.startswith("publisher."):
        assert folded_by == list(range(count))  # trust state: every shard
    else:
        assert folded_by == [0]


def test_shard_bounds() -> None:
    assert shard(0, 1).digits() == "0123456789abcdef"
    assert "".join(sorted("".join(shard(k, 3).digits() for k in range(3)))) == "0123456789abcdef"
    for index, count in ((0, 0), (1, 1), (0, 17), (-1, 2)):
        with pytest.raises(ValueError):
            shard(index, count)


class _RecordingShards(SubprocessShards):
    """Auto-chosen workers, their kinds recorded."""

    kinds: list[str]

    def start(self, path, s, until, journal_identity):
        worker = super().start(path, s, until, journal_identity)
        self.kinds.append("fork" if hasattr(worker, "pid") else "interpreter")
        return worker


def test_workers_are_forks_only_while_no_other_thread_runs(fleet_home: Path, tmp_path: Path) -> None:
    """A fork copies no thread but every lock one holds: with another thread running (an MCP
    server's, the runner's epoch ticker) the workers are new interpreters, with the same views."""
    import threading

    settings = h.settings_for(fleet_home)
    one = serial(fleet_home, tmp_path)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    results = {}
    try:
        for running in (False, True):
            if running:
                other.start()
            elif threading.active_count() != 1:
                continue  # (a thread another test left behind: only the second half applies)
            shards = _RecordingShards(settings, 2)
            shards.kinds = []
            results[running] = rebuild_into(fleet_home, tmp_path / f"auto-{running}.db", shards)
            assert shards.kinds == (["interpreter"] if running else ["fork"])
            assert diff(one, results[running]) == []
    finally:
        stop.set()
        for store in (one, *results.values()):
            discard(store)
