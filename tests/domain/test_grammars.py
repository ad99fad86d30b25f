"""The §4 grammars, checked against the spec's own example tables."""

from __future__ import annotations

import pytest

from skill_ledger.domain.errors import InvalidArtifactPath, ManifestValidationError
from skill_ledger.domain.grammars import (
    ident,
    is_config_key,
    is_entrypoint,
    is_label,
    normalize_host,
    normalize_path,
    parse_semver_lenient,
    same_version,
    secret_scope,
    semver,
    skill_id,
    skill_version,
    wild,
)
from skill_ledger.domain.text import bound_details, bound_text


def rule_of(fn, *args) -> str:
    with pytest.raises(ManifestValidationError) as info:
        fn(*args)
    return info.value.rule


def test_ident():
    assert ident(" a.b:c-d_1 ", "f") == "a.b:c-d_1"
    assert rule_of(ident, "\u3000", "f") == "identifier_empty"
    assert rule_of(ident, "\x1c", "f") == "identifier_invalid"  # not WS, unlike str.strip()
    assert rule_of(ident, "A", "f") == "identifier_invalid"
    assert rule_of(ident, "\u212a", "f") == "identifier_invalid"


@pytest.mark.parametrize("bad", [".", "..", "a..b", ".a", "a.", "c:temp", "acme:x"])
def test_skill_id_rejects(bad):
    assert rule_of(skill_id, bad) == "skill_id_invalid"


def test_skill_id_accepts():
    assert skill_id(" a_b-c.d ") == "a_b-c.d"


def test_secret_scope():
    assert secret_scope(" global ") == "global"
    assert secret_scope("principal:admin:ops") == "principal:admin:ops"
    assert rule_of(secret_scope, "principal:") == "identifier_empty"
    assert rule_of(secret_scope, "team:x") == "secret_scope_invalid"


def test_wild():
    assert wild(" * ", "f", True) == " * "
    assert rule_of(wild, "a*", "f", False) == "wildcard_without_opt_in"
    assert wild(" a ", "f", False) == "a"


def test_labels_and_entrypoint():
    assert is_label(" a.b_c-d ") and not is_label("a:b") and not is_label(" ")
    assert is_config_key("x") and not is_config_key("X")
    assert is_entrypoint("run_main-1") and not is_entrypoint("run.main") and not is_entrypoint("")


@pytest.mark.parametrize(
    ("host", "expected"),
    [("API.Example.COM", "api.example.com"), ("example.com.", "example.com"), (" x.io ", "x.io")],
)
def test_host_valid(host, expected):
    assert normalize_host(host) == expected


@pytest.mark.parametrize("host", ["", ".", "a..b", ".a", "a-", "-a", "a:1", "https://a", "[::1]", "a b", "é.com"])
def test_host_invalid(host):
    assert normalize_host(host) is None


@pytest.mark.parametrize("raw", ["skills/*", "a/ b", "...", "C/x", "modules/lib/x.wasm"])
def test_path_valid(raw):
    assert normalize_path(raw) == raw


@pytest.mark.parametrize("raw", ["../*", "*//foo", "skills//*/data", "/abs", "c:/x", "a/", "./a", "a/./b", "", "a\x00b"])
def test_path_invalid(raw):
    with pytest.raises(InvalidArtifactPath) as info:
        normalize_path(raw)
    assert info.value.raw == raw


def test_path_backslashes():
    assert normalize_path(" a\\b ") == "a/b"
    with pytest.raises(InvalidArtifactPath):
        normalize_path("\\abs")


def test_semver():
    assert semver("+1.01.0", "v") == (1, 1, 0)
    assert semver("4294967295.0.0", "v") == (4294967295, 0, 0)
    assert rule_of(semver, "1.0", "v") == "semver_format_invalid"
    for bad, component in [("1.0.0-beta", "patch"), ("4294967296.0.0", "major"), ("1. 1.0", "minor"), ("1.1_0.0", "minor")]:
        with pytest.raises(ManifestValidationError) as info:
            semver(bad, "v")
        assert info.value.details["component"] == component


def test_semver_long_digit_strings():
    assert semver("0.0." + "0" * 5000 + "1", "v") == (0, 0, 1)
    with pytest.raises(ManifestValidationError):
        semver("1.0." + "9" * 5000, "v")


# --- a skill's own version: SemVer 2.0 strictly -------------------------------------------------

# semver.org's official regular expression (its version core, the part §4.7 also allows).
OFFICIAL = __import__("re").compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$", __import__("re").ASCII)


@pytest.mark.parametrize("value", ["0.0.0", "1.0.0", "1.2.3", "10.20.30", "4294967295.4294967295.4294967295"])
def test_skill_version_accepts_semver_version_cores(value):
    assert skill_version(value, "version") == tuple(int(p) for p in value.split("."))


@pytest.mark.parametrize(("value", "rule"), [
    ("01.0.0", "semver_component_invalid"), ("+1.0.0", "semver_component_invalid"),
    ("1.0.00", "semver_component_invalid"), (" 1.0.0", "semver_component_invalid"),
    ("1.0.0\n", "semver_component_invalid"), ("1.0.0-alpha", "semver_component_invalid"),
    ("1.0.0+build", "semver_component_invalid"), ("1.0.0-rc.1", "semver_format_invalid"),
    ("1.\u0663.0", "semver_component_invalid"), ("4294967296.0.0", "semver_component_invalid"),
    ("1.0", "semver_format_invalid"), ("", "semver_format_invalid"), ("1" * 5000 + ".0.0", "semver_component_invalid"),
])
def test_skill_version_refuses_what_semver_or_the_reference_refuses(value, rule):
    assert rule_of(skill_version, value, "version") == rule


def test_skill_version_is_the_official_grammar_within_the_reference_range():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=500)
    @given(st.text(alphabet="0123456789.+- \t", max_size=14))
    def check(value):
        try:
            parsed = skill_version(value, "version")
        except ManifestValidationError:
            assert OFFICIAL.match(value) is None or max(map(int, value.split("."))) > 4294967295
        else:
            assert OFFICIAL.match(value) and parsed == parse_semver_lenient(value)

    check()


def test_versions_equal_under_semver_are_the_same_version():
    assert same_version("1.0.0", "01.0.0") and same_version("+1.0.0", "1.0.00") and same_version(" 1.0.0", "1.0.0")
    assert not same_version("1.0.0", "1.0.1")
    assert same_version("not a version", "not a version") and not same_version("x", "y")


# --- bounded outside text ---------------------------------------------------------------------


def test_bound_text_keeps_short_text_and_marks_what_it_cuts():
    assert bound_text("short", 64) == "short"
    assert bound_text("x" * 1024, 1024) == "x" * 1024
    cut = bound_text("x" * 12_000_000, 4096)
    assert len(cut.encode()) <= 4096 and cut.endswith(f"…[truncated {12_000_000 - cut.index('…')} bytes]")
    wide = bound_text("é" * 5000, 1024)  # two bytes each: never cut inside a character
    assert len(wide.encode()) <= 1024 and wide.startswith("é" * 400)
    removed = int(wide.rsplit(" ", 2)[1])
    assert len(wide[: wide.index("…")].encode()) + removed == 10_000


def test_bound_details_bounds_strings_and_the_whole():
    out = bound_details({"code": "c", "detail": "d" * 5000, "k" * 2000: 1}, 1024, 16_384)
    assert out["code"] == "c" and len(out["detail"].encode()) <= 1024
    assert all(len(k.encode()) <= 1024 for k in out)
    many = bound_details({"code": "c", "list": ["x" * 1000] * 100, "after": 1}, 1024, 16_384)
    assert many["code"] == "c" and many["after"] == 1 and "list" not in many
    assert many["…"].startswith("[truncated: 1 members left out")
    import json

    assert len(json.dumps(many, ensure_ascii=False).encode()) <= 16_384


def test_errors_bound_the_outside_text_they_quote():
    """Every error is printed and may be recorded: its message and each detail string are bounded
    when it is built, whatever a subclass puts in them."""
    scope = "x" * 12_000_000
    with pytest.raises(ManifestValidationError) as info:
        secret_scope(scope)
    e = info.value
    assert len(e.message.encode()) <= 4096 and "…[truncated " in e.message and str(e) == e.message
    assert len(e.details["detail"].encode()) <= 1024 and e.detail == e.details["detail"]
    bad = InvalidArtifactPath("/" + "p" * 100_000)
    assert len(bad.raw.encode()) <= 1024 and bad.details == {"raw": bad.raw}
