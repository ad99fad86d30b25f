"""Helpers for the registry tests: a published registry, a client for it, a fetcher that
counts what it reads, and an attacker's hand that re-signs metadata with a stolen key."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from builders import artifact
from tuf.api.metadata import Metadata, MetaFile
from tuf.api.serialization.json import JSONSerializer

from skill_ledger.adapters.registry import repository
from skill_ledger.adapters.registry.client import Registries, RegistryClient
from skill_ledger.adapters.registry.fetcher import RegistryFetcher
from skill_ledger.adapters.registry.keys import key_files, load_signer
from skill_ledger.adapters.registry.targets import TargetInfo, to_target_file

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)  # the publisher's and client's "now" in tests


@dataclass
class Repo:
    dir: Path
    keys_dir: Path
    root: bytes  # 1.root.json, what a client pins
    root_sha256: str

    def meta(self, name: str) -> bytes:
        return (self.dir / "metadata" / name).read_bytes()

    def current(self, role: str) -> Metadata:
        return Metadata.from_bytes(self.meta(f"{role}.json"))

    def version(self, role: str) -> int:
        return self.current(role).signed.version

    def target_file(self, path: str) -> Path:
        """The hash-prefixed file a target path is served from."""
        tf = self.current("targets").signed.targets[path]
        skill, _, name = path.rpartition("/")
        return self.dir / "targets" / skill / f"{tf.hashes['sha256']}.{name}"

    def url_path(self, path: str) -> str:
        return "/" + str(self.target_file(path).relative_to(self.dir))


def make_repo(tmp: Path, versions: tuple[str, ...] = ("1.0.0",), *, roles=None, now: datetime = T0) -> Repo:
    d = tmp / "reg"
    result = repository.init(d, roles=roles, now=now)
    if versions:
        repository.publish(d, [artifact(version=v) for v in versions], now=now)
    root = Path(result.root_path).read_bytes()
    return Repo(d, Path(result.keys_dir), root, result.root_sha256)


class CountingFetcher(RegistryFetcher):
    """Counts requests and the bytes the client actually read, per URL."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.requests: Counter[str] = Counter()
        self.received: Counter[str] = Counter()

    def _fetch(self, url: str) -> Iterator[bytes]:
        self.requests[url] += 1
        chunks = super()._fetch(url)

        def counted() -> Iterator[bytes]:
            try:
                for chunk in chunks:
                    self.received[url] += len(chunk)
                    yield chunk
            finally:
                chunks.close()

        return counted()


def client(tmp: Path, url: str, repo: Repo, *, clock: Callable[[], datetime] | None = None,
           fetcher: RegistryFetcher | None = None, name: str = "main") -> RegistryClient:
    registries = Registries(tmp / "home" / "registries")
    if not registries.path(name).exists():
        registries.add(name, url, repo.root)
    return registries.open(name, url, root_sha256=repo.root_sha256, clock=clock or (lambda: T0 + timedelta(hours=1)),
                           fetcher=fetcher)


# --- the attacker's hand -------------------------------------------------------------------


def signed_bytes(md: Metadata, key_paths: list[Path]) -> bytes:
    md.signatures.clear()
    for p in key_paths:
        md.sign(load_signer(p), append=True)
    return md.to_bytes(JSONSerializer(compact=False))


def forge(repo: Repo, role: str, mutate: Callable[[object], None], keys: list[Path] | None = None) -> bytes:
    """``role``'s current metadata, changed by ``mutate`` and signed with ``keys`` (default:
    every key in the repository's keys directory, i.e. a stolen key)."""
    md = repo.current(role)
    mutate(md.signed)
    return signed_bytes(md, keys if keys is not None else key_files(repo.keys_dir))


def meta_file(data: bytes, version: int) -> MetaFile:
    return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})


def rewrite_targets(repo: Repo, mutate: Callable[[object], None], files: dict[str, bytes] | None = None) -> None:
    """The registry itself (its targets key) signs a new targets version changed by ``mutate``;
    the publisher's next timer run (refresh_timestamp) snapshots and timestamps it."""
    md = repo.current("targets")
    md.signed.version += 1
    mutate(md.signed)
    data = signed_bytes(md, key_files(repo.keys_dir))
    (repo.dir / "metadata" / f"{md.signed.version}.targets.json").write_bytes(data)
    (repo.dir / "metadata" / "targets.json").write_bytes(data)
    for rel, content in (files or {}).items():
        (repo.dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo.dir / rel).write_bytes(content)
    repository.refresh_timestamp(repo.dir, now=T0)


def listed(info: TargetInfo) -> Callable[[object], None]:
    """A ``mutate`` that lists ``info`` (replacing any entry at its path)."""
    def mutate(targets) -> None:
        targets.targets[info.path] = to_target_file(info)
    return mutate


def served_path(path: str, sha256: str) -> str:
    skill, _, name = path.rpartition("/")
    return f"targets/{skill}/{sha256}.{name}"


# --- a mirror: the HTTP server, or a directory copy for file:// ------------------------------


@dataclass
class FileMirror:
    """A copy of the repository directory served as file://; ``serve`` puts other bytes at a
    path, and ``sync`` copies the publisher's latest files, then re-applies those bytes."""

    source: Path
    root: Path
    overrides: dict[str, bytes] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def sync(self) -> None:
        shutil.copytree(self.source, self.root, dirs_exist_ok=True)
        for path, data in self.overrides.items():
            (self.root / path.lstrip("/")).write_bytes(data)

    def serve(self, path: str, body: bytes) -> None:
        self.overrides[path] = body
        self.sync()

    def reset(self) -> None:
        self.overrides.clear()
        shutil.rmtree(self.root)
        self.sync()


class HttpMirror:
    def __init__(self, server) -> None:
        self.server = server
        self.url = server.url

    def sync(self) -> None:  # the server reads the repository directory on every request
        pass

    def serve(self, path: str, body: bytes) -> None:
        self.server.serve(path, body)

    def reset(self) -> None:
        self.server.reset()
