"""The ledger's use cases on a real SQLite journal: what each command records and refuses."""

import json
import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import builders as b  # noqa: E402

from skill_ledger.adapters.journal.sqlite import export_row, iter_rows  # noqa: E402
from skill_ledger.adapters.readmodel.views import open_views  # noqa: E402
from skill_ledger.adapters.usecases import lifecycle, trust, verification  # noqa: E402
from skill_ledger.adapters.usecases.install import install  # noqa: E402
from skill_ledger.adapters.usecases.policy import set_policy  # noqa: E402
from skill_ledger.domain.errors import (  # noqa: E402
    AuditFailed,
    InvalidArtifactPath,
    NotInstalled,
    PayloadHashMismatch,
    TofuKeyMismatch,
    UntrustedPublisher,
    UsageError,
    VersionConflict,
    ZipError,
)
from skill_ledger.domain.signing import public_key_from_seed  # noqa: E402
from skill_ledger.projections.queries import list_entries  # noqa: E402

KEY_A = public_key_from_seed(b.SEED_A).hex()
KEY_B = public_key_from_seed(b.SEED_B).hex()


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def events(ledger, **kw):
    return [export_row(r) for r in iter_rows(ledger.app, **kw)]


def kinds(ledger):
    return [e["kind"] for e in events(ledger)]


def test_install_with_tofu_records_pin_and_lifecycle(home, tmp_path):
    led = b.ledger(home)
    r = install(led, b.write(tmp_path, "a.skill", b.artifact()), allow_tofu=True)
    assert (r.status, r.current, r.trust_decision) == ("active", True, "tofu_newly_pinned")
    assert r.positions == [1, 2, 3, 4, 5, 6]
    assert kinds(led) == ["publisher.key_pinned", "skill.artifact_verified", "skill.audited", "skill.installed",
                          "skill.current_changed", "skill.activated"]
    pinned = events(led)[0]
    assert pinned["data"]["first_skill_id"] == "acme.echo" and pinned["data"]["key_hex"] == KEY_A
    assert all(e["actor"] == {"principal": "user:test", "host": led.settings.host, "command": "test",
                              "os_user": led.settings.os_user, "os_uid": led.settings.os_uid} for e in events(led))
    blob = home / "blobs" / "sha256" / r.artifact_sha256
    assert blob.exists() and (blob.stat().st_mode & 0o777) == 0o444


def test_reinstall_same_payload_appends_nothing(home, tmp_path):
    led = b.ledger(home)
    path = b.write(tmp_path, "a.skill", b.artifact())
    install(led, path, allow_tofu=True)
    head = led.head()
    again = install(led, path)
    assert again.already_installed and again.positions == [] and led.head() == head


def test_same_version_different_payload_is_a_recorded_version_conflict(home, tmp_path):
    led = b.ledger(home)
    install(led, b.write(tmp_path, "a.skill", b.artifact()), allow_tofu=True)
    other = b.artifact(asset=b"different")
    with pytest.raises(VersionConflict):
        install(led, b.write(tmp_path, "b.skill", other))
    last = events(led)[-1]
    assert last["kind"] == "artifact.rejected" and last["data"]["error_code"] == "version_conflict"
    assert last["stream"].startswith("intake:") and last["data"]["skill_id"] == "acme.echo"


@pytest.mark.parametrize("data,error", [
    (b"not a zip", ZipError),
    (None, PayloadHashMismatch),
], ids=["garbage", "tampered-entry"])
def test_rejected_artifacts_leave_a_trace(home, tmp_path, data, error):
    led = b.ledger(home)
    if data is None:  # re-sign nothing: change the asset inside a valid archive
        from skill_ledger.domain.ziparchive import decode_archive, encode_archive

        entries = decode_archive(b.artifact())
        entries["assets/note.txt"] = b"tampered"
        data = encode_archive(entries)
    with pytest.raises(error):
        install(led, b.write(tmp_path, "x.skill", data), allow_tofu=True)
    (e,) = events(led)
    assert e["kind"] == "artifact.rejected" and e["data"]["error_code"] == error.code
    import hashlib

    assert e["stream"] == f"intake:{hashlib.sha256(data).hexdigest()}"


def test_untrusted_publisher_is_rejected_and_recorded(home, tmp_path):
    led = b.ledger(home)
    with pytest.raises(UntrustedPublisher):
        install(led, b.write(tmp_path, "a.skill", b.artifact()))
    assert kinds(led) == ["artifact.rejected"]


def test_trusted_publisher_flag_is_recorded_then_used(home, tmp_path):
    led = b.ledger(home)
    r = install(led, b.write(tmp_path, "a.skill", b.artifact()), trusted_publishers=[("acme", KEY_A.upper())])
    assert r.trust_decision == "allowlisted"
    assert kinds(led)[0] == "publisher.key_allowlisted"
    # a second time the key is already allowlisted: nothing more for it
    r2 = install(led, b.write(tmp_path, "b.skill", b.artifact(version="1.1.0")), trusted_publishers=[("acme", KEY_A)])
    assert kinds(led).count("publisher.key_allowlisted") == 1 and r2.status == "active"


def test_tofu_pin_then_other_key_is_refused(home, tmp_path):
    led = b.ledger(home)
    install(led, b.write(tmp_path, "a.skill", b.artifact()), allow_tofu=True)
    with pytest.raises(TofuKeyMismatch):
        install(led, b.write(tmp_path, "b.skill", b.artifact(version="2.0.0", seed=b.SEED_B)), allow_tofu=True)


def test_revoke_quarantines_every_version_signed_by_the_key(home, tmp_path):
    led = b.ledger(home)
    install(led, b.write(tmp_path, "a.skill", b.artifact()), trusted_publishers=[("acme", KEY_A)])
    install(led, b.write(tmp_path, "b.skill", b.artifact("acme.other")), trusted_publishers=[])
    r = trust.revoke(led, "acme", KEY_A, "key leaked")
    assert {(q["skill_id"], q["reason_code"]) for q in r.quarantined} == {("acme.echo", "trust_revoked"),
                                                                           ("acme.other", "trust_revoked")}
    assert led.skill("acme.echo").versions["1.0.0"].status == "quarantined"
    with pytest.raises(Exception) as ei:
        lifecycle.enable(led, "acme.echo", None, "try")
    assert ei.value.code == "key_revoked"
    store = open_views(led.settings)
    try:
        rows = {e["skill_id"]: e for e in list_entries(store.con)}
    finally:
        store.close()
    assert "key_revoked" in rows["acme.echo"]["eligibility"]["reasons"]


def test_remove_promotes_and_deletes_the_unreferenced_artifact(home, tmp_path):
    led = b.ledger(home)
    one = install(led, b.write(tmp_path, "1.skill", b.artifact(version="1.0.0")), allow_tofu=True)
    two = install(led, b.write(tmp_path, "2.skill", b.artifact(version="2.0.0")))
    r = lifecycle.remove(led, "acme.echo", None, "cleanup")
    assert r.version == "2.0.0" and r.current == "1.0.0" and r.details["artifact_deleted"] is True
    assert not (home / "blobs" / "sha256" / two.artifact_sha256).exists()
    assert (home / "blobs" / "sha256" / one.artifact_sha256).exists()
    with pytest.raises(NotInstalled):
        lifecycle.remove(led, "acme.echo", "2.0.0", None)


def test_rollback_and_invalid_ids(home, tmp_path):
    led = b.ledger(home)
    install(led, b.write(tmp_path, "1.skill", b.artifact(version="1.0.0")), allow_tofu=True)
    install(led, b.write(tmp_path, "2.skill", b.artifact(version="2.0.0")))
    r = lifecycle.rollback(led, "acme.echo", None, "regression")
    assert (r.version, r.current, r.details["from_version"]) == ("1.0.0", "1.0.0", "2.0.0")
    with pytest.raises(UsageError):
        lifecycle.quarantine(led, "Not A Skill", None, "x")
    with pytest.raises(NotInstalled):
        lifecycle.quarantine(led, "acme.unknown", None, "x")


def test_enable_refuses_failed_audit_unless_override(home, tmp_path):
    led = b.ledger(home)
    install(led, b.write(tmp_path, "a.skill", b.artifact()), allow_tofu=True)
    lifecycle.quarantine(led, "acme.echo", None, "look")
    set_policy(led, ["max_exported_functions=1"], "tighten")
    with pytest.raises(AuditFailed):
        lifecycle.enable(led, "acme.echo", None, "try")
    assert led.skill("acme.echo").versions["1.0.0"].status == "quarantined"
    r = lifecycle.enable(led, "acme.echo", None, "accepting the risk", override=True)
    assert r.status == "active" and r.details["override"] is True
    enabled = [e for e in events(led) if e["kind"] == "skill.enabled"][-1]
    assert enabled["data"]["override"] is True and enabled["data"]["audit_passed"] is False
    assert enabled["data"]["reason"] == "accepting the risk"


def test_enable_of_a_tampered_artifact_quarantines_even_with_override(home, tmp_path):
    led = b.ledger(home)
    r = install(led, b.write(tmp_path, "a.skill", b.artifact()), allow_tofu=True)
    lifecycle.disable(led, "acme.echo", None, "pause")
    blob = home / "blobs" / "sha256" / r.artifact_sha256
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[100] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(Exception) as ei:
        lifecycle.enable(led, "acme.echo", None, "try", override=True)
    assert ei.value.code == "artifact_tampered"
    v = led.skill("acme.echo").versions["1.0.0"]
    assert (v.status, v.status_reason_code) == ("quarantined", "artifact_tampered")


def test_invalid_module_path_in_build_is_rejected_before_anything():
    with pytest.raises(InvalidArtifactPath):
        from skill_ledger.domain.artifact import build_artifact

        build_artifact(b.manifest(), [("../x.wasm", b.wasm())], [], b.SBOM, b.PROVENANCE, b.SEED_A, 0)


def test_journal_rows_are_append_only(home, tmp_path):
    led = b.ledger(home)
    install(led, b.write(tmp_path, "a.skill", b.artifact()), allow_tofu=True)
    con = sqlite3.connect(led.settings.journal_path)
    for sql in ("UPDATE stored_events SET topic='x'", "DELETE FROM stored_events", "DELETE FROM event_chain"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute(sql)


def test_policy_changes_are_versioned_events(home):
    led = b.ledger(home)
    r = set_policy(led, ["max_exported_functions=64", "allow_device_capabilities=true"], "tune")
    assert r.policy_version == 1 and r.changed == ["max_exported_functions", "allow_device_capabilities"]
    assert set_policy(led, ["max_exported_functions=64"], "same").changed == []
    (e,) = events(led)
    assert e["kind"] == "policy.changed" and e["data"]["policy"]["max_exported_functions"] == 64
    with pytest.raises(UsageError):
        set_policy(led, ["no_such_key=1"], "x")


def test_import_trust_allowlists_and_pins(home, tmp_path):
    from skill_ledger.domain.trust import parse_trust_store

    led = b.ledger(home)
    store = parse_trust_store(json.dumps({"trusted_publishers": {"acme": [KEY_A]},
                                          "tofu_publishers": {"beta": KEY_B}}).encode())
    r = trust.import_trust(led, store, "import")
    assert len(r.allowlisted) == 1 and len(r.pinned) == 1
    again = trust.import_trust(led, store, "import")
    assert again.allowlisted == [] and again.pinned == [] and again.positions == []


def test_reinstalling_the_same_bytes_restores_a_lost_stored_artifact(home, tmp_path):
    led = b.ledger(home)
    path = b.write(tmp_path, "a.skill", b.artifact())
    r = install(led, path, allow_tofu=True)
    blob = home / "blobs" / "sha256" / r.artifact_sha256
    blob.unlink()
    assert verification.verify(led, "acme.echo", None).reason_code == "artifact_missing"
    head = led.head()
    again = install(led, path)
    assert again.already_installed and blob.exists() and led.head() == head
    assert led.skill("acme.echo").versions["1.0.0"].status == "quarantined"  # enable decides
    assert lifecycle.enable(led, "acme.echo", None, "restored").status == "active"


# --- identity and bounded rejections (issue 10) ---------------------------------------------


def resigned(data: bytes, old: str, new: str, seed: bytes = b.SEED_A) -> bytes:
    """``data`` with ``old`` replaced by ``new`` in its skill.toml, signed again: what a publisher
    can ship without going through ``package build``."""
    from skill_ledger.domain.signing import payload_sha256, sign_payload
    from skill_ledger.domain.ziparchive import decode_archive, encode_archive

    entries = decode_archive(data)
    text = entries["skill.toml"].decode()
    assert old in text
    entries["skill.toml"] = text.replace(old, new, 1).encode()
    del entries["signature.json"]
    entries["signature.json"] = sign_payload(seed, payload_sha256(entries), "acme", 0).to_json_bytes()
    return encode_archive(entries)


@pytest.mark.parametrize("alias", ["01.0.0", "+1.0.0", "1.0.00", " 1.0.0"])
def test_version_alias_cannot_install_next_to_1_0_0(home, tmp_path, alias):
    """The attack: these installed next to 1.0.0 with other payloads, and the last became current,
    displayed as 1.0.0. Now the manifest is refused, recorded once, and 1.0.0 stays current."""
    led = b.ledger(home)
    install(led, b.write(tmp_path, "a.skill", b.artifact()), allow_tofu=True)
    evil = resigned(b.artifact(asset=b"other payload"), 'version = "1.0.0"', f'version = "{alias}"')
    path = b.write(tmp_path, "evil.skill", evil)
    for _ in range(2):
        with pytest.raises(Exception) as refused:
            install(led, path, allow_tofu=True)
        assert refused.value.code == "manifest_validation"
        assert refused.value.details["code"] == "semver_component_invalid"
    assert kinds(led).count("artifact.rejected") == 1
    skill = led.skill("acme.echo")
    assert skill.current == "1.0.0" and [v.version for v in skill.installed_versions()] == ["1.0.0"]


def test_repeated_rejection_of_one_artifact_is_recorded_once_per_error(home, tmp_path):
    led = b.ledger(home)
    path = b.write(tmp_path, "a.skill", b.artifact())
    for _ in range(3):
        with pytest.raises(UntrustedPublisher) as refused:
            install(led, path)
    assert kinds(led) == ["artifact.rejected"]
    assert refused.value.details["positions"] == []  # the repeat wrote nothing
    head = led.head()
    trust.revoke(led, "acme", KEY_A, "leaked")
    for _ in range(2):  # the same artifact, another reason: one more record
        with pytest.raises(Exception) as refused:
            install(led, path, allow_tofu=True)
        assert refused.value.code == "key_revoked"
    rejected = [e for e in events(led) if e["kind"] == "artifact.rejected"]
    assert [e["data"]["error_code"] for e in rejected] == ["untrusted_publisher", "key_revoked"]
    assert led.head() == head + 2  # the revocation and one rejection


def test_rejection_event_fields_are_bounded(home, tmp_path):
    """A 60 KB invalid secret scope (inside the manifest limits) is quoted in the message and the
    details only up to their bounds, with a visible marker; a long source is bounded too."""
    led = b.ledger(home)
    scope = "x" * 60_000
    evil = resigned(b.artifact(), "secrets = []", f'secrets = [{{ scope = "{scope}", key_names = ["k"] }}]')
    with pytest.raises(Exception) as refused:
        install(led, "unused", data=evil, source="registry:" + "s" * 20_000, allow_tofu=True)
    assert refused.value.code == "manifest_validation"
    (e,) = [e for e in events(led) if e["kind"] == "artifact.rejected"]
    data = e["data"]
    assert len(data["message"].encode()) <= 4_096 and data["message"].endswith("bytes]")
    assert "…[truncated " in data["message"] and "…[truncated " in data["details"]["detail"]
    assert len(data["details"]["detail"].encode()) <= 1_024
    assert len(data["source"].encode()) <= 4_096 and "…[truncated " in data["source"]
    assert len(json.dumps(e).encode()) < 12_000


def test_loading_an_aggregate_replays_its_stream_as_the_library_does(home, tmp_path):
    """``Ledger.load`` reads plain rows; the aggregate equals eventsourcing's own reconstruction."""
    from skill_ledger.domain.skill import Skill

    led = b.ledger(home)
    install(led, b.write(tmp_path, "a.skill", b.artifact()), allow_tofu=True)
    install(led, b.write(tmp_path, "b.skill", b.artifact(version="1.1.0")), allow_tofu=True)
    lifecycle.quarantine(led, "acme.echo", "1.0.0", "suspicious")
    ours = led.load(Skill, "acme.echo")
    theirs = led.app.repository.get(Skill.id_for("acme.echo"))
    assert ours.version == theirs.version > 5
    def state(skill):
        return {**vars(skill), "versions": {v: vars(sv) for v, sv in skill.versions.items()}}

    assert state(ours) == state(theirs)
    assert led.replay(Skill.id_for("nobody.here")) is None
    assert led.load(Skill, "nobody.here").version == 0


def test_reads_by_event_kind_use_the_topic_index_and_old_journals_gain_it(home, tmp_path):
    led = b.ledger(home)
    install(led, b.write(tmp_path, "a.skill", b.artifact()), allow_tofu=True)
    led.close()
    path = home / "journal.db"
    with sqlite3.connect(path) as con:
        plan = con.execute("EXPLAIN QUERY PLAN SELECT rowid FROM stored_events WHERE rowid > 0 "
                           "AND topic IN ('skill.installed.v1') ORDER BY rowid").fetchall()
        assert any("stored_events_topic" in row[-1] for row in plan), plan
        con.execute("DROP INDEX stored_events_topic")  # a journal written before the index existed
    led = b.ledger(home)
    assert led.skill_ids() == ["acme.echo"]
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'stored_events_topic'").fetchone()
