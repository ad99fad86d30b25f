"""Signing keys of a registry's TUF roles.

Ed25519 keys in PKCS#8 PEM files of mode 0600, in a directory of mode 0700 that lies *beside*
the repository (``<DIR>.keys/`` by default), never inside it: the repository directory is
meant to be served as is by a web server. A key file is read with the same parser as the
project's other key inputs (PEM, raw, hex or base64 seed), so a key made by
``skills keys generate`` can sign a role too. Key material never reaches a message: errors
name files and key ids only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey

from skill_ledger.adapters.storage.files import atomic_write, ensure_private_dir
from skill_ledger.adapters.storage.keys import read_seed_file
from skill_ledger.domain.errors import FileNotFound, RegistryKeysMissing

ROLES = ("root", "targets", "snapshot", "timestamp")
KEY_SUFFIX = ".pem"


def default_keys_dir(repository: Path) -> Path:
    """``/srv/registry`` keeps its keys in ``/srv/registry.keys``."""
    repository = Path(repository).absolute()
    return repository.parent / f"{repository.name}.keys"


def generate_key(keys_dir: Path, label: str) -> tuple[Path, CryptoSigner]:
    """A new Ed25519 key written as ``<label>-<keyid prefix>.pem`` (0600, never overwritten)."""
    ensure_private_dir(keys_dir)
    signer = CryptoSigner.generate_ed25519()
    path = Path(keys_dir) / f"{label}-{signer.public_key.keyid[:16]}{KEY_SUFFIX}"
    atomic_write(path, signer.private_bytes, mode=0o600, exclusive=True)
    return path, signer


def load_signer(path: Path) -> CryptoSigner:
    if not Path(path).exists():
        raise FileNotFound(str(path))
    seed = read_seed_file(str(path))
    return CryptoSigner(Ed25519PrivateKey.from_private_bytes(seed))


def key_files(keys_dir: Path) -> list[Path]:
    """Every key file of a keys directory (none when the directory does not exist)."""
    try:
        names = sorted(os.listdir(keys_dir))
    except FileNotFoundError:
        return []
    return [Path(keys_dir) / n for n in names if n.endswith(KEY_SUFFIX)]


class Keyring:
    """The signers at hand, by TUF key id. A role signs with those of its authorised keys that
    are present; fewer than its threshold is ``registry_keys_missing``."""

    def __init__(self, signers: Iterable[tuple[Path, CryptoSigner]] = ()):
        self._by_keyid: dict[str, tuple[Path, CryptoSigner]] = {}
        self._by_path: dict[Path, CryptoSigner] = {}
        for path, signer in signers:
            self.add(path, signer)

    @classmethod
    def from_paths(cls, paths: Sequence[Path]) -> Keyring:
        return cls((Path(p), load_signer(Path(p))) for p in paths)

    def add(self, path: Path, signer: CryptoSigner) -> None:
        self._by_keyid[signer.public_key.keyid] = (Path(path), signer)
        self._by_path[Path(path)] = signer

    def public_key(self, path: Path) -> SSlibKey:
        return self._by_path[Path(path)].public_key

    def keyid_of(self, path: Path) -> str:
        return self.public_key(path).keyid

    def signers_for(self, role: str, keyids: Sequence[str], threshold: int) -> list[CryptoSigner]:
        found = [self._by_keyid[k][1] for k in keyids if k in self._by_keyid]
        if len(found) < threshold:
            raise RegistryKeysMissing(
                f"role '{role}' needs {threshold} of its keys to sign, {len(found)} at hand",
                {"role": role, "threshold": threshold, "available": len(found), "keyids": list(keyids)},
            )
        return found
