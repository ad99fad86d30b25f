"""The skill manifest (``skill.toml``) of ``artifact-format.md`` §5 and the runtime
compatibility check of §15.

Pure: no file I/O. Parsing is three steps, each with its own error kind:

0. the manifest limits (size, keys, key parts, nesting, array elements, string length:
   ``domain/toml_limits.py``) on the text before ``tomllib`` sees it, the tool count on the
   parsed document and the identifier lengths after the schema decode: ``manifest_limits``;
1. TOML text -> Python values (``tomllib``), plus the checks TOML itself requires but
   ``tomllib`` skips (signed 64-bit integers) and the legacy compat aliases;
2. schema decode into frozen msgspec Structs (unknown key, missing key, wrong type,
   range, enum value): all ``manifest_parse``;
3. the §5.4 / §5.5 rules in their normative order: ``manifest_validation`` or
   ``invalid_artifact_path``.

Sequences are tuples so a parsed manifest is immutable all the way down (the *any*
values, tool schemas and config defaults, are plain JSON-like dicts and lists).
"""

from __future__ import annotations

import datetime as _dt
import math
import tomllib
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import msgspec
import tomli_w
from msgspec import UNSET, Meta, Struct, field

from .constants import (
    DEFAULT_CONFIG_SCHEMA_VERSION,
    DEFAULT_FUEL_BUDGET,
    DEFAULT_MAX_MEMORY_BYTES,
    DEFAULT_WALL_CLOCK_TIMEOUT_MS,
    LEGACY_MANIFEST_VERSION,
    MAX_MANIFEST_ID_CHARS,
    MAX_MANIFEST_NESTING,
    MAX_MANIFEST_TOOLS,
    MIN_MAX_MEMORY_BYTES,
    PROTOCOL_MAJOR,
    RUNTIME_VERSION,
    SUPPORTED_CONTRACT_VERSIONS,
    UINT32_MAX,
    UINT64_MAX,
)
from .errors import (
    ManifestLimitExceeded,
    ManifestParseError,
    ManifestValidationError,
    RuntimeVersionAboveSupportedMaximum,
    SerializationError,
    UnsupportedProtocolMajor,
    UnsupportedRuntimeVersion,
)
from .grammars import (
    ident,
    is_config_key,
    is_entrypoint,
    is_label,
    normalize_host,
    normalize_path,
    secret_scope,
    semver,
    skill_id,
    skill_version,
    wild,
)
from .text import ascii_lower, trim
from .toml_limits import check_manifest_size, check_toml_limits

__all__ = [
    "manifest_from_json",
    "CONFIG_TYPES",
    "CONTRACT_KINDS",
    "TOML_DATETIME_KEY",
    "Builder",
    "BuilderChecklist",
    "Capabilities",
    "Compat",
    "ConfigProperty",
    "ConfigType",
    "ContractKind",
    "Entrypoints",
    "FilesystemCapabilities",
    "Integrity",
    "IntegrityFile",
    "Manifest",
    "ManifestWarning",
    "Operator",
    "OperatorConfig",
    "OperatorPlugin",
    "PluginContract",
    "Quotas",
    "SecretRequirement",
    "Tool",
    "ToolRisk",
    "WildcardOptIn",
    "check_runtime_compat",
    "find_tool",
    "integrity_map",
    "is_operator_empty",
    "is_plugin_empty",
    "manifest_to_json",
    "manifest_warnings",
    "parse_manifest",
    "parse_manifest_bytes",
    "requires_review",
    "serialize_manifest",
    "tool_ids",
    "toml_datetime_text",
    "toml_to_json_value",
    "validate_manifest",
    "with_integrity",
]

U32 = Annotated[int, Meta(ge=0, le=UINT32_MAX)]
U64 = Annotated[int, Meta(ge=0, le=UINT64_MAX)]
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Containers below the document root; the reference's TOML parser refuses much deeper inline nesting.
MAX_NESTING_DEPTH = MAX_MANIFEST_NESTING

ContractKind = Literal[
    "memory_provider",
    "context_engine",
    "routing_strategy",
    "run_lifecycle_hook",
    "compaction_provider",
    "diagnostics_provider",
    "policy_signal_provider",
    "channel_binding_provider",
    "delivery_adapter",
    "scheduler_task_provider",
    "model_auth_provider",
    "connector_adapter",
]
ConfigType = Literal["string", "integer", "number", "boolean", "string_list"]
CONTRACT_KINDS: tuple[str, ...] = ContractKind.__args__  # type: ignore[attr-defined]
CONFIG_TYPES: tuple[str, ...] = ConfigType.__args__  # type: ignore[attr-defined]

# The key the format uses to carry a TOML datetime inside a JSON value (§5.1).
TOML_DATETIME_KEY = "$__toml_private_datetime"

# Legacy spelling -> current spelling, accepted on read only (§5.2).
COMPAT_ALIASES = (
    ("min_protocol_major", "required_protocol_major"),
    ("min_runtime_version", "min_palyra_version"),
)

_SECRET_LIKE = ("secret", "token", "password", "api_key", "client_key")


class _Model(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every manifest Struct: immutable, unknown keys rejected.

    ``frozen`` and ``forbid_unknown_fields`` are inherited, but msgspec applies ``kw_only``
    only to the fields of the class that sets it, so every subclass repeats it.
    """


# --- schema (§5.2) ------------------------------------------------------------------


class ToolRisk(_Model, kw_only=True):
    default_sensitive: bool = False
    requires_approval: bool = False


class Tool(_Model, kw_only=True):
    id: str
    name: str
    description: str
    input_schema: Any  # JSON value; rule 13 requires an object
    output_schema: Any
    risk: ToolRisk = field(default_factory=ToolRisk)


class Entrypoints(_Model, kw_only=True):
    tools: tuple[Tool, ...]


class FilesystemCapabilities(_Model, kw_only=True):
    read_roots: tuple[str, ...] = ()
    write_roots: tuple[str, ...] = ()


class SecretRequirement(_Model, kw_only=True):
    scope: str
    key_names: tuple[str, ...] = ()


class Quotas(_Model, kw_only=True):
    wall_clock_timeout_ms: U64 = DEFAULT_WALL_CLOCK_TIMEOUT_MS
    fuel_budget: U64 = DEFAULT_FUEL_BUDGET
    max_memory_bytes: U64 = DEFAULT_MAX_MEMORY_BYTES


class WildcardOptIn(_Model, kw_only=True):
    filesystem: bool = False
    http_egress: bool = False
    secrets: bool = False
    device: bool = False
    node: bool = False


class Capabilities(_Model, kw_only=True):
    filesystem: FilesystemCapabilities = field(default_factory=FilesystemCapabilities)
    http_egress_allowlist: tuple[str, ...] = ()
    secrets: tuple[SecretRequirement, ...] = ()
    device_capabilities: tuple[str, ...] = ()
    node_capabilities: tuple[str, ...] = ()
    quotas: Quotas = field(default_factory=Quotas)
    wildcard_opt_in: WildcardOptIn = field(default_factory=WildcardOptIn)


class Compat(_Model, kw_only=True):
    required_protocol_major: U32
    min_palyra_version: str
    max_palyra_version: str | None = None


class IntegrityFile(_Model, kw_only=True):
    path: str
    sha256: str


class Integrity(_Model, kw_only=True):
    files: tuple[IntegrityFile, ...] = ()


class BuilderChecklist(_Model, kw_only=True):
    capability_declaration_path: str
    provenance_path: str
    test_harness_path: str
    review_notes: str = ""


class Builder(_Model, kw_only=True):
    experimental: bool
    source_kind: str
    source_ref: str
    rollout_flag: str
    review_status: str = ""
    checklist: BuilderChecklist


class PluginContract(_Model, kw_only=True):
    kind: ContractKind
    version: U32 = 1


class OperatorPlugin(_Model, kw_only=True):
    default_tool_id: str | None = None
    default_module_path: str | None = None
    default_entrypoint: str | None = None
    contracts: tuple[PluginContract, ...] = ()


class ConfigProperty(_Model, kw_only=True):
    type: ConfigType
    title: str | None = None
    description: str | None = None
    # UNSET (absent) differs from None: a NaN default maps to None and is "present".
    default: Any = UNSET
    redacted: bool = False
    enum_values: tuple[str, ...] = ()


class OperatorConfig(_Model, kw_only=True):
    schema_version: U32 = DEFAULT_CONFIG_SCHEMA_VERSION
    required: tuple[str, ...] = ()
    properties: dict[str, ConfigProperty] = {}


class Operator(_Model, kw_only=True):
    display_name: str | None = None
    summary: str | None = None
    description: str | None = None
    docs_url: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    plugin: OperatorPlugin = field(default_factory=OperatorPlugin)
    config: OperatorConfig | None = None


class Manifest(_Model, kw_only=True):
    manifest_version: U32 = 2
    skill_id: str
    name: str
    version: str  # the skill's own semver
    publisher: str
    entrypoints: Entrypoints
    capabilities: Capabilities = field(default_factory=Capabilities)
    compat: Compat
    integrity: Integrity = field(default_factory=Integrity)
    builder: Builder | None = None
    operator: Operator = field(default_factory=Operator)


class ManifestWarning(Struct, frozen=True, kw_only=True):
    code: str
    severity: str = "warning"
    message: str


# --- parsing (§5.1) -----------------------------------------------------------------


def parse_manifest_bytes(data: bytes) -> Manifest:
    """Strict UTF-8 decode (no BOM sniffing, no replacement), then :func:`parse_manifest`."""
    check_manifest_size(len(data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestParseError(f"skill.toml is not valid UTF-8: {e}") from None
    return parse_manifest(text)


def parse_manifest(text: str) -> Manifest:
    """TOML + schema decode + every §5.4/§5.5 rule in order. No compat check, no warnings."""
    doc = _load_toml(text)
    _check_toml_values(doc)
    _check_tool_count(doc)
    _apply_compat_aliases(doc)
    manifest = _decode(doc)
    _check_identifier_lengths(manifest)
    validate_manifest(manifest)
    return manifest


def _load_toml(text: str) -> dict[str, Any]:
    if not isinstance(text, str):
        raise ManifestParseError(f"manifest text must be str, not {type(text).__name__}")
    check_toml_limits(text)  # the size first, then one linear scan: tomllib only sees bounded text
    try:
        # Lone surrogates are not Unicode scalar values, so they cannot be TOML text,
        # and tomllib would otherwise let them through inside strings.
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ManifestParseError(f"manifest text is not valid Unicode: {e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ManifestParseError(f"invalid TOML: {e}") from None
    except (ValueError, RecursionError, MemoryError) as e:
        # tomllib lets int() digit-limit errors and deep nesting escape as non-TOML errors.
        raise ManifestParseError(f"invalid TOML: {type(e).__name__}: {e}") from None


def _check_toml_values(doc: dict[str, Any]) -> None:
    """What TOML (or the reference's parser) forbids but tomllib lets through.

    Integers are signed 64-bit (§1.4). Nesting is capped (stricter than the spec's text,
    within the reference's own parser recursion limit) so every accepted manifest can
    also be written back and re-parsed (§5.7) without hitting Python's recursion limit.
    A value's path is only spelled out for the error (each node keeps its parent and key),
    so the walk stays linear however long and deep the keys are.
    """
    Node = tuple[Any, Any, int]  # (parent node or None, key or index, depth)
    stack: list[tuple[Any, Node]] = [(doc, (None, "$", 0))]
    while stack:
        value, node = stack.pop()
        depth = node[2]
        if isinstance(value, (dict, list)):
            if depth > MAX_NESTING_DEPTH:
                raise ManifestParseError(f"value nested deeper than {MAX_NESTING_DEPTH} levels - at `{_path(node)}`")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((v, (node, k, depth + 1)) for k, v in items)
        elif type(value) is int and not INT64_MIN <= value <= INT64_MAX:
            raise ManifestParseError(f"integer out of the signed 64-bit TOML range - at `{_path(node)}`")


def _path(node: Any) -> str:
    parts: list[str] = []
    while node is not None:
        parent, key, _depth = node
        parts.append(f"[{key}]" if isinstance(key, int) else (key if parent is None else f".{key}"))
        node = parent
    return "".join(reversed(parts))


def _check_tool_count(doc: dict[str, Any]) -> None:
    entrypoints = doc.get("entrypoints")
    tools = entrypoints.get("tools") if isinstance(entrypoints, dict) else None
    if isinstance(tools, list) and len(tools) > MAX_MANIFEST_TOOLS:
        raise ManifestLimitExceeded("tools", len(tools), MAX_MANIFEST_TOOLS, "entrypoints.tools")


def _check_identifier_lengths(m: Manifest) -> None:
    """The names a skill is known by become stream names, directory names and CLI arguments."""
    named = [("skill_id", m.skill_id), ("publisher", m.publisher), ("version", m.version)]
    named += [("entrypoints.tools[].id", t.id) for t in m.entrypoints.tools]
    for field_name, value in named:
        if len(value) > MAX_MANIFEST_ID_CHARS:
            raise ManifestLimitExceeded("id_chars", len(value), MAX_MANIFEST_ID_CHARS, field_name)


def _apply_compat_aliases(doc: dict[str, Any]) -> None:
    compat = doc.get("compat")
    if not isinstance(compat, dict):
        return  # the schema decode reports the missing or mistyped table
    for legacy, current in COMPAT_ALIASES:
        if legacy in compat:
            if current in compat:
                raise ManifestParseError(
                    f"compat.{legacy} (legacy alias) and compat.{current} cannot both be present"
                )
            compat[current] = compat.pop(legacy)


def _decode(doc: dict[str, Any]) -> Manifest:
    try:
        manifest = msgspec.convert(doc, Manifest)
    except msgspec.ValidationError as e:
        raise ManifestParseError(str(e)) from None
    try:
        return _normalise_any_values(manifest)
    except RecursionError:
        raise ManifestParseError("value nested too deeply") from None


def _normalise_any_values(m: Manifest) -> Manifest:
    """Map the *any* fields (tool schemas, config defaults) from TOML values to JSON values."""
    tools = tuple(
        msgspec.structs.replace(
            t, input_schema=toml_to_json_value(t.input_schema), output_schema=toml_to_json_value(t.output_schema)
        )
        for t in m.entrypoints.tools
    )
    m = msgspec.structs.replace(m, entrypoints=msgspec.structs.replace(m.entrypoints, tools=tools))
    config = m.operator.config
    if config is not None and any(p.default is not UNSET for p in config.properties.values()):
        properties = {
            k: p if p.default is UNSET else msgspec.structs.replace(p, default=toml_to_json_value(p.default))
            for k, p in config.properties.items()
        }
        config = msgspec.structs.replace(config, properties=properties)
        m = msgspec.structs.replace(m, operator=msgspec.structs.replace(m.operator, config=config))
    return m


def toml_to_json_value(value: Any) -> Any:
    """§5.1: table -> object, NaN/inf -> None, datetime/date/time -> the private-datetime object."""
    if isinstance(value, dict):
        return {k: toml_to_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [toml_to_json_value(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return {TOML_DATETIME_KEY: toml_datetime_text(value)}
    return value


def toml_datetime_text(value: _dt.datetime | _dt.date | _dt.time) -> str:
    """The TOML text of a datetime value, in the reference's (toml crate) Display form.

    ``T`` separator, ``Z`` for a zero offset, ``±HH:MM`` otherwise, fractional seconds
    without trailing zeros. tomllib keeps microseconds only and maps ``+00:00`` to UTC,
    so digits past the sixth and the ``+00:00`` spelling cannot be recovered.
    """
    if isinstance(value, _dt.datetime):
        text = f"{_date_text(value)}T{_time_text(value)}"
        offset = value.utcoffset()
        return text if offset is None else text + _offset_text(offset)
    if isinstance(value, _dt.date):
        return _date_text(value)
    return _time_text(value)


def _date_text(d: _dt.date) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _time_text(t: _dt.time | _dt.datetime) -> str:
    text = f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if t.microsecond:
        text += "." + f"{t.microsecond:06d}".rstrip("0")
    return text


def _offset_text(offset: _dt.timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    if minutes == 0:
        return "Z"
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


# --- validation (§5.4, §5.5) --------------------------------------------------------


def validate_manifest(m: Manifest) -> None:
    """Every §5.4 rule (including §5.5) in the normative order; the first failure is raised."""
    if m.manifest_version not in (1, 2):
        raise ManifestValidationError("manifest_version_unsupported", "manifest_version must equal 1 or 2")
    publisher = ident(m.publisher, "publisher")
    skill_id(m.skill_id)
    skill_version(m.version, "version")
    _check_compat_versions(m.compat)
    if not trim(m.name):
        raise ManifestValidationError("name_empty", "name cannot be empty")
    _check_tools(m.entrypoints.tools, publisher)
    _check_capabilities(m.capabilities)
    if m.builder is not None:
        _check_builder(m.builder)
    _check_operator(m, publisher)


def _check_compat_versions(compat: Compat) -> None:
    minimum = semver(compat.min_palyra_version, "compat.min_palyra_version")
    if compat.max_palyra_version is not None:
        maximum = semver(compat.max_palyra_version, "compat.max_palyra_version")
        if maximum < minimum:
            raise ManifestValidationError(
                "compat_max_below_min", "compat.max_palyra_version must be >= compat.min_palyra_version"
            )


def _check_tools(tools: tuple[Tool, ...], publisher: str) -> None:
    if not tools:
        raise ManifestValidationError("tools_empty", "entrypoints.tools cannot be empty")
    seen: set[str] = set()
    for tool in tools:
        tool_id = ident(tool.id, "entrypoints.tools[].id")
        if not tool_id.startswith(publisher + "."):
            raise ManifestValidationError(
                "tool_id_not_namespaced", f"tool id '{tool.id}' must be namespaced with '{publisher}.'"
            )
        if tool_id in seen:
            raise ManifestValidationError("tool_id_duplicate", f"duplicate tool id '{tool.id}'")
        seen.add(tool_id)
        if not trim(tool.name) or not trim(tool.description):
            raise ManifestValidationError(
                "tool_text_empty", f"tool '{tool.id}' must include non-empty name and description"
            )
        # Checked on the JSON mapping, as the reference does: a TOML datetime is an object there.
        if not isinstance(tool.input_schema, dict) or not isinstance(tool.output_schema, dict):
            raise ManifestValidationError("tool_schema_not_object", f"tool '{tool.id}' schemas must be JSON objects")


def _check_capabilities(caps: Capabilities) -> None:
    opt_in = caps.wildcard_opt_in
    for path in (*caps.filesystem.read_roots, *caps.filesystem.write_roots):
        if "*" in path and not opt_in.filesystem:
            raise ManifestValidationError(
                "wildcard_without_opt_in", f"capability path '{path}' uses wildcard without explicit opt-in"
            )
        normalize_path(path)
    for host in caps.http_egress_allowlist:
        _check_host(host, opt_in.http_egress)
    for secret in caps.secrets:
        secret_scope(secret.scope)
        if not secret.key_names:
            raise ManifestValidationError(
                "secret_key_names_empty", f"secret scope '{secret.scope}' must list key_names"
            )
        for key in secret.key_names:
            wild(key, "capabilities.secrets[].key_names", opt_in.secrets)
    for value in caps.device_capabilities:
        wild(value, "capabilities.device_capabilities", opt_in.device)
    for value in caps.node_capabilities:
        wild(value, "capabilities.node_capabilities", opt_in.node)
    q = caps.quotas
    if q.wall_clock_timeout_ms == 0 or q.fuel_budget == 0 or q.max_memory_bytes < MIN_MAX_MEMORY_BYTES:
        raise ManifestValidationError(
            "quotas_invalid", "capabilities.quotas values must be non-zero and memory >= 65536"
        )


def _check_host(host: str, opt_in: bool) -> None:
    """§4.6: a wildcard entry with opt-in is accepted without any further check."""
    if "*" in host:
        if not opt_in:
            raise ManifestValidationError(
                "wildcard_without_opt_in", f"host '{host}' uses wildcard without explicit opt-in"
            )
        return
    if normalize_host(host) is None:
        raise ManifestValidationError("host_invalid", f"invalid host '{host}'")


def _check_builder(builder: Builder) -> None:
    if not builder.experimental:
        raise ManifestValidationError(
            "builder_not_experimental", "builder.experimental must stay true for generated builder outputs"
        )
    for name in ("source_kind", "source_ref", "rollout_flag"):
        if not trim(getattr(builder, name)):
            raise ManifestValidationError("builder_field_empty", f"builder.{name} cannot be empty")
    for name in ("capability_declaration_path", "provenance_path", "test_harness_path"):
        value = getattr(builder.checklist, name)
        if not trim(value):
            raise ManifestValidationError("builder_field_empty", f"builder.checklist.{name} cannot be empty")
        normalize_path(value)


def _check_operator(m: Manifest, publisher: str) -> None:
    op = m.operator
    if is_operator_empty(m):
        return
    if m.manifest_version == LEGACY_MANIFEST_VERSION:
        raise ManifestValidationError(
            "operator_requires_manifest_v2", "operator metadata requires manifest_version 2"
        )
    for name in ("display_name", "summary", "description"):
        value = getattr(op, name)
        if value is not None and not trim(value):
            raise ManifestValidationError("operator_text_empty", f"operator.{name} cannot be empty")
    for name in ("categories", "tags"):
        if not all(is_label(v) for v in getattr(op, name)):
            raise ManifestValidationError("operator_label_invalid", f"operator.{name} entries must use [a-z0-9._-]")
    if op.docs_url is not None and not _is_docs_url(op.docs_url):
        raise ManifestValidationError(
            "docs_url_invalid", "operator.docs_url must be an https URL without fragments or spaces"
        )
    _check_plugin(op.plugin, publisher, [t.id for t in m.entrypoints.tools])
    if op.config is not None:
        _check_config(op.config)


def _is_docs_url(raw: str) -> bool:
    t = trim(raw)
    return bool(t) and t.startswith("https://") and " " not in t and "#" not in t


def _check_plugin(plugin: OperatorPlugin, publisher: str, raw_tool_ids: Iterable[str]) -> None:
    """Rules 33-39. Takes the raw tool ids so rule 35 can be exercised on its own: after
    rules 10 and 34 a known default tool is always namespaced, so in a full parse it is
    unreachable."""
    raw = plugin.default_tool_id
    if raw is not None:
        n = ident(raw, "operator.plugin.default_tool_id")
        if n not in raw_tool_ids:
            raise ManifestValidationError(
                "default_tool_unknown",
                f"operator.plugin.default_tool_id '{raw}' must reference an entrypoints.tools id",
            )
        if not n.startswith(publisher + "."):
            raise ManifestValidationError(
                "default_tool_not_namespaced",
                f"operator.plugin.default_tool_id '{raw}' must be namespaced with '{publisher}.'",
            )
    path = plugin.default_module_path
    if path is not None:
        if "\x00" in path or ".." in path or not path.startswith("modules/") or not path.endswith(".wasm"):
            raise ManifestValidationError(
                "default_module_path_invalid",
                "operator.plugin.default_module_path must reference a modules/*.wasm entry",
            )
        normalize_path(path)
    if plugin.default_entrypoint is not None and not is_entrypoint(plugin.default_entrypoint):
        raise ManifestValidationError(
            "default_entrypoint_invalid", "operator.plugin.default_entrypoint must use [a-z0-9_-]"
        )
    seen: set[str] = set()
    for contract in plugin.contracts:
        if contract.version == 0:
            raise ManifestValidationError(
                "contract_version_zero",
                f"operator.plugin.contracts kind '{contract.kind}' must use a non-zero version",
            )
        if contract.version not in SUPPORTED_CONTRACT_VERSIONS:
            raise ManifestValidationError(
                "contract_version_unsupported",
                f"operator.plugin.contracts kind '{contract.kind}' version {contract.version} is not supported",
            )
        if contract.kind in seen:
            raise ManifestValidationError(
                "contract_kind_duplicate", f"operator.plugin.contracts contains duplicate kind '{contract.kind}'"
            )
        seen.add(contract.kind)


def _check_config(config: OperatorConfig) -> None:
    """§5.5."""
    if config.schema_version == 0:
        raise ManifestValidationError("config_schema_version_zero", "operator.config.schema_version must be non-zero")
    for name in config.required:
        if not is_config_key(name):
            raise ManifestValidationError(
                "config_required_key_invalid", f"operator.config.required entry '{name}' must use [a-z0-9._-]"
            )
        if name not in config.properties:
            raise ManifestValidationError(
                "config_required_unknown", f"operator.config.required references unknown property '{name}'"
            )
    for key in sorted(config.properties):
        _check_config_property(key, config.properties[key])


def _check_config_property(key: str, prop: ConfigProperty) -> None:
    where = f"operator.config.properties '{key}'"
    if not is_config_key(key):
        raise ManifestValidationError("config_property_key_invalid", f"{where} key must use [a-z0-9._-]")
    if prop.title is not None and not trim(prop.title):
        raise ManifestValidationError("config_title_empty", f"{where} title cannot be empty")
    if prop.description is not None and not trim(prop.description):
        raise ManifestValidationError("config_description_empty", f"{where} description cannot be empty")
    if prop.enum_values:
        if prop.type != "string":
            raise ManifestValidationError("config_enum_requires_string", f"{where} enum_values require type 'string'")
        trimmed = [trim(v) for v in prop.enum_values]
        if not all(trimmed):
            raise ManifestValidationError("config_enum_empty_value", f"{where} enum_values cannot contain empty values")
        if len(set(trimmed)) != len(trimmed):
            raise ManifestValidationError("config_enum_duplicate", f"{where} enum_values must be unique")
    if prop.default is not UNSET:
        if not _default_matches(prop.type, prop.default):
            raise ManifestValidationError(
                "config_default_type_mismatch", f"{where} default does not match type '{prop.type}'"
            )
        if prop.enum_values:
            if not isinstance(prop.default, str):
                raise ManifestValidationError("config_default_not_string", f"{where} default must be a string")
            if prop.default not in prop.enum_values:
                raise ManifestValidationError(
                    "config_default_not_in_enum", f"{where} default must be one of its enum_values"
                )


def _default_matches(type_: str, value: Any) -> bool:
    # bool is an int subclass in Python; the format keeps them distinct.
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "string_list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return False


# --- predicates and accessors --------------------------------------------------------


def is_plugin_empty(plugin: OperatorPlugin) -> bool:
    return (
        plugin.default_tool_id is None
        and plugin.default_module_path is None
        and plugin.default_entrypoint is None
        and not plugin.contracts
    )


def is_operator_empty(m: Manifest | Operator) -> bool:
    """§5.2: no operator optionals, no config (even an empty one), no labels, empty plugin."""
    op = m.operator if isinstance(m, Manifest) else m
    return (
        op.display_name is None
        and op.summary is None
        and op.description is None
        and op.docs_url is None
        and op.config is None
        and not op.categories
        and not op.tags
        and is_plugin_empty(op.plugin)
    )


def requires_review(m: Manifest) -> bool:
    """§5.8."""
    b = m.builder
    return b is not None and b.experimental and ascii_lower(trim(b.review_status)) not in ("approved", "signed")


def tool_ids(m: Manifest) -> list[str]:
    """The normalised (trimmed) tool ids, in manifest order."""
    return [trim(t.id) for t in m.entrypoints.tools]


def find_tool(m: Manifest, tool_id: str) -> Tool | None:
    """The tool whose normalised id equals ``trim(tool_id)``, or ``None``."""
    wanted = trim(tool_id)
    return next((t for t in m.entrypoints.tools if trim(t.id) == wanted), None)


def with_integrity(m: Manifest, files: Iterable[tuple[str, str]]) -> Manifest:
    """A copy of ``m`` whose ``integrity.files`` is ``files`` as ``{path, sha256}``, sorted."""
    entries = tuple(IntegrityFile(path=p, sha256=h) for p, h in sorted(files))
    return msgspec.structs.replace(m, integrity=Integrity(files=entries))


def integrity_map(m: Manifest) -> dict[str, str]:
    """``{normalize_path(path): sha256}``; a later duplicate wins; a bad path raises IAP."""
    return {normalize_path(f.path): f.sha256 for f in m.integrity.files}


# --- runtime compatibility (§15) -----------------------------------------------------


def check_runtime_compat(
    m: Manifest, runtime_version: str = RUNTIME_VERSION, protocol_major: int = PROTOCOL_MAJOR
) -> None:
    compat = m.compat
    if compat.required_protocol_major > protocol_major:
        raise UnsupportedProtocolMajor(compat.required_protocol_major, protocol_major)
    runtime = semver(runtime_version, "runtime_version")
    if semver(compat.min_palyra_version, "compat.min_palyra_version") > runtime:
        raise UnsupportedRuntimeVersion(compat.min_palyra_version, runtime_version)
    if compat.max_palyra_version is not None:
        if runtime > semver(compat.max_palyra_version, "compat.max_palyra_version"):
            raise RuntimeVersionAboveSupportedMaximum(compat.max_palyra_version, runtime_version)


# --- warnings (§5.6) -----------------------------------------------------------------


def manifest_warnings(m: Manifest) -> list[ManifestWarning]:
    out: list[ManifestWarning] = []
    if m.manifest_version == LEGACY_MANIFEST_VERSION:
        out.append(
            ManifestWarning(
                code="legacy_manifest_version",
                message="manifest_version 1 is still supported for compatibility, but 2 is now recommended",
            )
        )
    op = m.operator
    if is_operator_empty(m):
        out.append(
            ManifestWarning(
                code="missing_operator_metadata",
                message="operator-facing metadata is missing; inventory and doctor output will be degraded",
            )
        )
        return out
    if op.display_name is None:
        out.append(ManifestWarning(code="missing_operator_display_name", message="operator.display_name is missing"))
    if op.config is not None:
        if not op.config.properties:
            out.append(
                ManifestWarning(
                    code="empty_operator_config_contract",
                    message="operator.config is present but does not declare any properties",
                )
            )
        for name in sorted(op.config.properties):
            prop = op.config.properties[name]
            if not prop.redacted and _looks_secret(name):
                out.append(
                    ManifestWarning(
                        code="operator_config_redaction_recommended",
                        message=f"operator.config property '{name}' looks secret-like but is not marked redacted",
                    )
                )
    return out


def _looks_secret(name: str) -> bool:
    lowered = ascii_lower(name)
    return any(word in lowered for word in _SECRET_LIKE)


# --- serialised and JSON forms (§5.7) ------------------------------------------------


def manifest_to_json(m: Manifest) -> dict[str, Any]:
    """The JSON form: §5.7 names, nesting and omission rules; plain JSON values only."""
    return _manifest_dict(m, _json_any)


def serialize_manifest(m: Manifest) -> str:
    """The §5.7 ``skill.toml`` text; it re-parses to an equal manifest."""
    try:
        return tomli_w.dumps(_manifest_dict(m, _toml_any))
    except (TypeError, ValueError, RecursionError) as e:
        raise SerializationError(f"cannot write manifest as TOML: {e}") from None


def _json_any(value: Any) -> Any:
    # Parsed any-values are already JSON; copy so callers cannot mutate the manifest.
    if isinstance(value, dict):
        return {k: _json_any(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_any(v) for v in value]
    return value


def _toml_any(value: Any) -> Any:
    # TOML has no null; NaN is the TOML value that maps back to null (§5.1).
    if value is None:
        return math.nan
    if isinstance(value, dict):
        return {k: _toml_any(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_toml_any(v) for v in value]
    return value


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _manifest_dict(m: Manifest, any_value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "manifest_version": m.manifest_version,
        "skill_id": m.skill_id,
        "name": m.name,
        "version": m.version,
        "publisher": m.publisher,
        "entrypoints": {"tools": [_tool_dict(t, any_value) for t in m.entrypoints.tools]},
        "capabilities": _capabilities_dict(m.capabilities),
        "compat": _compat_dict(m.compat),
        "integrity": {"files": [{"path": f.path, "sha256": f.sha256} for f in m.integrity.files]},
    }
    if m.builder is not None:
        out["builder"] = _builder_dict(m.builder)
    out["operator"] = _operator_dict(m.operator, any_value)
    return out


def _tool_dict(t: Tool, any_value: Any) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "input_schema": any_value(t.input_schema),
        "output_schema": any_value(t.output_schema),
        "risk": {"default_sensitive": t.risk.default_sensitive, "requires_approval": t.risk.requires_approval},
    }


def _capabilities_dict(c: Capabilities) -> dict[str, Any]:
    return {
        "http_egress_allowlist": list(c.http_egress_allowlist),
        "device_capabilities": list(c.device_capabilities),
        "node_capabilities": list(c.node_capabilities),
        "filesystem": {"read_roots": list(c.filesystem.read_roots), "write_roots": list(c.filesystem.write_roots)},
        "secrets": [{"scope": s.scope, "key_names": list(s.key_names)} for s in c.secrets],
        "quotas": {
            "wall_clock_timeout_ms": c.quotas.wall_clock_timeout_ms,
            "fuel_budget": c.quotas.fuel_budget,
            "max_memory_bytes": c.quotas.max_memory_bytes,
        },
        "wildcard_opt_in": msgspec.structs.asdict(c.wildcard_opt_in),
    }


def _compat_dict(c: Compat) -> dict[str, Any]:
    out: dict[str, Any] = {
        "required_protocol_major": c.required_protocol_major,
        "min_palyra_version": c.min_palyra_version,
    }
    _put(out, "max_palyra_version", c.max_palyra_version)
    return out


def _builder_dict(b: Builder) -> dict[str, Any]:
    return {
        "experimental": b.experimental,
        "source_kind": b.source_kind,
        "source_ref": b.source_ref,
        "rollout_flag": b.rollout_flag,
        "review_status": b.review_status,
        "checklist": {
            "capability_declaration_path": b.checklist.capability_declaration_path,
            "provenance_path": b.checklist.provenance_path,
            "test_harness_path": b.checklist.test_harness_path,
            "review_notes": b.checklist.review_notes,
        },
    }


def _operator_dict(op: Operator, any_value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("display_name", "summary", "description", "docs_url"):
        _put(out, name, getattr(op, name))
    out["categories"] = list(op.categories)
    out["tags"] = list(op.tags)
    plugin: dict[str, Any] = {}
    for name in ("default_tool_id", "default_module_path", "default_entrypoint"):
        _put(plugin, name, getattr(op.plugin, name))
    if op.plugin.contracts:
        plugin["contracts"] = [{"kind": c.kind, "version": c.version} for c in op.plugin.contracts]
    out["plugin"] = plugin
    if op.config is not None:
        out["config"] = {
            "schema_version": op.config.schema_version,
            "required": list(op.config.required),
            "properties": {k: _property_dict(p, any_value) for k, p in op.config.properties.items()},
        }
    return out


def _property_dict(p: ConfigProperty, any_value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": p.type}
    _put(out, "title", p.title)
    _put(out, "description", p.description)
    if p.default is not UNSET:
        out["default"] = any_value(p.default)
    out["redacted"] = p.redacted
    if p.enum_values:
        out["enum_values"] = list(p.enum_values)
    return out


def manifest_from_json(data: dict[str, Any]) -> Manifest:
    """The inverse of :func:`manifest_to_json` for manifests already recorded (no rules re-run)."""
    return msgspec.convert(data, Manifest)
