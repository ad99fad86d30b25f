"""Helpers for the audit, verify and re-audit tests: signed artifacts from WAT, ledgers on real
SQLite files, the journal as exported events, and the ``skills`` command in a subprocess.

Import it from a test as::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import helpers_audit as h
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
for p in (str(ROOT), str(TESTS)):
    if p not in sys.path:
        sys.path.insert(0, p)

import wat  # noqa: E402  (tests/wat.py, the shared WAT helper)

from skill_ledger.adapters.journal.sqlite import export_row, iter_rows  # noqa: E402
from skill_ledger.adapters.settings import resolve  # noqa: E402
from skill_ledger.adapters.usecases.install import install as install_artifact  # noqa: E402
from skill_ledger.adapters.usecases.unit_of_work import Ledger  # noqa: E402
from skill_ledger.domain.artifact import build_artifact, sha256_hex  # noqa: E402
from skill_ledger.domain.publisher import Publisher  # noqa: E402
from skill_ledger.domain.signing import key_id as compute_key_id  # noqa: E402

SKILLS = ROOT / ".venv" / "bin" / "skills"
SEED_A = bytes([0x21]) * 32
SEED_B = bytes([0x42]) * 32
SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
PROVENANCE = b'{"builder":{"id":"tests"},"subject":[{"name":"m"}]}'


def public_hex(seed: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw().hex()


def key_id(seed: bytes) -> str:
    return compute_key_id(bytes.fromhex(public_hex(seed)))


# --- modules and artifacts -------------------------------------------------------------


def module(*tools: str, salt: int = 0, imports: Sequence[tuple[str, str]] = ()) -> bytes:
    """A json-v1-like module: a ``skills:host/v1`` import, memory, ``alloc`` and one export per tool
    (so it exports ``len(tools) + 1`` functions). ``salt`` changes the bytes, not the shape;
    ``imports`` adds ``(module, name)`` function imports (e.g. ``("env", "abort")``)."""
    extra = "\n".join(f'  (import "{m}" "{n}" (func))' for m, n in imports)
    funcs = "\n".join(
        f'  (func (export "{t}") (param i32 i32) (result i64) (i64.extend_i32_u (local.get 1)))' for t in tools
    )
    return wat.wasm(f"""(module
  (import "skills:host/v1" "log" (func $log (param i32 i32 i32)))
{extra}
  (memory (export "memory") 1 16)
  (global $salt i32 (i32.const {salt}))
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
{funcs})""")


def manifest(skill_id: str, version: str = "1.0.0", publisher: str = "acme", tools: Sequence[str] = ("echo",),
             compat_extra: str = "") -> str:
    tool_text = "".join(
        f'[[entrypoints.tools]]\nid = "{publisher}.{t}"\nname = "{t}"\ndescription = "tool {t}"\n'
        'input_schema = { type = "object" }\noutput_schema = { type = "object" }\n'
        for t in tools
    )
    return (
        f'manifest_version = 2\nskill_id = "{skill_id}"\nname = "Skill {skill_id}"\nversion = "{version}"\n'
        f'publisher = "{publisher}"\n\n[entrypoints]\n{tool_text}\n'
        f'[compat]\nrequired_protocol_major = 1\nmin_palyra_version = "0.1.0"\n{compat_extra}\n'
        '[operator]\ndisplay_name = "Test skill"\n'
    )


def artifact(skill_id: str, version: str = "1.0.0", publisher: str = "acme", *, seed: bytes = SEED_A,
             tools: Sequence[str] = ("echo",), module_bytes: bytes | None = None, asset: bytes = b"hello",
             salt: int = 0, signed_at: int = 0) -> bytes:
    """A validly signed artifact; its module exports one function per tool plus ``alloc``."""
    data = module_bytes if module_bytes is not None else module(*tools, salt=salt)
    return build_artifact(manifest(skill_id, version, publisher, tools), [("echo.wasm", data)],
                          [("note.txt", asset)], SBOM, PROVENANCE, seed, signed_at).artifact


def write(directory: Path, name: str, data: bytes) -> Path:
    p = Path(directory) / name
    p.write_bytes(data)
    return p


# --- ledgers and the journal ------------------------------------------------------------


def settings(home: Path, command: str = "test"):
    return resolve(home=str(home), journal=None, actor="user:test", command=command)


@contextlib.contextmanager
def ledger(home: Path, command: str = "test") -> Iterator[Ledger]:
    lg = Ledger(settings(home, command))
    try:
        yield lg
    finally:
        lg.close()


def install(home: Path, data: bytes, *, allow_tofu: bool = True) -> Any:
    with ledger(home, "install") as lg:
        return install_artifact(lg, "artifact.zip", data=data, allow_tofu=allow_tofu, source="test")


def head(home: Path) -> int:
    with ledger(home) as lg:
        return lg.head()


def events(home: Path, kind: str | None = None, after: int = 0) -> list[dict[str, Any]]:
    """Every event after ``after`` in the exported shape (``events.md``), optionally of one kind."""
    with ledger(home) as lg:
        rows = [export_row(r) for r in iter_rows(lg.app, after=after)]
    return [e for e in rows if kind is None or e["kind"] == kind]


def skill_events(home: Path, skill_id: str, kind: str, after: int = 0) -> list[dict[str, Any]]:
    return [e for e in events(home, kind, after) if e["stream"] == f"skill:{skill_id}"]


def record_revocation_only(home: Path, publisher: str, seed: bytes, reason: str = "compromised") -> None:
    """Record ``publisher.key_revoked`` through the Publisher aggregate alone, without the sweep
    ``Ledger.revoke`` does afterwards: what the journal holds when an install raced a revocation
    (the sweep ran before the install committed), or when the sweep was interrupted."""
    with ledger(home, "trust") as lg:
        agg = lg.load(Publisher, publisher)
        assert agg.revoke(lg.actor, public_hex(seed), key_id(seed), reason)
        lg.save(agg)


# --- stored artifacts ---------------------------------------------------------------------


def blob_path(home: Path, artifact_sha256: str) -> Path:
    return Path(home) / "blobs" / "sha256" / artifact_sha256


def tamper(home: Path, artifact_sha256: str, how: str, replacement: bytes | None = None) -> None:
    """Damage a stored artifact on disk: ``flip`` one byte, ``truncate``, ``delete`` or
    ``replace`` it with other bytes (blobs are 0444: chmod before writing)."""
    path = blob_path(home, artifact_sha256)
    data = path.read_bytes()
    if how == "delete":
        path.unlink()
        return
    path.chmod(0o644)
    if how == "flip":
        i = len(data) // 2
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:])
    elif how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "replace":
        assert replacement is not None and sha256_hex(replacement) != artifact_sha256
        path.write_bytes(replacement)
    else:
        raise ValueError(how)
    path.chmod(0o444)


# --- the command line ----------------------------------------------------------------------


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        try:
            self.json: Any = json.loads(proc.stdout) if proc.stdout.strip() else None
        except ValueError:
            self.json = None

    def __repr__(self) -> str:
        return f"Run(rc={self.rc}, stdout={self.stdout[-2000:]!r}, stderr={self.stderr[-2000:]!r})"


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLS_")}
    env.pop("PALYRA_SKILL_AUDIT_VULN_FEED_HOOK", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli(home: Path, *args: str, as_json: bool = True, timeout: float = 60) -> Run:
    argv = [str(SKILLS), "--home", str(home), *(["--json"] if as_json else []), *args]
    return Run(subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=cli_env()))


def entry(home: Path, skill_id: str, version: str = "1.0.0") -> dict[str, Any]:
    """The ``skills list`` entry of one version."""
    r = cli(home, "list")
    assert r.rc == 0, r
    found = [e for e in r.json["entries"] if e["skill_id"] == skill_id and e["version"] == version]
    assert len(found) == 1, r.json
    return found[0]
