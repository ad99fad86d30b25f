"""``journal_meta``: which journal schema and event encoding a journal was written with, checked
every time a journal is opened, on both backends, before anything is read or written.

* ``schema_version`` ``1``: the tables of the first release (``event_chain`` without a chain
  format: every event is of hash-chain format 1). ``2``: ``event_chain.format`` (and, on
  PostgreSQL, the server-stamped database roles). Opening a schema-1 journal to write migrates
  it to 2 in one transaction: the old events keep format 1 (and verify under its rule), every
  new event is format 2 (``domain.codec``). A read-only open reads schema 1 as it is.
* ``encoding``: ``msgspec-json/1`` (``domain.codec``).

A journal of a newer schema, or of another encoding, is refused (``journal_unsupported``,
exit 9): an older version must not read what it may misread, nor append to it.
"""

from __future__ import annotations

from skill_ledger.domain.errors import JournalUnsupported

JOURNAL_SCHEMA_VERSION = "2"
READABLE_SCHEMAS = ("1", "2")
ENCODING = "msgspec-json/1"


def checked_schema(meta: dict[str, str], *, has_chain: bool, where: str) -> str | None:
    """The schema version of a journal with these ``journal_meta`` rows (None: no journal yet).
    ``has_chain``: the ``event_chain`` table exists (a journal that predates ``journal_meta``
    rows is schema 1). Raises ``JournalUnsupported`` for a newer schema or another encoding."""
    version = meta.get("schema_version")
    if version is None:
        return "1" if has_chain else None
    if version not in READABLE_SCHEMAS:
        newer = version.isdigit() and int(version) > int(JOURNAL_SCHEMA_VERSION)
        raise JournalUnsupported(
            f"the journal at {where} has journal schema {version!r}"
            + (", written by a newer skill-ledger" if newer else ", which no skill-ledger version writes")
            + f"; this version reads schemas {', '.join(READABLE_SCHEMAS)}. Nothing was read or written"
            + (": upgrade skill-ledger to use it" if newer else ""),
            {"journal": where, "schema_version": version, "readable": list(READABLE_SCHEMAS)})
    encoding = meta.get("encoding", ENCODING)
    if encoding != ENCODING:
        raise JournalUnsupported(
            f"the journal at {where} stores events as {encoding!r}; this version reads {ENCODING!r} only. "
            "Nothing was read or written",
            {"journal": where, "encoding": encoding, "readable": [ENCODING]})
    return version
