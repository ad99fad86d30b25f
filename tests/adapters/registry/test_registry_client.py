"""The client side: pinning a registry, refreshing through ngclient, listing and fetching."""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from builders import artifact
from registry_kit import T0, Repo, client, listed, make_repo, rewrite_targets, served_path
from registry_server import RegistryServer
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root

from skill_ledger.adapters.registry import repository
from skill_ledger.adapters.registry.client import Registries, TrustedVersions
from skill_ledger.adapters.registry.targets import TargetInfo, check_installed_payload
from skill_ledger.domain.errors import SkillLedgerError


def _code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.code


# --- add / remove / open -----------------------------------------------------------------


def test_add_pins_the_root_and_returns_its_digest(tmp_path: Path, repo: Repo) -> None:
    registries = Registries(tmp_path / "home" / "registries")
    pinned = registries.add("main", "https://registry.example/skills", repo.root)
    assert pinned.root_sha256 == hashlib.sha256(repo.root).hexdigest() == repo.root_sha256
    assert (pinned.name, pinned.url, pinned.root_version) == ("main", "https://registry.example/skills/", 1)
    assert (registries.path("main") / "pinned-root.json").read_bytes() == repo.root


@pytest.mark.parametrize("url", ["ftp://h/x", "https://user:secret@h/x", "https://h/x?a=1", "https:///nohost",
                                 "https://h:99999/", "registry"])
def test_add_refuses_urls_it_cannot_or_must_not_use(tmp_path: Path, repo: Repo, url: str) -> None:
    with pytest.raises(SkillLedgerError) as e:
        Registries(tmp_path).add("main", url, repo.root)
    assert _code(e) == "invalid_input"
    assert "secret" not in str(e.value) and "secret" not in repr(e.value.details)


@pytest.mark.parametrize("name", ["", "Main", "../x", "a/b", "x" * 65])
def test_add_refuses_bad_names(tmp_path: Path, repo: Repo, name: str) -> None:
    with pytest.raises(SkillLedgerError) as e:
        Registries(tmp_path).add(name, "https://h/", repo.root)
    assert _code(e) == "invalid_input"


def test_add_refuses_a_root_that_is_not_self_signed_or_not_a_root(tmp_path: Path, repo: Repo) -> None:
    md = Metadata[Root].from_bytes(repo.root)
    md.signatures.clear()
    md.sign(CryptoSigner.generate_ed25519())
    with pytest.raises(SkillLedgerError) as e:
        Registries(tmp_path).add("main", "https://h/", md.to_bytes())
    assert _code(e) == "registry_bad_signature"
    for junk in (b"{}", b"not json", repo.meta("timestamp.json")):
        with pytest.raises(SkillLedgerError) as e:
            Registries(tmp_path).add("main", "https://h/", junk)
        assert _code(e) == "registry_metadata_invalid"
    assert not (tmp_path / "main").exists()


def test_add_twice_needs_replace_and_remove_deletes_the_state(tmp_path: Path, repo: Repo) -> None:
    registries = Registries(tmp_path)
    registries.add("main", "https://h/", repo.root)
    with pytest.raises(SkillLedgerError) as e:
        registries.add("main", "https://h/", repo.root)
    assert _code(e) == "usage_error"
    registries.add("main", "https://other/", repo.root, replace=True)
    assert registries.remove("main") is True
    assert not registries.path("main").exists()
    assert registries.remove("main") is False


def test_a_pinned_root_that_differs_from_the_recorded_digest_is_refused(tmp_path: Path, repo: Repo, mirror) -> None:
    c = client(tmp_path, mirror.url, repo)
    other = make_repo(tmp_path / "other")
    (c.dir / "pinned-root.json").write_bytes(other.root)
    with pytest.raises(SkillLedgerError) as e:
        c.refresh()
    assert _code(e) == "registry_root_mismatch"
    assert e.value.details["recorded_sha256"] == repo.root_sha256


def test_a_removed_registry_has_no_state(tmp_path: Path, repo: Repo) -> None:
    c = client(tmp_path, "https://h/", repo)
    Registries(tmp_path / "home" / "registries").remove("main")
    with pytest.raises(SkillLedgerError) as e:
        c.refresh()
    assert _code(e) == "registry_error"


# --- refresh, list, fetch --------------------------------------------------------------------


def test_refresh_list_and_fetch(tmp_path: Path, repo: Repo, mirror) -> None:
    repository.publish(repo.dir, [artifact(version="1.1.0"), artifact(version="10.0.0")], now=T0)
    mirror.sync()
    c = client(tmp_path, mirror.url, repo)
    versions = c.refresh()
    assert (versions.root, versions.timestamp, versions.snapshot, versions.targets) == (1, 3, 3, 3)
    assert [t.version for t in c.list_versions("acme.echo")] == ["1.0.0", "1.1.0", "10.0.0"]  # semver order
    latest = c.fetch("acme.echo")
    assert latest.target.version == "10.0.0" and latest.inspected.manifest.version == "10.0.0"
    assert latest.data == artifact(version="10.0.0")
    assert latest.versions == versions  # which metadata vouched for it
    assert c.fetch("acme.echo", "1.1.0").target.version == "1.1.0"
    assert c.fetch("acme.echo", "01.1.0").target.version == "1.1.0"  # by semantic version
    assert c.list_versions("other.skill") == []
    assert c.skills() == ["acme.echo"]


def test_listing_refreshes_first_when_no_refresh_was_done(tmp_path: Path, repo: Repo, mirror) -> None:
    c = client(tmp_path, mirror.url, repo)
    assert [t.version for t in c.list_versions("acme.echo")] == ["1.0.0"]
    assert c.versions.targets == 2


def test_unknown_skill_or_version_is_registry_target_not_found(tmp_path: Path, repo: Repo, mirror) -> None:
    c = client(tmp_path, mirror.url, repo)
    with pytest.raises(SkillLedgerError) as e:
        c.fetch("acme.other")
    assert _code(e) == "registry_target_not_found"
    with pytest.raises(SkillLedgerError) as e:
        c.fetch("acme.echo", "9.9.9")
    assert _code(e) == "registry_target_not_found"
    assert e.value.details["available"] == ["1.0.0"]
    for bad in (("Acme Echo", None), ("acme.echo", "1.0")):
        with pytest.raises(SkillLedgerError) as e:
            c.fetch(*bad)
        assert _code(e) == "invalid_input"


def test_an_idle_refresh_fetches_only_the_next_root_probe_and_the_timestamp(tmp_path: Path, repo: Repo,
                                                                              server: RegistryServer) -> None:
    """ngclient 7: a 404 for root N+1 (no rotation), then timestamp.json; snapshot and targets
    come from the local cache, verified against the timestamp's and snapshot's meta."""
    client(tmp_path, server.url, repo).refresh()
    assert server.requests == {"/metadata/2.root.json": 1, "/metadata/timestamp.json": 1,
                               "/metadata/2.snapshot.json": 1, "/metadata/2.targets.json": 1}
    server.clear_counts()
    client(tmp_path, server.url, repo).refresh()
    assert server.requests == {"/metadata/2.root.json": 1, "/metadata/timestamp.json": 1}
    server.clear_counts()
    repository.refresh_timestamp(repo.dir, now=T0)  # a new timestamp over the same snapshot
    client(tmp_path, server.url, repo).refresh()
    assert server.requests == {"/metadata/2.root.json": 1, "/metadata/timestamp.json": 1}
    server.clear_counts()
    repository.publish(repo.dir, [artifact(version="2.0.0")], now=T0)
    c = client(tmp_path, server.url, repo)
    c.refresh()
    assert server.requests == {"/metadata/2.root.json": 1, "/metadata/timestamp.json": 1,
                               "/metadata/3.snapshot.json": 1, "/metadata/3.targets.json": 1}
    server.clear_counts()
    c.fetch("acme.echo", "2.0.0")
    assert server.requests == {"/" + repo.url_path("acme.echo/2.0.0.palyra-skill").lstrip("/"): 1}


def test_local_cache_files_that_do_not_verify_are_replaced(tmp_path: Path, repo: Repo, mirror) -> None:
    c = client(tmp_path, mirror.url, repo)
    first = c.refresh()
    for name in ("timestamp.json", "snapshot.json", "targets.json"):
        (c.dir / "metadata" / name).write_bytes(b"garbage")
    assert c.refresh() == first
    assert [t.version for t in c.list_versions("acme.echo")] == ["1.0.0"]


def test_the_clock_must_be_timezone_aware(tmp_path: Path, repo: Repo) -> None:
    c = client(tmp_path, "https://h/", repo, clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(SkillLedgerError) as e:
        c.refresh()
    assert _code(e) == "invalid_input"


# --- the journal's floor ---------------------------------------------------------------------


def test_a_floor_above_the_trusted_versions_is_registry_rollback(tmp_path: Path, repo: Repo, mirror) -> None:
    c = client(tmp_path, mirror.url, repo)
    now = c.refresh()
    assert c.refresh(floor=now) == now  # the same versions pass
    ahead = TrustedVersions(now.root, now.timestamp, now.snapshot + 1, now.targets, now.role_keys)
    with pytest.raises(SkillLedgerError) as e:
        c.refresh(floor=ahead)
    assert _code(e) == "registry_rollback"
    assert e.value.details["below"] == {"snapshot": {"trusted": 2, "recorded": 3}}


def test_the_floor_catches_a_replay_after_the_local_cache_was_lost(tmp_path: Path, repo: Repo, mirror) -> None:
    """ngclient's rollback protection lives in its cache; the journal's record survives it."""
    old = {name: repo.meta(name) for name in ("timestamp.json",)}
    repository.publish(repo.dir, [artifact(version="2.0.0")], now=T0)
    mirror.sync()
    c = client(tmp_path, mirror.url, repo)
    recorded = c.refresh()
    shutil.rmtree(c.dir / "metadata")  # the home restored from an old backup, say
    mirror.serve("/metadata/timestamp.json", old["timestamp.json"])  # and a mirror replays v2
    replayed = client(tmp_path, mirror.url, repo).refresh()
    assert replayed.timestamp < recorded.timestamp  # ngclient alone cannot tell
    shutil.rmtree(c.dir / "metadata")
    with pytest.raises(SkillLedgerError) as e:
        c.refresh(floor=recorded)
    assert _code(e) == "registry_rollback"
    assert set(e.value.details["below"]) == {"timestamp", "snapshot", "targets"}
    # a client opened with the floor applies it to the refresh a listing does by itself
    registries = Registries(tmp_path / "home" / "registries")
    guarded = registries.open("main", mirror.url, root_sha256=repo.root_sha256, floor=recorded,
                              clock=lambda: T0 + timedelta(hours=1))
    with pytest.raises(SkillLedgerError) as e:
        guarded.list_versions("acme.echo")
    assert _code(e) == "registry_rollback"


# --- what the registry lists -------------------------------------------------------------------


def test_an_artifact_that_is_not_what_the_registry_lists_is_registry_wrong_target(tmp_path: Path, repo: Repo,
                                                                                  mirror) -> None:
    """Wrong software installation: the registry lists 1.0.0's bytes as 2.0.0 (TUF's length and
    hash match, so only the artifact's own manifest can tell)."""
    data = artifact(version="1.0.0")
    good = repository.publish(repo.dir, [data], now=T0).targets[0]
    fake = TargetInfo("acme.echo/2.0.0.palyra-skill", "acme.echo", "2.0.0", "acme", good.payload_sha256,
                      good.artifact_sha256, good.length)
    rewrite_targets(repo, listed(fake), {served_path(fake.path, fake.artifact_sha256): data})
    mirror.sync()
    with pytest.raises(SkillLedgerError) as e:
        client(tmp_path, mirror.url, repo).fetch("acme.echo", "2.0.0")
    assert _code(e) == "registry_wrong_target"
    assert e.value.details["mismatch"] == {"version": {"listed": "2.0.0", "artifact": "1.0.0"}}


def test_an_entry_that_breaks_the_conventions_is_refused_for_that_skill_only(tmp_path: Path, repo: Repo,
                                                                             mirror) -> None:
    def mutate(targets) -> None:
        tf = targets.targets["acme.echo/1.0.0.palyra-skill"]
        targets.targets["acme.odd/1.0.0.palyra-skill"] = type(tf)(tf.length, tf.hashes, "acme.odd/1.0.0.palyra-skill",
                                                                   {"custom": {"skill_id": "acme.other"}})

    rewrite_targets(repo, mutate)
    mirror.sync()
    c = client(tmp_path, mirror.url, repo)
    assert [t.version for t in c.list_versions("acme.echo")] == ["1.0.0"]
    with pytest.raises(SkillLedgerError) as e:
        c.list_versions("acme.odd")
    assert _code(e) == "registry_metadata_invalid"


def test_a_target_declared_larger_than_an_artifact_may_be_is_not_downloaded(tmp_path: Path, repo: Repo,
                                                                            server: RegistryServer) -> None:
    huge = TargetInfo("acme.echo/5.0.0.palyra-skill", "acme.echo", "5.0.0", "acme", "0" * 64, "1" * 64, 1 << 40)
    rewrite_targets(repo, listed(huge))
    c = client(tmp_path, server.url, repo)
    with pytest.raises(SkillLedgerError) as e:
        c.fetch("acme.echo", "5.0.0")
    assert _code(e) == "artifact_too_large"
    assert not [p for p in server.requests if p.startswith("/targets/")]


def test_an_installed_version_with_another_payload_is_version_conflict() -> None:
    target = TargetInfo("a.b/1.0.0.palyra-skill", "a.b", "1.0.0", "acme", "aa" * 32, "bb" * 32, 10)
    check_installed_payload(target, None)
    check_installed_payload(target, "aa" * 32)
    with pytest.raises(SkillLedgerError) as e:
        check_installed_payload(target, "cc" * 32)
    assert _code(e) == "version_conflict"


def test_clock_defaults_to_now_and_a_fresh_registry_refreshes(tmp_path: Path) -> None:
    now = datetime.now().astimezone()
    repo = make_repo(tmp_path, now=now)
    with RegistryServer(repo.dir) as s:
        registries = Registries(tmp_path / "regs")
        pinned = registries.add("live", s.url, repo.root)
        c = registries.open("live", pinned.url, root_sha256=pinned.root_sha256)
        assert c.refresh().timestamp == 2


def test_local_state_that_cannot_be_written_is_storage_error(tmp_path: Path, repo: Repo) -> None:
    base = tmp_path / "registries"
    base.write_text("a file where the registries directory should be")
    with pytest.raises(SkillLedgerError) as e:
        Registries(base).add("main", "https://h/", repo.root)
    assert _code(e) in ("io", "storage_error")
