"""The report's first pass over the journal: everything but the skill streams.

The journal is read once in position order up to the window end (then only its checkpoints:
a later checkpoint can cover the window). Each stream is classified by its first row the pass
meets: a ``skill:<id>`` stream (its name is the stream its id is derived from) is only
registered, for the second pass (``skills.py``), which folds one skill at a time; every
other row is decoded and folded here: publisher keys, revocations, the audit policy,
rejected artifacts, checkpoints, and events of streams the report does not know. The pass
also counts the window and keeps the few rows the scope names (the window's first and last
events, the last event up to its end).

Publisher keys and revocations are kept in the spool, and entries and findings go there as
they are met; memory holds the audit policy versions in force, the publishers that ever had a
key allowlisted, and the skill streams met (an id and a count each). A known kind whose data the fold cannot use, or a kind it does
not know, is carried as what it is (kind, time, actor, position, hash) and changes no state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from skill_ledger.domain.events import stream_uuid
from skill_ledger.domain.policy import PolicyValues, policy_to_dict

from .events import Event, Row, decode
from .model import FINDING_KINDS, Actor, Checkpoint, CitedEvent, PolicyVersion, Rejection, TimelineEntry
from .rules import FindingDraft, policy_changes
from .spool import Spool
from .state import (
    JournalFacts,
    KeyAct,
    KeyState,
    RevocationState,
    int_of,
    registry_details,
    scalar_details,
    secret_details,
    text_of,
)
from .text import summary_line

KIND_INDEX = {k: i for i, k in enumerate(FINDING_KINDS)}
_SHARED_STREAMS = ("policy:", "journal:")  # they concern every skill: kept by every filter


class Selection:
    """The ``--skill``/``--publisher`` filters. A skill is in when its id is selected (or no id
    is) and, with publishers given, one of its versions is signed for one of them; a version,
    entry or finding is in when its skill is and its publisher (when it has one) is selected."""

    def __init__(self, skills: set[str], publishers: set[str]) -> None:
        self.skills, self.publishers = skills, publishers
        self.unfiltered = not skills and not publishers

    def skill_wanted(self, skill_id: str) -> bool:
        return not self.skills or skill_id in self.skills

    def publisher_in(self, publisher: str | None) -> bool:
        return not self.publishers or publisher is None or publisher in self.publishers

    def attributed(self, skill_id: str | None, publisher: str | None) -> bool:
        """An event naming (maybe) a skill and a publisher; unattributed ones only when unfiltered."""
        if self.unfiltered:
            return True
        if self.skills and skill_id not in self.skills:
            return False
        return not self.publishers or publisher in self.publishers


class Context:
    """What both passes share: the window, the filters, the spool, and the builders of the
    report's small structs (actors are shared: distinct actors are few)."""

    def __init__(self, *, since: int | None, until: int, selection: Selection, spool: Spool) -> None:
        self.since, self.until, self.selection, self.spool = since, until, selection, spool
        self._actors: dict[tuple[Any, ...], Actor] = {}

    def in_window(self, position: int) -> bool:
        return self.since is None or position > self.since

    def actor(self, a: Any) -> Actor:
        if type(a) is Actor:  # the typed decoders' (events.py)
            return a
        if not isinstance(a, dict):
            a = {}
        key = (a.get("principal"), a.get("host"), a.get("command"), a.get("os_user"), a.get("os_uid"))
        found = self._actors.get(key)
        if found is None:
            if len(self._actors) > 4096:  # never let a hostile journal grow this
                self._actors.clear()
            os_uid = key[4] if type(key[4]) is int else None
            found = self._actors[key] = Actor(principal=str(key[0] or ""), host=str(key[1] or ""),
                                              command=str(key[2] or ""),
                                              os_user=None if key[3] is None else str(key[3]), os_uid=os_uid)
        return found

    def ref(self, e: Event) -> CitedEvent:
        return CitedEvent(position=e.position, hash=e.hash, kind=e.kind, recorded_at=e.recorded_at, stream=e.stream,
                          actor=self.actor(e.actor))

    def entry(self, e: Event, *, version: str | None = None, reason: str | None = None,
              reason_code: str | None = None, details: dict[str, Any] | None = None) -> TimelineEntry:
        return TimelineEntry(position=e.position, hash=e.hash, recorded_at=e.recorded_at, stream=e.stream,
                             actor=self.actor(e.actor), kind=e.kind, version=version, reason=reason,
                             reason_code=reason_code, summary=summary_line(e.kind, e.data), details=details or {})

    def generic(self, e: Event) -> TimelineEntry:
        d = e.data
        return self.entry(e, version=text_of(d, "version"), reason=text_of(d, "reason"),
                          reason_code=text_of(d, "reason_code"))

    def finding(self, draft: FindingDraft, cite: Callable[[CitedEvent], Any] | None = None) -> None:
        self.spool.finding(KIND_INDEX[draft.kind], draft.finish(cite or self.spool.cite))


Handler = Callable[[Event, dict[str, Any], bool], bool]


class GlobalFold:
    """Feed rows in position order with :meth:`feed` (up to the window end) and then
    :meth:`feed_checkpoint` (checkpoints after it); read the state afterwards."""

    def __init__(self, ctx: Context, *, watch_position: int | None = None) -> None:
        self.ctx = ctx
        self.watch_position = watch_position  # journal verify's first bad position: cited by its finding
        self.watched: Row | None = None
        self.last_position = 0
        self.last_row: Row | None = None  # the newest event up to the window end
        self.last_content: Row | None = None  # ... of a kind other than journal.checkpoint
        self.window_first: Row | None = None
        self.window_last: Row | None = None
        self.window_count = 0
        # the skill streams met (their ids are in the spool): originator id -> rows up to the window end
        self.skill_streams: dict[str, int] = {}
        self.allowlisting_publishers: set[str] = set()  # publishers with any key ever allowlisted
        self.policy_values: dict[str, Any] = policy_to_dict(PolicyValues())
        self.policy_versions: list[PolicyVersion] = [PolicyVersion(
            version=0, values=dict(self.policy_values), changed=[], position=None, hash=None, recorded_at=None,
            actor=None, reason=None)]
        # the checkpoint covering the most events (the newest one, as checkpoints are made)
        self.checkpoint: tuple[Checkpoint, CitedEvent] | None = None
        self._checkpoint_kinds: dict[str, bool] = {}
        self._handlers: dict[str, Handler] = {
            "publisher.key_allowlisted": self._allowlisted,
            "publisher.key_pinned": self._pinned,
            "publisher.key_revoked": self._revoked,
            "policy.changed": self._policy_changed,
            "artifact.rejected": self._rejected,
            "journal.checkpoint": self._checkpoint,
            "secret.set": self._secret,
            "secret.removed": self._secret,
            "registry.added": self._registry,
            "registry.removed": self._registry,
            "registry.metadata_trusted": self._registry,
            "registry.target_installed": self._registry,
            "registry.update_refused": self._registry_refused,
        }

    # --- driving -------------------------------------------------------------------------

    def feed(self, row: Row) -> None:
        position = row.position
        if not isinstance(position, int) or position <= self.last_position:
            raise ValueError(f"events must come in increasing position order: {position!r} after {self.last_position}")
        self.last_position = position
        if position == self.watch_position:
            self.watched = row
        self.last_row = row
        if not self._is_checkpoint(row.topic):
            self.last_content = row
        in_window = self.ctx.in_window(position)
        if in_window:
            self.window_count += 1
            if self.window_first is None:
                self.window_first = row
            self.window_last = row
        streams = self.skill_streams
        oid = row.originator_id
        if oid in streams:
            streams[oid] += 1
            return  # the second pass folds it
        e = decode(row)
        if e.stream.startswith("skill:") and stream_uuid(e.stream).hex == oid:
            streams[oid] = 1
            self.ctx.spool.skill(e.stream[6:], oid)
            return
        handler = self._handlers.get(e.kind)
        if handler is None or not handler(e, e.data, in_window):
            if in_window:
                self._generic(e)

    def feed_all(self, rows: Iterable[Row]) -> None:
        """:meth:`feed` each row. A row of a skill stream already met (nine rows in ten) is only
        counted, as ``feed`` does, without leaving this loop: over a million events the calls
        and attribute writes of ``feed`` were a fifth of the report's first pass. (A failed
        report leaves the counters behind: nothing reads them then.)"""
        streams, checkpoint_kinds = self.skill_streams, self._checkpoint_kinds
        since, watch = self.ctx.since, self.watch_position
        last_position, last_row, last_content = self.last_position, self.last_row, self.last_content
        window_first, window_last, window_count = self.window_first, self.window_last, self.window_count
        for row in rows:
            position, oid = row.position, row.originator_id
            n = streams.get(oid)
            if (n is None or checkpoint_kinds.get(row.topic) is not False or type(position) is not int
                    or position <= last_position or position == watch):
                self.last_position, self.last_row, self.last_content = last_position, last_row, last_content
                self.window_first, self.window_last, self.window_count = window_first, window_last, window_count
                self.feed(row)  # anything else, the one way
                last_position, last_row, last_content = self.last_position, self.last_row, self.last_content
                window_first, window_last, window_count = self.window_first, self.window_last, self.window_count
                continue
            last_position = position
            last_row = last_content = row
            if since is None or position > since:
                window_count += 1
                if window_first is None:
                    window_first = row
                window_last = row
            streams[oid] = n + 1
        self.last_position, self.last_row, self.last_content = last_position, last_row, last_content
        self.window_first, self.window_last, self.window_count = window_first, window_last, window_count

    def feed_checkpoint(self, row: Row) -> None:
        """A checkpoint after the window end: it may cover the window."""
        if row.position <= self.last_position:
            raise ValueError(f"events must come in increasing position order: {row.position} after "
                             f"{self.last_position}")
        self.last_position = row.position
        e = decode(row)
        if e.kind == "journal.checkpoint" and not e.stream.startswith("skill:"):
            self._checkpoint(e, e.data, False)

    def _is_checkpoint(self, topic: str) -> bool:
        found = self._checkpoint_kinds.get(topic)
        if found is None:
            found = topic.rpartition(".v")[0] == "journal.checkpoint"
            if len(self._checkpoint_kinds) < 1024:
                self._checkpoint_kinds[topic] = found
        return found

    def _generic(self, e: Event) -> None:
        """An event the fold does not understand: kept in the window as what it is."""
        entry = self.ctx.generic(e)
        if e.stream.startswith("publisher:"):
            self.ctx.spool.trust_event(e.stream[10:], entry)
        else:
            self._other(entry)

    def _other(self, entry: TimelineEntry) -> None:
        if self.ctx.selection.unfiltered or entry.stream.startswith(_SHARED_STREAMS):
            self.ctx.spool.other_event(entry)

    # --- publisher streams -----------------------------------------------------------------

    def _key(self, e: Event, d: dict[str, Any], kind: str | None) -> KeyState | None:
        """The key an event is about, as the spool holds it (a pin starts its record afresh, as the
        aggregate does); the handler changes it and :meth:`_put` stores it back."""
        key_hex = text_of(d, "key_hex")
        if not e.stream.startswith("publisher:") or key_hex is None:
            return None
        publisher = e.stream[10:]
        k = None if kind == "tofu" else self.ctx.spool.key(publisher, key_hex)
        if k is None:
            k = KeyState(publisher=publisher, key_hex=key_hex, key_id=text_of(d, "key_id") or "",
                         kind=kind or "allowlisted")
        return k

    def _put(self, e: Event, d: dict[str, Any], k: KeyState, w: bool) -> None:
        self.ctx.spool.put_key(k)
        if w:
            details = scalar_details(d, ("key_id", "key_hex", "first_skill_id", "first_version"))
            self.ctx.spool.trust_event(k.publisher, self.ctx.entry(e, reason=text_of(d, "reason"), details=details))

    def _allowlisted(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        k = self._key(e, d, "allowlisted")
        if k is None:
            return False
        k.kind, k.state = "allowlisted", "active"
        k.allowlisted = KeyAct(ref=self.ctx.ref(e), reason=text_of(d, "reason"))
        self.allowlisting_publishers.add(k.publisher)
        self._put(e, d, k, w)
        return True

    def _pinned(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        k = self._key(e, d, "tofu")
        if k is None:
            return False
        k.pinned = KeyAct(ref=self.ctx.ref(e), first_skill_id=text_of(d, "first_skill_id") or None,
                          first_version=text_of(d, "first_version") or None)
        self._put(e, d, k, w)
        return True

    def _revoked(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        k = self._key(e, d, None)
        if k is None:
            return False
        ref, reason = self.ctx.ref(e), text_of(d, "reason")
        k.state = "revoked"
        k.revoked = KeyAct(ref=ref, reason=reason)
        if w:
            self.ctx.spool.revocation(RevocationState(publisher=k.publisher, key_hex=k.key_hex, key_id=k.key_id,
                                                      ref=ref, reason=reason))
        self._put(e, d, k, w)
        return True

    # --- the shared streams ------------------------------------------------------------------

    def _policy_changed(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        values = d.get("policy")
        if not isinstance(values, dict):
            return False
        old, self.policy_values = self.policy_values, dict(values)
        ref = self.ctx.ref(e)
        changes = policy_changes(old, values)
        pv = PolicyVersion(version=e.stream_version, values=dict(values), changed=[c.key for c in changes],
                           position=ref.position, hash=ref.hash, recorded_at=ref.recorded_at, actor=ref.actor,
                           reason=text_of(d, "reason"))
        if w:
            self.policy_versions.append(pv)
            if any(c.direction != "tighter" for c in changes):
                self.ctx.finding(FindingDraft.policy(pv, ref, changes))
            self._other(self.ctx.entry(e, reason=text_of(d, "reason"), details={"policy_version": e.stream_version}))
        else:
            self.policy_versions = [pv]  # the version in force when the window opens
        return True

    def _rejected(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        digest, code = text_of(d, "artifact_sha256"), text_of(d, "error_code")
        if digest is None or code is None:
            return False
        if w:
            ref = self.ctx.ref(e)
            rejection = Rejection(
                position=ref.position, hash=ref.hash, recorded_at=ref.recorded_at, actor=ref.actor,
                artifact_sha256=digest, source=text_of(d, "source") or "", error_code=code,
                message=text_of(d, "message") or "", skill_id=text_of(d, "skill_id"), version=text_of(d, "version"),
                publisher=text_of(d, "publisher"))
            if self.ctx.selection.attributed(rejection.skill_id, rejection.publisher):
                self.ctx.spool.rejection(rejection)  # its finding is aggregated from the spool
        return True

    def _checkpoint(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        covers, count = int_of(d, "position"), int_of(d, "event_count")
        if covers is None or count is None:
            return False
        ref = self.ctx.ref(e)
        if self.checkpoint is None or covers >= self.checkpoint[0].covers_position:
            self.checkpoint = (Checkpoint(
                position=ref.position, hash=ref.hash, recorded_at=ref.recorded_at, actor=ref.actor,
                covers_position=covers, event_count=count, root_hash=text_of(d, "root_hash") or "",
                key_id=text_of(d, "key_id") or ""), ref)
        if w:
            self._other(self.ctx.entry(e, details={"covers_position": covers, "event_count": count}))
        return True

    def _secret(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        """A secret of a scope other than a skill's own (``secrets:<scope>``): its names, never a value."""
        if text_of(d, "key") is None or not e.stream.startswith("secrets:"):
            return False
        if w:
            self._other(self.ctx.entry(e, reason=text_of(d, "reason"), details=secret_details(d)))
        return True

    # --- registries: trust roots (TUF) that skills are installed from --------------------------------

    def _registry(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        """A registry pinned, removed, its metadata trusted, or a skill installed from it: trust
        entries. A registry's own events concern every skill installed from it (kept by every
        filter); an install from it goes with its skill."""
        if not e.stream.startswith("registry:"):
            return False
        if w:
            skill_id = text_of(d, "skill_id")
            if skill_id is None or self.ctx.selection.attributed(skill_id, None):
                self.ctx.spool.trust_event("", self.ctx.entry(
                    e, version=text_of(d, "version"), reason=text_of(d, "reason"), details=registry_details(d)))
        return True

    def _registry_refused(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        """An install, update or refresh a registry's metadata did not vouch for: a finding (the
        registry records a refusal once until it changes, so these are few)."""
        if not e.stream.startswith("registry:") or text_of(d, "code") is None:
            return False
        if w:
            skill_id = text_of(d, "skill_id")
            if skill_id is None or self.ctx.selection.attributed(skill_id, None):
                entry = self.ctx.entry(e, version=text_of(d, "version"), reason=text_of(d, "detail"),
                                       reason_code=text_of(d, "code"), details=registry_details(d))
                self.ctx.spool.trust_event("", entry)
                self.ctx.finding(FindingDraft.registry_refused(entry, self.ctx.ref(e)))
        return True

    # --- reading the end state -----------------------------------------------------------------

    def finish(self) -> None:
        """Hand the counts of the skill streams met to the spool (how the second pass splits them)."""
        self.ctx.spool.skill_counts((n, oid) for oid, n in self.skill_streams.items())
        self.skill_streams.clear()

    def facts(self) -> JournalFacts:
        """What the second pass needs from the other streams (``state.JournalFacts``)."""
        spool = self.ctx.spool
        revoked = [(k.publisher, k.key_hex, k.key_id, k.revoked.ref if k.revoked else None)
                   for k in spool.keys("state = 'revoked'")]
        revocations = [(r.publisher, r.key_hex, r.ref) for r in spool.revocations()]
        return JournalFacts(revoked_keys=revoked, revocations=revocations)

    def ref_of(self, row: Row | None) -> CitedEvent | None:
        return self.ctx.ref(decode(row)) if row is not None else None

    @property
    def last_content_position(self) -> int:
        return self.last_content.position if self.last_content is not None else 0
