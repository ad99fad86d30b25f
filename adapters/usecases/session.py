"""A command's session with the ledger: open it, run one use case, then bring the
projections up to date (read-your-writes), even when the use case failed after
recording something (a rejection, a quarantine)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from skill_ledger.adapters.readmodel.views import catch_up_after
from skill_ledger.adapters.settings import Settings
from skill_ledger.domain.errors import SkillLedgerError

from .unit_of_work import Ledger

Notify = Callable[[str], None]


@contextlib.contextmanager
def ledger_session(settings: Settings, notify: Notify | None = None) -> Iterator[Ledger]:
    ledger = Ledger(settings)
    try:
        yield ledger
    finally:
        try:
            catch_up_after(ledger, notify=notify)
        except Exception as e:  # noqa: BLE001 - the command's outcome matters more; the next read retries
            if notify:
                message = e.message if isinstance(e, SkillLedgerError) else f"{type(e).__name__}: {e}"
                notify(f"warning: projections not caught up yet ({message}); the next read retries")
        finally:
            ledger.close()
