"""A real HTTP server on 127.0.0.1 that serves a registry directory and misbehaves on request.

Each misbehaviour is set per URL path (``/metadata/timestamp.json``): serve other bytes (an
older or forged file), serve the file and then bytes without end, wait before answering,
drip one byte at a time, or answer with an error status. It counts requests and bytes sent
per path. Every loop is bounded in bytes and time, so a test that goes wrong still ends.
"""

from __future__ import annotations

import http.server
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ENDLESS_CAP_BYTES = 256 * 1024 * 1024  # an "endless" body stops here at the latest
ENDLESS_CAP_SECONDS = 20.0
DRIP_MAX_BYTES = 4096


@dataclass
class Behaviour:
    body: bytes | None = None  # serve these bytes instead of the file
    status: int = 200
    delay: float = 0.0  # seconds before the response starts
    endless: bool = False  # after the body, keep sending filler until the client goes away
    drip: float | None = None  # seconds between single bytes


class RegistryServer:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.requests: Counter[str] = Counter()
        self.bytes_sent: Counter[str] = Counter()
        self.outcome: dict[str, str] = {}  # path -> "complete" | "client_closed" | "cap" (last response)
        self._behaviour: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                server._handle(self)

            def log_message(self, *args) -> None:  # quiet
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # a short poll interval: shutdown() waits for the next poll
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    def __enter__(self) -> RegistryServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    # -- misbehaviour, per path ("/metadata/timestamp.json" or "metadata/timestamp.json")

    def serve(self, path: str, body: bytes) -> None:
        self._set(path, Behaviour(body=body))

    def endless(self, path: str, body: bytes | None = None) -> None:
        self._set(path, Behaviour(body=body, endless=True))

    def delay(self, path: str, seconds: float) -> None:
        self._set(path, Behaviour(delay=seconds))

    def drip(self, path: str, interval: float) -> None:
        self._set(path, Behaviour(drip=interval))

    def status(self, path: str, status: int) -> None:
        self._set(path, Behaviour(status=status))

    def missing(self, path: str) -> None:
        self.status(path, 404)

    def reset(self) -> None:
        with self._lock:
            self._behaviour.clear()
            self.requests.clear()
            self.bytes_sent.clear()
            self.outcome.clear()

    def clear_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_sent.clear()

    def _set(self, path: str, behaviour: Behaviour) -> None:
        with self._lock:
            self._behaviour["/" + path.lstrip("/")] = behaviour

    # -- serving

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(h.path).path)
        with self._lock:
            self.requests[path] += 1
            b = self._behaviour.get(path, Behaviour())
        if b.delay:
            time.sleep(b.delay)
        body = b.body if b.body is not None else self._file(path)
        if body is None or b.status != 200:
            status = 404 if body is None and b.status == 200 else b.status
            h.send_response(status)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        if b.endless or b.drip:
            h.send_header("Connection", "close")  # the body ends when the connection does
            h.close_connection = True
        else:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            if b.drip:
                self._drip(h, path, body, b.drip)
            else:
                self._send(h, path, body)
                if b.endless:
                    self._endless(h, path)
                    return
            self._record(path, "complete")
        except (BrokenPipeError, ConnectionResetError):
            self._record(path, "client_closed")
            h.close_connection = True

    def _file(self, path: str) -> bytes | None:
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        return target.read_bytes()

    def _send(self, h, path: str, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), 65536):  # in pieces, so bytes_sent follows the progress
            h.wfile.write(view[start:start + 65536])
            with self._lock:
                self.bytes_sent[path] += min(65536, len(view) - start)
        h.wfile.flush()

    def _endless(self, h, path: str) -> None:
        filler = b"\0" * 65536
        started = time.monotonic()
        while self.bytes_sent[path] < ENDLESS_CAP_BYTES and time.monotonic() - started < ENDLESS_CAP_SECONDS:
            self._send(h, path, filler)
        self._record(path, "cap")

    def _drip(self, h, path: str, body: bytes, interval: float) -> None:
        for i in range(min(len(body), DRIP_MAX_BYTES)):
            self._send(h, path, body[i:i + 1])
            time.sleep(interval)

    def _record(self, path: str, outcome: str) -> None:
        with self._lock:
            self.outcome[path] = outcome
