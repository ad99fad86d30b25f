"""The key that authenticates what the runner caches under ``<home>/cache/``.

Loading a compiled module runs native code, so a cache entry must prove that this home
wrote it: each entry carries an HMAC-SHA256, under a per-home key, over its metadata (which
names the source module's digest and the compiled bytes' digest). The key lives in
``<home>/cache.key`` (32 random bytes, hex; 0600, owned by this user), *outside* the cache
directory: an entry copied from another home, or written by anything that can only write
``cache/``, fails the check and is never loaded.

What it does not stop: a process running as this user can read the key (and could as well
change the runner's own code); see the threat model in the README.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import threading
from pathlib import Path

from skill_ledger.adapters.storage.files import atomic_write

__all__ = ["KEY_NAME", "CacheKey", "KeyUnavailable", "forget_keys", "seal", "unseal"]

KEY_NAME = "cache.key"
_KEY_BYTES = 32

_keys: dict[str, CacheKey] = {}
_keys_lock = threading.Lock()


class KeyUnavailable(Exception):
    """No usable key: the caller keeps its cache in memory only (``reason`` says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CacheKey:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def mac(self, purpose: str, data: bytes) -> str:
        """The HMAC of ``data`` for one use (``purpose`` keeps one kind of record from passing as another)."""
        return hmac.new(self._secret, purpose.encode() + b"\x00" + data, hashlib.sha256).hexdigest()

    def verify(self, purpose: str, data: bytes, mac: str) -> bool:
        return hmac.compare_digest(self.mac(purpose, data), mac)

    def seal(self, purpose: str, body: bytes) -> bytes:
        """A record file's bytes: the HMAC (hex) on the first line, then ``body``."""
        return self.mac(purpose, body).encode() + b"\n" + body

    def open(self, purpose: str, raw: bytes) -> bytes | None:
        """The body of a sealed record, or ``None`` when this home's key did not seal it."""
        mac, newline, body = raw.partition(b"\n")
        if not newline or not self.verify(purpose, body, mac.decode("ascii", errors="replace")):
            return None
        return body

    @classmethod
    def for_home(cls, home: Path, *, create: bool = True) -> CacheKey:
        """The home's key, created (0600) on first use; :class:`KeyUnavailable` when it cannot be
        read safely or made (a key file others can read or write is never used, nor replaced)."""
        path = Path(home) / KEY_NAME
        with _keys_lock:
            found = _keys.get(str(path))
            if found is not None:
                return found
            secret = _read(path)
            if secret is None and create:
                _create(path)
                secret = _read(path)
            if secret is None:
                raise KeyUnavailable(f"{path} does not exist")
            key = _keys[str(path)] = cls(secret)
            return key


def _read(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise KeyUnavailable(f"{path} cannot be opened ({e.strerror or e})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyUnavailable(f"{path} is not a regular file")
        if st.st_uid != os.getuid():
            raise KeyUnavailable(f"{path} is owned by another user")
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise KeyUnavailable(f"{path} is accessible to group or others (mode {stat.S_IMODE(st.st_mode):04o})")
        raw = os.read(fd, 4 * _KEY_BYTES + 2)
    finally:
        os.close(fd)
    try:
        secret = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        secret = b""
    if len(secret) != _KEY_BYTES:
        raise KeyUnavailable(f"{path} does not hold a {_KEY_BYTES}-byte hex key")
    return secret


def _create(path: Path) -> None:
    try:
        atomic_write(path, os.urandom(_KEY_BYTES).hex().encode() + b"\n", mode=0o600, exclusive=True)
    except FileExistsError:
        pass  # another process made it first: read theirs
    except Exception as e:  # noqa: BLE001 - a read-only home: no disk cache, never a failed run
        raise KeyUnavailable(f"{path} cannot be created ({getattr(e, 'message', e)})") from None


def seal(home: Path, purpose: str, body: bytes) -> bytes | None:
    """``body`` sealed under the home's key; ``None`` when the home has no usable key."""
    try:
        return CacheKey.for_home(home).seal(purpose, body)
    except KeyUnavailable:
        return None


def unseal(home: Path, purpose: str, raw: bytes) -> bytes | None:
    """The body of a record sealed under the home's key; ``None`` for anything else."""
    try:
        return CacheKey.for_home(home, create=False).open(purpose, raw)
    except KeyUnavailable:
        return None


def forget_keys() -> None:
    """Drop the keys read in this process (tests that replace a home's key file)."""
    with _keys_lock:
        _keys.clear()
