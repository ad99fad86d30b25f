"""``skills journal verify``: recompute every hash chain, check positions, stream versions,
the append-only guard, the Merkle tree and the signed checkpoints, and name the first bad
position.

Every stored column is checked against what the hash covers (``row_check``): the originator id
must be the name-based UUID of the event's stream (and the chain row's copy the event's), the
stream version the event's place in its stream, the topic one this version reads, and, for
hash-chain format 2 (``domain.codec``), the stored state bytes exactly the canonical encoding of
the hashed members.

The checks are the same on SQLite and PostgreSQL: both recorders number events gaplessly
(SQLite's rowid; on PostgreSQL the recorder assigns ``max + 1`` under the table's write
lock instead of using the sequence, which a failed insert would leave with a gap), so a
missing position always means a deleted event. What "the guard is present" means is the
recorder's business (``guard_present``: SQLite triggers, or enabled PL/pgSQL triggers).

Checkpoints are checked against a key and an anchor (``checkpoint_trust``): the home's, or
ones an auditor supplies. With ``fail_closed`` (the command), a journal that has
checkpoints but no key or no anchor to check them against is reported, not trusted. The
Merkle tree is recomputed from the events (``tree_check``); the stored tree is compared with
it. ``--since-checkpoint`` is ``adapters.journal.since``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from skill_ledger.domain.codec import version_of_topic
from skill_ledger.domain.events import stream_uuid

from .checkpoint_trust import Anchor, Finding, check_anchor, check_checkpoint_v1, check_checkpoint_v2, missing_trust
from .pubkey import PublicKey
from .sqlite import LedgerApplication, chained

if TYPE_CHECKING:
    from skill_ledger.adapters.settings import Settings

    from .tree import JournalTree

_decoder = msgspec.json.Decoder()
CHECKPOINT_STREAM = "journal:checkpoints"
UNVERIFIABLE = frozenset({"checkpoint_key_missing", "anchor_missing"})


class Problem(msgspec.Struct, frozen=True):
    position: int
    code: str
    message: str


class VerifyReport(msgspec.Struct, frozen=True):
    ok: bool
    events: int
    head: int
    streams: int
    checkpoints: int
    guard: bool
    first_bad_position: int | None
    problems: list[Problem]
    mode: str = "full"  # or "since_checkpoint"
    tree_size: int = 0  # the recomputed Merkle tree: its size and root (hex)
    tree_root: str = ""
    checkpoint_key: str | None = None  # where the key came from: "home", "argument" (or None: no key)
    anchor: str | None = None  # where the anchor came from: "home", "argument" (or None)
    since: dict[str, Any] | None = None  # since-checkpoint: the checkpoint started from

    def first_problem(self) -> Problem | None:
        """The problem at the first bad position (what a one-line error names)."""
        return next((p for p in self.problems if p.position == self.first_bad_position), None)

    @property
    def unverifiable(self) -> bool:
        """Nothing is wrong with the events found, but what checks the checkpoints is missing."""
        return bool(self.problems) and all(p.code in UNVERIFIABLE for p in self.problems)


def verify_settings_journal(settings: Settings, *, public_key: PublicKey | None = None, anchor: Anchor | None = None,
                            since_checkpoint: bool = False) -> VerifyReport:
    """``skills journal verify``: the journal of these settings, looked at exactly as it is
    (opening it normally would re-create a dropped guard), its checkpoints checked against
    ``public_key`` (default: the home's checkpoint key) and ``anchor`` (default: the home's
    anchor file), failing closed when either is missing."""
    from skill_ledger.adapters.usecases.checkpoints import home_public_key, journal_key_path, read_anchor
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

    from .sqlite import open_journal

    exists = not settings.journal_is_sqlite or settings.journal_path.exists()
    ledger = Ledger(settings, app=open_journal(settings.journal_url, create=False) if exists else None)
    try:
        key = public_key or home_public_key(settings)
        anchor = anchor or read_anchor(settings)
        key_file = journal_key_path(settings).exists()
        if since_checkpoint:
            from .since import verify_since_checkpoint

            return verify_since_checkpoint(ledger.app, key=key, anchor=anchor, fail_closed=True,
                                           key_file_exists=key_file, journal_url=settings.journal_url)
        return verify_journal(ledger.app, key=key, anchor=anchor, fail_closed=True, key_file_exists=key_file,
                              journal_url=settings.journal_url if exists else None)
    finally:
        ledger.close()


class CheckpointPlan(msgspec.Struct):
    """What the scan must remember: the tree sizes of the version-2 checkpoints and the counts
    of the version-1 ones (from the checkpoint stream, read by its key), the stored tree's
    sizes and the anchored note's size."""

    sizes: set[int]
    legacy_counts: set[int]
    origin: str | None
    newest_size: int  # of the newest version-2 checkpoint (0: none)


def checkpoint_events(tree: JournalTree) -> list[tuple[int, int, str, dict[str, Any]]]:
    """(position, topic version, stream version, state) of the checkpoint stream's events."""
    out = []
    for position, _version, topic, state in tree.stream_events(stream_uuid(CHECKPOINT_STREAM).hex):
        try:
            out.append((position, version_of_topic(topic), topic, _decoder.decode(state)))
        except msgspec.DecodeError:
            continue  # the scan reports it at its position
    return out


def plan_for(tree: JournalTree, anchor: Anchor | None) -> CheckpointPlan:
    sizes: set[int] = set()
    legacy: set[int] = set()
    origin = None
    newest = 0
    for _position, version, _topic, state in checkpoint_events(tree):
        if version >= 2 and isinstance(state.get("position"), int):
            sizes.add(state["position"])
            newest = max(newest, state["position"])
            origin = origin or state.get("origin") or None
        elif isinstance(state.get("event_count"), int):
            legacy.add(state["event_count"])
    sizes.update(size for size, _root, _frontier in tree.stored_heads())
    if anchor is not None and anchor.note:
        from skill_ledger.domain.errors import NoteError
        from skill_ledger.domain.notes import parse_checkpoint, parse_note

        try:
            sizes.add(parse_checkpoint(parse_note(anchor.note).text).size)
        except NoteError:
            pass  # reported by the anchor check
    return CheckpointPlan(sizes, legacy, origin, newest)


def verify_journal(app: LedgerApplication, *, key: PublicKey | None = None, anchor: Anchor | None = None,
                   fail_closed: bool = False, key_file_exists: bool = False, max_problems: int = 50,
                   journal_url: str | None = None) -> VerifyReport:
    """Everything, from position 1. ``key``: the checkpoint key (without one, and without
    ``fail_closed``, a checkpoint is only checked against the key it names itself).
    ``journal_url``: lets a big journal be checked in chunks by worker processes (``scan``)."""
    from .scan import scan
    from .tree import JournalTree
    from .tree_check import check_stored_tree, fold

    problems: list[Problem] = []
    guard = _guard_present(app)
    if not guard:
        problems.append(Problem(0, "guard_missing", "append-only triggers are missing from the journal"))
    head = app.recorder.max_notification_id() or 0
    tree = JournalTree(app)
    try:
        if tree.guard_present() is False:
            problems.append(Problem(0, "guard_missing", "append-only triggers are missing from the Merkle tree tables"))
        plan = plan_for(tree, anchor)
        outcome = scan(app, journal_url, head=head, sizes=plan.sizes, legacy_counts=plan.legacy_counts,
                       anchor_position=anchor.position if anchor else None,
                       max_problems=max_problems)
        problems += _findings(outcome.problems)
        roots = {size: fold(hashes) for size, hashes in outcome.frontiers.items()}
        for position, topic, state in outcome.checkpoints:
            if state:
                problems += _checkpoint_problems(position, topic, state, roots, outcome.legacy_roots, key, plan.origin)
        if fail_closed:
            problems += _findings(missing_trust(checkpoints=len(outcome.checkpoints), key=key, anchor=anchor,
                                                key_file_exists=key_file_exists))
        if anchor is not None:
            hashes = {anchor.position: outcome.anchor_hash} if anchor.position and outcome.anchor_hash else {}
            problems += _findings(check_anchor(anchor, head=head, hash_at=hashes.get, key=key, origin=plan.origin,
                                               root_at=roots.get, newest_size=plan.newest_size))
        problems += _findings(check_stored_tree(tree, roots, head))
    finally:
        tree.close()
    for position in _orphan_chain_rows(app)[:max_problems]:
        problems.append(Problem(position, "orphan_chain_entry", "hash-chain entry without its event: event deleted"))
    return report(problems, events=outcome.count, head=head, streams=len(outcome.heads),
                  checkpoints=len(outcome.checkpoints), guard=guard, tree=(outcome.size, fold(outcome.frontier)),
                  key=key, anchor=anchor, max_problems=max_problems)


def _checkpoint_problems(position: int, topic: str, state: dict[str, Any], roots: dict[int, bytes],
                         legacy_roots: dict[int, str], key: PublicKey | None, origin: str | None) -> list[Problem]:
    if version_of_topic(topic) >= 2:
        found = check_checkpoint_v2(state, position, key=key, root_at=roots.get, origin=origin)
    else:
        found = check_checkpoint_v1(state, position, key=key, legacy_root_at=legacy_roots.get)
    return _findings(found)


def _findings(found: list[Finding] | list[tuple[int, str, str]]) -> list[Problem]:
    return [Problem(position, code, message) for position, code, message in found]


def report(problems: list[Problem], *, events: int, head: int, streams: int, checkpoints: int, guard: bool,
           tree: tuple[int, bytes], key: PublicKey | None, anchor: Anchor | None, max_problems: int,
           mode: str = "full", since: dict[str, Any] | None = None) -> VerifyReport:
    problems.sort(key=lambda p: p.position)
    return VerifyReport(
        ok=not problems, events=events, head=head, streams=streams, checkpoints=checkpoints, guard=guard,
        first_bad_position=_first_bad(problems), problems=problems[:max_problems], mode=mode,
        tree_size=tree[0], tree_root=tree[1].hex(), checkpoint_key=key.source if key else None,
        anchor=anchor.source if anchor else None, since=since,
    )


def _first_bad(problems: list[Problem]) -> int | None:
    """The first damaged event position; 0 when the only problems concern no position (the
    missing guard, a missing key or anchor)."""
    positions = [p.position for p in problems if p.position > 0]
    if positions:
        return min(positions)
    return 0 if problems else None


def _guard_present(app: LedgerApplication) -> bool:
    return bool(chained(app).guard_present())


def _orphan_chain_rows(app: LedgerApplication) -> list[int]:
    return list(chained(app).orphan_chain_positions(100))


def read_key_file(path: str | Path) -> PublicKey:
    """``--public-key FILE`` (see ``adapters.journal.pubkey`` for the forms)."""
    from skill_ledger.adapters.storage.files import read_bounded

    from .pubkey import MAX_KEY_FILE, parse_public_key

    return parse_public_key(read_bounded(Path(path), MAX_KEY_FILE))
