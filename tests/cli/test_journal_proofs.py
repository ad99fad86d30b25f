"""``skills journal prove``, ``consistency`` and ``verify-proof`` (issue 14): every position of
a small journal proven in every checkpoint, every pair of checkpoints proven consistent, and
tampered proofs, notes and signatures rejected by a verifier that has no home or journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tlog_helpers as t

from skill_ledger.adapters.journal.proofs import prove_inclusion
from skill_ledger.adapters.usecases.checkpoints import home_public_key
from skill_ledger.domain.notes import Checkpoint as NoteCheckpoint
from skill_ledger.domain.notes import NoteSigner, sign_checkpoint

OTHER_SEED = bytes([0x66]) * 32


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A journal with three checkpoints (of growing sizes), the newest the last event but one."""
    home = tmp_path_factory.mktemp("proofs") / "home"
    t.build_journal(home, steps=2)
    checkpoints = [t.checkpoint(home)]
    t.add_events(home, 3)
    checkpoints.append(t.checkpoint(home))
    t.add_events(home, 6, name="acme.s1")
    checkpoints.append(t.checkpoint(home))
    t.add_events(home, 1)
    key = home.parent / "journal.vkey"
    key.write_text(checkpoints[-1]["verifier_key"])
    return {"home": home, "checkpoints": checkpoints, "key": key, "nohome": home.parent / "no-such-home"}


def verify_proof(j: dict[str, Any], doc: dict[str, Any] | str, *extra: str) -> Any:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    r = t.skills(j["nohome"], "journal", "verify-proof", "-", "--public-key", str(j["key"]), "--json", *extra,
                 input=text)
    assert not j["nohome"].exists(), "verify-proof needs no home and makes none"
    return r


def prove(j: dict[str, Any], *args: str) -> dict[str, Any]:
    r = t.skills(j["home"], "journal", "prove", *args)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_every_position_proves_in_the_newest_checkpoint(journal: dict[str, Any]) -> None:
    size = journal["checkpoints"][-1]["tree_size"]
    for position in range(1, size + 1):
        doc = prove(journal, str(position))
        assert (doc["position"], doc["leaf_index"], doc["tree_size"]) == (position, position - 1, size)
        assert doc["event"]["position"] == position and doc["event"]["hash"] == doc["event_hash"]
        r = verify_proof(journal, doc)
        assert r.exit_code == 0, r.stderr
        assert json.loads(r.stdout)["event_checked"] is True


def test_every_position_proves_in_every_checkpoint(journal: dict[str, Any]) -> None:
    from skill_ledger.adapters.journal.proofs import verify_proof_document
    from skill_ledger.adapters.settings import resolve
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

    settings = resolve(home=str(journal["home"]), journal=None, actor="user:t", command="t")
    key = home_public_key(settings)
    ledger = Ledger(settings)
    try:
        for cp in journal["checkpoints"]:
            for position in range(1, cp["tree_size"] + 1):
                doc = prove_inclusion(ledger.app, position, checkpoint_size=cp["tree_size"], key=key)
                assert doc["checkpoint"] == cp["note"]
                assert verify_proof_document(doc, key)["position"] == position
    finally:
        ledger.close()


def test_consistency_between_every_pair_of_checkpoints(journal: dict[str, Any]) -> None:
    sizes = [cp["tree_size"] for cp in journal["checkpoints"]]
    for i, old in enumerate(sizes):
        for new in sizes[i:]:
            r = t.skills(journal["home"], "journal", "consistency", str(old), str(new))
            assert r.exit_code == 0, r.stderr
            doc = json.loads(r.stdout)
            assert (doc["old_size"], doc["new_size"]) == (old, new)
            v = verify_proof(journal, doc)
            assert v.exit_code == 0, v.stderr
    default = json.loads(t.skills(journal["home"], "journal", "consistency", str(sizes[0])).stdout)
    assert default["new_size"] == sizes[-1]


def test_positions_and_sizes_outside_the_checkpoints_are_usage_errors(journal: dict[str, Any]) -> None:
    size = journal["checkpoints"][-1]["tree_size"]
    r = t.skills(journal["home"], "journal", "prove", str(size + 1))
    assert r.exit_code == 2 and "record a newer one" in r.stderr
    r = t.skills(journal["home"], "journal", "prove", "1", "--checkpoint", "4")
    assert r.exit_code == 2 and "no checkpoint of size 4" in r.stderr
    r = t.skills(journal["home"], "journal", "consistency", str(size), str(journal["checkpoints"][0]["tree_size"]))
    assert r.exit_code == 2


def mutate_hex(value: str) -> str:
    return ("0" if value[0] != "0" else "1") + value[1:]


def tampered_inclusion(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every way a proof document can be altered, each by itself."""
    out = {}
    for i in range(len(doc["proof"])):
        out[f"proof[{i}]"] = {**doc, "proof": [mutate_hex(h) if k == i else h for k, h in enumerate(doc["proof"])]}
    out["one hash fewer"] = {**doc, "proof": doc["proof"][:-1]}
    out["one hash more"] = {**doc, "proof": [*doc["proof"], doc["proof"][0]]}
    out["proof reversed"] = {**doc, "proof": doc["proof"][::-1]}
    out["position"] = {**doc, "position": doc["position"] + 1, "leaf_index": doc["leaf_index"] + 1}
    out["leaf_index"] = {**doc, "leaf_index": doc["leaf_index"] + 1}
    out["tree_size"] = {**doc, "tree_size": doc["tree_size"] - 1}
    out["event_hash"] = {**doc, "event_hash": mutate_hex(doc["event_hash"])}
    out["root_hash"] = {**doc, "root_hash": mutate_hex(doc["root_hash"])}
    event = dict(doc["event"])
    event["data"] = {**event["data"], "reason": "not what was recorded"}
    out["event data"] = {**doc, "event": event}
    out["event hash and proof hash together"] = {**doc, "event_hash": mutate_hex(doc["event_hash"]),
                                                 "event": {**doc["event"], "hash": mutate_hex(doc["event_hash"])}}
    lines = doc["checkpoint"].split("\n")
    root_line = ("B" if lines[2][0] == "A" else "A") + lines[2][1:]  # another root, signature unchanged
    out["note root line"] = {**doc, "checkpoint": "\n".join([lines[0], lines[1], root_line, *lines[3:]])}
    signature = doc["checkpoint"][-6:-2]
    out["note signature"] = {**doc, "checkpoint": doc["checkpoint"][:-6] + ("AAAA" if signature != "AAAA" else "BBBB")
                             + doc["checkpoint"][-2:]}
    out["format"] = {**doc, "format": "something/else"}
    out["kind"] = {**doc, "kind": "exclusion"}
    out["hash not hex"] = {**doc, "proof": ["zz" * 32, *doc["proof"][1:]]}
    return out


def test_tampered_inclusion_proofs_are_rejected(journal: dict[str, Any]) -> None:
    doc = prove(journal, "5")
    for name, bad in tampered_inclusion(doc).items():
        r = verify_proof(journal, bad)
        assert r.exit_code == 9, (name, r.stdout, r.stderr)
        assert r.stderr.startswith(("error[proof_invalid]", "error[note_invalid]")), (name, r.stderr)
    r = verify_proof(journal, "{not json")
    assert r.exit_code == 9 and "error[proof_invalid]" in r.stderr


def test_tampered_consistency_proofs_are_rejected(journal: dict[str, Any]) -> None:
    old, new = journal["checkpoints"][0]["tree_size"], journal["checkpoints"][-1]["tree_size"]
    doc = json.loads(t.skills(journal["home"], "journal", "consistency", str(old), str(new)).stdout)
    bad = {f"proof[{i}]": {**doc, "proof": [mutate_hex(h) if k == i else h for k, h in enumerate(doc["proof"])]}
           for i in range(len(doc["proof"]))}
    bad["old_root"] = {**doc, "old_root": mutate_hex(doc["old_root"])}
    bad["new_root"] = {**doc, "new_root": mutate_hex(doc["new_root"])}
    bad["sizes swapped"] = {**doc, "old_size": new, "new_size": old, "old_checkpoint": doc["new_checkpoint"],
                            "new_checkpoint": doc["old_checkpoint"], "old_root": doc["new_root"],
                            "new_root": doc["old_root"]}
    bad["old checkpoint of another size"] = {**doc, "old_checkpoint": journal["checkpoints"][1]["note"]}
    bad["short"] = {**doc, "proof": doc["proof"][1:]}
    for name, b in bad.items():
        r = verify_proof(journal, b)
        assert r.exit_code == 9, (name, r.stdout, r.stderr)


def test_a_proof_against_another_key_is_rejected(journal: dict[str, Any], tmp_path: Path) -> None:
    """A proof whose checkpoint an attacker re-signed with their key, and the real proof
    checked against a key that is not the journal's."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    doc = prove(journal, "3")
    attacker = NoteSigner(doc["origin"], Ed25519PrivateKey.from_private_bytes(OTHER_SEED))
    forged_note = sign_checkpoint(NoteCheckpoint(doc["origin"], doc["tree_size"], bytes.fromhex(doc["root_hash"])),
                                  attacker)
    r = verify_proof(journal, {**doc, "checkpoint": forged_note})
    assert r.exit_code == 9 and "error[note_invalid]" in r.stderr and "no signature by a known key" in r.stderr
    other = tmp_path / "other.vkey"
    other.write_text(attacker.verifier().vkey)
    r = t.skills(journal["nohome"], "journal", "verify-proof", "-", "--public-key", str(other), input=json.dumps(doc))
    assert r.exit_code == 9 and "error[note_invalid]" in r.stderr
    renamed = tmp_path / "renamed.vkey"
    from skill_ledger.domain.notes import NoteVerifier

    renamed.write_text(NoteVerifier("another/log", NoteVerifier.from_vkey(journal["key"].read_text()).public_key).vkey)
    r = t.skills(journal["nohome"], "journal", "verify-proof", "-", "--public-key", str(renamed), input=json.dumps(doc))
    assert r.exit_code == 9


def test_a_held_checkpoint_is_used_and_a_fork_is_refused(journal: dict[str, Any], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from skill_ledger.adapters.settings import resolve
    from skill_ledger.adapters.usecases.checkpoints import journal_seed

    doc = prove(journal, "2")
    held = tmp_path / "held.txt"
    held.write_text(doc["checkpoint"])
    without = {k: v for k, v in doc.items() if k != "checkpoint"}
    assert verify_proof(journal, without).exit_code == 9  # no checkpoint at all
    r = verify_proof(journal, without, "--checkpoint", str(held))
    assert r.exit_code == 0, r.stderr
    # the journal's own key signing a second tree of the same size: a fork, never accepted
    seed = journal_seed(resolve(home=str(journal["home"]), journal=None, actor="u", command="c"), create=False)
    signer = NoteSigner(doc["origin"], Ed25519PrivateKey.from_private_bytes(seed))
    fork = tmp_path / "fork.txt"
    fork.write_text(sign_checkpoint(NoteCheckpoint(doc["origin"], doc["tree_size"], bytes(32)), signer))
    r = verify_proof(journal, doc, "--checkpoint", str(fork))
    assert r.exit_code == 9 and "fork" in r.stderr


def test_verify_proof_human_output(journal: dict[str, Any]) -> None:
    doc = prove(journal, "1")
    r = t.skills(journal["nohome"], "journal", "verify-proof", "-", "--public-key", str(journal["key"]),
                 input=json.dumps(doc))
    assert r.exit_code == 0 and r.stdout.startswith("proof ok: the event at position 1 ")


def test_prove_without_the_home_key_needs_the_public_key(journal: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(journal["home"], copy)
    (copy / "journal-signing-key.pem").unlink()
    r = t.skills(copy, "journal", "prove", "1")
    assert r.exit_code == 9 and "error[journal_unverifiable]" in r.stderr
    r = t.skills(copy, "journal", "prove", "1", "--public-key", str(journal["key"]))
    assert r.exit_code == 0 and json.loads(r.stdout)["position"] == 1
