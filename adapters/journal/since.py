"""``skills journal verify --since-checkpoint``: the newest checkpoint and what came after it,
in O(events after it).

1. The newest checkpoint (the last event of the checkpoint stream, found by its key) must be
   a good note signed by the key, and the stored tree at its size must have its root: that
   authenticates the stored frontier at that size (a frontier determines its root).
2. The events after it are checked as the full verify checks every event (positions,
   stream versions, hash chains, recomputed hashes). A stream's first event after the
   checkpoint links to an event the checkpoint covers: that event's hash is proven to be in
   the checkpoint's tree (an inclusion proof from the stored nodes, checked against the
   signed root), so the link does not rest on anything unsigned.
3. The tree of today is the checkpoint's frontier extended with the events after it, so it
   extends the checkpoint by construction; the stored tree is extended to the head and must
   agree with it. Later checkpoints and the anchor are checked against it.

What this mode does not look at are the events before the checkpoint themselves (their
hashes are bound by the signed root, which step 1 trusts): the full ``journal verify`` does.
A journal whose newest checkpoint is of the old format (or that has none) has nothing to
start from, and is verified in full.
"""

from __future__ import annotations

from typing import Any

from skill_ledger.domain.codec import GENESIS_HASH, version_of_topic
from skill_ledger.domain.errors import JournalTampered, ProofError, SkillLedgerError
from skill_ledger.domain.merkle import Frontier, event_leaf_hash, verify_consistency, verify_inclusion

from .checkpoint_trust import Anchor, check_anchor, check_checkpoint_v2, missing_trust
from .pubkey import PublicKey
from .row_check import RowChecker
from .sqlite import LedgerApplication, chain_hash, iter_rows
from .tree import JournalTree
from .tree_check import TreeBuilder
from .verify import (
    Problem,
    VerifyReport,
    _findings,
    _guard_present,
    checkpoint_events,
    report,
    verify_journal,
)


def verify_since_checkpoint(app: LedgerApplication, *, key: PublicKey | None, anchor: Anchor | None,
                            fail_closed: bool = False, key_file_exists: bool = False,
                            max_problems: int = 50, journal_url: str | None = None) -> VerifyReport:
    tree = JournalTree(app)
    try:
        events = checkpoint_events(tree)
        if not events or events[-1][1] < 2:
            tree.close()
            return verify_journal(app, key=key, anchor=anchor, fail_closed=fail_closed,
                                  key_file_exists=key_file_exists, max_problems=max_problems, journal_url=journal_url)
        return _since(app, tree, events, key=key, anchor=anchor, fail_closed=fail_closed,
                      key_file_exists=key_file_exists, max_problems=max_problems)
    finally:
        tree.close()


def _since(app: LedgerApplication, tree: JournalTree, events: list[tuple[int, int, str, dict[str, Any]]], *,
           key: PublicKey | None, anchor: Anchor | None, fail_closed: bool, key_file_exists: bool,
           max_problems: int) -> VerifyReport:
    cp_position, _version, _topic, cp_state = events[-1]
    size, origin = int(cp_state.get("position") or 0), str(cp_state.get("origin") or "")
    problems: list[Problem] = []
    guard = _guard_present(app)
    if not guard:
        problems.append(Problem(0, "guard_missing", "append-only triggers are missing from the journal"))
    if tree.guard_present() is False:
        problems.append(Problem(0, "guard_missing", "append-only triggers are missing from the Merkle tree tables"))
    head = app.recorder.max_notification_id() or 0
    try:
        start = tree.extend(min(size, head))
        signed_root = start.root()
    except JournalTampered as e:
        problems.append(Problem(int(e.details.get("position", 0)), "chain_missing", e.message))
        return report(problems, events=0, head=head, streams=0, checkpoints=len(events), guard=guard,
                      tree=(0, Frontier().root()), key=key, anchor=anchor, max_problems=max_problems,
                      mode="since_checkpoint", since={"checkpoint_position": cp_position, "tree_size": size})
    later = {int(s["position"]) for _p, v, _t, s in events if v >= 2 and isinstance(s.get("position"), int)}
    builder = TreeBuilder(later | ({start.size} if start.size == size else set()), start=start)
    scan = _Scan(builder, size, key, origin, max_problems, newest_format=_format_at(app, size))
    for row in iter_rows(app, after=size):
        if not scan.row(row):
            break
    problems += scan.problems
    problems += _links(tree, scan.first_links, size, signed_root)
    root = builder.root()
    problems += _findings(missing_trust(checkpoints=len(events), key=key, anchor=anchor,
                                        key_file_exists=key_file_exists) if fail_closed else [])
    if anchor is not None:
        problems += _findings(check_anchor(
            anchor, head=head, hash_at=lambda p: chain_hash(app, p), key=key, origin=origin,
            root_at=lambda n: _root_at(tree, builder, n, size, signed_root), newest_size=size))
    problems += _stored_tree(tree, head, root)
    for position in tree.orphans_after(size, max_problems):
        problems.append(Problem(position, "orphan_chain_entry", "hash-chain entry without its event: event deleted"))
    return report(problems, events=scan.count, head=head, streams=len(scan.heads), checkpoints=len(events),
                  guard=guard, tree=(builder.frontier.size, root), key=key, anchor=anchor, max_problems=max_problems,
                  mode="since_checkpoint",
                  since={"checkpoint_position": cp_position, "tree_size": size, "origin": origin,
                         "events_after": scan.count})


class _Scan:
    """The full verify's per-event checks (``RowChecker``) for the events after the checkpoint;
    a stream's first event after it is only remembered: ``_links`` checks its link."""

    def __init__(self, builder: TreeBuilder, size: int, key: PublicKey | None, origin: str, max_problems: int,
                 *, newest_format: int) -> None:
        self.builder, self.key, self.origin, self.max_problems = builder, key, origin, max_problems
        self.checker = RowChecker(size + 1, links_known=False, newest_format=newest_format)
        self.found: list[Problem] = []

    @property
    def problems(self) -> list[Problem]:
        return [*_findings(self.checker.problems), *self.found]

    @property
    def count(self) -> int:
        return self.checker.count

    @property
    def heads(self) -> dict[str, tuple[int, str]]:
        return self.checker.heads

    @property
    def first_links(self) -> list[tuple[int, str, int, str | None]]:
        return [(position, originator, version, prev)
                for originator, (position, version, prev) in self.checker.firsts.items()]

    def row(self, row: Any) -> bool:
        leaf, state = self.checker.check(row)
        self.builder.add_at(row.position, leaf)
        if row.topic.startswith("journal.checkpoint.v") and state and version_of_topic(row.topic) >= 2:
            self.builder.flush()
            self.found += _findings(check_checkpoint_v2(state, row.position, key=self.key,
                                                        root_at=self.builder.roots.get, origin=self.origin or None))
        return len(self.checker.problems) + len(self.found) < self.max_problems


def _format_at(app: LedgerApplication, position: int) -> int:
    """The chain format of the event at ``position`` (the checkpoint's last): the events after it
    must not go back to an older one. Its hash, and so its format, is bound by the signed root."""
    rows = list(iter_rows(app, after=position - 1, until=position)) if position > 0 else []
    return rows[0].chain_format if rows and rows[0].hash is not None else 1


def _links(tree: JournalTree, links: list[tuple[int, str, int, str | None]], size: int, root: bytes) -> list[Problem]:
    """Each stream's first event after the checkpoint links to the checkpoint's tree."""
    out = []
    for position, originator, version, prev in links:
        if prev is None:
            continue  # chain_missing, reported
        if version == 1:
            if prev != GENESIS_HASH:
                out.append(Problem(position, "chain_broken", "the first event of a stream has a previous hash"))
            continue
        entry = tree.chain_entry(originator, version - 1)
        if entry is None:
            out.append(Problem(position, "stream_version_gap",
                               f"stream version {version} has no version {version - 1}"))
            continue
        at, digest = entry
        if prev != digest:
            out.append(Problem(position, "chain_broken", "prev_hash does not match the stream's previous hash"))
        elif at > size:
            out.append(Problem(position, "chain_broken", f"the stream's previous event (position {at}) is missing"))
        elif not _included(tree, at, digest, size, root):
            out.append(Problem(position, "chain_broken", f"the stream's previous event (position {at}) is not the "
                                                         "one the checkpoint covers"))
    return out


def _included(tree: JournalTree, position: int, digest: str, size: int, root: bytes) -> bool:
    try:
        leaf = event_leaf_hash(bytes.fromhex(digest))
        verify_inclusion(leaf, position - 1, size, tree.inclusion_proof(position - 1, size), root)
    except (ValueError, SkillLedgerError):
        return False
    return True


def _root_at(tree: JournalTree, builder: TreeBuilder, n: int, size: int, signed_root: bytes) -> bytes | None:
    """The root at ``n`` as this verification knows it: from the events it hashed, or (before
    the checkpoint) from the stored tree, proven consistent with the signed root."""
    if n in builder.roots:
        return builder.roots[n]
    if n == size:
        return signed_root
    if n > size or n == 0:
        return None
    try:
        old = tree.root(n)
        verify_consistency(n, size, old, signed_root, tree.consistency_proof(n, size))
    except (ProofError, SkillLedgerError):
        return b""  # matches no root: the anchor is reported
    return old


def _stored_tree(tree: JournalTree, head: int, root: bytes) -> list[Problem]:
    """Extend the stored tree to the head; it must agree with the recomputed one."""
    try:
        stored = tree.extend(head).root()
    except JournalTampered as e:
        return [Problem(int(e.details.get("position", 0)), "chain_missing", e.message)]
    if stored != root:
        return [Problem(head, "tree_mismatch", "the stored Merkle tree does not match the journal's events")]
    return []
