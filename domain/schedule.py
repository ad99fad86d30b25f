"""Durations for periodic work (``reaudit --interval``): ``30s``, ``15m``, ``6h``, ``1d`` or
a plain number of seconds; ``0`` disables repetition."""

from __future__ import annotations

import re

from .errors import UsageError

_DURATION = re.compile(r"([0-9]{1,9})(s|m|h|d)?")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
MAX_SECONDS = 999_999_999  # about 31 years: anything longer is a typo (and beyond what a wait can express)


def parse_duration(text: str) -> int:
    """Seconds; ``UsageError`` for anything else (no fractions, no negatives, no mixed units)."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise UsageError(f"invalid duration {text!r}: use a number with s, m, h or d (e.g. 30s, 15m, 6h), or 0",
                         {"value": text})
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_SECONDS:
        raise UsageError(f"duration {text!r} is too long; at most 999999999 seconds (e.g. 30s, 15m, 6h)",
                         {"value": text})
    return seconds
