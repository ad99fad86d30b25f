"""Shared helpers for the journal/projection reliability tests.

Signed test artifacts are built with ``domain.artifact.build_artifact`` over real wasm
modules compiled from WAT with ``wasmtime.wat2wasm``; ledgers run on real SQLite files in
a temporary home (``adapters.settings.resolve``). The invariant checks here are the ones
every reliability test ends with: the journal verifies, every install is atomic in its
stream, no half-installed version is visible, every referenced blob exists, and the live
projections equal a full rebuild, row for row.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import wasmtime

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from skill_ledger.adapters.journal.sqlite import iter_rows  # noqa: E402
from skill_ledger.adapters.journal.verify import verify_journal  # noqa: E402
from skill_ledger.adapters.readmodel.rebuild import rebuild_views  # noqa: E402
from skill_ledger.adapters.readmodel.views import catch_up_after, discard, journal_identity  # noqa: E402
from skill_ledger.adapters.settings import Settings, resolve  # noqa: E402
from skill_ledger.adapters.usecases.unit_of_work import Ledger  # noqa: E402
from skill_ledger.domain.artifact import build_artifact  # noqa: E402
from skill_ledger.domain.codec import kind_of_topic  # noqa: E402
from skill_ledger.domain.signing import public_key_from_seed  # noqa: E402
from skill_ledger.projections.replay import diff  # noqa: E402
from skill_ledger.projections.shards import Shard  # noqa: E402
from skill_ledger.projections.store import ViewStore  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
if not Path(PYTHON).exists():  # pragma: no cover - running outside the project venv
    PYTHON = sys.executable
SKILLS = [PYTHON, "-m", "skill_ledger"]

# Deterministic publisher keys (32-byte Ed25519 seeds).
SEEDS = {
    "acme": bytes([0x11]) * 32,
    "globex": bytes([0x22]) * 32,
    "rogue": bytes([0x33]) * 32,
}
OTHER_ACME_SEED = bytes([0x44]) * 32  # a second key claiming to be acme

SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
PROVENANCE = b'{"builder":{"id":"tests"},"subject":[{"name":"m"}]}'

# A json-v1 tool module that passes the audit.
GOOD_WAT = """(module
  (import "skills:host/v1" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 16)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32) (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $p))
  (func (export "echo") (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $n)))))"""

# Imports outside the allowlist: installs, but the audit fails (installed quarantined).
BAD_AUDIT_WAT = """(module
  (import "env" "abort" (func))
  (import "skills:host/v1" "log" (func (param i32 i32 i32)))
  (memory (export "memory") 1 16)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "echo") (param i32 i32) (result i64) (i64.const 0)))"""


@functools.lru_cache(maxsize=None)
def wasm(wat: str = GOOD_WAT) -> bytes:
    return bytes(wasmtime.wat2wasm(wat))


def key_hex(seed: bytes) -> str:
    return public_key_from_seed(seed).hex()


def manifest_text(skill_id: str, version: str, publisher: str, tool: str = "echo", extra: str = "") -> str:
    return f'''manifest_version = 2
skill_id = "{skill_id}"
name = "Test {skill_id}"
version = "{version}"
publisher = "{publisher}"

[entrypoints]
[[entrypoints.tools]]
id = "{publisher}.{tool}"
name = "{tool}"
description = "Echo"
input_schema = {{ type = "object" }}
output_schema = {{ type = "object" }}

{extra}
[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"

[operator]
display_name = "Test"
'''


@functools.lru_cache(maxsize=None)
def build(skill_id: str, version: str, publisher: str, *, seed: bytes | None = None, wat: str = GOOD_WAT,
          asset: bytes = b"hello", tool: str = "echo", extra: str = "") -> bytes:
    """A signed ``.palyra-skill`` artifact (cached: the same inputs give the same bytes)."""
    return build_artifact(
        manifest_text(skill_id, version, publisher, tool, extra),
        [("echo.wasm", wasm(wat))],
        [("note.txt", asset)],
        SBOM, PROVENANCE, seed if seed is not None else SEEDS[publisher], 1_700_000_000_000,
    ).artifact


def corrupt(data: bytes) -> bytes:
    """The artifact with bytes flipped in the middle (a format or integrity rejection)."""
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 16]) + data[mid + 16:]


def write(directory: Path, name: str, data: bytes) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / name
    p.write_bytes(data)
    return str(p)


def settings_for(home: Path | str, actor: str = "user:test", command: str = "test") -> Settings:
    return resolve(home=str(home), journal=None, actor=actor, command=command)


def ledger_for(home: Path | str, **kw: Any) -> Ledger:
    return Ledger(settings_for(home, **kw))


# --- projections ------------------------------------------------------------------------


def catch_up(ledger: Ledger) -> None:
    """Bring ``<home>/views.db`` up to the journal head (what every command does afterwards)."""
    catch_up_after(ledger)


def live_views(ledger: Ledger) -> ViewStore:
    return ViewStore(ledger.settings.views_path, journal_identity=journal_identity(ledger))


class InProcessShards:
    """``ShardWorkers`` that fold each shard right away, in this process (a sharded rebuild
    without child processes: the store's shard and merge logic, fast enough for every step
    of a state machine). The real workers are tested in ``tests/adapters/test_rebuild.py``."""

    def __init__(self, source: Any, count: int, batch: int | None = None) -> None:
        self.source = source
        self.count = count
        self.batch = batch

    def start(self, path: Path, shard: Shard, until: int, identity: str) -> "InProcessShards":
        store = ViewStore(path, journal_identity=identity, shard=shard)
        try:
            store.catch_up(self.source, until=until, batch=self.batch)
        finally:
            store.close()
        return self

    def wait(self) -> None:
        pass

    def kill(self) -> None:
        pass


def rebuilt_views(ledger: Ledger, directory: Path | str, *, batch: int | None = None,
                  shards: int | None = None) -> ViewStore:
    """A fresh store in ``directory`` replayed from the whole journal (optionally in small
    batches, or sharded into ``shards`` shards folded in this process)."""
    fd, name = tempfile.mkstemp(prefix="rebuilt-", suffix=".db", dir=str(directory))
    os.close(fd)
    os.unlink(name)
    store = ViewStore(name, journal_identity=journal_identity(ledger))
    if shards is not None:
        rebuild_views(store, ledger.app.recorder, shards=InProcessShards(ledger.app.recorder, shards, batch),
                      min_events=0)
    elif batch is None:
        rebuild_views(store, ledger.app.recorder)
    else:
        store.rebuild_tables()
        store.catch_up(ledger.app.recorder, batch=batch)
    return store


def raw_dump(path: Path | str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of a SQLite file (schema included), rows in primary-key order, as plain tuples.
    Not the storage of a full-text index (its shadow tables), which depends on the order the
    rows came in; ``ViewStore.integrity_problem`` checks such an index against its rows."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        out["__schema__"] = sorted(con.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall())
        for (name,) in con.execute("SELECT name FROM pragma_table_list WHERE schema = 'main' "
                                   "AND type IN ('table', 'virtual') ORDER BY name").fetchall():
            if name == "meta" or name.startswith("sqlite_"):
                # meta holds the schema version and the journal identity, compared separately
                continue
            out[name] = sorted(con.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
        return out
    finally:
        con.close()


def dump_difference(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]],
                    limit: int = 5) -> list[str]:
    out = []
    for table in sorted(set(a) | set(b)):
        ra, rb = a.get(table), b.get(table)
        if ra == rb:
            continue
        if ra is None or rb is None:
            out.append(f"{table}: present only in {'live' if rb is None else 'rebuilt'}")
            continue
        sa, sb = set(ra), set(rb)
        for row in sorted(sa - sb, key=repr)[:limit]:
            out.append(f"{table}: only live: {row!r}")
        for row in sorted(sb - sa, key=repr)[:limit]:
            out.append(f"{table}: only rebuilt: {row!r}")
        if sa == sb:
            out.append(f"{table}: same rows, different multiplicity")
    return out


def projection_mismatches(ledger: Ledger, directory: Path | str, *, batches: Iterable[int | None] = (None,),
                          shards: Iterable[int] = ()) -> list[str]:
    """Differences between the live ``views.db`` and full rebuilds (ViewStore.diff and raw
    dumps): one per batch size (None: the default), and one sharded rebuild per shard count."""
    problems: list[str] = []
    live = live_views(ledger)
    try:
        head = ledger.head()
        if live.position() != head:
            problems.append(f"live views at position {live.position()}, journal head {head}")
        if set(live.positions().values()) != {live.position()}:
            problems.append(f"projections at different positions: {live.positions()}")
        live_dump = raw_dump(live.path)
        ways = [(f"batch={batch}", {"batch": batch}) for batch in batches]
        ways += [(f"shards={count}", {"shards": count}) for count in shards]
        for how, kwargs in ways:
            rebuilt = rebuilt_views(ledger, directory, **kwargs)
            try:
                diffs = diff(live, rebuilt)
                problems += [f"diff ({how}): {d}" for d in diffs]
                if rebuilt.positions() != live.positions():
                    problems.append(f"positions ({how}): live {live.positions()} rebuilt {rebuilt.positions()}")
                problems += [f"raw ({how}): {d}" for d in dump_difference(live_dump, raw_dump(rebuilt.path))]
            finally:
                discard(rebuilt)
    finally:
        live.close()
    return problems


# --- journal-level invariants -----------------------------------------------------------


def journal_events(ledger: Ledger) -> list[dict[str, Any]]:
    """Every event as ``(position, stream, stream_version, kind, state)`` dicts, in position order."""
    out = []
    for row in iter_rows(ledger.app):
        state = msgspec.json.decode(row.state)
        out.append({"position": row.position, "stream": state["stream"], "stream_version": row.originator_version,
                    "kind": kind_of_topic(row.topic), "state": state})
    return out


INSTALL_TAIL = ("skill.activated", "skill.quarantined")


def install_atomicity_problems(events: list[dict[str, Any]]) -> list[str]:
    """Every install in a skill stream is complete: artifact_verified, audited(install),
    installed, [current_changed], activated|quarantined, with consecutive stream versions.
    An artifact_verified without the rest (or an installed without its verification) is a
    half-recorded install."""
    problems: list[str] = []
    streams: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        streams.setdefault(e["stream"], []).append(e)
    for stream, evs in streams.items():
        if not stream.startswith("skill:"):
            continue
        for i, e in enumerate(evs):
            if e["kind"] == "skill.artifact_verified":
                v = e["state"]["version"]
                seq = [x["kind"] for x in evs[i:i + 5]]
                versions = [x["state"].get("version") for x in evs[i:i + 3]]
                ok = (seq[:3] == ["skill.artifact_verified", "skill.audited", "skill.installed"]
                      and versions == [v, v, v] and evs[i + 1]["state"]["trigger"] == "install")
                if ok:
                    rest = seq[3:]
                    ok = bool(rest) and (rest[0] in INSTALL_TAIL
                                         or (rest[0] == "skill.current_changed" and len(rest) > 1
                                             and rest[1] in INSTALL_TAIL))
                if not ok:
                    problems.append(f"{stream}: incomplete install of {v} at position {e['position']}: {seq}")
            elif e["kind"] == "skill.installed":
                if i < 2 or evs[i - 2]["kind"] != "skill.artifact_verified":
                    problems.append(f"{stream}: skill.installed at {e['position']} without its verification")
    return problems


def installed_versions_from_journal(events: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(skill_id, version) -> the skill.installed data, for every version installed and not removed."""
    installed: dict[tuple[str, str], dict[str, Any]] = {}
    for e in events:
        if not e["stream"].startswith("skill:"):
            continue
        key = (e["stream"].split(":", 1)[1], e["state"].get("version"))
        if e["kind"] == "skill.installed":
            installed[key] = e["state"]
        elif e["kind"] == "skill.removed":
            installed.pop(key, None)
    return installed


def state_problems(ledger: Ledger) -> list[str]:
    """The journal verifies, installs are atomic, the views show no half-installed or
    phantom version, and every blob the journal references exists with its digest."""
    problems: list[str] = []
    report = verify_journal(ledger.app)
    if not report.ok:
        problems.append(f"journal verify: {[(p.position, p.code, p.message) for p in report.problems[:5]]}")
    events = journal_events(ledger)
    problems += install_atomicity_problems(events)
    installed = installed_versions_from_journal(events)
    for (skill_id, version), data in installed.items():
        try:
            ledger.blobs.read_verified(data["artifact_sha256"], skill_id=skill_id, version=version)
        except Exception as e:  # noqa: BLE001 - reported
            problems.append(f"blob of installed {skill_id} {version}: {type(e).__name__}: {e}")
    problems += views_problems(ledger.settings.views_path, events)
    return problems


def views_problems(views_path: Path, events: list[dict[str, Any]]) -> list[str]:
    """The views never show a version installed (or active) that the journal, up to the
    views' own tracking position, does not show installed."""
    if not views_path.exists():
        return []
    problems = []
    con = sqlite3.connect(f"file:{views_path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"versions", "positions"} <= tables:
            return []
        position = con.execute("SELECT min(position) FROM positions").fetchone()[0] or 0
        installed = installed_versions_from_journal([e for e in events if e["position"] <= position])
        for skill_id, version, flag, status in con.execute("SELECT skill_id, version, installed, status FROM versions"):
            if flag and (skill_id, version) not in installed:
                problems.append(f"views (at {position}) show {skill_id} {version} installed; the journal does not")
            if status == "active" and not flag:
                problems.append(f"views show {skill_id} {version} active but not installed")
    finally:
        con.close()
    return problems


# --- running the CLI --------------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLS_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_cli(*args: str, home: Path | str, env: dict[str, str] | None = None, timeout: float = 120,
            check: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*SKILLS, "--home", str(home), *args], capture_output=True, text=True,
                          env=env or cli_env(), timeout=timeout, cwd=str(ROOT))
    if check and proc.returncode != 0:
        raise AssertionError(f"skills {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc
