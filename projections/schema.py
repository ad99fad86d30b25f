"""The read model's tables (``<home>/views.db``).

Every table has an explicit primary key (the event-log tables use the journal position
as their rowid), so a full rebuild and an incremental catch-up produce the same rows in
the same order. Bump ``SCHEMA_VERSION``
whenever a table or a derivation changes: an older views.db is then rebuilt from the
journal automatically.
"""

from __future__ import annotations

SCHEMA_VERSION = 10  # 10: an override of a failed audit keeps the version eligible

# The projections and the tables each one owns. They are caught up together, in one
# transaction per batch, each with its own tracking position.
PROJECTIONS: dict[str, tuple[str, ...]] = {
    "index": ("versions", "manifests", "tools"),
    "trust": ("trust_keys",),
    "audits": ("audits", "policy"),
    "timeline": ("timeline", "rejections"),
}

VERSION_COLUMNS = (
    "skill_id", "version", "v_major", "v_minor", "v_patch", "publisher", "name", "installed", "current",
    "status", "status_reason_code", "status_reason", "trust_decision", "key_id", "key_hex", "payload_sha256",
    "artifact_sha256", "blob", "source", "installed_at", "last_audit_at", "last_audit_trigger",
    "last_audit_passed", "last_audit_policy_version", "last_audit_failed_checks", "key_revoked", "compat_problem",
    "eligible", "eligibility_reasons", "tool_count", "updated_position",
)

# Written once per artifact (by payload digest): version rows stay small, so rewriting one on
# every status change is cheap.
MANIFEST_COLUMNS = ("payload_sha256", "manifest", "manifest_warnings", "capability_grants", "policy_bindings")

TRUST_COLUMNS = (
    "publisher", "key_hex", "key_id", "kind", "state", "since", "first_skill_id", "first_version",
    "updated_position",
)

AUDIT_COLUMNS = (
    "position", "skill_id", "version", "at", "trigger", "policy_version", "passed", "should_quarantine",
    "failed_checks", "warning_checks", "quarantine_reasons",
)

TIMELINE_COLUMNS = (
    "position", "recorded_at", "stream", "stream_version", "kind", "skill_id", "version", "publisher",
    "principal", "host", "command", "reason", "summary",
)

REJECTION_COLUMNS = (
    "position", "recorded_at", "artifact_sha256", "source", "error_code", "message", "skill_id", "version",
    "publisher",
)

POLICY_COLUMNS = ("name", "policy_version", "policy", "changed", "updated_at", "updated_by")

DDL = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE positions (projection TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID",
    """CREATE TABLE versions (
        skill_id TEXT NOT NULL, version TEXT NOT NULL, v_major INTEGER, v_minor INTEGER, v_patch INTEGER,
        publisher TEXT, name TEXT, installed INTEGER NOT NULL, current INTEGER NOT NULL, status TEXT,
        status_reason_code TEXT, status_reason TEXT, trust_decision TEXT, key_id TEXT, key_hex TEXT,
        payload_sha256 TEXT, artifact_sha256 TEXT, blob TEXT, source TEXT, installed_at TEXT,
        last_audit_at TEXT, last_audit_trigger TEXT, last_audit_passed INTEGER, last_audit_policy_version INTEGER,
        last_audit_failed_checks TEXT, key_revoked INTEGER NOT NULL, compat_problem TEXT, eligible INTEGER NOT NULL,
        eligibility_reasons TEXT NOT NULL, tool_count INTEGER, updated_position INTEGER NOT NULL,
        PRIMARY KEY (skill_id, version)) WITHOUT ROWID""",
    """CREATE TABLE manifests (
        payload_sha256 TEXT PRIMARY KEY, manifest TEXT NOT NULL, manifest_warnings TEXT NOT NULL,
        capability_grants TEXT, policy_bindings TEXT)""",
    """CREATE TABLE tools (
        tool_id TEXT NOT NULL, skill_id TEXT NOT NULL, version TEXT NOT NULL,
        PRIMARY KEY (tool_id, skill_id, version)) WITHOUT ROWID""",
    "CREATE INDEX tools_by_version ON tools (skill_id, version)",
    """CREATE TABLE trust_keys (
        publisher TEXT NOT NULL, key_hex TEXT NOT NULL, key_id TEXT NOT NULL, kind TEXT NOT NULL,
        state TEXT NOT NULL, since TEXT NOT NULL, first_skill_id TEXT, first_version TEXT,
        updated_position INTEGER NOT NULL, PRIMARY KEY (publisher, key_hex)) WITHOUT ROWID""",
    """CREATE TABLE audits (
        position INTEGER PRIMARY KEY, skill_id TEXT NOT NULL, version TEXT NOT NULL, at TEXT NOT NULL,
        trigger TEXT NOT NULL, policy_version INTEGER NOT NULL, passed INTEGER NOT NULL,
        should_quarantine INTEGER NOT NULL, failed_checks TEXT NOT NULL, warning_checks TEXT NOT NULL,
        quarantine_reasons TEXT NOT NULL)""",
    """CREATE TABLE policy (
        name TEXT PRIMARY KEY, policy_version INTEGER NOT NULL, policy TEXT NOT NULL, changed TEXT NOT NULL,
        updated_at TEXT NOT NULL, updated_by TEXT NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE timeline (
        position INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL, stream TEXT NOT NULL,
        stream_version INTEGER NOT NULL, kind TEXT NOT NULL, skill_id TEXT, version TEXT, publisher TEXT,
        principal TEXT NOT NULL, host TEXT NOT NULL, command TEXT NOT NULL, reason TEXT, summary TEXT NOT NULL)""",
    """CREATE TABLE rejections (
        position INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL, artifact_sha256 TEXT NOT NULL, source TEXT,
        error_code TEXT NOT NULL, message TEXT NOT NULL, skill_id TEXT, version TEXT, publisher TEXT)""",
]

# Indexes only reads need: a replay into a fresh file creates them once at the end, which is
# much cheaper than maintaining them row by row. (The timeline has no index on its time: only
# ``--as-of TIME`` looks a time up, once, before a replay that costs far more than the scan.)
READ_INDEXES = [
    "CREATE INDEX IF NOT EXISTS versions_by_key ON versions (publisher, key_hex)",
    "CREATE INDEX IF NOT EXISTS audits_by_version ON audits (skill_id, version)",
]

# Tables compared by ``index verify`` (meta holds identities, positions are compared separately).
DATA_TABLES = ("versions", "manifests", "tools", "trust_keys", "audits", "policy", "timeline", "rejections")
PRIMARY_KEYS = {
    "versions": ("skill_id", "version"),
    "manifests": ("payload_sha256",),
    "tools": ("tool_id", "skill_id", "version"),
    "trust_keys": ("publisher", "key_hex"),
    "audits": ("position",),
    "policy": ("name",),
    "timeline": ("position",),
    "rejections": ("position",),
}
