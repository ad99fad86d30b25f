"""Serving ``skills mcp``: over stdio, or over the SDK's streamable HTTP behind a bearer token.

stdio: the protocol owns stdout (``stdio.py``: the wire on private duplicates of fds 0 and 1,
fd 1 and ``sys.stdout`` pointed at stderr while serving). Every log line goes to stderr.

HTTP: binds to 127.0.0.1 by default. Any other address needs ``--token-file``; with a token
(on any address) every request must carry ``Authorization: Bearer <token>``, compared in
constant time (``hmac.compare_digest`` over SHA-256 digests, so not even the length leaks);
anything else gets 401 before the MCP app sees it (no session, no tool list). On loopback
the SDK's DNS-rebinding protection (Host and Origin checks) is on as well.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import signal
import socket
import stat
import sys
from typing import Any

import anyio

from skill_ledger.adapters.settings import Settings
from skill_ledger.domain.errors import SkillLedgerError, UsageError

from .calls import DEFAULT_WORKERS, CallPool
from .catalog import Catalog
from .server import DEFAULT_POLL_INTERVAL, SkillsMcp

__all__ = ["BearerAuth", "BearerToken", "DEFAULT_PORT", "ENDPOINT", "is_loopback", "read_token_file", "serve"]

log = logging.getLogger("skill_ledger.mcp")

DEFAULT_PORT = 8765
ENDPOINT = "/mcp"
MIN_TOKEN_CHARS = 16
MAX_TOKEN_FILE_BYTES = 4096
MAX_REQUEST_BYTES = 16 * 1024 * 1024 + 64 * 1024  # the runner's input cap, and the JSON-RPC around it


class BearerToken:
    """A bearer token; it never appears in a repr, a log line or an error."""

    def __init__(self, value: str) -> None:
        self._digest = hashlib.sha256(value.encode()).digest()

    def matches(self, presented: bytes) -> bool:
        return hmac.compare_digest(hashlib.sha256(presented).digest(), self._digest)

    def __repr__(self) -> str:
        return "BearerToken(<redacted>)"


def read_token_file(path: str) -> BearerToken:
    """The token in ``path`` (surrounding whitespace ignored): a regular file nobody else may read
    or write, holding at least 16 printable ASCII characters (``openssl rand -hex 32 > token``)."""
    from skill_ledger.domain.errors import FileNotFound, IoError

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileNotFound(path) from None
    except OSError as e:
        raise IoError(f"cannot read token file {path}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"token file {path} is not a regular file", {"path": path})
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise UsageError(f"token file {path} is readable or writable by others (mode {mode:04o}); "
                             f"run: chmod 600 {path}", {"path": path, "mode": f"{mode:04o}"})
        data = os.read(fd, MAX_TOKEN_FILE_BYTES + 1)
    finally:
        os.close(fd)
    token = data.strip(b" \t\r\n")
    if (len(data) > MAX_TOKEN_FILE_BYTES or len(token) < MIN_TOKEN_CHARS
            or any(b < 0x21 or b > 0x7E for b in token)):
        raise UsageError(f"token file {path} must hold one token of {MIN_TOKEN_CHARS} to {MAX_TOKEN_FILE_BYTES} "
                         "printable ASCII characters without spaces", {"path": path})
    return BearerToken(token.decode("ascii"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: may resolve to anything


class BearerAuth:
    """ASGI middleware: HTTP requests without the bearer token get 401 (lifespan passes)."""

    def __init__(self, app: Any, token: BearerToken) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and not self._authorized(scope):
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"www-authenticate", b'Bearer realm="skills mcp"')]})
            await send({"type": "http.response.body",
                        "body": json.dumps({"error": "unauthorized: a valid bearer token is required"}).encode()})
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: dict[str, Any]) -> bool:
        values = [v for k, v in scope.get("headers", ()) if k.lower() == b"authorization"]
        if len(values) != 1:
            return False
        scheme, _, presented = values[0].partition(b" ")
        return scheme.lower() == b"bearer" and self.token.matches(presented.strip())


# --- serving ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _logging() -> Any:
    """While serving, every log line goes to stderr: ours at INFO, the libraries' (the SDK,
    uvicorn) at WARNING. The previous configuration is restored afterwards."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("skills mcp: %(levelname)s: %(message)s"))
    root, ours = logging.getLogger(), logging.getLogger("skill_ledger.mcp")
    saved = root.handlers[:], root.level, ours.level
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    ours.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        ours.setLevel(saved[2])


def serve(settings: Settings, *, transport: str = "stdio", host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          skills: frozenset[str] = frozenset(), publishers: frozenset[str] = frozenset(),
          token: BearerToken | None = None, workers: int = DEFAULT_WORKERS,
          poll_interval: float = DEFAULT_POLL_INTERVAL) -> None:
    """Serve until the client goes away (stdio) or the process is told to stop (HTTP)."""
    if transport not in ("stdio", "http"):
        raise UsageError(f"unknown transport {transport!r}: use stdio or http")
    if transport == "http" and not is_loopback(host) and token is None:
        raise UsageError(f"--host {host} is not a loopback address: give --token-file so that only holders of the "
                         "token can call the tools", {"host": host})

    def notify(message: str) -> None:
        log.warning("%s", message)

    with _logging():
        catalog = Catalog(settings, skills=skills, publishers=publishers, notify=notify)
        pool = CallPool(settings, workers=workers, notify=notify)
        try:
            catalog.refresh()
            app = SkillsMcp(catalog, pool, poll_interval=poll_interval)
            log.info("serving %d tools of %s (journal position %s) over %s", len(catalog.tools()), settings.home,
                     catalog.position, transport)
            if transport == "stdio":
                anyio.run(_serve_stdio, app)
            else:
                anyio.run(_serve_http, app, host, port, token)
        finally:
            pool.shutdown()
            catalog.close()


async def _serve_stdio(app: SkillsMcp) -> None:
    from .stdio import stdio_streams

    async with stdio_streams() as (read_stream, write_stream):
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.watch)
            tg.start_soon(_stop_on_signal, tg.cancel_scope.cancel)
            await app.server.run(read_stream, write_stream, app.server.create_initialization_options())
            log.info("the client closed the connection")
            tg.cancel_scope.cancel()


async def _stop_on_signal(stop: Any) -> None:
    """SIGTERM or SIGINT: stop serving; ``serve`` then lets running calls finish."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("%s received: stopping", signal.Signals(signum).name)
            stop()
            return


async def _serve_http(app: SkillsMcp, host: str, port: int, token: BearerToken | None) -> None:
    import uvicorn

    class _Uvicorn(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:  # ours stop it gracefully, and are not raised again after
            yield

    # Plain JSON responses: a call's answer needs no SSE stream of its own (we send nothing during a
    # call), which more than halves a call's cost; list changes still reach handshake-era clients on
    # their GET stream, and subscriptions/listen keeps its stream (the SDK's carve-out).
    asgi = app.server.streamable_http_app(streamable_http_path=ENDPOINT, host=host, json_response=True,
                                          transport_security=_rebinding_guard(host),
                                          max_request_body_size=MAX_REQUEST_BYTES)
    if token is not None:
        asgi = BearerAuth(asgi, token)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    server = _Uvicorn(uvicorn.Config(asgi, host=host, port=port, log_config=None, log_level="warning",
                                     access_log=False, lifespan="on", server_header=False))

    def stop() -> None:
        server.should_exit = True

    sock = _bind(host, port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(app.watch)
        tg.start_soon(_stop_on_signal, stop)
        tg.start_soon(_announce_address, server, host, token is not None)
        try:
            await server.serve(sockets=[sock])
        except SystemExit:  # uvicorn's way of saying it could not start (its message is logged above)
            raise SkillLedgerError("the HTTP server failed to start (see the message above)") from None
        finally:
            sock.close()
        tg.cancel_scope.cancel()


def _bind(host: str, port: int) -> socket.socket:
    """The listening address, bound here so that a taken port is a clear usage error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise UsageError(f"cannot resolve --host {host}: {e.strerror}", {"host": host}) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}", {"host": host, "port": port}) from None
    return sock


def _rebinding_guard(host: str) -> Any:
    """On loopback, only requests addressed to a loopback name (Host) from a loopback page
    (Origin, when a browser sends one): a web page that rebinds its own name to 127.0.0.1 is
    refused. Elsewhere the bearer token is the guard (a page cannot know it)."""
    from mcp.server.transport_security import TransportSecuritySettings

    if not is_loopback(host):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = sorted({f"[{host.strip('[]')}]" if ":" in host else host, "127.0.0.1", "localhost", "[::1]"})
    return TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                     allowed_hosts=[f"{n}:*" for n in names],
                                     allowed_origins=[f"http://{n}:*" for n in names])


async def _announce_address(server: Any, host: str, with_token: bool) -> None:
    while not server.started:
        await anyio.sleep(0.02)
    ports = sorted({s.getsockname()[1] for srv in server.servers for s in srv.sockets})
    shown = f"[{host}]" if ":" in host else host
    for port in ports:
        log.info("listening on http://%s:%d%s%s", shown, port, ENDPOINT,
                 " (Authorization: Bearer <token> required)" if with_token else "")
