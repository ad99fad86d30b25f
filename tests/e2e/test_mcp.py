"""``skills mcp`` with a real MCP client: the SDK's own ``ClientSession`` starts the server over
stdio (and talks to it over streamable HTTP), lists and calls tools of every ABI, sees a
quarantine made by another process (the ``list_changed`` notification, the refused call and
the recorded denial), and survives runaway tools, malformed requests and clients that leave
mid-call, with the journal still verifying."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import mcp_kit as kit
import mcp_types as types
import pytest
import runner_kit as rk
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.slow

ALL = ["acme_pal", "acme_spin", "examples_echo", "examples_wordcount"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """One home built once (installs are the slow part); each test works on a copy."""
    return kit.standard_home(tmp_path_factory.mktemp("seed") / "home").home


@pytest.fixture
def home(seeded, tmp_path) -> kit.Home:
    import shutil

    shutil.copytree(seeded, tmp_path / "home", symlinks=True)
    h = kit.Home(tmp_path / "home")
    h.close()
    return h


def run(fn, *args):
    return anyio.run(fn, *args)


def verify_journal(home: kit.Home) -> None:
    r = home.skills("journal", "verify", "--json")
    assert json.loads(r.stdout)["ok"], r.stdout
    r = home.skills("index", "verify", "--json")
    assert r.returncode == 0, r.stdout


def denial_by(home: kit.Home, tool_id: str) -> dict:
    found = [e for e in home.denials() if e["data"]["tool_id"] == tool_id]
    assert len(found) == 1, home.denials()
    return found[0]


# --- stdio ---------------------------------------------------------------------------------


def test_stdio_lists_the_tools_and_calls_json_v1_wasi_command_and_palyra_v1(home):
    async def go():
        async with kit.stdio_session(home.home) as s:
            assert s.server_capabilities.tools.list_changed is True
            listed = await s.list_tools()
            assert [t.name for t in listed.tools] == ALL
            echo = await s.call_tool("examples_echo", {"text": "hi"})
            words = await s.call_tool("examples_wordcount", {"text": "one two three"})
            pal = await s.call_tool("acme_pal", {})
            return echo, words, pal

    echo, words, pal = run(go)
    assert not echo.is_error and echo.structured_content == {"text": "hi"}
    assert json.loads(kit.text(echo)) == {"text": "hi"}
    assert echo.meta["skill-ledger/run"]["abi"] == "json-v1"
    assert words.structured_content == {"words": 3} and words.meta["skill-ledger/run"]["abi"] == "wasi-command"
    assert not pal.is_error and json.loads(kit.text(pal)) == {"exit_code": 0}
    assert pal.meta["skill-ledger/run"]["abi"] == "palyra-v1"
    assert home.denials() == []


def test_stdio_schema_errors_are_tool_errors_the_model_can_read(home):
    async def go():
        async with kit.stdio_session(home.home) as s:
            wrong_type = await s.call_tool("examples_echo", {"text": 5})
            missing = await s.call_tool("examples_echo", {})
            extra = await s.call_tool("examples_wordcount", {"text": "a", "more": 1})
            with pytest.raises(MCPError) as unknown:
                await s.call_tool("no_such_tool", {})
            still = await s.call_tool("examples_echo", {"text": "after"})
            return wrong_type, missing, extra, unknown.value, still

    wrong_type, missing, extra, unknown, still = run(go)
    for r in (wrong_type, missing, extra):
        assert r.is_error and kit.text(r).startswith("error[invalid_input]: the input does not match")
        assert r.meta["skill-ledger/error"]["code"] == "invalid_input"
    assert unknown.error.code == types.INVALID_PARAMS and "no_such_tool" in unknown.error.message
    assert still.structured_content == {"text": "after"}


def test_stdio_quarantine_elsewhere_notifies_refuses_and_records_the_client(home):
    notes = kit.Notes()

    async def go():
        async with kit.stdio_session(home.home, notes=notes, client="desk top/2\n") as s:
            await s.list_tools()
            assert (await s.call_tool("examples_echo", {"text": "before"})).structured_content == {"text": "before"}
            home.skills("quarantine", "examples.hello", "--reason", "looks odd")
            await notes.wait_list_changed()
            after = await s.list_tools()
            refused = await s.call_tool("examples_echo", {"text": "after"})
            return after, refused

    after, refused = run(go)
    assert [t.name for t in after.tools] == ["acme_pal", "acme_spin"]
    assert refused.is_error and kit.text(refused).startswith("error[not_active]:")
    assert "(reason_code: quarantined)" in kit.text(refused)
    assert refused.meta["skill-ledger/error"]["details"]["reason_code"] == "quarantined"
    event = denial_by(home, "examples.echo")
    assert event["actor"]["principal"] == "mcp:desk_top_2" and event["actor"]["command"] == "mcp"
    assert event["data"] == {"version": "1.0.0", "tool_id": "examples.echo", "reason_code": "quarantined"}
    verify_journal(home)


def test_stdio_removed_elsewhere_is_refused_as_not_installed(home):
    notes = kit.Notes()

    async def go():
        async with kit.stdio_session(home.home, notes=notes) as s:
            await s.list_tools()
            home.skills("remove", "acme.palyra", "--reason", "retired")
            await notes.wait_list_changed()
            return await s.call_tool("acme_pal", {})

    refused = run(go)
    assert refused.is_error and "(reason_code: not_installed)" in kit.text(refused)
    assert denial_by(home, "acme.pal")["actor"]["principal"] == f"mcp:{kit.CLIENT}"


def test_stdio_a_runaway_tool_times_out_while_another_call_completes(home):
    finished: list[str] = []

    async def go():
        async with kit.stdio_session(home.home) as s:
            results = {}

            async def call(name, args):
                results[name] = await s.call_tool(name, args)
                finished.append(name)

            async with anyio.create_task_group() as tg:
                tg.start_soon(call, "acme_spin", {})
                await anyio.sleep(0.1)  # the spin is running in its worker thread
                tg.start_soon(call, "examples_echo", {"text": "meanwhile"})
            return results

    results = run(go)
    assert finished == ["examples_echo", "acme_spin"]
    assert results["examples_echo"].structured_content == {"text": "meanwhile"}
    spin = results["acme_spin"]
    assert spin.is_error and kit.text(spin).startswith("error[execution_timed_out]:")


# Looks like JSON-RPC frames, with escaped newlines, U+2028 and NUL inside a JSON string.
FRAMES_OUT = b'{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"note":"line\\nbreak \\u2028 \\u0000"}\n'
FRAMES_ERR = b'Content-Length: 5\r\n\r\n{"jsonrpc":"2.0","id":2,"result":{}}\n\xff\xfe'
# Not one JSON value: raw newlines between frames, and a byte that is not UTF-8.
GARBAGE_OUT = b'\n{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}\n{"jsonrpc":"2.0","id":7}\n\xff\n'


def _hex(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def _writes(*chunks: tuple[int, bytes]) -> str:
    """A WASI command that writes each (fd, bytes)."""
    body, data, at = [], [], 1024
    for fd, chunk in chunks:
        body.append(f"(drop (call $write (i32.const {fd}) (i32.const {at}) (i32.const {len(chunk)})))")
        data.append(f'(data (i32.const {at}) "{_hex(chunk)}")')
        at += len(chunk) + 16
    return rk.wasi_module(" ".join(body), extra=" ".join(data))


def test_stdio_nothing_a_tool_writes_can_break_the_protocol_framing(tmp_path):
    """A tool whose stdout and stderr look like JSON-RPC frames, with raw newlines and invalid
    UTF-8: what it returns travels JSON-escaped inside one result (or one error)."""
    h = kit.Home(tmp_path / "home")
    h.install(_writes((1, FRAMES_OUT), (2, FRAMES_ERR)), tools=[("frames", rk.OBJECT, rk.ANY)],
              skill_id="acme.frames")
    h.install(_writes((1, GARBAGE_OUT), (2, GARBAGE_OUT)), tools=[("garbage", rk.OBJECT, rk.ANY)],
              skill_id="acme.garbage")
    h.close()

    async def go():
        async with kit.stdio_session(h.home) as s:
            frames = await s.call_tool("acme_frames", {})
            bad = await s.call_tool("acme_garbage", {})
            echoed = await s.call_tool("acme_frames", {"text": (FRAMES_OUT + GARBAGE_OUT).decode("latin-1")})
            return frames, bad, echoed, await s.list_tools()

    frames, bad, echoed, listed = run(go)
    assert not frames.is_error and json.loads(kit.text(frames))["note"] == "line\nbreak \u2028 \u0000"
    assert any("Content-Length" in entry["message"] for entry in frames.meta["skill-ledger/log"])
    assert bad.is_error and kit.text(bad).startswith("error[invalid_output]:")
    assert not echoed.is_error
    assert [t.name for t in listed.tools] == ["acme_frames", "acme_garbage"]


def _raw_server(home: kit.Home) -> subprocess.Popen:
    return subprocess.Popen(kit.skills_argv("--home", str(home.home), "mcp"), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=kit.env())


def _close(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if not stream.closed:
            stream.close()


def _send(proc: subprocess.Popen, message: dict | bytes) -> None:
    proc.stdin.write(message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n")
    proc.stdin.flush()


def _answer(proc: subprocess.Popen, want_id: int) -> dict:
    while True:
        line = proc.stdout.readline()
        assert line, proc.stderr.read().decode()
        message = json.loads(line)  # every line the server writes is one JSON-RPC message
        if message.get("id") == want_id:
            return message


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}


def test_stdio_malformed_requests_leave_the_server_running(home):
    """Lines that are not JSON-RPC messages are dropped by the SDK's transport (no answer);
    a request with bad parameters gets an error; the server answers what follows."""
    proc = _raw_server(home)
    try:
        _send(proc, b"this is not json\n")
        _send(proc, b'{"jsonrpc": "2.0", "id": 99, "method": "tools/list"\n')  # cut short
        _send(proc, INIT)
        assert _answer(proc, 1)["result"]["serverInfo"]["name"] == "skill-ledger"
        _send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": "not an object"})  # dropped
        _send(proc, {"jsonrpc": "2.0", "id": 3, "method": "no/such/method"})
        assert _answer(proc, 3)["error"]["code"] == -32601
        _send(proc, {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "examples_echo",
                                                                                    "arguments": [1, 2]}})
        answer = _answer(proc, 4)
        assert "error" in answer or answer["result"]["isError"]
        _send(proc, {"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
        assert [t["name"] for t in _answer(proc, 5)["result"]["tools"]] == ALL
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        _close(proc)
    verify_journal(home)


def test_stdio_a_client_leaving_mid_call_lets_the_call_finish_and_the_server_exit_cleanly(home):
    home.skills("quarantine", "examples.hello", "--reason", "so the call below writes a denial")
    proc = _raw_server(home)
    try:
        _send(proc, INIT)
        _answer(proc, 1)
        _send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "acme_spin"}})
        _send(proc, {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                     "params": {"name": "examples_echo", "arguments": {"text": "x"}}})
        proc.stdin.close()  # gone, with two calls in flight
        assert proc.wait(timeout=60) == 0
    finally:
        _close(proc)
    verify_journal(home)


# --- streamable HTTP ------------------------------------------------------------------------


TOKEN = "s3cret-" + "b" * 40


@pytest.fixture
def token_file(tmp_path) -> Path:
    p = tmp_path / "token"
    p.write_text(TOKEN + "\n")
    p.chmod(0o600)
    return p


@pytest.fixture
def http_server(home, token_file, tmp_path):
    server = kit.HttpServer(home.home, "--token-file", str(token_file), log_path=tmp_path / "server.log")
    yield server
    code, out = server.stop()
    assert code == 0, server.log_path.read_text()
    assert out == b""  # nothing on stdout
    assert TOKEN not in server.log_path.read_text()


def test_http_without_the_bearer_token_gets_401_and_no_tool_list(http_server):
    import httpx2

    init = {**INIT, "params": {**INIT["params"]}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                 {"Authorization": f"Bearer {TOKEN}x"}):
        r = httpx2.post(http_server.url, json=init, headers={**headers, **auth})
        assert r.status_code == 401 and "tools" not in r.text and "mcp-session-id" not in r.headers
        r = httpx2.post(http_server.url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                        headers={**headers, **auth})
        assert r.status_code == 401 and "examples_echo" not in r.text
    r = httpx2.post(http_server.url, json=init, headers={**headers, "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.headers.get("mcp-session-id")

    async def wrong_token():
        async with kit.http_session(http_server.url, token="wrong" * 4) as s:
            await s.list_tools()

    with pytest.raises(ExceptionGroup) as refused:  # the SDK's client fails its first request on the 401
        run(wrong_token)
    assert refused.group_contains(MCPError, depth=2)


def test_http_lists_calls_and_hears_about_a_quarantine(home, http_server):
    notes = kit.Notes()

    async def go():
        async with kit.http_session(http_server.url, token=TOKEN, notes=notes) as s:
            assert [t.name for t in (await s.list_tools()).tools] == ALL
            echo = await s.call_tool("examples_echo", {"text": "over http"})
            words = await s.call_tool("examples_wordcount", {"text": "a b"})
            pal = await s.call_tool("acme_pal", {})
            bad = await s.call_tool("examples_echo", {"text": ["no"]})
            home.skills("quarantine", "examples.hello", "--reason", "elsewhere")
            await notes.wait_list_changed()
            refused = await s.call_tool("examples_wordcount", {"text": "a b"})
            return echo, words, pal, bad, refused

    echo, words, pal, bad, refused = run(go)
    assert echo.structured_content == {"text": "over http"} and words.structured_content == {"words": 2}
    assert json.loads(kit.text(pal)) == {"exit_code": 0}
    assert bad.is_error and "invalid_input" in kit.text(bad)
    assert refused.is_error and "(reason_code: quarantined)" in kit.text(refused)
    assert denial_by(home, "examples.wordcount")["actor"]["principal"] == f"mcp:{kit.CLIENT}"


def test_http_a_runaway_call_does_not_block_other_clients_and_a_client_leaving_mid_call_is_harmless(
        home, http_server):
    order: list[str] = []

    async def leaver():
        try:
            async with kit.http_session(http_server.url, token=TOKEN) as s:
                with anyio.move_on_after(0.3):  # gives up (and disconnects) while the spin still runs
                    await s.call_tool("acme_spin", {})
        except* (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the SDK's client, torn down while its abandoned request is answered: the client's side
        order.append("left")

    async def spinner(results):
        async with kit.http_session(http_server.url, token=TOKEN) as s:
            results["spin"] = await s.call_tool("acme_spin", {})
            order.append("spin")

    async def other(results):
        await anyio.sleep(0.1)
        async with kit.http_session(http_server.url, token=TOKEN, client="other") as s:
            results["echo"] = await s.call_tool("examples_echo", {"text": "not blocked"})
            order.append("echo")

    async def go():
        results = {}
        async with anyio.create_task_group() as tg:
            tg.start_soon(leaver)
            tg.start_soon(spinner, results)
            tg.start_soon(other, results)
        async with kit.http_session(http_server.url, token=TOKEN) as s:  # the server is still there
            results["after"] = await s.call_tool("examples_echo", {"text": "after"})
        return results

    results = run(go)
    assert order.index("echo") < order.index("spin") and "left" in order
    assert results["echo"].structured_content == {"text": "not blocked"}
    assert kit.text(results["spin"]).startswith("error[execution_timed_out]:")
    assert results["after"].structured_content == {"text": "after"}
    assert http_server.proc.poll() is None
    verify_journal(home)


def test_http_a_2026_client_hears_changes_through_subscriptions_listen(home, tmp_path):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.subscriptions import ToolsListChanged

    server = kit.HttpServer(home.home, log_path=tmp_path / "server.log")  # loopback, no token

    async def go():
        async with httpx2.AsyncClient() as http:
            async with Client(streamable_http_client(server.url, http_client=http)) as client:
                assert client.protocol_version == "2026-07-28"
                before = [t.name for t in (await client.list_tools()).tools]
                async with client.listen(tools_list_changed=True) as sub:
                    home.skills("disable", "acme.spin", "--reason", "not now")
                    with anyio.fail_after(15):
                        async for event in sub:  # noqa: B007 - the first event is the one
                            break
                after = [t.name for t in (await client.list_tools()).tools]
                refused = await client.call_tool("acme_spin", {})
                return before, event, after, refused

    try:
        before, event, after, refused = run(go)
        rebound = httpx2.post(server.url, json=INIT, headers={"Host": "attacker.example:80",
                                                              "Accept": "application/json, text/event-stream"})
        foreign = httpx2.post(server.url, json=INIT, headers={"Origin": "http://attacker.example",
                                                              "Accept": "application/json, text/event-stream"})
    finally:
        code, out = server.stop()
    assert rebound.status_code == 421 and foreign.status_code == 403  # DNS rebinding: no tool list
    assert code == 0 and out == b""
    assert before == ALL and isinstance(event, ToolsListChanged) and "acme_spin" not in after
    assert refused.is_error and "(reason_code: disabled)" in kit.text(refused)
    assert denial_by(home, "acme.spin")["actor"]["principal"] == "mcp:mcp"  # the SDK's default client name


def test_a_non_loopback_bind_without_a_token_is_a_usage_error(home):
    r = subprocess.run(kit.skills_argv("--home", str(home.home), "mcp", "--transport", "http", "--host", "0.0.0.0"),
                       capture_output=True, text=True, timeout=60, env=kit.env(), stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "error[usage_error]" in r.stderr and "--token-file" in r.stderr
    assert r.stdout == ""


def test_the_mcp_sdk_version_is_the_pinned_major():
    from importlib.metadata import version

    assert version("mcp").split(".")[0] == "2", sys.version


def test_a_port_in_use_is_a_usage_error(home):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(kit.skills_argv("--home", str(home.home), "mcp", "--transport", "http", "--port", str(port)),
                           capture_output=True, text=True, timeout=60, env=kit.env(), stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and f"error[usage_error]: cannot listen on 127.0.0.1:{port}" in r.stderr
    assert r.stdout == ""


# --- a PostgreSQL journal ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg():
    import pg_server

    try:
        server = pg_server.start()
    except pg_server.PgUnavailable as e:
        pytest.fail(f"cannot run the PostgreSQL journal test: {e}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def test_stdio_over_a_postgresql_journal(pg, tmp_path):
    """The catalog reads the head through the recorder; a quarantine made by another process
    reaches the client and the gate exactly as with SQLite."""
    from skill_ledger.adapters.settings import resolve

    url = pg.url(pg.create_database())
    home = tmp_path / "home"
    kit.install_example(resolve(home=str(home), journal=url, actor="user:test", command="test"), tmp_path)
    journal = {"SKILLS_JOURNAL": url}  # the password stays off every command line
    notes = kit.Notes()

    async def go():
        with open(tmp_path / "server.log", "w") as errlog:
            return await session(errlog)

    async def session(errlog):
        async with kit.stdio_session(home, notes=notes, extra_env=journal, errlog=errlog) as s:
            listed = [t.name for t in (await s.list_tools()).tools]
            echo = await s.call_tool("examples_echo", {"text": "pg"})
            r = subprocess.run([str(kit.SKILLS), "--home", str(home), "quarantine", "examples.hello", "--reason", "x"],
                               capture_output=True, text=True, timeout=120, env={**kit.env(), **journal})
            assert r.returncode == 0, r.stderr
            await notes.wait_list_changed()
            return listed, echo, await s.call_tool("examples_echo", {"text": "pg"})

    listed, echo, refused = run(go)
    assert listed == ["examples_echo", "examples_wordcount"] and echo.structured_content == {"text": "pg"}
    assert refused.is_error and "(reason_code: quarantined)" in kit.text(refused)
    r = subprocess.run([str(kit.SKILLS), "--home", str(home), "--json", "journal", "--kind", "skill.execution_denied"],
                       capture_output=True, text=True, timeout=120, env={**kit.env(), **journal})
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["actor"]["principal"] for e in events] == [f"mcp:{kit.CLIENT}"]
    assert pg_password_absent(r.stdout + r.stderr + (tmp_path / "server.log").read_text())
    assert "serving 2 tools" in (tmp_path / "server.log").read_text()


def pg_password_absent(text: str) -> bool:
    import pg_server

    return pg_server.APP_PASSWORD not in text


# --- secrets and grants, exactly as `skills run` ------------------------------------------------

SECRET = "S3CRET-value-0123456789-abcdef"
SECRET_NAME = "skill:acme.vault/token"


def test_stdio_secrets_and_grants_work_as_in_skills_run(tmp_path):
    """A granted secret reaches the tool, and what the tool returns of it is redacted; a skill
    without the grant is refused the secret (secret_get returns -1)."""
    from skill_ledger.adapters.storage.secrets import SecretStore

    get = f"(call $secret_get (i32.const 700) (i32.const {len(SECRET_NAME)}) (i32.const 2049) (i32.const 1024))"
    returns_it = rk.json_module(
        f"""(local $n i32) (local.set $n {get})
            (i32.store8 (i32.add (i32.const 2049) (local.get $n)) (i32.const 34))
            (i64.or (i64.shl (i64.const 2048) (i64.const 32))
                    (i64.extend_i32_u (i32.add (local.get $n) (i32.const 2))))""",
        imports=[rk.IMPORT_SECRET], extra=f'(data (i32.const 700) "{SECRET_NAME}") (data (i32.const 2048) "\\"")',
        name="vault")
    status_of_get = rk.json_module(f"(call $emit_rc {get})", imports=[rk.IMPORT_SECRET],
                                   extra=f'(data (i32.const 700) "{SECRET_NAME}")', name="other")
    h = kit.Home(tmp_path / "home")
    SecretStore(h.settings.secrets_path).set("skill:acme.vault", "token", SECRET)
    h.install(returns_it, tools=[("vault", rk.OBJECT, rk.ANY)], skill_id="acme.vault",
              secrets={"skill:acme.vault": ["token"]})
    h.install(status_of_get, tools=[("other", rk.OBJECT, rk.ANY)], skill_id="acme.other")
    h.close()

    async def go():
        async with kit.stdio_session(h.home) as s:
            return await s.call_tool("acme_vault", {}), await s.call_tool("acme_other", {})

    vault, other = run(go)
    assert not vault.is_error and SECRET not in vault.model_dump_json() and "redacted" in kit.text(vault)
    assert json.loads(kit.text(other)) == {"rc": -1}  # SECRET_DENIED: no grant, no secret
