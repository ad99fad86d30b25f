"""Worker processes for ``skills report compliance``: each folds one contiguous range of skill
ids of the report's second pass (``projections.report.skillpass``) into a spool of its own,
which the parent appends to its own in range order, so the document is the one a single
process writes.

A worker is, for a SQLite journal in a process with no other thread, a fork of this one (it is
ready in milliseconds: the modules and the templates are loaded; it opens the journal itself and
never touches this process's connections); else this module run as
``python -m skill_ledger.adapters.usecases.report_workers DIR``, which imports what it needs,
loads the templates and opens the journal read-only meanwhile (about 0.2 s of start-up). Either
is started before the report's first pass and waits for a line on a pipe: ``go`` when its job is
in ``DIR/job.msgpack`` (end of input: no job, it exits). It writes its spool and result in
``DIR``. The journal URL reaches a new interpreter through the environment, never the command
line (a PostgreSQL URL carries a password, and command lines are visible to every user). A
worker stops when its parent is gone. A worker that fails makes the parent fold its range itself.

``SKILLS_REPORT_PROCESSES`` sets the number of processes (the parent included; default: the
CPUs this process may run on, at most 4; ``1``: everything in one process). The journal must
have at least ``min_events`` skill events for a second process to start (``FORK_MIN_EVENTS``
for forks, ``SHARDED_MIN_EVENTS`` for new interpreters).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import msgspec

from skill_ledger.adapters.forking import ForkedChild, can_fork, fork_child, said_failure
from skill_ledger.adapters.settings import Settings
from skill_ledger.domain.errors import ConfigurationError
from skill_ledger.projections.report.engine import SHARDED_MIN_EVENTS
from skill_ledger.projections.report.skillpass import SkillJob, run_skill_job

PROCESSES_ENV = "SKILLS_REPORT_PROCESSES"
MAX_PROCESSES = 16
DEFAULT_MAX_PROCESSES = 4
JOB_FILE = "job.msgpack"
GO = b"go\n"  # on a worker's standard input: its job is in JOB_FILE
ERROR_FILE = "error.txt"  # a forked worker's last words
FORK_MIN_EVENTS = 4_000  # a fork costs a few milliseconds: worth it from a few thousand skill events


def process_count(env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    value = env.get(PROCESSES_ENV, "").strip()
    if value:
        count = int(value) if value.isdigit() else 0
        if not 1 <= count <= MAX_PROCESSES:
            raise ConfigurationError(f"{PROCESSES_ENV} must be a whole number from 1 to {MAX_PROCESSES}, got {value!r}")
        return count
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, DEFAULT_MAX_PROCESSES))


class _Worker:
    def __init__(self, proc: subprocess.Popen[bytes], workdir: Path) -> None:
        self.proc, self.workdir = proc, workdir
        self._reaped = False

    def run(self, job: SkillJob) -> None:
        """Hand the worker its job (a worker that already failed says so in ``wait()``)."""
        (self.workdir / JOB_FILE).write_bytes(msgspec.msgpack.encode(job))
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(GO)
            self.proc.stdin.close()
        except OSError:  # it is gone already
            pass

    def _reap(self) -> bytes:
        """Its standard error, once it has exited (standard input closed first: no job)."""
        assert self.proc.stdin is not None and self.proc.stderr is not None
        if not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        self.proc.wait()
        self._reaped = True
        return err

    def wait(self) -> None:
        err = self._reap()
        if self.proc.returncode != 0:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            raise RuntimeError(f"exit status {self.proc.returncode}: {lines[-1] if lines else 'no message'}")

    def kill(self) -> None:
        if self._reaped:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self._reap()


class _ForkedWorker:
    """A fork of this process waiting for its job (the ``_Worker`` surface)."""

    def __init__(self, child: ForkedChild, go: int, workdir: Path) -> None:
        self.child, self.go, self.workdir = child, go, workdir

    def run(self, job: SkillJob) -> None:
        (self.workdir / JOB_FILE).write_bytes(msgspec.msgpack.encode(job))
        try:
            os.write(self.go, GO)
        except OSError:  # it is gone already (wait() says so)
            pass
        self._close_go()

    def _close_go(self) -> None:
        if self.go >= 0:
            os.close(self.go)
            self.go = -1

    def wait(self) -> None:
        self._close_go()  # (no job: it exits)
        failure = self.child.failure()
        if failure is not None:
            raise RuntimeError(failure)

    def kill(self) -> None:
        self._close_go()
        self.child.kill()


def _fold_range(url: str, workdir: Path, parent: int, go: IO[bytes], error_file: Path | None) -> int:
    """A worker's side (a fork's or a new interpreter's): open the journal, wait for ``go`` on
    ``go``, fold the job's skills; the exit status. A failure is said in ``error_file`` (a fork)
    or on stderr (a new interpreter); the parent then folds the range itself."""
    from skill_ledger.adapters.journal.sqlite import open_journal

    from .reports import JournalSource

    try:
        if not url:
            raise ValueError("SKILLS_JOURNAL is not set")
        app = open_journal(url, create=False)
        try:
            if go.readline() != GO:  # no job: the report did not need this worker
                return 0
            job = msgspec.msgpack.decode((workdir / JOB_FILE).read_bytes(), type=SkillJob)
            run_skill_job(JournalSource(app, job.until), job, workdir, before_each=_watch(parent))
        finally:
            app.close()
    except _ParentGone:
        return 3
    except Exception as e:  # noqa: BLE001 - told to the parent
        return said_failure(e, error_file)
    return 0


def _watch(parent: int) -> Any:
    def watch_parent() -> None:  # before every skill: an abandoned report stops
        if parent and os.getppid() != parent:
            raise _ParentGone()

    return watch_parent


class ReportWorkers:
    """``projections.report.skillpass.SkillWorkers`` as child processes of this one: ``fork=None``,
    forks whenever ``can_fork`` allows it when a worker starts (no other thread then), else new
    interpreters; True or False to choose (the caller answers for the other threads)."""

    def __init__(self, settings: Settings, count: int, *, fork: bool | None = None) -> None:
        self.settings, self.count = settings, count
        self.fork = fork
        forks = can_fork(settings.journal_url) if fork is None else fork
        self.min_events = FORK_MIN_EVENTS if forks else SHARDED_MIN_EVENTS

    def spawn(self, workdir: Path, fmt: str) -> _Worker | _ForkedWorker:
        if self.fork if self.fork is not None else can_fork(self.settings.journal_url):
            try:
                return self._fork(workdir)
            except OSError:  # no fork to be had (process limits): a new interpreter, as elsewhere
                pass
        return self._interpreter(workdir, fmt)

    def _fork(self, workdir: Path) -> _ForkedWorker:
        read_end, write_end = os.pipe()
        url, parent = self.settings.journal_url, os.getpid()

        def work() -> int:
            os.close(write_end)
            with open(read_end, "rb") as go:
                return _fold_range(url, workdir, parent, go, workdir / ERROR_FILE)

        try:
            child = fork_child(work, workdir / ERROR_FILE)
        finally:
            os.close(read_end)
        return _ForkedWorker(child, write_end, workdir)

    def _interpreter(self, workdir: Path, fmt: str) -> _Worker:
        env = dict(os.environ)
        env["SKILLS_JOURNAL"] = self.settings.journal_url
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_import_root(), env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "skill_ledger.adapters.usecases.report_workers", str(workdir),
               "--parent", str(os.getpid()), "--format", fmt]
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, cwd=str(workdir))
        return _Worker(proc, workdir)


def report_workers(settings: Settings) -> ReportWorkers | None:
    """The workers of a report over this journal (None: one process)."""
    count = process_count()
    return ReportWorkers(settings, count) if count > 1 else None


def _import_root() -> str:
    """The directory from which this process imports ``skill_ledger`` (a worker imports the same)."""
    import skill_ledger

    return str(Path(skill_ledger.__file__).resolve().parents[1])


class _ParentGone(Exception):
    pass


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m skill_ledger.adapters.usecases.report_workers",
                                description="Fold one range of skills of a compliance report into a spool.")
    p.add_argument("workdir")
    p.add_argument("--parent", type=int, default=0, help="stop when this process is gone")
    p.add_argument("--format", default="json", help="the report's format (its templates are loaded while waiting)")
    args = p.parse_args(argv)
    try:
        from skill_ledger.projections.report.writers import writer_for

        writer_for(args.format)  # ready before the job comes: its templates are loaded once per process
    except Exception as e:  # noqa: BLE001 - reported by the parent, which then folds the range itself
        return said_failure(e, None)
    return _fold_range(os.environ.get("SKILLS_JOURNAL", ""), Path(args.workdir), args.parent, sys.stdin.buffer, None)

if __name__ == "__main__":
    sys.exit(_main())
