"""When a worker process may be a fork of this one instead of a new interpreter (the full
verify's chunks, the compliance report's ranges of skills): a fork starts in milliseconds (the
modules are loaded), a new interpreter in a few hundred."""

from __future__ import annotations

import os
import sys
import threading


def can_fork(url: str) -> bool:
    """Whether a worker can be a fork of this process: on Linux, for a SQLite journal (its
    connections here are idle and never used by the child, which opens its own), and only
    while this process runs no other thread (a fork copies no thread, but every lock one held)."""
    return (sys.platform.startswith("linux") and hasattr(os, "fork") and url.startswith("sqlite://")
            and threading.active_count() == 1)
