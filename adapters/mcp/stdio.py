"""The stdio wire: the protocol on private duplicates of fds 0 and 1, read and written by the
event loop without threads.

The SDK's ``stdio_server`` reads and writes through ``anyio.wrap_file``, a worker-thread hop
for every line read, every write and every flush: about half of a warm call's protocol cost
(``benchmarks/mcp.py``). When stdin and stdout are pipes or sockets (how MCP clients start a
server) they are served here instead, with asyncio's pipe transports, and handed to
``stdio_server`` as its streams (which keeps its framing: one JSON-RPC message per line).
Anything else (a terminal, a file) is left to the SDK's own claim.

Either way, while serving, fd 0 reads from ``/dev/null``, fd 1 writes to stderr and
``sys.stdout`` is ``sys.stderr``: whatever else in the process writes to "stdout" (a stray
``print``, a library, a child process) lands in the log, never in the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import stat
import sys
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["MAX_LINE_BYTES", "stdio_streams"]

log = logging.getLogger("skill_ledger.mcp")

MAX_LINE_BYTES = 32 * 1024 * 1024  # one message; the runner's own input cap is 16 MiB


def _pipe_or_socket(stream: Any, fd: int) -> bool:
    """``stream`` is the process's own ``fd`` (not a replacement, as a test runner installs), and
    that is a pipe or a socket."""
    try:
        if stream.fileno() != fd:
            return False
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class _Lines:
    """The client's messages, one per line, as ``stdio_server`` iterates them."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def __aiter__(self) -> "_Lines":
        return self

    async def __anext__(self) -> str:
        try:
            line = await self.reader.readline()
        except ValueError:  # longer than MAX_LINE_BYTES: dropped (the SDK drops what does not parse)
            log.warning("dropped a message longer than %d bytes", MAX_LINE_BYTES)
            return ""
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class _Out:
    """The server's messages; a client that has gone away is not an error of ours."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.gone = False

    async def write(self, text: str) -> None:
        if not self.gone:
            try:
                self.writer.write(text.encode("utf-8"))
            except (BrokenPipeError, ConnectionResetError, RuntimeError):
                self.gone = True

    async def flush(self) -> None:
        if not self.gone:
            try:
                await self.writer.drain()
            except (BrokenPipeError, ConnectionResetError):
                self.gone = True


@contextlib.contextmanager
def _diverted() -> Any:
    """fd 0 from /dev/null, fd 1 to stderr, ``sys.stdout`` to ``sys.stderr``; yields private
    duplicates of the original fds 0 and 1 (the wire), restored on exit."""
    sys.stdout.flush()
    wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    saved = sys.stdout
    try:
        os.dup2(devnull, 0)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        yield wire_in, wire_out
    finally:
        sys.stdout = saved
        os.close(devnull)
        for fd, wire in ((0, wire_in), (1, wire_out)):
            with contextlib.suppress(OSError):
                os.dup2(wire, fd)
                os.set_blocking(fd, True)
            with contextlib.suppress(OSError):
                os.close(wire)


@contextlib.asynccontextmanager
async def stdio_streams() -> AsyncIterator[tuple[Any, Any]]:
    """The SDK's (read, write) message streams over this process's stdin and stdout."""
    from mcp.server.stdio import stdio_server

    if not (_pipe_or_socket(sys.stdin, 0) and _pipe_or_socket(sys.stdout, 1)):
        async with stdio_server() as streams:  # the SDK's claim, with worker threads
            saved, sys.stdout = sys.stdout, sys.stderr
            try:
                yield streams
            finally:
                sys.stdout = saved
        return
    loop = asyncio.get_running_loop()
    with _diverted() as (wire_in, wire_out):
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
        read_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                         os.fdopen(os.dup(wire_in), "rb", buffering=0))
        write_transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin,
                                                                  os.fdopen(os.dup(wire_out), "wb", buffering=0))
        writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
        try:
            async with stdio_server(_Lines(reader), _Out(writer)) as streams:  # type: ignore[arg-type]
                yield streams
        finally:
            read_transport.close()
            write_transport.close()
