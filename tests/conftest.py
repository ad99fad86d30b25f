"""Test-tree setup: this directory on sys.path (tests/ is not a package, so shared helpers
are imported by module name), and a couple of fixtures. The code under test is imported as
the installed package ``skill_ledger``, never from the repository's folders directly."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh, empty state directory."""
    return tmp_path / "home"


@pytest.fixture(autouse=True)
def _no_ambient_skills_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's SKILLS_* variables (home, journal, actor, crash hooks) never leak into a test."""
    import os

    for key in list(os.environ):
        if key.startswith("SKILLS_"):
            monkeypatch.delenv(key, raising=False)
