"""Rules about tool schemas that need no I/O: which ``$ref`` values leave the document.

A reference is local when it is a JSON Pointer fragment into the same document (``#``,
``#/$defs/x``). Anything else (``http://``, ``file://``, a relative URI such as ``other.json``,
an ``$id``-relative name) would make the host resolve something outside the signed manifest.
"""

from __future__ import annotations

from typing import Any

REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# Keywords whose value maps *names* to subschemas: a property called "$ref" is not a reference.
NAMED_SUBSCHEMAS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies")
MAX_WALK_NODES = 100_000  # schemas are bounded by the manifest's own caps; this is a safety net


def non_local_refs(schema: Any) -> list[str]:
    """Every reference value in ``schema`` that is not a fragment of the same document, in document
    order (``$ref``, ``$dynamicRef``, ``$recursiveRef``; a non-string value counts as non-local).

    Every object reachable from the schema is treated as a schema (over-reporting is the safe side),
    except that the member names of ``properties`` and the like are names, not keywords."""
    found: list[str] = []
    stack: list[Any] = [schema]
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_WALK_NODES:
            found.append("(schema too large to inspect)")
            break
        if isinstance(node, dict):
            for key in REFERENCE_KEYWORDS:
                if key in node:
                    value = node[key]
                    if not (isinstance(value, str) and value.startswith("#")):
                        found.append(value if isinstance(value, str) else repr(value))
            children: list[Any] = []
            for key, value in node.items():
                if key in REFERENCE_KEYWORDS:
                    continue
                if key in NAMED_SUBSCHEMAS and isinstance(value, dict):
                    children.extend(value.values())
                else:
                    children.append(value)
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return found
