"""Fixtures of the registry tests: a published registry, the misbehaving HTTP server in front
of it, and a client fetcher that counts what it reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_kit import CountingFetcher, FileMirror, HttpMirror, Repo, make_repo
from registry_server import RegistryServer


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """acme.echo 1.0.0 published (root 1, targets/snapshot/timestamp 2), one shared key."""
    return make_repo(tmp_path)


@pytest.fixture
def server(repo: Repo) -> Iterator[RegistryServer]:
    with RegistryServer(repo.dir) as s:
        yield s


@pytest.fixture
def fetcher() -> CountingFetcher:
    # short timeouts keep the slow-retrieval cases quick; no test asserts on time
    return CountingFetcher(connect_timeout=5, read_timeout=5, total_timeout=30, chunk_size=16 * 1024)


@pytest.fixture(params=["http", "file"])
def mirror(request: pytest.FixtureRequest, repo: Repo, tmp_path: Path):
    """Where the client reads the registry: the HTTP server, or a file:// copy; either can be
    told to serve other bytes for a path."""
    if request.param == "file":
        m = FileMirror(repo.dir, tmp_path / "mirror")
        m.sync()
        yield m
        return
    with RegistryServer(repo.dir) as s:
        yield HttpMirror(s)
