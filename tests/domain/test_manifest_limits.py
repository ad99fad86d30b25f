"""The lexical scan of ``domain/toml_limits.py`` against ``tomllib`` itself.

The scan must never count less than ``tomllib`` parses (else a cap would not bound it): for any
valid TOML document, a limit one below what the parsed document holds is always refused. And it
must not refuse valid documents within the caps: documents written by ``tomli_w`` (tables, arrays
of tables, inline tables, multi-line strings) and hand-written tricky syntax pass at the defaults.
"""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skill_ledger.domain.errors import ManifestLimitExceeded
from skill_ledger.domain.toml_limits import DEFAULT_LIMITS, TomlLimits, check_toml_limits

TRICKY = "ab.=#[]{}\"' \\\t\n,é\u2028'''\"\"\""
KEY = st.text(alphabet=TRICKY, min_size=1, max_size=6)
LEAF = st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(alphabet=TRICKY, max_size=12)


def values(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return LEAF
    inner = values(depth - 1)
    return (LEAF | st.lists(inner, max_size=4) | st.dictionaries(KEY, inner, max_size=4)
            | st.lists(st.dictionaries(KEY, inner, min_size=1, max_size=3), min_size=1, max_size=3))


DOCS = st.dictionaries(KEY, values(3), min_size=1, max_size=6)


def measure(value: Any, depth: int = 0) -> tuple[int, int, int]:
    """(keys, longest array, longest string or key) of a parsed document."""
    keys, longest_array, longest_text = 0, 0, 0
    if isinstance(value, dict):
        keys = len(value)
        longest_text = max((len(k) for k in value), default=0)
        children = list(value.values())
    elif isinstance(value, list):
        longest_array = len(value)
        children = value
    else:
        return 0, 0, len(value) if isinstance(value, str) else 0
    for child in children:
        k, a, t = measure(child, depth + 1)
        keys, longest_array, longest_text = keys + k, max(longest_array, a), max(longest_text, t)
    return keys, longest_array, longest_text


def limit_refused(text: str, **limits: int) -> str | None:
    try:
        check_toml_limits(text, TomlLimits(**limits))
    except ManifestLimitExceeded as e:
        return e.details["limit"]
    return None


def assert_never_undercounts(text: str) -> None:
    doc = tomllib.loads(text)
    keys, longest_array, longest_text = measure(doc)
    assert limit_refused(text) is None  # the defaults: valid and small
    if keys:
        assert limit_refused(text, max_keys=keys - 1) == "keys"
    if longest_array:
        assert limit_refused(text, max_array_items=longest_array - 1) == "array_items"
    if longest_text:
        assert limit_refused(text, max_string_chars=longest_text - 1) == "string_chars"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=DOCS, multiline=st.booleans(), crlf=st.booleans())
def test_the_scan_never_counts_less_than_tomllib_parses(doc: dict[str, Any], multiline: bool, crlf: bool) -> None:
    text = tomli_w.dumps(doc, multiline_strings=multiline)
    if crlf:
        text = text.replace("\n", "\r\n")
    assert_never_undercounts(text)


HAND_WRITTEN = [
    'a = "x # not a comment = [ {"\nb = 1 # "a comment with a quote\n',
    "a = 'literal \\ with backslash #'\n[t . 'u.v' . \"w.x\"]\ny = [ 1, # comment ]\n 2, ]\n",
    'ml = """\nline "quoted" \\"""\nstill = in the string\n"""\nz.a . b = { c = [ { d = 1 } ], e.f = "g" }\n',
    'four = """a""""\nfive = """b"""""\nlit4 = \'\'\'c\'\'\'\'\nlit5 = \'\'\'d\'\'\'\'\'\n',
    'cont = """\\\n   continued \\\n   lines"""\nk = 1\n',
    "[[arr]]\nx = 1\n[[arr]]\n[arr.sub]\ny = 2\n[[arr.list]]\nz = 3\n",
    'd = 1979-05-27 07:32:00.5Z\nf = -1.5e-3\ni = 0x1F\nn = nan\ninf_ = -inf\n"quoted key" = 1\n',
    'e = ""\nf = \'\'\ng = """"""\nh = \'\'\'\'\'\'\nempty_array = [ ]\nempty_table = { }\n',
    "a = [\n  [1, 2],\n  # comment with ] and }\n  { x = 1 },\n]\n",
]


@pytest.mark.parametrize("text", HAND_WRITTEN)
def test_tricky_toml_is_scanned_as_tomllib_reads_it(text: str) -> None:
    assert_never_undercounts(text)
    assert_never_undercounts(text.replace("\n", "\r\n"))


def test_what_the_scan_counts() -> None:
    text = '[a.b]\nc.d = [1, [2, 3], {e = "x"}]\n[[f]]\n"g.h" = \'\'\'long\'\'\'\n'
    assert limit_refused(text, max_keys=7) is None  # a, b, c, d, e, f, "g.h"
    assert limit_refused(text, max_keys=6) == "keys"
    assert limit_refused(text, max_key_parts=2) is None
    assert limit_refused(text, max_key_parts=1) == "key_parts"
    assert limit_refused(text, max_nesting=2) is None
    assert limit_refused(text, max_nesting=1) == "nesting"
    assert limit_refused(text, max_array_items=3) is None
    assert limit_refused(text, max_array_items=2) == "array_items"
    assert limit_refused(text, max_string_chars=4) is None
    assert limit_refused(text, max_string_chars=3) == "string_chars"  # "g.h" and '''long'''


def test_invalid_toml_is_left_to_tomllib() -> None:
    """The scan is not a validator: broken text within the caps passes it, and tomllib says why."""
    for text in ['a = "unterminated\nb = 1\n', "a = [1, 2\n", "= 1\n", "[a\n", 'a = """x', "a = '''x", "a b = 1\n"]:
        check_toml_limits(text)
        with pytest.raises(tomllib.TOMLDecodeError):
            tomllib.loads(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="a.=[]{}\"'#\n ,\\1", max_size=200))
def test_any_text_is_scanned_in_one_pass_without_an_error_of_its_own(text: str) -> None:
    try:
        check_toml_limits(text, TomlLimits(max_nesting=4, max_keys=10, max_key_parts=3, max_array_items=5,
                                           max_string_chars=20))
    except ManifestLimitExceeded:
        pass


def test_default_limits_are_the_documented_constants() -> None:
    assert (DEFAULT_LIMITS.max_bytes, DEFAULT_LIMITS.max_keys, DEFAULT_LIMITS.max_key_parts, DEFAULT_LIMITS.max_nesting,
            DEFAULT_LIMITS.max_array_items, DEFAULT_LIMITS.max_string_chars) == (262_144, 16_384, 64, 64, 4_096, 65_536)
