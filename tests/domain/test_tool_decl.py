"""Tool declarations (``domain/tool_decl.py``): the strict format and filling placeholders."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skill_ledger.domain.errors import SkillLedgerError
from skill_ledger.domain.tool_decl import (
    DEFAULT,
    ToolDeclaration,
    declaration_path,
    declaration_problems,
    expand,
    parse_declaration,
)

PATH = "assets/tools/acme.tool.json"


def parse(doc) -> ToolDeclaration:
    return parse_declaration(json.dumps(doc).encode() if not isinstance(doc, bytes) else doc, PATH)


def test_the_minimal_declaration_is_the_default():
    assert parse({"version": 1}) == DEFAULT
    assert DEFAULT.success_exit_codes == (0,) and DEFAULT.stdin == "json" and DEFAULT.stdout == "json"


def test_a_full_declaration():
    d = parse({"version": 1, "args": ["-n", "{n}"], "stdin": {"text": "body"}, "stdout": "text",
               "success_exit_codes": [3, 0, 1], "env": {"B": "2", "A": "{a}"}})
    assert d == ToolDeclaration(args=("-n", "{n}"), stdin="text", stdin_property="body", stdout="text",
                                success_exit_codes=(0, 1, 3), env=(("A", "{a}"), ("B", "2")))


@pytest.mark.parametrize("doc,expected", [
    ({}, '"version" must be 1'),
    ({"version": 2}, '"version" must be 1'),
    ({"version": True}, '"version" must be 1'),
    ({"version": 1.0}, '"version" must be 1'),
    ({"version": 1, "argv": []}, "unknown member 'argv'"),
    ({"version": 1, "args": "a b"}, '"args" must be a list'),
    ({"version": 1, "args": [1]}, '"args" must be a list'),
    ({"version": 1, "args": ["x"] * 257}, '"args" must be a list of at most 256'),
    ({"version": 1, "args": ["{a b}"]}, "neither a placeholder"),
    ({"version": 1, "args": ["{"]}, "neither a placeholder"),
    ({"version": 1, "args": ["}x"]}, "neither a placeholder"),
    ({"version": 1, "args": ["{1x}"]}, "neither a placeholder"),
    ({"version": 1, "args": ["a\u0000"]}, "without NUL"),
    ({"version": 1, "stdin": "binary"}, '"stdin" must be'),
    ({"version": 1, "stdin": {"text": "a", "b": 1}}, '"stdin" must be'),
    ({"version": 1, "stdin": {"text": "a-b"}}, '"stdin" must be'),
    ({"version": 1, "stdout": "none"}, '"stdout" must be one of'),
    ({"version": 1, "success_exit_codes": []}, "non-empty list"),
    ({"version": 1, "success_exit_codes": [0, 0]}, "distinct"),
    ({"version": 1, "success_exit_codes": [256]}, "0..255"),
    ({"version": 1, "success_exit_codes": [True]}, "0..255"),
    ({"version": 1, "env": {"A-B": "x"}}, "environment variable name"),
    ({"version": 1, "env": {"A": 1}}, "must be a string"),
    ({"version": 1, "env": {f"V{i}": "x" for i in range(65)}}, "at most 64"),
    ([], "must be a JSON object"),
])
def test_every_deviation_is_refused_with_the_reason(doc, expected):
    with pytest.raises(SkillLedgerError) as info:
        parse(doc)
    assert info.value.code == "tool_declaration_invalid"
    assert expected in info.value.message and PATH in info.value.message


@pytest.mark.parametrize("raw", [
    b'{"version": 1, "version": 1}',  # duplicate member
    b'{"version": 1, "args": [NaN]}',
    b"\xff\xfe{}",
    b'{"version": 1',
    b" " * 70_000,
])
def test_documents_that_are_not_strict_json_are_refused(raw):
    with pytest.raises(SkillLedgerError) as info:
        parse(raw)
    assert info.value.code == "tool_declaration_invalid"


def test_the_path_is_named_from_the_tool_id():
    assert declaration_path("acme.tool") == "assets/tools/acme.tool.json"
    assert declaration_path("acme.ns:tool") == "assets/tools/acme.ns%3atool.json"  # ':' is not allowed in paths


def test_declaration_problems_for_the_audit_and_the_build():
    entries = {"assets/tools/acme.a.json": b'{"version": 1}', "assets/tools/acme.b.json": b'{"version": 9}',
               "assets/tools/acme.zz.json": b'{"version": 1}', "assets/tools/readme.txt": b"x",
               "assets/prompt.txt": b"x"}
    assert declaration_problems(["acme.a", "acme.b"], entries) == {
        "assets/tools/acme.b.json": 'the tool declaration assets/tools/acme.b.json is invalid: "version" must be 1',
        "assets/tools/acme.zz.json": "it names no tool of the manifest"}
    assert declaration_problems(["acme.a"], {"assets/tools/acme.a.json": b'{"version": 1}'}) == {}


def test_placeholders_are_filled_from_top_level_properties_only():
    d = parse({"version": 1, "args": ["{a}", "x{a}y", "{{{a}}}", "{list}", "{gone}", "{nested}"],
               "env": {"E": "{a}-{n}", "F": "{gone}"}})
    inv = expand(d, "tool", {"a": "v", "n": -2.5, "list": [1, False, "s"], "nested": None}, b"{}")
    assert inv.argv == ["tool", "v", "xvy", "{v}", "1", "false", "s"]
    assert inv.env == [("E", "v--2.5")]
    assert inv.stdin == b"{}"
    # a non-object input fills no placeholder: every templated argument is left out
    assert expand(d, "tool", [1, 2], b"[1,2]").argv == ["tool"]


@given(st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                                 st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=4)),
                       max_size=6))
def test_expansion_gives_strings_without_nul_or_refuses_the_input(value):
    d = parse({"version": 1, "args": [f"{{{k}}}" for k in value] + ["--k={k}"], "env": {"K": "{k}"}})
    try:
        inv = expand(d, "tool", value, b"{}")
    except SkillLedgerError as e:
        assert e.code == "invalid_input"
        return
    assert inv.argv[0] == "tool"
    assert all(isinstance(a, str) and "\x00" not in a for a in inv.argv)
    assert all("\x00" not in v for _, v in inv.env)
