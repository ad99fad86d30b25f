"""Periodic re-audit: verify and audit every installed version, quarantine failures.

A :class:`Reauditor` keeps what it learned between passes, so a service that re-audits
an unchanged fleet every few hours does almost nothing: aggregates are reloaded only for
streams that received events since the last pass, and a version whose stored artifact
(same device/inode/size/mtime/ctime), policy version, trust state and status are all
unchanged since its last clean result is not re-inspected. The journal grows only when
something changed: at most one ``skill.audited`` per version whose result or policy
version changed, plus any quarantine.

The service loop (:func:`watch`) also compares the views with the journal (``skills index
verify``) at its first pass and then every ``verify_interval_s``: running decides from the
journal, so drifted views cannot make a skill run, but they mislead whoever reads them. Drift
is reported in that pass's result (``views_verify``) and the loop keeps running.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec

from skill_ledger.adapters.usecases.unit_of_work import Ledger
from skill_ledger.adapters.usecases.verification import StoredArtifactVerifier, Unverified, audit
from skill_ledger.domain.audit_policy import AuditPolicy
from skill_ledger.domain.policy import effective_feed_path
from skill_ledger.domain.publisher import Publisher
from skill_ledger.domain.skill import Skill, SkillVersion


class Quarantine(msgspec.Struct, frozen=True):
    skill_id: str
    version: str
    reason_code: str


class ViewsCheck(msgspec.Struct, frozen=True):
    """The views compared with a replay of the journal (``index verify``) during a pass."""

    ok: bool
    differences: int  # rows that differ (at most the first 20 are counted), or 1 for a failure
    first: str | None = None  # the first difference, or why the comparison could not be made


class PassResult(msgspec.Struct, frozen=True):
    checked: int
    passed: int
    quarantined: list[Quarantine]
    positions: list[int]
    skipped_unchanged: int = 0
    duration_ms: float = 0.0
    views_verify: ViewsCheck | None = None  # None: not compared in this pass

    def failure_code(self) -> str | None:
        """The error code a command ends with after this pass: ``audit_failed`` when it quarantined
        something, else None (success)."""
        return "audit_failed" if self.quarantined else None


class VersionCheck(msgspec.Struct, frozen=True):
    """One version's result in a pass: whether it passed, the quarantine recorded now, the positions."""

    passed: bool
    quarantined: str | None
    positions: list[int]


class Reauditor:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.verifier = StoredArtifactVerifier(ledger)
        self.head = -1
        self.skills: dict[str, Skill] = {}
        self.publishers: dict[str, Publisher] = {}
        self.policy: AuditPolicy | None = None
        # (skill_id, version) -> (fingerprint of everything the result depends on, passed)
        self.memo: dict[tuple[str, str], tuple[tuple[Any, ...], bool]] = {}
        self._feed: tuple[Any, ...] | None = None

    # --- keeping the write-side state fresh ----------------------------------------------

    def _refresh(self) -> None:
        head = self.ledger.head()
        if head == self.head:
            return
        if self.head < 0:
            self.skills = {sid: self.ledger.load(Skill, sid) for sid in self.ledger.skill_ids()}
            self.publishers = {}
            self.policy = self.ledger.policy()
        else:
            for stream in self.ledger.streams(after=self.head):
                prefix, _, key = stream.partition(":")
                if prefix == "skill":
                    self.skills[key] = self.ledger.load(Skill, key)
                elif prefix == "publisher":
                    self.publishers.pop(key, None)
                elif prefix == "policy":
                    self.policy = self.ledger.policy()
        self.head = head

    def _publisher(self, name: str) -> Publisher:
        p = self.publishers.get(name)
        if p is None:
            p = self.publishers[name] = self.ledger.load(Publisher, name)
        return p

    # --- one pass ------------------------------------------------------------------------

    def count(self) -> int:
        """How many installed versions the next pass will check (for progress bars)."""
        self._refresh()
        return sum(len(s.installed_versions()) for s in self.skills.values())

    def run_pass(self, progress: Callable[[int], None] | None = None) -> PassResult:
        started = time.perf_counter()
        self._refresh()
        assert self.policy is not None
        self._feed = self._feed_state()
        checked = passed = skipped = 0
        quarantined: list[Quarantine] = []
        positions: list[int] = []
        outcomes: dict[tuple[str, str], bool] = {}
        for skill_id in sorted(self.skills):
            skill = self.skills[skill_id]
            for v in skill.installed_versions():
                checked += 1
                if progress is not None:
                    progress(1)
                key = (skill_id, v.version)
                fingerprint = self._fingerprint(skill, v)
                memo = self.memo.get(key)
                if fingerprint is not None and memo is not None and memo[0] == fingerprint:
                    skipped += 1
                    passed += int(memo[1])
                    continue
                outcome = self._check_version(skill_id, v.version)
                outcomes[key] = outcome.passed
                positions += outcome.positions
                if outcome.quarantined:
                    quarantined.append(Quarantine(skill_id, v.version, outcome.quarantined))
                if outcome.passed:
                    passed += 1
        if positions:
            self._refresh()
        # Memoise the post-pass state so the next pass can skip what did not change.
        for skill_id, skill in self.skills.items():
            for v in skill.installed_versions():
                key = (skill_id, v.version)
                fp = self._fingerprint(skill, v)
                if fp is None:
                    self.memo.pop(key, None)
                elif key in outcomes:
                    self.memo[key] = (fp, outcomes[key])
        return PassResult(checked, passed, quarantined, positions, skipped,
                          round((time.perf_counter() - started) * 1000, 1))

    def _fingerprint(self, skill: Skill, v: SkillVersion) -> tuple[Any, ...] | None:
        try:
            st = os.stat(self.ledger.blobs.path_for(v.artifact_sha256))
        except (OSError, ValueError):
            return None
        publisher = self._publisher(v.publisher)
        assert self.policy is not None
        audit = v.last_audit or {}
        return (v.artifact_sha256, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                self.policy.policy_version, publisher.version, v.status, audit.get("passed"),
                audit.get("policy_version"), self._feed)

    def _feed_state(self) -> tuple[Any, ...] | None:
        """What the vulnerability feed file looks like now; a feed that cannot be read never
        compares equal, so nothing is skipped on its account (a broken feed is never "clean")."""
        assert self.policy is not None
        path = effective_feed_path(self.policy.values)
        if path is None:
            return None
        try:
            st = os.stat(path)
        except OSError as e:
            return (path, "unreadable", e.errno, time.monotonic_ns())
        return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _check_version(self, skill_id: str, version: str) -> VersionCheck:
        """Verify and audit one version; the skill records only what changed. The aggregates
        refreshed for this pass are used as they are; after a write conflict they are re-read
        (re-decide)."""
        ledger = self.ledger
        attempts = 0

        def attempt() -> VersionCheck:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.skills[skill_id] = ledger.load(Skill, skill_id)
                self.policy = ledger.policy()
                self.publishers.clear()
            skill = self.skills[skill_id]
            policy = self.policy
            assert policy is not None
            v = skill.installed(version)
            check = self.verifier.check(skill, v, trust_store=self._publisher(v.publisher).trust_store(),
                                        recorded_manifest=True)
            if isinstance(check, Unverified):
                return VersionCheck(False, check.reason_code if check.quarantined else None, self._saved(skill))
            outcome = audit(ledger, check.inspected, check.trust_decision, policy)
            code = skill.reaudit(ledger.actor, v.version, check.trust_decision, outcome.report, outcome.policy_version)
            return VersionCheck(outcome.report.passed, code, self._saved(skill))

        try:
            return ledger.retrying(attempt)
        except BaseException:
            self.skills[skill_id] = ledger.load(Skill, skill_id)  # never keep a half-decided aggregate
            raise

    def _saved(self, skill: Skill) -> list[int]:
        try:
            return self.ledger.save(skill)
        except BaseException:
            # The aggregate holds events that were not recorded: forget it before anyone retries.
            self.skills[skill.skill_id] = self.ledger.load(Skill, skill.skill_id)
            raise


class Stop:
    """Set by SIGTERM/SIGINT; ``wait`` sleeps until the interval passes or a signal arrives."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.event.set())

    def wait(self, seconds: float) -> bool:
        return self.event.wait(seconds)

    @property
    def stopped(self) -> bool:
        return self.event.is_set()


def check_views(ledger: Ledger) -> ViewsCheck:
    """``index verify`` for the watch loop: never raises for what it finds (a loop that stopped
    on the first drift would stop re-auditing too)."""
    from skill_ledger.adapters.readmodel.verify import verify_views
    from skill_ledger.domain.errors import SkillLedgerError

    try:
        report = verify_views(ledger.settings)
    except SkillLedgerError as e:
        return ViewsCheck(False, 1, f"{e.code}: {e.message}")
    if report.ok:
        return ViewsCheck(True, 0)
    d = report.differences[0]
    first = f"table {d.table}" + (f", row {d.key}" if d.key else "") + (f": {d.live}" if d.table == "*" else "")
    return ViewsCheck(False, len(report.differences), first)


def watch(ledger: Ledger, *, interval_s: int, max_runs: int | None, on_pass: Callable[[int, PassResult], None],
          stop: Stop, on_wait: Callable[[int], None] | None = None, verify_interval_s: int = 0,
          verify: Callable[[Ledger], ViewsCheck] = check_views) -> int:
    """Run passes every ``interval_s`` seconds until stopped (or ``max_runs``); returns passes run.
    ``on_wait(seconds)`` is told, after each pass, that the loop now sleeps until the next one.
    ``verify_interval_s`` (0: never): compare the views with the journal in the first pass and
    then in the first pass at least that long after the previous comparison."""
    reauditor = Reauditor(ledger)
    runs = 0
    verify_due = time.monotonic()
    while not stop.stopped:
        started = time.monotonic()
        result = reauditor.run_pass()
        runs += 1
        if verify_interval_s and started >= verify_due:
            result = msgspec.structs.replace(result, views_verify=verify(ledger))
            verify_due = started + verify_interval_s  # due again that long after this pass began
        on_pass(runs, result)
        if interval_s == 0 or (max_runs is not None and runs >= max_runs):
            break
        if on_wait is not None:
            on_wait(interval_s)
        if stop.wait(interval_s):
            break
    return runs
