"""§5.4 / §5.5 validation rules: one failing manifest per rule code, the legal edge
cases next to them, and rule-order tests (the first failing rule decides the code)."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest
import tomli_w

from skill_ledger.domain.errors import InvalidArtifactPath, ManifestValidationError
from skill_ledger.domain.manifest import (
    ConfigProperty,
    OperatorPlugin,
    PluginContract,
    _check_config_property,
    _check_plugin,
    parse_manifest,
)

# --- helpers -------------------------------------------------------------------------


def tool(tool_id: str = "acme.echo", **over: Any) -> dict[str, Any]:
    t = {
        "id": tool_id,
        "name": "echo",
        "description": "Echoes text",
        "input_schema": {"type": "object"},
        "output_schema": {"type": "object"},
    }
    t.update(over)
    return t


def base_doc(version: int = 2) -> dict[str, Any]:
    return {
        "manifest_version": version,
        "skill_id": "acme.echo_skill",
        "name": "Echo",
        "version": "1.0.0",
        "publisher": "acme",
        "entrypoints": {"tools": [tool()]},
        "compat": {"required_protocol_major": 1, "min_palyra_version": "0.1.0"},
    }


def setp(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path, creating tables; numeric segments index lists."""
    parts = path.split(".")
    node: Any = doc
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def build(sets: dict[str, Any], version: int = 2) -> str:
    doc = base_doc(version)
    for path, value in sets.items():
        setp(doc, path, copy.deepcopy(value))
    return tomli_w.dumps(doc)


def fails(sets: dict[str, Any], version: int = 2) -> ManifestValidationError | InvalidArtifactPath:
    with pytest.raises((ManifestValidationError, InvalidArtifactPath)) as info:
        parse_manifest(build(sets, version))
    return info.value


def ok(sets: dict[str, Any], version: int = 2):
    return parse_manifest(build(sets, version))


def assert_rule(sets: dict[str, Any], code: str, version: int = 2) -> ManifestValidationError:
    err = fails(sets, version)
    assert isinstance(err, ManifestValidationError), err
    assert err.rule == code, (err.rule, err.detail)
    assert err.code == "manifest_validation"
    assert err.details["code"] == code
    assert err.message == f"manifest validation failed: {err.detail}"
    return err


def assert_iap(sets: dict[str, Any], raw: str, version: int = 2) -> None:
    err = fails(sets, version)
    assert type(err) is InvalidArtifactPath, err
    assert err.code == "invalid_artifact_path"
    assert err.raw == raw
    assert err.details == {"raw": raw}


ROOTS = "capabilities.filesystem.read_roots"
WROOTS = "capabilities.filesystem.write_roots"
HOSTS = "capabilities.http_egress_allowlist"
OPT = "capabilities.wildcard_opt_in"
PLUGIN = "operator.plugin"
PROPS = "operator.config.properties"


def test_base_document_is_valid():
    m = ok({})
    assert m.manifest_version == 2 and m.publisher == "acme"


# --- one failing manifest per rule code ------------------------------------------------

RULE_CASES: list[tuple[str, dict[str, Any], str]] = [
    # rule 1
    ("version_3", {"manifest_version": 3}, "manifest_version_unsupported"),
    ("version_0", {"manifest_version": 0}, "manifest_version_unsupported"),
    # rule 2
    ("publisher_empty", {"publisher": ""}, "identifier_empty"),
    ("publisher_blank", {"publisher": " \u3000\t"}, "identifier_empty"),
    ("publisher_upper", {"publisher": "Acme"}, "identifier_invalid"),
    ("publisher_space", {"publisher": "ac me"}, "identifier_invalid"),
    # rule 3
    ("skill_id_empty", {"skill_id": " "}, "identifier_empty"),
    ("skill_id_upper", {"skill_id": "Acme.x"}, "identifier_invalid"),
    ("skill_id_dotdot", {"skill_id": "a..b"}, "skill_id_invalid"),
    ("skill_id_leading_dot", {"skill_id": ".a"}, "skill_id_invalid"),
    ("skill_id_trailing_dot", {"skill_id": "a."}, "skill_id_invalid"),
    ("skill_id_dot", {"skill_id": "."}, "skill_id_invalid"),
    ("skill_id_colon", {"skill_id": "acme:x"}, "skill_id_invalid"),
    # rule 4
    ("semver_two_parts", {"version": "1.0"}, "semver_format_invalid"),
    ("semver_four_parts", {"version": "1.0.0.0"}, "semver_format_invalid"),
    ("semver_empty", {"version": ""}, "semver_format_invalid"),
    ("semver_prerelease", {"version": "1.0.0-beta"}, "semver_component_invalid"),
    # rule 5
    ("min_format", {"compat.min_palyra_version": "0.1"}, "semver_format_invalid"),
    ("min_component", {"compat.min_palyra_version": "0.x.0"}, "semver_component_invalid"),
    # rule 6
    ("max_format", {"compat.max_palyra_version": "1"}, "semver_format_invalid"),
    ("max_component", {"compat.max_palyra_version": "1.0.-1"}, "semver_component_invalid"),
    ("max_below_min", {"compat.min_palyra_version": "0.2.0", "compat.max_palyra_version": "0.1.9"}, "compat_max_below_min"),
    # rule 7
    ("name_empty", {"name": ""}, "name_empty"),
    ("name_blank", {"name": " \n\u00a0"}, "name_empty"),
    # rule 8
    ("tools_empty", {"entrypoints.tools": []}, "tools_empty"),
    # rule 9
    ("tool_id_empty", {"entrypoints.tools.0.id": " "}, "identifier_empty"),
    ("tool_id_upper", {"entrypoints.tools.0.id": "acme.Echo"}, "identifier_invalid"),
    # rule 10
    ("tool_not_namespaced", {"entrypoints.tools.0.id": "other.echo"}, "tool_id_not_namespaced"),
    ("tool_publisher_only", {"entrypoints.tools.0.id": "acme"}, "tool_id_not_namespaced"),
    ("tool_prefix_no_dot", {"entrypoints.tools.0.id": "acmex.echo"}, "tool_id_not_namespaced"),
    ("tool_colon_ns", {"entrypoints.tools.0.id": "acme:echo"}, "tool_id_not_namespaced"),
    # rule 11
    ("tool_dup", {"entrypoints.tools": [tool(), tool()]}, "tool_id_duplicate"),
    ("tool_dup_after_trim", {"entrypoints.tools": [tool("acme.echo"), tool(" acme.echo ")]}, "tool_id_duplicate"),
    # rule 12
    ("tool_name_empty", {"entrypoints.tools.0.name": " "}, "tool_text_empty"),
    ("tool_description_empty", {"entrypoints.tools.0.description": ""}, "tool_text_empty"),
    # rule 13
    ("input_schema_string", {"entrypoints.tools.0.input_schema": "object"}, "tool_schema_not_object"),
    ("output_schema_array", {"entrypoints.tools.0.output_schema": [{"type": "object"}]}, "tool_schema_not_object"),
    ("input_schema_int", {"entrypoints.tools.0.input_schema": 1}, "tool_schema_not_object"),
    ("input_schema_nan", {"entrypoints.tools.0.input_schema": float("nan")}, "tool_schema_not_object"),
    # rule 14
    ("read_root_wildcard", {ROOTS: ["skills/*"]}, "wildcard_without_opt_in"),
    ("write_root_wildcard", {WROOTS: ["cache/*"]}, "wildcard_without_opt_in"),
    # rule 16
    ("host_wildcard", {HOSTS: ["*.example.com"]}, "wildcard_without_opt_in"),
    # rule 17
    ("host_port", {HOSTS: ["example.com:443"]}, "host_invalid"),
    ("host_scheme", {HOSTS: ["https://example.com"]}, "host_invalid"),
    ("host_path", {HOSTS: ["example.com/x"]}, "host_invalid"),
    ("host_empty", {HOSTS: [""]}, "host_invalid"),
    ("host_only_dots", {HOSTS: ["..."]}, "host_invalid"),
    ("host_double_dot", {HOSTS: ["a..b"]}, "host_invalid"),
    ("host_leading_dot", {HOSTS: [".example.com"]}, "host_invalid"),
    ("host_leading_dash", {HOSTS: ["-example.com"]}, "host_invalid"),
    ("host_trailing_dash", {HOSTS: ["example-"]}, "host_invalid"),
    ("host_ipv6", {HOSTS: ["[::1]"]}, "host_invalid"),
    ("host_underscore", {HOSTS: ["a_b.com"]}, "host_invalid"),
    ("host_non_ascii", {HOSTS: ["exämple.com"]}, "host_invalid"),
    # rule 18
    ("scope_invalid", {"capabilities.secrets": [{"scope": "user:x", "key_names": ["k"]}]}, "secret_scope_invalid"),
    ("scope_empty", {"capabilities.secrets": [{"scope": "", "key_names": ["k"]}]}, "secret_scope_invalid"),
    ("scope_global_upper", {"capabilities.secrets": [{"scope": "GLOBAL", "key_names": ["k"]}]}, "secret_scope_invalid"),
    ("scope_prefix_only", {"capabilities.secrets": [{"scope": "principal:", "key_names": ["k"]}]}, "identifier_empty"),
    ("scope_prefix_blank", {"capabilities.secrets": [{"scope": "channel: ", "key_names": ["k"]}]}, "identifier_empty"),
    ("scope_rest_upper", {"capabilities.secrets": [{"scope": "skill:Acme", "key_names": ["k"]}]}, "identifier_invalid"),
    # rule 19
    ("key_names_empty", {"capabilities.secrets": [{"scope": "global", "key_names": []}]}, "secret_key_names_empty"),
    ("key_names_missing", {"capabilities.secrets": [{"scope": "global"}]}, "secret_key_names_empty"),
    # rule 20
    ("secret_key_wildcard", {"capabilities.secrets": [{"scope": "global", "key_names": ["api_*"]}]}, "wildcard_without_opt_in"),
    ("secret_key_empty", {"capabilities.secrets": [{"scope": "global", "key_names": [" "]}]}, "identifier_empty"),
    ("secret_key_upper", {"capabilities.secrets": [{"scope": "global", "key_names": ["API"]}]}, "identifier_invalid"),
    # rule 21
    ("device_wildcard", {"capabilities.device_capabilities": ["camera.*"]}, "wildcard_without_opt_in"),
    ("device_empty", {"capabilities.device_capabilities": [""]}, "identifier_empty"),
    ("device_upper", {"capabilities.device_capabilities": ["Camera"]}, "identifier_invalid"),
    # rule 22
    ("node_wildcard", {"capabilities.node_capabilities": ["*"]}, "wildcard_without_opt_in"),
    ("node_empty", {"capabilities.node_capabilities": ["\t"]}, "identifier_empty"),
    ("node_invalid", {"capabilities.node_capabilities": ["a/b"]}, "identifier_invalid"),
    # rule 23
    ("quota_timeout_zero", {"capabilities.quotas.wall_clock_timeout_ms": 0}, "quotas_invalid"),
    ("quota_fuel_zero", {"capabilities.quotas.fuel_budget": 0}, "quotas_invalid"),
    ("quota_memory_small", {"capabilities.quotas.max_memory_bytes": 65535}, "quotas_invalid"),
    ("quota_memory_zero", {"capabilities.quotas.max_memory_bytes": 0}, "quotas_invalid"),
    # rules 24-28
    ("builder_not_experimental", {"builder.experimental": False}, "builder_not_experimental"),
    ("builder_source_kind", {"builder.source_kind": " "}, "builder_field_empty"),
    ("builder_source_ref", {"builder.source_ref": ""}, "builder_field_empty"),
    ("builder_rollout_flag", {"builder.rollout_flag": "\n"}, "builder_field_empty"),
    ("checklist_capability", {"builder.checklist.capability_declaration_path": ""}, "builder_field_empty"),
    ("checklist_provenance", {"builder.checklist.provenance_path": " "}, "builder_field_empty"),
    ("checklist_harness", {"builder.checklist.test_harness_path": "\u2003"}, "builder_field_empty"),
    # rules 30-32
    ("display_name_empty", {"operator.display_name": " "}, "operator_text_empty"),
    ("summary_empty", {"operator.summary": ""}, "operator_text_empty"),
    ("description_empty", {"operator.description": "\t"}, "operator_text_empty"),
    ("category_upper", {"operator.categories": ["Tools"]}, "operator_label_invalid"),
    ("category_empty", {"operator.categories": [" "]}, "operator_label_invalid"),
    ("tag_colon", {"operator.tags": ["a:b"]}, "operator_label_invalid"),
    ("docs_http", {"operator.docs_url": "http://example.com"}, "docs_url_invalid"),
    ("docs_upper_scheme", {"operator.docs_url": "HTTPS://example.com"}, "docs_url_invalid"),
    ("docs_fragment", {"operator.docs_url": "https://example.com/#x"}, "docs_url_invalid"),
    ("docs_space", {"operator.docs_url": "https://example.com/a b"}, "docs_url_invalid"),
    ("docs_blank", {"operator.docs_url": "  "}, "docs_url_invalid"),
    # rules 33-34
    ("default_tool_empty", {f"{PLUGIN}.default_tool_id": " "}, "identifier_empty"),
    ("default_tool_upper", {f"{PLUGIN}.default_tool_id": "acme.Echo"}, "identifier_invalid"),
    ("default_tool_unknown", {f"{PLUGIN}.default_tool_id": "acme.other"}, "default_tool_unknown"),
    # rule 36
    ("module_dotdot", {f"{PLUGIN}.default_module_path": "modules/../x.wasm"}, "default_module_path_invalid"),
    ("module_dotdot_name", {f"{PLUGIN}.default_module_path": "modules/a..b.wasm"}, "default_module_path_invalid"),
    ("module_prefix", {f"{PLUGIN}.default_module_path": "assets/x.wasm"}, "default_module_path_invalid"),
    ("module_suffix", {f"{PLUGIN}.default_module_path": "modules/x.wat"}, "default_module_path_invalid"),
    ("module_nul", {f"{PLUGIN}.default_module_path": "modules/x\x00.wasm"}, "default_module_path_invalid"),
    ("module_leading_space", {f"{PLUGIN}.default_module_path": " modules/x.wasm"}, "default_module_path_invalid"),
    # rule 38
    ("entrypoint_dot", {f"{PLUGIN}.default_entrypoint": "run.main"}, "default_entrypoint_invalid"),
    ("entrypoint_empty", {f"{PLUGIN}.default_entrypoint": ""}, "default_entrypoint_invalid"),
    ("entrypoint_upper", {f"{PLUGIN}.default_entrypoint": "Run"}, "default_entrypoint_invalid"),
    # rule 39
    ("contract_zero", {f"{PLUGIN}.contracts": [{"kind": "memory_provider", "version": 0}]}, "contract_version_zero"),
    ("contract_unsupported", {f"{PLUGIN}.contracts": [{"kind": "memory_provider", "version": 2}]}, "contract_version_unsupported"),
    (
        "contract_duplicate",
        {f"{PLUGIN}.contracts": [{"kind": "context_engine"}, {"kind": "context_engine", "version": 1}]},
        "contract_kind_duplicate",
    ),
    # rule 40 / §5.5
    ("config_schema_zero", {"operator.config.schema_version": 0}, "config_schema_version_zero"),
    ("config_required_invalid", {"operator.config.required": ["Bad"]}, "config_required_key_invalid"),
    ("config_required_blank", {"operator.config.required": [" "]}, "config_required_key_invalid"),
    ("config_required_unknown", {"operator.config.required": ["missing"]}, "config_required_unknown"),
    (
        "config_required_raw_vs_trim",
        {"operator.config.required": [" a "], f"{PROPS}.a": {"type": "string"}},
        "config_required_unknown",
    ),
    ("config_key_invalid", {f"{PROPS}.Bad": {"type": "string"}}, "config_property_key_invalid"),
    ("config_key_colon", {f"{PROPS}": {"a:b": {"type": "string"}}}, "config_property_key_invalid"),
    ("config_title_empty", {f"{PROPS}.a": {"type": "string", "title": " "}}, "config_title_empty"),
    ("config_description_empty", {f"{PROPS}.a": {"type": "string", "description": ""}}, "config_description_empty"),
    ("config_enum_not_string", {f"{PROPS}.a": {"type": "integer", "enum_values": ["1"]}}, "config_enum_requires_string"),
    ("config_enum_empty_value", {f"{PROPS}.a": {"type": "string", "enum_values": ["x", " "]}}, "config_enum_empty_value"),
    ("config_enum_duplicate", {f"{PROPS}.a": {"type": "string", "enum_values": ["x", " x"]}}, "config_enum_duplicate"),
    ("config_default_string", {f"{PROPS}.a": {"type": "string", "default": 1}}, "config_default_type_mismatch"),
    ("config_default_int_float", {f"{PROPS}.a": {"type": "integer", "default": 1.0}}, "config_default_type_mismatch"),
    ("config_default_int_bool", {f"{PROPS}.a": {"type": "integer", "default": True}}, "config_default_type_mismatch"),
    ("config_default_number_bool", {f"{PROPS}.a": {"type": "number", "default": False}}, "config_default_type_mismatch"),
    ("config_default_number_nan", {f"{PROPS}.a": {"type": "number", "default": float("nan")}}, "config_default_type_mismatch"),
    ("config_default_number_inf", {f"{PROPS}.a": {"type": "number", "default": float("-inf")}}, "config_default_type_mismatch"),
    ("config_default_number_str", {f"{PROPS}.a": {"type": "number", "default": "1"}}, "config_default_type_mismatch"),
    ("config_default_bool_int", {f"{PROPS}.a": {"type": "boolean", "default": 1}}, "config_default_type_mismatch"),
    ("config_default_list_mixed", {f"{PROPS}.a": {"type": "string_list", "default": ["a", 1]}}, "config_default_type_mismatch"),
    ("config_default_list_str", {f"{PROPS}.a": {"type": "string_list", "default": "a"}}, "config_default_type_mismatch"),
    ("config_default_table", {f"{PROPS}.a": {"type": "string", "default": {"x": "y"}}}, "config_default_type_mismatch"),
    (
        "config_default_not_in_enum",
        {f"{PROPS}.a": {"type": "string", "enum_values": ["x", "y"], "default": "z"}},
        "config_default_not_in_enum",
    ),
    (
        "config_default_untrimmed",
        {f"{PROPS}.a": {"type": "string", "enum_values": ["x", "y"], "default": " x"}},
        "config_default_not_in_enum",
    ),
]


@pytest.mark.parametrize(("sets", "code"), [c[1:] for c in RULE_CASES], ids=[c[0] for c in RULE_CASES])
def test_rule_code(sets, code):
    if any(k.startswith("builder.") for k in sets):
        sets = {"builder": valid_builder(), **sets}
    assert_rule(sets, code)


def test_every_rule_code_is_covered():
    covered = {c[2] for c in RULE_CASES} | {"operator_requires_manifest_v2", "default_tool_not_namespaced"}
    expected = {
        "manifest_version_unsupported", "identifier_empty", "identifier_invalid", "skill_id_invalid",
        "semver_format_invalid", "semver_component_invalid", "compat_max_below_min", "name_empty",
        "tools_empty", "tool_id_not_namespaced", "tool_id_duplicate", "tool_text_empty",
        "tool_schema_not_object", "wildcard_without_opt_in", "host_invalid", "secret_scope_invalid",
        "secret_key_names_empty", "quotas_invalid", "builder_not_experimental", "builder_field_empty",
        "operator_requires_manifest_v2", "operator_text_empty", "operator_label_invalid",
        "docs_url_invalid", "default_tool_unknown", "default_tool_not_namespaced",
        "default_module_path_invalid", "default_entrypoint_invalid", "contract_version_zero",
        "contract_version_unsupported", "contract_kind_duplicate", "config_schema_version_zero",
        "config_required_key_invalid", "config_required_unknown", "config_property_key_invalid",
        "config_title_empty", "config_description_empty", "config_enum_requires_string",
        "config_enum_empty_value", "config_enum_duplicate", "config_default_type_mismatch",
        "config_default_not_in_enum",
    }  # fmt: skip
    assert expected <= covered


def valid_builder() -> dict[str, Any]:
    return {
        "experimental": True,
        "source_kind": "prompt",
        "source_ref": "ref-1",
        "rollout_flag": "skills.builder",
        "checklist": {
            "capability_declaration_path": "builder/capabilities.json",
            "provenance_path": "builder/provenance.json",
            "test_harness_path": "builder/tests.json",
        },
    }


# --- details and messages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "component"),
    [
        ("x.0.0", "major"),
        ("-0.0.0", "major"),
        ("4294967296.0.0", "major"),
        (" 1 .0.0", "major"),
        ("1.1_0.0", "minor"),
        ("1.٣.0", "minor"),
        ("1..0", "minor"),
        ("1.0.0-beta", "patch"),
        ("1.0.+", "patch"),
        ("1.0." + "9" * 100, "patch"),
    ],
)
def test_semver_component_names_the_component(value, component):
    err = assert_rule({"version": value}, "semver_component_invalid")
    assert err.details["component"] == component
    assert err.details["field"] == "version"
    assert err.detail.startswith(f"version {component} invalid (SemVer 2.0")


@pytest.mark.parametrize(
    "value", ["+1.01.0", "01.001.+0", " 1.0.0 ", "4294967295.4294967295.4294967295", "0.0." + "0" * 5000 + "7"]
)
def test_semver_legal_forms_of_compat_versions(value):
    """§4.7 as the reference has it (sign, leading zeros, trimming) still holds for the compat fields."""
    assert ok({"compat.min_palyra_version": value, "compat.max_palyra_version": "4294967295.4294967295.4294967295"}
              ).compat.min_palyra_version == value


@pytest.mark.parametrize(("value", "component"), [
    ("01.0.0", "major"), ("+1.0.0", "major"), ("1.0.00", "patch"), (" 1.0.0", "major"), ("1.0.0 ", "patch"),
    ("1.+0.0", "minor"), ("0.0." + "0" * 100 + "7", "patch"), ("1.0.0+build", "patch"), ("1.0.0-rc", "patch"),
])
def test_version_aliases_of_1_0_0_are_refused(value, component):
    """The attack: ``01.0.0``, ``+1.0.0``, ``1.0.00`` and ``" 1.0.0"`` installed next to ``1.0.0`` as other
    versions. A skill's own version is SemVer 2.0's version core as written."""
    err = assert_rule({"version": value}, "semver_component_invalid")
    assert err.details["component"] == component


@pytest.mark.parametrize("value", ["0.0.0", "1.0.0", "10.20.30", "4294967295.4294967295.4294967295"])
def test_strict_versions_are_accepted(value):
    assert ok({"version": value}).version == value


def test_min_and_max_field_names():
    assert assert_rule({"compat.min_palyra_version": "1"}, "semver_format_invalid").details["field"] == (
        "compat.min_palyra_version"
    )
    err = assert_rule({"compat.max_palyra_version": "1.0.x"}, "semver_component_invalid")
    assert err.details == {
        "code": "semver_component_invalid",
        "detail": "compat.max_palyra_version patch invalid",
        "field": "compat.max_palyra_version",
        "component": "patch",
    }


def test_max_equal_to_min_and_tuple_comparison():
    ok({"compat.min_palyra_version": "0.1.0", "compat.max_palyra_version": "0.01.+0"})
    ok({"compat.min_palyra_version": "0.9.0", "compat.max_palyra_version": "0.10.0"})  # not string order
    assert_rule({"compat.min_palyra_version": "0.10.0", "compat.max_palyra_version": "0.9.0"}, "compat_max_below_min")


def test_suggested_messages():
    assert assert_rule({"manifest_version": 7}, "manifest_version_unsupported").detail == (
        "manifest_version must equal 1 or 2"
    )
    assert assert_rule({"publisher": ""}, "identifier_empty").detail == "publisher cannot be empty"
    assert assert_rule({"entrypoints.tools.0.id": "other.x"}, "tool_id_not_namespaced").detail == (
        "tool id 'other.x' must be namespaced with 'acme.'"
    )
    assert assert_rule({"entrypoints.tools": [tool(), tool(" acme.echo")]}, "tool_id_duplicate").detail == (
        "duplicate tool id ' acme.echo'"
    )
    assert assert_rule({"entrypoints.tools.0.name": ""}, "tool_text_empty").detail == (
        "tool 'acme.echo' must include non-empty name and description"
    )
    assert assert_rule({ROOTS: ["a/*"]}, "wildcard_without_opt_in").detail == (
        "capability path 'a/*' uses wildcard without explicit opt-in"
    )
    assert assert_rule({HOSTS: ["*.x.com"]}, "wildcard_without_opt_in").detail == (
        "host '*.x.com' uses wildcard without explicit opt-in"
    )
    assert assert_rule({HOSTS: ["X:1"]}, "host_invalid").detail == "invalid host 'X:1'"
    assert assert_rule({"capabilities.secrets": [{"scope": "nope"}]}, "secret_scope_invalid").detail == (
        "invalid secret scope 'nope'"
    )
    assert assert_rule({"capabilities.secrets": [{"scope": " global"}]}, "secret_key_names_empty").detail == (
        "secret scope ' global' must list key_names"
    )
    assert assert_rule({"name": ""}, "name_empty").detail == "name cannot be empty"
    assert assert_rule({"builder": {**valid_builder(), "rollout_flag": ""}}, "builder_field_empty").detail == (
        "builder.rollout_flag cannot be empty"
    )
    b = valid_builder()
    b["checklist"]["provenance_path"] = ""
    assert assert_rule({"builder": b}, "builder_field_empty").detail == (
        "builder.checklist.provenance_path cannot be empty"
    )
    assert assert_rule({"operator.summary": " "}, "operator_text_empty").detail == "operator.summary cannot be empty"
    assert assert_rule({"operator.tags": ["X"]}, "operator_label_invalid").detail == (
        "operator.tags entries must use [a-z0-9._-]"
    )
    assert assert_rule({f"{PLUGIN}.default_tool_id": " acme.nope "}, "default_tool_unknown").detail == (
        "operator.plugin.default_tool_id ' acme.nope ' must reference an entrypoints.tools id"
    )
    assert assert_rule({"operator.config.required": ["ghost"]}, "config_required_unknown").detail == (
        "operator.config.required references unknown property 'ghost'"
    )


# --- rule 15 / 28 / 37: invalid artifact paths ------------------------------------------


@pytest.mark.parametrize(
    ("sets", "raw"),
    [
        ({ROOTS: ["../x"]}, "../x"),
        ({ROOTS: ["ok", "a/"]}, "a/"),
        ({WROOTS: ["/abs"]}, "/abs"),
        ({WROOTS: ["c:/x"]}, "c:/x"),
        ({WROOTS: ["a/./b"]}, "a/./b"),
        ({ROOTS: [""]}, ""),
        ({ROOTS: ["../*"], f"{OPT}.filesystem": True}, "../*"),
        ({ROOTS: ["*//foo"], f"{OPT}.filesystem": True}, "*//foo"),
        ({ROOTS: ["skills//*/data"], f"{OPT}.filesystem": True}, "skills//*/data"),
        ({f"{PLUGIN}.default_module_path": "modules//x.wasm"}, "modules//x.wasm"),
        ({f"{PLUGIN}.default_module_path": "modules/c:x.wasm"}, "modules/c:x.wasm"),
        ({f"{PLUGIN}.default_module_path": "modules/./x.wasm"}, "modules/./x.wasm"),
    ],
)
def test_invalid_artifact_path(sets, raw):
    assert_iap(sets, raw)


@pytest.mark.parametrize(
    "field_name", ["capability_declaration_path", "provenance_path", "test_harness_path"]
)
def test_builder_checklist_path_invalid(field_name):
    b = valid_builder()
    b["checklist"][field_name] = "../escape.json"
    assert_iap({"builder": b}, "../escape.json")


def test_legal_paths():
    m = ok(
        {
            ROOTS: ["skills/data", "a/ b", "...", "C/x", "a\\b", " padded "],
            WROOTS: ["skills/*", "x*y"],
            f"{OPT}.filesystem": True,
            f"{PLUGIN}.default_module_path": "modules/lib/x.wasm",
        }
    )
    assert m.capabilities.filesystem.read_roots == ("skills/data", "a/ b", "...", "C/x", "a\\b", " padded ")


# --- legal edge cases -----------------------------------------------------------------


def test_hosts_legal():
    m = ok({HOSTS: ["API.Example.COM", "example.com.", "example.com..", " x.io ", "1.2.3.4", "a-b.c"]})
    assert m.capabilities.http_egress_allowlist[0] == "API.Example.COM"  # raw kept


def test_host_wildcard_with_opt_in_has_no_further_check():
    ok({HOSTS: ["*.example.com", "*", "*:443/x y"], f"{OPT}.http_egress": True})


def test_secret_scopes_legal():
    secrets = [
        {"scope": "global", "key_names": ["k"]},
        {"scope": " global\t", "key_names": ["k"]},
        {"scope": "principal:admin:ops", "key_names": ["k"]},
        {"scope": "channel:discord:acct_1", "key_names": ["k"]},
        {"scope": "skill:acme.echo", "key_names": ["a", "b.c", "d:e"]},
    ]
    m = ok({"capabilities.secrets": secrets})
    assert m.capabilities.secrets[2].scope == "principal:admin:ops"


def test_wildcards_with_opt_in():
    m = ok(
        {
            "capabilities.secrets": [{"scope": "global", "key_names": ["api_*", "*"]}],
            "capabilities.device_capabilities": ["camera.*", "Mixed*Case"],
            "capabilities.node_capabilities": ["*"],
            OPT: {"secrets": True, "device": True, "node": True},
        }
    )
    assert m.capabilities.wildcard_opt_in.device


def test_opt_in_is_per_field():
    sets = {"capabilities.device_capabilities": ["cam*"], f"{OPT}.node": True, f"{OPT}.secrets": True}
    assert assert_rule(sets, "wildcard_without_opt_in").details["field"] == "capabilities.device_capabilities"


def test_default_quotas_pass_and_boundary():
    m = ok({})
    assert (m.capabilities.quotas.wall_clock_timeout_ms, m.capabilities.quotas.fuel_budget) == (30000, 10000000)
    assert m.capabilities.quotas.max_memory_bytes == 67108864
    ok({"capabilities.quotas": {"wall_clock_timeout_ms": 1, "fuel_budget": 1, "max_memory_bytes": 65536}})
    ok({"capabilities.quotas.fuel_budget": 9223372036854775807})


def test_skill_id_need_not_start_with_publisher():
    assert ok({"skill_id": "other-thing_1.x"}).skill_id == "other-thing_1.x"


def test_identifiers_are_trimmed():
    m = ok({"publisher": " acme ", "skill_id": "\tacme.x ", "entrypoints.tools.0.id": " acme.echo "})
    assert m.publisher == " acme "  # raw kept


def test_publisher_may_contain_colon_and_tools_use_it():
    ok({"publisher": "org:acme", "entrypoints.tools.0.id": "org:acme.echo"})


def test_builder_legal_and_review_fields_unvalidated():
    b = valid_builder()
    b["review_status"] = "  "
    b["checklist"]["review_notes"] = ""
    m = ok({"builder": b})
    assert m.builder is not None and m.builder.checklist.review_notes == ""


def test_v1_with_operator_is_rejected():
    assert_rule({"operator.display_name": "Echo"}, "operator_requires_manifest_v2", version=1)
    assert_rule({"operator.config": {}}, "operator_requires_manifest_v2", version=1)
    assert_rule({"operator.tags": ["x"]}, "operator_requires_manifest_v2", version=1)
    assert_rule({f"{PLUGIN}.contracts": [{"kind": "memory_provider"}]}, "operator_requires_manifest_v2", version=1)


def test_v1_with_empty_operator_is_accepted():
    ok({"operator": {}}, version=1)
    ok({"operator": {"categories": [], "tags": [], "plugin": {"contracts": []}}}, version=1)
    text = build({}, version=1) + "\n[operator]\n\n[operator.plugin]\n"
    assert parse_manifest(text).manifest_version == 1


def test_empty_operator_skips_operator_rules():
    # Nothing under [operator] means rules 30-40 do not run at all.
    ok({"operator": {"categories": []}})


def test_operator_legal_values():
    m = ok(
        {
            "operator": {
                "display_name": "Echo",
                "summary": " s ",
                "description": "d",
                "docs_url": " https://example.com/docs?x=1 ",
                "categories": ["tools", " a.b_c-d "],
                "tags": ["x"],
                "plugin": {
                    "default_tool_id": " acme.echo ",
                    "default_module_path": "modules/echo.wasm",
                    "default_entrypoint": " run_main-1 ",
                    "contracts": [{"kind": k} for k in ("memory_provider", "connector_adapter", "delivery_adapter")],
                },
            }
        }
    )
    assert m.operator.plugin.contracts[0].version == 1


def test_default_tool_compares_raw_tool_id():
    # The normalised default must equal a tool's *raw* id (rule 34).
    assert_rule(
        {"entrypoints.tools.0.id": " acme.echo", f"{PLUGIN}.default_tool_id": "acme.echo"}, "default_tool_unknown"
    )


def test_default_tool_not_namespaced_when_checked_alone():
    # After rules 10 and 34 this rule is unreachable in a full parse; check the function itself.
    with pytest.raises(ManifestValidationError) as info:
        _check_plugin(OperatorPlugin(default_tool_id="other.echo"), "acme", ["other.echo"])
    assert info.value.rule == "default_tool_not_namespaced"
    assert info.value.detail == "operator.plugin.default_tool_id 'other.echo' must be namespaced with 'acme.'"


def test_config_legal():
    m = ok(
        {
            "operator.config": {
                "schema_version": 3,
                "required": ["mode", " count "],
                "properties": {
                    "mode": {"type": "string", "enum_values": ["a", "b "], "default": "b ", "title": "Mode"},
                    " count ": {"type": "integer", "default": -5, "description": "n"},
                    "ratio": {"type": "number", "default": 1},
                    "ratio2": {"type": "number", "default": 0.5},
                    "flag": {"type": "boolean", "default": False},
                    "list": {"type": "string_list", "default": []},
                    "list2": {"type": "string_list", "default": ["x", ""]},
                    "plain": {"type": "string_list"},
                },
            }
        }
    )
    assert m.operator.config is not None and m.operator.config.properties["ratio"].default == 1


def test_config_not_string_rule_is_unreachable_after_type_check():
    prop = ConfigProperty(type="string", enum_values=("a",), default=1)
    with pytest.raises(ManifestValidationError) as info:
        _check_config_property("a", prop)
    assert info.value.rule == "config_default_type_mismatch"


def test_config_datetime_default_matches_no_type():
    text = build({f"{PROPS}.a": {"type": "string"}}) + "\n"
    text = text.replace('type = "string"', 'type = "string"\ndefault = 1979-05-27')
    with pytest.raises(ManifestValidationError) as info:
        parse_manifest(text)
    assert info.value.rule == "config_default_type_mismatch"


# --- rule order -----------------------------------------------------------------------

ORDER_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("version_before_publisher", {"manifest_version": 9, "publisher": ""}, "manifest_version_unsupported"),
    ("publisher_before_skill_id", {"publisher": "A", "skill_id": "a..b"}, "identifier_invalid"),
    ("skill_id_before_version", {"skill_id": "a..b", "version": "1"}, "skill_id_invalid"),
    ("version_before_min", {"version": "1", "compat.min_palyra_version": "x.0.0"}, "semver_format_invalid"),
    ("min_before_max", {"compat.min_palyra_version": "1.x.0", "compat.max_palyra_version": "1"}, "semver_component_invalid"),
    ("max_before_name", {"compat.max_palyra_version": "0.0.1", "name": ""}, "compat_max_below_min"),
    ("name_before_tools", {"name": "", "entrypoints.tools": []}, "name_empty"),
    (
        "tools_in_order",
        {"entrypoints.tools": [tool(name=""), tool("other.x")]},
        "tool_text_empty",
    ),
    ("tool_id_before_namespace", {"entrypoints.tools.0.id": "Other.x"}, "identifier_invalid"),
    (
        "namespace_before_duplicate",
        {"entrypoints.tools": [tool(), tool("other.echo"), tool()]},
        "tool_id_not_namespaced",
    ),
    (
        "duplicate_before_text",
        {"entrypoints.tools": [tool(), tool(name="")]},
        "tool_id_duplicate",
    ),
    (
        "text_before_schema",
        {"entrypoints.tools": [tool(description="", input_schema=1)]},
        "tool_text_empty",
    ),
    ("tools_before_capabilities", {"entrypoints.tools.0.input_schema": 1, ROOTS: ["../x"]}, "tool_schema_not_object"),
    ("read_before_write", {WROOTS: ["*"], ROOTS: ["/abs"]}, "invalid_artifact_path"),
    ("wildcard_before_path", {ROOTS: ["../*"]}, "wildcard_without_opt_in"),
    ("roots_before_hosts", {HOSTS: ["bad host"], WROOTS: ["*"]}, "wildcard_without_opt_in"),
    ("hosts_before_secrets", {HOSTS: ["bad host"], "capabilities.secrets": [{"scope": "x"}]}, "host_invalid"),
    (
        "secret_entry_complete_before_next",
        {"capabilities.secrets": [{"scope": "global", "key_names": []}, {"scope": "bad"}]},
        "secret_key_names_empty",
    ),
    ("scope_before_key_names", {"capabilities.secrets": [{"scope": "bad", "key_names": []}]}, "secret_scope_invalid"),
    (
        "secrets_before_device",
        {"capabilities.secrets": [{"scope": "global", "key_names": ["K"]}], "capabilities.device_capabilities": ["*"]},
        "identifier_invalid",
    ),
    (
        "device_before_node",
        {"capabilities.device_capabilities": ["*"], "capabilities.node_capabilities": [""]},
        "wildcard_without_opt_in",
    ),
    (
        "node_before_quotas",
        {"capabilities.node_capabilities": [""], "capabilities.quotas.fuel_budget": 0},
        "identifier_empty",
    ),
    (
        "quotas_before_builder",
        {"capabilities.quotas.fuel_budget": 0, "builder": {**valid_builder(), "experimental": False}},
        "quotas_invalid",
    ),
    (
        "experimental_before_fields",
        {"builder": {**valid_builder(), "experimental": False, "source_kind": ""}},
        "builder_not_experimental",
    ),
    (
        "source_kind_before_checklist",
        {"builder": {**valid_builder(), "source_ref": "", "checklist": {
            "capability_declaration_path": "../x", "provenance_path": "p", "test_harness_path": "t"}}},
        "builder_field_empty",
    ),
    (
        "checklist_paths_fully_checked_in_order",
        {"builder": {**valid_builder(), "checklist": {
            "capability_declaration_path": "../x", "provenance_path": "", "test_harness_path": ""}}},
        "invalid_artifact_path",
    ),
    (
        "checklist_empty_before_later_path",
        {"builder": {**valid_builder(), "checklist": {
            "capability_declaration_path": " ", "provenance_path": "/abs", "test_harness_path": "t"}}},
        "builder_field_empty",
    ),
    (
        "builder_before_operator",
        {"builder": {**valid_builder(), "rollout_flag": ""}, "operator.display_name": ""},
        "builder_field_empty",
    ),
    (
        "v2_required_before_operator_rules",
        {"operator.display_name": " ", "operator.docs_url": "x"},
        "operator_requires_manifest_v2",
    ),
    ("display_name_before_labels", {"operator.summary": "", "operator.tags": ["X"]}, "operator_text_empty"),
    ("categories_before_tags", {"operator.tags": ["X"], "operator.categories": ["Y"]}, "operator_label_invalid"),
    ("labels_before_docs", {"operator.tags": ["X"], "operator.docs_url": "x"}, "operator_label_invalid"),
    ("docs_before_plugin", {"operator.docs_url": "x", f"{PLUGIN}.default_tool_id": "Y"}, "docs_url_invalid"),
    (
        "tool_before_module",
        {f"{PLUGIN}.default_tool_id": "acme.zzz", f"{PLUGIN}.default_module_path": "x"},
        "default_tool_unknown",
    ),
    (
        "module_before_entrypoint",
        {f"{PLUGIN}.default_module_path": "x", f"{PLUGIN}.default_entrypoint": "."},
        "default_module_path_invalid",
    ),
    (
        "entrypoint_before_contracts",
        {f"{PLUGIN}.default_entrypoint": ".", f"{PLUGIN}.contracts": [{"kind": "memory_provider", "version": 0}]},
        "default_entrypoint_invalid",
    ),
    (
        "contract_zero_before_duplicate",
        {f"{PLUGIN}.contracts": [{"kind": "memory_provider"}, {"kind": "memory_provider", "version": 0}]},
        "contract_version_zero",
    ),
    (
        "contract_entries_in_order",
        {f"{PLUGIN}.contracts": [{"kind": "memory_provider", "version": 5}, {"kind": "memory_provider", "version": 0}]},
        "contract_version_unsupported",
    ),
    (
        "contracts_before_config",
        {f"{PLUGIN}.contracts": [{"kind": "memory_provider", "version": 2}], "operator.config.schema_version": 0},
        "contract_version_unsupported",
    ),
    (
        "schema_version_before_required",
        {"operator.config.schema_version": 0, "operator.config.required": ["X"]},
        "config_schema_version_zero",
    ),
    (
        "required_entry_checks_in_order",
        {"operator.config.required": ["ghost", "Bad"]},
        "config_required_unknown",
    ),
    (
        "required_before_properties",
        {"operator.config.required": ["ghost"], f"{PROPS}.Bad": {"type": "string"}},
        "config_required_unknown",
    ),
    (
        "properties_in_sorted_order",
        {f"{PROPS}": {"b": {"type": "string", "title": ""}, "a": {"type": "string", "description": ""}}},
        "config_description_empty",
    ),
    (
        "property_key_before_title",
        {f"{PROPS}.B": {"type": "string", "title": ""}},
        "config_property_key_invalid",
    ),
    (
        "title_before_description",
        {f"{PROPS}.a": {"type": "string", "title": "", "description": ""}},
        "config_title_empty",
    ),
    (
        "description_before_enum",
        {f"{PROPS}.a": {"type": "integer", "description": "", "enum_values": ["x"]}},
        "config_description_empty",
    ),
    (
        "enum_type_before_values",
        {f"{PROPS}.a": {"type": "integer", "enum_values": ["", ""]}},
        "config_enum_requires_string",
    ),
    (
        "enum_empty_before_duplicate",
        {f"{PROPS}.a": {"type": "string", "enum_values": ["x", "x", " "]}},
        "config_enum_empty_value",
    ),
    (
        "enum_before_default",
        {f"{PROPS}.a": {"type": "string", "enum_values": ["x", "x"], "default": 1}},
        "config_enum_duplicate",
    ),
    (
        "default_type_before_enum_membership",
        {f"{PROPS}.a": {"type": "string", "enum_values": ["x"], "default": 1}},
        "config_default_type_mismatch",
    ),
]


@pytest.mark.parametrize(("sets", "code"), [c[1:] for c in ORDER_CASES], ids=[c[0] for c in ORDER_CASES])
def test_rule_order(sets, code):
    version = 1 if code == "operator_requires_manifest_v2" else 2
    err = fails(sets, version)
    got = err.rule if isinstance(err, ManifestValidationError) else err.code
    assert got == code, getattr(err, "detail", err)


def test_contract_duplicate_allowed_kind_reuse_across_fields():
    # Duplicate detection is by kind only; different kinds with the same version are fine.
    m = ok({f"{PLUGIN}.contracts": [{"kind": "memory_provider"}, {"kind": "routing_strategy", "version": 1}]})
    assert [c.kind for c in m.operator.plugin.contracts] == ["memory_provider", "routing_strategy"]


def test_checked_structs_are_the_parsed_ones():
    # validate runs on the decoded model; constructing by hand and replacing fields works too.
    m = ok({})
    bad = msgspec.structs.replace(m, name=" ")
    from skill_ledger.domain.manifest import validate_manifest

    with pytest.raises(ManifestValidationError) as info:
        validate_manifest(bad)
    assert info.value.rule == "name_empty"
    assert PluginContract(kind="memory_provider").version == 1
