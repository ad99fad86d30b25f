"""The TUF attacks against ``skills install --registry`` and ``skills update``, end to end through
the CLI: each is refused with its stable code and exit status, and leaves a
``registry.update_refused`` event (code, python-tuf's exception, phase) in the journal, while
the installed skill stays as it was.

The registry has one key per role (so "the attacker stole the timestamp key" means just that)
and is signed at the real time: the CLI reads the real clock. The mirror is the misbehaving
HTTP server on 127.0.0.1 or a file:// copy (``mirror`` is parametrized over both). The
client-level scenarios with an injected clock are in ``tests/adapters/registry``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters" / "registry"))
from builders import artifact  # noqa: E402
from registry_cli_kit import Skills, doc, now, real_repo, resign_targets  # noqa: E402
from registry_kit import FileMirror, HttpMirror, Repo, forge, make_repo, meta_file, served_path  # noqa: E402
from registry_server import RegistryServer  # noqa: E402
from tuf.api.metadata import MetaFile  # noqa: E402

from skill_ledger.adapters.registry import repository  # noqa: E402
from skill_ledger.adapters.registry.keys import ROLES, key_files  # noqa: E402
from skill_ledger.adapters.registry.repository import RoleKeys  # noqa: E402
from skill_ledger.adapters.registry.targets import to_target_file  # noqa: E402
from skill_ledger.cli.errors import exit_code_for  # noqa: E402

SPLIT = {role: RoleKeys() for role in ROLES}


@dataclass
class Fleet:
    repo: Repo
    mirror: FileMirror | HttpMirror
    skills: Skills

    def sync(self) -> None:
        self.mirror.sync()

    def keys(self, *roles: str) -> list[Path]:
        return [p for p in key_files(self.repo.keys_dir) if p.name.split("-")[0] in roles]

    def target_url_path(self, version: str) -> str:
        return self.repo.url_path(f"acme.echo/{version}.palyra-skill")

    def current(self) -> str:
        [entry] = self.skills.ok("list", "--current-only")["entries"]
        return entry["version"]


def _mirror(kind: str, repo: Repo, tmp: Path, stack):
    if kind == "file":
        m = FileMirror(repo.dir, tmp / "mirror")
        m.sync()
        return m
    return HttpMirror(stack.enter_context(RegistryServer(repo.dir)))


def _fleet(request, tmp: Path, repo: Repo, kind: str = "http", *, install: bool = True) -> Fleet:
    stack = contextlib.ExitStack()
    request.addfinalizer(stack.close)
    mirror = _mirror(kind, repo, tmp, stack)
    (tmp / "1.root.json").write_bytes(repo.root)
    fleet = Fleet(repo, mirror, Skills(tmp / "home"))
    fleet.skills.ok("registry", "add", "main", mirror.url, "--root", tmp / "1.root.json")
    if install:
        fleet.skills.ok("install", "--registry", "main", "--skill-id", "acme.echo", "--allow-tofu")
    return fleet


@pytest.fixture(params=["http", "file"])
def fleet(request, tmp_path: Path) -> Fleet:
    """acme.echo 1.0.0 installed from a registry with one key per role, over HTTP or file://."""
    return _fleet(request, tmp_path, real_repo(tmp_path, roles=SPLIT), request.param)


@pytest.fixture
def http_fleet(request, tmp_path: Path) -> Fleet:
    return _fleet(request, tmp_path, real_repo(tmp_path, roles=SPLIT))


def refused(fleet: Fleet, args: list[str], code: str, phase: str, tuf_error: str | None, *,
            skill_id: str | None = None) -> dict:
    """``skills ARGS --json`` is refused with ``code`` (its exit status), and exactly one
    ``registry.update_refused`` event says so; the event."""
    before = len(fleet.skills.refusals())
    r = fleet.skills(*args, "--json")
    assert r.exit_code == exit_code_for(code), (r.exit_code, r.stderr)
    assert f"error[{code}]" in r.stderr
    d = doc(r)
    error = d["error"] if "error" in d else next(x["error"] for x in d["results"] if x["error"])
    assert error["code"] == code, error
    events = fleet.skills.refusals()
    assert len(events) == before + 1, events
    event = events[-1]
    assert (event["code"], event["phase"], event["tuf_error"]) == (code, phase, tuf_error), event
    assert event["skill_id"] == skill_id and event["name"] == "main"
    assert error["details"]["positions"][-1] == fleet.skills.events("registry.update_refused")[-1]["position"]
    return event


def bump_timestamp_to(fleet: Fleet, snapshot: bytes, version: int) -> bytes:
    """A timestamp signed with the stolen timestamp key that vouches for ``snapshot``."""
    def mutate(ts) -> None:
        ts.version += 1
        ts.snapshot_meta = meta_file(snapshot, version)
    return forge(fleet.repo, "timestamp", mutate, fleet.keys("timestamp"))


def publish(fleet: Fleet, *versions: str) -> None:
    repository.publish(fleet.repo.dir, [artifact(version=v) for v in versions])
    fleet.sync()


# --- rollback -------------------------------------------------------------------------------------


def test_rollback_of_timestamp(fleet: Fleet) -> None:
    old = fleet.repo.meta("timestamp.json")
    repository.refresh_timestamp(fleet.repo.dir)
    fleet.sync()
    assert fleet.skills.ok("registry", "refresh")["registries"][0]["metadata"]["timestamp"] == 3
    fleet.mirror.serve("/metadata/timestamp.json", old)  # validly signed, unexpired, older
    event = refused(fleet, ["update", "--all"], "registry_rollback", "metadata", "BadVersionNumberError")
    assert "must be >= 3" in event["detail"] and event["operation"] == "update"
    assert fleet.current() == "1.0.0"


def test_rollback_of_snapshot_with_a_stolen_timestamp_key(fleet: Fleet) -> None:
    publish(fleet, "2.0.0")
    assert fleet.skills.ok("update", "--all")["results"][0]["outcome"] == "updated"  # trusts snapshot 3
    fleet.mirror.serve("/metadata/timestamp.json", bump_timestamp_to(fleet, fleet.repo.meta("2.snapshot.json"), 2))
    refused(fleet, ["update", "acme.echo"], "registry_rollback", "metadata", "BadVersionNumberError",
            skill_id="acme.echo")
    assert fleet.current() == "2.0.0"


def test_rollback_of_targets_with_stolen_online_keys(fleet: Fleet) -> None:
    publish(fleet, "2.0.0")
    fleet.skills.ok("update", "--all")  # trusts targets 3

    def old_targets(snap) -> None:
        snap.version += 1
        snap.meta["targets.json"] = meta_file(fleet.repo.meta("2.targets.json"), 2)

    snapshot = forge(fleet.repo, "snapshot", old_targets, fleet.keys("snapshot"))
    fleet.mirror.serve("/metadata/4.snapshot.json", snapshot)
    fleet.mirror.serve("/metadata/timestamp.json", bump_timestamp_to(fleet, snapshot, 4))
    event = refused(fleet, ["update", "--all"], "registry_rollback", "metadata", "BadVersionNumberError")
    assert "targets.json version" in event["detail"]
    assert fleet.current() == "2.0.0"


def test_a_mirror_replaying_older_metadata_after_the_local_cache_is_lost(fleet: Fleet) -> None:
    """ngclient's own rollback protection lives in its cache; the journal's floor does not."""
    old_timestamp = fleet.repo.meta("timestamp.json")  # vouches for snapshot 2, targets 2: 1.0.0 only
    publish(fleet, "2.0.0")
    fleet.skills.ok("update", "--all")
    shutil.rmtree(fleet.skills.home / "registries" / "main" / "metadata")
    fleet.mirror.serve("/metadata/timestamp.json", old_timestamp)
    event = refused(fleet, ["update", "--all"], "registry_rollback", "metadata", None)
    assert "older than recorded before" in event["detail"]
    assert fleet.current() == "2.0.0"


# --- indefinite freeze ----------------------------------------------------------------------------


@pytest.mark.parametrize("fleet_kind", ["http", "file"])
def test_freeze_a_mirror_serving_metadata_that_expired(request, tmp_path: Path, fleet_kind: str) -> None:
    """Everything was signed two days ago; the timestamp was valid for one day. The CLI's clock
    is the real one: no test seam; the injected-clock scenarios are in-process tests."""
    repo = make_repo(tmp_path, roles=SPLIT, now=now() - timedelta(days=2))
    fleet = _fleet(request, tmp_path, repo, fleet_kind, install=False)
    refused(fleet, ["install", "--registry", "main", "--skill-id", "acme.echo", "--allow-tofu"],
            "registry_expired", "metadata", "ExpiredMetadataError", skill_id="acme.echo")
    assert fleet.skills.ok("list")["count"] == 0
    repository.refresh_timestamp(repo.dir)  # the publisher's timer runs again: the freeze ends
    fleet.sync()
    fleet.skills.ok("install", "--registry", "main", "--skill-id", "acme.echo", "--allow-tofu")


# --- mix-and-match --------------------------------------------------------------------------------


def test_mix_and_match_targets_the_snapshot_does_not_vouch_for(fleet: Fleet) -> None:
    publish(fleet, "2.0.0")
    fleet.mirror.serve("/metadata/3.targets.json", fleet.repo.meta("2.targets.json"))  # validly signed
    refused(fleet, ["update", "--all"], "registry_mix_and_match", "metadata", "LengthOrHashMismatchError")
    assert fleet.current() == "1.0.0"


def test_mix_and_match_by_version_when_the_timestamp_gives_no_hashes(fleet: Fleet) -> None:
    def no_hashes(ts) -> None:
        ts.version += 1
        ts.snapshot_meta = MetaFile(3)

    fleet.mirror.serve("/metadata/3.snapshot.json", fleet.repo.meta("2.snapshot.json"))
    fleet.mirror.serve("/metadata/timestamp.json", forge(fleet.repo, "timestamp", no_hashes, fleet.keys("timestamp")))
    refused(fleet, ["update", "--all"], "registry_mix_and_match", "metadata", "BadVersionNumberError")


# --- arbitrary package, malicious mirror, endless data ----------------------------------------------


def test_arbitrary_package_whose_hash_differs(fleet: Fleet) -> None:
    publish(fleet, "2.0.0")
    fleet.mirror.serve(fleet.target_url_path("2.0.0"), artifact(version="2.0.0", asset=b"evil"))
    event = refused(fleet, ["update", "--all"], "registry_length_or_hash_mismatch", "target",
                    "LengthOrHashMismatchError", skill_id="acme.echo")
    assert event["version"] == "2.0.0"
    assert fleet.current() == "1.0.0"
    rejected = fleet.skills.events("artifact.rejected")
    assert rejected == []  # never handed to the install path


def test_a_malicious_mirror_serving_a_validly_signed_older_artifact(fleet: Fleet) -> None:
    """1.0.0 is the publisher's genuine, signed artifact; served as 2.0.0 it is refused by TUF's hash."""
    publish(fleet, "2.0.0")
    fleet.mirror.serve(fleet.target_url_path("2.0.0"), artifact(version="1.0.0"))
    refused(fleet, ["update", "--all"], "registry_length_or_hash_mismatch", "target", "LengthOrHashMismatchError",
            skill_id="acme.echo")
    assert fleet.current() == "1.0.0"


def test_endless_target_over_http(http_fleet: Fleet) -> None:
    publish(http_fleet, "2.0.0")
    server = http_fleet.mirror.server
    path = http_fleet.target_url_path("2.0.0")
    server.endless(path)  # the real artifact, then zeros without end
    refused(http_fleet, ["update", "--all"], "registry_length_or_hash_mismatch", "target",
            "DownloadLengthMismatchError", skill_id="acme.echo")
    assert server.bytes_sent[path] < 64 * 1024 * 1024  # the client hung up long before the server's cap


def test_endless_timestamp_over_http(http_fleet: Fleet) -> None:
    http_fleet.mirror.server.endless("/metadata/timestamp.json")
    refused(http_fleet, ["update", "--all"], "registry_length_or_hash_mismatch", "metadata",
            "DownloadLengthMismatchError")


def test_endless_target_from_a_file_url(tmp_path: Path, request) -> None:
    fleet = _fleet(request, tmp_path, real_repo(tmp_path, roles=SPLIT), "file")
    publish(fleet, "2.0.0")
    with open(Path(fleet.mirror.root) / fleet.target_url_path("2.0.0").lstrip("/"), "r+b") as f:
        f.truncate(1 << 30)  # a sparse 1 GiB file where 2 KB are declared
    refused(fleet, ["update", "--all"], "registry_length_or_hash_mismatch", "target", "DownloadLengthMismatchError",
            skill_id="acme.echo")


# --- fast-forward recovery, key compromise --------------------------------------------------------


def test_fast_forward_recovery_after_a_timestamp_key_rotation(fleet: Fleet) -> None:
    forged = forge(fleet.repo, "timestamp", lambda ts: setattr(ts, "version", 99999), fleet.keys("timestamp"))
    fleet.mirror.serve("/metadata/timestamp.json", forged)
    attacked = fleet.skills.ok("registry", "refresh")["registries"][0]
    assert attacked["metadata"]["timestamp"] == 99999  # the key was stolen: TUF accepts it, the journal records it
    fleet.mirror.reset()
    refused(fleet, ["update", "--all"], "registry_rollback", "metadata", "BadVersionNumberError")
    r = fleet.skills("registry", "rotate-root", fleet.repo.dir, "--keys", "timestamp=1", "--json")
    assert r.exit_code == 0 and doc(r)["root_version"] == 2, r.stderr
    fleet.sync()
    d = fleet.skills.ok("update", "--all")
    assert d["results"][0]["outcome"] == "up_to_date"
    assert d["registries"][0]["metadata"] == {"root": 2, "timestamp": 3, "snapshot": 3, "targets": 2}
    trusted = [e["data"] for e in fleet.skills.events("registry.metadata_trusted")]
    assert trusted[-2]["metadata"]["timestamp"] == 99999
    assert trusted[-1]["role_keys"]["timestamp"] != trusted[-2]["role_keys"]["timestamp"]  # the floor fell with the key


def test_targets_signed_below_their_threshold(tmp_path: Path, request) -> None:
    repo = real_repo(tmp_path, roles={**SPLIT, "targets": RoleKeys(keys=2, threshold=2)})
    fleet = _fleet(request, tmp_path, repo)
    evil = artifact(version="6.6.6", asset=b"evil")
    info = repository.artifact_target(evil)

    def add_evil(targets) -> None:
        targets.version += 1
        targets.targets[info.path] = to_target_file(info)

    targets = forge(repo, "targets", add_evil, fleet.keys("targets")[:1])  # one stolen key of the two needed

    def point(snap) -> None:
        snap.version += 1
        snap.meta["targets.json"] = meta_file(targets, 3)

    snapshot = forge(repo, "snapshot", point, fleet.keys("snapshot"))
    server = fleet.mirror.server
    server.serve("/metadata/3.targets.json", targets)
    server.serve("/" + served_path(info.path, info.artifact_sha256), evil)
    server.serve("/metadata/3.snapshot.json", snapshot)
    server.serve("/metadata/timestamp.json", bump_timestamp_to(fleet, snapshot, 3))
    refused(fleet, ["update", "--all"], "registry_bad_signature", "metadata", "UnsignedMetadataError")
    assert fleet.current() == "1.0.0"


# --- skill-level rollback and version conflicts ---------------------------------------------------


def _withdraw(fleet: Fleet, version: str, files: dict[str, bytes] | None = None, add: bytes | None = None) -> None:
    """The registry's targets role re-signs a listing without ``version`` (and with ``add``)."""
    extra = repository.artifact_target(add) if add is not None else None

    def mutate(targets) -> None:
        del targets.targets[f"acme.echo/{version}.palyra-skill"]
        if extra is not None:
            targets.targets[extra.path] = to_target_file(extra)

    if extra is not None:
        files = {served_path(extra.path, extra.artifact_sha256): add}
    resign_targets(fleet.repo, mutate, files)
    fleet.sync()


def test_a_registry_that_now_vouches_for_less_is_downgrade_refused(fleet: Fleet) -> None:
    publish(fleet, "2.0.0")
    fleet.skills.ok("update", "--all")
    _withdraw(fleet, "2.0.0")  # TUF-valid: signed by the targets key, a newer targets version
    event = refused(fleet, ["update", "--all"], "downgrade_refused", "listing", None, skill_id="acme.echo")
    assert event["version"] == "1.0.0"
    refused(fleet, ["install", "--registry", "main", "--skill-id", "acme.echo"], "downgrade_refused", "listing", None,
            skill_id="acme.echo")
    assert fleet.current() == "2.0.0"
    # the operator accepts it, with a reason: 1.0.0 is still installed, so it becomes current again
    d = fleet.skills.ok("update", "--all", "--allow-downgrade", "--reason", "2.0.0 withdrawn by the publisher")
    assert [(r["outcome"], r["from_version"], r["to_version"]) for r in d["results"]] == [
        ("downgraded", "2.0.0", "1.0.0")]
    assert fleet.current() == "1.0.0"
    record = fleet.skills.events("registry.target_installed")[-1]["data"]
    assert (record["version"], record["downgraded_from"], record["reason"]) == (
        "1.0.0", "2.0.0", "2.0.0 withdrawn by the publisher")
    change = fleet.skills.events("skill.current_changed")[-1]["data"]
    assert (change["cause"], change["reason"]) == ("rollback", "2.0.0 withdrawn by the publisher")
    head = fleet.skills.head()
    assert fleet.skills.ok("update", "--all")["results"][0]["outcome"] == "up_to_date"
    assert fleet.skills.head() == head


def test_an_allowed_downgrade_to_a_version_never_installed(fleet: Fleet) -> None:
    publish(fleet, "2.0.0")
    fleet.skills.ok("update", "--all")
    _withdraw(fleet, "2.0.0", add=artifact(version="1.5.0"))
    refused(fleet, ["update", "--all"], "downgrade_refused", "listing", None, skill_id="acme.echo")
    d = fleet.skills.ok("update", "acme.echo", "--allow-downgrade", "--reason", "2.0.0 is broken")
    assert (d["results"][0]["outcome"], d["results"][0]["to_version"]) == ("downgraded", "1.5.0")
    assert fleet.current() == "1.5.0"
    assert fleet.skills.events("registry.target_installed")[-1]["data"]["downgraded_from"] == "2.0.0"


def test_the_same_version_with_another_digest_is_version_conflict(fleet: Fleet) -> None:
    swapped = artifact(version="1.0.0", asset=b"swapped")
    info = repository.artifact_target(swapped)

    def swap(targets) -> None:
        targets.targets[info.path] = to_target_file(info)

    resign_targets(fleet.repo, swap, {served_path(info.path, info.artifact_sha256): swapped})
    fleet.sync()
    refused(fleet, ["update", "--all"], "version_conflict", "listing", None, skill_id="acme.echo")
    refused(fleet, ["install", "--registry", "main", "--skill-id", "acme.echo", "--version", "1.0.0"],
            "version_conflict", "listing", None, skill_id="acme.echo")
    installed = fleet.skills.ok("info", "acme.echo")
    assert installed["payload_sha256"] != info.payload_sha256
    assert fleet.skills.refusals()[-1]["version"] == "1.0.0"


def test_a_refused_install_is_also_an_artifact_rejection(fleet: Fleet) -> None:
    """A target TUF vouches for still goes through trust: another publisher key is refused."""
    other = artifact(version="2.0.0", seed=bytes([9]) * 32)
    info = repository.artifact_target(other)

    def add(targets) -> None:
        targets.targets[info.path] = to_target_file(info)

    resign_targets(fleet.repo, add, {served_path(info.path, info.artifact_sha256): other})
    fleet.sync()
    refused(fleet, ["update", "--all"], "tofu_key_mismatch", "install", None, skill_id="acme.echo")
    [rejected] = fleet.skills.events("artifact.rejected")
    assert rejected["data"]["source"] == "registry:main:acme.echo/2.0.0.palyra-skill"
    assert fleet.current() == "1.0.0"


def test_history_and_registry_list_show_the_refusals(fleet: Fleet) -> None:
    publish(fleet, "2.0.0")
    fleet.mirror.serve(fleet.target_url_path("2.0.0"), b"not the artifact")
    assert fleet.skills("update", "--all").exit_code == 3
    history = fleet.skills.ok("history", "acme.echo")["events"]
    assert history[-1]["kind"] == "registry.update_refused"
    assert history[-1]["data"]["code"] == "registry_length_or_hash_mismatch"
    line = fleet.skills("history", "acme.echo").stdout.splitlines()[-1]
    assert line.endswith("registry main: refused update of acme.echo 2.0.0 (registry_length_or_hash_mismatch, "
                         "target, LengthOrHashMismatchError)")
    [listed] = fleet.skills.ok("registry", "list")["registries"]
    assert listed["refusals"] == 1 and listed["last_refusal"]["code"] == "registry_length_or_hash_mismatch"
    assert json.loads(fleet.skills("index", "verify", "--json").stdout)["ok"] is True
