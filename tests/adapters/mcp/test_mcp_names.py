"""MCP tool names and client actors (``adapters/mcp/names.py``)."""

from __future__ import annotations

import re
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from skill_ledger.adapters.mcp.names import client_actor, tool_names

VALID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def test_a_tool_id_becomes_its_name_with_dots_and_colons_as_underscores():
    assert tool_names([("examples.hello", "examples.echo"), ("acme.x", "acme.fetch:v2")]) == {
        ("examples.hello", "examples.echo"): "examples_echo",
        ("acme.x", "acme.fetch:v2"): "acme_fetch_v2",
    }


def test_two_skills_declaring_one_tool_id_both_lose_the_bare_name():
    names = tool_names([("acme.a", "acme.echo"), ("acme.b", "acme.echo")])
    a, b = names[("acme.a", "acme.echo")], names[("acme.b", "acme.echo")]
    assert a != b and "acme_echo" not in (a, b)
    assert a.startswith("acme_echo_") and b.startswith("acme_echo_") and all(VALID.match(n) for n in (a, b))


def test_a_name_never_moves_to_another_skill_when_a_newcomer_declares_the_same_id():
    """The confused-deputy case: a client that knew `acme_echo` as skill A's tool must not
    start calling skill B's after B is installed; the bare name disappears instead."""
    before = tool_names([("acme.a", "acme.echo")])
    after = tool_names([("acme.a", "acme.echo"), ("zzz.b", "acme.echo")])
    assert before[("acme.a", "acme.echo")] == "acme_echo"
    assert "acme_echo" not in after.values()


def test_ids_differing_only_in_dot_or_underscore_do_not_share_a_name():
    names = tool_names([("acme.s", "acme.a_b"), ("acme.s", "acme.a.b")])
    assert len(set(names.values())) == 2


def test_a_long_tool_id_is_cut_with_a_hash_and_stays_stable():
    long_id = "acme." + "x" * 120
    first = tool_names([("acme.s", long_id)])[("acme.s", long_id)]
    assert VALID.match(first) and len(first) == 64
    assert tool_names([("acme.s", long_id), ("acme.t", "acme.other")])[("acme.s", long_id)] == first


def test_a_base_name_that_looks_like_a_suffixed_one_still_gets_a_unique_name():
    colliding = tool_names([("acme.a", "acme.echo"), ("acme.b", "acme.echo")])
    suffixed = colliding[("acme.a", "acme.echo")]  # acme_echo_<8 hex>
    decoy_id = suffixed.replace("acme_", "acme.", 1)  # a tool id whose base name is exactly that
    names = tool_names([("acme.a", "acme.echo"), ("acme.b", "acme.echo"), ("acme.c", decoy_id)])
    assert len(set(names.values())) == 3 and all(VALID.match(n) for n in names.values())


IDS = st.text(alphabet=string.ascii_lowercase + string.digits + "._-:", min_size=1, max_size=150)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a.s", "b.s", "c.s"]), IDS), max_size=30))
def test_names_are_always_valid_unique_and_independent_of_order(keys):
    names = tool_names(keys)
    assert set(names) == set(keys)
    assert all(VALID.match(n) for n in names.values())
    assert len(set(names.values())) == len(names)
    assert tool_names(list(reversed(keys))) == names


def test_the_client_actor_is_bounded_and_sanitised():
    assert client_actor("claude-ai") == "mcp:claude-ai"
    assert client_actor("Cursor 1.2 (beta)") == "mcp:Cursor_1.2__beta_"
    assert client_actor(None) == client_actor("") == client_actor("   ") == "mcp:unknown"
    assert client_actor("x" * 500) == "mcp:" + "x" * 64
    assert client_actor("evil\nactor\x00:admin") == "mcp:evil_actor__admin"
