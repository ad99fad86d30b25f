"""C2SP signed notes with Ed25519 signatures, and the tlog-checkpoint body they carry.

* ``c2sp.org/signed-note``: a UTF-8 text ending in a newline, a blank line, then one or more
  lines ``— <key name> <base64(4-byte key ID || signature)>``. The key ID of an Ed25519 key
  is ``SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]``; a verifier key is the string
  ``<name>+<8 hex digits of the key ID>+<base64(0x01 || public key)>``.
* ``c2sp.org/tlog-checkpoint``: the note text is the origin line, the tree size in decimal,
  the base64 root hash, then optional non-empty extension lines.

Parsing is strict where the specs say MUST, plus three choices stated here: base64 must be
canonical (RFC 4648 §4 with padding and zero pad bits), a note is at most
:data:`MAX_NOTE_SIZE` bytes with at most :data:`MAX_SIGNATURES` signature lines (the spec asks
for at least 16), and every signature by a known key is verified (one bad signature rejects
the note, even if another signature by the same key is good). Signatures by unknown keys are
kept as unverified and otherwise ignored; a note with no good signature by a known key is
rejected. Failures raise :class:`~.errors.NoteError` with a ``reason`` from
:data:`NOTE_FAILURE_REASONS`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import NoteError
from .merkle import HASH_SIZE, MAX_TREE_SIZE
from .text import WS, b64encode, strict_b64_decode

ED25519_SIGNATURE_TYPE = 0x01
ED25519_PUBLIC_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
MAX_NOTE_SIZE = 256 * 1024
MAX_SIGNATURES = 100

SIGNATURE_PREFIX = "\u2014 "  # em dash, space

NOTE_FAILURE_REASONS = frozenset(
    {
        "malformed",  # not a signed note: encoding, control characters, separator, signature lines
        "too_large",  # more than MAX_NOTE_SIZE bytes or MAX_SIGNATURES signatures
        "bad_key",  # a verifier key or key name that does not follow the spec
        "ambiguous_key",  # two different verifier keys with the same name and key ID
        "bad_signature",  # a signature by a known key that does not verify
        "no_known_signature",  # no signature by any known key
        "checkpoint_malformed",  # the note text is not a tlog checkpoint
        "origin_mismatch",  # the checkpoint is from another log than expected
    }
)

_LOWER_HEX8 = re.compile(r"[0-9a-f]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_KEY_NAME_FORBIDDEN = frozenset(WS) | frozenset("+") | frozenset(chr(c) for c in range(0x20))


def _fail(reason: str, message: str, **extra: object) -> NoteError:
    return NoteError(reason, message, **extra)


def is_valid_key_name(name: object) -> bool:
    """Non-empty UTF-8 with no Unicode space (White_Space), no ``+`` and no control character."""
    if not isinstance(name, str) or not name or any(c in _KEY_NAME_FORBIDDEN for c in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def key_id(name: str, signature_type: int, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` as a big-endian uint32."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


# --- keys ---------------------------------------------------------------------------------


class NoteVerifier(msgspec.Struct, frozen=True):
    """An Ed25519 verifier key: a key name and a public key (the key ID follows from both)."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise _fail("bad_key", "a key name is non-empty with no spaces, '+' or control characters")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != ED25519_PUBLIC_KEY_SIZE:
            raise _fail("bad_key", f"an Ed25519 public key is {ED25519_PUBLIC_KEY_SIZE} bytes")

    @property
    def key_id(self) -> int:
        return key_id(self.name, ED25519_SIGNATURE_TYPE, self.public_key)

    @property
    def vkey(self) -> str:
        """The verifier key string: ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        material = bytes([ED25519_SIGNATURE_TYPE]) + self.public_key
        return f"{self.name}+{self.key_id:08x}+{b64encode(material)}"

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key string; the key ID must match the name and key."""
        if not isinstance(vkey, str):
            raise _fail("bad_key", "a verifier key is a string")
        name, _, rest = vkey.partition("+")
        id_hex, _, key64 = rest.partition("+")
        material = strict_b64_decode(key64)
        if not is_valid_key_name(name) or not _LOWER_HEX8.fullmatch(id_hex) or not material:
            raise _fail("bad_key", "a verifier key is <name>+<8 lowercase hex digits>+<base64 key>")
        if material[0] != ED25519_SIGNATURE_TYPE:
            raise _fail("bad_key", f"unsupported signature type 0x{material[0]:02x} (only Ed25519, 0x01)")
        verifier = cls(name, material[1:])
        if verifier.key_id != int(id_hex, 16):
            raise _fail("bad_key", "the verifier key's ID does not match its name and public key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != ED25519_SIGNATURE_SIZE:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class NoteSigner:
    """An Ed25519 signing key with its key name. Never serialised; its repr shows no key."""

    __slots__ = ("_name", "_private_key", "_verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise _fail("bad_key", "a note signer needs an Ed25519 private key")
        self._name = name
        self._private_key = private_key
        self._verifier = NoteVerifier(name, private_key.public_key().public_bytes_raw())

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._verifier.key_id

    def verifier(self) -> NoteVerifier:
        return self._verifier

    def sign(self, message: bytes) -> bytes:
        return self._private_key.sign(message)

    def __repr__(self) -> str:
        return f"NoteSigner({self._name}+{self.key_id:08x})"


# --- signed notes --------------------------------------------------------------------------


class NoteSignature(msgspec.Struct, frozen=True):
    """One signature line: key name, key ID and the signature bytes (without the key ID)."""

    name: str
    key_id: int
    signature: bytes

    @property
    def line(self) -> str:
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{SIGNATURE_PREFIX}{self.name} {b64encode(blob)}\n"


class Note(msgspec.Struct, frozen=True):
    """A parsed note: its text (final newline included) and every signature line, in order."""

    text: str
    signatures: tuple[NoteSignature, ...]


class VerifiedNote(msgspec.Struct, frozen=True):
    """A note with at least one good signature by a known key; the others are unverified."""

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]


def _decode_note(data: bytes | str) -> str:
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:
            raise _fail("malformed", "a note is valid UTF-8") from None
    if len(data) > MAX_NOTE_SIZE:
        raise _fail("too_large", f"a note is at most {MAX_NOTE_SIZE} bytes", size=len(data))
    try:
        msg = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("malformed", "a note is valid UTF-8") from None
    for i, c in enumerate(msg):
        if c < " " and c != "\n":
            raise _fail("malformed", f"a note has no control character but newline (U+{ord(c):04X})", at=i)
    return msg


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise _fail("malformed", "a signature line starts with an em dash and a space")
    name, _, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    blob = strict_b64_decode(b64)
    if not is_valid_key_name(name) or blob is None or len(blob) < 5:
        raise _fail("malformed", "a signature line is '— <key name> <base64 key ID and signature>'")
    return NoteSignature(name, int.from_bytes(blob[:4], "big"), blob[4:])


def parse_note(data: bytes | str) -> Note:
    """Split a signed note into text and signature lines; checks the syntax, not signatures."""
    msg = _decode_note(data)
    split = msg.rfind("\n\n")  # the text ends before the last blank line
    if split < 0:
        raise _fail("malformed", "a note has a blank line before its signatures")
    text, block = msg[: split + 1], msg[split + 2 :]
    if not block or not block.endswith("\n"):
        raise _fail("malformed", "a note ends with at least one signature line and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise _fail("too_large", f"a note has at most {MAX_SIGNATURES} signatures", signatures=len(lines))
    return Note(text, tuple(_parse_signature_line(line) for line in lines))


def _verifier_map(verifiers: Iterable[NoteVerifier]) -> dict[tuple[str, int], NoteVerifier]:
    known: dict[tuple[str, int], NoteVerifier] = {}
    for v in verifiers:
        if not isinstance(v, NoteVerifier):
            raise _fail("bad_key", "verifiers are NoteVerifier values")
        prior = known.setdefault((v.name, v.key_id), v)
        if prior != v:
            raise _fail("ambiguous_key", f"two verifier keys are named {v.name}+{v.key_id:08x}", name=v.name)
    return known


def open_note(data: bytes | str, verifiers: Iterable[NoteVerifier]) -> VerifiedNote:
    """Parse a note and check its signatures against the known verifier keys.

    Every signature whose (name, key ID) is known must verify; unknown ones are returned as
    unverified; at least one known signature is required. Repeated lines are reported once.
    """
    note = parse_note(data)
    known = _verifier_map(verifiers)
    message = note.text.encode("utf-8")
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        if not verifier.verify(message, sig.signature):
            raise _fail(
                "bad_signature",
                f"the signature by {sig.name}+{sig.key_id:08x} does not verify",
                name=sig.name,
                key_id=f"{sig.key_id:08x}",
            )
        if sig not in verified:
            verified.append(sig)
    if not verified:
        raise _fail("no_known_signature", "the note has no signature by a known key")
    return VerifiedNote(note.text, tuple(verified), tuple(unverified))


def sign_note(text: str, signers: Sequence[NoteSigner], existing: Sequence[NoteSignature] = ()) -> str:
    """The signed note: ``text`` (ending in a newline), a blank line, the ``existing`` signature
    lines not made by one of ``signers`` (a cosigner keeps the log's signature), then one new
    line per signer."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise _fail("malformed", "a note's text ends with a newline")
    _decode_note(text)  # the same character rules as a parsed note
    if not signers:
        raise _fail("malformed", "a note needs at least one signature")
    message = text.encode("utf-8")
    new = [NoteSignature(s.name, s.key_id, s.sign(message)) for s in signers]
    replaced = {(s.name, s.key_id) for s in new}
    kept = [s for s in existing if (s.name, s.key_id) not in replaced]
    for s in kept:
        if not is_valid_key_name(s.name) or not 0 <= s.key_id < 2**32:
            raise _fail("malformed", "an existing signature has an invalid key name or ID")
    signed = text + "\n" + "".join(s.line for s in [*kept, *new])
    parse_note(signed)  # what we emit must parse (size and count limits included)
    return signed


# --- tlog checkpoints -------------------------------------------------------------------------


def _is_line(value: object) -> bool:
    return isinstance(value, str) and bool(value) and all(c >= " " for c in value)


class Checkpoint(msgspec.Struct, frozen=True):
    """The body of a tlog checkpoint: which log (origin), how many leaves, which root."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _is_line(self.origin):
            raise _fail("checkpoint_malformed", "the origin is one non-empty line with no control character")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise _fail("checkpoint_malformed", "the tree size is an integer in [0, 2**64)")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise _fail("checkpoint_malformed", f"the root hash is {HASH_SIZE} bytes")
        for line in self.extensions:
            if not _is_line(line):
                raise _fail("checkpoint_malformed", "an extension is one non-empty line with no control character")

    def text(self) -> str:
        """The note text: origin, size, base64 root, extensions, each ending in a newline."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note text (already verified: use :func:`open_checkpoint`)."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise _fail("checkpoint_malformed", "a checkpoint text ends with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise _fail("checkpoint_malformed", "a checkpoint is at least three lines, none of them empty")
    origin, size_line, root_line, *extensions = lines
    if not _DECIMAL.fullmatch(size_line) or int(size_line) > MAX_TREE_SIZE:
        raise _fail("checkpoint_malformed", "the tree size is a decimal number with no leading zero, below 2**64")
    root = strict_b64_decode(root_line)
    if root is None or len(root) != HASH_SIZE:
        raise _fail("checkpoint_malformed", f"the root hash is the canonical base64 of {HASH_SIZE} bytes")
    return Checkpoint(origin, int(size_line), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The signed checkpoint note. The log's key name should be its origin (tlog-checkpoint)."""
    return sign_note(checkpoint.text(), [signer])


def open_checkpoint(
    data: bytes | str, verifiers: Iterable[NoteVerifier], *, origin: str | None = None
) -> tuple[Checkpoint, VerifiedNote]:
    """Verify a signed checkpoint note and parse its body; with ``origin``, the checkpoint must
    come from that log (a good signature on another log's checkpoint proves nothing here)."""
    note = open_note(data, verifiers)
    checkpoint = parse_checkpoint(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise _fail("origin_mismatch", f"the checkpoint is from {checkpoint.origin!r}, not {origin!r}")
    return checkpoint, note
