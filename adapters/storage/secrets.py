"""The local secret source: ``<home>/secrets.json``, mode 0600.

Managed by ``skills secret set SCOPE KEY`` (the value comes from stdin, never argv),
``skills secret list`` (names only) and ``skills secret remove``. The runner reads it lazily,
on a tool's first ``secret_get``. Values are never logged, journaled, echoed or put in an
error message: only ``scope/key`` names travel (``adapters/usecases/secrets.py`` records each
set and removal as an event, names only).

The file is refused (``configuration_error``) when another user owns it or when group or
others may read or write it, the way ssh treats a private key.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from skill_ledger.domain.errors import ConfigurationError, UsageError
from skill_ledger.domain.grammars import ident, secret_scope

from .files import atomic_write, ensure_private_dir
from .locks import exclusive_lock

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_VALUE_BYTES = 64 * 1024
FORMAT = 1


class _File(msgspec.Struct):
    format: int = FORMAT
    secrets: dict[str, dict[str, str]] = {}


SCOPE_FORMS = "global, skill:<skill_id>, principal:<id> or channel:<id>"


def check_name(scope: str, key: str) -> tuple[str, str]:
    """Validated (scope, key): the manifest's grammars (``global``, ``skill:<id>``...; an identifier)."""
    from skill_ledger.domain.errors import ManifestValidationError

    try:
        normal_scope = secret_scope(scope)
    except ManifestValidationError as e:
        raise UsageError(f"invalid secret scope '{scope}': {e.details.get('detail', e.message)}; a scope is "
                         f"{SCOPE_FORMS} (a skill's own secrets: skill:<its id>)",
                         {"scope": scope, "key": key}) from None
    try:
        return normal_scope, ident(key, "secret key")
    except ManifestValidationError as e:
        raise UsageError(f"invalid secret key '{key}': {e.details.get('detail', e.message)}",
                         {"scope": scope, "key": key}) from None


class SecretStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # --- reading ----------------------------------------------------------------------

    def _load(self) -> _File:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return _File()
        except OSError as e:
            raise ConfigurationError(f"cannot open the secret store {self.path}: {e.strerror or e}") from None
        try:
            st = os.fstat(fd)
            mode = stat.S_IMODE(st.st_mode)
            if not stat.S_ISREG(st.st_mode):
                raise ConfigurationError(f"the secret store {self.path} is not a regular file")
            if st.st_uid != os.getuid():
                raise ConfigurationError(f"the secret store {self.path} is owned by another user")
            if mode & 0o077:
                raise ConfigurationError(
                    f"the secret store {self.path} is accessible by group or others (mode {mode:04o}); "
                    f"run: chmod 600 {self.path}")
            if st.st_size > MAX_FILE_BYTES:
                raise ConfigurationError(f"the secret store {self.path} is larger than {MAX_FILE_BYTES} bytes")
            data = os.read(fd, MAX_FILE_BYTES + 1)
        finally:
            os.close(fd)
        try:
            return msgspec.json.decode(data, type=_File)
        except msgspec.MsgspecError:
            # The message of a decode error can quote the document: never show it.
            raise ConfigurationError(f"the secret store {self.path} is not a valid secrets file") from None

    def get(self, scope: str, key: str) -> str | None:
        return self._load().secrets.get(scope, {}).get(key)

    def names(self) -> list[tuple[str, str]]:
        return sorted((scope, key) for scope, keys in self._load().secrets.items() for key in keys)

    # --- writing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        ensure_private_dir(self.path.parent)
        with exclusive_lock(self.path.parent / ".secrets.lock"):
            yield

    def _save(self, doc: _File) -> None:
        atomic_write(self.path, msgspec.json.encode(doc), mode=0o600)

    def set(self, scope: str, key: str, value: str, *, before_write: Callable[[bool], None] | None = None) -> bool:
        """Store a value; ``True`` when it replaced one. ``before_write(replaced)`` runs under the
        store's lock just before the file is written (the journal records the change first, so a
        change is never left untraced)."""
        scope, key = check_name(scope, key)
        if not value:
            raise UsageError("the secret value is empty")
        if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
            raise UsageError(f"the secret value is larger than {MAX_VALUE_BYTES} bytes")
        with self._locked():
            doc = self._load()
            replaced = key in doc.secrets.get(scope, {})
            if before_write is not None:
                before_write(replaced)
            doc.secrets.setdefault(scope, {})[key] = value
            self._save(doc)
        return replaced

    def remove(self, scope: str, key: str, *, before_write: Callable[[], None] | None = None) -> bool:
        """Delete a value; ``False`` (and nothing written) when there was none. ``before_write()``
        runs as for :meth:`set`."""
        scope, key = check_name(scope, key)
        with self._locked():
            doc = self._load()
            keys = doc.secrets.get(scope, {})
            if key not in keys:
                return False
            if before_write is not None:
                before_write()
            del keys[key]
            if not keys:
                del doc.secrets[scope]
            self._save(doc)
        return True
