"""The full verify's pass in chunks checked by several processes (``adapters.journal.scan`` for
the design). This process checks every ``processes``-th chunk itself and joins the chunks in
position order: it links each stream's first event of a chunk to the stream's last event before
it, puts each chunk's subtree into the journal's frontier, and turns the chunks' frontiers into
the journal's.

The other chunks go to worker processes, dealt round robin; each sends back one result per
chunk, in order, as a length-prefixed pickle on a pipe (pickles because they only ever pass
between this process and its own children). A worker is, for a SQLite journal in a process with
no other thread, a fork of this one (it starts in a few milliseconds: the modules are loaded);
else ``python -m skill_ledger.adapters.journal.scan_parallel``, to which the parent writes the
journal URL and then its chunks on stdin (the URL never appears on a command line: a PostgreSQL
URL carries a password). Either opens the journal itself. A worker that fails makes the pass
run again in this process (``WorkerFailed``).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from skill_ledger.adapters.forking import ForkedChild, can_fork, fork_child
from skill_ledger.domain.checkpoints import CHECKPOINT_CONTEXT
from skill_ledger.domain.merkle import node_hash

from . import scan
from .row_check import format_downgrades, link
from .scan import Outcome, scan_range

_LENGTH = struct.Struct(">Q")
CHUNKS_PER_PROCESS = 8  # round robin: a process's share is never more than one chunk off
MIN_CHUNK_LEVEL = 10


class WorkerFailed(Exception):
    """A worker process did not return a chunk's result."""


def _write(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)


def _read(stream: IO[bytes]) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) != _LENGTH.size:
        raise EOFError("the other side closed the pipe")
    (length,) = _LENGTH.unpack(head)
    data = stream.read(length)
    if len(data) != length:
        raise EOFError("the other side closed the pipe")
    return pickle.loads(data)  # frames only ever come from our own parent or child


def _chunk(app: Any, task: tuple[Any, ...]) -> tuple[Outcome, dict[str, tuple[int, int, str | None]]]:
    lo, hi, sizes, keep_leaves, anchor_position, max_problems = task
    return scan_range(app, lo, hi, sizes=sizes, legacy_counts=(),
                      anchor_position=anchor_position, links_known=False, keep_leaves=keep_leaves,
                      max_problems=max_problems)


def _serve(url: str, tasks: Iterable[tuple[Any, ...]], sink: IO[bytes]) -> int:
    """The worker's side: open the journal, check the chunks, one result each."""
    from .sqlite import open_journal

    app = open_journal(url, create=False)
    try:
        for task in tasks:
            try:
                _write(sink, ("ok", _chunk(app, task)))
            except Exception as e:  # noqa: BLE001 - reported to the parent, which checks alone
                _write(sink, ("error", f"{type(e).__name__}: {e}"))
            sink.flush()
    finally:
        app.close()
    return 0


def _tasks_from(source: IO[bytes]) -> Iterator[tuple[Any, ...]]:
    while True:
        try:
            yield _read(source)
        except EOFError:
            return


def _worker() -> int:
    """A new interpreter's side: the URL, then chunks until the parent closes the pipe."""
    source = sys.stdin.buffer
    return _serve(_read(source), _tasks_from(source), sys.stdout.buffer)


class _Forked:
    """The ``subprocess.Popen`` surface ``run`` uses, for a forked worker."""

    def __init__(self, child: ForkedChild, stdout: IO[bytes]) -> None:
        self.child, self.stdout = child, stdout

    def poll(self) -> int | None:
        return self.child.poll()

    def kill(self) -> None:
        self.child.kill()

    def wait(self) -> None:
        self.child.status()


def _fork(url: str, tasks: list[tuple[Any, ...]]) -> _Forked:
    read_end, write_end = os.pipe()

    def work() -> int:
        os.close(read_end)
        with open(write_end, "wb") as sink:
            return _serve(url, tasks, sink)

    try:
        child = fork_child(work)  # (a failure is the results missing on the pipe)
    except OSError as e:
        os.close(read_end)
        os.close(write_end)
        raise WorkerFailed(f"cannot start a verify process: {e}") from None
    os.close(write_end)
    return _Forked(child, open(read_end, "rb"))


def _start(url: str, tasks: list[tuple[Any, ...]]) -> subprocess.Popen[bytes] | _Forked:
    if can_fork(url):
        return _fork(url, tasks)
    import skill_ledger

    env = dict(os.environ)
    root = str(Path(skill_ledger.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "skill_ledger.adapters.journal.scan_parallel"], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError as e:
        raise WorkerFailed(f"cannot start a verify process: {e}") from None
    assert proc.stdin is not None
    try:
        _write(proc.stdin, url)
        for task in tasks:  # small: every task is written up front, then the pipe is closed
            _write(proc.stdin, task)
        proc.stdin.close()
    except OSError as e:
        proc.kill()
        raise WorkerFailed(f"a verify process stopped early: {e}") from None
    return proc


def _absorb(hashes: list[bytes], size: int, level: int, h: bytes) -> int:
    n = size >> level
    while n & 1:
        h = node_hash(hashes.pop(), h)
        n >>= 1
    hashes.append(h)
    return size + (1 << level)


def chunk_level(head: int, processes: int) -> int:
    """Chunks of ``2**level`` events: about ``CHUNKS_PER_PROCESS`` per process, at most
    ``scan.CHUNK_LEVEL`` (read now: the tests make chunks small)."""
    wanted = max(1, head // (processes * CHUNKS_PER_PROCESS)).bit_length() - 1
    return min(scan.CHUNK_LEVEL, max(MIN_CHUNK_LEVEL, wanted))


def run(app: Any, journal_url: str, *, head: int, processes: int, sizes: set[int], legacy_counts: set[int],
        anchor_position: int | None, max_problems: int) -> Outcome:
    """This process and ``processes - 1`` workers. Raises ``WorkerFailed`` when a worker cannot
    deliver (the caller checks in one process)."""
    level = chunk_level(head, processes)
    chunk = 1 << level
    chunks = [(lo, min(lo + chunk - 1, head)) for lo in range(1, head + 1, chunk)]
    tasks = [(lo, hi, sorted(s for s in sizes if lo - 1 < s <= hi), bool(legacy_counts),
              anchor_position if anchor_position is not None and lo <= anchor_position <= hi else None, max_problems)
             for lo, hi in chunks]
    count = min(processes, len(chunks))
    workers: list[Any] = []
    joined = _Joined(sizes, legacy_counts, level)
    try:
        workers = [_start(journal_url, tasks[k::count]) for k in range(count - 1)]
        for lo, (outcome, firsts) in _in_order(app, tasks, workers):
            joined.add(lo, outcome, firsts)
            if len(joined.problems) >= max_problems:
                break
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
            if worker.stdout is not None:
                worker.stdout.close()
    return joined.outcome()


def _in_order(app: Any, tasks: list[tuple[Any, ...]], workers: list[Any]) -> Iterator[tuple[int, Any]]:
    """(first position, result) of each chunk, in position order. Chunks are dealt in rounds of
    one per process; this process takes the last of each round (the workers get the odd chunk
    left over at the end: this process has the joining and the checks after the pass to do)
    and checks it before waiting for the workers' ones."""
    count = len(workers) + 1
    for start in range(0, len(tasks), count):
        mine = start + count - 1
        own = _chunk(app, tasks[mine]) if mine < len(tasks) else None
        for i in range(start, min(start + count, len(tasks))):
            yield tasks[i][0], own if i == mine else _result(workers[i - start])


def _result(worker: Any) -> tuple[Outcome, dict[str, tuple[int, int, str | None]]]:
    try:
        status, value = _read(worker.stdout)
    except (EOFError, OSError, pickle.UnpicklingError) as e:
        raise WorkerFailed(f"a verify process ended without a result: {e}") from None
    if status != "ok":
        raise WorkerFailed(f"a verify process failed: {value}")
    return value


class _Joined:
    def __init__(self, sizes: set[int], legacy_counts: set[int], level: int) -> None:
        self.level = level
        self.problems: list[tuple[int, str, str]] = []
        self.heads: dict[str, tuple[int, str]] = {}
        self.count = 0
        self.checkpoints: list[tuple[int, str, Any]] = []
        self.frontiers: dict[int, list[bytes]] = {0: []} if 0 in sizes else {}
        self.hashes: list[bytes] = []
        self.size = 0
        self.legacy_counts = legacy_counts
        self.legacy = hashlib.sha256(CHECKPOINT_CONTEXT) if legacy_counts else None
        self.legacy_roots: dict[int, str] = {0: self.legacy.hexdigest()} if self.legacy and 0 in legacy_counts else {}
        self.anchor_hash: str | None = None
        self.last_position = 0
        self.newest_format = 1  # the newest chain format of the chunks joined so far

    def add(self, lo: int, outcome: Outcome, firsts: dict[str, tuple[int, int, str | None]]) -> None:
        offset = lo - 1
        first = outcome.first_position
        if first is not None:
            if first != self.last_position + 1:
                self.problems.append((self.last_position + 1, "missing_event",
                                      f"positions jump from {self.last_position} to {first}: events deleted"))
            self.last_position = outcome.last_position
        self.problems += outcome.problems
        self.problems += link(firsts, self.heads)
        self.problems += format_downgrades(outcome.first_of_format, self.newest_format, outcome.problems)
        self.newest_format = max(self.newest_format, outcome.newest_format)
        self.heads.update(outcome.heads)
        self.count += outcome.count
        self.checkpoints += outcome.checkpoints
        self.anchor_hash = outcome.anchor_hash or self.anchor_hash
        for size, relative in outcome.frontiers.items():
            self.frontiers[size] = self.hashes + relative
        if self.legacy is not None:
            for i in range(0, len(outcome.leaves), 32):
                self.legacy.update(outcome.leaves[i:i + 32])
                if offset + i // 32 + 1 in self.legacy_counts:
                    self.legacy_roots[offset + i // 32 + 1] = self.legacy.hexdigest()
        if outcome.size == 1 << self.level and self.size == offset:
            self.size = _absorb(self.hashes, self.size, self.level, outcome.frontier[0])
        else:  # the last chunk (or one with events missing, already reported): its frontier follows
            self.hashes += outcome.frontier
            self.size += outcome.size

    def outcome(self) -> Outcome:
        return Outcome(problems=self.problems, count=self.count, checkpoints=self.checkpoints, heads=self.heads,
                       frontiers=self.frontiers, frontier=self.hashes, size=self.size,
                       legacy_roots=self.legacy_roots, anchor_hash=self.anchor_hash)


if __name__ == "__main__":
    sys.exit(_worker())
