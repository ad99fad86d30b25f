"""Shared helpers for the runner tests: WAT building blocks, signed artifacts with real wasm
modules, a state directory (real SQLite journal and views) with skills installed into it,
and a local HTTP server for the egress cases.

Import it from any test directory with::

    sys.path.insert(0, str(Path(__file__).resolve().parents[N] / "adapters" / "runner"))
    import runner_kit as kit
"""

from __future__ import annotations

import functools
import http.server
import json
import socket
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import wasmtime

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from skill_ledger.adapters.runner import Runner  # noqa: E402
from skill_ledger.adapters.settings import Settings, resolve  # noqa: E402
from skill_ledger.adapters.usecases.install import install  # noqa: E402
from skill_ledger.adapters.usecases.policy import set_policy  # noqa: E402
from skill_ledger.adapters.usecases.session import ledger_session  # noqa: E402
from skill_ledger.adapters.usecases.unit_of_work import Ledger  # noqa: E402
from skill_ledger.domain.artifact import build_artifact  # noqa: E402

SEED = bytes([5]) * 32
SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
PROVENANCE = b'{"builder":{"id":"t"},"subject":[{"name":"m"}]}'
PUBLISHER = "acme"
HOST = "skills:host/v1"
PALYRA = "palyra:plugins/host-capabilities@0.1.0"
WASI = "wasi_snapshot_preview1"


@functools.lru_cache(maxsize=None)
def wasm(source: str) -> bytes:
    return bytes(wasmtime.wat2wasm(source))


# --- WAT building blocks ---------------------------------------------------------------------

IMPORT_LOG = f'(import "{HOST}" "log" (func $log (param i32 i32 i32)))'
IMPORT_SECRET = f'(import "{HOST}" "secret_get" (func $secret_get (param i32 i32 i32 i32) (result i32)))'
IMPORT_HTTP = f'(import "{HOST}" "http_fetch" (func $http_fetch (param i32 i32) (result i64)))'
IMPORT_READ = f'(import "{HOST}" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i32)))'
IMPORT_WRITE = f'(import "{HOST}" "storage_write" (func $storage_write (param i32 i32 i32 i32) (result i32)))'

# {"rc":N} for a signed N, written at 512; returns the packed (ptr << 32) | len.
EMIT_RC = r'''
  (data (i32.const 512) "{\"rc\":")
  (func $emit_rc (param $v i32) (result i64)
    (local $at i32) (local $tmp i32) (local $len i32) (local $j i32)
    (local.set $at (i32.const 518))
    (if (i32.lt_s (local.get $v) (i32.const 0))
      (then (i32.store8 (local.get $at) (i32.const 45))
            (local.set $at (i32.add (local.get $at) (i32.const 1)))
            (local.set $v (i32.sub (i32.const 0) (local.get $v)))))
    (local.set $tmp (local.get $v)) (local.set $len (i32.const 1))
    (block $c (loop $l
      (br_if $c (i32.lt_u (local.get $tmp) (i32.const 10)))
      (local.set $tmp (i32.div_u (local.get $tmp) (i32.const 10)))
      (local.set $len (i32.add (local.get $len) (i32.const 1))) (br $l)))
    (local.set $j (local.get $len))
    (loop $w
      (local.set $j (i32.sub (local.get $j) (i32.const 1)))
      (i32.store8 (i32.add (local.get $at) (local.get $j))
                  (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $w (local.get $j)))
    (local.set $at (i32.add (local.get $at) (local.get $len)))
    (i32.store8 (local.get $at) (i32.const 125))
    (i64.or (i64.shl (i64.const 512) (i64.const 32))
            (i64.extend_i32_u (i32.sub (i32.add (local.get $at) (i32.const 1)) (i32.const 512)))))
'''

ALLOC = '''
  (global $heap (mut i32) (i32.const 4096))
  (func $alloc (export "alloc") (param $n i32) (result i32)
    (local $p i32) (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $p))
'''

ECHO_BODY = ("(i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) "
             "(i64.extend_i32_u (local.get $len)))")


def packed(ptr: int, length: int) -> str:
    return f"(i64.const {(ptr << 32) | length})"


def json_module(body: str, *, name: str = "tool", imports: Sequence[str] = (IMPORT_LOG,),
                memory: str = '(memory (export "memory") 1 256)', extra: str = "", locals_: str = "") -> str:
    """A json-v1 module: memory, a bump ``alloc``, ``$emit_rc`` and the tool export ``name``."""
    return f'''(module
  {" ".join(imports)}
  {memory}
  {ALLOC}
  {EMIT_RC}
  {extra}
  (func (export "{name}") (param $ptr i32) (param $len i32) (result i64) {locals_}
    {body}))'''


ECHO = json_module(ECHO_BODY, name="echo")


def palyra_module(body: str, imports: Iterable[str] = (), *, entry: str = "run") -> str:
    decls = []
    for name in imports:
        sig = "(result i32)" if name.endswith("count") else "(param i32) (result i32)"
        decls.append(f'(import "{PALYRA}" "{name}" (func ${name} {sig}))')
    return f'''(module
  {" ".join(decls)}
  (func (export "{entry}") (result i32) {body}))'''


def wasi_module(body: str, *, imports: Sequence[str] = (), extra: str = "", memory_pages: int = 1) -> str:
    base = [
        f'(import "{WASI}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))',
        f'(import "{WASI}" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))',
        f'(import "{WASI}" "proc_exit" (func $proc_exit (param i32)))',
    ]
    return f'''(module
  {" ".join(base)} {" ".join(imports)}
  (memory (export "memory") {memory_pages})
  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr)) (i32.store (i32.const 4) (local.get $len))
    (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
  {extra}
  (func (export "_start") {body}))'''


# --- manifests and artifacts ---------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _key(name: str) -> str:
    """A bare TOML key where it may be one, else a quoted one (``"$ref"``)."""
    return name if name and all(c.isascii() and (c.isalnum() or c in "_-") for c in name) else json.dumps(name)


def manifest(skill_id: str, tools: Sequence[tuple[str, dict, dict]], *, version: str = "1.0.0",
             fuel: int | None = None, memory: int | None = None, timeout_ms: int | None = None,
             http: Sequence[str] = (), secrets: dict[str, Sequence[str]] | None = None,
             read_roots: Sequence[str] = (), write_roots: Sequence[str] = (), default_entrypoint: str | None = None,
             default_module_path: str | None = None) -> str:
    out = [f'manifest_version = 2\nskill_id = "{skill_id}"\nname = "T"\nversion = "{version}"\n'
           f'publisher = "{PUBLISHER}"\n\n[entrypoints]']
    for name, input_schema, output_schema in tools:
        out.append(f'[[entrypoints.tools]]\nid = "{PUBLISHER}.{name}"\nname = "{name}"\ndescription = "t"\n'
                   f"input_schema = {_toml(input_schema)}\noutput_schema = {_toml(output_schema)}")
    out.append(f"[capabilities]\nhttp_egress_allowlist = {json.dumps(list(http))}")
    if read_roots or write_roots:
        out.append(f"[capabilities.filesystem]\nread_roots = {json.dumps(list(read_roots))}\n"
                   f"write_roots = {json.dumps(list(write_roots))}")
    for scope, keys in (secrets or {}).items():
        out.append(f'[[capabilities.secrets]]\nscope = "{scope}"\nkey_names = {json.dumps(list(keys))}')
    quotas = {"fuel_budget": fuel, "max_memory_bytes": memory, "wall_clock_timeout_ms": timeout_ms}
    if any(v is not None for v in quotas.values()):
        out.append("[capabilities.quotas]\n" + "\n".join(f"{k} = {v}" for k, v in quotas.items() if v is not None))
    out.append('[compat]\nrequired_protocol_major = 1\nmin_palyra_version = "0.1.0"')
    plugin = {"default_entrypoint": default_entrypoint, "default_module_path": default_module_path}
    out.append('[operator]\ndisplay_name = "T"')
    if any(plugin.values()):
        out.append("[operator.plugin]\n" + "\n".join(f'{k} = "{v}"' for k, v in plugin.items() if v))
    return "\n\n".join(out) + "\n"


def artifact(manifest_text: str, modules: dict[str, bytes]) -> bytes:
    return build_artifact(manifest_text, sorted(modules.items()), [], SBOM, PROVENANCE, SEED, 1).artifact


ANY = {}  # the JSON Schema that accepts anything
OBJECT = {"type": "object"}


# --- a state directory with skills -----------------------------------------------------------


class Lab:
    """A home with a journal, views and installed skills, and one warm Runner over it."""

    def __init__(self, home: Path, *, policy: Sequence[str] = ()) -> None:
        self.home = home
        self.settings: Settings = resolve(home=str(home), journal=None, actor="user:test", command="test")
        self.count = 0
        if policy:
            with ledger_session(self.settings) as ledger:
                set_policy(ledger, list(policy), "tests: loosened audit policy")
        self.runner = Runner(self.settings)

    def install(self, modules: dict[str, str | bytes] | str, *, tools: Sequence[tuple[str, dict, dict]] | None = None,
                skill_id: str | None = None, version: str = "1.0.0", **manifest_kw: Any) -> str:
        """Install a skill built from WAT (or wasm bytes); returns its skill id."""
        if isinstance(modules, str):
            modules = {"m.wasm": modules}
        self.count += 1
        skill_id = skill_id or f"acme.s{self.count}"
        tools = tools or [("tool", ANY, ANY)]
        built = {p: (m if isinstance(m, bytes) else wasm(m)) for p, m in modules.items()}
        data = artifact(manifest(skill_id, tools, version=version, **manifest_kw), built)
        path = self.home.parent / f"{skill_id}-{version}-{self.count}.palyra-skill"
        path.write_bytes(data)
        with ledger_session(self.settings) as ledger:
            install(ledger, str(path), allow_tofu=True)
        return skill_id

    def ledger(self) -> Ledger:
        return Ledger(self.settings)

    def run(self, skill_id: str, input_value: Any = None, *, tool: str = "tool", **kw: Any) -> Any:
        text = None if input_value is None else json.dumps(input_value)
        return self.runner.run(f"{PUBLISHER}.{tool}", text, skill_id=skill_id, **kw)

    def blob(self, skill_id: str, version: str = "1.0.0") -> Path:
        """The stored artifact of a version (its digest as the journal recorded it)."""
        from skill_ledger.domain.skill import Skill

        ledger = self.ledger()
        try:
            digest = ledger.load(Skill, skill_id).versions[version].artifact_sha256
            return ledger.blobs.path_for(digest)
        finally:
            ledger.close()

    def events(self, kind: str) -> list[dict[str, Any]]:
        from skill_ledger.adapters.journal.read import journal_events

        ledger = self.ledger()
        try:
            return list(journal_events(ledger, skill=None, kinds=(kind,), since=None, until=None, limit=None))
        finally:
            ledger.close()

    def close(self) -> None:
        self.runner.close()


# --- a local HTTP server ---------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        server: Any = self.server
        server.hits.append(self.path)
        if self.path.startswith("/ok"):
            body = json.dumps({"hello": "world", "host": self.headers.get("Host")}).encode()
            self._send(200, body, {"Content-Type": "application/json"})
        elif self.path.startswith("/redirect-out"):
            self._send(302, b"", {"Location": "http://evil.example/steal"})
        elif self.path.startswith("/headers"):
            body = json.dumps({"authorization": self.headers.get("Authorization"),
                               "x-custom": self.headers.get("X-Custom")}).encode()
            self._send(200, body, {"Content-Type": "application/json"})
        elif self.path.startswith("/redirect-port/"):
            self._send(302, b"", {"Location": f"http://127.0.0.1:{self.path.rsplit('/', 1)[1]}/headers"})
        elif self.path.startswith("/redirect-in"):
            self._send(302, b"", {"Location": "/ok"})
        elif self.path.startswith("/slow"):
            time.sleep(3)
            self._send(200, b"late", {})
        elif self.path.startswith("/big"):
            self._send(200, b"x" * (2 * 1024 * 1024), {})
        else:
            self._send(404, b"no", {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the timeout tests)


class LocalServer:
    def __init__(self) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.hits = []  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def hits(self) -> list[str]:
        return self.httpd.hits  # type: ignore[attr-defined,no-any-return]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SilentServer:
    """A TCP server that accepts connections and never answers (counts them)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)  # held open, never read or written

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


def rss_kib() -> int:
    """This process's resident set size in KiB (Linux), for "the host is unharmed" checks."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
