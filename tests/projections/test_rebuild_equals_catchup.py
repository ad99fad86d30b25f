"""Rebuild equals catch-up (events.md guarantee 4), driven by random command sequences.

A hypothesis state machine runs install (good, audit-failing, conflicting, corrupt,
untrusted and wrong-key artifacts, with and without --allow-tofu / --trusted-publisher),
remove, rollback, quarantine, disable, enable (with and without --override), trust
allow/revoke, policy changes and checkpoints through the real ``Ledger`` on a real SQLite
journal. After each command the incremental projections are caught up (in batches of
random size, or not at all, so that several commands fold in one batch). Whenever they
are at the head they must equal a full rebuild into a fresh ``ViewStore``, row for row
(``ViewStore.diff`` and raw table dumps), and the installed-version rows must agree with
the write side (the ``Skill`` aggregates), and a rebuild sharded three ways
(``projections.shards``: acme's skills, globex's and rogue's land in different shards, so
a revocation of acme's key reaches versions outside shard 0) must give the same rows. At
teardown the same holds for rebuilds in batches of 1 and 7 events and sharded 2 and 16 ways.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import helpers_ledger as h
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from skill_ledger.adapters.readmodel.views import journal_identity, open_views
from skill_ledger.adapters.usecases import lifecycle, trust, verification
from skill_ledger.adapters.usecases.checkpoints import record_checkpoint
from skill_ledger.adapters.usecases.install import install
from skill_ledger.adapters.usecases.policy import set_policy
from skill_ledger.adapters.usecases.unit_of_work import Ledger
from skill_ledger.domain.constants import DEFAULT_ALLOWED_IMPORT_MODULES
from skill_ledger.domain.errors import SkillLedgerError
from skill_ledger.domain.skill import Skill
from skill_ledger.projections.store import ViewStore

# --- the catalogue of artifacts (built once per session: lru_cache in helpers) ----------

SKILLS = {
    "acme.alpha": ("acme", ["1.0.0", "1.1.0", "2.0.0"]),
    "acme.beta": ("acme", ["1.0.0", "1.1.0"]),
    "globex.gamma": ("globex", ["1.0.0", "1.5.0", "2.0.0"]),
}
AUDIT_FAILING = {("acme.beta", "1.1.0"), ("globex.gamma", "1.5.0")}


def catalogue() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for skill_id, (publisher, versions) in SKILLS.items():
        for v in versions:
            wat = h.BAD_AUDIT_WAT if (skill_id, v) in AUDIT_FAILING else h.GOOD_WAT
            out[f"{skill_id}@{v}"] = h.build(skill_id, v, publisher, wat=wat)
    # same skill id and version, different payload: version_conflict once 1.0.0 is installed
    out["conflict:acme.alpha@1.0.0"] = h.build("acme.alpha", "1.0.0", "acme", asset=b"a different payload")
    out["corrupt"] = h.corrupt(out["acme.alpha@1.1.0"])
    out["untrusted:rogue.delta@1.0.0"] = h.build("rogue.delta", "1.0.0", "rogue")
    out["wrongkey:acme.alpha@3.0.0"] = h.build("acme.alpha", "3.0.0", "acme", seed=h.OTHER_ACME_SEED)
    return out


ARTIFACT_NAMES = sorted(catalogue())
# (publisher, key) that signed each well-formed artifact, for --trusted-publisher
SIGNERS = {name: (SKILLS[name.split("@")[0]][0], h.key_hex(h.SEEDS[SKILLS[name.split("@")[0]][0]]))
           for name in ARTIFACT_NAMES if "@" in name and ":" not in name}
SIGNERS["conflict:acme.alpha@1.0.0"] = ("acme", h.key_hex(h.SEEDS["acme"]))
SIGNERS["untrusted:rogue.delta@1.0.0"] = ("rogue", h.key_hex(h.SEEDS["rogue"]))
SIGNERS["wrongkey:acme.alpha@3.0.0"] = ("acme", h.key_hex(h.OTHER_ACME_SEED))
GOOD_NAMES = [n for n in ARTIFACT_NAMES if ":" not in n and "@" in n]
PUBLISHER_KEYS = [
    ("acme", h.key_hex(h.SEEDS["acme"])),
    ("acme", h.key_hex(h.OTHER_ACME_SEED)),
    ("globex", h.key_hex(h.SEEDS["globex"])),
    ("rogue", h.key_hex(h.SEEDS["rogue"])),
]
ALL_VERSIONS = sorted({v for _p, vs in SKILLS.values() for v in vs} | {"3.0.0"})
DEFAULT_IMPORTS = ",".join(DEFAULT_ALLOWED_IMPORT_MODULES)

skill_ids = st.sampled_from(sorted(SKILLS) + ["rogue.delta"])
versions = st.none() | st.sampled_from(ALL_VERSIONS)
# How the projections catch up after a command: one batch, tiny batches, or not yet.
syncs = st.sampled_from([5000, 5000, 5000, 1, 3, None])


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="rebuild-eq-"))
        self.home = self.tmp / "home"
        self.ledger = h.ledger_for(self.home)
        self.artifacts = catalogue()

    # --- plumbing -----------------------------------------------------------------------

    def _do(self, sync: int | None, fn, *args, **kwargs) -> None:
        try:
            fn(*args, **kwargs)
            event(f"{fn.__name__}: ok")
        except SkillLedgerError as e:  # an expected refusal is a fine step
            event(f"{fn.__name__}: {e.code}")
        if sync is not None:
            store = ViewStore(self.home / "views.db", journal_identity=journal_identity(self.ledger))
            try:
                store.catch_up(self.ledger.app.recorder, batch=sync)
            finally:
                store.close()

    def _live_at_head(self) -> bool:
        path = self.home / "views.db"
        if not path.exists():
            return self.ledger.head() == 0
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            position = con.execute("SELECT min(position) FROM positions").fetchone()[0]
        finally:
            con.close()
        return position == self.ledger.head()

    # --- commands -----------------------------------------------------------------------

    @rule(name=st.sampled_from(ARTIFACT_NAMES), allow_tofu=st.booleans(), trusted=st.booleans(), sync=syncs)
    def install(self, name: str, allow_tofu: bool, trusted: bool, sync: int | None) -> None:
        data = self.artifacts[name]
        pairs = [SIGNERS[name]] if trusted and name in SIGNERS else []
        self._do(sync, install, self.ledger, f"/artifacts/{name}.palyra-skill", allow_tofu=allow_tofu,
                 trusted_publishers=pairs, data=data)

    @rule(name=st.sampled_from(GOOD_NAMES), sync=syncs)
    def install_with_tofu(self, name: str, sync: int | None) -> None:
        """Installs that usually succeed (weights the machine towards populated states)."""
        self._do(sync, install, self.ledger, f"/artifacts/{name}.palyra-skill", allow_tofu=True,
                 data=self.artifacts[name])

    @rule(skill_id=skill_ids, version=versions, sync=syncs)
    def remove(self, skill_id: str, version: str | None, sync: int | None) -> None:
        self._do(sync, lifecycle.remove, self.ledger, skill_id, version, "test remove")

    @rule(skill_id=skill_ids, version=versions, sync=syncs)
    def rollback(self, skill_id: str, version: str | None, sync: int | None) -> None:
        self._do(sync, lifecycle.rollback, self.ledger, skill_id, version, "test rollback")

    @rule(skill_id=skill_ids, version=versions, sync=syncs)
    def quarantine(self, skill_id: str, version: str | None, sync: int | None) -> None:
        self._do(sync, lifecycle.quarantine, self.ledger, skill_id, version, "test quarantine")

    @rule(skill_id=skill_ids, version=versions, sync=syncs)
    def disable(self, skill_id: str, version: str | None, sync: int | None) -> None:
        self._do(sync, lifecycle.disable, self.ledger, skill_id, version, "test disable")

    @rule(skill_id=skill_ids, version=versions, override=st.booleans(), sync=syncs)
    def enable(self, skill_id: str, version: str | None, override: bool, sync: int | None) -> None:
        self._do(sync, lifecycle.enable, self.ledger, skill_id, version, "test enable", override)

    @rule(key=st.sampled_from(PUBLISHER_KEYS), sync=syncs)
    def trust_allow(self, key: tuple[str, str], sync: int | None) -> None:
        self._do(sync, trust.allow, self.ledger, key[0], key[1], "test allow")

    @rule(key=st.sampled_from(PUBLISHER_KEYS), sync=syncs)
    def trust_revoke(self, key: tuple[str, str], sync: int | None) -> None:
        self._do(sync, trust.revoke, self.ledger, key[0], key[1], "test revoke")

    @rule(lenient=st.booleans(), sync=syncs)
    def set_policy(self, lenient: bool, sync: int | None) -> None:
        imports = DEFAULT_IMPORTS + (",env" if lenient else "")
        self._do(sync, set_policy, self.ledger, [f"allowed_import_modules={imports}"], "test policy")

    @rule(skill_id=skill_ids, sync=syncs)
    def verify(self, skill_id: str, sync: int | None) -> None:
        self._do(sync, verification.verify, self.ledger, skill_id, None)

    @rule(sync=syncs)
    def checkpoint(self, sync: int | None) -> None:
        self._do(sync, record_checkpoint, self.ledger)

    @rule()
    def open_views_for_a_read(self) -> None:
        """What every read command does: catch up lazily (and bind the journal identity)."""
        open_views(self.ledger.settings, ledger=self.ledger).close()

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def projections_equal_a_rebuild(self) -> None:
        if not self._live_at_head() or not (self.home / "views.db").exists():
            return
        problems = h.projection_mismatches(self.ledger, self.tmp, shards=(3,))
        assert not problems, "\n".join(problems)

    @invariant()
    def views_agree_with_the_write_side(self) -> None:
        if not self._live_at_head() or not (self.home / "views.db").exists():
            return
        con = sqlite3.connect(f"file:{self.home / 'views.db'}?mode=ro", uri=True)
        try:
            rows = {(r[0], r[1]): r[2:] for r in con.execute(
                "SELECT skill_id, version, installed, status, current FROM versions")}
        finally:
            con.close()
        expected = {}
        for skill_id in self.ledger.skill_ids():
            skill = self.ledger.load(Skill, skill_id)
            for v in skill.installed_versions():
                expected[(skill_id, v.version)] = (1, v.status, int(skill.current == v.version))
        live = {k: (r[0], r[1], r[2]) for k, r in rows.items() if r[0]}
        assert live == expected

    @invariant()
    def journal_and_state_are_sound(self) -> None:
        problems = h.state_problems(self.ledger)
        assert not problems, "\n".join(problems)

    def teardown(self) -> None:
        try:
            h.catch_up(self.ledger)
            problems = h.projection_mismatches(self.ledger, self.tmp, batches=(None, 1, 7), shards=(2, 16))
            assert not problems, "\n".join(problems)
        finally:
            self.ledger.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


LedgerMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("REBUILD_EQ_EXAMPLES", "25")), stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestRebuildEqualsCatchUp = LedgerMachine.TestCase


def test_catalogue_exercises_every_outcome(tmp_path: Path) -> None:
    """The artifacts above really produce each kind of step the machine relies on."""
    ledger = h.ledger_for(tmp_path / "home")
    arts = catalogue()
    codes = []

    def attempt(name: str, **kw) -> object:
        try:
            return install(ledger, f"/artifacts/{name}", data=arts[name], **kw)
        except SkillLedgerError as e:
            codes.append(e.code)
            return None

    try:
        assert attempt("acme.alpha@1.0.0", allow_tofu=True).status == "active"
        assert attempt("acme.beta@1.1.0").status == "quarantined"
        assert attempt("acme.alpha@1.0.0").already_installed
        attempt("conflict:acme.alpha@1.0.0")
        attempt("corrupt")
        attempt("untrusted:rogue.delta@1.0.0")
        attempt("wrongkey:acme.alpha@3.0.0")
        assert codes[0] == "version_conflict"
        assert codes[2] == "untrusted_publisher"
        assert codes[3] in ("tofu_key_mismatch", "trusted_publisher_key_mismatch", "untrusted_publisher")
        assert len(codes) == 4
        h.catch_up(ledger)
        assert not h.projection_mismatches(ledger, tmp_path)
    finally:
        ledger.close()


def test_views_created_before_the_first_event_are_bound_to_the_journal(tmp_path: Path) -> None:
    """A views.db first opened on an empty journal must still be tied to that journal.

    ``skills list`` on a fresh home creates views.db with an empty journal identity; the
    command sessions that follow catch up through ``adapters.views.catch_up_after``, which
    never binds the identity. A later command on the same home with another journal
    (``--journal``) then folds that journal's events on top of the first one's rows
    instead of rebuilding (compare: without the initial read, the identity is bound and
    the views are rebuilt for the other journal).
    """
    home = tmp_path / "home"
    first = h.settings_for(home)
    other = h.resolve(home=str(home), journal=str(tmp_path / "other.db"), actor="user:test")
    open_views(first).close()  # a read on a fresh home: views.db with identity ""
    with_ledger(first, lambda lg: install(lg, "/a", data=h.build("acme.alpha", "1.0.0", "acme"), allow_tofu=True))
    with_ledger(other, lambda lg: install(lg, "/b", data=h.build("globex.gamma", "1.0.0", "globex"),
                                             allow_tofu=True))
    store = open_views(other)
    try:
        shown = sorted(r[0] for r in store.con.execute("SELECT skill_id FROM versions"))
    finally:
        store.close()
    assert shown == ["globex.gamma"], f"views.db of journal {other.journal_path} shows: {shown}"


def with_ledger(s, fn) -> None:
    """Run one use case and catch up afterwards, as a command session does."""
    ledger = Ledger(s)
    try:
        fn(ledger)
        h.catch_up(ledger)
    finally:
        ledger.close()


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
