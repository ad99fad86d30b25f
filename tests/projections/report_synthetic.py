"""Synthetic journals in the exported event shape (``events.md``) for the report's streaming
and determinism tests and the timing in the report: every kind the report reads, in the
proportions of a busy fleet, with deterministic times and (fake, unique) hashes.

The hashes are not a real chain: the report does not verify chains (``journal verify``
does, and its result is an argument of ``build_report``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PUBLISHERS = ("acme", "globex", "initech", "umbrella", "hooli")


def key_hex(publisher: str) -> str:
    return (publisher.encode().hex() * 64)[:64]


def _manifest(skill_id: str, version: str, publisher: str) -> dict[str, Any]:
    return {"manifest_version": 2, "skill_id": skill_id, "name": f"Skill {skill_id}", "version": version,
            "publisher": publisher, "compat": {"required_protocol_major": 1, "min_palyra_version": "0.1.0"},
            "entrypoints": {"tools": [{"id": f"{publisher}.echo", "name": "echo", "description": "Echo",
                                       "input_schema": {"type": "object"}, "output_schema": {"type": "object"}}]},
            "operator": {"display_name": "Synthetic", "description": "A synthetic skill for tests"}}


class Journal:
    """Appends events with consecutive positions, per-stream versions and one second apart."""

    def __init__(self) -> None:
        self.position = 0
        self.versions: dict[str, int] = {}

    def event(self, stream: str, kind: str, data: dict[str, Any], principal: str = "user:ops") -> dict[str, Any]:
        self.position += 1
        if stream.startswith("intake:"):  # one stream per artifact: never tracked, so the generator stays small
            version = 1
        else:
            version = self.versions[stream] = self.versions.get(stream, 0) + 1
        return {"position": self.position,
                "recorded_at": (BASE + dt.timedelta(seconds=self.position)).isoformat(),
                "stream": stream, "stream_version": version, "kind": kind,
                "actor": {"principal": principal, "host": "host-1", "command": kind.split(".")[-1]},
                "data": data, "prev_hash": f"{self.position - 1:064x}", "hash": f"{self.position:064x}"}


def _install(j: Journal, skill_id: str, version: str, publisher: str) -> Iterator[dict[str, Any]]:
    stream = f"skill:{skill_id}"
    digest = f"{abs(hash((skill_id, version))) % (1 << 64):064x}"
    yield j.event(stream, "skill.artifact_verified", {
        "version": version, "publisher": publisher, "payload_sha256": digest, "artifact_sha256": digest,
        "key_id": f"{publisher}-key", "key_hex": key_hex(publisher), "trust_decision": "allowlisted",
        "manifest": _manifest(skill_id, version, publisher), "manifest_warnings": [], "source": "test"})
    yield j.event(stream, "skill.audited", {"version": version, "trigger": "install", "policy_version": 0,
                                            "passed": True, "should_quarantine": False, "checks": [],
                                            "quarantine_reasons": []})
    yield j.event(stream, "skill.installed", {"version": version, "artifact_sha256": digest,
                                              "payload_sha256": digest, "blob": digest})
    yield j.event(stream, "skill.current_changed", {"from_version": None, "to_version": version,
                                                    "cause": "install", "reason": None})
    yield j.event(stream, "skill.activated", {"version": version})


def synthetic_events(n: int, *, skills: int = 50) -> Iterator[dict[str, Any]]:
    """``n`` events: installs of ``skills`` skills, then a mix of audits, denials, verifications,
    quarantines and enables, rejections, unknown kinds, policy changes and checkpoints."""
    j = Journal()
    ids = [(f"{PUBLISHERS[i % len(PUBLISHERS)]}.skill{i}", PUBLISHERS[i % len(PUBLISHERS)]) for i in range(skills)]
    for p in PUBLISHERS:
        yield j.event(f"publisher:{p}", "publisher.key_allowlisted",
                      {"key_hex": key_hex(p), "key_id": f"{p}-key", "reason": "onboarding"})
    for skill_id, publisher in ids:
        yield from _install(j, skill_id, "1.0.0", publisher)
    step = 0
    while j.position < n:
        skill_id, publisher = ids[step % skills]
        stream, phase, step = f"skill:{skill_id}", step % 12, step + 1
        if phase == 0:
            yield j.event(stream, "skill.audited", {"version": "1.0.0", "trigger": "periodic", "policy_version": 0,
                                                    "passed": True, "should_quarantine": False,
                                                    "checks": [{"check_id": "c1", "status": "pass"}],
                                                    "quarantine_reasons": []}, "service:reaudit")
        elif phase == 1:
            yield j.event(stream, "skill.execution_denied", {"version": "1.0.0", "tool_id": f"{publisher}.echo",
                                                             "reason_code": "quarantined"}, "agent:bot")
        elif phase == 2:
            yield j.event(stream, "skill.verified", {"version": "1.0.0", "payload_sha256": "0" * 64,
                                                     "trust_decision": "allowlisted"})
        elif phase == 3:
            yield j.event(stream, "skill.quarantined", {"version": "1.0.0", "reason_code": "operator",
                                                        "reason": "looks odd", "details": {}})
        elif phase == 4:
            yield j.event(stream, "skill.enabled", {"version": "1.0.0", "override": False, "audit_passed": True,
                                                    "reason": "checked"})
        elif phase == 5:
            yield j.event(f"intake:{j.position:064x}", "artifact.rejected", {
                "artifact_sha256": f"{j.position:064x}", "source": "file:/tmp/x", "error_code": "signature",
                "message": "bad signature", "details": {}, "skill_id": skill_id, "version": "9.9.9",
                "publisher": publisher})
        elif phase == 6:
            yield j.event(f"secret:{skill_id}", "secret.set", {"skill_id": skill_id, "key": "token"})
        elif phase == 7 and j.position % 997 < 12:
            yield j.event("policy:audit", "policy.changed", {
                "policy": {"max_module_bytes": 1000 + j.position, "max_exported_functions": 64,
                           "allow_device_capabilities": False, "allow_wildcard_capabilities": False,
                           "allowed_import_modules": ["skills:host/v1"], "vulnerability_feed_path": None},
                "changed": ["max_module_bytes"], "reason": "growth"})
        elif phase == 8 and j.position % 1009 < 12:
            yield j.event("journal:checkpoints", "journal.checkpoint", {
                "position": j.position, "root_hash": "f" * 64, "event_count": j.position, "key_id": "jk",
                "public_key_hex": "e" * 64, "signature": "d" * 128})
        else:
            yield j.event(stream, "skill.disabled", {"version": "1.0.0", "reason": "maintenance"})
            yield j.event(stream, "skill.enabled", {"version": "1.0.0", "override": False, "audit_passed": True,
                                                    "reason": "back"})


class SqliteJournal:
    """Synthetic events in a SQLite file, read back as journal rows (``ReportSource``): the engine
    streams from it as it does from a real journal, so its memory can be measured without the
    events themselves being held by the test. One row per event: position, stream id (the
    stream name's UUID, as the ledger derives it), stream version, topic, stored state, hash."""

    def __init__(self, path: Any, events: Iterator[dict[str, Any]]) -> None:
        import sqlite3

        import msgspec

        from skill_ledger.domain.events import stream_uuid

        self.con = sqlite3.connect(str(path))
        self.con.execute("CREATE TABLE rows (position INTEGER PRIMARY KEY, oid TEXT NOT NULL, "
                         "version INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB NOT NULL, hash TEXT NOT NULL)")
        encode = msgspec.json.encode
        oids: dict[str, str] = {}

        def rows() -> Iterator[tuple[Any, ...]]:
            for e in events:
                oid = oids.get(e["stream"])
                if oid is None:
                    oid = stream_uuid(e["stream"]).hex
                    if len(oids) < 100_000:
                        oids[e["stream"]] = oid
                state = {**e["data"], "timestamp": e["recorded_at"], "stream": e["stream"], "actor": e["actor"]}
                yield (e["position"], oid, e["stream_version"], f"{e['kind']}.v1", encode(state), e["hash"])

        self.con.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?)", rows())
        self.con.execute("CREATE INDEX rows_stream ON rows (oid, position)")
        self.con.commit()

    def close(self) -> None:
        self.con.close()

    def _select(self, where: str, params: list[Any], topics: Any) -> Iterator[Any]:
        from types import SimpleNamespace

        if topics:
            where += f" AND topic IN ({','.join('?' * len(topics))})"
            params += list(topics)
        cur = self.con.execute("SELECT position, oid, version, topic, state, hash FROM rows WHERE " + where
                               + " ORDER BY position", params)
        while True:
            batch = cur.fetchmany(1000)
            if not batch:
                return
            for p, oid, v, topic, state, h in batch:
                yield SimpleNamespace(position=p, originator_id=oid, originator_version=v, topic=topic, state=state,
                                      hash=h)

    def head(self) -> tuple[int, str | None]:
        row = self.con.execute("SELECT position, hash FROM rows ORDER BY position DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, None)

    def rows(self, *, after: int = 0, until: int | None = None, topics: Any = ()) -> Iterator[Any]:
        return self._select("position > ? AND position <= ?", [after, until if until is not None else 1 << 62],
                            topics)

    def stream_rows(self, originator_id: str, *, until: int | None, topics: Any = ()) -> Iterator[Any]:
        return self._select("oid = ? AND position <= ?", [originator_id, until if until is not None else 1 << 62],
                            topics)
