"""Confirming a run from the journal: deciding to run reads the write side (issue 11).

The views (``views.db``) only *find* the candidate: which skill version declares the tool.
Before anything is loaded, the gate replays three streams of the journal into their
aggregates and takes from them everything the run depends on:

* ``skill:<id>`` (``Skill``): the version is installed, current (or the one asked for),
  ``active`` and eligible (``domain/eligibility.py``, an operator's override included), and
  the artifact digest, payload hash, signing key and manifest (so the grants and quotas)
  recorded at install;
* ``publisher:<name>`` (``Publisher``): the signing key is trusted now (allowlisted or the
  TOFU pin, and not revoked);
* ``policy:audit`` (``AuditPolicy``): the caps the effective limits are taken under.

The views' copy of the same facts is compared with the journal's (:func:`differences`); any
difference is drift, which the gate reports and repairs, and the call is refused.

Read path: a read-only SQLite connection (PostgreSQL: the journal's recorder) and
``domain/codec.py``'s decoder, one indexed query per stream, no eventsourcing application.
A confirmation names the journal position it was read at and the streams it read; at a later
position one query (:meth:`JournalReader.changed`, over the events appended since) tells
whether it still holds, so a long-lived ``Runner`` re-reads a stream only when that stream
changed, and a one-shot ``skills run`` reads each stream once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from skill_ledger.domain.audit_policy import POLICY_KEY, AuditPolicy
from skill_ledger.domain.codec import decode_event
from skill_ledger.domain.eligibility import compat_problem, eligibility, is_overridden
from skill_ledger.domain.errors import JournalTampered, JournalUnavailable, SkillLedgerError, TrustError
from skill_ledger.domain.events import LedgerAggregate
from skill_ledger.domain.policy import PolicyValues
from skill_ledger.domain.publisher import REVOKED, Publisher
from skill_ledger.domain.skill import ACTIVE, Skill

Row = tuple[int, int, str, bytes]  # position, stream version, topic, state

__all__ = ["Confirmed", "JournalReader", "confirm_version", "differences", "open_reader", "refusal"]


# --- reading streams ---------------------------------------------------------------------------


class JournalReader:
    """The journal, read-only: its head, one stream's events, and whether streams changed."""

    def head(self) -> int | None:
        """The newest position (0: empty); ``None`` when there is no journal yet."""
        raise NotImplementedError

    def rows(self, originator_id: str, until: int) -> list[Row]:
        raise NotImplementedError

    def changed(self, originator_ids: Sequence[str], after: int, until: int) -> bool:
        """Whether any of these streams has an event in (after, until]."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class SqliteReader(JournalReader):
    """A ``mode=ro`` connection to ``journal.db``; positions are rowids, assigned in commit order,
    so every event up to a head that was read is visible (no read transaction needed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._con: sqlite3.Connection | None = None
        self._location: Any = None  # how the file was opened (a private copy to delete on close)

    def _connect(self) -> sqlite3.Connection | None:
        if self._con is None:
            if not self.path.exists():
                return None
            from skill_ledger.adapters.journal.sqlite_files import read_only_location

            try:  # a read-only home (an evidence copy on read-only media) needs another URI, or a copy
                self._location = read_only_location(self.path)
                self._con = sqlite3.connect(self._location.db_name, uri=True, timeout=30, check_same_thread=False)
            except sqlite3.Error as e:
                raise _unavailable(self.path, e) from None
        return self._con

    def head(self) -> int | None:
        con = self._connect()
        if con is None:
            return None
        try:
            return con.execute("SELECT max(rowid) FROM stored_events").fetchone()[0] or 0
        except sqlite3.Error as e:
            if "no such table" in str(e):
                return None  # created, not initialised yet: no journal to speak of
            raise _unavailable(self.path, e) from None

    def rows(self, originator_id: str, until: int) -> list[Row]:
        con = self._connect()
        if con is None:
            return []
        try:
            return [(p, v, t, bytes(s)) for p, v, t, s in con.execute(
                "SELECT rowid, originator_version, topic, state FROM stored_events "
                "WHERE originator_id = ? AND rowid <= ? ORDER BY originator_version", (originator_id, until))]
        except sqlite3.Error as e:
            raise _unavailable(self.path, e) from None

    def changed(self, originator_ids: Sequence[str], after: int, until: int) -> bool:
        con = self._connect()
        if con is None:
            return True
        marks = ",".join("?" * len(originator_ids))
        try:  # a rowid range: only the events appended since are looked at
            return con.execute(f"SELECT 1 FROM stored_events WHERE rowid > ? AND rowid <= ? "
                               f"AND originator_id IN ({marks}) LIMIT 1",
                               (after, until, *originator_ids)).fetchone() is not None
        except sqlite3.Error as e:
            raise _unavailable(self.path, e) from None

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._location is not None:
            from skill_ledger.adapters.journal.sqlite_files import remove_copy

            remove_copy(self._location)
            self._location = None


class RecorderReader(JournalReader):
    """Any other journal (PostgreSQL) through its recorder's reads; positions are assigned under
    the events table's write lock, so they too are commit order."""

    def __init__(self, journal_url: str) -> None:
        from skill_ledger.adapters.journal.sqlite import open_journal

        self.app = open_journal(journal_url)

    def head(self) -> int | None:
        return self.app.recorder.max_notification_id() or 0

    def rows(self, originator_id: str, until: int) -> list[Row]:
        from skill_ledger.adapters.journal.sqlite import iter_rows

        rows = [(r.position, r.originator_version, r.topic, r.state)
                for r in iter_rows(self.app, until=until, originator_ids=[originator_id])]
        return sorted(rows, key=lambda r: r[1])

    def changed(self, originator_ids: Sequence[str], after: int, until: int) -> bool:
        from skill_ledger.adapters.journal.sqlite import chained

        return bool(chained(self.app).select_rows(after, until, (), list(originator_ids), 1))

    def close(self) -> None:
        self.app.close()


def open_reader(settings: Any) -> JournalReader:
    if settings.journal_is_sqlite:
        return SqliteReader(Path(settings.journal_path))
    return RecorderReader(settings.journal_url)


def _unavailable(path: Path, e: Exception) -> JournalUnavailable:
    return JournalUnavailable(f"cannot read the journal at {path}: {e}", {"journal": str(path)})


def replay(reader: JournalReader, cls: type[LedgerAggregate], key: str, until: int) -> Any:
    """The aggregate ``<prefix>:<key>`` as of position ``until`` (blank when the stream is empty).

    Every event must belong to the stream by name as well as by id: the stream name is inside
    the hashed state, the id is not, so an event moved to another stream's id is refused."""
    aggregate = cls.start(key)
    stream = aggregate.stream
    for position, version, topic, state in reader.rows(aggregate.id.hex, until):
        try:
            event = decode_event(topic, state, aggregate.id, version)
            if event.stream != stream:
                raise ValueError(f"it names the stream {event.stream!r}")
            event.mutate(aggregate)
        except JournalTampered:
            raise
        except Exception as e:  # noqa: BLE001 - whatever the library or the codec raise
            raise JournalTampered(f"the journal's event at position {position} cannot be read as part of {stream}: "
                                  f"{e}", {"stream": stream, "position": position}) from None
    return aggregate


# --- the confirmation ------------------------------------------------------------------------


class Confirmed(msgspec.Struct, frozen=True, kw_only=True):
    """What the journal says about one version, as of ``head``."""

    skill_id: str
    version: str | None  # None: the journal has no such (or no current) version
    head: int
    streams: tuple[str, ...]  # the originator ids read (stream UUIDs, hex)
    installed: bool = False
    current: bool = False
    status: str | None = None  # "removed" for a version that was installed and removed
    status_reason_code: str | None = None
    eligible: bool = False
    reasons: tuple[str, ...] = ()
    publisher: str = ""
    key_hex: str = ""
    key_id: str = ""
    artifact_sha256: str = ""
    payload_sha256: str = ""
    manifest: dict[str, Any] = {}
    trust_decision: str | None = None
    trust_problem: tuple[str, str] | None = None  # (code, message): the key is not trusted now
    policy: PolicyValues = PolicyValues()
    policy_version: int = 0


def confirm_version(reader: JournalReader, skill_id: str, version: str | None, head: int) -> Confirmed:
    """Replay the skill's, its publisher's and the policy's streams up to ``head`` and confirm
    ``version`` (``None``: the current one)."""
    policy: AuditPolicy = replay(reader, AuditPolicy, POLICY_KEY, head)
    skill: Skill = replay(reader, Skill, skill_id, head)
    chosen = version if version is not None else skill.current
    v = skill.versions.get(chosen) if chosen is not None else None
    if v is None:
        return Confirmed(skill_id=skill_id, version=None, head=head, streams=(policy.id.hex, skill.id.hex),
                         policy=policy.values, policy_version=policy.policy_version)
    publisher: Publisher = replay(reader, Publisher, v.publisher, head)
    key = publisher.keys.get(v.key_hex)
    revoked = key is not None and key.state == REVOKED
    compat = v.manifest.get("compat") if isinstance(v.manifest, dict) else None
    ok, reasons = eligibility(
        installed=v.installed, status=v.status, key_revoked=revoked,
        last_audit_passed=None if v.last_audit is None else bool(v.last_audit["passed"]),
        compat=compat_problem(compat if isinstance(compat, dict) else None),
        overridden=is_overridden(v.status, v.status_reason_code))
    trust_decision, trust_problem = None, None
    try:
        trust_decision = publisher.trust_decision(v.key_hex, allow_tofu=False).value
    except TrustError as e:
        trust_problem = (e.code, e.message)
    except SkillLedgerError as e:  # a malformed key in the journal: not trusted either
        trust_problem = (e.code, e.message)
    return Confirmed(
        skill_id=skill_id, version=v.version, head=head, streams=(policy.id.hex, skill.id.hex, publisher.id.hex),
        installed=v.installed, current=skill.current == v.version,
        status=v.status if v.installed else "removed", status_reason_code=v.status_reason_code if v.installed else None,
        eligible=ok, reasons=tuple(reasons), publisher=v.publisher, key_hex=v.key_hex, key_id=v.key_id,
        artifact_sha256=v.artifact_sha256, payload_sha256=v.payload_sha256, manifest=v.manifest,
        trust_decision=trust_decision, trust_problem=trust_problem,
        policy=policy.values, policy_version=policy.policy_version)


def refusal(c: Confirmed) -> tuple[str, list[str]] | None:
    """``None`` when the confirmed version may run, else (reason code, reasons)."""
    reasons = list(c.reasons)
    if not c.installed:
        return "not_installed", reasons or ["not_installed"]
    if c.status != ACTIVE:
        code = c.status or "not_active"
        return code, reasons or [code]
    if not c.eligible:
        return (reasons[0] if reasons else "not_eligible"), reasons or ["not_eligible"]
    if c.trust_problem is not None:
        return c.trust_problem[0], [c.trust_problem[0]]
    return None


# --- the views against the journal -------------------------------------------------------------

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def differences(row: Any, c: Confirmed, tool_declared: bool) -> list[dict[str, Any]]:
    """Where the views' row of a version disagrees with the journal (empty: they agree).

    ``row`` is a ``versions`` row joined with its manifest; ``tool_declared``: whether the
    journal's manifest declares the tool the views resolved to this version."""
    if c.version is None:
        return [{"field": "version", "views": row["version"], "journal": None}]
    if row["version"] != c.version:  # looked up as the current version: the views name another one
        return [{"field": "current", "views": row["version"], "journal": c.version}]
    pairs = [
        ("installed", bool(row["installed"]), c.installed),
        ("current", bool(row["current"]), c.current),
        ("status", row["status"], c.status),
        ("eligible", bool(row["eligible"]), c.eligible),
        ("eligibility_reasons", _reasons(row["eligibility_reasons"]), list(c.reasons)),
        ("publisher", row["publisher"], c.publisher),
        ("key_hex", row["key_hex"], c.key_hex),
        ("artifact_sha256", row["artifact_sha256"], c.artifact_sha256),
        ("payload_sha256", row["payload_sha256"], c.payload_sha256),
    ]
    out = [{"field": f, "views": a, "journal": b} for f, a, b in pairs if a != b]
    if not _same_manifest(row["manifest"], c.manifest):
        out.append({"field": "manifest", "views": "(differs)", "journal": "(as recorded at install)"})
    if not tool_declared:
        out.append({"field": "tools", "views": "declares the tool", "journal": "does not declare it"})
    return out


def _reasons(text: str | None) -> Any:
    try:
        return _decode(text or "[]")
    except msgspec.DecodeError:
        return text


def _same_manifest(text: str | None, manifest: dict[str, Any]) -> bool:
    if text is None:
        return False
    raw = text.encode("utf-8")
    if raw == _encode(manifest):  # the views keep the recorded bytes: the usual case
        return True
    try:
        return bool(_decode(raw) == manifest)
    except msgspec.DecodeError:
        return False


def stream_ids(*streams: str) -> tuple[str, ...]:
    """Originator ids (hex) of stream names (tests and diagnostics)."""
    from skill_ledger.domain.events import stream_uuid

    return tuple(stream_uuid(s).hex for s in streams)
