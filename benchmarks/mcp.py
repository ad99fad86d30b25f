"""Benchmark: a tool call through ``skills mcp`` and the MCP SDK's client against bare wasmtime-py (issue 16).

Setup (reported, not timed against a target): the bundled example skill (``examples/hello``)
is signed and installed into a fresh home with a real SQLite journal (as ``benchmarks/run.py``
does); ``skills mcp`` is started over stdio by the SDK's ``stdio_client`` and a
``ClientSession`` (the handshake era, what desktop clients speak) and warmed with 200 calls.

Measured in one run, interleaved, medians:

* warm call, figure: ``session.call_tool("examples_echo", <1 KiB JSON>)`` from the client's
  side: the client's JSON-RPC encoding and pydantic validation, the pipe both ways, the
  server's dispatch, the catalog's journal-head check, the hop to a worker thread, the
  runner's gate and call (a fresh ``Store``, instantiate, call), the result's encoding and the
  client's validation of the structured content against the tool's ``outputSchema``;
* warm call, floor: the bare wasmtime-py instantiate and call of the same module
  (``benchmarks/run.py``'s ``bare_caller``);
* ``skills run examples.echo --input <1 KiB>`` as a process, end to end (median), against
  the warm MCP call: how much an agent saves by keeping one server;
* throughput with 8 concurrent clients, each calling in a loop: over stdio (each client
  starts its own ``skills mcp``, as stdio clients do) and over streamable HTTP (one server,
  8 sessions); one stdio client alone for comparison.

Targets: MCP call - bare <= 2 ms per call; ``skills run`` process / MCP call >= 100.

    .venv/bin/python benchmarks/mcp.py [--json] [--calls N] [--repeat N] [--check]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# This script is named like the SDK it measures: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import anyio  # noqa: E402
import mcp_types as types  # noqa: E402
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402

TARGET_ADDED_MS = 2.0
TARGET_PROCESS_SPEEDUP = 100.0
CLIENTS = 8
TOOL = "examples_echo"

_spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).with_name("run.py"))
bench_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_run)  # install_example, bare_caller, per_call, processes, INPUT
ARGUMENTS = json.loads(bench_run.INPUT)

# While cli/main.py's table has no "mcp" entry, the command is added to the root group in the child.
_LAUNCH = ("import sys; from skill_ledger.cli.main import cli; from skill_ledger.cli.commands.mcp import mcp; "
           "cli.add_command(mcp); cli.main(args=sys.argv[1:], prog_name='skills')")


def skills_argv(*args: str) -> list[str]:
    from skill_ledger.cli.main import COMMANDS

    skills = Path(sys.executable).parent / "skills"
    if "mcp" in COMMANDS and skills.exists():
        return [str(skills), *args]
    return [sys.executable, "-c", _LAUNCH, *args]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SKILLS_")}


@contextlib.asynccontextmanager
async def stdio_session(home: Path, log: Any):
    argv = skills_argv("--home", str(home), "mcp")
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=clean_env())
    async with stdio_client(params, errlog=log) as (read, write):
        async with ClientSession(read, write, client_info=types.Implementation(name="bench", version="1")) as s:
            await s.initialize()
            await s.list_tools()  # the client validates structured results against the listed outputSchema
            yield s


@contextlib.asynccontextmanager
async def http_session(url: str):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(timeout=httpx2.Timeout(60.0)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, client_info=types.Implementation(name="bench", version="1")) as s:
                await s.initialize()
                await s.list_tools()
                yield s


async def call_once(session: ClientSession) -> None:
    result = await session.call_tool(TOOL, ARGUMENTS)
    if result.is_error or result.structured_content != ARGUMENTS:
        raise SystemExit(f"unexpected result: {result}")


async def per_call_async(session: ClientSession, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        await call_once(session)
    return (time.perf_counter() - t0) / calls


async def throughput(sessions: list[ClientSession], calls_each: int) -> float:
    """Calls per second with every session calling in a loop at once."""
    async def loop(s: ClientSession) -> None:
        for _ in range(calls_each):
            await call_once(s)

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for s in sessions:
            tg.start_soon(loop, s)
    return len(sessions) * calls_each / (time.perf_counter() - t0)


async def warm_and_stdio(home: Path, bare: Any, calls: int, repeat: int, log: Any) -> dict[str, Any]:
    async with stdio_session(home, log) as s:
        await per_call_async(s, 200)  # warm-up: compiled module, verified artifact, caches
        bench_run.per_call(bare, 200)
        mcp_s, bare_s = [], []
        for _ in range(repeat):
            mcp_s.append(await per_call_async(s, calls))
            bare_s.append(bench_run.per_call(bare, calls))
        one_client = await throughput([s], calls)
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(stdio_session(home, log)) for _ in range(CLIENTS)]
        for s in sessions:
            await per_call_async(s, 20)
        stdio_clients = await throughput(sessions, calls)
    return {"mcp_s": mcp_s, "bare_s": bare_s, "one_client_calls_per_s": one_client,
            "stdio_clients_calls_per_s": stdio_clients}


def start_http(home: Path, log_path: Path) -> tuple[subprocess.Popen, str, Any]:
    log = open(log_path, "w")
    proc = subprocess.Popen(skills_argv("--home", str(home), "mcp", "--transport", "http", "--port", "0"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=clean_env())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://\S+/mcp)", log_path.read_text())
        if found:
            return proc, found.group(1), log
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"skills mcp --transport http did not start: {log_path.read_text()}")


async def http_clients(url: str, calls: int) -> float:
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(http_session(url)) for _ in range(CLIENTS)]
        for s in sessions:
            await per_call_async(s, 20)
        return await throughput(sessions, calls)


def measure(calls: int, repeat: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="skills-bench-mcp-"))
    try:
        home = tmp / "home"
        t0 = time.perf_counter()
        _, echo, artifact_bytes = bench_run.install_example(home)
        setup_s = time.perf_counter() - t0
        bare = bench_run.bare_caller(echo)
        with open(tmp / "stdio.log", "w") as log:
            stdio = anyio.run(warm_and_stdio, home, bare, calls, repeat, log)
        proc, url, log = start_http(home, tmp / "http.log")
        try:
            http = anyio.run(http_clients, url, calls)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            log.close()
        proc_run, _ = bench_run.processes(home, max(3, repeat))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    warm_mcp, warm_bare = statistics.median(stdio["mcp_s"]), statistics.median(stdio["bare_s"])
    added_ms = (warm_mcp - warm_bare) * 1000
    speedup = proc_run / warm_mcp
    return {
        "figures": {
            "warm_call": {"mcp_stdio_s": warm_mcp, "runs_s": stdio["mcp_s"], "input_bytes": len(bench_run.INPUT),
                          "calls": calls},
            "throughput": {"stdio_1_client_calls_per_s": stdio["one_client_calls_per_s"],
                           f"stdio_{CLIENTS}_clients_calls_per_s": stdio["stdio_clients_calls_per_s"],
                           f"http_{CLIENTS}_clients_calls_per_s": http},
        },
        "floor": {"warm_call": {"bare_wasmtime_s": warm_bare, "runs_s": stdio["bare_s"]},
                  "process": {"skills_run_s": proc_run}},
        "ratios": {"warm_call": warm_mcp / warm_bare, "process_speedup": speedup},
        "added_ms_per_call": added_ms,
        "target": {"max_added_ms_per_call": TARGET_ADDED_MS, "min_process_speedup": TARGET_PROCESS_SPEEDUP},
        "met": {"warm_call": added_ms <= TARGET_ADDED_MS, "process_speedup": speedup >= TARGET_PROCESS_SPEEDUP},
        "setup": {"install_s": setup_s, "artifact_bytes": artifact_bytes},
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                        "mcp": _version("mcp"), "wasmtime": _version("wasmtime")},
    }


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def table(r: dict[str, Any]) -> str:
    f, fl, ra, met = r["figures"], r["floor"], r["ratios"], r["met"]
    t = f["throughput"]
    rows = [("measure", "figure", "floor", "ratio", "target"),
            ("warm echo call, 1 KiB (MCP client over stdio vs bare wasmtime)",
             f"{f['warm_call']['mcp_stdio_s'] * 1e3:.3f} ms", f"{fl['warm_call']['bare_wasmtime_s'] * 1e3:.3f} ms",
             f"{ra['warm_call']:.1f}x",
             f"+{r['added_ms_per_call']:.3f} ms <= {TARGET_ADDED_MS} ms {'OK' if met['warm_call'] else 'MISSED'}"),
            ("skills run as a process vs the warm MCP call", f"{f['warm_call']['mcp_stdio_s'] * 1e3:.3f} ms",
             f"{fl['process']['skills_run_s'] * 1e3:.0f} ms", f"{ra['process_speedup']:.0f}x faster",
             f">= {TARGET_PROCESS_SPEEDUP:.0f}x {'OK' if met['process_speedup'] else 'MISSED'}"),
            ("calls/s, 1 stdio client", f"{t['stdio_1_client_calls_per_s']:.0f}", "", "", "(reported)"),
            (f"calls/s, {CLIENTS} stdio clients ({CLIENTS} servers)",
             f"{t[f'stdio_{CLIENTS}_clients_calls_per_s']:.0f}", "", "", "(reported)"),
            (f"calls/s, {CLIENTS} HTTP clients (1 server)", f"{t[f'http_{CLIENTS}_clients_calls_per_s']:.0f}", "", "",
             "(reported)")]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object {figures, floor, ratios, ...}")
    ap.add_argument("--calls", type=int, default=500, help="calls per warm measurement and per client (default 500)")
    ap.add_argument("--repeat", type=int, default=7, help="interleaved measurements per side (default 7)")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args(argv)
    if args.calls < 1 or args.repeat < 1:
        ap.error("--calls and --repeat must be positive")
    r = measure(args.calls, args.repeat)
    print(json.dumps(r) if args.json else table(r))
    return 1 if args.check and not all(r["met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
