"""What the projections read of a journal event: a typed view with only the fields they use.

Decoding a stored state straight into this view (``msgspec`` skips every member the view
does not name, and keeps the manifest, the policy and a few lists as raw JSON until they
are needed) costs about half of decoding it into a dict, and the fold then reads
attributes instead of looking up keys. That is most of what makes a full rebuild fast.

A state this view cannot take as it is (a topic stored by an older version of its event
class, which must be upcast first, or a value of an unexpected type) goes the general way:
decode into a dict, upcast, and fill the view from it. Both ways give the same view.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from skill_ledger.domain.codec import decode_state_dict, kind_of_topic, upcast_needed

_EMPTY = msgspec.Raw(b"null")


class ActorView(msgspec.Struct, frozen=True):
    principal: str
    host: str = ""
    command: str = ""


class CheckView(msgspec.Struct, frozen=True):
    check_id: str
    status: str | None = None


class EventView(msgspec.Struct):
    """The union of the members the projections read, over every event kind. Members a
    kind does not have stay at their defaults; raw members hold the stored JSON bytes."""

    stream: str
    timestamp: str
    actor: ActorView
    version: str | None = None
    reason: str | None = None
    publisher: str | None = None
    skill_id: str | None = None
    first_skill_id: str | None = None
    first_version: str | None = None
    # skill.artifact_verified
    manifest: msgspec.Raw = _EMPTY
    manifest_warnings: msgspec.Raw = _EMPTY
    payload_sha256: str | None = None
    artifact_sha256: str | None = None
    trust_decision: str | None = None
    key_id: str | None = None
    key_hex: str | None = None
    source: str | None = None
    # skill.audited
    checks: list[CheckView] = []
    quarantine_reasons: msgspec.Raw = _EMPTY
    trigger: str | None = None
    policy_version: int | None = None
    passed: bool = False
    should_quarantine: bool = False
    # skill.installed, skill.current_changed, status changes
    blob: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    cause: str | None = None
    reason_code: str | None = None
    override: bool = False
    # skill.execution_denied, artifact.rejected, policy.changed, journal.checkpoint
    tool_id: str | None = None
    error_code: str | None = None
    message: str | None = None
    policy: msgspec.Raw = _EMPTY
    changed: list[str] = []
    position: int | None = None
    event_count: int | None = None
    # registry.* (``name`` is the stream's key; ``timestamp`` is the event's own time, so the
    # trusted metadata versions are the ``metadata`` member)
    url: str | None = None
    root_sha256: str | None = None
    root_version: int | None = None
    metadata: msgspec.Raw = _EMPTY
    target: str | None = None
    downgraded_from: str | None = None
    operation: str | None = None
    code: str | None = None
    phase: str | None = None
    tuf_error: str | None = None


RAW_FIELDS = frozenset(f for f in EventView.__struct_fields__
                       if EventView.__annotations__[f] in ("msgspec.Raw", msgspec.Raw))

_view_decoder = msgspec.json.Decoder(EventView)
_encoder = msgspec.json.Encoder()
_kinds: dict[str, tuple[str, bool]] = {}


def kind_and_upcast(topic: str) -> tuple[str, bool]:
    """(event kind, whether the stored state must be upcast) of a topic, resolved once."""
    info = _kinds.get(topic)
    if info is None:
        info = _kinds[topic] = (kind_of_topic(topic), upcast_needed(topic))
    return info


def decode_view(topic: str, state: bytes) -> EventView:
    """The view of a stored event's state (upcast to its class's current version)."""
    if not kind_and_upcast(topic)[1]:
        try:
            return _view_decoder.decode(state)
        except msgspec.ValidationError:
            pass
    return view_from_dict(decode_state_dict(topic, state))


def view_from_dict(data: dict[str, Any]) -> EventView:
    """The general way: the view filled from a decoded (and upcast) state."""
    try:
        return _view_decoder.decode(_encoder.encode(data))
    except msgspec.ValidationError:
        pass
    # A member of an unexpected type: keep what fits, in the types the fold expects.
    values: dict[str, Any] = {}
    for name in EventView.__struct_fields__:
        if name not in data:
            continue
        value = data[name]
        if name in RAW_FIELDS:
            values[name] = msgspec.Raw(_encoder.encode(value))
        elif name == "actor":
            actor = value if isinstance(value, dict) else {}
            values[name] = ActorView(str(actor.get("principal", "")), str(actor.get("host", "")),
                                     str(actor.get("command", "")))
        elif name == "checks":
            values[name] = [CheckView(str(c.get("check_id", "")), c.get("status") if isinstance(c.get("status"), str)
                                      else None) for c in value if isinstance(c, dict)] if isinstance(value, list) else []
        elif name == "changed":
            values[name] = [str(x) for x in value] if isinstance(value, list) else []
        elif name in ("passed", "should_quarantine", "override"):
            values[name] = bool(value)
        elif name in ("policy_version", "position", "event_count", "root_version"):
            values[name] = value if isinstance(value, int) and not isinstance(value, bool) else None
        else:
            values[name] = value if value is None or isinstance(value, str) else str(value)
    values.setdefault("stream", "")
    values.setdefault("timestamp", "")
    values.setdefault("actor", ActorView(""))
    return EventView(**values)


class ManifestFacts(NamedTuple):
    """What the index keeps of a recorded manifest besides the manifest itself."""

    name: Any
    compat: dict[str, Any] | None  # the compat section, as recorded (None: absent or unreadable)
    tool_ids: list[str]
    capability_grants: str  # JSON text ("null" for a manifest of another shape)
    policy_bindings: str
    description: str | None  # the operator section's summary and description (searched)
    tool_descriptions: str | None  # one line per tool that has a text description (searched)


_object_decoder = msgspec.json.Decoder()


class _OperatorText(msgspec.Struct, frozen=True):
    summary: Any = None
    description: Any = None


_operator_decoder = msgspec.json.Decoder(_OperatorText)


def manifest_facts(raw: bytes | msgspec.Raw) -> ManifestFacts:
    """The facts of a manifest recorded in its JSON form, decoded once, only the members they
    need (``domain.grants.recorded_manifest``; imported on first use, reads never need it).
    A manifest of another shape still gets its name, compat, tools and text."""
    from skill_ledger.domain.grants import capability_grants, policy_bindings, recorded_manifest
    from skill_ledger.domain.text import WS

    try:
        m = recorded_manifest(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _facts_of_an_odd_manifest(raw)
    tools = m.entrypoints.tools
    try:
        operator = _operator_decoder.decode(m.operator)
    except msgspec.ValidationError:  # not an object (or absent: null)
        operator = _OperatorText()
    return ManifestFacts(m.name, m.compat, [t.id.strip(WS) for t in tools],
                         _encoder.encode(capability_grants(m)).decode("utf-8"),
                         _encoder.encode(policy_bindings(m)).decode("utf-8"),
                         _lines([operator.summary, operator.description]), _lines([t.description for t in tools]))


def _lines(values: list[Any]) -> str | None:
    """The values that are text and not empty, one per line (None: no such value)."""
    return "\n".join([v for v in values if type(v) is str and v]) or None


def _facts_of_an_odd_manifest(raw: bytes | msgspec.Raw) -> ManifestFacts:
    from skill_ledger.domain.text import WS

    try:
        value = _object_decoder.decode(raw)
    except msgspec.DecodeError:
        value = None
    manifest = value if isinstance(value, dict) else {}
    entrypoints = manifest.get("entrypoints")
    tools = entrypoints.get("tools", []) if isinstance(entrypoints, dict) else []
    tools = [t if isinstance(t, dict) else {} for t in tools] if isinstance(tools, list) else []
    ids = [str(t.get("id", "")).strip(WS) for t in tools]
    compat = manifest.get("compat")
    operator = manifest.get("operator") if isinstance(manifest.get("operator"), dict) else {}
    return ManifestFacts(manifest.get("name"), compat if isinstance(compat, dict) else None, ids, "null", "null",
                         _lines([operator.get("summary"), operator.get("description")]),
                         _lines([t.get("description") for t in tools]))
