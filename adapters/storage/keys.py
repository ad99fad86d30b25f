"""Signing-key files and sources: generate (PKCS#8 PEM, 0600), read from a file, stdin or an
environment variable. The key material is never printed, logged or put in an error."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from skill_ledger.domain.errors import FileNotFound, InvalidSigningKey, IoError, UsageError
from skill_ledger.domain.signing import (
    PublicKeyFacts,
    parse_signing_key,
    private_key_pem,
    public_key_facts,
    public_key_from_seed,
)

from .files import atomic_write, read_bounded

MAX_KEY_FILE_BYTES = 16 * 1024


def generate_key_file(output: str, force: bool) -> PublicKeyFacts:
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    pem = private_key_pem(seed)
    try:
        atomic_write(output, pem, mode=0o600, exclusive=not force)
    except FileExistsError:
        raise UsageError(f"{output} already exists; pass --force to overwrite it", {"path": output}) from None
    return public_key_facts(public_key_from_seed(seed))


def read_seed_file(path: str) -> bytes:
    data = read_bounded(path, MAX_KEY_FILE_BYTES, too_large=lambda actual, limit: InvalidSigningKey(actual))
    return parse_signing_key(data)


def read_seed_stdin() -> bytes:
    data = sys.stdin.buffer.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise InvalidSigningKey(len(data))
    return parse_signing_key(data)


def read_seed_env(var: str) -> bytes:
    value = os.environb.get(var.encode())
    if value is None:
        raise UsageError(f"environment variable {var} is not set", {"variable": var})
    return parse_signing_key(value)


def key_facts_from_file(path: str) -> PublicKeyFacts:
    """Public facts of a private key file (PEM, raw 32 bytes, hex or base64)."""
    if not Path(path).exists():
        raise FileNotFound(path)
    try:
        return public_key_facts(public_key_from_seed(read_seed_file(path)))
    except OSError as e:
        raise IoError(f"cannot read {path}: {e.strerror or e}") from None
