"""TEST-ONLY crash hook: kill this process at a named point, to test crash safety.

``crash_point("ledger.after_save")`` does nothing unless the environment variable
``SKILLS_TEST_CRASH_AT`` equals the point's name; then the process SIGKILLs itself (no
``finally`` blocks, no atexit, no flushing: what a power cut or an OOM kill leaves
behind). ``SKILLS_TEST_CRASH_AFTER=N`` (default 1) crashes on the Nth time the point is
reached in this process, e.g. between the 2nd and 3rd batch of a rebuild.

It lives with the tests: ``crash_driver.py`` wraps the real functions with these points, so
production code carries no test hooks.
"""

from __future__ import annotations

import os
import signal

CRASH_AT_ENV = "SKILLS_TEST_CRASH_AT"
CRASH_AFTER_ENV = "SKILLS_TEST_CRASH_AFTER"

_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_AT_ENV) != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    try:
        after = int(os.environ.get(CRASH_AFTER_ENV) or "1")
    except ValueError:
        after = 1
    if _hits[name] >= after:
        os.kill(os.getpid(), signal.SIGKILL)


def hits(name: str) -> int:
    """How often ``name`` was reached while armed (for tests of the hook itself)."""
    return _hits.get(name, 0)
