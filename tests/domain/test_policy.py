"""The audit policy value (artifact-format.md §19.1): fixed-schema JSON and ``policy set`` edits."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skill_ledger.domain.constants import UINT64_MAX
from skill_ledger.domain.errors import SerializationError, UsageError
from skill_ledger.domain.policy import (
    POLICY_KEYS,
    PolicyValues,
    apply_settings,
    dump_policy_json,
    effective_feed_path,
    parse_policy_json,
    policy_changes,
    policy_from_dict,
    policy_settings,
    policy_to_dict,
    setting_text,
)

DEFAULTS = {
    "max_module_bytes": 8388608,
    "max_exported_functions": 128,
    "allow_device_capabilities": False,
    "allow_wildcard_capabilities": False,
    "allowed_import_modules": ["palyra:plugins/host-capabilities@0.1.0", "skills:host/v1"],
    "vulnerability_feed_path": None,
    # this project's host-side caps (additions to §19.1)
    "max_memory_bytes": 67108864,
    "max_fuel_budget": 10000000,
    "max_wall_clock_timeout_ms": 30000,
    "max_instances": 16,
    "max_functions": 50000,
    "max_function_body_bytes": 524288,
    "max_code_bytes": 8388608,
    "allow_cross_skill_secrets": False,
}


def test_defaults_and_member_order() -> None:
    assert policy_to_dict(PolicyValues()) == DEFAULTS
    assert list(policy_to_dict(PolicyValues())) == list(DEFAULTS) == list(POLICY_KEYS)
    assert parse_policy_json(b"{}") == PolicyValues()
    assert json.loads(dump_policy_json(PolicyValues())) == DEFAULTS


def test_full_document_round_trips() -> None:
    doc = {
        "max_module_bytes": 0,
        "max_exported_functions": 9223372036854775807,
        "allow_device_capabilities": True,
        "allow_wildcard_capabilities": True,
        "allowed_import_modules": [],
        "vulnerability_feed_path": "/feeds/v.json",
    }
    p = parse_policy_json(json.dumps(doc).encode())
    assert policy_to_dict(p) == {**DEFAULTS, **doc}  # a §19.1 document: the additions keep their defaults
    assert parse_policy_json(dump_policy_json(p).encode()) == p


def test_reference_policy_with_four_members() -> None:
    p = parse_policy_json(b'{"max_module_bytes": 10, "allow_device_capabilities": true}')
    assert (p.max_module_bytes, p.allow_device_capabilities, p.max_exported_functions) == (10, True, 128)


@pytest.mark.parametrize(
    "doc",
    [
        b"[]",
        b'"x"',
        b"not json",
        b'{"max_module_bytes": NaN}',
        b'{"extra": 1}',
        b'{"max_module_bytes": 1, "max_module_bytes": 2}',
        b'{"max_module_bytes": -1}',
        b'{"max_module_bytes": 9223372036854775808}',
        b'{"max_module_bytes": 1.0}',
        b'{"max_module_bytes": true}',
        b'{"max_exported_functions": "5"}',
        b'{"allow_device_capabilities": 1}',
        b'{"allow_wildcard_capabilities": null}',
        b'{"allowed_import_modules": "skills:host/v1"}',
        b'{"allowed_import_modules": ["a", 1]}',
        b'{"vulnerability_feed_path": 5}',
        '{"max_module_bytes": 1}'.encode("utf-16"),
        b'\xff{"max_module_bytes": 1}',
    ],
)
def test_rejected_documents(doc: bytes) -> None:
    with pytest.raises(SerializationError):
        parse_policy_json(doc)


@pytest.mark.parametrize(("key", "low"), [("max_memory_bytes", 65536), ("max_fuel_budget", 1),
                                          ("max_wall_clock_timeout_ms", 1)])
def test_a_quota_cap_below_any_manifests_quota_is_refused(key: str, low: int) -> None:
    """Below the smallest quota a manifest may declare, every skill would fail quota_within_policy."""
    assert getattr(apply_settings(PolicyValues(), [f"{key}={low}"]), key) == low
    with pytest.raises(UsageError, match=f"policy key '{key}' needs at least {low}") as e:
        apply_settings(PolicyValues(), [f"{key}={low - 1}"])
    assert e.value.details == {"key": key, "value": str(low - 1)}
    with pytest.raises(SerializationError, match=f"'{key}' must be an integer in {low}.."):
        parse_policy_json(f'{{"{key}": {low - 1}}}'.encode())
    assert getattr(parse_policy_json(f'{{"{key}": {low}}}'.encode()), key) == low


def test_the_compile_caps_may_be_anything() -> None:
    p = apply_settings(PolicyValues(), ["max_functions=0", "max_function_body_bytes=0", "max_code_bytes=0"])
    assert (p.max_functions, p.max_function_body_bytes, p.max_code_bytes) == (0, 0, 0)


def test_policy_from_dict_uses_the_same_rules() -> None:
    assert policy_from_dict({"vulnerability_feed_path": None}) == PolicyValues()
    with pytest.raises(SerializationError, match="unknown member 'x'"):
        policy_from_dict({"x": 1})


def test_effective_feed_path() -> None:
    assert effective_feed_path(PolicyValues()) is None
    assert effective_feed_path(PolicyValues(vulnerability_feed_path=" \t")) is None
    assert effective_feed_path(PolicyValues(vulnerability_feed_path=" /f.json ")) == "/f.json"


def test_apply_settings() -> None:
    p = apply_settings(
        PolicyValues(),
        [
            "max_module_bytes=1024",
            "max_exported_functions=007",
            "allow_device_capabilities=TRUE",
            "allow_wildcard_capabilities=false",
            "allowed_import_modules=skills:host/v1, wasi_snapshot_preview1",
            "vulnerability_feed_path=/var/feeds/v.json",
        ],
    )
    assert policy_to_dict(p) == {
        **DEFAULTS,
        "max_module_bytes": 1024,
        "max_exported_functions": 7,
        "allow_device_capabilities": True,
        "allow_wildcard_capabilities": False,
        "allowed_import_modules": ["skills:host/v1", "wasi_snapshot_preview1"],
        "vulnerability_feed_path": "/var/feeds/v.json",
    }
    assert apply_settings(p, ["allowed_import_modules="]).allowed_import_modules == ()
    for unset in ("vulnerability_feed_path=", "vulnerability_feed_path=null", "vulnerability_feed_path=None"):
        assert apply_settings(p, [unset]).vulnerability_feed_path is None
    assert apply_settings(p, []) == p
    assert apply_settings(p, ["max_module_bytes=9223372036854775807"]).max_module_bytes == 9223372036854775807


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("nope=1", "nope"),
        ("max_module_bytes", None),
        ("max_module_bytes=-1", "max_module_bytes"),
        ("max_module_bytes=1e3", "max_module_bytes"),
        ("max_module_bytes=", "max_module_bytes"),
        ("max_module_bytes=9223372036854775808", "max_module_bytes"),
        ("max_exported_functions=\u0661", "max_exported_functions"),  # ARABIC-INDIC DIGIT ONE
        ("allow_device_capabilities=yes", "allow_device_capabilities"),
        ("allow_wildcard_capabilities=1", "allow_wildcard_capabilities"),
        ("allowed_import_modules=a,,b", "allowed_import_modules"),
        ("allowed_import_modules=a,", "allowed_import_modules"),
    ],
)
def test_apply_settings_rejects(setting: str, key: str | None) -> None:
    with pytest.raises(UsageError) as info:
        apply_settings(PolicyValues(), [setting])
    if key is not None:
        assert f"'{key}'" in info.value.message
        assert info.value.details["key"] == key


def test_apply_settings_refuses_a_repeated_key() -> None:
    with pytest.raises(UsageError, match="more than once"):
        apply_settings(PolicyValues(), ["max_module_bytes=1", "max_module_bytes=2"])


def test_policy_changes() -> None:
    new = apply_settings(PolicyValues(), ["max_module_bytes=1", "allow_device_capabilities=true"])
    assert policy_changes(PolicyValues(), new) == {
        "max_module_bytes": (8388608, 1),
        "allow_device_capabilities": (False, True),
    }
    assert policy_changes(new, new) == {}


# --- one syntax in both directions (issue 12) --------------------------------------------------



_uints = st.integers(min_value=64 * 1024, max_value=UINT64_MAX)
_names = st.text(min_size=1, max_size=20).filter(lambda t: t.strip() != "")


@given(st.builds(
    PolicyValues,
    max_module_bytes=_uints, max_exported_functions=_uints, max_memory_bytes=_uints, max_fuel_budget=_uints,
    max_wall_clock_timeout_ms=_uints, max_instances=_uints, max_functions=_uints,
    allow_device_capabilities=st.booleans(), allow_cross_skill_secrets=st.booleans(),
    allowed_import_modules=st.lists(_names, max_size=4).map(tuple),
    vulnerability_feed_path=st.none() | st.text(max_size=30),
))
def test_what_show_prints_set_takes_back_unchanged(p: PolicyValues) -> None:
    assert apply_settings(PolicyValues(), policy_settings(p)) == p


def test_show_prints_json_values() -> None:
    lines = policy_settings(PolicyValues())
    assert "allow_device_capabilities=false" in lines and "vulnerability_feed_path=null" in lines
    assert setting_text("allowed_import_modules", ("a", "b")) == 'allowed_import_modules=["a","b"]'
    assert setting_text("vulnerability_feed_path", "/f.json") == 'vulnerability_feed_path="/f.json"'


def test_a_json_list_is_a_list_never_the_literal_text() -> None:
    p = apply_settings(PolicyValues(), ['allowed_import_modules=["skills:host/v1"]'])
    assert p.allowed_import_modules == ("skills:host/v1",)
    with pytest.raises(UsageError, match="not valid JSON"):
        apply_settings(PolicyValues(), ['allowed_import_modules=["skills:host/v1"'])
    with pytest.raises(UsageError, match="JSON array"):
        apply_settings(PolicyValues(), ['allowed_import_modules="skills:host/v1"'])
    assert apply_settings(PolicyValues(), ["allowed_import_modules=[]"]).allowed_import_modules == ()
