"""The unit of work every use case runs in: the journal and the artifact store of one home.

A use case is a small function that receives a :class:`Ledger` and reads as *load → the
aggregate decides → save*: it loads aggregates from the journal (the write side, never a
projection), calls one of their command methods, and saves what they recorded. Everything
one attempt recorded is saved in one transaction; when another writer got there first (an
optimistic-concurrency conflict), :meth:`Ledger.retrying` runs the attempt again on fresh
aggregates (re-read, re-decide), a bounded number of times.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError, OperationalError

from skill_ledger.adapters.journal.rows import chained
from skill_ledger.adapters.journal.sqlite import LedgerApplication, iter_rows, open_journal
from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.blobs import BlobStore
from skill_ledger.adapters.storage.files import ensure_private_dir
from skill_ledger.domain.audit_policy import POLICY_KEY, AuditPolicy
from skill_ledger.domain.codec import decode_event
from skill_ledger.domain.errors import ConcurrencyConflict, NotInstalled, SkillLedgerError, UsageError
from skill_ledger.domain.events import Actor, LedgerAggregate, topics_for_kinds
from skill_ledger.domain.grammars import skill_id as check_skill_id
from skill_ledger.domain.publisher import Publisher
from skill_ledger.domain.skill import Skill
from skill_ledger.domain.trust import TrustStore

TAgg = TypeVar("TAgg", bound=LedgerAggregate)
T = TypeVar("T")

MAX_ATTEMPTS = 25

_decoder = msgspec.json.Decoder()


class Ledger:
    """The journal application, the artifact store and the acting principal of one command
    (or of one long-running loop). Use cases receive it; the CLI opens it through
    :func:`skill_ledger.adapters.usecases.session.ledger_session`."""

    def __init__(self, settings: Settings, *, app: LedgerApplication | None = None) -> None:
        self.settings = settings
        if settings.journal_is_sqlite:
            ensure_private_dir(settings.home)
            settings.journal_path.parent.mkdir(parents=True, exist_ok=True)
        self.app = app or open_journal(settings.journal_url)
        self.blobs = BlobStore(settings.home / "blobs")

    def close(self) -> None:
        self.app.close()

    @property
    def actor(self) -> Actor:
        s = self.settings
        return Actor(s.actor, s.host, s.command, s.os_user, s.os_uid)

    # --- load, save, retry ----------------------------------------------------------------

    def load(self, cls: type[TAgg], key: str) -> TAgg:
        """The aggregate for ``<prefix>:<key>``, or a blank one whose first event opens the stream."""
        aggregate = self.replay(cls.id_for(key))
        return aggregate if aggregate is not None else cls.start(key)  # type: ignore[return-value]

    def replay(self, originator_id: UUID) -> LedgerAggregate | None:
        """The aggregate of one stream (None when the stream is empty): its events, read as plain
        rows and decoded straight into typed events, applied in order. The same as the
        library's ``repository.get`` without a snapshot, at about half the cost on a long stream
        (a registry's stream holds an event per skill installed from it)."""
        aggregate = None
        for version, topic, state in chained(self.app).select_stream(originator_id):
            aggregate = decode_event(topic, state, originator_id, version).mutate(aggregate)
        return aggregate

    def exists(self, cls: type[LedgerAggregate], key: str) -> bool:
        return bool(self.app.recorder.select_events(cls.id_for(key), limit=1))

    def save(self, *aggregates: LedgerAggregate) -> list[int]:
        """Save what the aggregates recorded, in one transaction; the journal positions written."""
        pending = [a for a in aggregates if a.has_pending]
        if not pending:
            return []
        return [r.notification.id for r in self.app.save(*pending)]

    def retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` (load, decide, save) until it commits without a conflict."""
        for n in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except (IntegrityError, OperationalError) as e:
                if isinstance(e, OperationalError) and "locked" not in str(e).lower():
                    raise
                time.sleep(min(0.5, 0.005 * (2 ** min(n, 6))) * random.random())
        raise ConcurrencyConflict(f"gave up after {MAX_ATTEMPTS} concurrent-write conflicts; try again")

    def head(self) -> int:
        """The journal's newest position (0 when it is empty)."""
        return self.app.recorder.max_notification_id() or 0

    # --- the aggregates use cases load ------------------------------------------------------

    def skill(self, skill_id: str) -> Skill:
        """The ``Skill`` of an installed (or once installed) skill; ``usage_error`` for a malformed
        id, ``not_installed`` for one the journal never saw."""
        try:
            check_skill_id(skill_id)
        except SkillLedgerError:
            raise UsageError(f"invalid skill id {skill_id!r}: skill ids use dot-separated [a-z0-9_-] segments",
                             {"skill_id": skill_id}) from None
        if not self.exists(Skill, skill_id):
            raise NotInstalled(f"skill {skill_id} is not installed", {"skill_id": skill_id})
        return self.load(Skill, skill_id)

    def policy(self) -> AuditPolicy:
        return self.load(AuditPolicy, POLICY_KEY)

    def trust_store_for(self, publisher: str) -> TrustStore:
        return self.load(Publisher, publisher).trust_store()

    # --- journal scans (the write side's own indexes are the streams) -------------------------

    def skill_ids(self) -> list[str]:
        """Every skill that ever had an install (from the journal, not a projection)."""
        return sorted(stream.split(":", 1)[1] for stream in self.streams(kinds=["skill.installed"]))

    def streams(self, *, kinds: list[str] | None = None, after: int = 0) -> set[str]:
        """The names (``<prefix>:<key>``) of the streams with events after ``after`` (of these kinds)."""
        topics = topics_for_kinds(kinds) if kinds else ()
        return {_decoder.decode(row.state)["stream"] for row in iter_rows(self.app, after=after, topics=topics)}
