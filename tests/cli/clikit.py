"""Shared fixtures of the CLI tests: a home, a ``skills`` invoker over it, and installed skills."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import builders as b  # noqa: E402

from skill_ledger.cli.main import cli  # noqa: E402
from skill_ledger.domain.signing import key_id, public_key_from_seed  # noqa: E402

KEY_A = public_key_from_seed(b.SEED_A).hex()
KEY_B = public_key_from_seed(b.SEED_B).hex()
KEY_ID_A = key_id(bytes.fromhex(KEY_A))
KEY_ID_B = key_id(bytes.fromhex(KEY_B))


class Skills:
    """``skills --home H --actor user:cli ARGS`` in process (click's runner keeps stdout and stderr apart)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        self.runner = CliRunner()

    def __call__(self, *args, input=None, env=None, color=False):
        return self.runner.invoke(cli, ["--home", str(self.home), "--actor", "user:cli", *map(str, args)],
                                  input=input, env=env, color=color)

    def json(self, *args, **kw):
        r = self(*args, "--json", **kw)
        return r, json.loads(r.stdout) if r.stdout.strip() else None

    def install(self, name: str = "a.skill", *, allow_tofu: bool = True, **kw):
        path = b.write(self.tmp, name, b.artifact(**kw))
        return self("install", "--artifact", path, *(["--allow-tofu"] if allow_tofu else []), "--json")

    def events(self, *args: str) -> list[dict]:
        r = self("journal", "--json", *args)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
