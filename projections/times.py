"""The one form of a time in the views: fixed-width UTC ISO 8601 with microseconds
(``2026-01-02T03:04:05.000000+00:00``), so that text order is time order and a time typed
by a user (``--as-of``) compares with the recorded ones."""

from __future__ import annotations

import datetime as dt

FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def fixed(t: dt.datetime) -> str:
    """An aware time in the fixed form (a naive one is taken as UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc).strftime(FORMAT)


def fixed_time(timestamp: str) -> str:
    """A journal timestamp (ISO 8601) in the fixed form."""
    # The journal writes UTC as "YYYY-MM-DDTHH:MM:SS[.ffffff]Z": handle that without a datetime.
    if timestamp.endswith("Z") and len(timestamp) in (20, 27) and timestamp[10] == "T":
        return (timestamp[:-1] if len(timestamp) == 27 else timestamp[:-1] + ".000000") + "+00:00"
    return fixed(dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")))
