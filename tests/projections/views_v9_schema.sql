-- The views.db schema of version 9 (projections/schema.py before sqlite-utils made the tables),
-- exactly as that version created it: the migration test builds a file of that version from it.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE positions (projection TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE versions (
    skill_id TEXT NOT NULL, version TEXT NOT NULL, v_major INTEGER, v_minor INTEGER, v_patch INTEGER,
    publisher TEXT, name TEXT, installed INTEGER NOT NULL, current INTEGER NOT NULL, status TEXT,
    status_reason_code TEXT, status_reason TEXT, trust_decision TEXT, key_id TEXT, key_hex TEXT,
    payload_sha256 TEXT, artifact_sha256 TEXT, blob TEXT, source TEXT, installed_at TEXT,
    last_audit_at TEXT, last_audit_trigger TEXT, last_audit_passed INTEGER, last_audit_policy_version INTEGER,
    last_audit_failed_checks TEXT, key_revoked INTEGER NOT NULL, compat_problem TEXT, eligible INTEGER NOT NULL,
    eligibility_reasons TEXT NOT NULL, tool_count INTEGER, updated_position INTEGER NOT NULL,
    PRIMARY KEY (skill_id, version)) WITHOUT ROWID;
CREATE TABLE manifests (
    payload_sha256 TEXT PRIMARY KEY, manifest TEXT NOT NULL, manifest_warnings TEXT NOT NULL,
    capability_grants TEXT, policy_bindings TEXT);
CREATE TABLE tools (
    tool_id TEXT NOT NULL, skill_id TEXT NOT NULL, version TEXT NOT NULL,
    PRIMARY KEY (tool_id, skill_id, version)) WITHOUT ROWID;
CREATE INDEX tools_by_version ON tools (skill_id, version);
CREATE TABLE trust_keys (
    publisher TEXT NOT NULL, key_hex TEXT NOT NULL, key_id TEXT NOT NULL, kind TEXT NOT NULL,
    state TEXT NOT NULL, since TEXT NOT NULL, first_skill_id TEXT, first_version TEXT,
    updated_position INTEGER NOT NULL, PRIMARY KEY (publisher, key_hex)) WITHOUT ROWID;
CREATE TABLE audits (
    position INTEGER PRIMARY KEY, skill_id TEXT NOT NULL, version TEXT NOT NULL, at TEXT NOT NULL,
    trigger TEXT NOT NULL, policy_version INTEGER NOT NULL, passed INTEGER NOT NULL,
    should_quarantine INTEGER NOT NULL, failed_checks TEXT NOT NULL, warning_checks TEXT NOT NULL,
    quarantine_reasons TEXT NOT NULL);
CREATE TABLE policy (
    name TEXT PRIMARY KEY, policy_version INTEGER NOT NULL, policy TEXT NOT NULL, changed TEXT NOT NULL,
    updated_at TEXT NOT NULL, updated_by TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE timeline (
    position INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL, stream TEXT NOT NULL,
    stream_version INTEGER NOT NULL, kind TEXT NOT NULL, skill_id TEXT, version TEXT, publisher TEXT,
    principal TEXT NOT NULL, host TEXT NOT NULL, command TEXT NOT NULL, reason TEXT, summary TEXT NOT NULL);
CREATE TABLE rejections (
    position INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL, artifact_sha256 TEXT NOT NULL, source TEXT,
    error_code TEXT NOT NULL, message TEXT NOT NULL, skill_id TEXT, version TEXT, publisher TEXT);
CREATE INDEX IF NOT EXISTS versions_by_key ON versions (publisher, key_hex);
CREATE INDEX IF NOT EXISTS audits_by_version ON audits (skill_id, version);
