"""The vulnerability feed file (``artifact-format.md`` §19.5, addition).

Bytes in, value out: the caller reads the configured file (and maps read failures to
``io``); a schema failure here is ``serialization``. Either way the audit produces no
report, so a broken feed is never taken for "no known vulnerabilities".
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from .errors import SerializationError
from .text import StrictJsonError, ascii_lower, is_strict_hex, loads_strict

__all__ = ["FEED_SCHEMA_VERSION", "FeedEntry", "VulnFeed", "parse_feed"]

FEED_SCHEMA_VERSION = 1
_FEED_KEYS = ("schema_version", "entries")
_ENTRY_KEYS = ("sha256", "id", "reason")


class FeedEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    sha256: str  # lowercased
    id: str | None = None
    reason: str | None = None


class VulnFeed(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    source: str
    entries: tuple[FeedEntry, ...] = ()

    @functools.cached_property
    def _index(self) -> dict[str, list[FeedEntry]]:
        index: dict[str, list[FeedEntry]] = {}
        for e in self.entries:
            index.setdefault(e.sha256, []).append(e)
        return index

    def matches(self, sha256: str) -> list[FeedEntry]:
        """Entries for this digest, in feed order (repeated hashes give several)."""
        return list(self._index.get(ascii_lower(sha256), ()))


def parse_feed(data: bytes, source: str) -> VulnFeed:
    def fail(detail: str) -> SerializationError:
        return SerializationError(f"vulnerability feed '{source}': {detail}")

    try:
        doc = loads_strict(data)
    except StrictJsonError as e:
        raise fail(f"not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise fail("must be a JSON object")
    _check_members(doc, _FEED_KEYS, "feed", fail)
    if "schema_version" not in doc:
        raise fail("missing member 'schema_version'")
    version = doc["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version != FEED_SCHEMA_VERSION:
        raise fail(f"schema_version must be the integer {FEED_SCHEMA_VERSION}")
    if "entries" not in doc:
        raise fail("missing member 'entries'")
    raw_entries = doc["entries"]
    if not isinstance(raw_entries, list):
        raise fail("entries must be an array")
    entries = tuple(_entry(i, e, fail) for i, e in enumerate(raw_entries))
    return VulnFeed(source=source, entries=entries)


def _check_members(obj: dict[str, Any], allowed: tuple[str, ...], where: str, fail: Any) -> None:
    for key in obj:
        if key not in allowed:
            raise fail(f"{where} has unknown member '{key}'")


def _entry(i: int, obj: Any, fail: Any) -> FeedEntry:
    where = f"entries[{i}]"
    if not isinstance(obj, dict):
        raise fail(f"{where} must be an object")
    _check_members(obj, _ENTRY_KEYS, where, fail)
    digest = obj.get("sha256")
    if digest is None and "sha256" not in obj:
        raise fail(f"{where} is missing member 'sha256'")
    if not isinstance(digest, str) or len(digest) != 64 or not is_strict_hex(digest):
        raise fail(f"{where}.sha256 must be 64 hex characters (32 bytes)")
    optional: dict[str, str] = {}
    for key in ("id", "reason"):
        if key in obj:
            if not isinstance(obj[key], str):
                raise fail(f"{where}.{key} must be a string")
            optional[key] = obj[key]
    return FeedEntry(sha256=ascii_lower(digest), **optional)
