"""The full verify's pass over every event: in this process, or, for a big journal, in chunks
that worker processes check at the same time.

A chunk is the events of ``2**level`` consecutive positions starting after a multiple of that
number (``level`` at most ``CHUNK_LEVEL``, smaller for a smaller journal: several chunks per
process), so its leaves form one perfect subtree of the journal's tree: a worker checks its
events (``row_check.RowChecker``), builds the chunk's own tree and returns the subtree's hash with
what only the whole journal can judge (each stream's first and last event in the chunk, the
checkpoint events, the frontier at the sizes asked for). This process links the chunks' streams
and assembles the tree; the result is exactly the sequential pass's.

This process checks its share of the chunks too; the workers are child processes
(``scan_parallel``): forks of this one where that is safe (a SQLite journal, no other thread),
which start in milliseconds, else new interpreters that get the journal URL through their stdin
(never a command line: a PostgreSQL URL carries a password) and take a tenth of a second to
start. Each opens the journal as it is. If a worker fails, the pass runs again in this process.
``SKILLS_VERIFY_PROCESSES`` sets the number of processes, this one included (default: the CPUs
this process may run on, at most 4; ``1``: no workers).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import msgspec

from skill_ledger.domain.errors import ConfigurationError

from .row_check import RowChecker
from .sqlite import LedgerApplication, iter_rows

CHUNK_LEVEL = 15  # the biggest chunks (smaller ones for a smaller journal: scan_parallel.chunk_level)
CHUNK = 1 << CHUNK_LEVEL
PARALLEL_MIN_EVENTS = 3 * CHUNK  # below this (about 100k events), starting interpreters costs more than it saves
FORK_MIN_EVENTS = 4096  # a fork costs a few milliseconds: worth it from about 4k events
PROCESSES_ENV = "SKILLS_VERIFY_PROCESSES"
MAX_PROCESSES = 16
CHECKPOINT_PREFIX = "journal.checkpoint.v"
READ_BATCH = 256  # rows per SELECT: a batch (~1 MB) stays in the CPU caches; ~5% faster than 2000


class Outcome(msgspec.Struct):
    """What a pass found: problems by position, counts, the checkpoint events (position,
    topic, decoded state), each stream's last (version, hash), the recomputed tree (frontiers at
    the sizes asked for, the final frontier's hashes and size), the
    version-1 running hashes, and the anchored position's chain hash."""

    problems: list[tuple[int, str, str]]
    count: int
    checkpoints: list[tuple[int, str, Any]]
    heads: dict[str, tuple[int, str]]
    frontiers: dict[int, list[bytes]]
    frontier: list[bytes]
    size: int
    legacy_roots: dict[int, str]
    anchor_hash: str | None
    leaves: bytes = b""  # every leaf, when a parallel pass needs them for version-1 checkpoints
    first_position: int | None = None  # of the first and last event seen
    last_position: int = 0
    first_of_format: dict[int, int] = {}  # chain format -> its first position (a chunk's, for the join)
    newest_format: int = 1


def process_count() -> int:
    value = os.environ.get(PROCESSES_ENV, "").strip()
    if value:
        if not value.isdigit() or not 1 <= int(value) <= MAX_PROCESSES:
            raise ConfigurationError(f"{PROCESSES_ENV} must be a whole number from 1 to {MAX_PROCESSES}, got {value!r}")
        return int(value)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def scan_range(app: LedgerApplication, lo: int, hi: int | None, *, sizes: Iterable[int], legacy_counts: Iterable[int],
               anchor_position: int | None, links_known: bool, keep_leaves: bool = False,
               max_problems: int = 50) -> tuple[Outcome, dict[str, tuple[int, int, str | None]]]:
    """Check the events of positions ``lo..hi`` (``hi`` None: to the end). ``links_known``:
    the range starts at position 1, so every stream starts in it; otherwise each stream's first
    event is left for the caller to link (its problems are found there)."""
    from .tree_check import TreeBuilder

    checker = RowChecker(lo if links_known else None, links_known=links_known)
    offset = lo - 1
    builder = TreeBuilder(sizes, legacy_counts, offset=offset, keep_leaves=keep_leaves)
    checkpoints: list[tuple[int, str, Any]] = []
    anchor_hash = None
    add, check = builder.add_at, checker.check
    for row in iter_rows(app, after=offset, until=hi, batch=READ_BATCH):
        leaf, state = check(row)
        add(row.position, leaf)
        if row.topic.startswith(CHECKPOINT_PREFIX):
            checkpoints.append((row.position, row.topic, state))
        if row.position == anchor_position:
            anchor_hash = row.hash
        if len(checker.problems) >= max_problems:
            break
    else:
        if hi is not None:
            builder.fill_to(hi)  # events missing at the chunk's end (reported by the next chunk's first)
    builder.flush()
    return Outcome(problems=checker.problems, count=checker.count, checkpoints=checkpoints, heads=checker.heads,
                   frontiers={s: list(h) for s, h in builder.frontiers.items()}, frontier=list(builder.frontier.hashes),
                   size=builder.frontier.size, legacy_roots=builder.legacy_roots,
                   anchor_hash=anchor_hash, leaves=b"".join(builder.leaves or ()), first_position=checker.first,
                   last_position=checker.last, first_of_format=checker.first_of_format,
                   newest_format=checker.newest_format), checker.firsts


def scan(app: LedgerApplication, journal_url: str | None, *, head: int, sizes: set[int], legacy_counts: set[int],
         anchor_position: int | None, max_problems: int) -> Outcome:
    """The whole journal, in chunks over several processes when it is big enough (and a URL to
    reopen it is known), else in this process."""
    processes = process_count() if journal_url else 1
    if journal_url and processes > 1:
        from . import scan_parallel

        if head >= (FORK_MIN_EVENTS if scan_parallel.can_fork(journal_url) else PARALLEL_MIN_EVENTS):
            try:
                return scan_parallel.run(app, journal_url, head=head, processes=processes, sizes=sizes,
                                         legacy_counts=legacy_counts, anchor_position=anchor_position,
                                         max_problems=max_problems)
            except scan_parallel.WorkerFailed:
                pass  # the answer must not depend on the workers: check everything here instead
    outcome, _firsts = scan_range(app, 1, None, sizes=sizes, legacy_counts=legacy_counts,
                                  anchor_position=anchor_position, links_known=True, max_problems=max_problems)
    return outcome
