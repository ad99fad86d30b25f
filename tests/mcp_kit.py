"""Shared helpers for the ``skills mcp`` tests: a home with the example skill and skills built
from WAT (a json-v1 echo, a palyra-v1 tool, a runaway loop), the command line that starts
``skills mcp``, and the SDK's own client over stdio and over streamable HTTP.

Import it by module name (``tests/`` is on ``sys.path``)::

    import mcp_kit as kit
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp import ClientSession, StdioServerParameters, stdio_client

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS / "adapters" / "runner"))
import runner_kit as rk  # noqa: E402

from skill_ledger.adapters.demo import example_inputs  # noqa: E402
from skill_ledger.domain.artifact import build_artifact  # noqa: E402

SKILLS = Path(sys.executable).with_name("skills")
CLIENT = "kit-client"

# While cli/main.py's COMMANDS table has no "mcp" entry yet, the command is added to the root
# group in the child process; once it has, the real console script is used.
_LAUNCH = ("import sys; from skill_ledger.cli.main import cli; from skill_ledger.cli.commands.mcp import mcp; "
           "cli.add_command(mcp); cli.main(args=sys.argv[1:], prog_name='skills')")

# A palyra-v1 tool that returns 0 (the host's {"exit_code": 0}) and a json-v1 loop that never ends.
PALYRA_OK = rk.palyra_module("(i32.const 0)")
RUNAWAY = rk.json_module("(loop $l (br $l)) (i64.const 0)", name="spin")
RUNAWAY_FUEL = 100_000_000_000


def skills_argv(*args: str) -> list[str]:
    from skill_ledger.cli.main import COMMANDS

    if "mcp" in COMMANDS:
        return [str(SKILLS), *args]
    return [sys.executable, "-c", _LAUNCH, *args]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SKILLS_")}


class Home(rk.Lab):
    """A home with the example skill (json-v1 echo, wasi-command wordcount) and WAT skills."""

    def install_example(self) -> None:
        install_example(self.settings, self.home.parent)

    def skills(self, *args: str, check: bool = True, extra_env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
        """``skills --home HOME ARGS`` in another process."""
        r = subprocess.run([str(SKILLS), "--home", str(self.home), *args], capture_output=True, text=True,
                           timeout=120, env={**env(), **(extra_env or {})})
        if check:
            assert r.returncode == 0, r.stderr
        return r

    def denials(self) -> list[dict[str, Any]]:
        return self.events("skill.execution_denied")


def install_example(settings: Any, workdir: Path) -> None:
    """Sign the example skill (examples/hello) with a test key and install it (trust on first use)."""
    manifest, modules, _ = example_inputs()
    data = build_artifact(Path(manifest).read_text(), [(m.name, Path(m.path).read_bytes()) for m in modules],
                          [], rk.SBOM, rk.PROVENANCE, rk.SEED, 1).artifact
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "hello.palyra-skill"
    path.write_bytes(data)
    from skill_ledger.adapters.usecases.install import install
    from skill_ledger.adapters.usecases.session import ledger_session

    with ledger_session(settings) as ledger:
        install(ledger, str(path), allow_tofu=True)


def standard_home(path: Path) -> Home:
    """The example skill, a palyra-v1 tool (acme.pal) and a runaway json-v1 tool (acme.spin)."""
    home = Home(path, policy=[f"max_fuel_budget={RUNAWAY_FUEL}"])  # the policy caps the manifest's fuel
    home.install_example()
    home.install(PALYRA_OK, tools=[("pal", rk.OBJECT, rk.ANY)], skill_id="acme.palyra")
    home.install(RUNAWAY, tools=[("spin", rk.OBJECT, rk.ANY)], skill_id="acme.spin", timeout_ms=500,
                 fuel=RUNAWAY_FUEL)  # the wall clock, not the fuel, stops it
    home.close()
    return home


# --- the SDK's client ---------------------------------------------------------------------


class Notes:
    """What the server sent besides responses (notifications), in order."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def __call__(self, message: Any) -> None:
        self.messages.append(message)

    def list_changed(self) -> int:
        return sum(isinstance(m, types.ToolListChangedNotification) for m in self.messages)

    async def wait_list_changed(self, count: int = 1, timeout: float = 15.0) -> None:
        with anyio.fail_after(timeout):
            while self.list_changed() < count:
                await anyio.sleep(0.05)


@contextlib.asynccontextmanager
async def stdio_session(home: Path, *args: str, notes: Notes | None = None, client: str = CLIENT,
                        errlog: Any = None, extra_env: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    """``skills mcp`` started by the SDK's stdio client, initialised (the handshake era)."""
    params = StdioServerParameters(command=skills_argv()[0], args=[*skills_argv()[1:], "--home", str(home), "mcp",
                                                                   *args], env={**env(), **(extra_env or {})})
    async with stdio_client(params, errlog=errlog or sys.stderr) as (read, write):
        async with ClientSession(read, write, message_handler=notes,
                                 client_info=types.Implementation(name=client, version="1.0")) as session:
            await session.initialize()
            yield session


class HttpServer:
    """``skills mcp --transport http --port 0`` in a child process; ``url`` once it listens."""

    def __init__(self, home: Path, *args: str, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            skills_argv("--home", str(home), "mcp", "--transport", "http", "--port", "0", *args),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, env=env())
        self.url = self._wait_url()

    def _wait_url(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"listening on (http://\S+/mcp)", self.log_path.read_text())
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                raise AssertionError(f"skills mcp exited {self.proc.returncode}: {self.log_path.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"skills mcp did not listen: {self.log_path.read_text()}")

    def stop(self) -> tuple[int, bytes]:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=30)
        finally:
            self._log.close()
        return self.proc.returncode, out or b""


@contextlib.asynccontextmanager
async def http_session(url: str, *, token: str | None = None, notes: Notes | None = None,
                       client: str = CLIENT) -> AsyncIterator[ClientSession]:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, message_handler=notes,
                                     client_info=types.Implementation(name=client, version="1.0")) as session:
                await session.initialize()
                yield session


def text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))
