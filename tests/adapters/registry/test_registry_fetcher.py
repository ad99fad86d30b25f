"""The fetcher on its own: file:// safety, length caps while streaming, connection handling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from registry_server import RegistryServer
from tuf.api import exceptions

from skill_ledger.adapters.registry.fetcher import RegistryFetcher


def test_a_missing_file_reads_as_404_so_the_root_chain_ends(tmp_path: Path) -> None:
    with pytest.raises(exceptions.DownloadHTTPError) as e:
        RegistryFetcher().download_bytes((tmp_path / "2.root.json").as_uri(), 100)
    assert e.value.status_code == 404


def test_a_fifo_in_a_file_registry_does_not_hang_the_client(tmp_path: Path) -> None:
    fifo = tmp_path / "timestamp.json"
    os.mkfifo(fifo)
    with pytest.raises(exceptions.DownloadError, match="not a regular file"):
        RegistryFetcher().download_bytes(fifo.as_uri(), 100)


def test_directories_devices_and_remote_file_hosts_are_refused(tmp_path: Path) -> None:
    for url in (tmp_path.as_uri(), "file:///dev/zero", "file://example.org/x"):
        with pytest.raises(exceptions.DownloadError):
            RegistryFetcher().download_bytes(url, 100)


def test_unsupported_scheme() -> None:
    with pytest.raises(exceptions.DownloadError, match="unsupported URL scheme"):
        RegistryFetcher().download_bytes("ftp://example.org/x", 100)


def test_a_file_longer_than_allowed_stops_one_chunk_past_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(1 << 30)
    fetcher = RegistryFetcher(chunk_size=4096)
    read = []
    original = fetcher._fetch

    def counting(url: str):
        chunks = original(url)
        for chunk in chunks:
            read.append(len(chunk))
            yield chunk

    fetcher._fetch = counting  # type: ignore[method-assign]
    with pytest.raises(exceptions.DownloadLengthMismatchError):
        fetcher.download_bytes(big.as_uri(), 10_000)
    assert sum(read) <= 10_000 + 4096


def test_exact_length_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 5000)
    assert RegistryFetcher(chunk_size=1000).download_bytes((tmp_path / "f").as_uri(), 5000) == b"x" * 5000


def test_a_request_after_a_cut_body_gets_a_clean_response(tmp_path: Path) -> None:
    (tmp_path / "small").write_bytes(b"s" * 100)
    (tmp_path / "large").write_bytes(b"l" * 500_000)
    fetcher = RegistryFetcher(chunk_size=8192)
    with RegistryServer(tmp_path) as server:
        assert fetcher.download_bytes(server.url + "small", 100) == b"s" * 100
        with pytest.raises(exceptions.DownloadLengthMismatchError):
            fetcher.download_bytes(server.url + "large", 1000)
        # the next request on the pool gets a clean connection, not the rest of "large"
        assert fetcher.download_bytes(server.url + "small", 100) == b"s" * 100
        assert fetcher.download_bytes(server.url + "large", 500_000) == b"l" * 500_000


def test_http_error_status_is_download_http_error(tmp_path: Path) -> None:
    with RegistryServer(tmp_path) as server:
        with pytest.raises(exceptions.DownloadHTTPError) as e:
            RegistryFetcher().download_bytes(server.url + "absent", 100)
    assert e.value.status_code == 404
