"""The compiled-module cache: what it writes, how entries are authenticated, everything it
refuses to load, and how often a module is compiled."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
import time
from pathlib import Path

import pytest
import wasmtime

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runner_kit as kit  # noqa: E402

from skill_ledger.adapters.runner import engine as eng  # noqa: E402
from skill_ledger.adapters.runner.cachekey import KEY_NAME, forget_keys  # noqa: E402
from skill_ledger.adapters.runner.wasmbin import HOST_MEMORY_EXPORT, with_memory_export  # noqa: E402
from skill_ledger.domain.errors import SkillLedgerError  # noqa: E402

DATA = kit.wasm(kit.ECHO)
DIGEST = hashlib.sha256(DATA).hexdigest()
OTHER = kit.wasm(kit.json_module("(i64.const 0)", name="echo"))  # other code with the same interface


@pytest.fixture
def cache(tmp_path):
    eng.clear_memory_cache()
    forget_keys()
    notes: list[str] = []
    c = eng.ModuleCache(tmp_path / "home" / "cache", notify=notes.append)
    c.notes = notes
    yield c
    eng.clear_memory_cache()
    forget_keys()


def fresh(c: eng.ModuleCache) -> eng.ModuleCache:
    """The same directory seen by a new process (no in-memory modules)."""
    eng.clear_memory_cache()
    return eng.ModuleCache(c.parent, notify=c.notify)


def entry(c: eng.ModuleCache, suffix: str, digest: str = DIGEST) -> Path:
    return c.directory / f"{c.key(digest)}{suffix}"


def rejected(c: eng.ModuleCache, expected_note: str) -> None:
    """The entry was refused: deleted, the module compiled again, and a notice says why."""
    before = eng.cache_stats()
    loaded = fresh(c).get(DIGEST, "modules/m.wasm", lambda: DATA)
    after = eng.cache_stats()
    assert loaded.source == "compiled"
    assert after["rejected"] == before["rejected"] + 1 and after["compiles"] == before["compiles"] + 1
    assert any(expected_note in n and "deleted, compiling the module again" in n for n in c.notes), c.notes
    # the entry written by that compilation is this home's again
    assert fresh(c).get(DIGEST, "modules/m.wasm", lambda: pytest.fail("must not need the bytes")).source == "disk"


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


def test_the_authentication_key_is_private_and_outside_the_cache_directory(cache):
    cache.get(DIGEST, "modules/m.wasm", lambda: DATA)
    key = cache.home / KEY_NAME
    assert key.is_file() and cache.parent not in key.parents
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not any(p.name == KEY_NAME for p in cache.parent.rglob("*"))
    mac = entry(cache, ".json").read_bytes().split(b"\n", 1)[0]
    assert len(mac) == 64 and int(mac, 16) >= 0  # an HMAC-SHA256 in hex on the first line


# --- poisoning (issue 11) ----------------------------------------------------------------------


def test_a_cache_entry_copied_from_another_home_is_never_loaded(cache, tmp_path):
    other = eng.ModuleCache(tmp_path / "other-home" / "cache")
    other.get(DIGEST, "modules/m.wasm", lambda: DATA)  # a legitimate entry, under the other home's key
    eng.clear_memory_cache()
    cache.usable()
    for suffix in (".cwasm", ".json"):
        shutil.copyfile(entry(other, suffix), entry(cache, suffix))
        os.chmod(entry(cache, suffix), 0o600)
    rejected(cache, "authentication failed")


def test_injected_code_of_another_module_with_a_forged_json_is_never_loaded(cache, tmp_path):
    """The attack of issue 11: a .cwasm compiled from other code, with a .json naming the
    legitimate module's digest (and the injected code's digest), is never deserialized."""
    cache.get(DIGEST, "modules/m.wasm", lambda: DATA)
    evil = bytes(wasmtime.Module(eng.engine(), with_memory_export(OTHER)).serialize())
    meta_path = entry(cache, ".json")
    mac, _, body = meta_path.read_bytes().partition(b"\n")
    forged = body.replace(hashlib.sha256(entry(cache, ".cwasm").read_bytes()).hexdigest().encode(),
                          hashlib.sha256(evil).hexdigest().encode())
    assert forged != body
    entry(cache, ".cwasm").write_bytes(evil)
    meta_path.write_bytes(mac + b"\n" + forged)  # the old HMAC does not cover the new body
    rejected(cache, "authentication failed")
    assert fresh(cache).get(DIGEST, "modules/m.wasm", lambda: DATA).facts.sha256 == DIGEST
    # and a forged HMAC under a key the attacker chose
    meta_path.write_bytes(hashlib.sha256(b"guess").hexdigest().encode() + b"\n" + forged)
    entry(cache, ".cwasm").write_bytes(evil)
    rejected(cache, "authentication failed")


def test_an_entry_without_an_hmac_is_never_loaded(cache):
    cache.get(DIGEST, "modules/m.wasm", lambda: DATA)
    body = entry(cache, ".json").read_bytes().partition(b"\n")[2]
    entry(cache, ".json").write_bytes(body)  # the format before authentication: metadata only
    rejected(cache, "authentication failed")


@pytest.mark.parametrize("damage", ["truncate-code", "flip-code", "truncate-json", "flip-json", "flip-mac"])
def test_truncated_or_flipped_entries_are_deleted_and_recompiled(cache, damage):
    cache.get(DIGEST, "modules/m.wasm", lambda: DATA)
    target = entry(cache, ".cwasm" if damage.endswith("code") else ".json")
    raw = bytearray(target.read_bytes())
    if damage.startswith("truncate"):
        raw = raw[: len(raw) // 2]
    else:
        at = 5 if damage == "flip-mac" else len(raw) - 10 if damage == "flip-json" else len(raw) // 2
        raw[at] ^= 0x01
    target.write_bytes(bytes(raw))
    rejected(cache, "authentication failed" if damage.endswith(("json", "mac")) else "does not match")


def test_a_symlinked_cache_entry_is_never_loaded(cache, tmp_path):
    cache.get(DIGEST, "modules/m.wasm", lambda: DATA)
    code = entry(cache, ".cwasm")
    elsewhere = tmp_path / "elsewhere.cwasm"
    elsewhere.write_bytes(code.read_bytes())
    code.unlink()
    os.symlink(elsewhere, code)
    rejected(cache, "does not match")
    assert elsewhere.exists()  # the link was removed, not what it pointed to


def test_an_entry_others_can_write_is_never_loaded(cache):
    cache.get(DIGEST, "modules/m.wasm", lambda: DATA)
    os.chmod(entry(cache, ".json"), 0o666)
    rejected(cache, "not a private regular file")


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


def test_a_key_file_others_can_read_disables_the_disk_cache(cache):
    cache.home.mkdir(parents=True)
    key = cache.home / KEY_NAME
    key.write_text(os.urandom(32).hex())
    os.chmod(key, 0o644)
    assert cache.get(DIGEST, "modules/m.wasm", lambda: DATA).source == "compiled"
    assert "accessible to group or others" in cache.notes[0] and "compiling in memory only" in cache.notes[0]
    assert not entry(cache, ".json").exists()
    assert stat.S_IMODE(key.stat().st_mode) == 0o644  # never replaced or "fixed" behind the operator's back


def test_bytes_that_do_not_match_the_digest_are_refused(cache):
    with pytest.raises(SkillLedgerError) as info:
        cache.get("1" * 64, "modules/m.wasm", lambda: DATA)
    assert info.value.code == "trap"


def test_a_component_is_refused_with_a_clear_message(cache):
    from corpus import build

    data = build.COMPONENTS["wordcount_p2"].read_bytes()
    before = eng.cache_stats()["compiles"]
    with pytest.raises(SkillLedgerError) as info:
        cache.get(hashlib.sha256(data).hexdigest(), "modules/p2.wasm", lambda: data)
    assert info.value.code == "capability_denied"
    assert "WebAssembly component" in info.value.message and "WASI preview 1 command" in info.value.message
    assert eng.cache_stats()["compiles"] == before


def test_the_epoch_deadline_is_on_the_monotonic_clock():
    eng.engine()
    now = time.monotonic()
    near, far = eng.deadline_ticks(now + 0.05), eng.deadline_ticks(now + 30.0)
    assert 1 <= near <= int(0.05 / eng.TICK_S) + 2
    assert abs(far - 30.0 / eng.TICK_S) <= 3


# --- facts without compiling, and the memory export -------------------------------------------


def test_facts_are_read_without_compiling(monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled to read facts")

    monkeypatch.setattr(wasmtime.Module, "__init__", no_compile)
    facts = eng.read_facts("modules/m.wasm", DATA)
    assert facts.valid and facts.exports_function("echo") and facts.sha256 == DIGEST
    broken = eng.read_facts("modules/b.wasm", DATA[:-3])
    assert not broken.valid and broken.error


@pytest.mark.parametrize("source", [
    '(module (memory 1) (func (export "f")))',  # an export section, no memory in it
    "(module (memory 1) (func))",  # no export section at all (it goes before the code section)
    '(module (memory 1) (func $s) (start $s) (data (i32.const 0) "x"))',  # before start and data
    "(module (memory 1))",  # nothing after the memory section
])
def test_a_memory_export_is_added_to_a_module_that_exports_none(source):
    data = kit.wasm(source)
    prepared = with_memory_export(data)
    wasmtime.Module.validate(eng.engine(), prepared)
    facts = eng.read_facts("m", prepared)
    assert [(e.name, e.kind) for e in facts.exports if e.kind == "memory"] == [(HOST_MEMORY_EXPORT, "memory")]
    assert [e.name for e in facts.exports if e.kind != "memory"] == [
        e.name for e in eng.read_facts("m", data).exports]


def test_the_host_memory_export_never_clashes_with_a_module_export():
    facts = eng.read_facts("m", kit.wasm(f'(module (memory 1) (func (export "{HOST_MEMORY_EXPORT}")))'))
    assert eng.memory_export_for(facts) == f"{HOST_MEMORY_EXPORT}-2"
    named = eng.read_facts("m", kit.wasm('(module (memory (export "heap") 1))'))
    assert eng.memory_export_for(named) == "heap"  # its own export: no edit
    assert eng.memory_export_for(eng.read_facts("m", kit.wasm("(module)"))) is None


# --- how often a module is compiled (issue 17) ----------------------------------------------------


class CompileCounter:
    """Counts compilations anywhere: in this process (``wasmtime.Module(...)``) and in workers."""

    def __init__(self, monkeypatch) -> None:
        self.in_process = 0
        original = wasmtime.Module.__init__

        def counting(module, *args, **kwargs):
            self.in_process += 1
            original(module, *args, **kwargs)

        monkeypatch.setattr(wasmtime.Module, "__init__", counting)
        self.start = eng.cache_stats()["compiles"]

    def total(self) -> int:
        return self.in_process + eng.cache_stats()["compiles"] - self.start


def new_process() -> None:
    """Forget everything this process remembers (modules, facts, verified artifacts)."""
    from skill_ledger.adapters.audit import inspector
    from skill_ledger.adapters.runner.gate import forget_verified

    eng.clear_memory_cache()
    inspector.clear_cache()
    forget_verified()


def test_the_first_run_compiles_the_module_exactly_once_and_the_second_none(tmp_path, monkeypatch):
    lab = kit.Lab(tmp_path / "home")
    try:
        source = kit.json_module(kit.ECHO_BODY + " (drop (i32.const 17))", name="echo")
        sid = lab.install(source, tools=[("echo", kit.OBJECT, kit.OBJECT)])
        new_process()  # the first run after install, as a new `skills run` process meets it
        counter = CompileCounter(monkeypatch)
        assert lab.run(sid, {"n": 1}, tool="echo").output == {"n": 1}
        assert counter.total() == 1  # before: the inspector's compile (the gate's facts), then the cache's
        assert counter.in_process == 0  # and that one in the bounded worker
        assert lab.run(sid, {"n": 2}, tool="echo").output == {"n": 2}
        new_process()  # from the disk cache
        again = kit.Lab(lab.home)
        try:
            assert again.run(sid, {"n": 3}, tool="echo").output == {"n": 3}
        finally:
            again.close()
        assert counter.total() == 1
    finally:
        lab.close()


def test_a_module_without_an_abi_for_the_tool_is_refused_before_it_is_compiled(cache, monkeypatch):
    """esbuild's module spent 34 + 33 s compiling to be told it implements no runner ABI."""
    from skill_ledger.adapters.runner import abi

    data = kit.wasm('(module (memory (export "memory") 1) (func (export "tool") (param i32)))')
    counter = CompileCounter(monkeypatch)
    with pytest.raises(SkillLedgerError) as info:
        cache.get(hashlib.sha256(data).hexdigest(), "modules/m.wasm", lambda: data,
                  before_compile=lambda facts: abi.plan(facts, "tool", None))
    assert info.value.code == "capability_denied" and "implements no runner ABI" in info.value.message
    assert counter.total() == 0


def test_a_verified_artifact_record_pointing_a_tool_at_another_cached_module_is_never_trusted(tmp_path):
    """The same attack through the gate's record (``cache/verified/<digest>.json``, which maps
    a verified artifact's modules to their digests): pointed at another skill's module that
    is legitimately in the module cache, it swapped the code too. Records are sealed now."""
    import json

    from skill_ledger.adapters.runner import Runner
    from skill_ledger.adapters.runner.gate import forget_verified

    lab = kit.Lab(tmp_path / "home")
    try:
        good, evil = kit.json_module("(call $emit_rc (i32.const 1))"), kit.json_module("(call $emit_rc (i32.const 666))")
        victim, attacker = lab.install(good), lab.install(evil)
        assert (lab.run(victim).output, lab.run(attacker).output) == ({"rc": 1}, {"rc": 666})
        good_digest = hashlib.sha256(kit.wasm(good)).hexdigest()
        evil_digest = hashlib.sha256(kit.wasm(evil)).hexdigest()
        poisoned = 0
        for record in (lab.settings.cache_dir / "verified").glob("*.json"):
            raw = record.read_bytes()
            mac, _, body = raw.partition(b"\n") if raw[:1] != b"{" else (b"", b"", raw)
            if good_digest.encode() in body:
                doc = json.loads(body)
                doc["modules"] = {path: evil_digest for path in doc["modules"]}
                for forged in (mac + b"\n" + json.dumps(doc).encode(), json.dumps(doc).encode()):
                    record.write_bytes(forged)
                    forget_verified()
                    eng.clear_memory_cache()
                    with Runner(lab.settings) as fresh:
                        assert fresh.run(f"{kit.PUBLISHER}.tool", "{}", skill_id=victim).output == {"rc": 1}
                    poisoned += 1
        assert poisoned == 2
    finally:
        lab.close()
