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
    secret_scope,
    semver,
    skill_id,
    wild,
)


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
