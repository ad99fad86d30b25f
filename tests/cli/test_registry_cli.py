"""``skills registry ...``, ``skills update`` and ``skills install --registry`` through the CLI:
JSON and human output, usage errors, exit codes, and what each command appends (nothing when
nothing changes). The attacks are in ``tests/e2e/test_registry_attacks.py``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters" / "registry"))
from builders import artifact, manifest  # noqa: E402
from registry_cli_kit import Skills, doc, now, real_repo  # noqa: E402
from registry_kit import Repo  # noqa: E402
from registry_server import RegistryServer  # noqa: E402
from tuf.api.metadata import Metadata  # noqa: E402

from skill_ledger.adapters.registry import repository  # noqa: E402


class World(NamedTuple):
    repo: Repo
    server: RegistryServer
    root: Path  # the pinned root file (metadata/1.root.json)
    skills: Skills


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """acme.echo 1.0.0 published at the real time, served over HTTP, and a home."""
    repo = real_repo(tmp_path)
    root = tmp_path / "1.root.json"
    root.write_bytes(repo.root)
    with RegistryServer(repo.dir) as server:
        yield World(repo, server, root, Skills(tmp_path / "home"))


@pytest.fixture
def added(world: World) -> World:
    """The same, with the registry added as ``main``."""
    world.skills.ok("registry", "add", "main", world.server.url, "--root", world.root)
    return world


# --- the publisher's side -------------------------------------------------------------------------


def test_publisher_commands_json(tmp_path: Path) -> None:
    skills = Skills(tmp_path / "home")
    reg = tmp_path / "reg"
    d = skills.ok("registry", "init", reg)
    assert d["versions"] == {"root": 1, "targets": 1, "snapshot": 1, "timestamp": 1}
    assert d["keys_dir"] == str(tmp_path / "reg.keys")
    assert set(d["keys"]) == {"root", "targets", "snapshot", "timestamp"}
    assert len({tuple(v) for v in d["keys"].values()}) == 1  # one shared key
    assert Path(d["root_path"]).read_bytes()  # metadata/1.root.json, for operators
    a1, a2 = tmp_path / "a1.palyra-skill", tmp_path / "a2.palyra-skill"
    a1.write_bytes(artifact(version="1.0.0"))
    a2.write_bytes(artifact("acme.other", "0.1.0"))
    d = skills.ok("registry", "publish", reg, a1, a2)
    assert [(t["path"], t["status"]) for t in d["targets"]] == [
        ("acme.echo/1.0.0.palyra-skill", "published"), ("acme.other/0.1.0.palyra-skill", "published")]
    assert skills.ok("registry", "publish", reg, a1)["targets"][0]["status"] == "unchanged"
    d = skills.ok("registry", "refresh-timestamp", reg)
    assert "timestamp" in d["renewed"] and d["expiring_soon"] == []
    d = skills.ok("registry", "rotate-root", reg, "--keys", "timestamp=2", "--threshold", "timestamp=2")
    assert d["root_version"] == 2 and len(d["new_keys"]["timestamp"]) == 2 and d["revoked_keyids"]["timestamp"]
    assert skills.events() == []  # the publisher's side writes no journal


def test_init_with_separate_keys_thresholds_and_expiry(tmp_path: Path) -> None:
    skills = Skills(tmp_path / "home")
    own_key = tmp_path / "targets.pem"
    assert skills("keys", "generate", "--output", own_key).exit_code == 0
    d = skills.ok("registry", "init", tmp_path / "reg", "--keys", "root=3", "--threshold", "root=2",
                  "--key-file", f"targets={own_key}", "--expiry", "timestamp=12h", "--expiry", "snapshot=2d")
    assert len(d["keys"]["root"]) == 3 and d["keys"]["targets"] == [str(own_key)]
    assert len({d["keys"][r][0] for r in ("root", "targets", "snapshot", "timestamp")}) == 4
    root = Metadata.from_bytes(Path(d["root_path"]).read_bytes()).signed
    assert root.roles["root"].threshold == 2 and len(root.roles["root"].keyids) == 3
    ts = Metadata.from_bytes((tmp_path / "reg" / "metadata" / "timestamp.json").read_bytes()).signed
    assert timedelta(hours=11) < ts.expires - now() <= timedelta(hours=12)


@pytest.mark.parametrize("args, message", [
    (["--threshold", "targets=2"], "--threshold for a role given no keys"),
    (["--keys", "bogus=1"], "ROLE one of root"),
    (["--keys", "root=0"], "from 1 to 16"),
    (["--keys", "root=1", "--key-file", "root=x.pem"], "not both"),
    (["--expiry", "timestamp=0"], "longer than 0"),
    (["--expiry", "timestamp=soon"], "invalid duration"),
    (["--keys", "root=1", "--threshold", "root=2"], "threshold 2 with 1"),
])
def test_init_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    r = Skills(tmp_path / "home")("registry", "init", tmp_path / "reg", *args)
    assert r.exit_code == 2, r.stderr
    assert message in r.stderr and r.stderr.count("error[") == 1


def test_publish_refuses_a_version_republished_with_other_bytes(tmp_path: Path) -> None:
    skills = Skills(tmp_path / "home")
    skills.ok("registry", "init", tmp_path / "reg")
    (tmp_path / "a.skill").write_bytes(artifact(version="1.0.0"))
    (tmp_path / "b.skill").write_bytes(artifact(version="1.0.0", asset=b"other"))
    skills.ok("registry", "publish", tmp_path / "reg", tmp_path / "a.skill")
    r = skills("registry", "publish", tmp_path / "reg", tmp_path / "b.skill")
    assert r.exit_code == 3 and "error[version_conflict]" in r.stderr
    r = skills("registry", "publish", tmp_path / "reg", tmp_path / "a.skill", "--keys-dir", tmp_path / "nokeys")
    assert r.exit_code == 2 and "error[registry_keys_missing]" in r.stderr


# --- add, list, refresh, remove -------------------------------------------------------------------


def test_add_list_refresh_remove(world: World, tmp_path: Path) -> None:
    repo, server, root, skills = world
    d = skills.ok("registry", "add", "main", server.url, "--root", root)
    assert d == {"name": "main", "url": server.url, "root_sha256": repo.root_sha256, "root_version": 1,
                 "changed": True, "positions": [1]}
    assert server.requests == {}  # adding does not contact the registry
    again = skills.ok("registry", "add", "main", server.url, "--root", root)
    assert again["changed"] is False and again["positions"] == []
    other = tmp_path / "other-root.json"
    other.write_bytes(real_repo(tmp_path / "other").root)
    r = skills("registry", "add", "main", server.url, "--root", other)
    assert r.exit_code == 2 and "error[usage_error]" in r.stderr and "remove it first" in r.stderr
    [listed] = skills.ok("registry", "list")["registries"]
    assert (listed["status"], listed["trusted"], listed["installs"], listed["refusals"]) == ("active", None, 0, 0)

    d = skills.ok("registry", "refresh")
    assert d["registries"] == [{"name": "main", "changed": True, "positions": [2], "error": None,
                                "metadata": {"root": 1, "timestamp": 2, "snapshot": 2, "targets": 2}}]
    head = skills.head()
    assert skills.ok("registry", "refresh", "main")["registries"][0]["changed"] is False
    assert skills.head() == head  # an idle refresh appends nothing
    repository.refresh_timestamp(repo.dir)
    assert skills.ok("registry", "refresh")["registries"][0]["metadata"]["timestamp"] == 3
    [listed] = skills.ok("registry", "list")["registries"]
    assert listed["trusted"] == {"root": 1, "timestamp": 3, "snapshot": 2, "targets": 2}

    d = skills.ok("registry", "remove", "main", "--reason", "moved")
    assert d["name"] == "main" and len(d["positions"]) == 1
    assert not (skills.home / "registries" / "main").exists()  # its local TUF state is gone
    [listed] = skills.ok("registry", "list")["registries"]
    assert listed["status"] == "removed" and listed["removed_reason"] == "moved"
    r = skills("install", "--registry", "main", "--skill-id", "acme.echo")
    assert r.exit_code == 6 and "error[not_found]" in r.stderr and "was removed" in r.stderr
    assert skills("registry", "remove", "main", "--reason", "again").exit_code == 6
    assert skills("registry", "refresh", "nope").exit_code == 6
    assert [e["kind"] for e in skills.events()] == [
        "registry.added", "registry.metadata_trusted", "registry.metadata_trusted", "registry.removed"]


def test_human_output_and_plain_http_warning(world: World) -> None:
    repo, server, root, skills = world
    r = skills("registry", "add", "main", server.url, "--root", root)
    assert r.exit_code == 0 and r.stdout.startswith("registry main: added")
    assert "plain http:// keeps TUF's integrity" in r.stderr
    assert skills("registry", "refresh").stdout == "main: root 1 ts 2 snap 2 targets 2 (new metadata recorded)\n"
    lines = skills("registry", "list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "URL", "TRUSTED", "INSTALLS", "REFUSALS", "LAST", "REFUSAL"]
    assert lines[1].split()[:3] == ["main", "active", server.url]
    r = skills("install", "--registry", "main", "--skill-id", "acme.echo", "--allow-tofu")
    assert r.exit_code == 0
    assert "source           registry:main:acme.echo/1.0.0.palyra-skill" in r.stdout
    assert "vouched for by   root 1 ts 2 snap 2 targets 2" in r.stdout
    assert skills("update", "--all").stdout == "acme.echo [main]: up to date (1.0.0)\n"
    history = skills("history", "acme.echo").stdout
    assert ("registry main vouched for 1.0.0: acme.echo/1.0.0.palyra-skill "
            "(root v1, timestamp v2, snapshot v2, targets v2)") in history


@pytest.mark.parametrize("args, code, status", [
    (["registry", "add", "Bad Name", "http://127.0.0.1:1/", "--root", "{root}"], "invalid_input", 2),
    (["registry", "add", "main", "ftp://x/", "--root", "{root}"], "invalid_input", 2),
    (["registry", "add", "main", "https://user:pw@x/", "--root", "{root}"], "invalid_input", 2),
    (["registry", "add", "main", "https://x/", "--root", "{missing}"], "file_not_found", 6),
    (["registry", "add", "main", "https://x/", "--root", "{garbage}"], "registry_metadata_invalid", 3),
])
def test_add_refusals(tmp_path: Path, args: list[str], code: str, status: int) -> None:
    root, garbage = tmp_path / "root.json", tmp_path / "garbage.json"
    root.write_bytes(real_repo(tmp_path).root)
    garbage.write_bytes(b"{}")
    skills = Skills(tmp_path / "home")
    r = skills(*[a.format(root=root, missing=tmp_path / "none.json", garbage=garbage) for a in args], "--json")
    assert (r.exit_code, doc(r)["error"]["code"]) == (status, code), r.stderr
    assert "pw" not in r.stdout + r.stderr
    assert skills.events() == []


# --- install --registry and update -----------------------------------------------------------------


def test_install_then_update_then_nothing_to_do(added: World) -> None:
    repo, server, skills = added.repo, added.server, added.skills
    d = skills.ok("install", "--registry", "main", "--skill-id", "acme.echo", "--allow-tofu")
    assert (d["version"], d["status"], d["current"], d["registry"]) == ("1.0.0", "active", True, "main")
    assert d["source"] == "registry:main:acme.echo/1.0.0.palyra-skill" and d["target"] == "acme.echo/1.0.0.palyra-skill"
    assert d["metadata"] == {"root": 1, "timestamp": 2, "snapshot": 2, "targets": 2}
    kinds = [e["kind"] for e in skills.events()]
    assert kinds[-8:] == ["registry.metadata_trusted", "publisher.key_pinned", "skill.artifact_verified",
                          "skill.audited", "skill.installed", "skill.current_changed", "skill.activated",
                          "registry.target_installed"]
    verified = skills.events("skill.artifact_verified")[-1]["data"]
    installed = skills.events("registry.target_installed")[-1]
    assert verified["source"] == d["source"]
    assert installed["data"] == {"name": "main", "skill_id": "acme.echo", "version": "1.0.0",
                                 "target": "acme.echo/1.0.0.palyra-skill", "artifact_sha256": d["artifact_sha256"],
                                 "payload_sha256": d["payload_sha256"], "metadata": d["metadata"],
                                 "downgraded_from": None, "reason": None}
    assert skills.ok("info", "acme.echo")["source"] == d["source"]

    head = skills.head()
    server.clear_counts()
    again = skills.ok("install", "--registry", "main", "--skill-id", "acme.echo")
    assert again["already_installed"] is True and again["positions"] == []
    d = skills.ok("update", "--all")
    assert [(r["skill_id"], r["outcome"]) for r in d["results"]] == [("acme.echo", "up_to_date")]
    assert skills.ok("update", "acme.echo")["results"][0]["outcome"] == "up_to_date"
    assert skills.head() == head  # already current: nothing appended, nothing downloaded
    assert set(server.requests) == {"/metadata/2.root.json", "/metadata/timestamp.json"}

    repository.publish(repo.dir, [artifact(version="1.1.0"), artifact(version="2.0.0")])
    d = skills.ok("update", "--all")
    [r] = d["results"]
    assert (r["outcome"], r["from_version"], r["to_version"], r["status"]) == ("updated", "1.0.0", "2.0.0", "active")
    assert skills.ok("list", "--current-only")["entries"][0]["version"] == "2.0.0"
    assert d["registries"][0]["metadata"]["targets"] == 3
    head = skills.head()
    assert skills.ok("update", "--all")["results"][0]["outcome"] == "up_to_date"
    assert skills.head() == head


def test_install_a_given_version_and_registry_list_counts(added: World) -> None:
    repo, skills = added.repo, added.skills
    repository.publish(repo.dir, [artifact(version="2.0.0")])
    d = skills.ok("install", "--registry", "main", "--skill-id", "acme.echo", "--version", "1.0.0", "--allow-tofu")
    assert d["version"] == "1.0.0"
    assert skills.ok("update", "acme.echo")["results"][0]["to_version"] == "2.0.0"
    [listed] = skills.ok("registry", "list")["registries"]
    assert (listed["installs"], listed["refusals"]) == (2, 0)


def test_install_usage_errors(added: World) -> None:
    skills = added.skills
    cases = [
        (["install", "--registry", "main"], 2, "usage_error"),
        (["install", "--skill-id", "acme.echo"], 2, "usage_error"),
        (["install", "--version", "1.0.0"], 2, "usage_error"),
        (["install", "--registry", "main", "--skill-id", "acme.echo", "--artifact", "x.skill"], 2, "usage_error"),
        (["install"], 2, "usage_error"),
        (["install", "--registry", "nope", "--skill-id", "acme.echo"], 6, "not_found"),
        (["install", "--registry", "main", "--skill-id", "Not An Id"], 2, "invalid_input"),
        (["install", "--registry", "main", "--skill-id", "acme.echo", "--version", "one"], 2, "invalid_input"),
    ]
    for args, status, code in cases:
        r = skills(*args, "--json")
        assert (r.exit_code, doc(r)["error"]["code"]) == (status, code), (args, r.stderr)
    assert skills.refusals() == []  # an operator's mistake is not a refusal of the registry


def test_a_skill_or_version_the_registry_does_not_list(added: World) -> None:
    skills = added.skills
    r = skills("install", "--registry", "main", "--skill-id", "acme.nothing", "--json")
    assert r.exit_code == 6 and doc(r)["error"]["code"] == "registry_target_not_found"
    r = skills("install", "--registry", "main", "--skill-id", "acme.echo", "--version", "9.9.9", "--json")
    assert r.exit_code == 6 and doc(r)["error"]["details"]["available"] == ["1.0.0"]
    assert [(x["skill_id"], x["version"], x["code"], x["phase"], x["operation"]) for x in skills.refusals()] == [
        ("acme.nothing", None, "registry_target_not_found", "listing", "install"),
        ("acme.echo", "9.9.9", "registry_target_not_found", "listing", "install")]
    # a skill never installed still has a history: its refused install
    history = skills.ok("history", "acme.nothing")["events"]
    assert [e["kind"] for e in history] == ["registry.update_refused"]
    assert "registry main: refused install of acme.nothing (registry_target_not_found, listing)" in skills(
        "history", "acme.nothing").stdout


def test_update_usage_errors(added: World, tmp_path: Path) -> None:
    skills = added.skills
    (tmp_path / "f.skill").write_bytes(artifact("acme.file"))
    skills.ok("install", "--artifact", tmp_path / "f.skill", "--allow-tofu")
    skills.ok("install", "--registry", "main", "--skill-id", "acme.echo")
    for args, status, needle in [
        ([], 2, "give SKILL_ID... or --all"),
        (["--all", "acme.echo"], 2, "give SKILL_ID... or --all"),
        (["--all", "--allow-downgrade"], 2, "needs --reason"),
        (["--all", "--reason", "x"], 2, "only with --allow-downgrade"),
        (["acme.file"], 2, "was not installed from a registry"),
        (["acme.never"], 6, "not installed"),
        (["Bad Id"], 2, "invalid skill id"),
    ]:
        r = skills("update", *args)
        assert r.exit_code == status and needle in r.stderr, (args, r.stderr)
    skills.ok("registry", "remove", "main", "--reason", "gone")
    r = skills("update", "acme.echo")
    assert r.exit_code == 6 and "was removed" in r.stderr
    assert skills.ok("update", "--all") == {"results": [], "registries": []}
    assert skills("update", "--all").stdout == "nothing to update (no skill installed from an active registry)\n"


def test_update_skips_skills_no_longer_installed_or_installed_from_elsewhere(added: World, tmp_path: Path) -> None:
    repo, skills = added.repo, added.skills
    for sid in ("acme.echo", "acme.other"):
        repository.publish(repo.dir, [artifact(sid, "1.0.0")])
        skills.ok("install", "--registry", "main", "--skill-id", sid, "--allow-tofu")
    skills.ok("remove", "acme.echo", "--reason", "not wanted")
    (tmp_path / "o.skill").write_bytes(artifact("acme.other", "1.5.0"))
    skills.ok("install", "--artifact", tmp_path / "o.skill")
    repository.publish(repo.dir, [artifact("acme.echo", "2.0.0"), artifact("acme.other", "2.0.0")])
    d = skills.ok("update", "--all")
    assert [(r["skill_id"], r["outcome"], r["reason"]) for r in d["results"]] == [
        ("acme.echo", "skipped", "not_installed"), ("acme.other", "skipped", "installed_from_elsewhere")]


def test_an_update_that_fails_its_audit_is_installed_quarantined_exit_5(added: World) -> None:
    repo, skills = added.repo, added.skills
    skills.ok("install", "--registry", "main", "--skill-id", "acme.echo", "--allow-tofu")
    failing = manifest("acme.echo", "2.0.0").replace(
        "[operator]", "[capabilities]\ndevice_capabilities = [\"camera\"]\n\n[operator]")
    repository.publish(repo.dir, [artifact("acme.echo", "2.0.0", manifest_text=failing)])
    r = skills("update", "--all", "--json")
    assert r.exit_code == 5, r.stderr
    [res] = doc(r)["results"]
    assert (res["outcome"], res["status"]) == ("updated", "quarantined")
    assert skills.ok("list", "--current-only")["entries"][0]["version"] == "1.0.0"  # the working version stays


def test_a_repeated_refusal_is_recorded_once(added: World) -> None:
    server, skills = added.server, added.skills
    skills.ok("install", "--registry", "main", "--skill-id", "acme.echo", "--allow-tofu")
    server.serve("/metadata/timestamp.json", b"garbage")
    for _ in range(3):
        r = skills("update", "--all")
        assert r.exit_code == 3 and r.stderr.startswith("error[registry_metadata_invalid]: main: metadata is invalid")
    assert len(skills.refusals()) == 1
    server.status("/metadata/timestamp.json", 503)
    assert skills("update", "--all").exit_code == 3
    assert [x["code"] for x in skills.refusals()] == ["registry_metadata_invalid", "registry_unavailable"]
    server.reset()
    assert skills("update", "--all").exit_code == 0
    [listed] = skills.ok("registry", "list")["registries"]
    assert listed["refusals"] == 2 and listed["last_refusal"]["code"] == "registry_unavailable"


def test_update_json_shape(added: World) -> None:
    skills = added.skills
    skills.ok("install", "--registry", "main", "--skill-id", "acme.echo", "--allow-tofu")
    r = skills("update", "acme.echo", "--json")
    assert r.exit_code == 0 and r.stderr == ""
    d = json.loads(r.stdout)
    assert set(d) == {"results", "registries"}
    assert set(d["results"][0]) == {"skill_id", "registry", "outcome", "from_version", "to_version", "status",
                                    "reason", "positions", "error"}
