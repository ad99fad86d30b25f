"""One edit of a core module's binary: export its memory under a name the host chose.

A run counts as ``memory_limit_exceeded`` when the module traps while its memory cannot
grow by another page, which the host can only see through an exported memory. A module
that exports none (or under a name the runner does not look for) would otherwise report
``trap``. So before compiling, the runner adds an export of memory 0 to such a module. The
guest cannot observe its own exports, so its behaviour is unchanged; only the host gains a
handle. The edit touches section framing only (ids and LEB128 sizes, read with bounds
checks); the result is validated again by the compiler.
"""

from __future__ import annotations

__all__ = ["HOST_MEMORY_EXPORT", "with_memory_export"]

HOST_MEMORY_EXPORT = "skill-ledger:memory"
_EXPORT, _MEMORY_KIND = 7, 0x02
_AFTER_EXPORT = frozenset({8, 9, 12, 10, 11})  # start, element, data count, code, data


class BinaryError(ValueError):
    pass


def _uleb(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(5):
        if pos >= end:
            raise BinaryError("unexpected end of a LEB128 integer")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if result >> 32:
                raise BinaryError("integer too large")
            return result, pos
    raise BinaryError("integer representation too long")


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _name(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _leb(len(raw)) + raw


def with_memory_export(data: bytes, name: str = HOST_MEMORY_EXPORT) -> bytes:
    """``data`` with one more export, ``name`` → memory 0 (the caller checks the module has
    a memory and no export of that name)."""
    if data[:8] != b"\x00asm\x01\x00\x00\x00":
        raise BinaryError("not a core module")
    entry = _name(name) + bytes([_MEMORY_KIND]) + _leb(0)
    pos, end = 8, len(data)
    while pos < end:
        start = pos
        section = data[pos]
        size, body = _uleb(data, pos + 1, end)
        if body + size > end:
            raise BinaryError(f"section {section} runs past the end")
        if section == _EXPORT:
            count, items = _uleb(data, body, body + size)
            new_body = _leb(count + 1) + data[items:body + size] + entry
            return data[:start] + bytes([_EXPORT]) + _leb(len(new_body)) + new_body + data[body + size:]
        if section in _AFTER_EXPORT:
            return data[:start] + _export_section(entry) + data[start:]
        pos = body + size
    return data + _export_section(entry)


def _export_section(entry: bytes) -> bytes:
    body = _leb(1) + entry
    return bytes([_EXPORT]) + _leb(len(body)) + body
