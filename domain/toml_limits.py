"""Limits on a manifest's TOML text, checked in one linear pass before ``tomllib`` parses it.

``tomllib`` is quadratic in the number of parts of one dotted key (16,000 parts cost
seconds and gigabytes), and everything after it (schema decode, validation, the events
that record a manifest) grows with the number of keys, array elements and the length of
strings. So the text is scanned first, and refused with ``manifest_limits`` when it
exceeds one of the caps of :class:`TomlLimits`; only then does ``tomllib`` see it.

The scanner is a tokenizer, not a validator. It follows ``tomllib``'s own lexing exactly
where that decides what is counted: the four kinds of strings (with their escapes and
closing-quote rules), comments, and where a key stands (at the start of a statement, in
a table header, after ``{`` or ``,`` in an inline table). What it does not understand it
steps over and goes on: ``tomllib`` stops at the first error, and everything before that
point was scanned in the same state ``tomllib`` parsed it in, so the caps bound what
``tomllib`` does either way. A document that is invalid *and* over a cap may therefore be
reported as ``manifest_limits`` rather than ``manifest_parse``.

The cost of the scan is linear in the text; the caps then make ``tomllib``'s work at most
``O(keys x key parts x nesting)`` with small constants (tests/adversarial/test_hostile_manifests.py).
"""

from __future__ import annotations

import re

import msgspec

from .constants import (
    MAX_MANIFEST_ARRAY_ITEMS,
    MAX_MANIFEST_BYTES,
    MAX_MANIFEST_KEY_PARTS,
    MAX_MANIFEST_KEYS,
    MAX_MANIFEST_NESTING,
    MAX_MANIFEST_STRING_CHARS,
)
from .errors import ManifestLimitExceeded

__all__ = ["TomlLimits", "DEFAULT_LIMITS", "check_toml_limits"]


class TomlLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The caps of the lexical scan (``constants.py`` has the values and why)."""

    max_bytes: int = MAX_MANIFEST_BYTES
    max_keys: int = MAX_MANIFEST_KEYS
    max_key_parts: int = MAX_MANIFEST_KEY_PARTS
    max_nesting: int = MAX_MANIFEST_NESTING
    max_array_items: int = MAX_MANIFEST_ARRAY_ITEMS
    max_string_chars: int = MAX_MANIFEST_STRING_CHARS


DEFAULT_LIMITS = TomlLimits()

_WS = re.compile(r"[ \t]*")
_WS_NL_COMMENTS = re.compile(r"(?:[ \t\n]+|#[^\n]*)*")  # what tomllib skips between array elements
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\[\]{}\"'#\n=]+")  # numbers, booleans, dates, inf/nan (and garbage)
_BASIC = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_LITERAL = re.compile(r"'([^'\n]*)'")
# The body ends at the first unescaped """; up to two more quotes belong to the string.
_ML_BASIC = re.compile(r'"""((?:[^"\\]|\\[\s\S]|"(?!""))*)"""("{0,2})')

# scanner states
_STATEMENT, _KEY, _VALUE, _AFTER_VALUE = range(4)


class _Scan:
    """One pass over ``src`` (``\\r\\n`` already folded to ``\\n``, as tomllib does)."""

    def __init__(self, src: str, limits: TomlLimits) -> None:
        self.src = src
        self.n = len(src)
        self.limits = limits
        self.pos = 0
        self.keys = 0
        self.key_parts = 0  # parts of the key being read
        self.in_header = False  # reading a [table] or [[array]] header's key
        self.headers_in_arrays = 0
        self.stack: list[str] = []  # '[' arrays and '{' inline tables open at pos
        self.items: list[int] = []  # elements seen so far in each open array (0 for inline tables)

    # --- errors --------------------------------------------------------------------------

    def _over(self, limit: str, actual: int, maximum: int, what: str, *, at_least: bool = False
              ) -> ManifestLimitExceeded:
        line = self.src.count("\n", 0, self.pos) + 1
        return ManifestLimitExceeded(limit, actual, maximum, f"{what}, line {line}", at_least=at_least)

    # --- tokens --------------------------------------------------------------------------

    def _string(self, *, key: bool) -> bool:
        """A string at ``pos`` (a quoted key only in its one-line forms); ``False`` when there is none."""
        src, pos = self.src, self.pos
        if src.startswith('"""', pos) and not key:
            m = _ML_BASIC.match(src, pos)
            length = (m.end(1) - m.start(1) + len(m.group(2))) if m else 0
            end = m.end() if m else self.n  # unterminated: tomllib stops here
        elif src.startswith("'''", pos) and not key:
            close = src.find("'''", pos + 3)
            if close < 0:
                end, length = self.n, 0
            else:
                end = close + 3
                while end < self.n and end - close < 5 and src[end] == "'":
                    end += 1
                length = end - 3 - (pos + 3)
        elif src.startswith('"', pos) or src.startswith("'", pos):
            m = (_BASIC if src[pos] == '"' else _LITERAL).match(src, pos)
            if m is None:  # unterminated or broken by a newline: tomllib stops in this line
                nl = src.find("\n", pos)
                end, length = (self.n if nl < 0 else nl), 0
            else:
                end, length = m.end(), m.end(1) - m.start(1)
        else:
            return False
        if length > self.limits.max_string_chars:
            raise self._over("string_chars", length, self.limits.max_string_chars,
                             "a quoted key" if key else "a string")
        self.pos = end
        return True

    def _key_part(self) -> None:
        self.keys += 1
        self.key_parts += 1
        if self.key_parts > self.limits.max_key_parts:
            raise self._over("key_parts", self.key_parts, self.limits.max_key_parts,
                             "parts of one dotted key or table header", at_least=True)
        if self.keys > self.limits.max_keys:
            raise self._over("keys", self.keys, self.limits.max_keys,
                             "keys in the document, every dotted part counted", at_least=True)

    def _open(self, bracket: str) -> None:
        self.stack.append(bracket)
        self.items.append(0)
        if len(self.stack) > self.limits.max_nesting:
            raise self._over("nesting", len(self.stack), self.limits.max_nesting,
                             "arrays and inline tables open at once", at_least=True)

    def _array_item(self) -> None:
        self.items[-1] += 1
        if self.items[-1] > self.limits.max_array_items:
            raise self._over("array_items", self.items[-1], self.limits.max_array_items,
                             "elements of one array", at_least=True)

    # --- states --------------------------------------------------------------------------

    def statement(self) -> int:
        """Depth 0, between statements: a key/value pair, a table header, a comment or a blank line."""
        src = self.src
        self.pos = _WS.match(src, self.pos).end()
        if self.pos >= self.n:
            return _STATEMENT
        c = src[self.pos]
        if c == "\n":
            self.pos += 1
            return _STATEMENT
        if c == "#":
            nl = src.find("\n", self.pos)
            self.pos = self.n if nl < 0 else nl
            return _STATEMENT
        if c == "[":
            in_array = src.startswith("[[", self.pos)
            self.pos += 2 if in_array else 1
            if in_array:
                self.headers_in_arrays += 1
                if self.headers_in_arrays > self.limits.max_array_items:
                    raise self._over("array_items", self.headers_in_arrays, self.limits.max_array_items,
                                     "[[array]] table headers in the document", at_least=True)
            self.in_header = True
            self.key_parts = 0
            return _KEY
        self.in_header = False
        self.key_parts = 0
        return _KEY  # a key (or garbage, which tomllib refuses here)

    def key(self) -> int:
        """Key parts separated by dots, then ``=`` (or ``]``/``]]`` in a header)."""
        src = self.src
        if self.stack and self.stack[-1] == "{" and self.key_parts == 0:
            self.pos = _WS.match(src, self.pos).end()
            if src.startswith("}", self.pos):  # an empty inline table
                return self._close()
        while True:
            self.pos = _WS.match(src, self.pos).end()
            m = _BARE_KEY.match(src, self.pos)
            if m is not None:
                if m.end() - m.start() > self.limits.max_string_chars:
                    raise self._over("string_chars", m.end() - m.start(), self.limits.max_string_chars, "a bare key")
                self.pos = m.end()
            elif not self._string(key=True):
                return self._unexpected()
            self._key_part()
            self.pos = _WS.match(src, self.pos).end()
            if not src.startswith(".", self.pos):
                break
            self.pos += 1
        if self.in_header:
            self.in_header = False
            if src.startswith("]", self.pos):
                self.pos += 2 if src.startswith("]]", self.pos) else 1
                return _AFTER_VALUE
            return self._unexpected()
        if src.startswith("=", self.pos):
            self.pos += 1
            return _VALUE
        return self._unexpected()

    def value(self) -> int:
        src = self.src
        in_array = bool(self.stack) and self.stack[-1] == "["
        self.pos = (_WS_NL_COMMENTS if in_array else _WS).match(src, self.pos).end()
        if self.pos >= self.n:
            return _VALUE
        c = src[self.pos]
        if in_array and c == "]":  # an empty array, or after a trailing comma
            return self._close()
        if in_array:
            self._array_item()
        if c == "[":
            self.pos += 1
            self._open("[")
            return _VALUE
        if c == "{":
            self.pos += 1
            self._open("{")
            self.key_parts = 0
            return _KEY
        if self._string(key=False):
            return _AFTER_VALUE
        m = _SCALAR.match(src, self.pos)
        if m is None:
            return self._unexpected()
        self.pos = m.end()
        return _AFTER_VALUE

    def after_value(self) -> int:
        src = self.src
        if not self.stack:
            self.pos = _WS.match(src, self.pos).end()
            if src.startswith("#", self.pos):
                nl = src.find("\n", self.pos)
                self.pos = self.n if nl < 0 else nl
            return _STATEMENT  # a newline, or garbage tomllib refuses
        top = self.stack[-1]
        self.pos = (_WS_NL_COMMENTS if top == "[" else _WS).match(src, self.pos).end()
        if self.pos >= self.n:
            return _AFTER_VALUE
        c = src[self.pos]
        if c == ",":
            self.pos += 1
            if top == "[":
                return _VALUE
            self.key_parts = 0
            return _KEY
        if c == ("]" if top == "[" else "}"):
            return self._close()
        return self._unexpected()

    def _close(self) -> int:
        self.pos += 1
        self.stack.pop()
        self.items.pop()
        return _AFTER_VALUE

    def _unexpected(self) -> int:
        """Not TOML here: tomllib stops at or before this point. Step over one character and
        carry on from a statement, so the scan stays linear and never raises a syntax error."""
        self.pos += 1
        self.key_parts = 0
        self.in_header = False
        if self.stack:
            return _AFTER_VALUE
        return _STATEMENT

    def run(self) -> None:
        handlers = (self.statement, self.key, self.value, self.after_value)
        state = _STATEMENT
        while self.pos < self.n:
            state = handlers[state]()


def check_toml_limits(text: str, limits: TomlLimits = DEFAULT_LIMITS) -> None:
    """Refuse (``manifest_limits``) a TOML text over any cap of ``limits``, in one linear pass.

    The size is checked first, so a huge text costs nothing more; the caller has normally
    checked it already on the bytes (:func:`check_manifest_size`)."""
    if len(text) > limits.max_bytes:  # characters <= UTF-8 bytes
        raise ManifestLimitExceeded("bytes", len(text), limits.max_bytes, "UTF-8 bytes of skill.toml", at_least=True)
    if len(text) * 4 > limits.max_bytes:
        check_manifest_size(len(text.encode("utf-8", "surrogatepass")), limits)
    _Scan(text.replace("\r\n", "\n"), limits).run()


def check_manifest_size(size: int, limits: TomlLimits = DEFAULT_LIMITS) -> None:
    if size > limits.max_bytes:
        raise ManifestLimitExceeded("bytes", size, limits.max_bytes, "UTF-8 bytes of skill.toml")
