"""Whether each tool schema of a manifest compiles for the host: the facts the audit's
``tool_schema_compiles`` check and ``skills package build`` take (``domain.audit_tools``).

A schema is compiled exactly as the runner will compile it (``adapters.schemas.compile_schema``:
jsonschema-rs, offline, linear-time patterns), so what passes here also compiles at run time.
A schema that references outside its own document is not compiled at all: the audit fails it
on ``tool_schema_references``. Results are cached in-process by a digest of the schema's value,
so a re-audit of many versions that share schemas compiles each one once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import msgspec

from skill_ledger.adapters.schemas import SchemaInvalid, compile_schema
from skill_ledger.domain.audit_tools import SCHEMA_MEMBERS, SchemaFacts
from skill_ledger.domain.manifest import Manifest, tool_ids
from skill_ledger.domain.schemas import non_local_refs

__all__ = ["CACHE_SIZE", "clear_cache", "schema_facts", "schema_problem"]

CACHE_SIZE = 4096

_cache: OrderedDict[bytes, str | None] = OrderedDict()
_lock = threading.Lock()
_encoder = msgspec.msgpack.Encoder(order="sorted")  # keeps NaN, null, 1 and 1.0 apart


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def schema_facts(manifest: Manifest) -> tuple[SchemaFacts, ...]:
    """One fact per tool and schema member, in manifest order."""
    facts = []
    for tool_id, tool in zip(tool_ids(manifest), manifest.entrypoints.tools):
        for member in SCHEMA_MEMBERS:
            schema = getattr(tool, member)
            if non_local_refs(schema):
                facts.append(SchemaFacts(tool_id=tool_id, member=member, compiled=False))
            else:
                facts.append(SchemaFacts(tool_id=tool_id, member=member, compiled=True, problem=schema_problem(schema)))
    return tuple(facts)


def schema_problem(schema: Any) -> str | None:
    """``None`` when ``schema`` compiles for the host, else one line saying why not."""
    try:
        key = hashlib.sha256(_encoder.encode(schema)).digest()
    except (TypeError, ValueError, OverflowError):  # not a JSON value: nothing to cache it by
        return _compile(schema)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    problem = _compile(schema)
    with _lock:
        _cache[key] = problem
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return problem


REGEX_NOTE = ("patterns run on a linear-time engine (no backtracking): back-references and look-around "
              "cannot be used")


def _compile(schema: Any) -> str | None:
    try:
        compile_schema(schema)
    except SchemaInvalid as e:
        # jsonschema-rs reports a pattern its engine refuses as the format check it fails
        return f"{e.problem} ({REGEX_NOTE})" if 'is not a "regex"' in e.problem else e.problem
    return None
