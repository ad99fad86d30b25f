"""Text and encoding primitives of ``artifact-format.md`` §1.

Python's own helpers are subtly wrong for this format (``str.strip`` strips
U+001C-U+001F, ``str.lower`` maps the Kelvin sign to ``k``, ``bytes.fromhex``
accepts spaces, ``json.loads`` auto-detects UTF-16), so the format's exact
definitions live here and every other module uses them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from .constants import MAX_EVENT_DETAIL_TEXT_BYTES, MAX_EVENT_DETAILS_BYTES, MAX_EVENT_TEXT_BYTES

# §1.1 WS: U+0009-U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
# U+2029, U+202F, U+205F, U+3000.
WS = (
    "".join(chr(c) for c in range(0x09, 0x0E))
    + "\u0020\u0085\u00a0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_ASCII_WS = b" \t\n\f\r"  # ascii_trim: 0x0B is deliberately not removed

_HEX_RE = re.compile(r"[0-9a-fA-F]*")
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_LOWER_HEX64 = re.compile(r"[0-9a-f]{64}")
_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def trim(s: str) -> str:
    return s.strip(WS)


def ascii_trim(b: bytes) -> bytes:
    return b.strip(_ASCII_WS)


def ascii_lower(s: str) -> str:
    return s.translate(_UPPER)


def only_chars(s: str, allowed: frozenset[str]) -> bool:
    return all(c in allowed for c in s)


def charset(spec: str) -> frozenset[str]:
    """Expand a tiny class spec such as ``"a-z0-9._-"`` into an ASCII character set."""
    out: set[str] = set()
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            out.update(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            out.add(spec[i])
            i += 1
    return frozenset(out)


def is_strict_hex(s: str) -> bool:
    return len(s) % 2 == 0 and _HEX_RE.fullmatch(s) is not None


def strict_hex_decode(s: str) -> bytes | None:
    if not is_strict_hex(s):
        return None
    return bytes.fromhex(s)


def strict_b64_decode(s: str) -> bytes | None:
    """Canonical RFC 4648 base64 with padding, or ``None``."""
    if len(s) % 4 != 0 or _B64_RE.fullmatch(s) is None:
        return None
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(raw).decode("ascii") != s:
        return None
    return raw


def b64encode(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def is_sha256_hex(s: object) -> bool:
    return isinstance(s, str) and _LOWER_HEX64.fullmatch(s) is not None


# --- strict JSON (§1.3) ----------------------------------------------------------


class StrictJsonError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise StrictJsonError(f"invalid JSON literal {name}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise StrictJsonError(f"duplicate member {k!r}")
        out[k] = v
    return out


def _keep_last(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return dict(pairs)


def loads_strict(data: bytes | str, *, reject_duplicates: bool = True) -> Any:
    """Strict UTF-8, RFC 8259 only (no NaN/Infinity), optionally no duplicate members.

    Raises :class:`StrictJsonError` with the parser's text.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise StrictJsonError(f"not valid UTF-8: {e}") from None
    else:
        text = data
    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicates if reject_duplicates else _keep_last,
        )
    except StrictJsonError:
        raise
    except (json.JSONDecodeError, RecursionError) as e:
        raise StrictJsonError(str(e)) from None


def dumps_pretty(value: Any) -> str:
    """§1.3 pretty JSON: 2-space indent, raw UTF-8, no trailing newline."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def is_exact_int(v: object) -> bool:
    """An integer that is not a bool (a float, even 1.0, never counts)."""
    return isinstance(v, int) and not isinstance(v, bool)


# --- bounded outside text (event fields, error messages) ------------------------------


def bound_text(s: str, limit: int) -> str:
    """``s`` when its UTF-8 form has at most ``limit`` bytes; else its longest prefix that fits
    with a visible marker, ``…[truncated N bytes]`` (N: the bytes left out), ``limit`` bytes in all.

    A prefix never ends inside a character; ``limit`` must leave room for the marker (>= 64)."""
    if len(s) * 4 <= limit:  # a character is at most 4 bytes: nothing to measure
        return s
    data = s.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return s
    room = limit - len(_marker(len(data)).encode("utf-8"))
    kept = data[:room].decode("utf-8", "ignore")  # drops a character cut in half
    return kept + _marker(len(data) - len(kept.encode("utf-8", "surrogatepass")))


def _marker(removed: int) -> str:
    return f"…[truncated {removed} bytes]"


def bound_strings(value: Any, limit: int, _depth: int = 0) -> Any:
    """A copy of a JSON-like value whose every string (dict keys included) is bounded by
    :func:`bound_text`. Containers nested deeper than 32 levels become a marker string."""
    if isinstance(value, str):
        return bound_text(value, limit)
    if isinstance(value, dict):
        if _depth >= 32:
            return "…[nested too deeply]"
        return {(bound_text(k, limit) if isinstance(k, str) else k): bound_strings(v, limit, _depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if _depth >= 32:
            return "…[nested too deeply]"
        items = [bound_strings(v, limit, _depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return value


def bound_details(details: dict[str, Any], text_limit: int, total_limit: int) -> dict[str, Any]:
    """Event or error details with every string bounded (``text_limit`` bytes) and at most
    ``total_limit`` bytes as compact JSON: members are kept in order while they fit, and the
    members left out are named by count under the key ``"…"``."""
    import msgspec  # here, not at the top: errors import this module, and `skills --version` imports errors

    bounded = bound_strings(details, text_limit)
    size = len(msgspec.json.encode(bounded))
    if size <= total_limit:
        return bounded  # type: ignore[no-any-return]
    out: dict[str, Any] = {}
    used, room = 2, total_limit - 96  # braces, and room for the marker member
    for key, value in bounded.items():
        cost = len(msgspec.json.encode({key: value})) - 1  # one member and its comma
        if used + cost > room:
            continue
        out[key] = value
        used += cost
    left = len(bounded) - len(out)
    out["…"] = f"[truncated: {left} members left out, {size} bytes in all]"
    return out


def event_text(text: str) -> str:
    """A message, reason, source or other outside text as an event records it (and an error
    carries it): at most ``MAX_EVENT_TEXT_BYTES``."""
    return bound_text(text, MAX_EVENT_TEXT_BYTES)


def event_details(details: dict[str, Any]) -> dict[str, Any]:
    """A details object as an event records it: each string at most ``MAX_EVENT_DETAIL_TEXT_BYTES``,
    the whole at most ``MAX_EVENT_DETAILS_BYTES`` as compact JSON."""
    return bound_details(details, MAX_EVENT_DETAIL_TEXT_BYTES, MAX_EVENT_DETAILS_BYTES)
