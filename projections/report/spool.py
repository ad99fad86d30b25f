"""Where a report keeps what grows with the window while it is made: a private SQLite file and
two files of rendered text, in a temporary directory of the caller's.

A report over a whole journal of a million events lists a million timeline entries, and may
hold tens of thousands of findings (every lifted quarantine is one) and denials. None of them
stays in memory: the folds hand each one to the spool as they meet it, and the document is
written from the spool at the end, in the document's order (``engine.py``):

* ``posture`` and ``timelines`` are files of text already rendered in the report's format,
  written one skill at a time in skill order (the order of the document);
* the SQLite file holds the skill streams to fold, the findings (sorted when written out), the
  events claims cite (the appendix, by position), the trust, rejection and other entries of
  the first pass (filtered when written out: the trust filter is only known at the end), the
  denials and rejections their findings aggregate, and each revocation's quarantines.

Values are stored as MessagePack of the report's own structs. The file is a scratch file:
no journal, no fsync; it is deleted with its directory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import msgspec

from .model import CitedEvent, Evidence, Finding, Rejection, RevocationQuarantine, TimelineEntry, UnenforcedVersion
from .state import KeyState, RevocationState

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE skills (skill_id TEXT PRIMARY KEY, oid TEXT NOT NULL UNIQUE, events INTEGER NOT NULL DEFAULT 0)
    WITHOUT ROWID;
CREATE TABLE keys (publisher TEXT NOT NULL, key_hex TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
                   body BLOB NOT NULL, PRIMARY KEY (publisher, key_hex)) WITHOUT ROWID;
CREATE TABLE revocations (position INTEGER PRIMARY KEY, publisher TEXT NOT NULL, key_hex TEXT NOT NULL,
                          body BLOB NOT NULL);
CREATE TABLE findings (kind INTEGER NOT NULL, first_position INTEGER NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL,
                       text BLOB);
CREATE TABLE cited (position INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE trust_events (position INTEGER PRIMARY KEY, publisher TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE other_events (position INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE rejections (position INTEGER PRIMARY KEY, digest TEXT NOT NULL, code TEXT NOT NULL, hash TEXT NOT NULL,
                         body BLOB NOT NULL);
CREATE TABLE denials (position INTEGER PRIMARY KEY, skill_id TEXT NOT NULL, version TEXT NOT NULL, tool TEXT,
                      code TEXT, publisher TEXT, hash TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE revocation_quarantines (revocation INTEGER NOT NULL, position INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE unenforced (seq INTEGER PRIMARY KEY, publisher TEXT NOT NULL, key_hex TEXT NOT NULL, body BLOB NOT NULL);
"""
# Built once the folds are done (an index maintained during a million inserts costs more).
_READ_INDEXES = """
CREATE INDEX findings_order ON findings (kind, first_position, id);
CREATE INDEX rejections_group ON rejections (digest, code, position);
CREATE INDEX denials_group ON denials (skill_id, version, tool, code, position);
CREATE INDEX revocation_quarantines_order ON revocation_quarantines (revocation, position);
CREATE INDEX unenforced_key ON unenforced (publisher, key_hex, seq);
"""
_INSERTS = {
    "skills": "INSERT OR IGNORE INTO skills (skill_id, oid) VALUES (?, ?)",
    "revocations": "INSERT INTO revocations VALUES (?, ?, ?, ?)",
    "findings": "INSERT INTO findings VALUES (?, ?, ?, ?, ?)",
    "cited": "INSERT OR IGNORE INTO cited VALUES (?, ?)",
    "trust_events": "INSERT INTO trust_events VALUES (?, ?, ?)",
    "other_events": "INSERT INTO other_events VALUES (?, ?)",
    "rejections": "INSERT INTO rejections VALUES (?, ?, ?, ?, ?)",
    "denials": "INSERT INTO denials VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "revocation_quarantines": "INSERT INTO revocation_quarantines VALUES (?, ?, ?)",
    "unenforced": "INSERT INTO unenforced (publisher, key_hex, body) VALUES (?, ?, ?)",
}
_BATCH = 2048
_encode = msgspec.msgpack.Encoder().encode
_decoders: dict[type, Any] = {}


def _decode(kind: type[T], body: bytes) -> T:
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.msgpack.Decoder(kind)
    return decoder.decode(body)  # type: ignore[no-any-return]


class Spool:
    """The scratch storage of one report (see the module docstring)."""

    def __init__(self, directory: Path, *, render_finding: Callable[[Finding], bytes] | None = None) -> None:
        """``render_finding``: a finding as the document will show it, rendered as it is spooled
        (in whichever process folds it, rather than all at the end in this one)."""
        self.directory = Path(directory)
        self.render_finding = render_finding
        self.con = sqlite3.connect(self.directory / "spool.db", isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", "cache_size=-4096"):
            self.con.execute(f"PRAGMA {pragma}")
        self.con.executescript(_SCHEMA)
        self.con.execute("BEGIN")
        self._pending: dict[str, list[tuple[Any, ...]]] = {name: [] for name in _INSERTS}
        self._count = 0
        self.posture: BinaryIO = open(self.directory / "posture", "w+b")  # noqa: SIM115 - closed in close()
        self.timelines: BinaryIO = open(self.directory / "timelines", "w+b")  # noqa: SIM115
        self._following: list[Path] = []  # spools absorbed: their rendered files follow ours (``chunks``)
        self._joiner = b""

    def close(self) -> None:
        self.posture.close()
        self.timelines.close()
        self.con.close()

    # --- writing ------------------------------------------------------------------------------

    def _add(self, table: str, row: tuple[Any, ...]) -> None:
        self._pending[table].append(row)
        self._count += 1
        if self._count >= _BATCH:
            self.flush()

    def flush(self) -> None:
        for table, rows in self._pending.items():
            if rows:
                self.con.executemany(_INSERTS[table], rows)
                rows.clear()
        self._count = 0

    def skill(self, skill_id: str, oid: str) -> None:
        self._add("skills", (skill_id, oid))

    def skill_counts(self, counts: Iterable[tuple[int, str]]) -> None:
        """(events, originator id) of the skill streams (how the second pass splits them)."""
        self.flush()
        self.con.executemany("UPDATE skills SET events = ? WHERE oid = ?", counts)

    def key(self, publisher: str, key_hex: str) -> KeyState | None:
        row = self.con.execute("SELECT body FROM keys WHERE publisher = ? AND key_hex = ?",
                               (publisher, key_hex)).fetchone()
        return _decode(KeyState, row[0]) if row else None

    def put_key(self, k: KeyState) -> None:
        self.con.execute("INSERT OR REPLACE INTO keys VALUES (?, ?, ?, ?, ?)",
                         (k.publisher, k.key_hex, k.kind, k.state, _encode(k)))

    def keys(self, where: str = "1", params: tuple[Any, ...] = ()) -> Iterator[KeyState]:
        """The keys (matching ``where``, a fixed SQL condition of this module), by publisher and key."""
        for (body,) in self.con.execute(f"SELECT body FROM keys WHERE {where} ORDER BY publisher, key_hex", params):
            yield _decode(KeyState, body)

    def revocation(self, r: RevocationState) -> None:
        self._add("revocations", (r.ref.position, r.publisher, r.key_hex, _encode(r)))

    def revocations(self) -> Iterator[RevocationState]:
        self.flush()
        for (body,) in self.con.execute("SELECT body FROM revocations ORDER BY position"):
            yield _decode(RevocationState, body)

    def cite(self, ref: CitedEvent) -> Evidence:
        """Register a cited event (the appendix lists it unless it is shown as an entry)."""
        self._add("cited", (ref.position, _encode(ref)))
        return Evidence(position=ref.position, hash=ref.hash)

    def finding(self, kind_index: int, finding: Finding) -> None:
        first = finding.evidence[0].position if finding.evidence else 0
        text = self.render_finding(finding) if self.render_finding is not None else None
        self._add("findings", (kind_index, first, finding.id, _encode(finding), text))

    def trust_event(self, publisher: str, entry: TimelineEntry) -> None:
        self._add("trust_events", (entry.position, publisher, _encode(entry)))

    def other_event(self, entry: TimelineEntry) -> None:
        self._add("other_events", (entry.position, _encode(entry)))

    def rejection(self, r: Rejection) -> None:
        self._add("rejections", (r.position, r.artifact_sha256, r.error_code, r.hash, _encode(r)))

    def denial(self, skill_id: str, version: str, tool: str | None, code: str | None, publisher: str | None,
               ref: CitedEvent) -> None:
        self._add("denials", (ref.position, skill_id, version, tool, code, publisher, ref.hash, _encode(ref)))

    def revocation_quarantine(self, revocation: int, q: RevocationQuarantine) -> None:
        self._add("revocation_quarantines", (revocation, q.position, _encode(q)))

    def unenforced(self, publisher: str, key_hex: str, u: UnenforcedVersion) -> None:
        self._add("unenforced", (publisher, key_hex, _encode(u)))

    def commit(self) -> None:
        """Make everything written so far durable in the file (another process may absorb it)."""
        self.flush()
        self.con.execute("COMMIT")
        for f in (self.posture, self.timelines):
            f.flush()
        self.con.execute("BEGIN")

    def absorb(self, directory: Path, joiner: bytes) -> None:
        """Append what another spool (of the next range of skills) holds: its rows, and its
        posture and timeline files after ours (``joiner`` between two non-empty parts: a
        JSON list's comma). The files are not copied: :meth:`chunks` reads them after ours (at
        1M events, half a gigabyte less to write and read again)."""
        self.flush()
        self.con.execute("COMMIT")  # ATTACH is refused inside a transaction
        self.con.execute("ATTACH DATABASE ? AS other", (str(Path(directory) / "spool.db"),))
        try:
            self.con.executescript("""
                BEGIN;
                INSERT INTO findings SELECT * FROM other.findings;
                INSERT OR IGNORE INTO cited SELECT * FROM other.cited;
                INSERT INTO denials SELECT * FROM other.denials;
                INSERT INTO revocation_quarantines SELECT * FROM other.revocation_quarantines;
                INSERT INTO unenforced (publisher, key_hex, body)
                    SELECT publisher, key_hex, body FROM other.unenforced ORDER BY seq;
                COMMIT;""")
        finally:
            self.con.execute("DETACH DATABASE other")
        self.con.execute("BEGIN")
        self._following.append(Path(directory))
        self._joiner = joiner

    def chunks(self, name: str, size: int = 1 << 18) -> Iterator[bytes]:
        """The rendered file ``name`` (``posture`` or ``timelines``) in order: ours, then those of
        the spools absorbed, with the joiner between two non-empty parts."""
        mine = self.posture if name == "posture" else self.timelines
        mine.flush()
        mine.seek(0)
        started = False
        for directory in (None, *self._following):
            f = mine if directory is None else open(directory / name, "rb")  # noqa: SIM115 - closed below
            try:
                chunk = f.read(size)
                if chunk and started:
                    yield self._joiner
                while chunk:
                    started = True
                    yield chunk
                    chunk = f.read(size)
            finally:
                if f is not mine:
                    f.close()

    def seal(self) -> None:
        """The folds are done: commit and index for the reads that write the document."""
        self.flush()
        self.con.execute("COMMIT")
        self.con.executescript(_READ_INDEXES)

    # --- reading ------------------------------------------------------------------------------

    def skill_events(self) -> int:
        """The rows of every skill stream up to the window end (the second pass's work)."""
        self.flush()
        return int(self.con.execute("SELECT coalesce(sum(events), 0) FROM skills").fetchone()[0])

    def skill_ranges(self, count: int) -> list[tuple[str | None, str | None]]:
        """``count`` (or fewer) contiguous ranges of skill ids ``[first, next first)`` with about as
        many events each (None: open-ended)."""
        self.flush()
        total = int(self.con.execute("SELECT coalesce(sum(events), 0) FROM skills").fetchone()[0])
        starts: list[str | None] = [None]
        if total == 0:
            return [(None, None)]
        done = 0
        for skill_id, events in self.con.execute("SELECT skill_id, events FROM skills ORDER BY skill_id"):
            if len(starts) < count and done >= total * len(starts) / count:
                starts.append(skill_id)
            done += events
        return [(lo, starts[i + 1] if i + 1 < len(starts) else None) for i, lo in enumerate(starts)]

    def skills(self, first: str | None = None, stop: str | None = None) -> Iterator[tuple[str, str]]:
        """(skill id, originator id) of the skill streams with ``first <= id < stop``, by skill id
        (a cursor of its own: the second pass writes to the other tables while it reads this one)."""
        self.flush()
        return iter(self.con.execute(
            "SELECT skill_id, oid FROM skills WHERE (?1 IS NULL OR skill_id >= ?1) AND (?2 IS NULL OR skill_id < ?2) "
            "ORDER BY skill_id", (first, stop)))

    def findings_of(self, kind_index: int) -> Iterator[tuple[str, bytes | None, Callable[[], Finding]]]:
        """(id, rendered text or None, the finding) of each finding of a kind, in the document's
        order (the finding is decoded only when asked for)."""
        for fid, body, text in self.con.execute(
                "SELECT id, body, text FROM findings WHERE kind = ? ORDER BY first_position, id", (kind_index,)):
            yield fid, text, lambda body=body: _decode(Finding, body)

    def finding_count(self, kind_index: int) -> int:
        return int(self.con.execute("SELECT count(*) FROM findings WHERE kind = ?", (kind_index,)).fetchone()[0])

    def duplicate_finding_ids(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT id FROM findings GROUP BY id HAVING count(*) > 1")}

    def rejection_groups(self) -> Iterator[tuple[Rejection, Rejection, int]]:
        """(first, last, count) of the rejections of each artifact and error code, by first position."""
        groups = self.con.execute(
            "SELECT f.body, l.body, g.n FROM (SELECT min(position) AS a, max(position) AS b, count(*) AS n "
            "FROM rejections GROUP BY digest, code) g JOIN rejections f ON f.position = g.a "
            "JOIN rejections l ON l.position = g.b ORDER BY g.a")
        for first, last, count in groups:  # (one query, not three a group: 46k groups at 1M events)
            yield _decode(Rejection, first), _decode(Rejection, last), count

    def rejection_group_count(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM (SELECT 1 FROM rejections GROUP BY digest, code)")
                   .fetchone()[0])

    def rejection_evidence(self, digest: str, code: str) -> Iterator[Evidence]:
        for position, hash_ in self.con.execute("SELECT position, hash FROM rejections WHERE digest = ? AND code = ? "
                                                "ORDER BY position", (digest, code)):
            yield Evidence(position=position, hash=hash_)

    def rejections(self) -> Iterator[Rejection]:
        for (body,) in self.con.execute("SELECT body FROM rejections ORDER BY position"):
            yield _decode(Rejection, body)

    def denial_groups(self) -> Iterator[tuple[str, str, str | None, str | None, str | None, CitedEvent, CitedEvent,
                                              int]]:
        """(skill, version, tool, code, publisher, first, last, count) of the denials of each
        skill, version, tool and reason code, by first position."""
        groups = self.con.execute(
            "SELECT g.skill_id, g.version, g.tool, g.code, f.publisher, f.body, l.body, g.n FROM "
            "(SELECT skill_id, version, tool, code, min(position) AS a, max(position) AS b, count(*) AS n "
            "FROM denials GROUP BY skill_id, version, tool, code) g JOIN denials f ON f.position = g.a "
            "JOIN denials l ON l.position = g.b ORDER BY g.a")
        for skill_id, version, tool, code, publisher, first_body, last_body, count in groups:
            yield (skill_id, version, tool, code, publisher, _decode(CitedEvent, first_body),
                   _decode(CitedEvent, last_body), count)

    def denial_group_count(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM (SELECT 1 FROM denials GROUP BY skill_id, version, tool, "
                                    "code)").fetchone()[0])

    def denial_evidence(self, skill_id: str, version: str, tool: str | None, code: str | None) -> Iterator[Evidence]:
        rows = self.con.execute("SELECT position, hash FROM denials WHERE skill_id = ? AND version = ? AND tool IS ? "
                                "AND code IS ? ORDER BY position", (skill_id, version, tool, code))
        for position, hash_ in rows:
            yield Evidence(position=position, hash=hash_)

    def trust_events(self, publishers: set[str] | None) -> Iterator[tuple[str, TimelineEntry]]:
        for publisher, body in self.con.execute("SELECT publisher, body FROM trust_events ORDER BY position"):
            if publishers is None or publisher in publishers or publisher == "":  # "": a registry's (kept by the fold)
                yield publisher, _decode(TimelineEntry, body)

    def other_events(self) -> Iterator[TimelineEntry]:
        for (body,) in self.con.execute("SELECT body FROM other_events ORDER BY position"):
            yield _decode(TimelineEntry, body)

    def revocation_quarantines(self, revocation: int) -> list[RevocationQuarantine]:
        rows = self.con.execute("SELECT body FROM revocation_quarantines WHERE revocation = ? ORDER BY position",
                                (revocation,))
        return [_decode(RevocationQuarantine, body) for (body,) in rows]

    def unenforced_of(self, publisher: str, key_hex: str) -> list[UnenforcedVersion]:
        rows = self.con.execute("SELECT body FROM unenforced WHERE publisher = ? AND key_hex = ? ORDER BY seq",
                                (publisher, key_hex))
        return [_decode(UnenforcedVersion, body) for (body,) in rows]

    def cited(self, shown: Any = ()) -> Iterator[CitedEvent]:
        """The cited events by position, but those in ``shown`` (a container of positions)."""
        for position, body in self.con.execute("SELECT position, body FROM cited ORDER BY position"):
            if position not in shown:
                yield _decode(CitedEvent, body)
