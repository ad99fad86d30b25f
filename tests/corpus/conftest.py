"""The corpus fixture: every corpus module built once per test session (from the cache in
``~/.cache/skill-ledger-corpus`` when the sources did not change)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.build import build_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{name: path of its .wasm}`` for every module of ``corpus.build`` (C and committed)."""
    return build_corpus(tmp_path_factory.mktemp("corpus"))
