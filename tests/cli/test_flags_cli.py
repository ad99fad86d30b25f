"""Consistent flags (issue 12): trust keys as `trust list` prints them, one policy syntax in
both directions, a reason on every state change, one spelling of the signing-key flag, and a
rollback that lands on a version that can run."""

from __future__ import annotations

import json

import builders as b
import pytest
from clikit import KEY_A, KEY_B, KEY_ID_A, Skills
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@pytest.fixture
def skills(tmp_path):
    return Skills(tmp_path)


# --- trust allow|revoke PUBLISHER KEY ------------------------------------------------------------


def test_trust_revoke_takes_the_key_id_exactly_as_trust_list_prints_it(skills):
    assert skills.install().exit_code == 0  # key A pinned on first use
    listed = skills("trust", "list").stdout
    assert KEY_ID_A in listed
    r, doc = skills.json("trust", "revoke", "acme", KEY_ID_A, "--reason", "leaked")
    assert r.exit_code == 0, r.output
    assert (doc["key_hex"], doc["key_id"], doc["changed"]) == (KEY_A, KEY_ID_A, True)
    assert doc["quarantined"] == [{"skill_id": "acme.echo", "version": "1.0.0", "reason_code": "trust_revoked"}]
    # the id without its prefix, in capitals, resolves the same way (nothing more to record)
    r, doc = skills.json("trust", "revoke", "acme", KEY_ID_A.split(":")[1].upper(), "--reason", "again")
    assert r.exit_code == 0 and doc["changed"] is False


def test_trust_allow_resolves_a_key_id_seen_only_on_an_installed_artifact(skills):
    assert skills.install().exit_code == 0  # pinned (tofu), known from the journal
    r, doc = skills.json("trust", "allow", "acme", KEY_ID_A, "--reason", "make it explicit")
    assert r.exit_code == 0 and doc["key_hex"] == KEY_A and doc["changed"] is True
    assert [k["kind"] for p in skills.json("trust", "list")[1]["publishers"] for k in p["keys"]] == ["allowlisted"]


def test_an_unknown_key_id_is_a_usage_error_that_says_what_to_give(skills):
    r, doc = skills.json("trust", "revoke", "acme", KEY_ID_A, "--reason", "pre-emptive")
    assert r.exit_code == 2
    assert doc["error"]["message"].startswith(f"no key {KEY_ID_A} is known for publisher acme")
    assert "64-hex public key or --key-file" in doc["error"]["message"]
    assert skills.events() == []


def _key_files(tmp):
    private = Ed25519PrivateKey.from_private_bytes(b.SEED_B)
    public = private.public_key()
    files = {
        "pem": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "openssh": public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
        "raw": public.public_bytes_raw(),
        "hex": (KEY_B + "\n").encode(),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp / f"key.{name}"
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize("form", ["pem", "openssh", "raw", "hex"])
def test_trust_allow_reads_a_public_key_file(skills, form):
    path = _key_files(skills.tmp)[form]
    r, doc = skills.json("trust", "allow", "acme", "--key-file", path, "--reason", "vendor")
    assert r.exit_code == 0, r.output
    assert doc["key_hex"] == KEY_B


@pytest.mark.parametrize("args,says", [
    (["acme", "zz"], "trusted publisher key must be hex"),
    (["acme", "ab" * 31], "trusted publisher key must decode to 32 bytes"),
    (["Not A Publisher", KEY_A], "invalid publisher or key"),
    (["acme"], "give exactly one KEY"),
    (["acme", KEY_A, "--key-file", "x"], "give exactly one KEY"),
])
def test_a_bad_key_is_exit_2(skills, args, says):
    r, doc = skills.json("trust", "allow", *args, "--reason", "x")
    assert r.exit_code == 2, r.output
    assert says in doc["error"]["message"]


def test_a_private_key_file_is_refused_as_a_trust_key(skills):
    pem = Ed25519PrivateKey.from_private_bytes(b.SEED_B).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = skills.tmp / "private.pem"
    path.write_bytes(pem)
    r, doc = skills.json("trust", "allow", "acme", "--key-file", path, "--reason", "x")
    assert r.exit_code == 2 and "is a private key" in doc["error"]["message"]
    assert "BEGIN" not in r.output  # the key itself is never echoed


# --- policy: one syntax in both directions --------------------------------------------------------


def test_policy_show_prints_what_policy_set_takes(skills):
    assert skills("policy", "set", 'allowed_import_modules=["skills:host/v1"]', "vulnerability_feed_path=/f.json",
                  "allow_device_capabilities=true", "--reason", "test").exit_code == 0
    shown = skills("policy", "show").stdout.splitlines()
    assert shown[0] == "# policy version 1"
    assert 'allowed_import_modules=["skills:host/v1"]' in shown
    assert 'vulnerability_feed_path="/f.json"' in shown and "allow_device_capabilities=true" in shown
    assert "False" not in "\n".join(shown) and "None" not in "\n".join(shown)
    # fed back as they are, the lines change nothing
    r, doc = skills.json("policy", "set", *shown[1:], "--reason", "round trip")
    assert r.exit_code == 0 and doc["changed"] == [] and doc["positions"] == []
    doc = skills.json("policy", "show")[1]["policy"]
    assert doc["allowed_import_modules"] == ["skills:host/v1"] and doc["vulnerability_feed_path"] == "/f.json"
    assert skills("policy", "set", "vulnerability_feed_path=null", "--reason", "unset").exit_code == 0
    assert skills.json("policy", "show")[1]["policy"]["vulnerability_feed_path"] is None


@pytest.mark.parametrize("setting", [
    'allowed_import_modules=["skills:host/v1"',  # not JSON: never stored as the literal text
    'allowed_import_modules="skills:host/v1"',
    "allowed_import_modules=[1]",
    'allowed_import_modules=[""]',
    "max_module_bytes=null",
    "max_module_bytes=-1",
    "max_module_bytes=1.5",
    "max_memory_bytes=1",  # below one page
    "allow_device_capabilities=1",
    "vulnerability_feed_path=[]",
    'vulnerability_feed_path={"a": 1}',
])
def test_a_bad_policy_value_is_exit_2_and_records_nothing(skills, setting):
    r, doc = skills.json("policy", "set", setting, "--reason", "x")
    assert r.exit_code == 2, r.output
    assert doc["error"]["code"] == "usage_error" and setting.split("=")[0] in doc["error"]["message"]
    assert skills.events() == []


# --- a reason on every state change ---------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["quarantine", "acme.echo"], ["disable", "acme.echo"], ["enable", "acme.echo"], ["rollback", "acme.echo"],
    ["remove", "acme.echo"], ["trust", "allow", "acme", KEY_A], ["trust", "revoke", "acme", KEY_A],
    ["trust", "import", "x.json"], ["policy", "set", "max_instances=4"],
], ids=lambda a: " ".join(a[:2]))
def test_every_state_change_requires_a_reason(skills, args):
    assert skills.install().exit_code == 0
    before = len(skills.events())
    r = skills(*args)
    assert r.exit_code == 2 and "Missing option '--reason'" in r.stderr
    assert len(skills.events()) == before
    assert "required for every" in skills(*args[:1 if args[0] not in ("trust", "policy") else 2], "--help").stdout


def test_remove_and_rollback_record_their_reason(skills):
    assert skills.install().exit_code == 0
    assert skills.install("b.skill", version="1.1.0").exit_code == 0
    assert skills("rollback", "acme.echo", "--reason", "1.1.0 misbehaves").exit_code == 0
    assert skills("remove", "acme.echo", "--version", "1.1.0", "--reason", "withdrawn").exit_code == 0
    events = skills.events("--kind", "skill.current_changed", "--kind", "skill.removed")
    assert [(e["kind"], e["data"]["reason"]) for e in events[-2:]] == [
        ("skill.current_changed", "1.1.0 misbehaves"), ("skill.removed", "withdrawn")]


# --- one spelling of the signing-key flag -------------------------------------------------------


def test_keys_show_takes_signing_key_file_and_the_old_key_flag_hidden(skills):
    key = skills.tmp / "k.pem"
    assert skills("keys", "generate", "--output", key).exit_code == 0
    new = skills.json("keys", "show", "--signing-key-file", key)[1]
    old = skills.json("keys", "show", "--key", key)[1]
    assert new == old and new["key_id"].startswith("ed25519:")
    help_text = skills("keys", "show", "--help").stdout
    assert "--signing-key-file" in help_text and "--key " not in help_text
    assert skills("keys", "show").exit_code == 2


# --- rollback lands on a version that can run ----------------------------------------------------


@pytest.mark.parametrize("how", ["disable", "quarantine"])
def test_rollback_onto_a_version_that_cannot_run_is_refused_with_the_way_out(skills, how):
    assert skills.install().exit_code == 0
    assert skills.install("b.skill", version="1.1.0").exit_code == 0
    assert skills(how, "acme.echo", "--version", "1.0.0", "--reason", "paused").exit_code == 0
    before = len(skills.events())
    r, doc = skills.json("rollback", "acme.echo", "--reason", "1.1.0 misbehaves")
    assert r.exit_code == 2
    err = doc["error"]
    assert err["code"] == "invalid_transition"
    assert "skills enable acme.echo --version 1.0.0 --reason TEXT" in err["message"]
    assert err["details"]["status"] == ("disabled" if how == "disable" else "quarantined")
    assert len(skills.events()) == before
    assert skills.json("info", "acme.echo")[1]["version"] == "1.1.0"  # still current
    assert skills("enable", "acme.echo", "--version", "1.0.0", "--reason", "checked").exit_code == 0
    r, doc = skills.json("rollback", "acme.echo", "--reason", "1.1.0 misbehaves")
    assert r.exit_code == 0 and (doc["version"], doc["status"]) == ("1.0.0", "active")


def test_package_verify_with_allow_tofu_says_it_would_pin(skills):
    path = b.write(skills.tmp, "a.skill", b.artifact())
    r, doc = skills.json("package", "verify", "--artifact", path, "--allow-tofu")
    assert r.exit_code == 0 and doc["trust_decision"] == "would_pin_on_first_use"
    assert "trust_decision  would_pin_on_first_use" in skills("package", "verify", "--artifact", path,
                                                              "--allow-tofu").stdout
    assert json.loads(skills("trust", "list", "--json").stdout)["publishers"] == []
