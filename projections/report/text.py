"""Plain-text pieces of the report: one line per event and human durations.

Everything here builds text from journal data that may be publisher- or operator-controlled;
it is escaped by the renderers (HTML autoescaping, the Markdown escape), never here.
"""

from __future__ import annotations

from typing import Any


def _g(d: dict[str, Any], key: str) -> str:
    v = d.get(key)
    return "-" if v is None else str(v)


def summary_line(kind: str, d: dict[str, Any]) -> str:
    """One human line per event, from the event's data (any shape: a missing member shows as ``-``)."""
    version = _g(d, "version")
    match kind:
        case "skill.artifact_verified":
            return f"verified {version} from {_g(d, 'publisher')} ({_g(d, 'trust_decision')}, key {_g(d, 'key_id')})"
        case "skill.audited":
            result = "passed" if d.get("passed") is True else "FAILED"
            return f"audited {version} ({_g(d, 'trigger')}, policy v{_g(d, 'policy_version')}): {result}"
        case "skill.installed":
            return f"installed {version}"
        case "skill.current_changed":
            return f"current {_g(d, 'from_version')} -> {_g(d, 'to_version')} ({_g(d, 'cause')})"
        case "skill.activated":
            return f"activated {version}"
        case "skill.quarantined":
            return f"quarantined {version} ({_g(d, 'reason_code')})"
        case "skill.enabled":
            return f"enabled {version}" + (" with --override" if d.get("override") is True else "")
        case "skill.disabled":
            return f"disabled {version}"
        case "skill.verified":
            return f"re-verified {version} ({_g(d, 'trust_decision')})"
        case "skill.removed":
            return f"removed {version}"
        case "skill.execution_denied":
            return f"denied {_g(d, 'tool_id')} on {version} ({_g(d, 'reason_code')})"
        case "publisher.key_allowlisted":
            return f"allowlisted key {_g(d, 'key_id')}"
        case "publisher.key_pinned":
            first = f" on first use by {_g(d, 'first_skill_id')} {_g(d, 'first_version')}" if d.get(
                "first_skill_id") else ""
            return f"pinned key {_g(d, 'key_id')}{first}"
        case "publisher.key_revoked":
            return f"revoked key {_g(d, 'key_id')}"
        case "policy.changed":
            changed = d.get("changed")
            names = ", ".join(str(c) for c in changed) if isinstance(changed, list) else "-"
            return f"audit policy changed: {names}"
        case "artifact.rejected":
            return f"rejected artifact {_g(d, 'artifact_sha256')[:12]} ({_g(d, 'error_code')})"
        case "journal.checkpoint":
            return f"checkpoint over {_g(d, 'event_count')} events up to position {_g(d, 'position')}"
        case "skill.secret_set" | "secret.set":  # names only: no value is ever recorded
            again = " (replacing the value stored before)" if d.get("replaced") is True else ""
            return f"secret {_g(d, 'key')} of {_g(d, 'scope')} set{again}"
        case "skill.secret_removed" | "secret.removed":
            return f"secret {_g(d, 'key')} of {_g(d, 'scope')} removed"
        case "registry.added":
            return f"registry {_g(d, 'name')} added ({_g(d, 'url')}, root v{_g(d, 'root_version')} pinned)"
        case "registry.removed":
            return f"registry {_g(d, 'name')} removed"
        case "registry.metadata_trusted":
            return f"registry {_g(d, 'name')} metadata trusted ({_versions(d.get('metadata'))})"
        case "registry.target_installed":
            down = f", downgraded from {_g(d, 'downgraded_from')}" if d.get("downgraded_from") is not None else ""
            return f"{_g(d, 'skill_id')} {version} installed from registry {_g(d, 'name')} ({_g(d, 'target')}{down})"
        case "registry.update_refused":
            return (f"registry {_g(d, 'name')} refused {_g(d, 'operation')} of {_g(d, 'skill_id')} "
                    f"({_g(d, 'code')}, phase {_g(d, 'phase')})")
    return kind


def _versions(metadata: Any) -> str:
    if not isinstance(metadata, dict):
        return "-"
    return ", ".join(f"{role} v{metadata[role]}" for role in sorted(metadata, key=str))


def duration(seconds: float) -> str:
    """``3d 4h 5m 6s`` (whole seconds; ``0s`` for less than one)."""
    total = int(seconds)
    if total <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, total = divmod(total, size)
        if n:
            parts.append(f"{n}{unit}")
    return " ".join(parts)
