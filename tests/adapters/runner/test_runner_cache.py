"""The compiled-module cache: what it writes, and everything it refuses to load."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runner_kit as kit  # noqa: E402

from skill_ledger.adapters.runner import engine as eng  # noqa: E402

DATA = kit.wasm(kit.ECHO)
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def cache(tmp_path):
    eng.clear_memory_cache()
    notes: list[str] = []
    c = eng.ModuleCache(tmp_path / "cache", notify=notes.append)
    c.notes = notes
    yield c
    eng.clear_memory_cache()


def fresh(c: eng.ModuleCache) -> eng.ModuleCache:
    """The same directory seen by a new process (no in-memory modules)."""
    eng.clear_memory_cache()
    return eng.ModuleCache(c.parent, notify=c.notify)


def entry(c: eng.ModuleCache, suffix: str) -> Path:
    return c.directory / f"{c.key(DIGEST)}{suffix}"


def test_compiled_then_memory_then_disk(cache):
    assert cache.get(DIGEST, "modules/m.wasm", lambda: DATA).source == "compiled"
    assert cache.get(DIGEST, "modules/m.wasm", lambda: DATA).source == "memory"
    loaded = fresh(cache).get(DIGEST, "modules/x.wasm", lambda: pytest.fail("must not need the bytes"))
    assert loaded.source == "disk"
    assert loaded.facts.path == "modules/x.wasm" and loaded.facts.exports_function("echo")
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    for suffix in (".cwasm", ".json"):
        assert stat.S_IMODE(entry(cache, suffix).stat().st_mode) == 0o600


def test_the_key_covers_the_module_the_wasmtime_version_and_the_settings(cache):
    assert cache.key(DIGEST) != cache.key("0" * 64)
    fingerprint = eng.settings_fingerprint()
    assert eng.wasmtime_version() in fingerprint and "consume_fuel=1" in fingerprint
    assert "epoch_interruption=1" in fingerprint


def test_modified_compiled_code_is_never_loaded(cache):
    cache.get(DIGEST, "modules/m.wasm", lambda: DATA)
    code = entry(cache, ".cwasm")
    raw = bytearray(code.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    code.write_bytes(bytes(raw))
    assert fresh(cache).get(DIGEST, "modules/m.wasm", lambda: DATA).source == "compiled"


def test_a_symlinked_cache_entry_is_never_loaded(cache, tmp_path):
    cache.get(DIGEST, "modules/m.wasm", lambda: DATA)
    code = entry(cache, ".cwasm")
    elsewhere = tmp_path / "elsewhere.cwasm"
    elsewhere.write_bytes(code.read_bytes())
    code.unlink()
    os.symlink(elsewhere, code)
    assert fresh(cache).get(DIGEST, "modules/m.wasm", lambda: DATA).source == "compiled"


def test_an_entry_others_can_write_is_never_loaded(cache):
    cache.get(DIGEST, "modules/m.wasm", lambda: DATA)
    os.chmod(entry(cache, ".cwasm"), 0o666)
    assert fresh(cache).get(DIGEST, "modules/m.wasm", lambda: DATA).source == "compiled"


def test_a_directory_others_can_write_or_a_symlink_is_flagged(cache, tmp_path):
    cache.directory.mkdir(parents=True)
    os.chmod(cache.directory, 0o770)
    assert "writable by group or others" in eng.private_dir_problem(cache.directory)
    os.chmod(cache.directory, 0o700)
    assert eng.private_dir_problem(cache.directory) is None
    os.symlink(cache.directory, tmp_path / "link")
    assert "not a directory" in eng.private_dir_problem(tmp_path / "link")


def test_an_unusable_cache_directory_compiles_in_memory_with_a_warning(cache, monkeypatch):
    monkeypatch.setattr(eng, "private_dir_problem", lambda p: "is writable by group or others (mode 0777)")
    assert cache.get(DIGEST, "modules/m.wasm", lambda: DATA).source == "compiled"
    assert cache.notes and "compiling in memory only" in cache.notes[0]
    assert not entry(cache, ".cwasm").exists()


def test_bytes_that_do_not_match_the_digest_are_refused(cache):
    from skill_ledger.domain.errors import SkillLedgerError

    with pytest.raises(SkillLedgerError) as info:
        cache.get("1" * 64, "modules/m.wasm", lambda: DATA)
    assert info.value.code == "trap"


def test_the_epoch_deadline_is_on_the_monotonic_clock():
    eng.engine()
    now = time.monotonic()
    near, far = eng.deadline_ticks(now + 0.05), eng.deadline_ticks(now + 30.0)
    assert 1 <= near <= int(0.05 / eng.TICK_S) + 2
    assert abs(far - 30.0 / eng.TICK_S) <= 3
