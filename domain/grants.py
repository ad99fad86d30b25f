"""Capability grants and policy bindings derived from a manifest (``artifact-format.md`` §18)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from .text import trim

if TYPE_CHECKING:
    from .manifest import Manifest


class CapabilityGrants(msgspec.Struct, frozen=True):
    http_hosts: list[str]
    secret_keys: list[str]
    storage_prefixes: list[str]
    channels: list[str]


class PolicyBinding(msgspec.Struct, frozen=True, order=True):
    action: str
    resource: str
    requires_approval: bool


class PolicyRequest(msgspec.Struct, frozen=True):
    principal: str
    action: str
    resource: str


def canonical_list(values: Iterable[str]) -> list[str]:
    """Trim, drop empty, sort, de-duplicate (also what a runtime applies again)."""
    return sorted({t for t in (trim(v) for v in values) if t})


def capability_grants(m: "Manifest | RecordedManifest") -> CapabilityGrants:
    caps = m.capabilities
    secret_keys = sorted({f"{s.scope}/{k}" for s in caps.secrets for k in s.key_names})
    return CapabilityGrants(
        http_hosts=canonical_list(caps.http_egress_allowlist),
        secret_keys=secret_keys,
        storage_prefixes=canonical_list(caps.filesystem.write_roots),
        channels=[],
    )


def policy_bindings(m: "Manifest | RecordedManifest") -> list[PolicyBinding]:
    bindings = {
        PolicyBinding(
            "tool.execute", f"tool:{t.id}", bool(t.risk.default_sensitive or t.risk.requires_approval)
        )
        for t in m.entrypoints.tools
    }
    caps = m.capabilities
    skill = f"skill:{m.skill_id}"
    if caps.http_egress_allowlist:
        bindings.add(PolicyBinding("skill.capability.http.egress", skill, True))
    if caps.filesystem.write_roots:
        bindings.add(PolicyBinding("skill.capability.filesystem.write", skill, True))
    if caps.secrets:
        bindings.add(PolicyBinding("skill.capability.vault.read", skill, True))
    if caps.device_capabilities or caps.node_capabilities:
        bindings.add(PolicyBinding("skill.capability.device.use", skill, True))
    return sorted(bindings, key=lambda b: (b.action, b.resource, b.requires_approval))


def policy_requests(m: "Manifest") -> list[PolicyRequest]:
    principal = f"skill:{m.skill_id}"
    return [PolicyRequest(principal, b.action, b.resource) for b in policy_bindings(m)]


# --- grants of a manifest recorded in the journal ------------------------------------------
#
# A recorded manifest (``skill.artifact_verified``) was validated by the manifest model when
# it was installed. To derive its grants again (every projection rebuild does, once per
# artifact) only the members grants depend on are decoded, with the model's defaults, plus
# the text the search view finds a skill by (tool descriptions, the operator section, kept
# raw); the rest (schemas, other metadata) is skipped. The functions above take these
# views as they take a ``Manifest``.


class _RecordedRisk(msgspec.Struct, frozen=True):
    default_sensitive: bool = False
    requires_approval: bool = False


class _RecordedTool(msgspec.Struct, frozen=True):
    id: str
    risk: _RecordedRisk = _RecordedRisk()
    description: Any = None  # any JSON value: the search view keeps it when it is text


class _RecordedEntrypoints(msgspec.Struct, frozen=True):
    tools: tuple[_RecordedTool, ...] = ()


class _RecordedFilesystem(msgspec.Struct, frozen=True):
    write_roots: tuple[str, ...] = ()


class _RecordedSecret(msgspec.Struct, frozen=True):
    scope: str
    key_names: tuple[str, ...] = ()


class _RecordedCapabilities(msgspec.Struct, frozen=True):
    filesystem: _RecordedFilesystem = _RecordedFilesystem()
    http_egress_allowlist: tuple[str, ...] = ()
    secrets: tuple[_RecordedSecret, ...] = ()
    device_capabilities: tuple[str, ...] = ()
    node_capabilities: tuple[str, ...] = ()


class RecordedManifest(msgspec.Struct, frozen=True):
    """What the read model derives from a recorded manifest: its name, its compat section
    (as recorded), its tools, what its grants and policy bindings depend on, and its text."""

    skill_id: str
    name: Any = None
    compat: dict[str, Any] | None = None
    entrypoints: _RecordedEntrypoints = _RecordedEntrypoints()
    capabilities: _RecordedCapabilities = _RecordedCapabilities()
    operator: msgspec.Raw = msgspec.Raw(b"null")  # as recorded; its summary and description are searched


_recorded_decoder = msgspec.json.Decoder(RecordedManifest)


def recorded_manifest(raw: bytes) -> RecordedManifest:
    """Decode a recorded manifest's JSON (raises ``msgspec.DecodeError``/``ValidationError``
    for a value of another shape)."""
    return _recorded_decoder.decode(raw)


def grants_from_manifest_json(manifest_json: dict) -> dict:
    """Grants and bindings of a manifest in its JSON form (as recorded in the journal)."""
    from .manifest import manifest_from_json

    m = manifest_from_json(manifest_json)
    return {
        "capability_grants": msgspec.to_builtins(capability_grants(m)),
        "policy_bindings": msgspec.to_builtins(policy_bindings(m)),
    }
