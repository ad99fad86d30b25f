"""Run skills code in a subprocess with crash points wrapped around the functions that
matter for crash safety, so the crash tests need no hooks inside production code.

    python crash_driver.py cli ARGS...       # `skills ARGS...` with crash points armed
    python crash_driver.py loop HOME SEED    # random commands forever (killed from outside)
    python crash_driver.py rebuild HOME      # `index rebuild` forever (killed from outside)

A point fires when ``SKILLS_TEST_CRASH_AT`` names it (``SKILLS_TEST_CRASH_AFTER=N``: on
its Nth hit): see ``crash_hooks``. ``SKILLS_TEST_BATCH`` makes the projection
catch-up use small batches so a crash can fall between two of them.
``SKILLS_TEST_SHARD_MIN_EVENTS`` lets ``index rebuild`` shard journals of that many events
(with ``SKILLS_REBUILD_PROCESSES``), so a crash can fall between shard 0 and the merge.
"""

from __future__ import annotations

import functools
import os
import random
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
for p in (str(ROOT), str(TESTS), str(Path(__file__).resolve().parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from crash_hooks import crash_point  # noqa: E402

# name -> where it fires (kept in sync with arm() below; the tests iterate over it)
POINTS = {
    "blob.before_put": "install: before the artifact is written to the blob store",
    "fs.before_rename": "install: blob temp file written and fsynced, not yet renamed into place",
    "blob.after_put": "install: blob stored, nothing recorded yet",
    "ledger.before_save": "any command: decided, nothing recorded yet",
    "journal.before_chain": "in the journal transaction: events inserted, chain rows not yet",
    "journal.before_commit": "in the journal transaction: events and chain rows inserted, not committed",
    "ledger.after_save": "any command: events committed, projections not caught up",
    "blob.before_delete": "remove: removal committed, blob not yet deleted",
    "views.before_catch_up": "after the command, before the projections catch up",
    "views.batch": "catch-up/rebuild: a batch committed, the next not started",
    "views.before_commit": "catch-up/rebuild: rows and positions written, not committed",
    "views.before_create": "rebuild: old tables dropped and committed, new schema not created",
    "views.after_catch_up": "after the projections caught up, before the command returns",
    "views.before_merge": "sharded rebuild: shard 0 folded, another shard's file not yet merged",
    "views.after_merge": "sharded rebuild: a shard's file merged, the rebuilt file not yet swapped in",
}


def _around(owner: object, attr: str, before: str | None = None, after: str | None = None) -> None:
    original = getattr(owner, attr, None)
    if original is None:  # renamed upstream: the tests using this point then fail as "never reached"
        print(f"crash_driver: cannot wrap {getattr(owner, '__name__', owner)}.{attr}", file=sys.stderr)
        return

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if before:
            crash_point(before)
        result = original(*args, **kwargs)
        if after:
            crash_point(after)
        return result

    setattr(owner, attr, wrapper)


def arm() -> None:
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    import skill_ledger.adapters.usecases.session as session
    from skill_ledger.adapters.journal.sqlite import ChainedSQLiteRecorder
    from skill_ledger.adapters.storage.blobs import BlobStore
    from skill_ledger.adapters.usecases.unit_of_work import Ledger
    from skill_ledger.projections import replay
    from skill_ledger.projections.store import ViewStore

    _around(BlobStore, "put", "blob.before_put", "blob.after_put")
    _around(BlobStore, "delete", "blob.before_delete")
    _around(os, "replace", "fs.before_rename")
    _around(Ledger, "save", "ledger.before_save", "ledger.after_save")
    # the library's insert (stored_events) runs inside ours (which then writes event_chain)
    _around(SQLiteApplicationRecorder, "_insert_events", None, "journal.before_chain")
    _around(ChainedSQLiteRecorder, "_insert_events", None, "journal.before_commit")
    _around(session, "catch_up_after", "views.before_catch_up", "views.after_catch_up")
    _around(ViewStore, "write_batch", None, "views.before_commit")  # called inside the batch's transaction
    _around(ViewStore, "_create", "views.before_create")
    _around(replay, "merge_shard", "views.before_merge", "views.after_merge")

    # between two batches: catch_up reports progress after each batch's COMMIT
    original = ViewStore.catch_up
    small = os.environ.get("SKILLS_TEST_BATCH")

    def catch_up(self, source, *, until=None, batch=None, progress=None, **kwargs):
        def report(n: int) -> None:
            if progress is not None:
                progress(n)
            crash_point("views.batch")

        if batch is None and small:
            batch = int(small)
        if batch is not None:
            kwargs["batch"] = batch
        return original(self, source, until=until, progress=report, **kwargs)

    ViewStore.catch_up = catch_up  # type: ignore[method-assign]

    # sharded rebuilds of the small test journals (the workers are real processes)
    min_events = os.environ.get("SKILLS_TEST_SHARD_MIN_EVENTS")
    if min_events:
        import skill_ledger.adapters.readmodel.rebuild as rebuild

        rebuild.SHARDED_MIN_EVENTS = rebuild.FORK_MIN_EVENTS = int(min_events)


def run_cli(args: list[str]) -> None:
    arm()
    from skill_ledger.cli.main import cli

    sys.argv = ["skills", *args]
    cli.main(args=args, prog_name="skills")


def loop(home: str, seed: int) -> None:
    """Random lifecycle commands, each like a CLI command (one session, catch-up after)."""
    arm()
    import helpers_ledger as h

    from skill_ledger.adapters.usecases import lifecycle
    from skill_ledger.adapters.usecases.install import install
    from skill_ledger.adapters.usecases.session import ledger_session
    from skill_ledger.domain.errors import SkillLedgerError

    rng = random.Random(seed)
    artifacts = {f"{s}@{v}": h.build(s, v, p) for s, p, vs in LOOP_SKILLS for v in vs}
    settings = h.settings_for(home, command="loop")
    print("ready", flush=True)
    n = 0
    while True:
        choice = rng.random()
        skill = rng.choice([s for s, _p, _vs in LOOP_SKILLS])
        try:
            with ledger_session(settings) as ledger:
                if choice < 0.35:
                    name = rng.choice(sorted(artifacts))
                    install(ledger, f"/loop/{name}", data=artifacts[name], allow_tofu=True)
                elif choice < 0.55:
                    lifecycle.quarantine(ledger, skill, None, f"loop {n}")
                elif choice < 0.75:
                    lifecycle.enable(ledger, skill, None, f"loop {n}")
                elif choice < 0.85:
                    lifecycle.disable(ledger, skill, None, f"loop {n}")
                elif choice < 0.95:
                    lifecycle.remove(ledger, skill, None, f"loop {n}")
                else:
                    lifecycle.rollback(ledger, skill, None, f"loop {n}")
        except SkillLedgerError:
            pass
        n += 1
        print(f"done {n}", flush=True)


LOOP_SKILLS = [
    ("acme.alpha", "acme", ["1.0.0", "1.1.0", "2.0.0"]),
    ("globex.gamma", "globex", ["1.0.0", "2.0.0"]),
]


def rebuild_forever(home: str) -> None:
    arm()
    import helpers_ledger as h

    from skill_ledger.adapters.readmodel.views import journal_identity, open_store

    ledger = h.ledger_for(home, command="rebuild")
    batch = int(os.environ.get("SKILLS_TEST_BATCH") or "50")
    print("ready", flush=True)
    n = 0
    while True:
        store = open_store(ledger.settings.views_path, journal_identity=journal_identity(ledger))
        store.rebuild_tables()
        store.catch_up(ledger.app.recorder, batch=batch)
        store.close()
        n += 1
        print(f"done {n}", flush=True)


def main(argv: list[str]) -> None:
    mode, rest = argv[0], argv[1:]
    if mode == "cli":
        run_cli(rest)
    elif mode == "loop":
        loop(rest[0], int(rest[1]))
    elif mode == "rebuild":
        rebuild_forever(rest[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
