"""The stdio wire (``adapters/mcp/stdio.py``): stray output never reaches the protocol, on
pipes (served by the event loop) and on anything else (the SDK's own claim)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

# A server whose one tool writes to "stdout" every way a process can: print, sys.stdout,
# fd 1 directly, and a child process that inherits fd 1.
SERVER = textwrap.dedent('''
    import os, subprocess, sys
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel.server import Server
    from skill_ledger.adapters.mcp.stdio import stdio_streams

    async def list_tools(ctx, params):
        return types.ListToolsResult(tools=[types.Tool(name="noisy", input_schema={"type": "object"})])

    async def call_tool(ctx, params):
        print("stray print")
        sys.stdout.write("stray sys.stdout\\n")
        sys.stdout.flush()
        os.write(1, b"stray fd 1\\n")
        subprocess.run(["echo", "stray child"], check=True)
        return types.CallToolResult(content=[types.TextContent(type="text", text="done")])

    server = Server("noisy", on_list_tools=list_tools, on_call_tool=call_tool)

    async def main():
        async with stdio_streams() as (read, write):
            await server.run(read, write, server.create_initialization_options())
        print("after serving")  # stdout is the wire's again

    anyio.run(main)
''')

MESSAGES = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "noisy", "arguments": {}}},
    {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "noisy", "arguments": {}}},
]


def _check(stdout: bytes, stderr: bytes) -> None:
    lines = stdout.decode().splitlines()
    assert lines[-1] == "after serving", stdout
    answers = [json.loads(line) for line in lines[:-1]]  # every other line is a JSON-RPC message
    assert [a["id"] for a in answers] == [1, 2, 3]
    assert answers[2]["result"]["content"][0]["text"] == "done"
    for stray in (b"stray print", b"stray sys.stdout", b"stray fd 1", b"stray child"):
        assert stderr.count(stray) == 2, stderr


def _converse(script, messages: list[bytes], *, stdout_file=None) -> tuple[int, bytes, bytes]:
    """Send each message, waiting for the answers so far before the next (a client closes stdin
    only once it has its answers: in-flight requests are cancelled at end of input)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLS_")}
    out_target = open(stdout_file, "wb") if stdout_file else subprocess.PIPE
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=out_target,
                            stderr=subprocess.PIPE, env=env)
    seen: list[bytes] = []

    def answers() -> int:
        if stdout_file:
            return len(stdout_file.read_bytes().splitlines())
        seen.append(proc.stdout.readline())
        return len(seen)

    try:
        expected = 0
        for message in messages:
            proc.stdin.write(message)
            proc.stdin.flush()
            if b'"id"' in message and b'"id": 9' not in message:
                expected += 1
                deadline = time.monotonic() + 30
                while answers() < expected:
                    assert time.monotonic() < deadline and proc.poll() is None
                    time.sleep(0.01)
        proc.stdin.close()
        rest, err = proc.stdout.read() if not stdout_file else b"", proc.stderr.read()
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if stdout_file:
            out_target.close()
    out = stdout_file.read_bytes() if stdout_file else b"".join(seen) + rest
    return code, out, err


def _lines(*messages: dict) -> list[bytes]:
    return [json.dumps(m).encode() + b"\n" for m in messages]


@pytest.mark.parametrize("pipes", [True, False], ids=["pipes", "file"])
def test_nothing_but_protocol_messages_reach_stdout(tmp_path, pipes):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    # stdout a file, not a pipe: the SDK's own claim serves the wire
    code, out, err = _converse(script, _lines(*MESSAGES), stdout_file=None if pipes else tmp_path / "out")
    assert code == 0, err.decode()
    _check(out, err)


def test_an_oversized_line_is_dropped_and_serving_goes_on(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER.replace("from skill_ledger.adapters.mcp.stdio import stdio_streams",
                                     "import skill_ledger.adapters.mcp.stdio as s; s.MAX_LINE_BYTES = 4096; "
                                     "stdio_streams = s.stdio_streams"))
    oversized = b'{"jsonrpc": "2.0", "id": 9, "x": "' + b"y" * 20000 + b'"}\n'
    code, out, err = _converse(script, [*_lines(MESSAGES[0]), oversized, *_lines(*MESSAGES[1:])])
    assert code == 0, err.decode()
    assert b"dropped a message longer than 4096 bytes" in err
    _check(out, err)
