"""The HTTP transport's guards: the bearer token file, the loopback rule, the 401 middleware."""

from __future__ import annotations

import anyio
import pytest

from skill_ledger.adapters.mcp.transports import BearerAuth, is_loopback, read_token_file, serve
from skill_ledger.adapters.settings import resolve
from skill_ledger.domain.errors import FileNotFound, UsageError

TOKEN = "t0k3n-" + "a" * 26


def token_file(tmp_path, text: str = TOKEN + "\n", mode: int = 0o600):
    p = tmp_path / "token"
    p.write_text(text)
    p.chmod(mode)
    return p


def test_a_private_token_file_is_read_and_the_token_never_shown(tmp_path):
    token = read_token_file(str(token_file(tmp_path)))
    assert token.matches(TOKEN.encode()) and not token.matches(b"wrong") and not token.matches(b"")
    assert TOKEN not in repr(token) and TOKEN not in str(token)


@pytest.mark.parametrize("text, mode, problem", [
    (TOKEN, 0o644, "readable or writable by others"),
    (TOKEN, 0o620, "readable or writable by others"),
    ("short", 0o600, "printable ASCII"),
    ("two words but long enough", 0o600, "printable ASCII"),
    ("", 0o600, "printable ASCII"),
    ("x" * 5000, 0o600, "printable ASCII"),
])
def test_a_weak_or_exposed_token_file_is_a_usage_error(tmp_path, text, mode, problem):
    with pytest.raises(UsageError, match=problem) as e:
        read_token_file(str(token_file(tmp_path, text, mode)))
    assert TOKEN not in str(e.value)


def test_a_missing_token_file_is_not_found(tmp_path):
    with pytest.raises(FileNotFound):
        read_token_file(str(tmp_path / "absent"))


def test_a_directory_is_not_a_token_file(tmp_path):
    d = tmp_path / "dir"
    d.mkdir(mode=0o700)
    with pytest.raises(UsageError, match="not a regular file"):
        read_token_file(str(d))


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("example.org", False), ("localhost.evil", False),
])
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_a_non_loopback_bind_without_a_token_is_refused_before_anything_is_opened(tmp_path):
    settings = resolve(home=str(tmp_path / "home"), journal=None, actor="user:t", command="mcp")
    for host in ("0.0.0.0", "::", "192.0.2.1", "example.org"):
        with pytest.raises(UsageError, match="not a loopback address"):
            serve(settings, transport="http", host=host, port=0)
    assert not (tmp_path / "home").exists()


async def _asgi(app, headers: list[tuple[bytes, bytes]]) -> tuple[int, bool]:
    reached = []
    sent = []

    async def inner(scope, receive, send):
        reached.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"tools"})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await BearerAuth(inner, app)({"type": "http", "headers": headers}, receive, send)
    return sent[0]["status"], bool(reached)


@pytest.mark.parametrize("headers, status", [
    ([], 401),
    ([(b"authorization", b"Bearer wrong")], 401),
    ([(b"authorization", b"Basic " + TOKEN.encode())], 401),
    ([(b"authorization", b"Bearer " + TOKEN.encode()[:-1])], 401),
    ([(b"authorization", b"Bearer " + TOKEN.encode()), (b"authorization", b"Bearer x")], 401),
    ([(b"authorization", b"Bearer " + TOKEN.encode())], 200),
    ([(b"Authorization", b"bearer " + TOKEN.encode())], 200),
])
def test_only_the_bearer_token_reaches_the_mcp_app(tmp_path, headers, status):
    token = read_token_file(str(token_file(tmp_path)))
    got, reached = anyio.run(_asgi, token, headers)
    assert got == status and reached is (status == 200)


def test_lifespan_events_pass_without_a_token(tmp_path):
    token = read_token_file(str(token_file(tmp_path)))
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["type"])

    anyio.run(BearerAuth(inner, token), {"type": "lifespan"}, None, None)
    assert seen == ["lifespan"]
