"""Trust-store files in the interchange format (``artifact-format.md`` §16.4)."""

from __future__ import annotations

from pathlib import Path

from skill_ledger.domain.errors import IoError
from skill_ledger.domain.trust import TrustStore, dump_trust_store, parse_trust_store

from .files import atomic_write

MAX_TRUST_STORE_BYTES = 16 * 1024 * 1024


def load_trust_store(path: str) -> TrustStore:
    """A missing file is an empty store; a read error is ``io``; bad content is ``serialization``."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_TRUST_STORE_BYTES + 1)
    except FileNotFoundError:
        return TrustStore()
    except OSError as e:
        raise IoError(f"cannot read trust store {p}: {e.strerror or e}") from None
    if len(data) > MAX_TRUST_STORE_BYTES:
        raise IoError(f"trust store {p} is larger than {MAX_TRUST_STORE_BYTES} bytes")
    return parse_trust_store(data, str(p))


def save_trust_store(path: str, store: TrustStore) -> None:
    """Atomic (temp file + rename); parents created; pretty JSON without trailing newline."""
    atomic_write(path, dump_trust_store(store), mode=0o644)
