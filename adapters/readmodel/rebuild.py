"""Sharded rebuilds: the worker processes behind ``skills index rebuild``.

``ViewStore.rebuild`` folds shard 0 of the journal itself and asks ``SubprocessShards`` to
start one process per other shard (``projections.shards``). A worker is this module run as
``python -m adapters.rebuild``: it opens the journal read-only, folds its shard up to the
position it was given into a private file, and exits. The journal URL reaches it through
the environment, never the command line (a PostgreSQL URL carries a password, and command
lines are visible to every user of the machine).

``SKILLS_REBUILD_PROCESSES`` sets the number of processes (default: the CPUs this process
may run on, at most 4; ``1`` rebuilds in one process).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from skill_ledger.adapters.settings import Settings
from skill_ledger.domain.errors import ConfigurationError
from skill_ledger.projections.shards import MAX_SHARDS, Shard, shard
from skill_ledger.projections.store import ShardFailed, ViewStore

PROCESSES_ENV = "SKILLS_REBUILD_PROCESSES"
DEFAULT_MAX_PROCESSES = 4
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


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


class SubprocessShards:
    """``projections.store.ShardWorkers`` as child processes of this one."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count

    def start(self, path: Path, s: Shard, until: int, journal_identity: str) -> _Worker:
        env = dict(os.environ)
        env["SKILLS_JOURNAL"] = self.settings.journal_url
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "skill_ledger.adapters.readmodel.rebuild", "--shard", f"{s.index}/{s.count}", "--until", str(until),
               "--output", str(path), "--journal-identity", journal_identity, "--parent", str(os.getpid())]
        try:
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, cwd=str(self.settings.home))
        except OSError as e:
            raise ShardFailed(f"cannot start a rebuild process: {e}") from None
        return _Worker(proc, s)


def shard_workers(settings: Settings) -> SubprocessShards | None:
    """The workers for a rebuild of this home's views (None: rebuild in one process)."""
    count = process_count()
    return SubprocessShards(settings, count) if count > 1 else None


class _ParentGone(Exception):
    pass


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m adapters.rebuild", description=__doc__.split("\n\n")[0])
    p.add_argument("--shard", required=True, help="INDEX/COUNT")
    p.add_argument("--until", type=int, required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--journal-identity", default="")
    p.add_argument("--parent", type=int, default=0, help="stop when this process is gone")
    args = p.parse_args(argv)
    try:
        index, _, count = args.shard.partition("/")
        s = shard(int(index), int(count))
        url = os.environ.get("SKILLS_JOURNAL", "")
        if not url:
            raise ValueError("SKILLS_JOURNAL is not set")
        from skill_ledger.adapters.journal.sqlite import open_journal

        def watch_parent(_n: int) -> None:  # after every batch: an abandoned rebuild stops
            if args.parent and os.getppid() != args.parent:
                raise _ParentGone()

        app = open_journal(url, create=False)
        try:
            store = ViewStore(args.output, journal_identity=args.journal_identity, shard=s)
            try:
                store.catch_up(app.recorder, until=args.until, progress=watch_parent)
            finally:
                store.close()
        finally:
            app.close()
    except _ParentGone:
        return 3
    except Exception as e:  # reported by the parent, which then rebuilds in one process
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
