"""Worker processes that are forks of this one (the full verify's chunks, the compliance
report's ranges of skills, the rebuild's shards): a fork starts in milliseconds (the modules
are loaded), a new interpreter in a few hundred. A fork copies no thread but every lock one
held, so a worker is a fork only while no other thread runs; and it never touches the parent's
connections (it opens its own) and leaves with ``os._exit`` (no parent buffer is flushed twice,
no parent object finalized)."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path


def can_fork(url: str) -> bool:
    """Whether a worker can be a fork of this process: on Linux, for a SQLite journal (its
    connections here are idle and never used by the child, which opens its own), and only
    while this process runs no other thread."""
    return (sys.platform.startswith("linux") and hasattr(os, "fork") and url.startswith("sqlite://")
            and threading.active_count() == 1)


class ForkedChild:
    """A forked worker: its exit status once it is done, and what it said when it failed."""

    def __init__(self, pid: int, error_file: Path | None) -> None:
        self.pid, self.error_file = pid, error_file
        self._status: int | None = None

    def poll(self) -> int | None:
        """Its exit status when it is done, else None (without waiting)."""
        if self._status is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere
                self._status = -1
                return self._status
            if pid:
                self._status = os.waitstatus_to_exitcode(status)
        return self._status

    def status(self) -> int:
        """Wait for it; its exit status (negative: the signal that killed it)."""
        if self._status is None:
            try:
                self._status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            except ChildProcessError:  # reaped elsewhere
                self._status = -1
        return self._status

    def failure(self) -> str | None:
        """None when it succeeded, else ``exit status N: <its last words>`` (the error file is
        removed either way)."""
        status = self.status()
        said = ""
        if self.error_file is not None:
            if status != 0:
                with contextlib.suppress(OSError):
                    said = self.error_file.read_text("utf-8", "replace").strip()
            self.error_file.unlink(missing_ok=True)
        return None if status == 0 else f"exit status {status}: {said or 'no message'}"

    def kill(self) -> None:
        if self._status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.status()
        if self.error_file is not None:
            self.error_file.unlink(missing_ok=True)


def fork_child(work: Callable[[], int], error_file: Path | None = None) -> ForkedChild:
    """Run ``work`` (which returns the exit status) in a fork of this process. Raises
    ``OSError`` when the fork fails. An exception ``work`` lets out is written to
    ``error_file``, when there is one (exit status 1)."""
    if error_file is not None:
        error_file.unlink(missing_ok=True)
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller
        code = 1
        try:
            gc.freeze()  # the parent's objects are never collected (nor written to) here
            code = work()
        except BaseException as e:  # noqa: BLE001 - said to the parent, which decides
            if error_file is not None:
                with contextlib.suppress(OSError):
                    error_file.write_text(f"error: {type(e).__name__}: {e}", "utf-8")
        finally:
            os._exit(code)
    return ForkedChild(pid, error_file)


def said_failure(e: BaseException, error_file: Path | None) -> int:
    """A worker's failure told to its parent: in ``error_file`` (a fork, whose stderr is the
    parent's) or on stderr (a new interpreter, whose stderr the parent reads). Exit status 1."""
    message = f"error: {type(e).__name__}: {e}"
    if error_file is None:
        print(message, file=sys.stderr)
    else:
        with contextlib.suppress(OSError):
            error_file.write_text(message, "utf-8")
    return 1
