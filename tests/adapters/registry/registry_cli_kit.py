"""What the command-line registry tests share (``tests/cli/test_registry_cli.py``,
``tests/e2e/test_registry_attacks.py``): a registry signed at the real time (the CLI reads
the real clock: no test seam moves it), the ``skills`` command bound to one home, the
journal's registry events, and a publisher's hand that re-signs metadata at the real time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from click.testing import CliRunner, Result
from registry_kit import Repo, make_repo, signed_bytes

from skill_ledger.adapters.registry import repository
from skill_ledger.adapters.registry.keys import key_files
from skill_ledger.cli.main import cli


def now() -> datetime:
    return datetime.now(timezone.utc)


def real_repo(tmp: Path, versions: tuple[str, ...] = ("1.0.0",), *, roles=None) -> Repo:
    """A registry whose metadata is valid now (``make_repo`` signs at the tests' fixed T0)."""
    return make_repo(tmp, versions, roles=roles, now=now())


def resign_targets(repo: Repo, mutate: Callable[[object], None], files: dict[str, bytes] | None = None) -> None:
    """The registry's own targets key signs a new targets version changed by ``mutate`` (a
    compromised or careless publisher); its timer then snapshots and timestamps it."""
    md = repo.current("targets")
    md.signed.version += 1
    mutate(md.signed)
    data = signed_bytes(md, key_files(repo.keys_dir))
    (repo.dir / "metadata" / f"{md.signed.version}.targets.json").write_bytes(data)
    (repo.dir / "metadata" / "targets.json").write_bytes(data)
    for rel, content in (files or {}).items():
        (repo.dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo.dir / rel).write_bytes(content)
    repository.refresh_timestamp(repo.dir)


class Skills:
    """``skills --home HOME --actor user:registry-test ...`` in this process."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.runner = CliRunner()

    def __call__(self, *args: object) -> Result:
        return self.runner.invoke(cli, ["--home", str(self.home), "--actor", "user:registry-test", *map(str, args)])

    def ok(self, *args: object) -> dict:
        """Run with --json; it must succeed; its one JSON document."""
        r = self(*args, "--json")
        assert r.exit_code == 0, (args, r.exit_code, r.stderr, r.stdout)
        return json.loads(r.stdout)

    def events(self, kind: str | None = None) -> list[dict]:
        r = self("journal", "--json", *(["--kind", kind] if kind else []))
        assert r.exit_code == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines()]

    def refusals(self) -> list[dict]:
        return [e["data"] for e in self.events("registry.update_refused")]

    def head(self) -> int:
        events = self.events()
        return events[-1]["position"] if events else 0


def doc(result: Result) -> dict:
    return json.loads(result.stdout)
