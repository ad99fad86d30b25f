"""The vulnerability feed file (artifact-format.md §19.5)."""

from __future__ import annotations

import pytest

from skill_ledger.domain.errors import SerializationError
from skill_ledger.domain.vulnfeed import FeedEntry, parse_feed

H1 = "ab" * 32
H2 = "0f" * 32


def test_parse_and_match() -> None:
    data = (
        '{"schema_version": 1, "entries": ['
        f'{{"sha256": "{H1.upper()}", "id": "GHSA-1", "reason": "bad"}},'
        f'{{"sha256": "{H2}"}},'
        f'{{"sha256": "{H1}", "id": "CVE-2"}}'
        "]}"
    ).encode()
    feed = parse_feed(data, "/feeds/v.json")
    assert feed.source == "/feeds/v.json"
    assert feed.entries == (
        FeedEntry(sha256=H1, id="GHSA-1", reason="bad"),
        FeedEntry(sha256=H2),
        FeedEntry(sha256=H1, id="CVE-2"),
    )
    assert [e.id for e in feed.matches(H1)] == ["GHSA-1", "CVE-2"]  # repeated hashes allowed, feed order
    assert feed.matches(H1.upper()) == feed.matches(H1)
    assert feed.matches(H2) == [FeedEntry(sha256=H2)]
    assert feed.matches("cd" * 32) == []


def test_empty_entries() -> None:
    feed = parse_feed(b'{"entries": [], "schema_version": 1}', "f")
    assert feed.entries == () and feed.matches(H1) == []


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"[]",
        b'{"schema_version": 1}',
        b'{"entries": []}',
        b'{"schema_version": 2, "entries": []}',
        b'{"schema_version": 1.0, "entries": []}',
        b'{"schema_version": true, "entries": []}',
        b'{"schema_version": "1", "entries": []}',
        b'{"schema_version": 1, "entries": {}}',
        b'{"schema_version": 1, "entries": [], "extra": 0}',
        b'{"schema_version": 1, "schema_version": 1, "entries": []}',
        b'{"schema_version": 1, "entries": ["ab"]}',
        b'{"schema_version": 1, "entries": [{}]}',
        b'{"schema_version": 1, "entries": [{"id": "x"}]}',
        b'{"schema_version": 1, "entries": [{"sha256": null}]}',
        b'{"schema_version": 1, "entries": [{"sha256": "abcd"}]}',
        ('{"schema_version": 1, "entries": [{"sha256": "' + "ab" * 33 + '"}]}').encode(),
        ('{"schema_version": 1, "entries": [{"sha256": "' + "zz" * 32 + '"}]}').encode(),
        ('{"schema_version": 1, "entries": [{"sha256": " ' + "ab" * 31 + 'a"}]}').encode(),
        ('{"schema_version": 1, "entries": [{"sha256": "' + H1 + '", "id": 5}]}').encode(),
        ('{"schema_version": 1, "entries": [{"sha256": "' + H1 + '", "reason": null}]}').encode(),
        ('{"schema_version": 1, "entries": [{"sha256": "' + H1 + '", "severity": "high"}]}').encode(),
        ('{"schema_version": 1, "entries": [{"sha256": "' + H1 + '", "id": "a", "id": "b"}]}').encode(),
        b'{"schema_version": 1, "entries": [], "x": Infinity}',
        '{"schema_version": 1, "entries": []}'.encode("utf-16"),
    ],
)
def test_rejected_feeds(doc: bytes) -> None:
    with pytest.raises(SerializationError) as info:
        parse_feed(doc, "/feeds/v.json")
    assert "/feeds/v.json" in info.value.message
