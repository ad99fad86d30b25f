"""The journal's public key as an auditor supplies it (``--public-key FILE``).

Accepted forms (the file's content, surrounding whitespace ignored):

* a C2SP verifier key, ``<name>+<8 hex digits>+<base64(0x01 || key)>`` (what
  ``skills journal checkpoint --json`` prints as ``verifier_key``; its name must then be the
  checkpoints' origin);
* a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo) holding an Ed25519 key;
* the 32 raw bytes, 64 hex digits, or the base64 of the 32 bytes.

Private keys are refused: an auditor's copy of the key must not be able to sign.
"""

from __future__ import annotations

import msgspec

from skill_ledger.domain.errors import UsageError
from skill_ledger.domain.notes import NoteError, NoteVerifier
from skill_ledger.domain.text import strict_b64_decode, strict_hex_decode

MAX_KEY_FILE = 16 * 1024


class PublicKey(msgspec.Struct, frozen=True):
    raw: bytes  # the 32-byte Ed25519 public key
    name: str | None = None  # the key name, when given as a verifier key
    source: str = "argument"  # "home" (derived from the home's signing key) or "argument"

    @property
    def hex(self) -> str:
        return self.raw.hex()

    def verifier(self, origin: str) -> NoteVerifier:
        """The note verifier of this key for checkpoints of ``origin`` (a verifier key given
        with another name cannot vouch for them: its signatures would carry that name)."""
        return NoteVerifier(self.name or origin, self.raw)


def parse_public_key(data: bytes, *, what: str = "--public-key") -> PublicKey:
    text = data.strip()
    if b"PRIVATE KEY" in text:
        raise UsageError(f"{what}: this is a private key; give the public key (skills journal checkpoint --json "
                         "prints it as verifier_key)")
    if text.startswith(b"-----BEGIN"):
        return PublicKey(_from_pem(text, what))
    if len(data) == 32 and not data.isascii():  # raw bytes (whitespace is not stripped from these)
        return PublicKey(bytes(data))
    try:
        s = text.decode("ascii")
    except UnicodeDecodeError:
        s = ""
    if "+" in s and s.count("+") >= 2 and not s.endswith("="):
        try:
            v = NoteVerifier.from_vkey(s)
        except NoteError as e:
            raise UsageError(f"{what}: not a valid verifier key: {e.message}") from None
        return PublicKey(v.public_key, name=v.name)
    for decoded in (strict_hex_decode(s.lower()) if len(s) == 64 else None, strict_b64_decode(s)):
        if decoded is not None and len(decoded) == 32:
            return PublicKey(decoded)
    if len(data) == 32:
        return PublicKey(bytes(data))
    raise UsageError(f"{what}: not an Ed25519 public key (a verifier key, a PEM public key, or 32 bytes as raw, "
                     "hex or base64)")


def _from_pem(pem: bytes, what: str) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise UsageError(f"{what}: not a readable PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{what}: the PEM key is not an Ed25519 key")
    return key.public_bytes_raw()


def public_key_pem(raw: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return Ed25519PublicKey.from_public_bytes(raw).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
