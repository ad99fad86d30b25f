"""``skills journal verify``: recompute every hash chain, check positions, stream versions,
the append-only guard and the signed checkpoints, and name the first bad position.

The checks are the same on SQLite and PostgreSQL: both recorders number events gaplessly
(SQLite's rowid; on PostgreSQL the recorder assigns ``max + 1`` under the table's write
lock instead of using the sequence, which a failed insert would leave with a gap), so a
missing position always means a deleted event. What "the guard is present" means is the
recorder's business (``guard_present``: SQLite triggers, or enabled PL/pgSQL triggers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from skill_ledger.domain.checkpoints import checkpoint_message, root_hash
from skill_ledger.domain.codec import GENESIS_HASH, event_hash, exported_event, kind_of_topic

from .sqlite import LedgerApplication, chained, iter_rows

if TYPE_CHECKING:
    from skill_ledger.adapters.settings import Settings

_decoder = msgspec.json.Decoder()


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

    def first_problem(self) -> Problem | None:
        """The problem at the first bad position (what a one-line error names)."""
        return next((p for p in self.problems if p.position == self.first_bad_position), None)


def verify_settings_journal(settings: Settings) -> VerifyReport:
    """``skills journal verify``: the journal of these settings, looked at exactly as it is
    (opening it normally would re-create a dropped guard), its checkpoints checked against
    this home's checkpoint key and anchor file."""
    from skill_ledger.adapters.usecases.checkpoints import journal_seed, read_anchor
    from skill_ledger.adapters.usecases.unit_of_work import Ledger
    from skill_ledger.domain.signing import public_key_from_seed

    from .sqlite import open_journal

    exists = not settings.journal_is_sqlite or settings.journal_path.exists()
    ledger = Ledger(settings, app=open_journal(settings.journal_url, create=False) if exists else None)
    try:
        seed = journal_seed(settings, create=False)
        trusted = {public_key_from_seed(seed).hex()} if seed else None
        return verify_journal(ledger.app, trusted_checkpoint_keys=trusted, anchor=read_anchor(settings))
    finally:
        ledger.close()


def verify_journal(app: LedgerApplication, *, trusted_checkpoint_keys: set[str] | None = None,
                   anchor: dict[str, Any] | None = None, max_problems: int = 50) -> VerifyReport:
    """``anchor``: the newest checkpoint as remembered outside the journal ({position, hash})."""
    problems: list[Problem] = []
    guard = _guard_present(app)
    if not guard:
        problems.append(Problem(0, "guard_missing", "append-only triggers are missing from the journal"))
    heads: dict[str, tuple[int, str]] = {}  # originator_id -> (version, hash)
    hashes: list[str] = []
    hashes_by_position: dict[int, str] = {}
    expected_position = 1
    checkpoints = 0
    count = 0
    for row in iter_rows(app):
        count += 1
        if row.position != expected_position:
            problems.append(Problem(expected_position, "missing_event",
                                    f"positions jump from {expected_position - 1} to {row.position}: events deleted"))
        expected_position = row.position + 1
        version, prev = heads.get(row.originator_id, (0, GENESIS_HASH))
        if row.originator_version != version + 1:
            problems.append(Problem(row.position, "stream_version_gap",
                                    f"stream version {row.originator_version} follows {version}"))
        if row.hash is None:
            problems.append(Problem(row.position, "chain_missing", "event has no hash-chain entry"))
            heads[row.originator_id] = (row.originator_version, prev)
            continue
        if row.prev_hash != prev:
            problems.append(Problem(row.position, "chain_broken", "prev_hash does not match the stream's previous hash"))
        try:
            state = _decoder.decode(row.state)
            actual = event_hash(exported_event(row.position, row.originator_version, row.topic, state, row.prev_hash))
        except (msgspec.DecodeError, KeyError, TypeError) as e:
            problems.append(Problem(row.position, "undecodable", f"stored event cannot be decoded: {e}"))
            actual = ""
            state = {}
        if actual != row.hash:
            problems.append(Problem(row.position, "hash_mismatch", "stored event does not match its hash (edited or moved)"))
        heads[row.originator_id] = (row.originator_version, row.hash)
        hashes.append(row.hash)
        if anchor is not None and row.position == anchor.get("position"):
            hashes_by_position[row.position] = row.hash
        if kind_of_topic(row.topic) == "journal.checkpoint" and state:
            checkpoints += 1
            problem = _check_checkpoint(state, hashes[:-1], row.position, trusted_checkpoint_keys)
            if problem:
                problems.append(problem)
        if len(problems) >= max_problems:
            break
    if anchor is not None:
        problem = _check_anchor(anchor, hashes_by_position)
        if problem:
            problems.append(problem)
    orphans = _orphan_chain_rows(app)
    for position in orphans[:max_problems]:
        problems.append(Problem(position, "orphan_chain_entry", "hash-chain entry without its event: event deleted"))
    head = app.recorder.max_notification_id() or 0
    problems.sort(key=lambda p: p.position)
    return VerifyReport(
        ok=not problems, events=count, head=head, streams=len(heads), checkpoints=checkpoints, guard=guard,
        first_bad_position=_first_bad(problems), problems=problems[:max_problems],
    )


def _check_anchor(anchor: dict[str, Any], hashes: dict[int, str]) -> Problem | None:
    if anchor.get("unreadable"):
        return Problem(0, "anchor_unreadable", "the checkpoint anchor file cannot be read")
    position = anchor["position"]
    found = hashes.get(position)
    if found is None:
        return Problem(position, "truncated",
                       f"the journal ends before its last anchored checkpoint at position {position}")
    if found != anchor["hash"]:
        return Problem(position, "anchor_mismatch", "the event at the anchored checkpoint position is not the one anchored")
    return None


def _first_bad(problems: list[Problem]) -> int | None:
    """The first damaged event position; 0 when the only problem is the missing guard."""
    positions = [p.position for p in problems if p.position > 0]
    if positions:
        return min(positions)
    return 0 if problems else None


def _check_checkpoint(state: dict[str, Any], hashes_before: list[str], at: int,
                      trusted: set[str] | None) -> Problem | None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    position, count = state["position"], state["event_count"]
    covered = hashes_before[:count]
    if len(covered) != count or root_hash(covered) != state["root_hash"]:
        return Problem(at, "checkpoint_mismatch",
                       f"checkpoint over {count} events up to position {position} does not match the journal")
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(state["public_key_hex"]))
        key.verify(bytes.fromhex(state["signature"]), checkpoint_message(position, state["root_hash"], count))
    except (ValueError, InvalidSignature):
        return Problem(at, "checkpoint_signature", "checkpoint signature does not verify")
    if trusted is not None and state["public_key_hex"] not in trusted:
        return Problem(at, "checkpoint_untrusted_key", f"checkpoint signed by an unknown key {state['key_id']}")
    return None


def _guard_present(app: LedgerApplication) -> bool:
    return bool(chained(app).guard_present())


def _orphan_chain_rows(app: LedgerApplication) -> list[int]:
    return list(chained(app).orphan_chain_positions(100))
