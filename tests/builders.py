"""Builders for signed test artifacts and ledgers on real SQLite files (used by the lead's tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from skill_ledger.adapters.settings import resolve  # noqa: E402
from skill_ledger.adapters.usecases.unit_of_work import Ledger  # noqa: E402
from skill_ledger.domain.artifact import build_artifact  # noqa: E402

SEED_A = bytes([5]) * 32
SEED_B = bytes([0x0D]) * 32
SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
PROVENANCE = b'{"builder":{"id":"tests"},"subject":[{"name":"m"}]}'

ECHO_WAT = """(module
  (import "skills:host/v1" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 16)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32) (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $p))
  (func (export "echo") (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $n)))))"""

_compiled: dict[str, bytes] = {}


def wasm(wat: str = ECHO_WAT) -> bytes:
    if wat not in _compiled:
        _compiled[wat] = wasmtime.wat2wasm(wat)
    return _compiled[wat]


def manifest(skill_id: str = "acme.echo", version: str = "1.0.0", publisher: str = "acme",
             tool: str = "echo", extra: str = "") -> str:
    return f'''manifest_version = 2
skill_id = "{skill_id}"
name = "Echo"
version = "{version}"
publisher = "{publisher}"

[entrypoints]
[[entrypoints.tools]]
id = "{publisher}.{tool}"
name = "{tool}"
description = "Echo"
input_schema = {{ type = "object" }}
output_schema = {{ type = "object" }}

[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"

[operator]
display_name = "Echo"
{extra}'''


def artifact(skill_id: str = "acme.echo", version: str = "1.0.0", publisher: str = "acme", *,
             seed: bytes = SEED_A, module: bytes | None = None, asset: bytes = b"hello", signed_at: int = 0,
             manifest_text: str | None = None) -> bytes:
    return build_artifact(
        manifest_text or manifest(skill_id, version, publisher),
        [("echo.wasm", module if module is not None else wasm())],
        [("note.txt", asset)],
        SBOM, PROVENANCE, seed, signed_at,
    ).artifact


def write(tmp: Path, name: str, data: bytes) -> str:
    p = tmp / name
    p.write_bytes(data)
    return str(p)


def settings(home: Path, actor: str = "user:test", command: str = "test"):
    return resolve(home=str(home), journal=None, actor=actor, command=command)


def ledger(home: Path, **kw) -> Ledger:
    return Ledger(settings(home, **kw))
