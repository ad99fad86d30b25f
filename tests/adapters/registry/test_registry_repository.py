"""The publisher side: a TUF repository of static files written with python-tuf's Metadata API."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from builders import artifact
from registry_kit import T0, make_repo, signed_bytes
from tuf.api.metadata import Metadata, Root

from skill_ledger.adapters.registry import repository
from skill_ledger.adapters.registry.keys import key_files
from skill_ledger.adapters.registry.repository import Expiry, RoleKeys
from skill_ledger.domain.errors import RegistryError, SkillLedgerError


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_init_with_one_shared_key(tmp_path: Path) -> None:
    result = repository.init(tmp_path / "reg", now=T0)
    meta = tmp_path / "reg" / "metadata"
    root = Metadata[Root].from_file(str(meta / "1.root.json"))
    assert root.signed.consistent_snapshot is True
    assert {len(r.keyids) for r in root.signed.roles.values()} == {1}
    assert len({r.keyids[0] for r in root.signed.roles.values()}) == 1  # one key for all four roles
    assert (meta / "root.json").read_bytes() == (meta / "1.root.json").read_bytes()
    assert result.root_sha256 == _sha((meta / "1.root.json").read_bytes())
    for name in ("1.targets.json", "targets.json", "1.snapshot.json", "snapshot.json", "timestamp.json"):
        assert (meta / name).is_file()
    # the expiry periods (defaults) run from the publisher's clock
    assert root.signed.expires == T0 + timedelta(days=365)
    timestamp = Metadata.from_file(str(meta / "timestamp.json")).signed
    assert timestamp.expires == T0 + timedelta(days=1)
    assert result.versions == repository.Versions(1, 1, 1, 1)


def test_keys_live_beside_the_repository_as_0600_pem_files(tmp_path: Path) -> None:
    result = repository.init(tmp_path / "reg", now=T0)
    keys_dir = Path(result.keys_dir)
    assert keys_dir == tmp_path / "reg.keys"  # never inside the directory a web server serves
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    [key] = key_files(keys_dir)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8 PEM
    assert not list((tmp_path / "reg").rglob("*.pem"))


def test_init_with_separate_keys_and_thresholds(tmp_path: Path) -> None:
    roles = {"root": RoleKeys(keys=3, threshold=2), "targets": RoleKeys(keys=2, threshold=2)}
    result = repository.init(tmp_path / "reg", roles=roles, now=T0)
    root = Metadata[Root].from_file(result.root_path)
    assert (len(root.signed.roles["root"].keyids), root.signed.roles["root"].threshold) == (3, 2)
    assert (len(root.signed.roles["targets"].keyids), root.signed.roles["targets"].threshold) == (2, 2)
    assert (len(root.signed.roles["snapshot"].keyids), root.signed.roles["snapshot"].threshold) == (1, 1)
    assert len(root.signatures) == 3  # every root key at hand signs
    all_keyids = [k for r in root.signed.roles.values() for k in r.keyids]
    assert len(all_keyids) == len(set(all_keyids)) == 7
    targets = Metadata.from_file(str(tmp_path / "reg" / "metadata" / "targets.json"))
    assert len(targets.signatures) == 2


def test_init_with_existing_key_files_and_custom_expiry(tmp_path: Path) -> None:
    first = repository.init(tmp_path / "one", now=T0)
    [key] = key_files(Path(first.keys_dir))
    roles = {r: RoleKeys(keys=(key,)) for r in ("root", "targets", "snapshot", "timestamp")}
    expiry = Expiry(timestamp=timedelta(hours=6))
    result = repository.init(tmp_path / "two", roles=roles, expiry=expiry, now=T0)
    assert not Path(result.keys_dir).exists()  # nothing generated: the given key signs
    assert Metadata.from_file(str(tmp_path / "two" / "metadata" / "timestamp.json")).signed.expires == (
        T0 + timedelta(hours=6))
    # the periods are kept for later operations
    repository.refresh_timestamp(tmp_path / "two", keys=[key], now=T0 + timedelta(hours=1))
    assert Metadata.from_file(str(tmp_path / "two" / "metadata" / "timestamp.json")).signed.expires == (
        T0 + timedelta(hours=7))


@pytest.mark.parametrize("roles", [{"root": RoleKeys(keys=1, threshold=2)}, {"root": RoleKeys(keys=0)},
                                   {"mirror": RoleKeys()}])
def test_init_refuses_impossible_key_settings(tmp_path: Path, roles) -> None:
    with pytest.raises(SkillLedgerError) as e:
        repository.init(tmp_path / "reg", roles=roles, now=T0)
    assert e.value.code == "invalid_input"


def test_init_refuses_an_existing_registry(tmp_path: Path) -> None:
    repository.init(tmp_path / "reg", now=T0)
    with pytest.raises(SkillLedgerError) as e:
        repository.init(tmp_path / "reg", now=T0)
    assert e.value.code == "usage_error"


def test_publish_names_targets_and_records_custom_info(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, versions=())
    data = artifact(version="1.2.0")
    result = repository.publish(repo.dir, [data], now=T0)
    [published] = result.targets
    assert published.status == "published"
    assert published.path == "acme.echo/1.2.0.palyra-skill"
    targets = repo.current("targets").signed
    tf = targets.targets["acme.echo/1.2.0.palyra-skill"]
    assert tf.length == len(data) and tf.hashes == {"sha256": _sha(data)}
    assert tf.custom == {"skill_id": "acme.echo", "version": "1.2.0", "publisher": "acme",
                         "payload_sha256": published.payload_sha256}
    # consistent snapshot: the file is served under its hash-prefixed name
    assert (repo.dir / "targets" / "acme.echo" / f"{_sha(data)}.1.2.0.palyra-skill").read_bytes() == data
    assert result.versions == repository.Versions(root=1, targets=2, snapshot=2, timestamp=2)


def test_publish_updates_snapshot_and_timestamp_meta_with_lengths_and_hashes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    targets_bytes = repo.meta("2.targets.json")
    snapshot = repo.current("snapshot").signed
    assert snapshot.meta["targets.json"].version == 2
    assert snapshot.meta["targets.json"].length == len(targets_bytes)
    assert snapshot.meta["targets.json"].hashes == {"sha256": _sha(targets_bytes)}
    snapshot_bytes = repo.meta("2.snapshot.json")
    timestamp = repo.current("timestamp").signed
    assert (timestamp.snapshot_meta.version, timestamp.snapshot_meta.length) == (2, len(snapshot_bytes))
    assert timestamp.snapshot_meta.hashes == {"sha256": _sha(snapshot_bytes)}
    # the previous consistent snapshot stays for clients in the middle of an update
    assert (repo.dir / "metadata" / "1.snapshot.json").is_file()


def test_republishing_the_same_artifact_changes_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    before = {p.name: p.read_bytes() for p in (repo.dir / "metadata").iterdir()}
    result = repository.publish(repo.dir, [artifact(version="1.0.0")], now=T0 + timedelta(hours=1))
    assert [t.status for t in result.targets] == ["unchanged"]
    assert {p.name: p.read_bytes() for p in (repo.dir / "metadata").iterdir()} == before


def test_publish_renew_resigns_targets_with_a_fresh_expiry(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    result = repository.publish(repo.dir, [], now=T0 + timedelta(days=60), renew=True)
    assert result.versions.targets == 3
    assert repo.current("targets").signed.expires == T0 + timedelta(days=150)


# ("01.0.0" was here too: an alias of 1.0.0 can no longer be built, grammars.skill_version)
@pytest.mark.parametrize("version", ["1.0.0"])
def test_republishing_a_version_with_other_bytes_is_version_conflict(tmp_path: Path, version: str) -> None:
    repo = make_repo(tmp_path)
    before = repo.meta("timestamp.json")
    other = artifact(version=version, asset=b"another build")
    with pytest.raises(SkillLedgerError) as e:
        repository.publish(repo.dir, [artifact(version="2.0.0"), other], now=T0)
    assert e.value.code == "version_conflict"
    assert e.value.details["version"] == version
    assert repo.meta("timestamp.json") == before  # all or nothing: 2.0.0 was not published either
    assert "acme.echo/2.0.0.palyra-skill" not in repo.current("targets").signed.targets


def test_two_builds_of_one_version_in_one_publish_conflict(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, versions=())
    with pytest.raises(SkillLedgerError) as e:
        repository.publish(repo.dir, [artifact(version="3.0.0"), artifact(version="3.0.0", asset=b"x")], now=T0)
    assert e.value.code == "version_conflict"


def test_publish_refuses_an_artifact_that_does_not_inspect(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    data = bytearray(artifact(version="2.0.0"))
    data[len(data) // 2] ^= 0xFF
    before = repo.meta("timestamp.json")
    with pytest.raises(SkillLedgerError) as e:
        repository.publish(repo.dir, [bytes(data)], now=T0)
    assert e.value.code in ("zip", "io", "payload_hash_mismatch", "signature_verification_failed")
    assert repo.meta("timestamp.json") == before


def test_publish_reads_artifact_files(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, versions=())
    path = tmp_path / "a.palyra-skill"
    path.write_bytes(artifact(version="4.0.0"))
    assert repository.publish(repo.dir, [path], now=T0).targets[0].version == "4.0.0"
    with pytest.raises(SkillLedgerError) as e:
        repository.publish(repo.dir, [tmp_path / "missing.palyra-skill"], now=T0)
    assert e.value.code == "file_not_found"


def test_publish_without_the_signing_keys_is_registry_keys_missing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, versions=())
    with pytest.raises(SkillLedgerError) as e:
        repository.publish(repo.dir, [artifact()], keys_dir=tmp_path / "empty", now=T0)
    assert e.value.code == "registry_keys_missing"
    assert e.value.details["role"] == "targets"


def test_a_threshold_needs_that_many_keys_at_hand(tmp_path: Path) -> None:
    result = repository.init(tmp_path / "reg", roles={"targets": RoleKeys(keys=2, threshold=2)}, now=T0)
    keys = key_files(Path(result.keys_dir))
    one_targets_key = [k for k in keys if k.name.startswith("targets-")][:1]
    online = [k for k in keys if k.name.startswith(("snapshot-", "timestamp-"))]
    with pytest.raises(SkillLedgerError) as e:
        repository.publish(tmp_path / "reg", [artifact()], keys_dir=tmp_path / "none", keys=one_targets_key + online,
                           now=T0)
    assert e.value.code == "registry_keys_missing"
    assert (e.value.details["threshold"], e.value.details["available"]) == (2, 1)


def test_a_tampered_targets_file_on_the_server_is_refused_not_resigned(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    path = repo.dir / "metadata" / "targets.json"
    doc = json.loads(path.read_bytes())
    doc["signed"]["targets"]["acme.echo/1.0.0.palyra-skill"]["length"] += 1
    path.write_text(json.dumps(doc))
    (repo.dir / "metadata" / "2.targets.json").write_text(json.dumps(doc))
    with pytest.raises(SkillLedgerError) as e:
        repository.publish(repo.dir, [artifact(version="2.0.0")], now=T0)
    assert e.value.code == "registry_bad_signature"


def test_a_root_chain_that_does_not_verify_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    repository.rotate_root(repo.dir, now=T0)
    # a root 3 signed only by a key the chain never authorised
    from securesystemslib.signer import CryptoSigner

    md = Metadata[Root].from_bytes(repo.meta("2.root.json"))
    md.signed.version = 3
    md.signatures.clear()
    md.sign(CryptoSigner.generate_ed25519())
    data = md.to_bytes()
    (repo.dir / "metadata" / "3.root.json").write_bytes(data)
    (repo.dir / "metadata" / "root.json").write_bytes(data)
    with pytest.raises(SkillLedgerError) as e:
        repository.refresh_timestamp(repo.dir, now=T0)
    assert e.value.code == "registry_bad_signature"


def test_unversioned_and_versioned_files_must_agree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    (repo.dir / "metadata" / "2.snapshot.json").write_bytes(repo.meta("1.snapshot.json"))
    with pytest.raises(SkillLedgerError) as e:
        repository.refresh_timestamp(repo.dir, now=T0)
    assert e.value.code == "registry_metadata_invalid"


def test_not_a_registry(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "empty", tmp_path / "absent"):
        with pytest.raises(RegistryError) as e:
            repository.publish(target, [], now=T0)
        assert e.value.code == "registry_error"


def test_refresh_timestamp_bumps_only_the_timestamp_while_the_snapshot_is_fresh(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    result = repository.refresh_timestamp(repo.dir, now=T0 + timedelta(hours=20))
    assert result.renewed == ["timestamp"]
    assert result.versions == repository.Versions(root=1, targets=2, snapshot=2, timestamp=3)
    assert repo.current("timestamp").signed.expires == T0 + timedelta(hours=44)


def test_refresh_timestamp_renews_a_snapshot_close_to_expiry(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    result = repository.refresh_timestamp(repo.dir, now=T0 + timedelta(days=4))  # past half of 7 days
    assert result.renewed == ["snapshot", "timestamp"]
    assert repo.current("snapshot").signed.expires == T0 + timedelta(days=11)


def test_refresh_timestamp_reports_roles_that_need_offline_keys_soon(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    result = repository.refresh_timestamp(repo.dir, now=T0 + timedelta(days=80))
    assert result.expiring_soon == ["targets"]


def test_refresh_timestamp_completes_a_publish_cut_short(tmp_path: Path) -> None:
    """A crash after the new targets file and before the snapshot: the next timer run
    makes the snapshot and timestamp that list it."""
    repo = make_repo(tmp_path)
    md = repo.current("targets")
    md.signed.version = 3
    data = signed_bytes(md, key_files(repo.keys_dir))
    (repo.dir / "metadata" / "3.targets.json").write_bytes(data)
    (repo.dir / "metadata" / "targets.json").write_bytes(data)
    result = repository.refresh_timestamp(repo.dir, now=T0)
    assert result.renewed == ["snapshot", "timestamp"]
    assert repo.current("snapshot").signed.meta["targets.json"].version == 3


def test_rotate_root_is_signed_by_the_old_and_the_new_root_keys(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    old_root = Metadata[Root].from_bytes(repo.meta("1.root.json")).signed
    result = repository.rotate_root(repo.dir, {"root": RoleKeys(keys=2, threshold=2)}, now=T0 + timedelta(days=1))
    new = Metadata[Root].from_bytes(repo.meta("2.root.json"))
    assert result.root_version == 2 and result.root_sha256 == _sha(repo.meta("2.root.json"))
    assert new.signed.roles["root"].threshold == 2
    assert old_root.roles["root"].keyids[0] not in new.signed.roles["root"].keyids
    assert result.revoked_keyids == {"root": old_root.roles["root"].keyids}
    old_root.verify_delegate("root", new.signed_bytes, new.signatures)  # the old keys vouch for it
    new.signed.verify_delegate("root", new.signed_bytes, new.signatures)  # and so do the new ones
    assert new.signed.expires == T0 + timedelta(days=366)
    assert result.versions.snapshot == 3 and result.versions.timestamp == 3
    assert result.versions.targets == 2  # targets keys unchanged: not re-signed


def test_rotating_the_targets_keys_resigns_targets(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    result = repository.rotate_root(repo.dir, {"targets": RoleKeys()}, now=T0)
    root = Metadata[Root].from_bytes(repo.meta("root.json")).signed
    targets = repo.current("targets")
    assert result.versions.targets == 3
    root.verify_delegate("targets", targets.signed_bytes, targets.signatures)


def test_rotate_root_needs_a_threshold_of_the_old_root_keys(tmp_path: Path) -> None:
    result = repository.init(tmp_path / "reg", roles={"root": RoleKeys(keys=2, threshold=2)}, now=T0)
    keys = key_files(Path(result.keys_dir))
    one_root_key = [k for k in keys if k.name.startswith("root-")][:1]
    with pytest.raises(SkillLedgerError) as e:
        repository.rotate_root(tmp_path / "reg", {"root": RoleKeys()}, keys_dir=tmp_path / "none",
                               keys=one_root_key, now=T0)
    assert e.value.code == "registry_keys_missing"


def test_status_reads_versions_without_keys(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    result = repository.status(repo.dir)
    assert result.versions == repository.Versions(root=1, targets=2, snapshot=2, timestamp=2)
    assert result.expires["timestamp"] == (T0 + timedelta(days=1)).isoformat()


def test_a_rotation_without_the_new_online_keys_writes_nothing(tmp_path: Path) -> None:
    """Rotating the timestamp key to a given key file whose holder is away: refused before the
    new root is written (else clients would face a timestamp signed by a revoked key)."""
    result = repository.init(tmp_path / "reg", roles={r: RoleKeys() for r in ("root", "targets", "snapshot",
                                                                              "timestamp")}, now=T0)
    keys = key_files(Path(result.keys_dir))
    root_and_new = [k for k in keys if k.name.startswith("root-")]
    with pytest.raises(SkillLedgerError) as e:
        repository.rotate_root(tmp_path / "reg", {"snapshot": RoleKeys(keys=tuple(root_and_new))},
                               keys_dir=tmp_path / "none", keys=root_and_new, now=T0)
    assert e.value.code == "registry_keys_missing" and e.value.details["role"] == "timestamp"
    assert not (tmp_path / "reg" / "metadata" / "2.root.json").exists()
