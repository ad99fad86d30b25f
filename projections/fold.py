"""How each journal event changes the read model: a fold over plain event records.

The fold works on rows in memory (dicts keyed like the tables) and asks a loader for
rows it has not seen in this batch; the store writes the dirty rows back in the same
transaction as the tracking positions. Nothing here depends on *when* a row was
loaded, so a rebuild and an incremental catch-up produce identical tables.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import msgspec

from skill_ledger.domain.eligibility import compat_problem, eligibility, is_overridden
from skill_ledger.domain.grammars import parse_semver_lenient
from skill_ledger.domain.registry import ROLES

from .records import EventView, ManifestFacts, view_from_dict
from .schema import (
    AUDITS,
    FACT_COLUMNS,
    MANIFESTS,
    POLICY,
    REGISTRIES,
    REJECTIONS,
    STATE_COLUMNS,
    TIMELINE,
    VERSIONS,
)
from .search import search_row
from .shards import SHARED_PREFIX
from .times import fixed_time

_json = msgspec.json.Encoder()
_facts_of = operator.itemgetter(*FACT_COLUMNS)
_state_of = operator.itemgetter(*STATE_COLUMNS)

VersionKey = tuple[str, str]
TrustKey = tuple[str, str]


def jdump(value: Any) -> str:
    return _json.encode(value).decode("utf-8")


_semver = functools.lru_cache(maxsize=4096)(parse_semver_lenient)  # a fleet has few distinct versions


@functools.lru_cache(maxsize=1024)
def _eligibility(installed: int, status: str | None, key_revoked: int, last_audit_passed: int | None,
                 compat: str | None, status_reason_code: str | None) -> tuple[int, str]:
    """(eligible, reasons as JSON) of a version row; few distinct inputs, so remembered."""
    ok, reasons = eligibility(installed=bool(installed), status=status, key_revoked=bool(key_revoked),
                              last_audit_passed=None if last_audit_passed is None else bool(last_audit_passed),
                              compat=compat, overridden=is_overridden(status, status_reason_code))
    return int(ok), jdump(reasons)


def _id_list(ids: list[str]) -> str:
    """Check ids as a JSON list, each once, in order (most audits have none to list)."""
    return jdump(list(dict.fromkeys(ids))) if ids else "[]"


class Loader:
    """Reads rows the fold has not loaded yet (implemented by the store over its connection)."""

    def version_row(self, key: VersionKey) -> dict[str, Any] | None:
        raise NotImplementedError

    def version_keys_for_key(self, publisher: str, key_hex: str) -> list[VersionKey]:
        raise NotImplementedError

    def trust_row(self, key: TrustKey) -> dict[str, Any] | None:
        raise NotImplementedError


class Fold:
    def __init__(self, loader: Loader, manifest_facts: Callable[[msgspec.Raw], ManifestFacts], *,
                 emit_shared: bool = True) -> None:
        """``emit_shared=False``: a shard of a sharded replay that is not the first one
        (``projections.shards``). It folds the shared streams' events (publisher trust) only for
        their effect on its own version rows; their trust and timeline rows come from shard 0."""
        self.emit_shared = emit_shared
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
        # Rows to write: each a table's row type (``projections.schema``), or a dict of it.
        self.manifests: dict[str, tuple[Any, ...]] = {}
        self.known_manifests: set[str] = set()
        self.tools: dict[VersionKey, list[str]] = {}  # a re-recorded artifact replaces both
        self.search: dict[VersionKey, tuple[Any, ...]] = {}
        self.audits: list[tuple[Any, ...]] = []
        self.timeline: list[tuple[Any, ...]] = []
        self.rejections: list[tuple[Any, ...]] = []
        self.policy: tuple[Any, ...] | None = None
        # The history of the version rows (``projections.asof``): {(skill_id, version, position): row}
        self.version_facts: dict[tuple[str, str, int], tuple[Any, ...]] = {}
        self.version_states: dict[tuple[str, str, int], tuple[Any, ...]] = {}
        self.registries: list[tuple[str, tuple[Any, ...]]] = []  # (statement, parameters), in event order
        self._stream_version = 0  # of the event being folded
        self._at = ""  # its time in the fixed form (every event uses it, some twice)
        self._handlers: dict[str, Callable[[int, EventView], None]] = {
            "skill.artifact_verified": self._artifact_verified,
            "skill.audited": self._audited,
            "skill.installed": self._installed,
            "skill.current_changed": self._current_changed,
            "skill.activated": lambda p, v: self._status(p, v, "active", None, None),
            "skill.quarantined": lambda p, v: self._status(p, v, "quarantined", v.reason_code, v.reason),
            "skill.enabled": lambda p, v: self._status(p, v, "active", "override" if v.override else None, v.reason),
            "skill.disabled": lambda p, v: self._status(p, v, "disabled", "operator", v.reason),
            "skill.verified": self._verified,
            "skill.removed": self._removed,
            "publisher.key_allowlisted": lambda p, v: self._key(p, v, "allowlisted", "active"),
            "publisher.key_pinned": lambda p, v: self._key(p, v, "tofu", "active"),
            "publisher.key_revoked": lambda p, v: self._key(p, v, None, "revoked"),
            "policy.changed": self._policy_changed,
            "artifact.rejected": self._rejected,
            **{kind: functools.partial(self._registry, kind) for kind in _REGISTRY_SQL},
        }

    # --- driving ------------------------------------------------------------------------

    def start_batch(self, *, keep_index: bool = False) -> None:
        """Forget what the previous batch produced (its rows are written); keep the row caches.
        ``keep_index``: the version and tool rows are still to be written (a replay writes
        them once). Manifest rows never change once written, so they go out batch by batch."""
        if not keep_index:
            self.clear_index_output()
        self.manifests = {}
        self.dirty_trust = set()
        self.audits = []
        self.timeline = []
        self.rejections = []
        self.policy = None
        self.version_facts = {}
        self.version_states = {}
        self.registries = []

    def clear_index_output(self) -> None:
        self.dirty_versions = set()
        self.tools = {}
        self.search = {}

    def cached_rows(self) -> int:
        return len(self.versions) + len(self.trust)

    def apply(self, position: int, stream_version: int, kind: str, view: EventView) -> None:
        """Fold one journal event (its position, stream version, kind and view)."""
        self._at = fixed_time(view.timestamp)
        handler = self._handlers.get(kind)
        if handler is not None:
            self._stream_version = stream_version
            handler(position, view)
        if self.emit_shared or not kind.startswith(SHARED_PREFIX):
            self._timeline(position, stream_version, kind, view)

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
    def _skill_id(v: EventView) -> str:
        return v.stream.split(":", 1)[1]

    def _artifact_verified(self, position: int, v: EventView) -> None:
        key = (self._skill_id(v), v.version or "")
        payload = v.payload_sha256
        facts = self.manifest_facts(v.manifest)
        if payload not in self.known_manifests:
            self.manifests[payload] = MANIFESTS.row(
                payload_sha256=payload, manifest=bytes(v.manifest).decode("utf-8"),
                manifest_warnings=bytes(v.manifest_warnings).decode("utf-8"),
                capability_grants=facts.capability_grants, policy_bindings=facts.policy_bindings)
            self.known_manifests.add(payload)
        old = self._version(key)
        tool_ids = facts.tool_ids
        self.tools[key] = sorted(set(tool_ids))
        self.search[key] = search_row(key[0], key[1], v.publisher, facts)
        major, minor, patch = _semver(key[1]) or (0, 0, 0)
        row = VERSIONS.blank()
        row.update(
            skill_id=key[0], version=key[1], v_major=major, v_minor=minor, v_patch=patch,
            publisher=v.publisher, name=facts.name, installed=0,
            current=old["current"] if old else 0, trust_decision=v.trust_decision, key_id=v.key_id,
            key_hex=v.key_hex, payload_sha256=payload, artifact_sha256=v.artifact_sha256,
            source=v.source, key_revoked=int(self._key_revoked(v.publisher or "", v.key_hex or "")),
            compat_problem=compat_problem(facts.compat), tool_count=len(tool_ids),
        )
        self._finish(key, row, position, facts=True)

    def _audited(self, position: int, v: EventView) -> None:
        key = (self._skill_id(v), v.version or "")
        at = self._at
        # Full checks stay in the journal (at this position); the view keeps what lists show.
        checks = v.checks
        failed = [c.check_id for c in checks if c.status == "fail"]
        warned = [c.check_id for c in checks if c.status == "warn"]
        failed_json = _id_list(failed)
        passed = int(v.passed)
        self.audits.append(AUDITS.row(
            position=position, skill_id=key[0], version=key[1], at=at, trigger=v.trigger,
            policy_version=v.policy_version, passed=passed, should_quarantine=int(v.should_quarantine),
            failed_checks=failed_json, warning_checks=_id_list(warned),
            quarantine_reasons=bytes(v.quarantine_reasons).decode("utf-8")))
        row = self._version(key)
        if row is None:
            return
        row["last_audit_at"] = at
        row["last_audit_trigger"] = v.trigger
        row["last_audit_passed"] = passed
        row["last_audit_policy_version"] = v.policy_version
        row["last_audit_failed_checks"] = failed_json
        self._finish(key, row, position)

    def _installed(self, position: int, v: EventView) -> None:
        key = (self._skill_id(v), v.version or "")
        row = self._version(key)
        if row is None:
            return
        row.update(installed=1, installed_at=self._at, blob=v.blob, status=None,
                   status_reason_code=None, status_reason=None)
        self._finish(key, row, position, facts=True)

    def _current_changed(self, position: int, v: EventView) -> None:
        skill_id = self._skill_id(v)
        for version, flag in ((v.from_version, 0), (v.to_version, 1)):
            if version is None:
                continue
            row = self._version((skill_id, version))
            if row is not None:
                row["current"] = flag
                self._finish((skill_id, version), row, position)

    def _status(self, position: int, v: EventView, status: str, code: str | None, reason: str | None) -> None:
        key = (self._skill_id(v), v.version or "")
        row = self._version(key)
        if row is None:
            return
        row["status"] = status
        row["status_reason_code"] = code
        row["status_reason"] = reason
        self._finish(key, row, position)

    def _verified(self, position: int, v: EventView) -> None:
        key = (self._skill_id(v), v.version or "")
        row = self._version(key)
        if row is not None:
            row["trust_decision"] = v.trust_decision
            self._finish(key, row, position)

    def _removed(self, position: int, v: EventView) -> None:
        key = (self._skill_id(v), v.version or "")
        row = self._version(key)
        if row is not None:
            row.update(installed=0, status="removed", status_reason_code=None, status_reason=v.reason)
            self._finish(key, row, position)

    def _finish(self, key: VersionKey, row: dict[str, Any], position: int, *, facts: bool = False) -> None:
        """A version row changed at ``position``: its eligibility follows, and its history gets the
        new state (and, when the artifact's verification or install set them, its facts)."""
        row["eligible"], row["eligibility_reasons"] = _eligibility(
            row["installed"], row["status"], row["key_revoked"], row["last_audit_passed"], row["compat_problem"],
            row["status_reason_code"])
        self._touch(key, row, position)
        at = (key[0], key[1], position)
        self.version_states[at] = (*at, *_state_of(row))
        if facts:
            self.version_facts[at] = (*at, *_facts_of(row))

    def _key(self, position: int, v: EventView, kind: str | None, state: str) -> None:
        publisher = self._skill_id(v)  # the stream key is the publisher name
        key_hex = v.key_hex or ""
        key = (publisher, key_hex)
        old = self._trust(key)
        row = {
            "publisher": publisher, "key_hex": key_hex, "key_id": v.key_id,
            "kind": kind or (old["kind"] if old else "allowlisted"), "state": state,
            "since": self._at,
            "first_skill_id": v.first_skill_id or (old["first_skill_id"] if old else None),
            "first_version": v.first_version or (old["first_version"] if old else None),
            "updated_position": position,
        }
        if kind == "tofu":
            row["first_skill_id"] = v.first_skill_id or None
            row["first_version"] = v.first_version or None
        self.trust[key] = row
        if self.emit_shared:
            self.dirty_trust.add(key)
        revoked = int(state == "revoked")
        for vkey in self._versions_signed_by(publisher, key_hex):
            vrow = self._version(vkey)
            if vrow is not None and vrow["key_revoked"] != revoked:
                vrow["key_revoked"] = revoked
                self._finish(vkey, vrow, position)

    def _versions_signed_by(self, publisher: str, key_hex: str) -> list[VersionKey]:
        keys = set() if self.complete else set(self.loader.version_keys_for_key(publisher, key_hex))
        keys |= self.signed_by.get((publisher, key_hex), set())
        return sorted(keys)

    def _policy_changed(self, position: int, v: EventView) -> None:
        self.policy = POLICY.row(name="audit", policy_version=self._stream_version,
                                 policy=bytes(v.policy).decode("utf-8"), changed=jdump(v.changed),
                                 updated_at=self._at, updated_by=v.actor.principal)

    def _rejected(self, position: int, v: EventView) -> None:
        self.rejections.append(REJECTIONS.row(
            position=position, recorded_at=self._at, artifact_sha256=v.artifact_sha256,
            source=v.source, error_code=v.error_code, message=v.message, skill_id=v.skill_id, version=v.version,
            publisher=v.publisher))

    def _registry(self, kind: str, position: int, v: EventView) -> None:
        """A registry's row changes by one statement per event (few registries, few events: no
        rows to cache); the statements run in event order."""
        name = v.stream.partition(":")[2]
        at = self._at
        match kind:
            case "registry.added":
                params: tuple[Any, ...] = (name, v.url, v.root_sha256, v.root_version, at, position)
            case "registry.removed":
                params = (at, v.reason, position, name)
            case "registry.metadata_trusted":
                params = (_metadata_json(v.metadata), at, position, name)
            case "registry.target_installed":
                params = (position, name)
            case _:  # registry.update_refused
                params = (at, v.code, position, name)
        self.registries.append((_REGISTRY_SQL[kind], params))

    def _timeline(self, position: int, stream_version: int, kind: str, v: EventView) -> None:
        stream = v.stream
        prefix, _, key = stream.partition(":")
        skill_id = key if prefix == "skill" else v.skill_id or v.first_skill_id or None
        publisher = key if prefix == "publisher" else v.publisher
        actor = v.actor
        self.timeline.append(TIMELINE.row(
            position=position, recorded_at=self._at, stream=stream, stream_version=stream_version,
            kind=kind, skill_id=skill_id, version=v.version, publisher=publisher, principal=actor.principal,
            host=actor.host, command=actor.command, reason=v.reason, summary=summarize_view(kind, v)))


_REGISTRY_SQL = {
    # A re-added registry keeps its counts; its pin and trusted metadata start again.
    "registry.added": f"INSERT INTO {REGISTRIES.name} (name, url, status, root_sha256, root_version, added_at, "
                      "installs, refusals, updated_position) VALUES (?, ?, 'active', ?, ?, ?, 0, 0, ?) "
                      "ON CONFLICT (name) DO UPDATE SET url = excluded.url, status = 'active', "
                      "root_sha256 = excluded.root_sha256, root_version = excluded.root_version, "
                      "added_at = excluded.added_at, removed_at = NULL, removed_reason = NULL, trusted = NULL, "
                      "trusted_at = NULL, updated_position = excluded.updated_position",
    "registry.removed": f"UPDATE {REGISTRIES.name} SET status = 'removed', removed_at = ?, removed_reason = ?, "
                        "updated_position = ? WHERE name = ?",
    "registry.metadata_trusted": f"UPDATE {REGISTRIES.name} SET trusted = ?, trusted_at = ?, updated_position = ? "
                                 "WHERE name = ?",
    "registry.target_installed": f"UPDATE {REGISTRIES.name} SET installs = installs + 1, updated_position = ? "
                                 "WHERE name = ?",
    "registry.update_refused": f"UPDATE {REGISTRIES.name} SET refusals = refusals + 1, last_refusal_at = ?, "
                               "last_refusal_code = ?, updated_position = ? WHERE name = ?",
}


def summarize(kind: str, d: dict[str, Any]) -> str:
    """One human line per event, for history and reports (from an event's data as a dict)."""
    return summarize_view(kind, view_from_dict(d))


def summarize_view(kind: str, v: EventView) -> str:
    """One human line per event, for history and reports."""
    version = v.version
    match kind:
        case "skill.artifact_verified":
            return f"verified {version} from {v.publisher} ({v.trust_decision}, key {v.key_id})"
        case "skill.audited":
            return (f"audited {version} ({v.trigger}, policy v{v.policy_version}): "
                    f"{'passed' if v.passed else 'FAILED'}")
        case "skill.installed":
            return f"installed {version}"
        case "skill.current_changed":
            return f"current {v.from_version or '-'} -> {v.to_version or '-'} ({v.cause})"
        case "skill.activated":
            return f"activated {version}"
        case "skill.quarantined":
            return f"quarantined {version} ({v.reason_code}): {v.reason}"
        case "skill.enabled":
            return f"enabled {version}" + (" with --override" if v.override else "")
        case "skill.disabled":
            return f"disabled {version}: {v.reason}"
        case "skill.verified":
            return f"re-verified {version} ({v.trust_decision})"
        case "skill.removed":
            return f"removed {version}"
        case "skill.execution_denied":
            return f"denied {v.tool_id} on {version} ({v.reason_code})"
        case "publisher.key_allowlisted":
            return f"allowlisted key {v.key_id}"
        case "publisher.key_pinned":
            first = f" on first use by {v.first_skill_id} {v.first_version}" if v.first_skill_id else ""
            return f"pinned key {v.key_id}{first}"
        case "publisher.key_revoked":
            return f"revoked key {v.key_id}"
        case "policy.changed":
            return "audit policy changed: " + ", ".join(v.changed)
        case "artifact.rejected":
            return f"rejected artifact {(v.artifact_sha256 or '')[:12]} ({v.error_code})"
        case "journal.checkpoint":
            return f"checkpoint at position {v.position} ({v.event_count} events)"
        case "registry.added":
            return f"added registry {v.url} (root v{v.root_version}, sha256 {(v.root_sha256 or '')[:12]})"
        case "registry.removed":
            return "removed registry"
        case "registry.metadata_trusted":
            return f"trusted registry metadata {_metadata_text(v.metadata)}"
        case "registry.target_installed":
            down = f"; downgraded from {v.downgraded_from}" if v.downgraded_from else ""
            return (f"registry {v.stream.partition(':')[2]} vouched for {version}: {v.target} "
                    f"({_metadata_text(v.metadata)}{down})")
        case "registry.update_refused":
            what = f"{v.skill_id or 'every skill'}{' ' + version if version else ''}"
            tuf = f", {v.tuf_error}" if v.tuf_error else ""
            return f"registry {v.stream.partition(':')[2]}: refused {v.operation} of {what} ({v.code}, {v.phase}{tuf})"
    return kind


def _in_role_order(raw: msgspec.Raw) -> dict[str, Any] | None:
    """A recorded ``metadata`` member with its roles in TUF's order (root, timestamp, snapshot,
    targets, then any other): the journal stores it with sorted keys (canonical JSON)."""
    try:
        versions = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    if not isinstance(versions, dict):
        return None
    rank = {role: i for i, role in enumerate(ROLES)}
    return dict(sorted(versions.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def _metadata_json(raw: msgspec.Raw) -> str:
    versions = _in_role_order(raw)
    return bytes(raw).decode("utf-8") if versions is None else msgspec.json.encode(versions).decode("utf-8")


def _metadata_text(raw: msgspec.Raw) -> str:
    """``root v1, timestamp v3, ...`` of a recorded ``metadata`` member."""
    versions = _in_role_order(raw)
    if versions is None:
        return "metadata ?"
    return ", ".join(f"{role} v{number}" for role, number in versions.items())
