"""The registry use cases over a real journal, in-process, with the clock and the transport
injected (``Access``): what only an injected clock or an interleaving can show. The CLI-level
attack scenarios are in ``tests/e2e/test_registry_attacks.py``."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import helpers_ledger as h
import pytest
from builders import artifact
from registry_kit import T0, CountingFetcher, Repo, make_repo

from skill_ledger.adapters.registry import repository
from skill_ledger.adapters.usecases import registry as usecase
from skill_ledger.adapters.usecases.registry_update import install_from_registry, update
from skill_ledger.domain.errors import SkillLedgerError
from skill_ledger.domain.registry import Registry
from skill_ledger.domain.skill import Skill


def at(hours: float) -> usecase.Access:
    return usecase.Access(clock=lambda: T0 + timedelta(hours=hours))


@pytest.fixture
def ledger(tmp_path: Path):
    ledger = h.ledger_for(tmp_path / "home")
    yield ledger
    ledger.close()


def refusals(ledger) -> list[dict]:
    return [e["state"] for e in h.journal_events(ledger) if e["kind"] == "registry.update_refused"]


def kinds(ledger) -> list[str]:
    return [e["kind"] for e in h.journal_events(ledger)]


def test_freeze_after_trust_with_the_injected_clock(ledger, repo: Repo, mirror) -> None:
    """The client trusted the registry at T0+10h; the mirror then keeps serving that timestamp
    (it expires at T0+1d) while the repository goes on re-signing."""
    usecase.add(ledger, "main", mirror.url, repo.root)
    install_from_registry(ledger, "main", "acme.echo", allow_tofu=True, access=at(10))
    frozen = repo.meta("timestamp.json")
    repository.refresh_timestamp(repo.dir, now=T0 + timedelta(hours=20))
    mirror.serve("/metadata/timestamp.json", frozen)
    assert update(ledger, all_skills=True, access=at(20)).results[0].outcome == "up_to_date"  # not expired yet
    result = update(ledger, all_skills=True, access=at(30))
    assert result.failure()["code"] == "registry_expired"
    [event] = refusals(ledger)
    assert (event["code"], event["tuf_error"], event["phase"], event["skill_id"]) == (
        "registry_expired", "ExpiredMetadataError", "metadata", None)
    mirror.reset()
    result = update(ledger, all_skills=True, access=at(30))
    assert result.failure() is None and result.registries[0].metadata["timestamp"] == 3


def test_an_idle_update_reads_no_skill_stream_and_appends_nothing(ledger, repo: Repo, mirror, monkeypatch) -> None:
    repository.publish(repo.dir, [artifact(f"acme.s{i}", "1.0.0") for i in range(3)], now=T0)
    mirror.sync()
    usecase.add(ledger, "main", mirror.url, repo.root)
    for i in range(3):
        install_from_registry(ledger, "main", f"acme.s{i}", allow_tofu=True, access=at(1))
    head = ledger.head()
    loads: list[str] = []
    original = ledger.load
    monkeypatch.setattr(ledger, "load", lambda cls, key: (loads.append(cls.__name__), original(cls, key))[1])
    result = update(ledger, all_skills=True, access=at(2))
    assert [r.outcome for r in result.results] == ["up_to_date"] * 3
    assert "Skill" not in loads and ledger.head() == head


def test_a_concurrent_install_that_raised_the_floor_is_decided_again_in_the_transaction(
        ledger, repo: Repo, mirror, tmp_path: Path) -> None:
    """Another process installs 3.0.0 from the registry while this one downloads 2.0.0: the
    install's transaction re-reads the registry and refuses to go below the new floor."""
    usecase.add(ledger, "main", mirror.url, repo.root)
    install_from_registry(ledger, "main", "acme.echo", allow_tofu=True, access=at(1))
    repository.publish(repo.dir, [artifact(version="2.0.0")], now=T0)
    mirror.sync()
    other = h.ledger_for(ledger.settings.home)

    class Interleaving(CountingFetcher):
        def _fetch(self, url: str):
            if "/targets/" in url:
                registry = other.load(Registry, "main")
                registry.record_installed(other.actor, skill_id="acme.echo", version="3.0.0", target="x",
                                          artifact_sha256="a" * 64, payload_sha256="b" * 64,
                                          metadata={"root": 1, "timestamp": 3, "snapshot": 3, "targets": 3})
                other.save(registry)
            return super()._fetch(url)

    try:
        result = update(ledger, all_skills=True, access=usecase.Access(clock=lambda: T0, fetcher=Interleaving()))
    finally:
        other.close()
    assert result.failure()["code"] == "downgrade_refused"
    assert refusals(ledger)[-1]["phase"] == "install"
    skill = ledger.load(Skill, "acme.echo")
    assert skill.current == "1.0.0" and "2.0.0" not in skill.versions  # nothing of the install was saved


def test_re_adding_a_name_with_another_root_starts_the_metadata_floor_again(ledger, repo: Repo, mirror,
                                                                           tmp_path: Path) -> None:
    usecase.add(ledger, "main", mirror.url, repo.root)
    for _ in range(3):
        repository.refresh_timestamp(repo.dir, now=T0)
    mirror.sync()
    assert usecase.refresh(ledger, access=at(1)).registries[0].metadata["timestamp"] == 5
    usecase.remove(ledger, "main", "moving to a new registry")
    fresh = make_repo(tmp_path / "new")
    usecase.add(ledger, "main", fresh.dir.as_uri(), fresh.root)
    refreshed = usecase.refresh(ledger, access=at(1)).registries[0]
    assert refreshed.error is None and refreshed.metadata["timestamp"] == 2


def test_a_pinned_root_changed_on_disk_is_refused_and_recorded(ledger, repo: Repo, mirror, tmp_path: Path) -> None:
    usecase.add(ledger, "main", mirror.url, repo.root)
    (ledger.settings.home / "registries" / "main" / "pinned-root.json").write_bytes(make_repo(tmp_path / "x").root)
    result = usecase.refresh(ledger, access=at(1))
    assert result.failure()["code"] == "registry_root_mismatch"
    assert refusals(ledger)[-1]["code"] == "registry_root_mismatch"


def test_lost_local_state_is_restored_by_adding_the_same_pin_again(ledger, repo: Repo, mirror) -> None:
    usecase.add(ledger, "main", mirror.url, repo.root)
    install_from_registry(ledger, "main", "acme.echo", allow_tofu=True, access=at(1))
    shutil.rmtree(ledger.settings.home / "registries")
    assert update(ledger, all_skills=True, access=at(1)).failure()["code"] == "registry_error"
    again = usecase.add(ledger, "main", mirror.url, repo.root)
    assert again.changed is False and again.positions == []
    assert update(ledger, all_skills=True, access=at(1)).results[0].outcome == "up_to_date"


def test_a_refusal_the_registry_cannot_record_is_only_raised(ledger, repo: Repo, mirror) -> None:
    """An operator's mistake (no such registry) leaves no event behind."""
    with pytest.raises(SkillLedgerError) as e:
        install_from_registry(ledger, "nope", "acme.echo", access=at(1))
    assert e.value.code == "not_found" and ledger.head() == 0


def test_the_views_of_registry_events_equal_a_rebuild(ledger, repo: Repo, mirror, tmp_path: Path) -> None:
    """Catch-up after each command and full rebuilds (one process, small batches, shards) give
    the same registries and timeline rows."""
    usecase.add(ledger, "main", mirror.url, repo.root)
    h.catch_up(ledger)
    install_from_registry(ledger, "main", "acme.echo", allow_tofu=True, access=at(1))
    h.catch_up(ledger)
    mirror.serve("/metadata/timestamp.json", b"garbage")
    update(ledger, all_skills=True, access=at(1))
    mirror.reset()
    h.catch_up(ledger)
    usecase.remove(ledger, "main", "done")
    usecase.add(ledger, "main", mirror.url, repo.root)
    usecase.refresh(ledger, access=at(1))
    h.catch_up(ledger)
    assert kinds(ledger).count("registry.added") == 2
    assert h.projection_mismatches(ledger, tmp_path, batches=(None, 1, 3), shards=(2, 3)) == []
    store = h.live_views(ledger)
    try:
        [row] = store.con.execute("SELECT status, installs, refusals, trusted FROM registries").fetchall()
        assert tuple(row) == ("active", 1, 1, '{"root":1,"timestamp":2,"snapshot":2,"targets":2}')
    finally:
        store.close()
