"""``skills journal verify``: recompute every hash chain, check positions, stream versions,
the append-only guard and the signed checkpoints, and name the first bad position.

Every stored column is checked against what the hash covers (``check_stream_bindings``,
``check_topic``, ``check_chain_format``, ``check_hash``): the originator id must be the
name-based UUID of the event's stream (and the chain row's copy the event's), the stream version
the event's place in its stream, the topic one this version reads, and, for hash-chain format 2
(``domain.codec``), the stored state bytes exactly the canonical encoding of the hashed members.

The checks are the same on SQLite and PostgreSQL: both recorders number events gaplessly
(SQLite's rowid; on PostgreSQL the recorder assigns ``max + 1`` under the table's write
lock instead of using the sequence, which a failed insert would leave with a gap), so a
missing position always means a deleted event. What "the guard is present" means is the
recorder's business (``guard_present``: SQLite triggers, or enabled PL/pgSQL triggers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from skill_ledger.domain.checkpoints import checkpoint_message, root_hash
from skill_ledger.domain.codec import (
    CHAIN_FORMATS,
    GENESIS_HASH,
    event_hash,
    exported_event,
    kind_of_topic,
    originator_text,
    state_bytes,
)
from skill_ledger.domain.events import registered_topics, stream_uuid

from .sqlite import LedgerApplication, StoredRow, chained, iter_rows

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
    readable = registered_topics()
    newest_format = min(CHAIN_FORMATS)
    for row in iter_rows(app):
        count += 1
        if row.position != expected_position:
            problems.append(Problem(expected_position, "missing_event",
                                    f"positions jump from {expected_position - 1} to {row.position}: events deleted"))
        expected_position = row.position + 1
        state = _decoded(row)
        problems += check_stream_bindings(row, state)
        problems += check_topic(row, readable)
        problems += check_chain_format(row, newest_format)
        newest_format = max(newest_format, row.chain_format)
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
        problems += check_hash(row, state)
        state = state or {}
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


# --- every stored column against what the hash covers --------------------------------------


def _decoded(row: StoredRow) -> dict[str, Any] | None:
    """The stored state as a JSON object (None when it is not one)."""
    try:
        state = _decoder.decode(row.state)
    except msgspec.DecodeError:
        return None
    return state if isinstance(state, dict) else None


def check_stream_bindings(row: StoredRow, state: dict[str, Any] | None) -> list[Problem]:
    """The originator id is the name-based UUID of the event's stream (``domain.events``), and
    the chain row is this event's (same originator id and stream version). A stream moved to
    another originator id, or a chain row re-pointed, is found here in every chain format."""
    out = []
    stream = state.get("stream") if state else None
    if isinstance(stream, str):
        try:
            bound = originator_text(row.originator_id) == str(stream_uuid(stream))
        except ValueError:
            bound = False
        if not bound:
            out.append(Problem(row.position, "originator_mismatch",
                               f"stored under originator id {row.originator_id}, which is not the id of stream "
                               f"{stream!r} (events moved to another stream id)"))
    if row.hash is not None and (row.chain_originator_id != row.originator_id
                                 or row.chain_originator_version != row.originator_version):
        out.append(Problem(row.position, "chain_entry_mismatch",
                           "the hash-chain entry names another stream or stream version than its event"))
    return out


def check_topic(row: StoredRow, readable: frozenset[str]) -> list[Problem]:
    """The topic is one this version reads: a registered event class's current topic or one of
    its older versions (which an upcaster reads). Anything else would break every read."""
    if row.topic in readable:
        return []
    return [Problem(row.position, "unknown_topic",
                    f"topic {row.topic!r} is not an event this version can read (renamed or re-versioned)")]


def check_chain_format(row: StoredRow, newest_before: int) -> list[Problem]:
    """The chain format is one this version knows, and never goes back: once a journal writes
    format 2, a later format-1 entry is a downgrade (its originator id and topic unbound)."""
    if row.hash is None:
        return []
    if row.chain_format not in CHAIN_FORMATS:
        return [Problem(row.position, "chain_format", f"unknown hash-chain format {row.chain_format!r}")]
    if row.chain_format < newest_before:
        return [Problem(row.position, "chain_format",
                        f"hash-chain format {row.chain_format} after format {newest_before} (downgraded entry)")]
    return []


def check_hash(row: StoredRow, state: dict[str, Any] | None) -> list[Problem]:
    """The hash recomputed over the exported shape of the chain row's format; for format 2 also
    the stored state bytes recomputed from the hashed members."""
    if state is None:
        return [Problem(row.position, "undecodable", "stored event is not a JSON object")]
    try:
        exported = exported_event(row.position, row.originator_version, row.topic, state, row.prev_hash or "",
                                  chain=row.chain_format, originator_id=_originator(row), db_role=row.db_role)
        actual = event_hash(exported)
    except (KeyError, TypeError, ValueError) as e:
        return [Problem(row.position, "undecodable", f"stored event cannot be decoded: {e}")]
    if actual != row.hash:
        return [Problem(row.position, "hash_mismatch", "stored event does not match its hash (edited or moved)")]
    if row.chain_format >= 2 and state_bytes(exported) != row.state:
        return [Problem(row.position, "state_not_canonical",
                        "stored state bytes are not the canonical encoding of the hashed event (edited)")]
    return []


def _originator(row: StoredRow) -> str:
    try:
        return originator_text(row.originator_id)
    except ValueError:
        return str(row.originator_id)


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
