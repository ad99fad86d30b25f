"""How the registry client reads bytes: ``https://``, ``http://`` and ``file://``.

One ``tuf.ngclient.FetcherInterface`` for the three schemes. Both stream in chunks of at
most ``chunk_size`` bytes and :meth:`download_file` counts while streaming, so a download
that runs past its limit (TUF's declared length, or ngclient's maximum for a metadata file)
stops at most one chunk after the limit and the connection is closed, whatever the server
keeps sending (endless data). Every download also has a whole-download deadline on top of
the per-read socket timeout, so a server that drips one byte at a time cannot hold the
client for long (slow retrieval). HTTP bodies are taken as they are sent (no content
decoding: TUF hashes the bytes of the file, and a decompressor is attack surface we do not
need); redirects are followed (the bytes are verified by hash, wherever they come from).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import IO
from urllib.parse import urlsplit

import urllib3
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

from skill_ledger import __version__

SCHEMES = ("https", "http", "file")


class RegistryFetcher(FetcherInterface):
    def __init__(self, *, connect_timeout: float = 10.0, read_timeout: float = 30.0,
                 total_timeout: float = 300.0, chunk_size: int = 64 * 1024):
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.total_timeout = total_timeout
        self.chunk_size = chunk_size
        self._pools: dict[str | None, urllib3.PoolManager] = {}

    # -- FetcherInterface

    def _fetch(self, url: str) -> Iterator[bytes]:
        scheme = urlsplit(url).scheme
        deadline = time.monotonic() + self.total_timeout
        if scheme == "file":
            return self._file_chunks(url, deadline)
        if scheme in ("http", "https"):
            return self._http_chunks(url, deadline)
        raise exceptions.DownloadError(f"unsupported URL scheme in {url}")

    @contextlib.contextmanager
    def download_file(self, url: str, max_length: int) -> Iterator[IO[bytes]]:
        """As ``FetcherInterface.download_file``, and the stream is closed as soon as it runs
        past ``max_length`` (the base class leaves closing it to the garbage collector)."""
        received = 0
        with tempfile.TemporaryFile() as out:
            chunks = self.fetch(url)
            try:
                for chunk in chunks:
                    received += len(chunk)
                    if received > max_length:
                        raise exceptions.DownloadLengthMismatchError(
                            f"{url}: more than the allowed {max_length} bytes (stopped after {received})")
                    out.write(chunk)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
            out.seek(0)
            yield out

    # -- file://

    def _file_chunks(self, url: str, deadline: float) -> Iterator[bytes]:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise exceptions.DownloadError(f"file URL with a remote host: {url}")
        path = urllib.request.url2pathname(parts.path)
        try:
            # O_NONBLOCK: opening a FIFO planted in the registry must not hang the client.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError):
            # ngclient reads "404" as "no such file" (the end of the root chain).
            raise exceptions.DownloadHTTPError(f"{url}: no such file", 404) from None
        except OSError as e:
            raise exceptions.DownloadError(f"{url}: {e.strerror or e}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise exceptions.DownloadError(f"{url}: not a regular file")
        return self._read_fd(fd, url, deadline)

    def _read_fd(self, fd: int, url: str, deadline: float) -> Iterator[bytes]:
        with os.fdopen(fd, "rb", buffering=0) as f:
            while True:
                try:
                    chunk = f.read(self.chunk_size)
                except OSError as e:  # the registry's file, not our state: a download failure
                    raise exceptions.DownloadError(f"{url}: {e.strerror or e}") from None
                if not chunk:
                    return
                _check_deadline(deadline, url)
                yield chunk

    # -- http:// and https://

    def _http_chunks(self, url: str, deadline: float) -> Iterator[bytes]:
        try:
            response = self._pool(url).request(
                "GET", url, preload_content=False, decode_content=False, timeout=self.timeout,
                # connection attempts are retried; a read that failed half-way is not (the
                # deadline covers the whole download); a few redirects are followed.
                retries=urllib3.Retry(total=None, connect=2, read=0, status=0, other=0, redirect=5,
                                      raise_on_status=False),
                headers={"User-Agent": f"skill-ledger/{__version__}"},
            )
        except urllib3.exceptions.MaxRetryError as e:
            # NewConnectionError (refused, unreachable) subclasses ConnectTimeoutError in
            # urllib3 2: it is an outage, not a slow server.
            if isinstance(e.reason, urllib3.exceptions.TimeoutError) and not isinstance(
                    e.reason, urllib3.exceptions.NewConnectionError):
                raise exceptions.SlowRetrievalError(f"{url}: timed out") from e
            raise exceptions.DownloadError(f"{url}: {e.reason}") from e
        except urllib3.exceptions.TimeoutError as e:
            raise exceptions.SlowRetrievalError(f"{url}: timed out") from e
        except urllib3.exceptions.HTTPError as e:
            raise exceptions.DownloadError(f"{url}: {e}") from e
        if response.status != 200:
            response.close()
            response.release_conn()
            raise exceptions.DownloadHTTPError(f"{url}: HTTP status {response.status}", response.status)
        return self._stream(response, url, deadline)

    def _stream(self, response: urllib3.BaseHTTPResponse, url: str, deadline: float) -> Iterator[bytes]:
        finished = False
        try:
            # read1 returns what one read brings, so the deadline is checked even when the
            # server drips a byte at a time (read(n) would wait for all n bytes).
            while chunk := response.read1(self.chunk_size, decode_content=False):
                _check_deadline(deadline, url)
                yield chunk
            finished = True
        except urllib3.exceptions.TimeoutError as e:
            raise exceptions.SlowRetrievalError(f"{url}: timed out") from e
        except urllib3.exceptions.HTTPError as e:
            raise exceptions.DownloadError(f"{url}: {e}") from e
        finally:
            if not finished:
                # unread data: close the socket now, so the server stops sending (urllib3
                # would also refuse to reuse it, but only at the next request)
                response.close()
            response.release_conn()

    def _pool(self, url: str) -> urllib3.PoolManager:
        """A direct pool, or one through the proxy the environment names for this URL."""
        parts = urlsplit(url)
        proxy = urllib.request.getproxies().get(parts.scheme)
        if proxy and urllib.request.proxy_bypass(parts.hostname or ""):
            proxy = None
        if proxy not in self._pools:
            self._pools[proxy] = urllib3.ProxyManager(proxy) if proxy else urllib3.PoolManager()
        return self._pools[proxy]


def _check_deadline(deadline: float, url: str) -> None:
    if time.monotonic() > deadline:
        raise exceptions.SlowRetrievalError(f"{url}: download took longer than allowed")
