"""Manifest parsing (§5.1, §5.2), the Palyra fixture, the compat check (§15),
warnings (§5.6), the review predicate (§5.8) and the accessors."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from skill_ledger.domain.errors import (
    InvalidArtifactPath,
    ManifestParseError,
    ManifestValidationError,
    RuntimeVersionAboveSupportedMaximum,
    UnsupportedProtocolMajor,
    UnsupportedRuntimeVersion,
)
from skill_ledger.domain.manifest import (
    CONFIG_TYPES,
    CONTRACT_KINDS,
    Builder,
    BuilderChecklist,
    ConfigProperty,
    Manifest,
    ManifestWarning,
    Operator,
    OperatorConfig,
    check_runtime_compat,
    find_tool,
    integrity_map,
    is_operator_empty,
    manifest_warnings,
    parse_manifest,
    parse_manifest_bytes,
    requires_review,
    tool_ids,
    with_integrity,
)

FIXTURE = Path("/work/shared/fixtures/palyra-echo-http/skill.toml")

HEAD = """\
manifest_version = 2
skill_id = "acme.echo"
name = "Echo"
version = "1.0.0"
publisher = "acme"
"""
TOOL = """
[[entrypoints.tools]]
id = "acme.echo"
name = "echo"
description = "Echoes text"
input_schema = { type = "object" }
output_schema = { type = "object" }
"""
COMPAT = """
[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"
"""
VALID = HEAD + TOOL + COMPAT


def parse_error(text: str) -> ManifestParseError:
    with pytest.raises(ManifestParseError) as info:
        parse_manifest(text)
    assert info.value.code == "manifest_parse"
    assert info.value.message == f"manifest parse failed: {info.value.detail}"
    return info.value


def test_minimal_manifest_defaults():
    m = parse_manifest(VALID)
    assert m.manifest_version == 2
    assert m.version == "1.0.0"
    caps = m.capabilities
    assert caps.filesystem.read_roots == () and caps.filesystem.write_roots == ()
    assert caps.http_egress_allowlist == () and caps.secrets == ()
    assert caps.device_capabilities == () and caps.node_capabilities == ()
    assert (caps.quotas.wall_clock_timeout_ms, caps.quotas.fuel_budget, caps.quotas.max_memory_bytes) == (
        30000,
        10000000,
        67108864,
    )
    opt = caps.wildcard_opt_in
    assert not (opt.filesystem or opt.http_egress or opt.secrets or opt.device or opt.node)
    assert m.compat.max_palyra_version is None
    assert m.integrity.files == ()
    assert m.builder is None
    assert is_operator_empty(m)
    tool = m.entrypoints.tools[0]
    assert (tool.risk.default_sensitive, tool.risk.requires_approval) == (False, False)


def test_manifest_version_defaults_to_2():
    assert parse_manifest(VALID.replace("manifest_version = 2\n", "")).manifest_version == 2


def test_model_is_frozen():
    m = parse_manifest(VALID)
    with pytest.raises(AttributeError):
        m.name = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        m.capabilities.quotas.fuel_budget = 1  # type: ignore[misc]


def test_enums_exposed():
    assert len(CONTRACT_KINDS) == 12 and "connector_adapter" in CONTRACT_KINDS
    assert CONFIG_TYPES == ("string", "integer", "number", "boolean", "string_list")


# --- the Palyra fixture ---------------------------------------------------------------


def test_palyra_fixture():
    m = parse_manifest_bytes(FIXTURE.read_bytes())
    assert m.manifest_version == 1
    assert (m.skill_id, m.name, m.version, m.publisher) == ("acme.echo_http", "Echo + HTTP", "1.0.0", "acme")
    assert tool_ids(m) == ["acme.echo", "acme.http_get"]
    http = find_tool(m, "acme.http_get")
    assert http is not None and http.name == "http_get" and http.description == "Fetches one allowlisted URL"
    assert http.risk.default_sensitive and http.risk.requires_approval
    assert http.input_schema == {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}
    assert http.output_schema["required"] == ["status"]
    echo = find_tool(m, "acme.echo")
    assert echo is not None and not echo.risk.default_sensitive
    caps = m.capabilities
    assert caps.filesystem.read_roots == ("skills/data",)
    assert caps.filesystem.write_roots == ("skills/cache",)
    assert caps.http_egress_allowlist == ("api.example.com",)
    assert [(s.scope, s.key_names) for s in caps.secrets] == [("skill:acme.echo_http", ("api_token",))]
    assert (caps.quotas.wall_clock_timeout_ms, caps.quotas.fuel_budget, caps.quotas.max_memory_bytes) == (
        2000,
        5000000,
        33554432,
    )
    assert (m.compat.required_protocol_major, m.compat.min_palyra_version) == (1, "0.1.0")
    check_runtime_compat(m)
    assert [w.code for w in manifest_warnings(m)] == ["legacy_manifest_version", "missing_operator_metadata"]
    assert not requires_review(m)


def test_super_table_after_sub_table():
    text = HEAD + TOOL + COMPAT + """
[capabilities.quotas]
fuel_budget = 7

[capabilities]
http_egress_allowlist = ["a.example"]

[operator.plugin]
default_entrypoint = "run"

[operator]
display_name = "Echo"
"""
    m = parse_manifest(text)
    assert m.capabilities.quotas.fuel_budget == 7
    assert m.capabilities.http_egress_allowlist == ("a.example",)
    assert m.operator.display_name == "Echo" and m.operator.plugin.default_entrypoint == "run"


# --- manifest_parse -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "name = ",
        'name = "x"\nname = "y"',
        "[a]\n[a]",
        "= 1",
        'x = "unterminated',
        "a = 1979-02-30",
        'a = "\\ud800"',
        "a = 0x",
        "a = 1__0",
        "a = 01",
    ],
)
def test_toml_syntax_errors(text):
    assert "invalid TOML" in parse_error(text).detail


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (VALID + "extra = 1\n", "unknown field `extra`"),
        (HEAD + "foo = 1\n" + TOOL + COMPAT, "unknown field `foo`"),
        (VALID + "[capabilities.quotas]\ncpu = 1\n", "`$.capabilities.quotas`"),
        (VALID.replace('description = "Echoes text"', 'description = "d"\nextra = 1'), "`$.entrypoints.tools[0]`"),
        (VALID.replace('output_schema = { type = "object" }', 'output_schema = {}\nrisk = { danger = true }'),
         "`$.entrypoints.tools[0].risk`"),
        (VALID + "[capabilities.filesystem]\nexec_roots = []\n", "unknown field `exec_roots`"),
        (VALID + "[capabilities.wildcard_opt_in]\nall = true\n", "unknown field `all`"),
        (VALID + "[[capabilities.secrets]]\nscope = \"global\"\nkey_names = [\"k\"]\nvalue = \"s\"\n", "`value`"),
        (VALID.replace('min_palyra_version = "0.1.0"', 'min_palyra_version = "0.1.0"\nmax_version = "1.0.0"'),
         "`$.compat`"),
        (VALID + "[integrity]\nfiles = [{ path = \"a\", sha256 = \"b\", size = 1 }]\n", "`size`"),
        (VALID + "[operator]\nicon = \"x\"\n", "`icon`"),
        (VALID + "[operator.plugin]\nentry = \"x\"\n", "`entry`"),
        (VALID + "[operator.config]\nversion = 1\n", "`version`"),
        (VALID + "[operator.config.properties.a]\ntype = \"string\"\nsecret = true\n", "`secret`"),
        (VALID + "[[operator.plugin.contracts]]\nkind = \"memory_provider\"\nname = \"x\"\n", "`name`"),
        (VALID + "[entrypoints]\nresources = []\n", "`resources`"),
    ],
)
def test_unknown_keys(text, fragment):
    detail = parse_error(text).detail
    assert "unknown field" in detail and fragment in detail


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        (VALID.replace('skill_id = "acme.echo"\n', ""), "skill_id"),
        (VALID.replace('name = "Echo"\n', ""), "name"),
        (VALID.replace('version = "1.0.0"\n', ""), "version"),
        (VALID.replace('publisher = "acme"\n', ""), "publisher"),
        (HEAD + COMPAT, "entrypoints"),
        (HEAD + "[entrypoints]\n" + COMPAT, "tools"),
        (HEAD + TOOL, "compat"),
        (VALID.replace('description = "Echoes text"\n', ""), "description"),
        (VALID.replace('input_schema = { type = "object" }\n', ""), "input_schema"),
        (VALID.replace("required_protocol_major = 1\n", ""), "required_protocol_major"),
        (VALID.replace('min_palyra_version = "0.1.0"\n', ""), "min_palyra_version"),
        (VALID + "[[capabilities.secrets]]\nkey_names = [\"k\"]\n", "scope"),
        (VALID + "[integrity]\nfiles = [{ path = \"a\" }]\n", "sha256"),
        (VALID + "[builder]\nexperimental = true\nsource_kind = \"a\"\nsource_ref = \"b\"\nrollout_flag = \"c\"\n",
         "checklist"),
        (VALID + "[builder]\nsource_kind = \"a\"\nsource_ref = \"b\"\nrollout_flag = \"c\"\n"
         "[builder.checklist]\ncapability_declaration_path = \"a\"\nprovenance_path = \"b\"\ntest_harness_path = \"c\"\n",
         "experimental"),
        (VALID + "[operator.config.properties.a]\ntitle = \"A\"\n", "type"),
        (VALID + "[[operator.plugin.contracts]]\nversion = 1\n", "kind"),
    ],
)
def test_missing_required_keys(text, missing):
    detail = parse_error(text).detail
    assert f"missing required field `{missing}`" in detail


@pytest.mark.parametrize(
    "text",
    [
        VALID.replace('name = "Echo"', "name = 1"),
        VALID.replace('name = "Echo"', "name = 1979-05-27"),
        VALID.replace('name = "Echo"', 'name = ["Echo"]'),
        VALID.replace("manifest_version = 2", 'manifest_version = "2"'),
        VALID + "[capabilities.filesystem]\nread_roots = \"skills\"\n",
        VALID + "[capabilities.filesystem]\nread_roots = [1]\n",
        VALID + "[capabilities]\nfilesystem = []\n",
        VALID + "[capabilities.wildcard_opt_in]\nfilesystem = \"true\"\n",
        VALID + "[capabilities.wildcard_opt_in]\nfilesystem = 1\n",
        VALID.replace('output_schema = { type = "object" }', 'output_schema = {}\nrisk = { default_sensitive = "no" }'),
        VALID.replace("[compat]", "[compat]\nmax_palyra_version = 1"),
        VALID + "[operator]\ncategories = \"x\"\n",
        VALID + "[operator]\nconfig = 1\n",
        VALID + "[operator.config.properties]\na = \"string\"\n",
        VALID + "[operator.config.properties.a]\ntype = \"string\"\nenum_values = \"x\"\n",
        VALID + "[operator.config.properties.a]\ntype = \"string\"\nredacted = 0\n",
        VALID + "[[entrypoints.tools]]\n",  # a second tool with nothing
        VALID.replace("[[entrypoints.tools]]", "[entrypoints]\ntools = {}\n[[entrypoints.tools2]]"),
    ],
)
def test_wrong_types(text):
    parse_error(text)


@pytest.mark.parametrize(
    ("replacement", "fragment"),
    [
        ("manifest_version = true", "got `bool`"),
        ("manifest_version = 2.0", "got `float`"),
        ("manifest_version = -1", ">= 0"),
        ("manifest_version = 4294967296", "<= 4294967295"),
        ("manifest_version = 9223372036854775808", "signed 64-bit"),
        ("manifest_version = -9223372036854775809", "signed 64-bit"),
        ("manifest_version = 99999999999999999999999999", "signed 64-bit"),
        ("manifest_version = 1979-05-27", "got `date`"),
    ],
)
def test_integer_fields_are_exact(replacement, fragment):
    detail = parse_error(VALID.replace("manifest_version = 2", replacement)).detail
    assert fragment in detail


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("required_protocol_major = true", "got `bool`"),
        ("required_protocol_major = 1.0", "got `float`"),
        ("required_protocol_major = -1", ">= 0"),
        ("required_protocol_major = 4294967296", "<= 4294967295"),
    ],
)
def test_uint32_compat(line, fragment):
    assert fragment in parse_error(VALID.replace("required_protocol_major = 1", line)).detail


@pytest.mark.parametrize(
    ("quota", "ok"),
    [
        ("fuel_budget = 9223372036854775807", True),
        ("fuel_budget = 4294967296", True),
        ("fuel_budget = -1", False),
        ("fuel_budget = 9223372036854775808", False),
        ("fuel_budget = 1.0", False),
        ("fuel_budget = true", False),
        ("wall_clock_timeout_ms = 1e3", False),
        ("max_memory_bytes = inf", False),
        ("max_memory_bytes = \"65536\"", False),
    ],
)
def test_uint64_quotas(quota, ok):
    text = VALID + f"[capabilities.quotas]\n{quota}\n"
    if ok:
        parse_manifest(text)
    else:
        parse_error(text)


@pytest.mark.parametrize(
    "section",
    [
        "[[operator.plugin.contracts]]\nkind = \"memory_provider\"\nversion = 4294967296\n",
        "[[operator.plugin.contracts]]\nkind = \"memory_provider\"\nversion = -1\n",
        "[operator.config]\nschema_version = 4294967296\n",
        "[operator.config]\nschema_version = true\n",
    ],
)
def test_other_uint32_fields(section):
    parse_error(VALID + section)


def test_int64_overflow_inside_any_values():
    text = VALID.replace('input_schema = { type = "object" }', "input_schema = { max = 9223372036854775808 }")
    assert "`$.entrypoints.tools[0].input_schema.max`" in parse_error(text).detail
    deep = VALID.replace('input_schema = { type = "object" }', "input_schema = { a = [1, [-9223372036854775809]] }")
    parse_error(deep)
    edge = VALID.replace(
        'input_schema = { type = "object" }', "input_schema = { a = -9223372036854775808, b = 9223372036854775807 }"
    )
    assert parse_manifest(edge).entrypoints.tools[0].input_schema == {"a": -(2**63), "b": 2**63 - 1}


def test_huge_integer_literal_is_a_parse_error():
    parse_error(VALID + "[capabilities.quotas]\nfuel_budget = " + "9" * 5000 + "\n")


def test_deep_nesting_is_refused_before_parsing():
    text = VALID.replace('input_schema = { type = "object" }', "input_schema = { a = " + "[" * 3000 + "]" * 3000 + " }")
    with pytest.raises(ManifestParseError) as info:
        parse_manifest(text)
    assert info.value.code == "manifest_limits" and info.value.details["limit"] == "nesting"


@pytest.mark.parametrize(("depth", "accepted"), [(60, True), (61, False)])
def test_nesting_cap_keeps_accepted_manifests_writable(depth, accepted):
    # input_schema.a sits 4 containers below the root; 64 containers deep is the cap.
    value = "{ a = " * depth + "1" + " }" * depth
    text = VALID.replace('input_schema = { type = "object" }', "input_schema = { a = " + value + " }")
    if accepted:
        m = parse_manifest(text)
        from skill_ledger.domain.manifest import serialize_manifest

        assert parse_manifest(serialize_manifest(m)) == m
    else:
        assert "nested deeper than 64 levels" in parse_error(text).detail


def test_unknown_enum_values():
    assert "Invalid enum value 'memory'" in parse_error(
        VALID + "[[operator.plugin.contracts]]\nkind = \"memory\"\n"
    ).detail
    assert "Invalid enum value 'float'" in parse_error(VALID + "[operator.config.properties.a]\ntype = \"float\"\n").detail
    parse_error(VALID + "[operator.config.properties.a]\ntype = \"String\"\n")


def test_legacy_aliases():
    legacy = VALID.replace("required_protocol_major", "min_protocol_major").replace(
        "min_palyra_version", "min_runtime_version"
    )
    m = parse_manifest(legacy)
    assert (m.compat.required_protocol_major, m.compat.min_palyra_version) == (1, "0.1.0")
    assert m == parse_manifest(VALID)


@pytest.mark.parametrize(
    "extra", ["min_protocol_major = 1", 'min_runtime_version = "0.1.0"', "min_protocol_major = 0"]
)
def test_both_alias_spellings_is_a_parse_error(extra):
    detail = parse_error(VALID.replace("[compat]", "[compat]\n" + extra)).detail
    assert "cannot both be present" in detail


def test_alias_values_are_type_checked():
    parse_error(VALID.replace("required_protocol_major = 1", "min_protocol_major = -1"))
    parse_error(VALID.replace('min_palyra_version = "0.1.0"', "min_runtime_version = 1"))


def test_alias_outside_compat_is_unknown():
    parse_error(VALID + "min_protocol_major = 1\n")


def test_bytes_must_be_strict_utf8():
    assert parse_manifest_bytes(VALID.encode()) == parse_manifest(VALID)
    for data in (VALID.encode("utf-16"), b"\xff" + VALID.encode(), VALID.encode().replace(b"Echo", b"Ech\xc3")):
        with pytest.raises(ManifestParseError) as info:
            parse_manifest_bytes(data)
        assert "UTF-8" in info.value.detail


def test_surrogates_in_text_are_rejected():
    parse_error(VALID.replace("Echo", "Ech\ud800"))


def test_non_ascii_text_values_are_kept():
    m = parse_manifest(VALID.replace('name = "Echo"', 'name = "Écho ✓"'))
    assert m.name == "Écho ✓"


# --- any values (§5.1) ----------------------------------------------------------------


def test_any_values_map_to_json():
    schema = (
        "input_schema = { odt = 1979-05-27T07:32:00Z, odt2 = 1979-05-27T00:32:00-07:00, "
        "odt3 = 1979-05-27T00:32:00.999999+05:30, odt4 = 1979-05-27 07:32:00.5z, ldt = 1979-05-27T07:32:00, "
        "ldt2 = 1979-05-27T07:32:00.120, ld = 1979-05-27, lt = 07:32:00, lt2 = 00:32:00.000001, "
        "nan = nan, inf = inf, ninf = -inf, f = 1.5, i = -3, b = true, s = 'x', "
        "arr = [1, 'a', [nan], { t = 1979-05-27 }], tbl = { } }"
    )
    m = parse_manifest(VALID.replace('input_schema = { type = "object" }', schema))

    def dt(text):
        return {"$__toml_private_datetime": text}

    assert m.entrypoints.tools[0].input_schema == {
        "odt": dt("1979-05-27T07:32:00Z"),
        "odt2": dt("1979-05-27T00:32:00-07:00"),
        "odt3": dt("1979-05-27T00:32:00.999999+05:30"),
        "odt4": dt("1979-05-27T07:32:00.5Z"),
        "ldt": dt("1979-05-27T07:32:00"),
        "ldt2": dt("1979-05-27T07:32:00.12"),
        "ld": dt("1979-05-27"),
        "lt": dt("07:32:00"),
        "lt2": dt("00:32:00.000001"),
        "nan": None,
        "inf": None,
        "ninf": None,
        "f": 1.5,
        "i": -3,
        "b": True,
        "s": "x",
        "arr": [1, "a", [None], {"t": dt("1979-05-27")}],
        "tbl": {},
    }


def test_datetime_schema_counts_as_object():
    # The reference checks the JSON mapping, where a TOML datetime is an object.
    m = parse_manifest(VALID.replace('input_schema = { type = "object" }', "input_schema = 1979-05-27"))
    assert m.entrypoints.tools[0].input_schema == {"$__toml_private_datetime": "1979-05-27"}


def test_config_default_present_vs_absent():
    m = parse_manifest(
        VALID
        + "[operator.config.properties.a]\ntype = \"string\"\n"
        + "[operator.config.properties.b]\ntype = \"string_list\"\ndefault = [\"x\"]\n"
    )
    assert m.operator.config is not None
    assert m.operator.config.properties["a"].default is msgspec.UNSET
    assert m.operator.config.properties["b"].default == ["x"]


# --- runtime compatibility (§15) ------------------------------------------------------


def with_compat(**values: object) -> Manifest:
    lines = "\n".join(f"{k} = {v!r}" if isinstance(v, int) else f'{k} = "{v}"' for k, v in values.items())
    return parse_manifest(HEAD + TOOL + "\n[compat]\n" + lines + "\n")


@pytest.mark.parametrize("major", [0, 1])
def test_protocol_major_passes(major):
    check_runtime_compat(with_compat(required_protocol_major=major, min_palyra_version="0.1.0"))


def test_protocol_major_too_high():
    with pytest.raises(UnsupportedProtocolMajor) as info:
        check_runtime_compat(with_compat(required_protocol_major=2, min_palyra_version="0.1.0"))
    assert info.value.code == "unsupported_protocol_major"
    assert info.value.details == {"requested": 2, "current": 1}
    check_runtime_compat(with_compat(required_protocol_major=2, min_palyra_version="0.1.0"), protocol_major=2)


def test_min_runtime_boundaries():
    check_runtime_compat(with_compat(required_protocol_major=1, min_palyra_version="0.1.0"))
    check_runtime_compat(with_compat(required_protocol_major=1, min_palyra_version="0.0.9"))
    with pytest.raises(UnsupportedRuntimeVersion) as info:
        check_runtime_compat(with_compat(required_protocol_major=1, min_palyra_version="0.01.+1"))
    assert info.value.details == {"requested": "0.01.+1", "current": "0.1.0"}
    check_runtime_compat(with_compat(required_protocol_major=1, min_palyra_version="0.2.0"), runtime_version="0.2.0")


def test_max_runtime_boundaries():
    check_runtime_compat(
        with_compat(required_protocol_major=1, min_palyra_version="0.0.1", max_palyra_version="0.1.0")
    )
    with pytest.raises(RuntimeVersionAboveSupportedMaximum) as info:
        check_runtime_compat(
            with_compat(required_protocol_major=1, min_palyra_version="0.0.1", max_palyra_version="0.0.9")
        )
    assert info.value.details == {"supported_max": "0.0.9", "current": "0.1.0"}
    assert info.value.code == "runtime_version_above_supported_maximum"


def test_compat_checks_in_order():
    m = with_compat(required_protocol_major=3, min_palyra_version="9.0.0", max_palyra_version="9.0.0")
    with pytest.raises(UnsupportedProtocolMajor):
        check_runtime_compat(m)
    m = with_compat(required_protocol_major=1, min_palyra_version="9.0.0", max_palyra_version="9.0.0")
    with pytest.raises(UnsupportedRuntimeVersion):
        check_runtime_compat(m)


def test_parse_does_not_apply_compat_check():
    m = with_compat(required_protocol_major=7, min_palyra_version="99.0.0")
    assert m.compat.required_protocol_major == 7


# --- warnings (§5.6) ------------------------------------------------------------------


def codes(m: Manifest) -> list[str]:
    return [w.code for w in manifest_warnings(m)]


def test_v1_warnings():
    ws = manifest_warnings(parse_manifest(VALID.replace("manifest_version = 2", "manifest_version = 1")))
    assert ws == [
        ManifestWarning(
            code="legacy_manifest_version",
            message="manifest_version 1 is still supported for compatibility, but 2 is now recommended",
        ),
        ManifestWarning(
            code="missing_operator_metadata",
            message="operator-facing metadata is missing; inventory and doctor output will be degraded",
        ),
    ]
    assert all(w.severity == "warning" for w in ws)


def test_v2_warnings():
    assert codes(parse_manifest(VALID)) == ["missing_operator_metadata"]
    assert codes(parse_manifest(VALID + "[operator]\ncategories = []\n")) == ["missing_operator_metadata"]
    assert codes(parse_manifest(VALID + "[operator]\ndisplay_name = \"Echo\"\n")) == []
    assert codes(parse_manifest(VALID + "[operator]\nsummary = \"s\"\n")) == ["missing_operator_display_name"]
    assert codes(parse_manifest(VALID + "[operator.config]\n")) == [
        "missing_operator_display_name",
        "empty_operator_config_contract",
    ]
    assert codes(parse_manifest(VALID + "[operator]\ndisplay_name = \"E\"\n[operator.config.properties.a]\ntype = \"string\"\n")) == []
    message = manifest_warnings(parse_manifest(VALID + "[operator]\ntags = [\"x\"]\n"))[0].message
    assert message == "operator.display_name is missing"


def test_redaction_recommendation():
    props = "".join(
        f'[operator.config.properties."{name}"]\ntype = "string"\nredacted = {str(red).lower()}\n'
        for name, red in [
            ("zeta_token", False),
            ("password", False),
            ("apikey", False),
            ("my_api_key", False),
            ("oauth.client_key", False),
            ("db_secret", True),
            ("secretive", False),
            ("plain", False),
            ("to-ken", False),
        ]
    )
    m = parse_manifest(VALID + props)
    ws = manifest_warnings(m)
    assert [w.code for w in ws] == ["missing_operator_display_name"] + ["operator_config_redaction_recommended"] * 5
    assert [w.message for w in ws[1:]] == [
        f"operator.config property '{n}' looks secret-like but is not marked redacted"
        for n in ["my_api_key", "oauth.client_key", "password", "secretive", "zeta_token"]
    ]


def test_redaction_uses_ascii_lower_only():
    m = parse_manifest(VALID + "[operator]\ndisplay_name = \"E\"\n")
    props = {
        "API_KEY": ConfigProperty(type="string"),
        "TO\u212aEN": ConfigProperty(type="string"),  # KELVIN SIGN: str.lower() would give 'token'
        "Secret": ConfigProperty(type="string"),
    }
    op = msgspec.structs.replace(m.operator, config=OperatorConfig(properties=props))
    m = msgspec.structs.replace(m, operator=op)
    assert [w.message.split("'")[1] for w in manifest_warnings(m)] == ["API_KEY", "Secret"]


# --- predicates and accessors ---------------------------------------------------------


def test_is_operator_empty():
    assert is_operator_empty(Operator())
    assert not is_operator_empty(Operator(config=OperatorConfig()))
    assert not is_operator_empty(Operator(tags=("x",)))
    assert is_operator_empty(parse_manifest(VALID + "[operator]\n[operator.plugin]\ncontracts = []\n"))
    assert not is_operator_empty(parse_manifest(VALID + "[operator.config]\n"))
    assert not is_operator_empty(parse_manifest(VALID + "[operator.plugin]\ndefault_entrypoint = \"run\"\n"))


def builder(**over: object) -> Builder:
    values: dict = {
        "experimental": True,
        "source_kind": "k",
        "source_ref": "r",
        "rollout_flag": "f",
        "checklist": BuilderChecklist(capability_declaration_path="a", provenance_path="b", test_harness_path="c"),
    }
    values.update(over)
    return Builder(**values)


@pytest.mark.parametrize(
    ("b", "expected"),
    [
        (None, False),
        (builder(), True),
        (builder(review_status="pending"), True),
        (builder(review_status=" Approved\t"), False),
        (builder(review_status="SIGNED"), False),
        (builder(review_status="approved-ish"), True),
        (builder(review_status="approved", experimental=False), False),
        (builder(review_status="", experimental=False), False),
    ],
)
def test_requires_review(b, expected):
    m = msgspec.structs.replace(parse_manifest(VALID), builder=b)
    assert requires_review(m) is expected


def test_requires_review_from_text():
    text = VALID + (
        "[builder]\nexperimental = true\nsource_kind = \"a\"\nsource_ref = \"b\"\nrollout_flag = \"c\"\n"
        "[builder.checklist]\ncapability_declaration_path = \"x/a\"\nprovenance_path = \"x/b\"\n"
        "test_harness_path = \"x/c\"\n"
    )
    assert requires_review(parse_manifest(text))


def test_tool_accessors():
    text = VALID + (
        '[[entrypoints.tools]]\nid = " acme.two "\nname = "n"\ndescription = "d"\n'
        "input_schema = {}\noutput_schema = {}\n"
    )
    m = parse_manifest(text)
    assert tool_ids(m) == ["acme.echo", "acme.two"]
    two = find_tool(m, "acme.two")
    assert two is not None and two.id == " acme.two "
    assert find_tool(m, "acme.none") is None


def test_with_integrity_and_map():
    m = parse_manifest(VALID)
    m2 = with_integrity(m, [("modules/b.wasm", "b" * 64), ("assets/a.txt", "a" * 64), ("Z", "c" * 64)])
    assert [(f.path, f.sha256) for f in m2.integrity.files] == [
        ("Z", "c" * 64),
        ("assets/a.txt", "a" * 64),
        ("modules/b.wasm", "b" * 64),
    ]
    assert m.integrity.files == ()  # the original is untouched
    assert integrity_map(m2) == {"Z": "c" * 64, "assets/a.txt": "a" * 64, "modules/b.wasm": "b" * 64}


def test_integrity_map_normalises_and_last_wins():
    text = VALID + (
        '[[integrity.files]]\npath = "modules\\\\x.wasm"\nsha256 = "1"\n'
        '[[integrity.files]]\npath = " modules/x.wasm "\nsha256 = "2"\n'
    )
    assert integrity_map(parse_manifest(text)) == {"modules/x.wasm": "2"}
    bad = parse_manifest(VALID + '[[integrity.files]]\npath = "../x"\nsha256 = "1"\n')  # parse does not check
    with pytest.raises(InvalidArtifactPath) as info:
        integrity_map(bad)
    assert info.value.raw == "../x"


def test_errors_are_distinct_kinds():
    assert not issubclass(ManifestParseError, ManifestValidationError)
