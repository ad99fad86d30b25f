"""Storage paths and files, the secret store, and storage/secrets through the runner."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runner_kit as kit  # noqa: E402

from skill_ledger.adapters.runner import storage  # noqa: E402
from skill_ledger.adapters.storage.secrets import SecretStore  # noqa: E402
from skill_ledger.domain.errors import SkillLedgerError  # noqa: E402

# --- paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw,rc", [
    ("", storage.INVALID), ("/etc/passwd", storage.DENIED), ("a/../b", storage.DENIED), ("./a", storage.DENIED),
    ("a//b", storage.DENIED), ("a\\b", storage.DENIED), ("a\x00b", storage.DENIED), ("..", storage.DENIED),
])
def test_bad_paths(raw, rc):
    with pytest.raises(storage.StorageError) as info:
        storage.split_path(raw)
    assert info.value.rc == rc


def test_roots_contain_paths_strictly():
    assert storage.under_roots(["notes", "a.txt"], ["notes"])
    assert storage.under_roots(["skills", "data", "x"], ["skills/data"])
    assert not storage.under_roots(["notes"], ["notes"])  # the root itself is not a file in it
    assert not storage.under_roots(["notesx", "a"], ["notes"])
    assert not storage.under_roots(["other", "a"], ["notes"])
    assert storage.under_roots(["cache-1", "a"], ["cache-*"])


@pytest.fixture
def top(tmp_path):
    fd = storage.skill_dir_fd(tmp_path / "data", "acme.x")
    yield fd
    os.close(fd)


def test_write_then_read_creates_private_directories(top, tmp_path):
    storage.write_file(top, ["out", "deep", "f.json"], b"{}")
    assert storage.read_file(top, ["out", "deep", "f.json"], 10) == b"{}"
    base = tmp_path / "data" / "acme.x"
    assert stat.S_IMODE((base / "out").stat().st_mode) == 0o700
    assert stat.S_IMODE((base / "out" / "deep" / "f.json").stat().st_mode) == 0o600
    with pytest.raises(storage.StorageError) as info:
        storage.read_file(top, ["out", "deep", "f.json"], 1)
    assert info.value.rc == storage.TOO_LARGE


def test_a_fifo_is_refused_without_blocking(top, tmp_path):
    os.mkfifo(tmp_path / "data" / "acme.x" / "pipe")
    done = threading.Event()

    def attempt():
        with pytest.raises(storage.StorageError):
            storage.read_file(top, ["pipe"], 10)
        done.set()

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    assert done.wait(2)


def test_writing_through_a_symlink_is_refused(top, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    os.symlink(outside, tmp_path / "data" / "acme.x" / "link")
    with pytest.raises(storage.StorageError) as info:
        storage.write_file(top, ["link"], b"overwritten")
    assert info.value.rc == storage.DENIED
    assert outside.read_text() == "keep"


def test_a_symlinked_skill_directory_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "data" / "acme.y")
    with pytest.raises(OSError):
        storage.skill_dir_fd(tmp_path / "data", "acme.y")


# --- the secret store ------------------------------------------------------------------------


def test_secret_store_round_trip_and_mode(tmp_path):
    s = SecretStore(tmp_path / "home" / "secrets.json")
    assert s.names() == [] and s.get("global", "k") is None
    assert s.set("global", "k", "v1") is False
    assert s.set("global", "k", "v2") is True
    s.set("skill:acme.x", "token", "t")
    assert s.names() == [("global", "k"), ("skill:acme.x", "token")]
    assert s.get("global", "k") == "v2"
    assert stat.S_IMODE(s.path.stat().st_mode) == 0o600
    assert s.remove("global", "k") is True and s.remove("global", "k") is False
    assert s.names() == [("skill:acme.x", "token")]


def test_secret_store_refuses_a_readable_file_without_showing_it(tmp_path):
    s = SecretStore(tmp_path / "secrets.json")
    s.set("global", "k", "hush-hush")
    os.chmod(s.path, 0o644)
    with pytest.raises(SkillLedgerError) as info:
        s.get("global", "k")
    assert info.value.code == "configuration_error" and "chmod 600" in info.value.message
    s.path.write_text("{not json hush-hush")
    os.chmod(s.path, 0o600)
    with pytest.raises(SkillLedgerError) as info:
        s.names()
    assert "hush-hush" not in str(info.value.to_dict())


@pytest.mark.parametrize("scope,key", [("nope", "k"), ("global", ""), ("skill:", "k"), ("global", "a/b")])
def test_secret_names_follow_the_manifest_grammar(tmp_path, scope, key):
    with pytest.raises(SkillLedgerError) as info:
        SecretStore(tmp_path / "secrets.json").set(scope, key, "v")
    assert info.value.code == "usage_error"


# --- through the runner ----------------------------------------------------------------------


@pytest.fixture
def lab(tmp_path):
    lab = kit.Lab(tmp_path / "home")
    yield lab
    lab.close()


def test_storage_write_then_read_through_the_runner(lab):
    write = kit.json_module(
        "(call $emit_rc (call $storage_write (local.get $ptr) (local.get $len) (i32.const 700) (i32.const 9)))",
        imports=[kit.IMPORT_WRITE], extra='(data (i32.const 700) "{\\"n\\": 42}")')
    read = kit.json_module(
        """(local $n i32)
        (local.set $n (call $storage_read (local.get $ptr) (local.get $len) (i32.const 8192) (i32.const 64)))
        (if (result i64) (i32.lt_s (local.get $n) (i32.const 0)) (then (call $emit_rc (local.get $n)))
          (else (i64.or (i64.shl (i64.const 8192) (i64.const 32)) (i64.extend_i32_u (local.get $n)))))""",
        imports=[kit.IMPORT_READ], name="get")
    sid = lab.install({"w.wasm": write, "r.wasm": read}, tools=[("tool", kit.ANY, kit.ANY), ("get", kit.ANY, kit.ANY)],
                      write_roots=["state"], default_module_path="modules/w.wasm")
    assert lab.run(sid, {"path": "state/n.json"}).output == {"rc": 9}
    assert lab.run(sid, {"path": "state/n.json"}, tool="get").output == {"n": 42}
    assert (lab.settings.data_dir / sid / "state" / "n.json").read_text() == '{"n": 42}'
    assert lab.run(sid, {"path": "state/missing.json"}, tool="get").output == {"rc": -2}


def test_wasi_command_sees_its_read_root_read_only(lab):
    # path_open "f.txt" relative to fd 3 (the only preopen), read it to stdout; then try to create g.txt
    body = """
      (local $fd i32)
      (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 5) (i32.const 0)
                              (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 200)))
      (local.set $fd (i32.load (i32.const 200)))
      (i32.store (i32.const 16) (i32.const 1024)) (i32.store (i32.const 20) (i32.const 100))
      (drop (call $fd_read (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24)))
      (drop (call $write (i32.const 1) (i32.const 1024) (i32.load (i32.const 24))))
      (drop (call $write (i32.const 2) (i32.const 110) (i32.const 1)))
      (i32.store8 (i32.const 300)
        (i32.add (i32.const 48) (call $path_open (i32.const 3) (i32.const 0) (i32.const 110) (i32.const 5)
                                 (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 204))))
      (drop (call $write (i32.const 2) (i32.const 300) (i32.const 1)))"""
    source = kit.wasi_module(body, imports=[
        f'(import "{kit.WASI}" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) '
        "(result i32)))"], extra='(data (i32.const 100) "f.txt") (data (i32.const 110) "g.txt")')
    sid = lab.install(source, read_roots=["in"])
    root = lab.settings.data_dir / sid / "in"
    root.mkdir(parents=True)
    (root / "f.txt").write_text('{"from": "file"}')
    result = lab.run(sid)
    assert result.output == {"from": "file"}
    assert not (root / "g.txt").exists()  # read-only preopen: creating a file failed
    # stderr: "g", then 48 + the errno of the create attempt: 63 (EPERM) -> "o"
    assert result.log == [{"source": "stderr", "level": "info", "message": "g" + chr(48 + 63)}]


# --- redaction runs before anything is cut (issue 10) ---------------------------------------------

SECRET = "S3CRET-value-0123456789-abcdef"


def leaked(text: str) -> bool:
    """Whether any 6 consecutive characters of the secret appear (a cut-off part of it)."""
    return any(SECRET[i:i + 6] in text for i in range(len(SECRET) - 5))


def secret_lab(lab) -> None:
    SecretStore(lab.settings.secrets_path).set("skill:acme.leak", "token", SECRET)


NAME = "skill:acme.leak/token"
GET_SECRET = (f'(call $secret_get (i32.const 700) (i32.const {len(NAME)}) (i32.const {{at}}) (i32.const 1024))')


def test_a_secret_at_the_cut_of_an_output_schema_error_is_redacted_before_the_cut(lab):
    """The error message is cut to 300 characters; today the secret was redacted after the
    cut, so its first characters showed. The output is the string ``"aaa...<secret>"``."""
    filler = 290
    body = f"""(local $n i32)
      (local.set $n {GET_SECRET.format(at=2048 + 1 + filler)})
      (i32.store8 (i32.add (i32.const {2048 + 1 + filler}) (local.get $n)) (i32.const 34))
      (i64.or (i64.shl (i64.const 2048) (i64.const 32))
              (i64.extend_i32_u (i32.add (local.get $n) (i32.const {filler + 2}))))"""
    source = kit.json_module(body, imports=[kit.IMPORT_SECRET],
                             extra=f'(data (i32.const 700) "{NAME}") (data (i32.const 2048) "\\"{"a" * filler}")')
    secret_lab(lab)
    sid = lab.install(source, tools=[("tool", kit.ANY, {"type": "integer"})], secrets={"skill:acme.leak": ["token"]},
                      skill_id="acme.leak")
    with pytest.raises(SkillLedgerError) as info:
        lab.run(sid)
    err = info.value
    assert err.code == "invalid_output" and "a" * 200 + "[redac" in err.message  # redacted, then cut
    assert not leaked(repr(err.to_dict()))


def test_a_secret_at_the_cut_of_a_guest_log_message_leaves_no_part_of_it(lab):
    from skill_ledger.adapters.runner import Runner
    from skill_ledger.adapters.runner.limits import RunLimits

    body = f"""(local $n i32)
      (local.set $n {GET_SECRET.format(at=2048 + 60)})
      (call $log (i32.const 2) (i32.const 2048) (i32.add (local.get $n) (i32.const 60)))
      (call $emit_rc (local.get $n))"""
    source = kit.json_module(body, imports=[kit.IMPORT_LOG, kit.IMPORT_SECRET],
                             extra=f'(data (i32.const 700) "{NAME}") (data (i32.const 2048) "{"l" * 60}")')
    secret_lab(lab)
    sid = lab.install(source, secrets={"skill:acme.leak": ["token"]},
                      skill_id="acme.leak")
    runner = Runner(lab.settings, limits=RunLimits(log_message_max_bytes=70))  # the secret straddles the cut
    try:
        result = runner.run(f"{kit.PUBLISHER}.tool", "{}", skill_id=sid)
    finally:
        runner.close()
    assert result.output == {"rc": len(SECRET)}
    message = result.log[0]["message"]
    assert message.startswith("l" * 30) and "bytes truncated" in message
    assert not leaked(repr(result))


def test_a_secret_cut_by_the_stderr_tail_leaves_no_part_of_it_in_the_error(lab):
    """A failing WASI command's error quotes the end of its stderr; the secret it wrote
    straddles where that tail begins."""
    body = f"""(local $n i32)
      (local.set $n {GET_SECRET.format(at=4096)})
      (drop (call $write (i32.const 2) (i32.const 4096) (local.get $n)))
      (memory.fill (i32.const 8192) (i32.const 120) (i32.const 2040))
      (drop (call $write (i32.const 2) (i32.const 8192) (i32.const 2040)))
      (call $proc_exit (i32.const 1))"""
    source = kit.wasi_module(body, imports=[kit.IMPORT_SECRET], extra=f'(data (i32.const 700) "{NAME}")')
    secret_lab(lab)
    sid = lab.install(source, secrets={"skill:acme.leak": ["token"]},
                      skill_id="acme.leak")
    with pytest.raises(SkillLedgerError) as info:
        lab.run(sid)
    err = info.value.to_dict()
    assert err["code"] == "nonzero_exit_status" and err["details"]["exit_code"] == 1
    assert err["details"]["stderr"].endswith("x" * 100)
    assert any(e["source"] == "stderr" and e["message"].startswith("[redacted]") for e in err["details"]["log"])
    assert not leaked(repr(err))
