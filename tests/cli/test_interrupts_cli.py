"""Long work shows progress, Ctrl-C is clean (issue 12): exit 130 with what state was left,
temporary files removed; a reader that goes away is not an error; progress bars on a terminal
only (stderr, never with --json)."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import builders as b
import pytest
from clikit import Skills

from skill_ledger.cli import output
from skill_ledger.cli.commands import index as index_command

SKILLS = str(Path(sys.executable).with_name("skills"))
READ_SYSCALL = {"x86_64": 0, "aarch64": 63}[os.uname().machine]


@pytest.fixture
def skills(tmp_path):
    s = Skills(tmp_path)
    assert s.install().exit_code == 0
    return s


def leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir() if ".rebuild" in p.name and not p.name.endswith("rebuild-lock"))


# --- Ctrl-C ----------------------------------------------------------------------------------------


def test_an_interrupted_index_rebuild_exits_130_keeps_the_views_and_removes_its_files(skills, monkeypatch):
    before = skills("list", "--json").stdout

    @contextlib.contextmanager
    def interrupting_bar(total, label, **_kw):
        def update(n):
            assert (skills.home / "views.db.rebuild").exists()  # the half-built replay exists at this point
            raise KeyboardInterrupt

        yield update

    monkeypatch.setattr(index_command, "progress_bar", interrupting_bar)
    r = skills("index", "rebuild")
    assert r.exit_code == 130, r.output
    assert r.stderr.strip().splitlines()[-1] == ("interrupted: the live views are as they were before the rebuild, "
                                                 "and its temporary files were removed; run it again to rebuild")
    assert "Aborted!" not in r.output
    assert leftovers(skills.home) == []
    after = skills("list", "--json")
    assert after.stdout == before and "notice" not in after.stderr


def test_an_interrupted_sharded_rebuild_removes_every_shard_file(skills):
    from skill_ledger.adapters.readmodel.rebuild import SubprocessShards, rebuild_views
    from skill_ledger.adapters.readmodel.views import open_store
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

    for n in range(3):
        assert skills.install(f"s{n}.skill", skill_id=f"acme.s{n}").exit_code == 0
    ledger = Ledger(b.settings(skills.home))
    store = open_store(ledger.settings.views_path)
    try:
        def interrupt(_n):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            rebuild_views(store, ledger.app.recorder, progress=interrupt, shards=SubprocessShards(ledger.settings, 3),
                          min_events=1)
    finally:
        store.close()
        ledger.close()
    assert leftovers(skills.home) == []


def _wait_until_reading_stdin(pid: int) -> None:
    """Until the process is blocked in read(0, ...): then SIGINT reaches Python's own handler."""
    path = Path(f"/proc/{pid}/syscall")
    for _ in range(6000):
        fields = path.read_text().split()
        if len(fields) > 1 and fields[0] == str(READ_SYSCALL) and int(fields[1], 16) == 0:
            return
        time.sleep(0.01)
    raise AssertionError("the command never waited on its input")


def test_ctrl_c_during_a_command_exits_130_and_says_so(skills):
    env = {**os.environ, "SKILLS_HOME": str(skills.home)}
    p = subprocess.Popen([SKILLS, "run", "acme.echo", "--input-file", "-"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        _wait_until_reading_stdin(p.pid)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted: ") and "Traceback" not in err and out == ""


# --- a reader that goes away -----------------------------------------------------------------------


@pytest.mark.parametrize("args", [["journal"], ["journal", "--json"], ["history", "acme.echo"], ["list", "--json"]])
def test_a_closed_pipe_on_stdout_exits_quietly(skills, args):
    """`skills journal | head`: the reader is gone before the command writes; exit 0, nothing on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "SKILLS_HOME": str(skills.home)}
    p = subprocess.run([SKILLS, *args], stdout=write_end, stderr=subprocess.PIPE, env=env, text=True, timeout=60)
    os.close(write_end)
    assert (p.returncode, p.stderr) == (0, "")


def test_head_on_the_journal_through_a_shell(skills):
    for n in range(3):
        assert skills("policy", "set", f"max_instances={n + 2}", "--reason", "grow the journal").exit_code == 0
    env = {**os.environ, "SKILLS_HOME": str(skills.home)}
    p = subprocess.run(["bash", "-c", f"set -o pipefail; '{SKILLS}' journal | head -n 1"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("#1") and p.stderr == ""


# --- progress bars ---------------------------------------------------------------------------------


def _as_terminal(monkeypatch):
    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
    monkeypatch.setattr(output, "stderr_is_tty", lambda: True)


def _stale_views(skills):
    for p in skills.home.glob("views.db*"):
        p.unlink()


def test_a_long_catch_up_shows_a_bar_on_a_terminal_only(skills, monkeypatch):
    monkeypatch.setattr(output, "CATCH_UP_BAR_FROM", 5)  # "long": the journal here has 6 events
    _stale_views(skills)
    r = skills("list")
    assert "Catching up with the journal" not in r.stderr  # not a terminal
    _as_terminal(monkeypatch)
    _stale_views(skills)
    assert "Catching up with the journal" in skills("list").stderr
    _stale_views(skills)
    r = skills("list", "--json")
    assert "Catching up" not in r.stderr and json.loads(r.stdout)["count"] == 1
    _stale_views(skills)
    assert "Catching up" in skills("history", "acme.echo").stderr


def test_a_short_catch_up_shows_no_bar(skills, monkeypatch):
    _as_terminal(monkeypatch)
    _stale_views(skills)
    assert output.CATCH_UP_BAR_FROM > 6
    assert "Catching up" not in skills("list").stderr


def _on_a_terminal(args: list[str], home: Path) -> str:
    """Run ``skills ARGS`` with stdout and stderr on a pseudo-terminal; everything it wrote."""
    master, slave = pty.openpty()
    env = {**os.environ, "SKILLS_HOME": str(home), "COLUMNS": "100"}
    p = subprocess.Popen([SKILLS, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            p.kill()
            raise AssertionError("no output from the command")
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert p.wait(timeout=60) == 0
    return b"".join(chunks).decode("utf-8", "replace")


def test_index_verify_shows_a_bar_on_a_real_terminal_and_none_with_json(skills):
    text = _on_a_terminal(["index", "verify"], skills.home)
    assert "Replaying journal to compare" in text and "projections match a fresh replay" in text
    text = _on_a_terminal(["index", "verify", "--json"], skills.home)
    assert "Replaying" not in text and '"ok": true' in text
