"""The per-event checks of ``journal verify`` (``adapters/journal/row_check.py``): the common
case checked at once (``RowChecker._sound``) finds exactly what the checks one by one find, on
intact rows and on every kind of damage, in a whole pass and in a chunk; and the canonical-state
shortcut is the format-2 ``state_bytes`` rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import helpers_ledger as h
import msgspec
import pytest
import tlog_helpers as t
from hypothesis import given, settings
from hypothesis import strategies as st

from skill_ledger.adapters.journal import row_check
from skill_ledger.adapters.journal.row_check import RowChecker, canonical_state
from skill_ledger.adapters.journal.rows import StoredRow, iter_rows
from skill_ledger.domain.codec import GENESIS_HASH, event_hash, exported_event, originator_text, state_bytes

replace = msgspec.structs.replace
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)
_keys = st.sampled_from(["a", "actor2", "b", "details", "s", "streams", "t", "target", "tz", "version", "\u00e9"])


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(_keys, _json, max_size=6), actor=_json, stream=_json,
       timestamp=st.sampled_from(["2026-12-06T10:00:00.5Z", "2026-12-06T10:00:00.5+00:00", "2026-12-06", "Z"]),
       form=st.sampled_from(["canonical", "unsorted", "spaced"]))
def test_the_canonical_state_shortcut_is_the_state_bytes_rule(data: dict[str, Any], actor: Any, stream: Any,
                                                              timestamp: str, form: str) -> None:
    state = {**data, "actor": actor, "stream": stream, "timestamp": timestamp}
    stored = {"canonical": msgspec.json.Encoder(order="sorted").encode, "unsorted": msgspec.json.encode,
              "spaced": lambda s: msgspec.json.format(msgspec.json.encode(s), indent=1)}[form](state)
    decoded = msgspec.json.decode(stored)
    exported = exported_event(1, 1, "skill.installed.v1", decoded, GENESIS_HASH, chain=2, originator_id="x")
    assert canonical_state(decoded, stored) == (state_bytes(exported) == stored)


def rehashed(rows: list[StoredRow], fmt: int) -> list[StoredRow]:
    """The rows with every chain row rewritten in chain format ``fmt`` (as an old ledger, or an
    intruder who knows the recipe, would write them)."""
    heads: dict[str, str] = {}
    out = []
    for row in rows:
        prev = heads.get(row.originator_id, GENESIS_HASH)
        exported = exported_event(row.position, row.originator_version, row.topic, msgspec.json.decode(row.state),
                                  prev, chain=fmt, originator_id=originator_text(row.originator_id))
        heads[row.originator_id] = digest = event_hash(exported)
        out.append(replace(row, prev_hash=prev, hash=digest, chain_format=fmt))
    return out


def _state(change: Callable[[dict[str, Any]], Any], *, encode: Callable[[Any], bytes] = msgspec.json.encode
           ) -> Callable[[StoredRow], StoredRow]:
    def edit(row: StoredRow) -> StoredRow:
        state = msgspec.json.decode(row.state)
        return replace(row, state=encode(change(state) or state))
    return edit


def _forged(row: StoredRow) -> StoredRow:
    """Spaced state bytes with a hash recomputed over them as they are (not canonical)."""
    spaced = msgspec.json.format(row.state, indent=1)
    exported = exported_event(row.position, row.originator_version, row.topic, msgspec.json.decode(spaced),
                              row.prev_hash or "", chain=2, originator_id=originator_text(row.originator_id))
    return replace(row, state=spaced, hash=event_hash(exported))


DAMAGE: dict[str, Callable[[StoredRow], StoredRow | None]] = {
    "intact": lambda r: r,
    "deleted": lambda r: None,
    "spaced": lambda r: replace(r, state=msgspec.json.format(r.state, indent=1)),
    "unsorted": _state(lambda s: dict(reversed(s.items()))),
    "plus_zero": _state(lambda s: s.update(timestamp=s["timestamp"].replace("Z", "+00:00"))),
    "no_stream": _state(lambda s: s.pop("stream")),
    "stream_number": _state(lambda s: s.update(stream=7)),
    "no_timestamp": _state(lambda s: s.pop("timestamp")),
    "added_member": _state(lambda s: s.update(zzz=1), encode=msgspec.json.Encoder(order="sorted").encode),
    "not_object": lambda r: replace(r, state=b"[1]"),
    "not_json": lambda r: replace(r, state=b"{"),
    "forged_hash": _forged,
    "unknown_topic": lambda r: replace(r, topic="skill.renamed.v1"),
    "topic_version": lambda r: replace(r, topic=r.topic[:-1] + "9"),
    "other_stream": lambda r: replace(r, originator_id="0" * 32, chain_originator_id="0" * 32),
    "not_uuid": lambda r: replace(r, originator_id="zz", chain_originator_id="zz"),
    "version": lambda r: replace(r, originator_version=r.originator_version + 1),
    "chain_row": lambda r: replace(r, chain_originator_version=(r.chain_originator_version or 0) + 1),
    "prev_hash": lambda r: replace(r, prev_hash="1" * 64),
    "hash": lambda r: replace(r, hash="2" * 64),
    "hash_upper": lambda r: replace(r, hash=(r.hash or "").upper()),
    "no_chain": lambda r: replace(r, prev_hash=None, hash=None, chain_originator_id=None,
                                  chain_originator_version=None),
    "format_1": lambda r: replace(r, chain_format=1),
    "format_3": lambda r: replace(r, chain_format=3),
    "format_text": lambda r: replace(r, chain_format="2"),
    "format_real": lambda r: replace(r, chain_format=2.0),
}


def findings(rows: list[StoredRow], *, quick: bool, start: int = 0) -> dict[str, Any]:
    """Everything a checker records over ``rows[start:]`` (a chunk when ``start``)."""
    checker = RowChecker(1 if not start else None, links_known=not start)
    if not quick:
        checker._sound = lambda row, state: False  # type: ignore[method-assign]
    results = [checker.check(row) for row in rows[start:]]
    return {"results": results, "problems": checker.problems, "heads": checker.heads, "firsts": checker.firsts,
            "formats": checker.first_of_format, "newest": repr(checker.newest_format), "count": checker.count,
            "first": checker.first, "last": checker.last}


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[StoredRow]:
    home = tmp_path_factory.mktemp("row-check") / "home"
    t.build_journal(home, steps=2)
    ledger = h.ledger_for(home)
    try:
        return list(iter_rows(ledger.app))
    finally:
        ledger.close()


@pytest.mark.parametrize("fmt", [1, 2])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_the_common_case_at_once_finds_what_the_checks_one_by_one_find(rows: list[StoredRow], damage: str,
                                                                       fmt: int) -> None:
    base = rows if fmt == 2 else rehashed(rows, 1)
    assert len(base) > 20
    for at in (1, 5, len(base) // 2, len(base) - 1):  # a stream's first event, later ones, the last
        edited = [DAMAGE[damage](row) if i == at else row for i, row in enumerate(base)]
        damaged = [row for row in edited if row is not None]
        for start in (0, 3, at):
            one_by_one = findings(damaged, quick=False, start=start)
            assert findings(damaged, quick=True, start=start) == one_by_one, (damage, at, start)
            if damage == "intact" and start == 0:
                assert one_by_one["problems"] == []
    row_check._is_bound.cache_clear()  # nothing remembered from one test to the next


def test_damage_is_found_by_the_checks_one_by_one(rows: list[StoredRow]) -> None:
    """The equivalence above is not vacuous: each damage is a finding."""
    for damage in sorted(set(DAMAGE) - {"intact", "format_real"}):
        edited = [DAMAGE[damage](row) if i == 5 else row for i, row in enumerate(rows)]
        assert findings([r for r in edited if r is not None], quick=True)["problems"], damage


@pytest.mark.parametrize("fmt", [1, 2])
def test_intact_events_take_the_common_case_but_each_streams_first(rows: list[StoredRow], fmt: int) -> None:
    base = rows if fmt == 2 else rehashed(rows, 1)
    checker = RowChecker()
    one_by_one: list[int] = []
    check_each = checker._check_each

    def counted(row: StoredRow, state: Any) -> Any:
        one_by_one.append(row.position)
        return check_each(row, state)

    checker._check_each = counted  # type: ignore[method-assign]
    for row in base:
        checker.check(row)
    assert not checker.problems
    assert 0 < len(one_by_one) <= len({r.originator_id for r in base}) + 1  # + the first of the format
