"""The tool declarations of an artifact (``domain/tool_decl.py``), remembered per artifact.

A warm call must not read the artifact again, and a new process should not either when the
gate already knows the stored file is unchanged. So the declaration documents of a verified
artifact (the ``assets/tools/*.json`` entries, often none) are kept in process and in
``<home>/cache/tools/<artifact sha256>.json``, authenticated like the compiled modules (an
HMAC under the home's key, ``cachekey.py``, on the first line). A record that fails the check
is deleted and rebuilt from the artifact, with a notice. Every document is parsed strictly
again when it is used, so a record can only ever carry what the signed artifact did.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec

from skill_ledger.adapters.storage.files import atomic_write, ensure_private_dir
from skill_ledger.domain.tool_decl import (
    DECLARATION_PREFIX,
    MAX_DOCUMENT_BYTES,
    ToolDeclaration,
    declaration_path,
    parse_declaration,
)

from .cachekey import CacheKey, KeyUnavailable
from .engine import private_dir_problem, read_private_file

__all__ = ["Declarations"]

RECORD_FORMAT = 1
MAC_PURPOSE = f"skill-ledger/tool-declarations/v{RECORD_FORMAT}"
MEMORY_SIZE = 256

Notify = Callable[[str], None]


class _Record(msgspec.Struct, frozen=True):
    format: int
    artifact_sha256: str
    documents: dict[str, str]  # entry path -> the document (UTF-8 text as stored in the artifact)


_memory: OrderedDict[str, dict[str, bytes]] = OrderedDict()
_memory_lock = threading.Lock()


def documents_of(entries: Mapping[str, bytes]) -> dict[str, bytes]:
    return {p: d for p, d in entries.items() if p.startswith(DECLARATION_PREFIX) and p.endswith(".json")}


class Declarations:
    def __init__(self, cache_dir: Path, *, notify: Notify | None = None) -> None:
        self.parent = Path(cache_dir)
        self.directory = self.parent / "tools"
        self.notify = notify or (lambda message: None)
        self._key: CacheKey | None | bool = None  # False: no disk record in this process

    def get(self, artifact_sha256: str, tool_id: str,
            entries: Callable[[], Mapping[str, bytes]]) -> ToolDeclaration | None:
        """The tool's declaration, ``None`` when the artifact has none for it (``entries()``
        supplies the verified artifact's entries when nothing is remembered)."""
        documents = self._documents(artifact_sha256, entries)
        path = declaration_path(tool_id)
        data = documents.get(path)
        return None if data is None else parse_declaration(data, path)

    def _documents(self, artifact_sha256: str, entries: Callable[[], Mapping[str, bytes]]) -> dict[str, bytes]:
        with _memory_lock:
            found = _memory.get(artifact_sha256)
            if found is not None:
                _memory.move_to_end(artifact_sha256)
                return found
        documents = self._load(artifact_sha256)
        if documents is None:
            documents = documents_of(entries())
            self._save(artifact_sha256, documents)
        with _memory_lock:
            _memory[artifact_sha256] = documents
            while len(_memory) > MEMORY_SIZE:
                _memory.popitem(last=False)
        return documents

    def _usable_key(self) -> CacheKey | None:
        if self._key is None:
            problem = private_dir_problem(self.parent)
            try:
                self._key = CacheKey.for_home(self.parent.parent) if problem is None else False
            except KeyUnavailable:
                self._key = False
        return self._key or None

    def _load(self, artifact_sha256: str) -> dict[str, bytes] | None:
        key = self._usable_key()
        path = self.directory / f"{artifact_sha256}.json"
        if key is None or not os.path.lexists(path) or private_dir_problem(self.directory) is not None:
            return None
        raw = read_private_file(path, 64 * MAX_DOCUMENT_BYTES + (1 << 20))
        body = key.open(MAC_PURPOSE, raw) if raw is not None else None
        record = None
        if body is not None:
            try:
                record = msgspec.json.decode(body, type=_Record)
            except msgspec.MsgspecError:
                record = None
        if record is None or (record.format, record.artifact_sha256) != (RECORD_FORMAT, artifact_sha256):
            try:
                os.unlink(path)
            except OSError:
                pass
            self.notify(f"warning: tool declaration record {path.name} failed authentication (not sealed by this "
                        "home's key, or unreadable); deleted, "
                        "reading the artifact again")
            return None
        return {p: d.encode("utf-8") for p, d in record.documents.items()}

    def _save(self, artifact_sha256: str, documents: dict[str, bytes]) -> None:
        key = self._usable_key()
        if key is None:
            return
        try:
            text = {p: d.decode("utf-8") for p, d in documents.items()}
        except UnicodeDecodeError:
            return  # an invalid document: refused when used, never remembered
        body = msgspec.json.encode(_Record(RECORD_FORMAT, artifact_sha256, text))
        try:
            ensure_private_dir(self.directory)
            atomic_write(self.directory / f"{artifact_sha256}.json", key.seal(MAC_PURPOSE, body), mode=0o600)
        except Exception:  # noqa: BLE001, S110 - the record only saves time
            pass


def forget_declarations() -> None:
    with _memory_lock:
        _memory.clear()
