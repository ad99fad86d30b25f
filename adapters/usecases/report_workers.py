"""Worker processes for ``skills report compliance``: each folds one contiguous range of skill
ids of the report's second pass (``projections.report.skillpass``) into a spool of its own,
which the parent appends to its own in range order, so the document is the one a single
process writes.

A worker is this module run as ``python -m skill_ledger.adapters.usecases.report_workers DIR``,
started before the report's first pass: it imports what it needs, loads the templates and opens
the journal read-only meanwhile (about 0.2 s of start-up off the report's time), then waits
for a line on its standard input: ``go`` when its job is in ``DIR/job.msgpack`` (end of input:
no job, it exits). It writes its spool and result in ``DIR``. The journal URL reaches it through the environment, never the command line
(a PostgreSQL URL carries a password, and command lines are visible to every user). It stops
when its parent is gone. A worker that fails makes the parent fold its range itself.

``SKILLS_REPORT_PROCESSES`` sets the number of processes (the parent included; default: the
CPUs this process may run on, at most 4; ``1``: everything in one process). The journal must
have at least ``SHARDED_MIN_EVENTS`` skill events for a second process to start.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import msgspec

from skill_ledger.adapters.settings import Settings
from skill_ledger.domain.errors import ConfigurationError
from skill_ledger.projections.report.skillpass import SkillJob, run_skill_job

PROCESSES_ENV = "SKILLS_REPORT_PROCESSES"
MAX_PROCESSES = 16
DEFAULT_MAX_PROCESSES = 4
JOB_FILE = "job.msgpack"
GO = b"go\n"  # on a worker's standard input: its job is in JOB_FILE


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


class ReportWorkers:
    """``projections.report.skillpass.SkillWorkers`` as child processes of this one."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings, self.count = settings, count

    def spawn(self, workdir: Path, fmt: str) -> _Worker:
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
        from skill_ledger.adapters.journal.sqlite import open_journal
        from skill_ledger.projections.report.writers import writer_for

        from .reports import JournalSource

        url = os.environ.get("SKILLS_JOURNAL", "")
        if not url:
            raise ValueError("SKILLS_JOURNAL is not set")
        writer_for(args.format)  # ready before the job comes: its templates are compiled once per process
        app = open_journal(url, create=False)
        try:
            if sys.stdin.buffer.readline() != GO:  # no job: the report did not need this worker
                return 0
            workdir = Path(args.workdir)
            job = msgspec.msgpack.decode((workdir / JOB_FILE).read_bytes(), type=SkillJob)

            def watch_parent() -> None:  # before every skill: an abandoned report stops
                if args.parent and os.getppid() != args.parent:
                    raise _ParentGone()

            run_skill_job(JournalSource(app, job.until), job, workdir, before_each=watch_parent)
        finally:
            app.close()
    except _ParentGone:
        return 3
    except Exception as e:  # reported by the parent, which then folds the range itself
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
