"""Rebuilding a home's views (``skills index rebuild``), sharded between worker processes.

``rebuild_views`` replays the whole journal into a fresh private file beside the live one
and swaps it in, so readers keep the old views until it is complete and a crash leaves
them intact (and half-built files that the next rebuild deletes). Rebuilds of one views
file take turns (a lock file beside it): two at once would share the half-built files.

From ``SHARDED_MIN_EVENTS`` events on (``FORK_MIN_EVENTS`` when the workers are forks), the
replay is sharded (``projections.shards``): this process folds shard 0 while
``SubprocessShards`` starts one process per other shard. A worker is, for a SQLite journal in
a process with no other thread, a fork of this one (ready in milliseconds: it never touches
this process's connections); else this module run as
``python -m skill_ledger.adapters.readmodel.rebuild`` (about 0.2 s to start). It opens the
journal read-only, folds its shard up to the position it was given into a private file, and
exits; the files are merged into shard 0's (``projections.replay.merge_shard``) and the
events appended meanwhile are caught up. If a shard fails, the rebuild runs again in this
process alone, with a notice. The journal URL reaches a worker through the environment,
never the command line (a PostgreSQL URL carries a password, and command lines are visible
to every user of the machine).

``SKILLS_REBUILD_PROCESSES`` sets the number of processes (default: the CPUs this process
may run on, at most 4; ``1`` rebuilds in one process).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import msgspec

from skill_ledger.adapters.forking import ForkedChild, can_fork, fork_child, said_failure
from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.files import remove_db_files, swap_into_place
from skill_ledger.adapters.storage.locks import exclusive_lock
from skill_ledger.domain.errors import ConfigurationError
from skill_ledger.projections import replay
from skill_ledger.projections.replay import ShardFailed
from skill_ledger.projections.shards import MAX_SHARDS, Shard, shard
from skill_ledger.projections.store import EventSource, Progress, ViewStore

# A rebuild is sharded between processes only from this many events on: below it, starting
# a second process costs more than it saves.
SHARDED_MIN_EVENTS = 20_000
FORK_MIN_EVENTS = 4_000  # ... a fork starts in a few milliseconds


class ShardWorker(Protocol):
    def wait(self) -> None:
        """Block until the worker is done; raise ``ShardFailed`` unless it succeeded."""

    def kill(self) -> None:
        """Stop the worker (the rebuild is abandoned)."""


class ShardWorkers(Protocol):
    """Starts the processes of a sharded rebuild. ``count`` is the number of shards, this
    process's included."""

    count: int
    min_events: int  # events from which sharding pays

    def start(self, path: Path, shard: Shard, until: int, journal_identity: str) -> ShardWorker:
        """Fold ``shard`` of the journal up to position ``until`` into a new file at ``path``."""


# --- the rebuild ---------------------------------------------------------------------------


class RebuildResult(msgspec.Struct, frozen=True):
    replayed: int  # events folded
    position: int  # where the projections stand now


def rebuild_home(settings: Settings, *, notify: Callable[[str], None] | None = None,
                 progress: Callable[[int], contextlib.AbstractContextManager[Progress | None]] | None = None,
                 ) -> RebuildResult:
    """``skills index rebuild``: this home's views replayed from its journal. ``progress(total)``
    gives a context manager around the rebuild that yields a callback for the events done."""
    from skill_ledger.adapters.readmodel.views import journal_identity, open_store
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

    ledger = Ledger(settings)
    try:
        store = open_store(settings.views_path, journal_identity=journal_identity(ledger), notify=notify)
        try:
            with (progress(ledger.head()) if progress is not None else contextlib.nullcontext()) as update:
                replayed = rebuild_views(store, ledger.app.recorder, progress=update, shards=shard_workers(settings))
            return RebuildResult(replayed, store.position())
        finally:
            store.close()
    finally:
        ledger.close()


def rebuild_views(store: ViewStore, source: EventSource, *, progress: Progress | None = None,
                  shards: ShardWorkers | None = None, min_events: int | None = None) -> int:
    """Replay the whole journal into a fresh file beside ``store``'s, then swap it in (the
    store then reads the new file); returns the events replayed. With ``shards`` and at
    least ``min_events`` events (default ``SHARDED_MIN_EVENTS``), sharded."""
    lock = store.path.with_name(store.path.name + ".rebuild-lock")

    def waiting() -> None:
        store.notify(f"notice: another rebuild of {store.path.name} is running; waiting for it")

    with exclusive_lock(lock, on_wait=waiting):
        fresh_path = store.path.with_name(store.path.name + ".rebuild")
        for leftover in fresh_path.parent.glob(f"{fresh_path.name}-shard*"):
            if not leftover.name.endswith(("-wal", "-shm", "-journal")):
                remove_db_files(leftover)
        head = source.max_notification_id() or 0
        try:
            done = _build(store, source, head, fresh_path, progress, shards, min_events)
        except BaseException:
            # Interrupted (Ctrl-C) or failed: the live views stay as they were and the half-built
            # file goes (a crash, which runs no code, leaves it to the next rebuild to delete).
            remove_db_files(fresh_path)
            raise
        store.close()
        remove_db_files(store.path, keep_main=True)
        swap_into_place(fresh_path, store.path)
        store.reopen()
    return done


def _build(store: ViewStore, source: EventSource, head: int, fresh_path: Path, progress: Progress | None,
           shards: ShardWorkers | None, min_events: int | None) -> int:
    """Replay into ``fresh_path`` (sharded when there are workers and enough events); the events folded."""
    if min_events is None:
        min_events = getattr(shards, "min_events", SHARDED_MIN_EVENTS)
    if shards is not None and shards.count > 1 and head >= min_events:
        try:
            return _rebuild_sharded(store, source, head, fresh_path, shards, progress)
        except ShardFailed as e:
            store.notify(f"notice: a rebuild shard failed ({e}); rebuilding in one process")
    fresh = _fresh(store, fresh_path)
    try:
        done = fresh.catch_up(source, progress=progress)
        replay.finish(fresh, live=True)
    finally:
        fresh.close()
    return done


def _fresh(store: ViewStore, path: Path, shard: Shard | None = None, *, new: bool = True) -> ViewStore:
    """A private store at ``path`` for ``store``'s journal (``new``: replacing whatever is there)."""
    if new:
        remove_db_files(path)
    return ViewStore(path, journal_identity=store.journal_identity, notify=store.notify,
                     manifest_facts=store.manifest_facts, scratch=True, shard=shard)


def _rebuild_sharded(store: ViewStore, source: EventSource, head: int, fresh_path: Path, shards: ShardWorkers,
                     progress: Progress | None) -> int:
    count = min(shards.count, MAX_SHARDS)
    paths = [fresh_path.with_name(f"{fresh_path.name}-shard{k}") for k in range(1, count)]
    workers: list[ShardWorker] = []
    try:
        for k, path in enumerate(paths, start=1):
            # The worker finds its file made, so it need not import sqlite-utils to make one.
            _fresh(store, path, Shard(k, count)).close()
            workers.append(shards.start(path, Shard(k, count), head, store.journal_identity))
        fresh = _fresh(store, fresh_path, Shard(0, count))
        try:
            folded = fresh.catch_up(source, until=head, progress=progress)
            for worker in workers:
                worker.wait()
            for k, path in enumerate(paths, start=1):
                replay.merge_shard(fresh, path, Shard(k, count), head)  # through the module: tests wrap it
            replay.end_merge(fresh)
        finally:
            fresh.close()
        if progress is not None:
            progress(head - folded)  # the other shards' events (shard 0 folds all but those)
        fresh = _fresh(store, fresh_path, new=False)  # the merged file, as a whole replay
        try:
            fresh.create_read_indexes()
            done = head + fresh.catch_up(source, progress=progress)  # appended since the start
            replay.finish(fresh, live=True)
        finally:
            fresh.close()
        return done
    except BaseException:
        for worker in workers:
            worker.kill()
        raise
    finally:
        for path in paths:
            remove_db_files(path)


# --- the workers ---------------------------------------------------------------------------


PROCESSES_ENV = "SKILLS_REBUILD_PROCESSES"
DEFAULT_MAX_PROCESSES = 4


def process_count(env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    value = env.get(PROCESSES_ENV, "").strip()
    if value:
        try:
            count = int(value)
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_SHARDS:
            raise ConfigurationError(f"{PROCESSES_ENV} must be a whole number from 1 to {MAX_SHARDS}, got {value!r}")
        return count
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, DEFAULT_MAX_PROCESSES))


class _Worker:
    def __init__(self, proc: subprocess.Popen[bytes], shard: Shard) -> None:
        self.proc = proc
        self.shard = shard
        self._reaped = False

    def wait(self) -> None:
        _, err = self.proc.communicate()
        self._reaped = True
        if self.proc.returncode != 0:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            why = lines[-1] if lines else "no message"
            raise ShardFailed(f"shard {self.shard.index}/{self.shard.count} exited with status "
                              f"{self.proc.returncode}: {why}")

    def kill(self) -> None:
        if self._reaped:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()
        self._reaped = True


class _ForkedWorker:
    """A fork of this process folding one shard (the ``_Worker`` surface)."""

    def __init__(self, child: ForkedChild, shard: Shard) -> None:
        self.child, self.shard = child, shard
        self.pid = child.pid

    def wait(self) -> None:
        failure = self.child.failure()
        if failure is not None:
            raise ShardFailed(f"shard {self.shard.index}/{self.shard.count} {failure}")

    def kill(self) -> None:
        self.child.kill()


class SubprocessShards:
    """``ShardWorkers`` as child processes of this one: ``fork=None``, forks whenever ``can_fork``
    allows it when a worker starts (no other thread then), else new interpreters; True or False
    to choose (the caller answers for the other threads)."""

    def __init__(self, settings: Settings, count: int, *, fork: bool | None = None) -> None:
        self.settings = settings
        self.count = count
        self.fork = fork
        forks = can_fork(settings.journal_url) if fork is None else fork
        self.min_events = FORK_MIN_EVENTS if forks else SHARDED_MIN_EVENTS

    def start(self, path: Path, s: Shard, until: int, journal_identity: str) -> _Worker | _ForkedWorker:
        if self.fork if self.fork is not None else can_fork(self.settings.journal_url):
            return self._fork(path, s, until, journal_identity)
        return self._interpreter(path, s, until, journal_identity)

    def _fork(self, path: Path, s: Shard, until: int, journal_identity: str) -> _ForkedWorker:
        error_file = path.with_name(path.name + ".error")
        url, parent = self.settings.journal_url, os.getpid()
        try:
            child = fork_child(lambda: _fold_shard(url, path, s, until, journal_identity, parent, error_file),
                               error_file)
        except OSError as e:
            raise ShardFailed(f"cannot start a rebuild process: {e}") from None
        return _ForkedWorker(child, s)

    def _interpreter(self, path: Path, s: Shard, until: int, journal_identity: str) -> _Worker:
        env = dict(os.environ)
        env["SKILLS_JOURNAL"] = self.settings.journal_url
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_import_root(), env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "skill_ledger.adapters.readmodel.rebuild", "--shard", f"{s.index}/{s.count}",
               "--until", str(until), "--output", str(path), "--journal-identity", journal_identity,
               "--parent", str(os.getpid())]
        try:
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, cwd=str(self.settings.home))
        except OSError as e:
            raise ShardFailed(f"cannot start a rebuild process: {e}") from None
        return _Worker(proc, s)


def _import_root() -> str:
    """The directory from which this process imports ``skill_ledger`` (a worker imports the same)."""
    import skill_ledger

    return str(Path(skill_ledger.__file__).resolve().parents[1])


def shard_workers(settings: Settings) -> SubprocessShards | None:
    """The workers for a rebuild of this home's views (None: rebuild in one process)."""
    count = process_count()
    return SubprocessShards(settings, count) if count > 1 else None


class _ParentGone(Exception):
    pass


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m skill_ledger.adapters.readmodel.rebuild",
                                description="Fold one shard of the journal into a private views file.")
    p.add_argument("--shard", required=True, help="INDEX/COUNT")
    p.add_argument("--until", type=int, required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--journal-identity", default="")
    p.add_argument("--parent", type=int, default=0, help="stop when this process is gone")
    args = p.parse_args(argv)
    try:
        index, _, count = args.shard.partition("/")
        s = shard(int(index), int(count))
    except ValueError as e:
        return said_failure(e, None)
    return _fold_shard(os.environ.get("SKILLS_JOURNAL", ""), Path(args.output), s, args.until,
                       args.journal_identity, args.parent, None)


def _fold_shard(url: str, output: Path, s: Shard, until: int, journal_identity: str, parent: int,
                error_file: Path | None) -> int:
    """A worker's side: fold shard ``s`` up to ``until`` into ``output``; the exit status. A
    failure is said on stderr (a new interpreter) or in ``error_file`` (a fork)."""
    try:
        if not url:
            raise ValueError("SKILLS_JOURNAL is not set")
        from skill_ledger.adapters.journal.sqlite import open_journal

        def watch_parent(_n: int) -> None:  # after every batch: an abandoned rebuild stops
            if parent and os.getppid() != parent:
                raise _ParentGone()

        app = open_journal(url, create=False)
        try:
            store = ViewStore(output, journal_identity=journal_identity, shard=s)
            try:
                store.catch_up(app.recorder, until=until, progress=watch_parent)
            finally:
                store.close()
        finally:
            app.close()
    except _ParentGone:
        return 3
    except Exception as e:  # noqa: BLE001 - reported by the parent, which then rebuilds in one process
        return said_failure(e, error_file)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
