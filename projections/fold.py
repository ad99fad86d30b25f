"""How each journal event changes the read model: a fold over plain event records.

The fold works on rows in memory (dicts keyed like the tables) and asks a loader for
rows it has not seen in this batch; the store writes the dirty rows back in the same
transaction as the tracking positions. Nothing here depends on *when* a row was
loaded, so a rebuild and an incremental catch-up produce identical tables.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

import msgspec

from domain.eligibility import compat_problem, eligibility
from domain.grammars import parse_semver_lenient
from domain.text import WS

from .schema import VERSION_COLUMNS

_json = msgspec.json.Encoder()

VersionKey = tuple[str, str]
TrustKey = tuple[str, str]


def jdump(value: Any) -> str:
    return _json.encode(value).decode("utf-8")


def fixed_time(timestamp: str) -> str:
    """A fixed-width UTC ISO 8601 form (microseconds always present), so text order is time order."""
    # The journal writes UTC as "YYYY-MM-DDTHH:MM:SS[.ffffff]Z": handle that without a datetime.
    if timestamp.endswith("Z") and len(timestamp) in (20, 27) and timestamp[10] == "T":
        return (timestamp[:-1] if len(timestamp) == 27 else timestamp[:-1] + ".000000") + "+00:00"
    t = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


@functools.lru_cache(maxsize=1024)
def _eligibility(installed: int, status: str | None, key_revoked: int, last_audit_passed: int | None,
                 compat: str | None) -> tuple[int, str]:
    """(eligible, reasons as JSON) of a version row; few distinct inputs, so remembered."""
    ok, reasons = eligibility(installed=bool(installed), status=status, key_revoked=bool(key_revoked),
                              last_audit_passed=None if last_audit_passed is None else bool(last_audit_passed),
                              compat=compat)
    return int(ok), jdump(reasons)


class Record(msgspec.Struct, frozen=True):
    """One journal event as the projections see it."""

    position: int
    stream_version: int
    kind: str
    state: dict[str, Any]


class Loader:
    """Reads rows the fold has not loaded yet (implemented by the store over its connection)."""

    def version_row(self, key: VersionKey) -> dict[str, Any] | None:
        raise NotImplementedError

    def version_keys_for_key(self, publisher: str, key_hex: str) -> list[VersionKey]:
        raise NotImplementedError

    def trust_row(self, key: TrustKey) -> dict[str, Any] | None:
        raise NotImplementedError

    def revoked(self, publisher: str, key_hex: str) -> bool:
        raise NotImplementedError


class Fold:
    def __init__(self, loader: Loader, manifest_facts: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.loader = loader
        self.manifest_facts = manifest_facts
        self.versions: dict[VersionKey, dict[str, Any] | None] = {}
        self.trust: dict[TrustKey, dict[str, Any] | None] = {}
        # True when the caches hold every row there is (a replay from position 0): a key not
        # in them has no row, so the loader is not asked.
        self.complete = False
        # (publisher, key_hex) -> the cached version rows signed by that key (no scans on revocation)
        self.signed_by: dict[TrustKey, set[VersionKey]] = {}
        self.dirty_versions: set[VersionKey] = set()
        self.dirty_trust: set[TrustKey] = set()
        self.manifests: dict[str, tuple[Any, ...]] = {}
        self.known_manifests: set[str] = set()
        self.tools: dict[VersionKey, list[str]] = {}
        self.audits: list[tuple[Any, ...]] = []
        self.timeline: list[tuple[Any, ...]] = []
        self.rejections: list[tuple[Any, ...]] = []
        self.policy: tuple[Any, ...] | None = None
        self._handlers: dict[str, Callable[[Record, dict[str, Any]], None]] = {
            "skill.artifact_verified": self._artifact_verified,
            "skill.audited": self._audited,
            "skill.installed": self._installed,
            "skill.current_changed": self._current_changed,
            "skill.activated": lambda r, d: self._status(r, d, "active", None, None),
            "skill.quarantined": lambda r, d: self._status(r, d, "quarantined", d["reason_code"], d["reason"]),
            "skill.enabled": lambda r, d: self._status(r, d, "active", "override" if d["override"] else None, d["reason"]),
            "skill.disabled": lambda r, d: self._status(r, d, "disabled", "operator", d["reason"]),
            "skill.verified": self._verified,
            "skill.removed": self._removed,
            "publisher.key_allowlisted": lambda r, d: self._key(r, d, "allowlisted", "active"),
            "publisher.key_pinned": lambda r, d: self._key(r, d, "tofu", "active"),
            "publisher.key_revoked": lambda r, d: self._key(r, d, None, "revoked"),
            "policy.changed": self._policy_changed,
            "artifact.rejected": self._rejected,
        }

    # --- driving ------------------------------------------------------------------------

    def start_batch(self, *, keep_index: bool = False) -> None:
        """Forget what the previous batch produced (its rows are written); keep the row caches.
        ``keep_index``: the index rows are still to be written (a replay writes them once)."""
        if not keep_index:
            self.clear_index_output()
        self.dirty_trust = set()
        self.audits = []
        self.timeline = []
        self.rejections = []
        self.policy = None

    def clear_index_output(self) -> None:
        self.dirty_versions = set()
        self.manifests = {}
        self.tools = {}

    def cached_rows(self) -> int:
        return len(self.versions) + len(self.trust)

    def apply(self, record: Record) -> None:
        state = record.state
        handler = self._handlers.get(record.kind)
        if handler is not None:
            handler(record, state)
        self._timeline(record, state)

    # --- row access ---------------------------------------------------------------------

    def _version(self, key: VersionKey) -> dict[str, Any] | None:
        try:
            return self.versions[key]
        except KeyError:
            row = self.versions[key] = None if self.complete else self.loader.version_row(key)
            if row is not None:
                self._index(key, None, row)
            return row

    def _touch(self, key: VersionKey, row: dict[str, Any], position: int) -> None:
        """Rows are owned by the fold and changed in place; a new row object (a re-verified
        version) is re-indexed by its signer."""
        row["updated_position"] = position
        old = self.versions.get(key)
        if old is not row:
            self._index(key, old, row)
            self.versions[key] = row
        self.dirty_versions.add(key)

    def _index(self, key: VersionKey, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        signer = (new["publisher"], new["key_hex"])
        if old is not None and (old["publisher"], old["key_hex"]) != signer:
            self.signed_by.get((old["publisher"], old["key_hex"]), set()).discard(key)
        self.signed_by.setdefault(signer, set()).add(key)

    def _trust(self, key: TrustKey) -> dict[str, Any] | None:
        try:
            return self.trust[key]
        except KeyError:
            row = self.trust[key] = None if self.complete else self.loader.trust_row(key)
            return row

    def _key_revoked(self, publisher: str, key_hex: str) -> bool:
        row = self._trust((publisher, key_hex))
        return row is not None and row["state"] == "revoked"

    # --- handlers -----------------------------------------------------------------------

    @staticmethod
    def _skill_id(state: dict[str, Any]) -> str:
        return state["stream"].split(":", 1)[1]

    def _artifact_verified(self, r: Record, d: dict[str, Any]) -> None:
        key = (self._skill_id(d), d["version"])
        old = self._version(key)
        manifest = d["manifest"]
        tools = manifest.get("entrypoints", {}).get("tools", [])
        payload = d["payload_sha256"]
        if payload not in self.known_manifests:
            facts = self.manifest_facts(manifest)
            self.manifests[payload] = (payload, jdump(manifest), jdump(d["manifest_warnings"]),
                                       jdump(facts["capability_grants"]), jdump(facts["policy_bindings"]))
            self.known_manifests.add(payload)
        self.tools[key] = sorted({str(t.get("id", "")).strip(WS) for t in tools})
        major, minor, patch = parse_semver_lenient(d["version"]) or (0, 0, 0)
        row = dict.fromkeys(VERSION_COLUMNS)
        row.update(
            skill_id=key[0], version=key[1], v_major=major, v_minor=minor, v_patch=patch,
            publisher=d["publisher"], name=manifest.get("name"), installed=0,
            current=old["current"] if old else 0, trust_decision=d["trust_decision"], key_id=d["key_id"],
            key_hex=d["key_hex"], payload_sha256=payload, artifact_sha256=d["artifact_sha256"],
            source=d["source"], key_revoked=int(self._key_revoked(d["publisher"], d["key_hex"])),
            compat_problem=compat_problem(manifest.get("compat")), tool_count=len(tools),
        )
        self._finish(key, row, r.position)

    def _audited(self, r: Record, d: dict[str, Any]) -> None:
        key = (self._skill_id(d), d["version"])
        at = fixed_time(d["timestamp"])
        # Full checks stay in the journal (at this position); the view keeps what lists show.
        failed: dict[str, None] = {}
        warned: dict[str, None] = {}
        for c in d["checks"]:
            status = c.get("status")
            if status == "fail":
                failed[c["check_id"]] = None
            elif status == "warn":
                warned[c["check_id"]] = None
        failed_json = jdump(list(failed))
        self.audits.append((r.position, key[0], key[1], at, d["trigger"], d["policy_version"], int(d["passed"]),
                            int(d["should_quarantine"]), failed_json, jdump(list(warned)),
                            jdump(d["quarantine_reasons"])))
        row = self._version(key)
        if row is None:
            return
        row.update(last_audit_at=at, last_audit_trigger=d["trigger"], last_audit_passed=int(d["passed"]),
                   last_audit_policy_version=d["policy_version"], last_audit_failed_checks=failed_json)
        self._finish(key, row, r.position)

    def _installed(self, r: Record, d: dict[str, Any]) -> None:
        key = (self._skill_id(d), d["version"])
        row = self._version(key)
        if row is None:
            return
        row.update(installed=1, installed_at=fixed_time(d["timestamp"]), blob=d["blob"], status=None,
                   status_reason_code=None, status_reason=None)
        self._finish(key, row, r.position)

    def _current_changed(self, r: Record, d: dict[str, Any]) -> None:
        skill_id = self._skill_id(d)
        for version, flag in ((d["from_version"], 0), (d["to_version"], 1)):
            if version is None:
                continue
            row = self._version((skill_id, version))
            if row is not None:
                row["current"] = flag
                self._finish((skill_id, version), row, r.position)

    def _status(self, r: Record, d: dict[str, Any], status: str, code: str | None, reason: str | None) -> None:
        key = (self._skill_id(d), d["version"])
        row = self._version(key)
        if row is None:
            return
        row.update(status=status, status_reason_code=code, status_reason=reason)
        self._finish(key, row, r.position)

    def _verified(self, r: Record, d: dict[str, Any]) -> None:
        key = (self._skill_id(d), d["version"])
        row = self._version(key)
        if row is not None:
            row["trust_decision"] = d["trust_decision"]
            self._finish(key, row, r.position)

    def _removed(self, r: Record, d: dict[str, Any]) -> None:
        key = (self._skill_id(d), d["version"])
        row = self._version(key)
        if row is not None:
            row.update(installed=0, status="removed", status_reason_code=None, status_reason=d.get("reason"))
            self._finish(key, row, r.position)

    def _finish(self, key: VersionKey, row: dict[str, Any], position: int) -> None:
        row["eligible"], row["eligibility_reasons"] = _eligibility(
            row["installed"], row["status"], row["key_revoked"], row["last_audit_passed"], row["compat_problem"])
        self._touch(key, row, position)

    def _key(self, r: Record, d: dict[str, Any], kind: str | None, state: str) -> None:
        publisher = self._skill_id(d)  # the stream key is the publisher name
        key = (publisher, d["key_hex"])
        old = self._trust(key)
        row = {
            "publisher": publisher, "key_hex": d["key_hex"], "key_id": d["key_id"],
            "kind": kind or (old["kind"] if old else "allowlisted"), "state": state,
            "since": fixed_time(d["timestamp"]),
            "first_skill_id": d.get("first_skill_id") or (old["first_skill_id"] if old else None),
            "first_version": d.get("first_version") or (old["first_version"] if old else None),
            "updated_position": r.position,
        }
        if kind == "tofu":
            row["first_skill_id"] = d.get("first_skill_id") or None
            row["first_version"] = d.get("first_version") or None
        self.trust[key] = row
        self.dirty_trust.add(key)
        revoked = int(state == "revoked")
        for vkey in self._versions_signed_by(publisher, d["key_hex"]):
            vrow = self._version(vkey)
            if vrow is not None and vrow["key_revoked"] != revoked:
                vrow["key_revoked"] = revoked
                self._finish(vkey, vrow, r.position)

    def _versions_signed_by(self, publisher: str, key_hex: str) -> list[VersionKey]:
        keys = set() if self.complete else set(self.loader.version_keys_for_key(publisher, key_hex))
        keys |= self.signed_by.get((publisher, key_hex), set())
        return sorted(keys)

    def _policy_changed(self, r: Record, d: dict[str, Any]) -> None:
        self.policy = ("audit", r.stream_version, jdump(d["policy"]), jdump(d["changed"]),
                       fixed_time(d["timestamp"]), d["actor"]["principal"])

    def _rejected(self, r: Record, d: dict[str, Any]) -> None:
        self.rejections.append((r.position, fixed_time(d["timestamp"]), d["artifact_sha256"], d.get("source"),
                                d["error_code"], d["message"], d.get("skill_id"), d.get("version"),
                                d.get("publisher")))

    def _timeline(self, r: Record, d: dict[str, Any]) -> None:
        stream = d["stream"]
        prefix, _, key = stream.partition(":")
        skill_id = key if prefix == "skill" else d.get("skill_id") or d.get("first_skill_id") or None
        publisher = key if prefix == "publisher" else d.get("publisher")
        actor = d["actor"]
        self.timeline.append((r.position, fixed_time(d["timestamp"]), stream, r.stream_version, r.kind, skill_id,
                              d.get("version"), publisher, actor["principal"], actor["host"], actor["command"],
                              d.get("reason"), summarize(r.kind, d)))


def summarize(kind: str, d: dict[str, Any]) -> str:
    """One human line per event, for history and reports."""
    v = d.get("version")
    match kind:
        case "skill.artifact_verified":
            return f"verified {v} from {d['publisher']} ({d['trust_decision']}, key {d['key_id']})"
        case "skill.audited":
            return f"audited {v} ({d['trigger']}, policy v{d['policy_version']}): {'passed' if d['passed'] else 'FAILED'}"
        case "skill.installed":
            return f"installed {v}"
        case "skill.current_changed":
            return f"current {d['from_version'] or '-'} -> {d['to_version'] or '-'} ({d['cause']})"
        case "skill.activated":
            return f"activated {v}"
        case "skill.quarantined":
            return f"quarantined {v} ({d['reason_code']}): {d['reason']}"
        case "skill.enabled":
            return f"enabled {v}" + (" with --override" if d["override"] else "")
        case "skill.disabled":
            return f"disabled {v}: {d['reason']}"
        case "skill.verified":
            return f"re-verified {v} ({d['trust_decision']})"
        case "skill.removed":
            return f"removed {v}"
        case "skill.execution_denied":
            return f"denied {d['tool_id']} on {v} ({d['reason_code']})"
        case "publisher.key_allowlisted":
            return f"allowlisted key {d['key_id']}"
        case "publisher.key_pinned":
            first = f" on first use by {d['first_skill_id']} {d['first_version']}" if d.get("first_skill_id") else ""
            return f"pinned key {d['key_id']}{first}"
        case "publisher.key_revoked":
            return f"revoked key {d['key_id']}"
        case "policy.changed":
            return "audit policy changed: " + ", ".join(d["changed"])
        case "artifact.rejected":
            return f"rejected artifact {d['artifact_sha256'][:12]} ({d['error_code']})"
        case "journal.checkpoint":
            return f"checkpoint at position {d['position']} ({d['event_count']} events)"
    return kind
