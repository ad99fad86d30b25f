"""C2SP signed notes and tlog checkpoints (domain/notes.py).

Independent vectors, each from an implementation we did not write:
* golang.org/x/mod ``sumdb/note/note_test.go`` (golang/mod at fe2ec04f7c3c): the PeterNeumann
  signer key (an Ed25519 seed), its exact signed note, the EnochRoot cosignature, the
  malformed-note list and the verifier-key manglings.
* c2sp.org/signed-note (C2SP/C2SP ``signed-note.md`` at 5ba5ee830903): the example.com/foo
  verifier key and note.
* transparency-dev/formats ``log/note_test.go`` (at 0b850f1a7b4a): a checkpoint signed in
  production by sum.golang.org, with the Go checksum database's published verifier key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from skill_ledger.cli.errors import exit_code_for
from skill_ledger.domain.errors import NoteError, ProofError
from skill_ledger.domain.notes import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    NOTE_FAILURE_REASONS,
    Checkpoint,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    key_id,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_note,
    sign_checkpoint,
    sign_note,
)

# --- golang.org/x/mod/sumdb/note ---------------------------------------------------------------

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = ("\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6R"
             "yyBwJnAM=\n")
ENOCH_SIG = ("\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc"
             "+QQ=\n")

# --- c2sp.org/signed-note example --------------------------------------------------------------

C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = ("This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Z"
             "tg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")

# --- sum.golang.org, via transparency-dev/formats ------------------------------------------------

SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_CHECKPOINT = (
    "go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n"
    "\u2014 sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n"
)


def go_signer(skey: str) -> NoteSigner:
    """Decode a Go ``PRIVATE+KEY+<name>+<id>+base64(0x01 || seed)`` signer key (test-only)."""
    _, _, name, id_hex, key64 = skey.split("+", 4)
    material = base64.b64decode(key64)
    assert material[0] == 1
    signer = NoteSigner(name, Ed25519PrivateKey.from_private_bytes(material[1:]))
    assert signer.key_id == int(id_hex, 16)
    return signer


def reason(fn, *args, **kwargs) -> str:
    """The NoteError reason of ``fn(*args, **kwargs)``, which must fail with a NoteError."""
    with pytest.raises(NoteError) as e:
        fn(*args, **kwargs)
    assert e.value.reason in NOTE_FAILURE_REASONS
    assert e.value.code == "note_invalid" and isinstance(e.value, ProofError)
    assert exit_code_for(e.value.code) == 9
    return e.value.reason


@pytest.fixture(scope="module")
def log_signer() -> NoteSigner:
    seed = hashlib.sha256(b"skill-ledger test log key").digest()
    return NoteSigner("ledger.example/journal", Ed25519PrivateKey.from_private_bytes(seed))


@pytest.fixture(scope="module")
def checkpoint() -> Checkpoint:
    return Checkpoint("ledger.example/journal", 1_000_000, hashlib.sha256(b"root").digest())


# --- independent vectors ----------------------------------------------------------------------


def test_go_sign_vector_is_reproduced_byte_for_byte():
    signer = go_signer(PETER_SKEY)
    assert signer.verifier().vkey == PETER_VKEY
    assert sign_note(GO_TEXT, [signer]) == GO_TEXT + "\n" + PETER_SIG


def test_go_open_vectors():
    peter, enoch = NoteVerifier.from_vkey(PETER_VKEY), NoteVerifier.from_vkey(ENOCH_VKEY)
    msg = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    one = open_note(msg, [peter])
    assert one.text == GO_TEXT
    assert [(s.name, s.key_id) for s in one.verified] == [("PeterNeumann", 0xC74F20A3)]
    assert [(s.name, s.key_id) for s in one.unverified] == [("EnochRoot", 0xAF0CFE78)]
    both = open_note(msg.encode(), [peter, enoch])
    assert [s.name for s in both.verified] == ["PeterNeumann", "EnochRoot"] and both.unverified == ()
    assert reason(open_note, msg, []) == "no_known_signature"
    # a signature from a known key with four extra base64 characters inside does not verify
    assert reason(open_note, GO_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], [peter]) == (
        "bad_signature")
    # repeated lines are reported once; an unknown key's bad signature is ignored
    enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    dup = open_note(GO_TEXT + "\n" + PETER_SIG * 2 + ENOCH_SIG * 2 + enoch_abcd, [peter])
    assert len(dup.verified) == 1 and len(dup.unverified) == 2
    # a cosigner keeps the log's line and adds its own after it
    cosigned = sign_note(GO_TEXT, [go_signer(PETER_SKEY)], existing=one.unverified)
    assert cosigned == GO_TEXT + "\n" + ENOCH_SIG + PETER_SIG


@pytest.mark.parametrize("msg", [
    GO_TEXT,
    GO_TEXT + "\n",
    GO_TEXT + "\n" + PETER_SIG[:-1],
    "\x01" + GO_TEXT + "\n" + PETER_SIG,
    "\xff" + GO_TEXT + "\n" + PETER_SIG,  # sent as the byte 0xff, which is not UTF-8
    GO_TEXT + "\n" + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6"
    "KE6RyyBwJnAM=",
    GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
])
def test_go_malformed_notes(msg):
    data = b"\xff" + msg[1:].encode() if msg.startswith("\xff") else msg.encode()
    assert reason(open_note, data, [NoteVerifier.from_vkey(PETER_VKEY)]) == "malformed"


def test_go_verifier_key_manglings_are_rejected():
    NoteVerifier.from_vkey(PETER_VKEY)
    b = PETER_VKEY.encode()
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                assert reason(NoteVerifier.from_vkey, b[i:j].decode()) == "bad_key"
    for i in range(len(b)):
        mangled = b[:i] + bytes([b[i] + 1]) + b[i + 1 :]
        assert reason(NoteVerifier.from_vkey, mangled.decode()) == "bad_key"
    # wrong key length and unknown algorithm, each with a key ID computed to match
    assert reason(
        NoteVerifier.from_vkey,
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==") == "bad_key"
    assert reason(
        NoteVerifier.from_vkey,
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW") == "bad_key"


def test_c2sp_signed_note_example():
    note = open_note(C2SP_NOTE, [NoteVerifier.from_vkey(C2SP_VKEY)])
    assert note.text == "This is an example message.\n"
    assert note.verified[0].key_id == 0x530D903A


def test_sum_golang_org_production_checkpoint():
    verifier = NoteVerifier.from_vkey(SUMDB_VKEY)
    cp, note = open_checkpoint(SUMDB_CHECKPOINT, [verifier], origin="go.sum database tree")
    assert (cp.origin, cp.size, cp.extensions) == ("go.sum database tree", 6476701, ())
    assert cp.root_hash == base64.b64decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=")
    assert cp.text() == note.text  # the body re-serialises to the signed bytes
    assert reason(open_checkpoint, SUMDB_CHECKPOINT, [verifier], origin="Go rocks") == "origin_mismatch"
    assert reason(open_checkpoint, SUMDB_CHECKPOINT.replace("6476701", "6476702"), [verifier]) == (
        "bad_signature")


# --- our own notes ------------------------------------------------------------------------------


def test_checkpoint_round_trip(log_signer, checkpoint):
    note = sign_checkpoint(checkpoint, log_signer)
    assert note.startswith("ledger.example/journal\n1000000\n" + base64.b64encode(checkpoint.root_hash).decode())
    got, verified = open_checkpoint(note, [log_signer.verifier()], origin=checkpoint.origin)
    assert got == checkpoint and verified.verified[0].name == log_signer.name
    with_ext = Checkpoint(checkpoint.origin, 5, checkpoint.root_hash, ("ext one", "— not a signature"))
    assert open_checkpoint(sign_checkpoint(with_ext, log_signer), [log_signer.verifier()])[0] == with_ext
    assert msgspec.json.decode(msgspec.json.encode(checkpoint), type=Checkpoint) == checkpoint
    vkey = log_signer.verifier().vkey
    assert NoteVerifier.from_vkey(vkey) == log_signer.verifier()
    assert vkey.startswith(f"ledger.example/journal+{log_signer.key_id:08x}+A")


def test_key_id_is_the_c2sp_recommended_hash(log_signer):
    pub = log_signer.verifier().public_key
    digest = hashlib.sha256(b"ledger.example/journal\n\x01" + pub).digest()
    assert log_signer.key_id == key_id(log_signer.name, 1, pub) == int.from_bytes(digest[:4], "big")


def test_witness_cosignature_keeps_the_log_signature(log_signer, checkpoint):
    witness = NoteSigner("witness.example/w1", Ed25519PrivateKey.generate())
    note = sign_checkpoint(checkpoint, log_signer)
    log_view = open_note(note, [log_signer.verifier()])
    cosigned = sign_note(log_view.text, [witness], existing=log_view.verified)
    both = open_note(cosigned, [log_signer.verifier(), witness.verifier()])
    assert [s.name for s in both.verified] == [log_signer.name, witness.name]
    assert open_checkpoint(cosigned, [log_signer.verifier()])[1].unverified[0].name == witness.name


def test_every_single_byte_change_of_a_signed_checkpoint_is_rejected(log_signer, checkpoint):
    data = sign_checkpoint(checkpoint, log_signer).encode()
    verifiers = [log_signer.verifier()]
    for i in range(len(data)):
        for mask in (0x01, 0x20, 0x80):
            mangled = data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]
            reason(open_checkpoint, mangled, verifiers)


def test_tampered_text_signature_name_and_key_id(log_signer, checkpoint):
    v = [log_signer.verifier()]
    note = sign_checkpoint(checkpoint, log_signer)
    text, _, sig_line = note.partition("\n\n")
    assert reason(open_note, text.replace("1000000", "999999") + "\n\n" + sig_line, v) == "bad_signature"
    sig = parse_note(note).signatures[0]
    for bad in (
        NoteSignature(sig.name, sig.key_id, bytes([sig.signature[0] ^ 1]) + sig.signature[1:]),
        NoteSignature(sig.name, sig.key_id, sig.signature[:-1]),  # 63 bytes
        NoteSignature(sig.name, sig.key_id, sig.signature + b"\x00"),
    ):
        assert reason(open_note, text + "\n\n" + bad.line, v) == "bad_signature"
    # another name or key ID makes it an unknown key's signature: ignored, so none is left
    for unknown in (NoteSignature("ledger.example/other", sig.key_id, sig.signature),
                    NoteSignature(sig.name, sig.key_id ^ 1, sig.signature)):
        assert reason(open_note, text + "\n\n" + unknown.line, v) == "no_known_signature"
    # a good signature does not excuse a bad one by the same key
    forged = NoteSignature(sig.name, sig.key_id, bytes(64))
    assert reason(open_note, note + forged.line, v) == "bad_signature"


def test_a_note_signed_only_by_unknown_keys_is_rejected(checkpoint):
    stranger = NoteSigner("ledger.example/journal", Ed25519PrivateKey.generate())
    expected = NoteSigner("ledger.example/journal", Ed25519PrivateKey.generate())
    note = sign_checkpoint(checkpoint, stranger)
    assert reason(open_checkpoint, note, [expected.verifier()]) == "no_known_signature"
    assert reason(open_checkpoint, note, []) == "no_known_signature"


GOOD = sign_note("text\n", [NoteSigner("k", Ed25519PrivateKey.from_private_bytes(bytes(32)))])
GOOD_B64 = GOOD.split(" ")[-1].rstrip("\n")  # 68 bytes: one "=" and two zero pad bits before it
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
NONCANONICAL_B64 = GOOD_B64[:-2] + B64_ALPHABET[B64_ALPHABET.index(GOOD_B64[-2]) ^ 1] + "="


@pytest.mark.parametrize("msg", [
    GOOD.replace("\n", "\r\n"),  # CRLF line endings
    GOOD.replace("\u2014 ", "- "),  # hyphen, not em dash
    GOOD.replace("\u2014 ", "\u2014"),
    GOOD.replace(" k ", " k  "),  # two spaces
    GOOD.replace(" k ", " k+1 "),  # '+' in a key name
    GOOD.replace(" k ", " k\u00a0x "),  # a Unicode space in a key name
    GOOD.replace(" k ", "  "),  # empty key name
    GOOD.replace(GOOD_B64, GOOD_B64.rstrip("=")),  # padding missing
    GOOD.replace(GOOD_B64, NONCANONICAL_B64),  # a pad bit set: decodes to the same bytes elsewhere
    GOOD.replace(GOOD_B64, base64.b64encode(b"\x00\x00\x00\x01").decode()),  # key ID and no signature
    GOOD.replace(GOOD_B64, GOOD_B64 + " extra"),
    GOOD.rstrip("\n"),  # no final newline
    GOOD.replace("text\n\n", "text\n"),  # no blank line
    GOOD + "\n",  # a blank line after the signatures
    GOOD + "trailing\n",
    "text\x00\n\n" + GOOD.split("\n\n")[1],  # NUL
    "te\tt\n\n" + GOOD.split("\n\n")[1],  # TAB
    "te\rt\n\n" + GOOD.split("\n\n")[1],  # a lone carriage return
    "text\n\n",  # a blank line and no signature
])
def test_malformed_notes_are_rejected(msg):
    assert reason(parse_note, msg) == "malformed"


def test_the_noncanonical_signature_decodes_to_the_same_bytes_in_a_lenient_decoder():
    assert GOOD_B64.endswith("=") and not GOOD_B64.endswith("==")
    assert base64.b64decode(NONCANONICAL_B64) == base64.b64decode(GOOD_B64)


def test_invalid_utf8_and_limits():
    sig_block = GOOD.split("\n\n")[1].encode()
    assert reason(parse_note, b"caf\xc3\n\n" + sig_block) == "malformed"  # truncated UTF-8
    assert reason(parse_note, b"\xed\xa0\x80\n\n" + sig_block) == "malformed"  # a surrogate
    assert reason(parse_note, b"x" * MAX_NOTE_SIZE + b"\n\n" + sig_block) == "too_large"
    line = GOOD.split("\n\n")[1]
    assert len(parse_note("text\n\n" + line * 16).signatures) == 16  # the spec's minimum
    assert len(parse_note("text\n\n" + line * MAX_SIGNATURES).signatures) == MAX_SIGNATURES
    assert reason(parse_note, "text\n\n" + line * (MAX_SIGNATURES + 1)) == "too_large"


def test_note_text_may_hold_blank_lines_and_em_dashes():
    signer = NoteSigner("k", Ed25519PrivateKey.generate())
    text = "a\n\n\u2014 b c\n\n"
    assert open_note(sign_note(text, [signer]), [signer.verifier()]).text == text


@pytest.mark.parametrize("text, signers", [
    ("no final newline", True),
    ("ctrl \x07\n", True),
    ("lone \ud800 surrogate\n", True),
    ("fine\n", False),
])
def test_sign_note_refuses_what_it_could_not_parse(text, signers):
    signer = NoteSigner("k", Ed25519PrivateKey.generate())
    assert reason(sign_note, text, [signer] if signers else []) == "malformed"


@pytest.mark.parametrize("text", [
    "origin\n1\n",  # two lines
    "\n1\n" + base64.b64encode(bytes(32)).decode() + "\n",  # empty origin
    "o\n01\n" + base64.b64encode(bytes(32)).decode() + "\n",  # leading zero
    "o\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n",
    "o\n+1\n" + base64.b64encode(bytes(32)).decode() + "\n",
    "o\n 1\n" + base64.b64encode(bytes(32)).decode() + "\n",
    "o\n\u0661\n" + base64.b64encode(bytes(32)).decode() + "\n",  # an Arabic-Indic digit
    f"o\n{2**64}\n" + base64.b64encode(bytes(32)).decode() + "\n",
    "o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",  # not a SHA-256 root
    "o\n1\nnot base64!\n",
    "o\n1\n" + base64.b64encode(bytes(32)).decode().rstrip("=") + "\n",
    "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\next\n",  # an empty extension line
    "o\n1\n" + base64.b64encode(bytes(32)).decode(),  # no final newline
])
def test_malformed_checkpoints_are_rejected(text):
    assert reason(parse_checkpoint, text) == "checkpoint_malformed"


def test_a_signed_but_malformed_checkpoint_is_rejected():
    signer = NoteSigner("k", Ed25519PrivateKey.generate())
    note = sign_note("o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\next\n", [signer])
    assert reason(open_checkpoint, note, [signer.verifier()]) == "checkpoint_malformed"


def test_checkpoint_values_are_validated_on_construction():
    root = bytes(32)
    for args in (("", 1, root), ("a\nb", 1, root), ("o", -1, root), ("o", 2**64, root), ("o", True, root),
                 ("o", 1, bytes(31)), ("o", 1, root, ("",)), ("o", 1, root, ("a\nb",)), ("o\x01", 1, root)):
        assert reason(Checkpoint, *args) == "checkpoint_malformed"
    assert Checkpoint("o", 2**64 - 1, root).text() == f"o\n{2**64 - 1}\n{base64.b64encode(root).decode()}\n"


def test_verifier_keys_are_parsed_strictly(log_signer):
    vkey = log_signer.verifier().vkey
    name, id_hex, key64 = vkey.split("+", 2)
    pub = log_signer.verifier().public_key
    type2 = base64.b64encode(b"\x02" + pub).decode()
    for bad in (
        f"{name}+{id_hex.upper()}+{key64}" if id_hex.upper() != id_hex else f"{name}+{id_hex}x+{key64}",
        f"{name}+{key_id(name, 2, pub):08x}+{type2}",  # unsupported signature type, matching ID
        f"{name}+{id_hex}+{key64}=",  # not base64 (bad length)
        f"{name} x+{id_hex}+{key64}",
        f"+{id_hex}+{key64}",
        f"{name}+{id_hex}",
        "",
    ):
        assert reason(NoteVerifier.from_vkey, bad) == "bad_key"
    for bad_name in ("", "a b", "a+b", "tab\tname", "nbsp\u00a0name", "line\u2028sep", "ctl\x1fname"):
        assert reason(NoteVerifier, bad_name, pub) == "bad_key"
        assert reason(NoteSigner, bad_name, Ed25519PrivateKey.generate()) == "bad_key"
    assert reason(NoteVerifier, name, pub[:31]) == "bad_key"


def test_two_different_keys_with_one_name_and_key_id_are_ambiguous():
    # Key IDs are 32 bits: a birthday search over random "public keys" finds a collision fast.
    seen: dict[int, bytes] = {}
    while True:
        pub = os.urandom(32)
        kid = key_id("collide", 1, pub)
        if kid in seen and seen[kid] != pub:
            break
        seen[kid] = pub
    a, b = NoteVerifier("collide", seen[kid]), NoteVerifier("collide", pub)
    assert a.key_id == b.key_id and a != b
    signer = NoteSigner("k", Ed25519PrivateKey.generate())
    note = sign_note("x\n", [signer])
    assert reason(open_note, note, [signer.verifier(), a, b]) == "ambiguous_key"
    assert open_note(note, [signer.verifier(), a, a]).verified  # the same key twice is fine


def test_signer_repr_shows_no_key_material(log_signer):
    assert repr(log_signer) == f"NoteSigner(ledger.example/journal+{log_signer.key_id:08x})"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(st.characters(min_codepoint=0x20, exclude_categories=("Cs",)), max_size=40), max_size=6),
    st.integers(0, 2**64 - 1),
)
def test_any_text_round_trips(lines, size):
    signer = NoteSigner("ledger.example/journal", Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
    text = "".join(line + "\n" for line in lines) or "\n"
    assert open_note(sign_note(text, [signer]), [signer.verifier()]).text == text
    cp = Checkpoint("ledger.example/journal", size, hashlib.sha256(text.encode()).digest(),
                    tuple(line for line in lines if line))
    assert open_checkpoint(sign_checkpoint(cp, signer), [signer.verifier()])[0] == cp


# --- the worked example of docs/transparency-log.md ----------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "transparency-log.md"


def test_the_documented_example_runs_and_agrees_with_the_module(capsys):
    from skill_ledger.domain.merkle import (
        Frontier,
        MemoryNodeStore,
        consistency_proof,
        inclusion_proof,
        root_from_store,
    )

    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) == 1
    scope: dict[str, object] = {"__name__": "doc_example"}
    exec(compile(blocks[0], str(DOC), "exec"), scope)  # noqa: S102 -- our own doc's script, as printed
    assert capsys.readouterr().out == "checkpoints, inclusion and consistency verified\n"
    # the module reaches the same checkpoints and proofs from the same event hashes
    listed = re.findall(r"^[1-5] ([0-9a-f]{64})$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    events = [bytes.fromhex(h) for h in listed]
    assert len(events) == 5
    frontier = Frontier()
    store = MemoryNodeStore(frontier.extend_events(events))
    verifier = NoteVerifier.from_vkey(scope["VKEY"])
    new, _ = open_checkpoint(scope["NEW"], [verifier], origin="ledger.example/journal/3f1c9a20")
    old, _ = open_checkpoint(scope["OLD"], [verifier])
    assert (new.size, new.root_hash) == (5, frontier.root())
    assert inclusion_proof(2, 5, store) == scope["inclusion"]
    assert consistency_proof(3, 5, store) == scope["consistency"]
    assert (old.size, old.root_hash) == (3, root_from_store(3, store))
    # the script's checks fail on a tampered root, like the module's
    assert not scope["verify_inclusion"](events[2], 2, 5, scope["inclusion"], old.root_hash)
    assert not scope["verify_consistency"](3, 5, new.root_hash, new.root_hash, scope["consistency"])
