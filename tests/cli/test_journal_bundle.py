"""Evidence bundles (issue 14, "Offline auditors"): ``skills journal export`` and
``skills journal verify --bundle`` with no home, and ``docs/verify_bundle.py`` (standard
library and ``cryptography`` only) run on the same bundles: whole and partial ranges verify;
an edited, removed or added event, a cut-off end and a checkpoint re-signed with another key
are named by position by both verifiers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tlog_helpers as t

from skill_ledger.domain.codec import event_hash
from skill_ledger.domain.notes import Checkpoint as NoteCheckpoint
from skill_ledger.domain.notes import NoteSigner, NoteVerifier, sign_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "verify_bundle.py"
ATTACKER_SEED = bytes([0x77]) * 32


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("bundle")
    home = base / "home"
    t.build_journal(home, steps=3)
    first = t.checkpoint(home)
    t.add_events(home, 4, name="acme.s1")  # streams that began before: links
    t.add_events(home, 3, name="acme.new")
    second = t.checkpoint(home)
    t.add_events(home, 2)
    key = base / "journal.vkey"
    key.write_text(second["verifier_key"])
    return {"home": home, "base": base, "key": key, "checkpoints": [first, second], "nohome": base / "nohome"}


def export(j: dict[str, Any], name: str, *args: str) -> Path:
    out = j["base"] / name
    r = t.skills(j["home"], "journal", "export", "--output", str(out), "--json", *args)
    assert r.exit_code == 0, r.stderr
    return out


def verify_bundle(j: dict[str, Any], path: Path, *, key: bool = True) -> tuple[int, dict[str, Any], str]:
    args = ["journal", "verify", "--bundle", str(path), "--json"] + (["--public-key", str(j["key"])] if key else [])
    r = t.skills(j["nohome"], *args)
    assert not j["nohome"].exists()
    return r.exit_code, json.loads(r.stdout), r.stderr


def script(j: dict[str, Any], path: Path, key: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(path), "--public-key", str(key or j["key"])],
                          capture_output=True, text=True, timeout=120, check=False)


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write(j: dict[str, Any], name: str, content: list[bytes]) -> Path:
    out = j["base"] / name
    out.write_bytes(b"".join(content))
    return out


def test_the_whole_journal_round_trips(journal: dict[str, Any]) -> None:
    path = export(journal, "whole.ndjson")
    rc, doc, err = verify_bundle(journal, path)
    assert rc == 0 and doc["ok"] and doc["trusted"], (doc, err)
    size = journal["checkpoints"][-1]["tree_size"]
    assert (doc["first_position"], doc["last_position"], doc["events"], doc["tree_size"]) == (1, size, size, size)
    body = lines(path)
    header = json.loads(body[0])
    assert header["format"] == "skill-ledger-bundle/1" and header["left"] == [] and header["links"] == []
    events = [json.loads(b) for b in body[1:]]
    journal_lines = t.skills(journal["home"], "journal", "--json", "--until", str(size)).stdout.splitlines()
    assert events == [json.loads(x) for x in journal_lines]  # exactly the exported shape
    proc = script(journal, path)
    assert proc.returncode == 0 and proc.stdout.strip() == "bundle verified", proc.stdout + proc.stderr


@pytest.mark.parametrize("since,until", [(0, 7), (10, 30), (29, 30), (30, None), (41, None), (5, 47)])
def test_partial_ranges_round_trip(journal: dict[str, Any], since: int, until: int | None) -> None:
    args = ["--since", str(since)] + (["--until", str(until)] if until is not None else [])
    path = export(journal, f"part-{since}-{until}.ndjson", *args)
    rc, doc, err = verify_bundle(journal, path)
    assert rc == 0 and doc["ok"], (doc, err)
    assert doc["first_position"] == since + 1
    proc = script(journal, path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_range_through_a_checkpoint_checks_its_note(journal: dict[str, Any]) -> None:
    first = journal["checkpoints"][0]
    path = export(journal, "through.ndjson", "--since", str(first["tree_size"] - 5),
                  "--until", str(first["positions"][0] + 3))
    body = lines(path)
    kinds = [json.loads(b)["kind"] for b in body[1:]]
    assert "journal.checkpoint" in kinds
    assert verify_bundle(journal, path)[0] == 0
    assert script(journal, path).returncode == 0


def reseal(event: dict[str, Any]) -> bytes:
    """An edited event with its hash recomputed (an attacker who knows the recipe)."""
    event = {k: v for k, v in event.items() if k != "hash"}
    return (json.dumps({**event, "hash": event_hash(event)}, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def positions_named(doc: dict[str, Any]) -> set[tuple[int, str]]:
    return {(p["position"], p["code"]) for p in doc["problems"]}


def script_positions(proc: subprocess.CompletedProcess[str]) -> set[int]:
    return {int(line.split()[1].rstrip(":")) for line in proc.stdout.splitlines() if line.startswith("position ")}


def test_an_edited_event_is_named(journal: dict[str, Any]) -> None:
    body = lines(export(journal, "edit.ndjson", "--since", "10", "--until", "40"))
    i = 5  # position 15
    event = json.loads(body[i])
    event["data"] = {**event["data"], "reason": "edited"} if "reason" in event["data"] else {**event["data"], "x": 1}
    plain = write(journal, "edited.ndjson", [*body[:i], (json.dumps(event) + "\n").encode(), *body[i + 1:]])
    rc, doc, _ = verify_bundle(journal, plain)
    assert rc == 9 and (15, "hash_mismatch") in positions_named(doc)
    assert 15 in script_positions(script(journal, plain))
    resealed = write(journal, "resealed.ndjson", [*body[:i], reseal(event), *body[i + 1:]])
    rc, doc, _ = verify_bundle(journal, resealed)
    assert rc == 9 and doc["problems"], doc
    assert script(journal, resealed).returncode == 1


def test_an_event_moved_to_another_stream_id_is_named(journal: dict[str, Any]) -> None:
    """Chain format 2 hashes the originator id: a bundle whose event names an id that is not its
    stream's (resealed, so the hash holds) is refused by both verifiers at that position."""
    body = lines(export(journal, "moved.ndjson", "--since", "10", "--until", "40"))
    i = 5  # position 15
    event = json.loads(body[i])
    assert event["chain"] == 2 and event["originator_id"]
    event["originator_id"] = "00000000-0000-5000-8000-000000000000"
    moved = write(journal, "moved-id.ndjson", [*body[:i], reseal(event), *body[i + 1:]])
    rc, doc, _ = verify_bundle(journal, moved)
    assert rc == 9 and (15, "originator_mismatch") in positions_named(doc)
    assert 15 in script_positions(script(journal, moved))


def test_a_removed_event_is_named(journal: dict[str, Any]) -> None:
    body = lines(export(journal, "remove.ndjson", "--since", "10", "--until", "40"))
    gap = write(journal, "gap.ndjson", [*body[:6], *body[7:]])  # position 16 removed
    rc, doc, err = verify_bundle(journal, gap)
    assert rc == 9 and doc["first_bad_position"] == 16 and (16, "missing_event") in positions_named(doc)
    assert "position 16" in err
    proc = script(journal, gap)
    assert proc.returncode == 1 and 16 in script_positions(proc)


def test_an_added_event_is_found(journal: dict[str, Any]) -> None:
    body = lines(export(journal, "add.ndjson", "--since", "10", "--until", "40"))
    header = json.loads(body[0])
    last = json.loads(body[-1])
    extra = reseal({**last, "position": last["position"] + 1, "stream_version": last["stream_version"] + 1,
                    "prev_hash": last["hash"]})
    header["last_position"] += 1
    forged = write(journal, "added.ndjson", [(json.dumps(header) + "\n").encode(), *body[1:], extra])
    rc, doc, _ = verify_bundle(journal, forged)
    # the tree material no longer fits a range one event longer: the added event is not in the checkpoint
    assert rc == 9 and {"root_mismatch", "document_malformed"} & {p["code"] for p in doc["problems"]}
    assert script(journal, forged).returncode == 1
    same_header = write(journal, "added-same-header.ndjson", [*body, extra])
    rc, doc, _ = verify_bundle(journal, same_header)
    assert rc == 9 and doc["problems"]
    assert script(journal, same_header).returncode == 1


def test_a_cut_off_end_is_named(journal: dict[str, Any]) -> None:
    body = lines(export(journal, "cut.ndjson", "--since", "10", "--until", "40"))
    cut = write(journal, "truncated.ndjson", body[:-3])  # positions 38..40 gone
    rc, doc, _ = verify_bundle(journal, cut)
    assert rc == 9 and (38, "truncated") in positions_named(doc)
    proc = script(journal, cut)
    assert proc.returncode == 1 and 38 in script_positions(proc)


def forge(body: list[bytes], seed: bytes, position: int) -> tuple[list[bytes], NoteSigner]:
    """What a thorough attacker does to a whole-journal bundle: edit the event at ``position``,
    recompute every later hash of its stream and the chain links, re-sign every checkpoint note
    (in the header and inside the range) over the new tree with their own key, and name that
    key in the header."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from skill_ledger.domain.merkle import Frontier, MemoryNodeStore, consistency_proof, events_root

    header = json.loads(body[0])
    signer = NoteSigner(header["origin"], Ed25519PrivateKey.from_private_bytes(seed))
    heads: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    listed: list[tuple[int, str]] = []
    for line in body[1:]:
        e = json.loads(line)
        if e["position"] == position:
            e["data"] = {**e["data"], "forged": True}
        if e["stream"] in heads:
            e["prev_hash"] = heads[e["stream"]]
        if e["kind"] == "journal.checkpoint" and e["data"].get("note"):
            size = e["data"]["position"]
            root = events_root([bytes.fromhex(x["hash"]) for x in out[:size]])
            note = sign_checkpoint(NoteCheckpoint(header["origin"], size, root), signer)
            e["data"] = {**e["data"], "note": note, "root_hash": root.hex(),
                         "public_key_hex": signer.verifier().public_key.hex()}
            listed.append((size, note))
        e = json.loads(reseal(e))
        heads[e["stream"]] = e["hash"]
        out.append(e)
    hashes = [bytes.fromhex(e["hash"]) for e in out]
    root = events_root(hashes)
    header["checkpoint"] = sign_checkpoint(NoteCheckpoint(header["origin"], len(out), root), signer)
    header["verifier_key"] = signer.verifier().vkey
    store = MemoryNodeStore(Frontier().extend_events(hashes))
    header["checkpoints"] = [{"tree_size": size, "note": note,
                              "consistency": [x.hex() for x in consistency_proof(size, len(out), store)]}
                             for size, note in listed]
    return [(json.dumps(header) + "\n").encode(), *[reseal(e) for e in out]], signer


def test_a_bundle_re_signed_with_another_key_is_refused(journal: dict[str, Any]) -> None:
    body = lines(export(journal, "resign.ndjson"))
    forged_lines, signer = forge(body, ATTACKER_SEED, 4)
    forged = write(journal, "forged.ndjson", forged_lines)
    rc, doc, _ = verify_bundle(journal, forged)
    assert rc == 9 and "checkpoint_untrusted_key" in {p["code"] for p in doc["problems"]}
    # without the auditor's key, the bundle checks out against its own key and is still not trusted
    rc, doc, err = verify_bundle(journal, forged, key=False)
    assert rc == 9 and doc["trusted"] is False and [p["code"] for p in doc["problems"]] == ["key_not_supplied"]
    assert err.startswith("error[journal_unverifiable]")
    assert script(journal, forged).returncode == 1
    attacker_key = journal["base"] / "attacker.vkey"
    attacker_key.write_text(signer.verifier().vkey)
    assert script(journal, forged, attacker_key).returncode == 0  # self-consistent: only the key tells them apart
    ok = verify_bundle(journal, forged, key=False)
    assert ok[1]["root_hash"] != verify_bundle(journal, export(journal, "again.ndjson"))[1]["root_hash"]


def test_tampered_links_and_material_are_found(journal: dict[str, Any]) -> None:
    body = lines(export(journal, "material.ndjson", "--since", "44", "--until", "50"))
    header = json.loads(body[0])
    assert header["links"], "the range must continue earlier streams"
    for field in ("links", "left", "right"):
        bad = json.loads(body[0])
        if field == "links":
            bad["links"][0]["hash"] = "0" * 64
        elif bad[field]:
            item = bad[field][0]
            if isinstance(item, dict):
                item["hash"] = "0" * 64
            else:
                bad[field][0] = "0" * 64
        else:
            continue
        path = write(journal, f"bad-{field}.ndjson", [(json.dumps(bad) + "\n").encode(), *body[1:]])
        assert verify_bundle(journal, path)[0] == 9, field
        assert script(journal, path).returncode == 1, field


def test_export_needs_a_checkpoint_covering_the_range(journal: dict[str, Any], tmp_path: Path) -> None:
    size = journal["checkpoints"][-1]["tree_size"]
    r = t.skills(journal["home"], "journal", "export", "--output", str(tmp_path / "x"), "--until", str(size + 1))
    assert r.exit_code == 2 and "record one with skills journal checkpoint" in r.stderr
    fresh = tmp_path / "fresh"
    t.build_journal(fresh, steps=1)
    r = t.skills(fresh, "journal", "export", "--output", str(tmp_path / "y"))
    assert r.exit_code in (2, 9) and not (tmp_path / "y").exists()


def test_a_bundle_from_stdin_and_a_malformed_bundle(journal: dict[str, Any]) -> None:
    path = export(journal, "stdin.ndjson", "--since", "40")
    r = t.skills(journal["nohome"], "journal", "verify", "--bundle", "-", "--public-key", str(journal["key"]),
                 input=path.read_bytes())
    assert r.exit_code == 0 and r.stdout.startswith("bundle ok: positions 41..")
    r = t.skills(journal["nohome"], "journal", "verify", "--bundle", "-", "--public-key", str(journal["key"]),
                 input=b"not json\n")
    assert r.exit_code == 9 and "error[proof_invalid]" in r.stderr
    bad = NoteVerifier.from_vkey(journal["key"].read_text())
    assert bad.name == json.loads(lines(path)[0])["origin"]
