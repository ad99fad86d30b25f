"""The full ``journal verify`` in chunks checked by worker processes (``adapters/journal/scan*.py``)
finds exactly what the one-process pass finds: on an intact journal with version-1 and
version-2 checkpoints and a stored tree, and on journals damaged inside a chunk, across a
chunk boundary and at the end; with forked workers and with new interpreters. Chunks are made
small (16 events) so a small journal has many."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import helpers_ledger as h
import pytest
import tlog_helpers as t

from skill_ledger.adapters.journal import scan, scan_parallel
from skill_ledger.adapters.journal.verify import verify_journal
from skill_ledger.adapters.usecases.checkpoints import home_public_key, read_anchor

CAN_FORK = scan_parallel.can_fork  # the real one (the fixture below chooses how workers start)


@pytest.fixture(params=["fork", "interpreter"], autouse=True)
def start(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the workers start: forks of the test process, or new interpreters."""
    fork = request.param == "fork"  # (even if an earlier test left a thread behind)
    monkeypatch.setattr(scan_parallel, "can_fork", lambda url: fork and url.startswith("sqlite://"))
    return str(request.param)


def test_workers_are_forks_only_for_sqlite_with_no_other_thread() -> None:
    real = CAN_FORK
    assert not real("postgresql://u:p@db/x")
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert not real("sqlite:///x")
    finally:
        release.set()
        thread.join()
    assert real("sqlite:///x") == (sys.platform.startswith("linux") and threading.active_count() == 1)


def both(home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    """(one process, worker processes) reports of the home's journal, problems sorted."""
    settings = h.settings_for(home)
    key, anchor = home_public_key(settings), read_anchor(settings)
    out = []
    ran: list[int] = []
    real_run = scan_parallel.run

    def run(*args: object, **kwargs: object) -> object:
        outcome = real_run(*args, **kwargs)  # type: ignore[arg-type]
        ran.append(outcome.count)
        return outcome

    monkeypatch.setattr(scan_parallel, "run", run)
    for parallel in (False, True):
        if parallel:
            monkeypatch.setattr(scan, "CHUNK_LEVEL", 4)
            monkeypatch.setattr(scan, "PARALLEL_MIN_EVENTS", 0)
            monkeypatch.setattr(scan, "FORK_MIN_EVENTS", 0)
            monkeypatch.setenv(scan.PROCESSES_ENV, "2")
        ledger = h.ledger_for(home)
        try:
            r = verify_journal(ledger.app, key=key, anchor=anchor, fail_closed=True,
                               journal_url=settings.journal_url if parallel else None)
        finally:
            ledger.close()
        d = {f: getattr(r, f) for f in r.__struct_fields__}
        d["problems"] = sorted((p.position, p.code, p.message) for p in r.problems)
        out.append(d)
    assert len(ran) == 1  # the chunks were checked by the workers, not again in one process
    return out[0], out[1]


@pytest.fixture
def journal(home: Path) -> Path:
    seed = bytes([0x55]) * 32
    t.build_journal(home, steps=3)
    t.write_journal_key(home, seed)
    at = t.record_legacy_checkpoint(home, seed)  # a version-1 checkpoint in the middle of a chunk
    t.write_legacy_anchor(home, at)
    t.add_events(home, 7, name="acme.s1")
    t.checkpoint(home)
    t.add_events(home, 9, name="acme.s2")
    t.checkpoint(home)
    t.add_events(home, 3)
    return home


def test_an_intact_journal_verifies_the_same_in_chunks(journal: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one, chunks = both(journal, monkeypatch)
    assert one["ok"] and one["checkpoints"] == 3 and one["events"] > 80
    assert chunks == one


@pytest.mark.parametrize("where", ["inside", "boundary", "end"])
def test_damage_is_found_the_same_in_chunks(journal: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    head = t.head(journal)
    position = {"inside": 21, "boundary": 33, "end": head}[where]
    t.edit_event(journal, position, {"reason": f"edited at {where}"})
    one, chunks = both(journal, monkeypatch)
    assert not one["ok"] and one["first_bad_position"] <= position
    assert chunks == one


def test_a_deleted_event_and_a_rewrite_are_found_the_same_in_chunks(journal: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    head = t.head(journal)
    t.rechain(journal, [p for p in range(1, head + 1) if p != 40])  # one event fewer, every hash recomputed
    one, chunks = both(journal, monkeypatch)
    assert not one["ok"] and {"checkpoint_mismatch"} <= {p[1] for p in one["problems"]}
    assert chunks == one
    con = t.raw(journal)
    t.drop_guard(con)
    con.execute("DELETE FROM stored_events WHERE rowid = 48")
    t.restore_guard(con)
    con.close()
    one, chunks = both(journal, monkeypatch)
    assert (48, "missing_event") in {(p[0], p[1]) for p in one["problems"]}
    assert chunks["problems"] == one["problems"], sorted(set(chunks["problems"]) ^ set(one["problems"]))
    assert chunks == one


def test_a_failing_worker_makes_the_pass_run_in_one_process(journal: Path, monkeypatch: pytest.MonkeyPatch,
                                                            start: str) -> None:
    settings = h.settings_for(journal)
    monkeypatch.setattr(scan, "CHUNK_LEVEL", 4)
    monkeypatch.setattr(scan, "PARALLEL_MIN_EVENTS", 0)
    monkeypatch.setattr(scan, "FORK_MIN_EVENTS", 0)
    monkeypatch.setenv(scan.PROCESSES_ENV, "3")
    if start == "fork":  # the forked worker dies before sending anything
        monkeypatch.setattr(scan_parallel, "_serve", lambda *args: os._exit(3))
    else:  # the interpreter cannot open the journal
        real_start = scan_parallel._start
        monkeypatch.setattr(scan_parallel, "_start", lambda url, tasks: real_start("sqlite:///nowhere/x.db", tasks))
    failed: list[str] = []
    real_run = scan_parallel.run

    def run(*args: object, **kwargs: object) -> object:
        try:
            return real_run(*args, **kwargs)  # type: ignore[arg-type]
        except scan_parallel.WorkerFailed as e:
            failed.append(str(e))
            raise

    monkeypatch.setattr(scan_parallel, "run", run)
    ledger = h.ledger_for(journal)
    try:
        r = verify_journal(ledger.app, key=home_public_key(settings), anchor=read_anchor(settings), fail_closed=True,
                           journal_url=settings.journal_url)
    finally:
        ledger.close()
    assert failed and r.ok and r.checkpoints == 3
