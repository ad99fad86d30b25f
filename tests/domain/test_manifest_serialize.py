"""§5.7 serialised form, the JSON form, and property tests (round trip; parse only
ever raises the project's errors)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import string
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skill_ledger.domain.errors import SerializationError, SkillLedgerError
from skill_ledger.domain.manifest import (
    Manifest,
    manifest_to_json,
    manifest_warnings,
    parse_manifest,
    serialize_manifest,
    with_integrity,
)
from skill_ledger.domain.text import trim

FIXTURE = Path("/work/shared/fixtures/palyra-echo-http/skill.toml")

MINIMAL_V2 = """\
manifest_version = 2
skill_id = "acme.echo"
name = "Echo"
version = "1.0.0"
publisher = "acme"

[[entrypoints.tools]]
id = "acme.echo"
name = "echo"
description = "Echoes text"
input_schema = { type = "object" }
output_schema = { type = "object" }

[compat]
min_protocol_major = 1
min_runtime_version = "0.1.0"
"""

MAXIMAL = """\
manifest_version = 2
skill_id = "acme.max"
name = "Max \\"quoted\\" \\u00e9 \\t"
version = "1.2.3"
publisher = "acme"

[[entrypoints.tools]]
id = "acme.one"
name = "one"
description = "first"
input_schema = { type = "object", properties = { a = { type = "string", default = 1979-05-27T07:32:00Z }, n = nan }, "weird key" = [1, 2.5, "x", [true], { z = [] }], dt = [1979-05-27, 07:32:00] }
output_schema = {}
risk = { default_sensitive = true, requires_approval = true }

[[entrypoints.tools]]
id = " acme.two "
name = "two"
description = "second"
input_schema = { anyOf = [{ type = "string" }, { type = "null" }] }
output_schema = { "" = "" }

[capabilities]
http_egress_allowlist = ["api.example.com", "*.cdn.example"]
device_capabilities = ["camera.*"]
node_capabilities = ["node.run"]

[capabilities.filesystem]
read_roots = ["skills/*", "a/ b"]
write_roots = ["cache"]

[[capabilities.secrets]]
scope = "principal:admin:ops"
key_names = ["api_token", "x*"]

[[capabilities.secrets]]
scope = "global"
key_names = ["k"]

[capabilities.quotas]
wall_clock_timeout_ms = 1
fuel_budget = 9223372036854775807
max_memory_bytes = 65536

[capabilities.wildcard_opt_in]
filesystem = true
http_egress = true
secrets = true
device = true
node = false

[compat]
required_protocol_major = 0
min_palyra_version = "0.0.1"
max_palyra_version = "0.2.0"

[[integrity.files]]
path = "modules/max.wasm"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[builder]
experimental = true
source_kind = "prompt"
source_ref = "ref"
rollout_flag = "flag"
review_status = "approved"

[builder.checklist]
capability_declaration_path = "builder/caps.json"
provenance_path = "builder/prov.json"
test_harness_path = "builder/tests.json"
review_notes = "ok"

[operator]
display_name = "Max"
summary = "Summary"
description = "Description"
docs_url = "https://example.com/docs"
categories = ["tools"]
tags = ["a", "b"]

[operator.plugin]
default_tool_id = "acme.one"
default_module_path = "modules/max.wasm"
default_entrypoint = "run"
contracts = [{ kind = "memory_provider" }, { kind = "connector_adapter", version = 1 }]

[operator.config]
schema_version = 2
required = ["mode"]

[operator.config.properties.mode]
type = "string"
title = "Mode"
description = "The mode"
default = "fast"
enum_values = ["fast", "slow"]

[operator.config.properties.api_token]
type = "string"
redacted = true

[operator.config.properties.limits]
type = "string_list"
default = []

[operator.config.properties.ratio]
type = "number"
default = -0.0
"""


def roundtrip(m: Manifest) -> Manifest:
    text = serialize_manifest(m)
    again = parse_manifest(text)
    assert again == m
    assert again.manifest_version == m.manifest_version
    assert serialize_manifest(again) == text  # stable
    return again


@pytest.mark.parametrize("source", ["fixture", "minimal_v2", "maximal", "v1"])
def test_roundtrip(source):
    text = {
        "fixture": FIXTURE.read_text(encoding="utf-8") if source == "fixture" else "",
        "minimal_v2": MINIMAL_V2,
        "maximal": MAXIMAL,
        "v1": MINIMAL_V2.replace("manifest_version = 2", "manifest_version = 1") + "[operator]\n",
    }[source]
    m = parse_manifest(text)
    roundtrip(m)
    assert manifest_warnings(parse_manifest(serialize_manifest(m))) == manifest_warnings(m)


def test_literal_lines_and_new_compat_names():
    text = serialize_manifest(parse_manifest(MINIMAL_V2))
    lines = text.splitlines()
    assert "manifest_version = 2" in lines
    assert "required_protocol_major = 1" in lines
    assert 'min_palyra_version = "0.1.0"' in lines
    assert 'skill_id = "acme.echo"' in lines
    assert "min_protocol_major" not in text and "min_runtime_version" not in text
    assert lines[0] == "manifest_version = 2"


def test_v1_stays_v1():
    text = serialize_manifest(parse_manifest(FIXTURE.read_text(encoding="utf-8")))
    assert "manifest_version = 1" in text.splitlines()
    assert parse_manifest(text).manifest_version == 1


def test_omission_rules_minimal():
    text = serialize_manifest(parse_manifest(MINIMAL_V2))
    doc = tomllib.loads(text)
    assert "builder" not in doc
    assert "max_palyra_version" not in doc["compat"]
    assert doc["operator"] == {"categories": [], "tags": [], "plugin": {}}
    assert "[operator]" in text.splitlines()
    assert "config" not in doc["operator"]
    assert "[operator.config]" not in text


def test_omission_rules_optionals():
    m = parse_manifest(
        MINIMAL_V2
        + "[operator]\nsummary = \"s\"\n"
        + "[operator.config.properties.a]\ntype = \"string\"\n"
        + "[operator.config.properties.b]\ntype = \"string\"\ntitle = \"B\"\nenum_values = []\n"
        + "[operator.plugin]\ncontracts = []\n"
    )
    doc = tomllib.loads(serialize_manifest(m))
    op = doc["operator"]
    assert set(op) == {"summary", "categories", "tags", "plugin", "config"}
    assert op["plugin"] == {}
    assert op["config"] == {
        "schema_version": 1,
        "required": [],
        "properties": {"a": {"type": "string", "redacted": False}, "b": {"type": "string", "title": "B", "redacted": False}},
    }


def test_empty_config_is_written_and_keeps_operator_non_empty():
    m = parse_manifest(MINIMAL_V2 + "[operator.config]\n")
    text = serialize_manifest(m)
    assert "[operator.config]" in text.splitlines()
    assert roundtrip(m).operator.config is not None


def test_maximal_document_shape():
    doc = tomllib.loads(serialize_manifest(parse_manifest(MAXIMAL)))
    assert doc["compat"] == {"required_protocol_major": 0, "min_palyra_version": "0.0.1", "max_palyra_version": "0.2.0"}
    assert doc["operator"]["plugin"]["contracts"] == [
        {"kind": "memory_provider", "version": 1},
        {"kind": "connector_adapter", "version": 1},
    ]
    assert doc["builder"]["checklist"]["review_notes"] == "ok"
    assert doc["entrypoints"]["tools"][1]["id"] == " acme.two "  # raw value written back
    assert doc["version"] == "1.2.3"
    # the datetime became an object; written as a table that re-parses to the same object
    schema = doc["entrypoints"]["tools"][0]["input_schema"]
    assert schema["properties"]["a"]["default"] == {"$__toml_private_datetime": "1979-05-27T07:32:00Z"}
    assert math.isnan(schema["properties"]["n"])  # null is written as nan, which maps back to null


def test_strings_are_basic_quoted():
    text = serialize_manifest(parse_manifest(MAXIMAL))
    name_line = next(line for line in text.splitlines() if line.startswith("name = "))
    assert name_line.startswith('name = "') and name_line.endswith('"')
    assert "'" not in name_line


def test_with_integrity_roundtrips():
    m = with_integrity(parse_manifest(MINIMAL_V2), [("modules/x.wasm", "f" * 64), ("assets/y", "e" * 64)])
    again = roundtrip(m)
    assert [f.path for f in again.integrity.files] == ["assets/y", "modules/x.wasm"]


def test_serialize_rejects_unwritable_values():
    m = parse_manifest(MINIMAL_V2)
    tool = msgspec.structs.replace(m.entrypoints.tools[0], input_schema={"x": object()})
    bad = msgspec.structs.replace(m, entrypoints=msgspec.structs.replace(m.entrypoints, tools=(tool,)))
    with pytest.raises(SerializationError):
        serialize_manifest(bad)


# --- JSON form ------------------------------------------------------------------------


def test_json_form_matches_toml_form():
    m = parse_manifest(MAXIMAL)
    j = manifest_to_json(m)
    text = json.dumps(j, allow_nan=False)  # plain JSON values only
    assert json.loads(text) == j
    toml_doc = tomllib.loads(serialize_manifest(m))
    # same names and nesting; only the null/NaN spelling differs
    assert j["entrypoints"]["tools"][0]["input_schema"]["properties"]["n"] is None
    toml_doc["entrypoints"]["tools"][0]["input_schema"]["properties"]["n"] = None
    assert j == toml_doc


def test_json_form_omissions_and_types():
    j = manifest_to_json(parse_manifest(MINIMAL_V2))
    assert list(j) == [
        "manifest_version", "skill_id", "name", "version", "publisher",
        "entrypoints", "capabilities", "compat", "integrity", "operator",
    ]  # fmt: skip
    assert j["compat"] == {"required_protocol_major": 1, "min_palyra_version": "0.1.0"}
    assert j["operator"] == {"categories": [], "tags": [], "plugin": {}}
    assert j["capabilities"]["quotas"] == {
        "wall_clock_timeout_ms": 30000,
        "fuel_budget": 10000000,
        "max_memory_bytes": 67108864,
    }
    assert isinstance(j["capabilities"]["http_egress_allowlist"], list)


def test_json_form_is_a_copy():
    m = parse_manifest(MINIMAL_V2)
    j = manifest_to_json(m)
    j["entrypoints"]["tools"][0]["input_schema"]["type"] = "changed"
    assert m.entrypoints.tools[0].input_schema == {"type": "object"}


# --- property tests -------------------------------------------------------------------

SEG = st.text(alphabet=string.ascii_lowercase + string.digits + "_-", min_size=1, max_size=6)
IDENT_TAIL = st.text(alphabet=string.ascii_lowercase + string.digits + "._:-", min_size=1, max_size=8)
LABEL = st.text(alphabet=string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=8)
WS = st.sampled_from(["", " ", "\t", "\u3000"])
U32 = st.integers(0, 2**32 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)


@st.composite
def semver_text(draw) -> str:
    parts = []
    for _ in range(3):
        n = draw(st.integers(0, 2**32 - 1) | st.integers(0, 20))
        prefix = draw(st.sampled_from(["", "", "+", "0", "+00"]))
        parts.append(f"{prefix}{n}")
    return draw(WS) + ".".join(parts) + draw(WS)


@st.composite
def strict_semver_text(draw) -> str:
    """A skill's own version: SemVer 2.0's version core as written (grammars.skill_version)."""
    return ".".join(str(draw(st.integers(0, 2**32 - 1) | st.integers(0, 20))) for _ in range(3))


JSON_LEAF = (
    st.booleans()
    | I64
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
    | st.datetimes()
    | st.dates()
    | st.times()
    | st.datetimes(timezones=st.just(dt.timezone.utc))
    | st.datetimes(timezones=st.builds(lambda m: dt.timezone(dt.timedelta(minutes=m)), st.integers(-1439, 1439)))
)
ANY_VALUE = st.recursive(
    JSON_LEAF,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)
SCHEMA = st.dictionaries(st.text(max_size=6), ANY_VALUE, max_size=4)


def path_text():
    return st.lists(st.sampled_from(["a", "b c", "...", "x.y", "d-e"]), min_size=1, max_size=3).map("/".join)


@st.composite
def manifest_docs(draw) -> dict[str, Any]:
    publisher = draw(SEG)
    version = draw(st.sampled_from([1, 2]))
    n_tools = draw(st.integers(1, 3))
    suffixes = draw(st.lists(IDENT_TAIL, min_size=n_tools, max_size=n_tools, unique=True))
    tools = []
    for i, suffix in enumerate(suffixes):
        # the first id stays unpadded: the operator default tool must equal a raw id (rule 34)
        pad = (draw(WS), draw(WS)) if i else ("", "")
        tool = {
            "id": f"{pad[0]}{publisher}.{suffix}{pad[1]}",
            "name": draw(st.text(min_size=1, max_size=8).filter(trim)),
            "description": "does things",
            "input_schema": draw(SCHEMA),
            "output_schema": draw(SCHEMA),
        }
        if draw(st.booleans()):
            tool["risk"] = {"default_sensitive": draw(st.booleans()), "requires_approval": draw(st.booleans())}
        tools.append(tool)
    major, minor, patch = draw(st.integers(0, 3)), draw(st.integers(0, 3)), draw(st.integers(0, 3))
    compat: dict[str, Any] = {"required_protocol_major": draw(U32)}
    legacy = draw(st.booleans())
    compat["min_protocol_major" if legacy else "required_protocol_major"] = compat.pop("required_protocol_major")
    compat["min_runtime_version" if draw(st.booleans()) else "min_palyra_version"] = f"{major}.{minor}.{patch}"
    if draw(st.booleans()):
        compat["max_palyra_version"] = f"{major}.{minor}.{patch + draw(st.integers(0, 5))}"
    elif draw(st.booleans()):  # §4.7's own forms (sign, leading zeros, whitespace) stay legal here
        compat.pop("min_runtime_version", None)
        compat["min_palyra_version"] = draw(semver_text())
    opt = {k: draw(st.booleans()) for k in ("filesystem", "http_egress", "secrets", "device", "node")}
    caps: dict[str, Any] = {
        "filesystem": {
            "read_roots": draw(st.lists(path_text(), max_size=2)),
            "write_roots": draw(st.lists(path_text(), max_size=2)),
        },
        "http_egress_allowlist": draw(
            st.lists(st.sampled_from(["api.example.com", "EXAMPLE.org.", " x-y.io "]), max_size=3)
        ),
        "secrets": [
            {"scope": draw(st.sampled_from(["global", "principal:a:b", "skill:x"])), "key_names": draw(st.lists(IDENT_TAIL, min_size=1, max_size=2))}
            for _ in range(draw(st.integers(0, 2)))
        ],
        "device_capabilities": draw(st.lists(IDENT_TAIL, max_size=2)),
        "node_capabilities": draw(st.lists(IDENT_TAIL, max_size=2)),
        "quotas": {
            "wall_clock_timeout_ms": draw(st.integers(1, 2**63 - 1)),
            "fuel_budget": draw(st.integers(1, 2**63 - 1)),
            "max_memory_bytes": draw(st.integers(65536, 2**63 - 1)),
        },
        "wildcard_opt_in": opt,
    }
    if opt["filesystem"]:
        caps["filesystem"]["read_roots"].append("skills/*")
    if opt["http_egress"]:
        caps["http_egress_allowlist"].append("*.example.com")
    doc: dict[str, Any] = {
        "manifest_version": version,
        "skill_id": ".".join(draw(st.lists(SEG, min_size=1, max_size=3))),
        "name": draw(st.text(alphabet=string.printable, min_size=1, max_size=10).filter(str.strip)),
        "version": draw(strict_semver_text()),
        "publisher": publisher,
        "entrypoints": {"tools": tools},
        "capabilities": caps,
        "compat": compat,
        "integrity": {
            "files": [{"path": p, "sha256": "a" * 64} for p in draw(st.lists(path_text(), max_size=3))]
        },
    }
    if version == 2 and draw(st.booleans()):
        props = {}
        for key in draw(st.lists(LABEL, max_size=3, unique=True)):
            props[key] = draw(
                st.sampled_from(
                    [
                        {"type": "string", "default": "x", "enum_values": ["x", "y"]},
                        {"type": "integer", "default": -1, "title": "T"},
                        {"type": "number", "default": 2.5, "redacted": True},
                        {"type": "boolean"},
                        {"type": "string_list", "default": ["a"], "description": "D"},
                    ]
                )
            )
        doc["operator"] = {
            "display_name": "D",
            "categories": draw(st.lists(LABEL, max_size=2)),
            "plugin": {
                "default_tool_id": f"{publisher}.{suffixes[0]}",
                "contracts": [{"kind": k} for k in draw(st.lists(st.sampled_from(["memory_provider", "context_engine"]), unique=True))],
            },
            "config": {"required": list(props)[:1], "properties": props},
        }
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifest_docs())
def test_generated_manifests_roundtrip(doc):
    m = parse_manifest(tomli_w.dumps(doc))
    assert m.manifest_version == doc["manifest_version"]
    assert m.publisher == doc["publisher"] and m.version == doc["version"]
    assert len(m.entrypoints.tools) == len(doc["entrypoints"]["tools"])
    roundtrip(m)
    json.dumps(manifest_to_json(m), allow_nan=False)


TOML_SCALAR = (
    st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=6)
    | st.dates()
    | st.datetimes(timezones=st.none() | st.just(dt.timezone.utc))
)
TOML_VALUE = st.recursive(
    TOML_SCALAR,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


def _mutate(doc: Any, data: st.DataObject) -> Any:
    """Replace, delete or add one entry somewhere in a valid document."""
    node = doc
    for _ in range(data.draw(st.integers(0, 4))):
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        children = [(k, v) for k, v in children if isinstance(v, (dict, list)) and v]
        if not children:
            break
        node = data.draw(st.sampled_from(children))[1]
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "add" and isinstance(node, dict):
        node[data.draw(st.text(max_size=8))] = data.draw(TOML_VALUE)
    elif keys and action == "delete":
        del node[data.draw(st.sampled_from(keys))]
    elif keys:
        node[data.draw(st.sampled_from(keys))] = data.draw(TOML_VALUE)
    return doc


def _dumps_or_none(doc: Any) -> str | None:
    try:
        return tomli_w.dumps(doc)
    except (TypeError, ValueError):
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifest_docs(), st.data())
def test_parse_of_mutated_documents_raises_only_project_errors(doc, data):
    text = _dumps_or_none(_mutate(copy.deepcopy(doc), data))
    if text is None:
        return
    try:
        m = parse_manifest(text)
    except SkillLedgerError:
        return
    roundtrip(m)  # anything accepted must also serialise and re-parse to itself


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('[]{}=."\'#\n ,abc_123+-:tTZ') + ["\ud800", "é", "\x00"]), max_size=60))
def test_parse_of_arbitrary_text_raises_only_project_errors(text):
    try:
        parse_manifest(text)
    except SkillLedgerError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=40))
def test_parse_bytes_of_arbitrary_data_raises_only_project_errors(data):
    from skill_ledger.domain.manifest import parse_manifest_bytes

    try:
        parse_manifest_bytes(data)
    except SkillLedgerError:
        pass
