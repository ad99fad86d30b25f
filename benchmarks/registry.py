"""Benchmark: ``skills update --all`` over a fleet installed from one TUF registry (issue 15).

Setup (not timed): a registry (one shared key) with ``--count`` skills (default 1,000), each a
small signed artifact, published in one call and served by an HTTP server on 127.0.0.1 that
counts the requests per path; a fresh home (SQLite journal) where every skill is installed
from the registry through the real path (``install_from_registry``: TUF refresh and download,
inspect, trust, audit, install, ``registry.target_installed``).

Measured in one run:

* idle: nothing new in the registry. Interleaved, ``--repeat`` times each (medians):
  - figure: ``update(ledger, all_skills=True)`` in a command's session (open the ledger, the
    use case, the views' catch-up, close): everything ``skills update --all`` does but start
    Python and import the CLI;
  - floor: a bare ``tuf.ngclient.Updater(...).refresh()`` (python-tuf's own fetcher and
    defaults) over a copy of the client's metadata cache: what any TUF client pays to learn
    that nothing changed.
  Also counted: the requests one idle update makes at the server, the events it appends
  (none), and ``skills update --all`` as a process (informational: start-up included).
  Target: figure / floor <= 2.
* ten new versions (``--new``): that many skills get a new version, published in one call;
  one ``update --all``: the target files it downloads (exactly those) and the events it appends.

    .venv/bin/python benchmarks/registry.py [--json] [--count N] [--new N] [--repeat N] [--check]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import wasmtime  # noqa: E402
from tuf.ngclient import Updater  # noqa: E402

from skill_ledger.adapters.registry import repository  # noqa: E402
from skill_ledger.adapters.settings import resolve  # noqa: E402
from skill_ledger.adapters.usecases import registry as registry_usecases  # noqa: E402
from skill_ledger.adapters.usecases.registry_update import install_from_registry, update  # noqa: E402
from skill_ledger.adapters.usecases.session import ledger_session  # noqa: E402
from skill_ledger.domain.artifact import build_artifact  # noqa: E402

TARGET_RATIO = 2.0
SEED = bytes([7]) * 32
WAT = """(module (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "echo") (param i32 i32) (result i64) (i64.const 0)))"""
SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
PROVENANCE = b'{"builder":{"id":"bench"},"subject":[{"name":"m"}]}'


def manifest(skill_id: str, version: str) -> str:
    return f'''manifest_version = 2
skill_id = "{skill_id}"
name = "Bench"
version = "{version}"
publisher = "bench"

[entrypoints]
[[entrypoints.tools]]
id = "{skill_id}.echo"
name = "echo"
description = "Echo"
input_schema = {{ type = "object" }}
output_schema = {{ type = "object" }}

[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"
'''


def artifacts(ids: list[str], version: str, module: bytes) -> list[bytes]:
    return [build_artifact(manifest(i, version), [("echo.wasm", module)], [], SBOM, PROVENANCE, SEED, 0).artifact
            for i in ids]


class CountingServer:
    """A static file server on 127.0.0.1 for the registry directory; counts requests per path."""

    def __init__(self, directory: Path) -> None:
        self.requests: Counter[str] = Counter()
        counts, lock = self.requests, threading.Lock()

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self) -> None:  # noqa: N802
                with lock:
                    counts[self.path] += 1
                super().do_GET()

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def median(values: list[float]) -> float:
    return statistics.median(values)


def run(count: int, new: int, repeat: int) -> dict:
    module = wasmtime.wat2wasm(WAT)
    ids = [f"bench.s{i:04d}" for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="skills-registry-bench-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        init = repository.init(tmp / "reg")
        repository.publish(tmp / "reg", artifacts(ids, "1.0.0", module))
        publish_s = time.perf_counter() - t0
        server = CountingServer(tmp / "reg")
        try:
            settings = resolve(home=str(tmp / "home"), journal=None, actor="service:bench", command="update")
            root = Path(init.root_path).read_bytes()
            t0 = time.perf_counter()
            with ledger_session(settings) as ledger:
                registry_usecases.add(ledger, "main", server.url, root)
                for skill_id in ids:
                    install_from_registry(ledger, "main", skill_id, allow_tofu=True)
                events_installed = ledger.head()
            install_s = time.perf_counter() - t0
            targets_bytes = (tmp / "reg" / "metadata" / "targets.json").stat().st_size
            idle = measure_idle(settings, server, root, tmp, repeat)
            cli = measure_cli(settings, repeat=3)
            fresh = measure_new(settings, server, tmp / "reg", ids[:new], module)
        finally:
            server.close()
    ratio = idle["figure_s"] / idle["floor_s"]
    return {
        "benchmark": "registry",
        "figures": {
            "idle_update_all_s": round(idle["figure_s"], 4), "idle_runs_s": idle["figure_runs"],
            "idle_requests": idle["requests"], "idle_events_appended": idle["appended"],
            "cli_update_all_process_s": round(cli, 3),
            "new_versions": fresh,
        },
        "floor": {"bare_updater_refresh_s": round(idle["floor_s"], 4), "runs_s": idle["floor_runs"]},
        "ratios": {"idle_update_all_over_bare_refresh": round(ratio, 3)},
        "target": {"max_ratio": TARGET_RATIO, "idle_requests": ["/metadata/<root+1>.root.json (404)",
                                                                "/metadata/timestamp.json"],
                   "new_downloads": new},
        "met": {"ratio": ratio <= TARGET_RATIO,
                "idle_fetches_only_the_timestamp": idle["only_timestamp"],
                "idle_appends_nothing": idle["appended"] == 0,
                "downloads_exactly_the_new_versions": fresh["exactly_the_new"]},
        "setup": {"skills": count, "publish_s": round(publish_s, 2), "install_s": round(install_s, 2),
                  "install_per_skill_ms": round(install_s / count * 1000, 1), "journal_events": events_installed,
                  "targets_json_bytes": targets_bytes},
        "repeat": repeat,
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
    }


def measure_idle(settings, server: CountingServer, root: bytes, tmp: Path, repeat: int) -> dict:
    cache = tmp / "bare-cache"
    shutil.copytree(settings.home / "registries" / "main" / "metadata", cache)

    def floor_once() -> float:
        t0 = time.perf_counter()
        Updater(metadata_dir=str(cache), metadata_base_url=server.url + "metadata/",
                target_base_url=server.url + "targets/", bootstrap=root).refresh()
        return time.perf_counter() - t0

    def figure_once() -> float:
        t0 = time.perf_counter()
        with ledger_session(settings) as ledger:
            result = update(ledger, all_skills=True)
        elapsed = time.perf_counter() - t0
        assert result.failure() is None and all(r.outcome == "up_to_date" for r in result.results), result
        return elapsed

    floor_once(), figure_once()  # warm-up: page cache, imports, first calls
    with ledger_session(settings) as ledger:
        head = ledger.head()
    server.requests.clear()
    figure_once()
    requests = dict(server.requests)
    with ledger_session(settings) as ledger:
        appended = ledger.head() - head
    floors, figures = [], []
    for _ in range(repeat):
        floors.append(floor_once())
        figures.append(figure_once())
    only_timestamp = (set(requests) == {"/metadata/timestamp.json", f"/metadata/{_root_version(root) + 1}.root.json"}
                      and all(n == 1 for n in requests.values()))
    return {"figure_s": median(figures), "floor_s": median(floors), "figure_runs": [round(x, 4) for x in figures],
            "floor_runs": [round(x, 4) for x in floors], "requests": requests, "appended": appended,
            "only_timestamp": only_timestamp}


def _root_version(root: bytes) -> int:
    return json.loads(root)["signed"]["version"]


def measure_cli(settings, repeat: int) -> float:
    script = Path(sys.executable).parent / "skills"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "skill_ledger"]
    env = {**os.environ, "SKILLS_HOME": str(settings.home)}
    env.pop("SKILLS_JOURNAL", None)
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        p = subprocess.run([*command, "update", "--all", "--json"], env=env, capture_output=True, text=True,
                           timeout=600)
        runs.append(time.perf_counter() - t0)
        assert p.returncode == 0, p.stderr
    return median(runs)


def measure_new(settings, server: CountingServer, reg: Path, ids: list[str], module: bytes) -> dict:
    repository.publish(reg, artifacts(ids, "1.1.0", module))
    with ledger_session(settings) as ledger:
        head = ledger.head()
    server.requests.clear()
    t0 = time.perf_counter()
    with ledger_session(settings) as ledger:
        result = update(ledger, all_skills=True)
        appended = ledger.head() - head
    elapsed = time.perf_counter() - t0
    requests = dict(server.requests)
    downloaded = sorted(p for p in requests if p.startswith("/targets/"))
    updated = sorted(r.skill_id for r in result.results if r.outcome == "updated")
    expected = sorted(f"/targets/{i}/" for i in ids)
    exactly = (updated == sorted(ids) and len(downloaded) == len(ids)
               and [p.rsplit("/", 1)[0] + "/" for p in downloaded] == expected
               and all(p.endswith(".1.1.0.palyra-skill") for p in downloaded))
    return {"update_all_s": round(elapsed, 3), "updated": len(updated), "target_downloads": len(downloaded),
            "metadata_requests": sorted(p for p in requests if p.startswith("/metadata/")),
            "events_appended": appended, "exactly_the_new": exactly}


def table(r: dict) -> str:
    f, fl = r["figures"], r["floor"]
    s = r["setup"]
    lines = [
        f"registry of {s['skills']} skills (targets.json {s['targets_json_bytes'] / 1024:.0f} KiB), "
        f"installed through the registry in {s['install_s']:.1f} s ({s['install_per_skill_ms']} ms each, "
        f"{s['journal_events']} events)",
        "",
        f"idle update --all (session, in-process)   {f['idle_update_all_s'] * 1000:8.1f} ms  (median of {r['repeat']})",
        f"bare Updater.refresh() (floor)             {fl['bare_updater_refresh_s'] * 1000:8.1f} ms",
        f"ratio                                      {r['ratios']['idle_update_all_over_bare_refresh']:8.2f}x  "
        f"(target <= {TARGET_RATIO}: {'OK' if r['met']['ratio'] else 'MISSED'})",
        "requests of one idle update               "
        + ", ".join(f"{p} x{n}" for p, n in sorted(f["idle_requests"].items())),
        f"events appended by an idle update         {f['idle_events_appended']}",
        f"skills update --all as a process          {f['cli_update_all_process_s'] * 1000:8.0f} ms"
        "  (start-up included)",
        "",
        f"{f['new_versions']['updated']} new versions: update --all {f['new_versions']['update_all_s']:.2f} s, "
        f"{f['new_versions']['target_downloads']} target downloads "
        f"({'exactly the new ones' if f['new_versions']['exactly_the_new'] else 'NOT exactly the new ones'}), "
        f"{f['new_versions']['events_appended']} events appended",
        f"  metadata requests: {', '.join(f['new_versions']['metadata_requests'])}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object {figures, floor, ratios, ...}")
    ap.add_argument("--count", type=int, default=1000, help="skills installed from the registry (default 1000)")
    ap.add_argument("--new", type=int, default=10, help="skills that get a new version (default 10)")
    ap.add_argument("--repeat", type=int, default=9, help="interleaved measurements per side (default 9)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)
    if args.count < 1 or not 0 <= args.new <= args.count or args.repeat < 1:
        ap.error("need --count >= 1, 0 <= --new <= --count, --repeat >= 1")
    r = run(args.count, args.new, args.repeat)
    print(json.dumps(r) if args.json else table(r))
    return 1 if args.check and not all(r["met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
