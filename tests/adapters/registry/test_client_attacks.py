"""Every TUF attack class a registry client must refuse, each with its stable error code.

The registry here has one key per role, so "the attacker stole the timestamp key" means just
that. Attacks are played by a mirror (the HTTP server on 127.0.0.1, or a file:// copy) that
serves other bytes than the repository has; forged metadata is signed with stolen keys.
The scenarios follow python-tuf's own updater tests (tests/test_updater_top_level_update.py,
whose RepositorySimulator is not shipped in the wheel) on a real repository and transport.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from builders import artifact
from registry_kit import (
    T0,
    CountingFetcher,
    Repo,
    client,
    forge,
    make_repo,
    meta_file,
    rewrite_targets,
)
from registry_server import RegistryServer
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root

from skill_ledger.adapters.registry import repository
from skill_ledger.adapters.registry.keys import ROLES, key_files
from skill_ledger.adapters.registry.repository import RoleKeys
from skill_ledger.adapters.registry.targets import check_installed_payload, from_target_file
from skill_ledger.domain.errors import SkillLedgerError

SPLIT = {role: RoleKeys() for role in ROLES}


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """One key per role; acme.echo 1.0.0 published."""
    return make_repo(tmp_path, roles=SPLIT)


def keys_of(repo: Repo, *roles: str) -> list[Path]:
    return [p for p in key_files(repo.keys_dir) if p.name.split("-")[0] in roles]


def refused(c, code: str, **kw) -> SkillLedgerError:
    with pytest.raises(SkillLedgerError) as e:
        c.refresh(**kw)
    assert e.value.code == code, e.value.to_dict()
    return e.value


def bump_timestamp_to(repo: Repo, snapshot: bytes, version: int, *, hashes: bool = True) -> bytes:
    """A timestamp (signed with the stolen timestamp key) that vouches for ``snapshot``."""
    def mutate(ts) -> None:
        ts.version += 1
        ts.snapshot_meta = meta_file(snapshot, version) if hashes else MetaFile(version)
    return forge(repo, "timestamp", mutate, keys_of(repo, "timestamp"))


# --- rollback --------------------------------------------------------------------------------


def test_rollback_of_timestamp(tmp_path: Path, repo: Repo, mirror) -> None:
    old = repo.meta("timestamp.json")
    repository.refresh_timestamp(repo.dir, now=T0)
    mirror.sync()
    c = client(tmp_path, mirror.url, repo)
    assert c.refresh().timestamp == 3
    mirror.serve("/metadata/timestamp.json", old)  # validly signed, unexpired, older
    error = refused(c, "registry_rollback")
    assert error.details["tuf_error"] == "BadVersionNumberError"
    mirror.reset()
    assert c.refresh().timestamp == 3  # the refused file was not taken into the cache


def test_rollback_of_snapshot_with_a_stolen_timestamp_key(tmp_path: Path, repo: Repo, mirror) -> None:
    repository.publish(repo.dir, [artifact(version="2.0.0")], now=T0)
    mirror.sync()
    c = client(tmp_path, mirror.url, repo)
    assert c.refresh().snapshot == 3
    mirror.serve("/metadata/timestamp.json", bump_timestamp_to(repo, repo.meta("2.snapshot.json"), 2))
    refused(c, "registry_rollback")


def test_rollback_of_targets_with_stolen_online_keys(tmp_path: Path, repo: Repo, mirror) -> None:
    repository.publish(repo.dir, [artifact(version="2.0.0")], now=T0)
    mirror.sync()
    c = client(tmp_path, mirror.url, repo)
    assert c.refresh().targets == 3

    def old_targets(snap) -> None:
        snap.version += 1
        snap.meta["targets.json"] = meta_file(repo.meta("2.targets.json"), 2)

    snapshot = forge(repo, "snapshot", old_targets, keys_of(repo, "snapshot"))
    mirror.serve("/metadata/4.snapshot.json", snapshot)
    mirror.serve("/metadata/timestamp.json", bump_timestamp_to(repo, snapshot, 4))
    error = refused(c, "registry_rollback")
    assert "targets.json version" in error.details["detail"]


def test_a_mirror_replaying_the_whole_older_metadata_set(tmp_path: Path, repo: Repo, mirror) -> None:
    """A malicious mirror serves the metadata of before 2.0.0 (all validly signed)."""
    old_timestamp = repo.meta("timestamp.json")
    repository.publish(repo.dir, [artifact(version="2.0.0")], now=T0)
    mirror.sync()
    c = client(tmp_path, mirror.url, repo)
    assert c.target("acme.echo").version == "2.0.0"
    mirror.serve("/metadata/timestamp.json", old_timestamp)
    refused(c, "registry_rollback")


# --- indefinite freeze -----------------------------------------------------------------------


def test_freeze_expired_timestamp_with_the_injected_clock(tmp_path: Path, repo: Repo, mirror) -> None:
    c = client(tmp_path, mirror.url, repo, clock=lambda: T0 + timedelta(days=1, seconds=1))
    error = refused(c, "registry_expired")
    assert error.details["tuf_error"] == "ExpiredMetadataError"


def test_freeze_a_mirror_that_keeps_serving_an_old_timestamp(tmp_path: Path, repo: Repo, mirror) -> None:
    frozen = repo.meta("timestamp.json")  # expires at T0 + 1 day
    repository.refresh_timestamp(repo.dir, now=T0 + timedelta(hours=20))  # the repository keeps re-signing
    mirror.serve("/metadata/timestamp.json", frozen)
    assert client(tmp_path, mirror.url, repo, clock=lambda: T0 + timedelta(hours=10)).refresh().timestamp == 2
    refused(client(tmp_path, mirror.url, repo, clock=lambda: T0 + timedelta(hours=30)), "registry_expired")
    mirror.reset()
    assert client(tmp_path, mirror.url, repo, clock=lambda: T0 + timedelta(hours=30)).refresh().timestamp == 3


def test_freeze_an_expired_snapshot_under_a_fresh_timestamp(tmp_path: Path, repo: Repo, mirror) -> None:
    def short(snap) -> None:
        snap.version += 1
        snap.expires = T0 + timedelta(hours=2)

    snapshot = forge(repo, "snapshot", short, keys_of(repo, "snapshot"))
    mirror.serve("/metadata/3.snapshot.json", snapshot)
    mirror.serve("/metadata/timestamp.json", bump_timestamp_to(repo, snapshot, 3))
    error = refused(client(tmp_path, mirror.url, repo, clock=lambda: T0 + timedelta(hours=3)), "registry_expired")
    assert "snapshot" in error.details["detail"]


# --- mix-and-match ---------------------------------------------------------------------------


def test_mix_and_match_targets_that_the_snapshot_does_not_vouch_for(tmp_path: Path, repo: Repo, mirror) -> None:
    repository.publish(repo.dir, [artifact(version="2.0.0")], now=T0)
    mirror.serve("/metadata/3.targets.json", repo.meta("2.targets.json"))  # validly signed, other version
    error = refused(client(tmp_path, mirror.url, repo), "registry_mix_and_match")
    assert error.details["tuf_error"] == "LengthOrHashMismatchError"


def test_mix_and_match_a_snapshot_that_the_timestamp_does_not_vouch_for(tmp_path: Path, repo: Repo, mirror) -> None:
    repository.publish(repo.dir, [artifact(version="2.0.0")], now=T0)
    mirror.serve("/metadata/3.snapshot.json", repo.meta("2.snapshot.json"))
    refused(client(tmp_path, mirror.url, repo), "registry_mix_and_match")


def test_mix_and_match_by_version_when_the_meta_has_no_hashes(tmp_path: Path, repo: Repo, mirror) -> None:
    """Without hashes in the timestamp's meta only the version check is left: still refused."""
    mirror.serve("/metadata/3.snapshot.json", repo.meta("2.snapshot.json"))
    mirror.serve("/metadata/timestamp.json", bump_timestamp_to(repo, b"", 3, hashes=False))
    error = refused(client(tmp_path, mirror.url, repo), "registry_mix_and_match")
    assert error.details["tuf_error"] == "BadVersionNumberError"


# --- arbitrary installation / malicious mirrors ----------------------------------------------


def _target_url_path(repo: Repo, version: str) -> str:
    return repo.url_path(f"acme.echo/{version}.palyra-skill")


@pytest.mark.parametrize("tamper", ["other_artifact", "one_byte_flipped", "truncated"])
def test_arbitrary_package_whose_length_or_hash_differs(tmp_path: Path, repo: Repo, mirror, tamper: str) -> None:
    real = artifact(version="1.0.0")
    body = {"other_artifact": artifact(version="1.0.0", asset=b"evil"),
            "one_byte_flipped": real[:-1] + bytes([real[-1] ^ 1]),
            "truncated": real[:100]}[tamper]
    mirror.serve(_target_url_path(repo, "1.0.0"), body)
    with pytest.raises(SkillLedgerError) as e:
        client(tmp_path, mirror.url, repo).fetch("acme.echo", "1.0.0")
    assert e.value.code == "registry_length_or_hash_mismatch"
    assert e.value.details["target"] == "acme.echo/1.0.0.palyra-skill"


def test_malicious_mirror_serving_a_validly_signed_older_artifact(tmp_path: Path, repo: Repo, mirror) -> None:
    """1.0.0 is a genuine artifact of the publisher, but the current targets metadata vouches
    for 2.0.0 at that path: the client takes only what the current metadata vouches for."""
    repository.publish(repo.dir, [artifact(version="2.0.0")], now=T0)
    mirror.sync()
    mirror.serve(_target_url_path(repo, "2.0.0"), artifact(version="1.0.0"))
    c = client(tmp_path, mirror.url, repo)
    assert c.target("acme.echo").version == "2.0.0"
    with pytest.raises(SkillLedgerError) as e:
        c.fetch("acme.echo")
    assert e.value.code == "registry_length_or_hash_mismatch"


# --- endless data ----------------------------------------------------------------------------


def _wait_for(predicate, seconds: float = 15.0) -> bool:
    end = time.monotonic() + seconds
    while not predicate() and time.monotonic() < end:
        time.sleep(0.02)
    return predicate()


def test_endless_target_is_cut_while_streaming(tmp_path: Path, repo: Repo, server: RegistryServer,
                                               fetcher: CountingFetcher) -> None:
    path = _target_url_path(repo, "1.0.0")
    server.endless(path)  # the real artifact, then zeros without end
    c = client(tmp_path, server.url, repo, fetcher=fetcher)
    length = c.target("acme.echo").length
    with pytest.raises(SkillLedgerError) as e:
        c.fetch("acme.echo")
    assert e.value.code == "registry_length_or_hash_mismatch"
    assert e.value.details["tuf_error"] == "DownloadLengthMismatchError"
    # the client stopped one chunk past the declared length, and closed the connection
    assert fetcher.received[server.url + path.lstrip("/")] <= length + fetcher.chunk_size
    assert _wait_for(lambda: server.outcome.get(path) == "client_closed")
    assert server.bytes_sent[path] < 64 * 1024 * 1024  # far from the server's own cap


def test_a_longer_body_with_a_content_length_is_cut_and_the_connection_closed(
        tmp_path: Path, repo: Repo, server: RegistryServer, fetcher: CountingFetcher) -> None:
    """On a keep-alive connection: the client must not leave the server sending the rest."""
    path = _target_url_path(repo, "1.0.0")
    server.serve(path, b"\0" * (48 * 1024 * 1024))
    c = client(tmp_path, server.url, repo, fetcher=fetcher)
    with pytest.raises(SkillLedgerError) as e:
        c.fetch("acme.echo")
    assert e.value.code == "registry_length_or_hash_mismatch"
    assert fetcher.received[server.url + path.lstrip("/")] <= c.target("acme.echo").length + fetcher.chunk_size
    assert _wait_for(lambda: server.outcome.get(path) == "client_closed")


@pytest.mark.parametrize("role", ["timestamp.json", "3.snapshot.json", "3.targets.json"])
def test_endless_metadata_is_cut_at_its_declared_or_maximum_length(tmp_path: Path, repo: Repo,
                                                                   server: RegistryServer, fetcher: CountingFetcher,
                                                                   role: str) -> None:
    repository.publish(repo.dir, [artifact(version="2.0.0")], now=T0)
    server.endless(f"/metadata/{role}")
    c = client(tmp_path, server.url, repo, fetcher=fetcher)
    error = refused(c, "registry_length_or_hash_mismatch")
    assert error.details["tuf_error"] == "DownloadLengthMismatchError"
    if role == "timestamp.json":  # no parent declares its length: ngclient's maximum applies
        limit = c._config.timestamp_max_length
    else:
        limit = len(repo.meta(role))  # the length the parent declared
    assert fetcher.received[f"{server.url}metadata/{role}"] <= limit + fetcher.chunk_size


def test_endless_target_from_a_file_url(tmp_path: Path, repo: Repo, fetcher: CountingFetcher) -> None:
    mirror = tmp_path / "mirror"
    import shutil

    shutil.copytree(repo.dir, mirror)
    target = mirror / _target_url_path(repo, "1.0.0").lstrip("/")
    with open(target, "r+b") as f:
        f.truncate(1 << 30)  # a 1 GiB (sparse) file where 1.9 KB are declared
    c = client(tmp_path, mirror.as_uri(), repo, fetcher=fetcher)
    with pytest.raises(SkillLedgerError) as e:
        c.fetch("acme.echo")
    assert e.value.code == "registry_length_or_hash_mismatch"
    assert fetcher.received[target.as_uri()] <= c.target("acme.echo").length + fetcher.chunk_size


# --- fast-forward attack recovery (TUF spec 5.3.11) --------------------------------------------


def test_fast_forward_of_timestamp_recovers_after_timestamp_key_rotation(tmp_path: Path, repo: Repo, mirror) -> None:
    c = client(tmp_path, mirror.url, repo)
    c.refresh()
    forged = forge(repo, "timestamp", lambda ts: setattr(ts, "version", 99999), keys_of(repo, "timestamp"))
    mirror.serve("/metadata/timestamp.json", forged)
    fast_forwarded = c.refresh()
    assert fast_forwarded.timestamp == 99999  # the attack succeeded: the key was stolen
    mirror.reset()
    refused(c, "registry_rollback")  # the repository's own timestamp now looks like a rollback
    repository.rotate_root(repo.dir, {"timestamp": RoleKeys()}, now=T0)
    mirror.sync()
    recovered = c.refresh(floor=fast_forwarded)  # the journal's record of 99999 falls with the key
    assert (recovered.root, recovered.timestamp) == (2, 3)
    assert recovered.role_keys["timestamp"] != fast_forwarded.role_keys["timestamp"]


def test_fast_forward_of_snapshot_recovers_after_snapshot_and_timestamp_key_rotation(tmp_path: Path, repo: Repo,
                                                                                     mirror) -> None:
    c = client(tmp_path, mirror.url, repo)
    c.refresh()
    snapshot = forge(repo, "snapshot", lambda s: setattr(s, "version", 99999), keys_of(repo, "snapshot"))
    mirror.serve("/metadata/99999.snapshot.json", snapshot)
    mirror.serve("/metadata/timestamp.json", bump_timestamp_to(repo, snapshot, 99999))
    fast_forwarded = c.refresh()
    assert fast_forwarded.snapshot == 99999
    mirror.reset()
    refused(c, "registry_rollback")
    repository.rotate_root(repo.dir, {"snapshot": RoleKeys(), "timestamp": RoleKeys()}, now=T0)
    mirror.sync()
    recovered = c.refresh(floor=fast_forwarded)
    assert (recovered.root, recovered.snapshot) == (2, 3)


def test_fast_forward_of_targets_recovers_after_snapshot_key_rotation(tmp_path: Path, repo: Repo, mirror) -> None:
    c = client(tmp_path, mirror.url, repo)
    c.refresh()
    online = keys_of(repo, "targets", "snapshot", "timestamp")
    targets = forge(repo, "targets", lambda t: setattr(t, "version", 99999), keys_of(repo, "targets"))

    def point(snap) -> None:
        snap.version += 1
        snap.meta["targets.json"] = meta_file(targets, 99999)

    snapshot = forge(repo, "snapshot", point, online)
    mirror.serve("/metadata/99999.targets.json", targets)
    mirror.serve("/metadata/3.snapshot.json", snapshot)
    mirror.serve("/metadata/timestamp.json", bump_timestamp_to(repo, snapshot, 3))
    fast_forwarded = c.refresh()
    assert fast_forwarded.targets == 99999
    mirror.reset()
    # the repository moves on past the forged snapshot and timestamp versions (3): targets 4
    repository.publish(repo.dir, [artifact(version="2.0.0")], now=T0)
    repository.publish(repo.dir, [], now=T0, renew=True)
    mirror.sync()
    refused(c, "registry_rollback")  # targets 4 after 99999
    repository.rotate_root(repo.dir, {"snapshot": RoleKeys(), "targets": RoleKeys()}, now=T0)
    mirror.sync()
    recovered = c.refresh(floor=fast_forwarded)
    assert recovered.targets == 5
    assert [t.version for t in c.list_versions("acme.echo")] == ["1.0.0", "2.0.0"]


def test_a_floor_is_kept_when_no_key_was_rotated(tmp_path: Path, repo: Repo, mirror) -> None:
    """A root rotation that leaves the timestamp keys alone does not lift the timestamp floor."""
    c = client(tmp_path, mirror.url, repo)
    now = c.refresh()
    repository.rotate_root(repo.dir, {"targets": RoleKeys()}, now=T0)
    mirror.sync()
    ahead = type(now)(now.root, now.timestamp + 10, now.snapshot, now.targets, now.role_keys)
    error = refused(c, "registry_rollback", floor=ahead)
    assert set(error.details["below"]) == {"timestamp"}


# --- key compromise: signatures below threshold, unauthorised keys ----------------------------


def test_targets_signed_below_threshold(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, roles={**SPLIT, "targets": RoleKeys(keys=2, threshold=2)})
    one_targets_key = keys_of(repo, "targets")[:1]

    def add_evil(targets) -> None:
        targets.version += 1
        tf = targets.targets["acme.echo/1.0.0.palyra-skill"]
        targets.targets["acme.echo/6.6.6.palyra-skill"] = type(tf)(tf.length, tf.hashes, "acme.echo/6.6.6.palyra-skill",
                                                                    tf.unrecognized_fields)

    targets = forge(repo, "targets", add_evil, one_targets_key)  # one stolen key of the two needed

    def point(snap) -> None:
        snap.version += 1
        snap.meta["targets.json"] = meta_file(targets, 3)

    snapshot = forge(repo, "snapshot", point, keys_of(repo, "snapshot"))
    with RegistryServer(repo.dir) as server:
        server.serve("/metadata/3.targets.json", targets)
        server.serve("/metadata/3.snapshot.json", snapshot)
        server.serve("/metadata/timestamp.json", bump_timestamp_to(repo, snapshot, 3))
        error = refused(client(tmp_path, server.url, repo), "registry_bad_signature")
    assert error.details["tuf_error"] == "UnsignedMetadataError"


def test_metadata_signed_by_an_unauthorised_key(tmp_path: Path, repo: Repo, mirror) -> None:
    md = repo.current("timestamp")
    md.signed.version += 1
    md.sign(CryptoSigner.generate_ed25519())  # replaces the signature
    mirror.serve("/metadata/timestamp.json", md.to_bytes())
    refused(client(tmp_path, mirror.url, repo), "registry_bad_signature")


def test_a_new_root_not_signed_by_the_old_root_keys(tmp_path: Path, repo: Repo, mirror) -> None:
    """An attacker without the root key cannot rotate the root: root 2 signed by its own new key only."""
    new = CryptoSigner.generate_ed25519()
    md = Metadata[Root].from_bytes(repo.root)
    md.signed.version = 2
    old_keyid = md.signed.roles["root"].keyids[0]
    md.signed.revoke_key(old_keyid, "root")
    md.signed.add_key(new.public_key, "root")
    md.sign(new)
    mirror.serve("/metadata/2.root.json", md.to_bytes())
    refused(client(tmp_path, mirror.url, repo), "registry_bad_signature")


def test_root_rotation_is_followed_by_a_client(tmp_path: Path, repo: Repo, mirror) -> None:
    c = client(tmp_path, mirror.url, repo)
    assert c.refresh().root == 1
    repository.rotate_root(repo.dir, {"root": RoleKeys(keys=3, threshold=2)}, now=T0)
    repository.rotate_root(repo.dir, {"root": RoleKeys()}, now=T0)
    mirror.sync()
    assert c.refresh().root == 3


# --- same version, other bytes ------------------------------------------------------------------


def test_same_version_with_another_digest(tmp_path: Path, repo: Repo, mirror) -> None:
    """The publisher refuses it; a registry whose targets key is abused to swap 1.0.0 anyway is
    TUF-valid, so the client exposes the listed payload and the install path's check refuses
    it against the payload the journal recorded."""
    c = client(tmp_path, mirror.url, repo)
    installed = c.fetch("acme.echo", "1.0.0").target.payload_sha256
    swapped = artifact(version="1.0.0", asset=b"swapped")
    with pytest.raises(SkillLedgerError) as e:
        repository.publish(repo.dir, [swapped], now=T0)
    assert e.value.code == "version_conflict"

    info = repository.artifact_target(swapped)
    skill, _, name = info.path.rpartition("/")

    def swap(targets) -> None:
        from skill_ledger.adapters.registry.targets import to_target_file

        targets.targets[info.path] = to_target_file(info)

    rewrite_targets(repo, swap, {f"targets/{skill}/{info.artifact_sha256}.{name}": swapped})
    mirror.sync()
    c.refresh()
    listed = c.target("acme.echo", "1.0.0")
    assert listed.payload_sha256 == info.payload_sha256 != installed
    with pytest.raises(SkillLedgerError) as e:
        check_installed_payload(listed, installed)
    assert e.value.code == "version_conflict"
    assert from_target_file(info.path, c._updater.get_targetinfo(info.path)) == listed


# --- slow retrieval, outages, garbage ---------------------------------------------------------


def test_slow_retrieval_a_server_that_does_not_answer(tmp_path: Path, repo: Repo, server: RegistryServer) -> None:
    server.delay("/metadata/timestamp.json", 3)
    fetcher = CountingFetcher(connect_timeout=1, read_timeout=0.3, total_timeout=10)
    error = refused(client(tmp_path, server.url, repo, fetcher=fetcher), "registry_unavailable")
    assert error.details["reason"] == "slow_retrieval"


def test_slow_retrieval_a_server_that_drips_bytes(tmp_path: Path, repo: Repo, server: RegistryServer) -> None:
    """Each byte comes well within the read timeout; the whole-download deadline stops it."""
    server.drip(_target_url_path(repo, "1.0.0"), 0.05)
    fetcher = CountingFetcher(connect_timeout=1, read_timeout=5, total_timeout=0.5)
    c = client(tmp_path, server.url, repo, fetcher=fetcher)
    c.refresh()
    with pytest.raises(SkillLedgerError) as e:
        c.fetch("acme.echo")
    assert e.value.code == "registry_unavailable"
    assert e.value.details["reason"] == "slow_retrieval"


@pytest.mark.parametrize("status", [500, 404, 403])
def test_an_error_status_for_the_timestamp_is_registry_unavailable(tmp_path: Path, repo: Repo,
                                                                   server: RegistryServer, status: int) -> None:
    server.status("/metadata/timestamp.json", status)
    error = refused(client(tmp_path, server.url, repo), "registry_unavailable")
    assert error.details["status"] == status


def test_a_missing_target_file_is_registry_unavailable(tmp_path: Path, repo: Repo, mirror) -> None:
    c = client(tmp_path, mirror.url, repo)
    c.refresh()
    if hasattr(mirror, "server"):
        mirror.server.missing(_target_url_path(repo, "1.0.0"))
    else:
        os.remove(Path(mirror.root) / _target_url_path(repo, "1.0.0").lstrip("/"))
    with pytest.raises(SkillLedgerError) as e:
        c.fetch("acme.echo")
    assert e.value.code == "registry_unavailable"


def test_a_server_that_is_gone_is_registry_unavailable(tmp_path: Path, repo: Repo) -> None:
    with RegistryServer(repo.dir) as server:
        url = server.url
    error = refused(client(tmp_path, url, repo), "registry_unavailable")
    assert error.details["tuf_error"] == "DownloadError"


@pytest.mark.parametrize("body", [b"garbage", b"{}", "snapshot"])
def test_garbage_or_another_role_as_timestamp_is_registry_metadata_invalid(tmp_path: Path, repo: Repo, mirror,
                                                                           body) -> None:
    mirror.serve("/metadata/timestamp.json", repo.meta("2.snapshot.json") if body == "snapshot" else body)
    refused(client(tmp_path, mirror.url, repo), "registry_metadata_invalid")
