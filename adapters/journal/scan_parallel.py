"""The full verify's pass in chunks checked by worker processes (``adapters.journal.scan`` for
the design). This process joins the chunks in position order: it links each stream's first
event of a chunk to the stream's last event before it, puts each chunk's subtree into the
journal's frontier, and turns the chunks' frontiers into the journal's.

A worker is ``python -m skill_ledger.adapters.journal.scan_parallel``: the parent writes the
journal URL and then its chunks to the worker's stdin (the URL never appears on a command line:
a PostgreSQL URL carries a password), each as a length-prefixed pickle, and reads one result
per chunk from its stdout, in order. The chunks are dealt round robin. A worker that fails makes
the pass run again in this process (``WorkerFailed``). The frames are pickles because they only
ever pass between this process and its own children.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from skill_ledger.domain.checkpoints import CHECKPOINT_CONTEXT
from skill_ledger.domain.merkle import node_hash

from . import scan
from .row_check import format_downgrades, link
from .scan import Outcome, scan_range

_LENGTH = struct.Struct(">Q")


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


def _worker() -> int:
    """The worker's side: the URL, then chunks until the parent closes the pipe."""
    from .sqlite import open_journal

    source, sink = sys.stdin.buffer, sys.stdout.buffer
    app = open_journal(_read(source), create=False)
    try:
        while True:
            try:
                task = _read(source)
            except EOFError:
                return 0
            try:
                _write(sink, ("ok", _chunk(app, task)))
            except Exception as e:  # noqa: BLE001 - reported to the parent, which checks alone
                _write(sink, ("error", f"{type(e).__name__}: {e}"))
            sink.flush()
    finally:
        app.close()


def _start(url: str, tasks: list[tuple[Any, ...]]) -> subprocess.Popen[bytes]:
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


def run(journal_url: str, *, head: int, workers: int, sizes: set[int], legacy_counts: set[int],
        anchor_position: int | None, max_problems: int) -> Outcome:
    """Raises ``WorkerFailed`` when a worker cannot deliver (the caller checks in one process)."""
    level = scan.CHUNK_LEVEL  # read now: the tests make chunks small
    chunk = 1 << level
    chunks = [(lo, min(lo + chunk - 1, head)) for lo in range(1, head + 1, chunk)]
    tasks = [(lo, hi, sorted(s for s in sizes if lo - 1 < s <= hi), bool(legacy_counts),
              anchor_position if anchor_position is not None and lo <= anchor_position <= hi else None, max_problems)
             for lo, hi in chunks]
    count = min(workers, len(chunks))
    procs: list[subprocess.Popen[bytes]] = []
    joined = _Joined(sizes, legacy_counts, level)
    try:
        procs = [_start(journal_url, tasks[k::count]) for k in range(count)]
        for i, (lo, _hi) in enumerate(chunks):
            proc = procs[i % count]
            assert proc.stdout is not None
            try:
                status, value = _read(proc.stdout)
            except (EOFError, OSError, pickle.UnpicklingError) as e:
                raise WorkerFailed(f"a verify process ended without a result: {e}") from None
            if status != "ok":
                raise WorkerFailed(f"a verify process failed: {value}")
            outcome, firsts = value
            joined.add(lo, outcome, firsts)
            if len(joined.problems) >= max_problems:
                break
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    return joined.outcome()


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
