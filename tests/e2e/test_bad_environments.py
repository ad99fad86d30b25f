"""Bad environments get clear errors, and auditors can read a copy.

* ``SKILLS_HOME`` (or ``--home``) naming a file, or a path below one: every command that needs
  the home says so (``configuration_error``, exit 2), never a traceback.
* A read-only home, such as an evidence copy on read-only media: every read command, ``journal
  verify`` and ``run`` work and print what they print on the writable original; a write is a
  ``storage_error`` (exit 1). The home is put on a real read-only file system: a tmpfs mounted
  in a private mount namespace (``unshare``; as root, or as a user through a user namespace), so
  nothing is left mounted whatever happens to the test.
* A full disk (a small tmpfs, in the same way): an append that does not fit is a
  ``storage_error`` (exit 1, nothing recorded), and the next read works.
* ``journal.db``, ``views.db`` and their WAL files are private (0600).

This file is also its own driver inside the namespace: ``python test_bad_environments.py in-mount
SPEC OUT`` mounts, runs the steps of SPEC and writes what each printed to OUT.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
for _p in (str(HERE.parents[2]), str(HERE.parents[1])):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def _in_mount(spec_path: str, out_path: str) -> None:
    """Inside a private mount namespace: a tmpfs at ``spec["mount"]``, then the steps."""
    import helpers_ledger as h

    spec = json.loads(Path(spec_path).read_text())
    mnt = Path(spec["mount"])
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={spec.get('size', '64m')},mode=0700", "tmpfs", str(mnt)],
                   check=True)
    results = []
    for step in spec["steps"]:
        if "copy" in step:
            shutil.copytree(step["copy"], mnt / step["to"], symlinks=True)
        elif "remount_ro" in step:
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        elif "fill" in step:  # take all the space there is, then give back what the step says
            fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while os.write(fd, b"\0" * 4096):
                    pass
            except OSError:  # ENOSPC: the disk is full
                pass
            os.ftruncate(fd, max(0, os.fstat(fd).st_size - step["fill"]))
            os.close(fd)
        elif "free" in step:
            (mnt / "filler").unlink()
        else:
            proc = h.run_cli(*step["cli"], home=mnt / step.get("home", "home"))
            results.append({"cli": step["cli"], "rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr})
    Path(out_path).write_text(json.dumps(results))


if __name__ == "__main__":
    if sys.argv[1] == "in-mount":
        _in_mount(sys.argv[2], sys.argv[3])
    sys.exit(0)


import helpers_ledger as h  # noqa: E402
import pytest  # noqa: E402

from skill_ledger.adapters.usecases import lifecycle  # noqa: E402
from skill_ledger.adapters.usecases.install import install  # noqa: E402


def in_mount(tmp_path: Path, steps: list[dict[str, Any]], *, size: str = "64m") -> list[dict[str, Any]]:
    """Run ``steps`` in a private mount namespace over a tmpfs at ``tmp_path/mnt``; every CLI
    step's {cli, rc, stdout, stderr}."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    spec, out = tmp_path / "spec.json", tmp_path / "out.json"
    spec.write_text(json.dumps({"mount": str(mnt), "size": size, "steps": steps}))
    namespace = ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--user", "--map-root-user"])
    proc = subprocess.run([*namespace, h.PYTHON, str(HERE), "in-mount", str(spec), str(out)], capture_output=True,
                          text=True, timeout=600, env=h.cli_env())
    assert proc.returncode == 0 and out.exists(), (
        f"cannot run in a private mount namespace (unshare and mount are needed): {proc.stderr}")
    results = json.loads(out.read_text())
    for r in results:
        assert "Traceback" not in r["stderr"], r
    return results


def populate(home: Path, early_views: Path | None = None) -> None:
    """Two installs and a quarantine (13 events), views caught up. ``early_views``: where to keep
    a copy of the views as they were after the first install (views behind the journal)."""
    ledger = h.ledger_for(home)
    try:
        install(ledger, "/a", data=h.build("acme.alpha", "1.0.0", "acme"), allow_tofu=True)
        if early_views is not None:
            h.catch_up(ledger)
            source, target = sqlite3.connect(home / "views.db"), sqlite3.connect(early_views)
            source.backup(target)
            source.close()
            target.close()
        install(ledger, "/g", data=h.build("globex.gamma", "1.0.0", "globex"), allow_tofu=True)
        lifecycle.quarantine(ledger, "globex.gamma", None, "looks odd")
        h.catch_up(ledger)
    finally:
        ledger.close()


# --- a home that is not a directory -------------------------------------------------------

COMMANDS = [["list"], ["info", "acme.alpha"], ["history", "acme.alpha"], ["check"], ["run", "acme.echo"],
            ["trust", "list"], ["journal", "verify"], ["journal"], ["demo"]]


@pytest.mark.parametrize("below", [False, True], ids=["the_file", "below_the_file"])
@pytest.mark.parametrize("how", ["SKILLS_HOME", "--home"])
def test_a_home_that_is_a_file_is_a_configuration_error(tmp_path: Path, below: bool, how: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n")
    home = afile / "sub" if below else afile
    # ``demo`` makes a fresh temporary home unless --home names one: SKILLS_HOME is not its home.
    for args in COMMANDS if how == "--home" else [c for c in COMMANDS if c != ["demo"]]:
        if how == "--home":
            proc = subprocess.run([*h.SKILLS, "--home", str(home), *args], capture_output=True, text=True,
                                  env=h.cli_env(), timeout=120, cwd=str(h.ROOT))
        else:
            proc = subprocess.run([*h.SKILLS, *args], capture_output=True, text=True, timeout=120,
                                  env=h.cli_env(SKILLS_HOME=str(home)), cwd=str(h.ROOT))
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith("error[configuration_error]: the home "), (args, proc.stderr)
        assert str(afile) in proc.stderr and "not a directory" in proc.stderr
    assert afile.read_text() == "not a directory\n"


# --- a read-only home -----------------------------------------------------------------------

# ``index status`` first: it shows where the views stand without catching them up.
READS = [["index", "status"], ["list"], ["--json", "list"], ["info", "acme.alpha"], ["--json", "info", "globex.gamma"],
         ["history", "acme.alpha"], ["check"], ["trust", "list"], ["search", "echo"], ["journal"],
         ["--json", "journal"], ["journal", "verify"], ["index", "verify"],
         ["list", "--as-of", "8"], ["index", "export", "--format", "palyra"], ["run", "acme.echo", "--input", "{}"]]


def comparable(args: list[str], text: str) -> str:
    """Output that depends on the moment it was made, blanked: the runner's duration and the
    export's time of writing."""
    import re

    if args[0] == "run":
        text = re.sub(r"duration\s+\S+ ms", "duration", text)
    if "export" in args:
        text = re.sub(r'"updated_at_unix_ms": \d+', '"updated_at_unix_ms": 0', text)
    return text


@pytest.mark.parametrize("variant", ["views_at_head", "views_behind", "no_views", "wal_without_shm"])
def test_every_read_works_on_a_read_only_home(tmp_path: Path, variant: str) -> None:
    """An evidence copy on read-only media, in four states: its views at the journal's head,
    behind it, missing, and a journal whose last events are still in its write-ahead log (copied
    while a process had it open) without the ``-shm`` file SQLite would need to read it in place.
    Each read prints what it prints on a writable copy of the same home."""
    home = tmp_path / "home"
    early = tmp_path / "views-early.db"
    populate(home, early if variant == "views_behind" else None)
    copy = tmp_path / "copy"
    if variant == "wal_without_shm":
        holder = sqlite3.connect(home / "journal.db")  # keeps the WAL from being checkpointed away
        holder.execute("PRAGMA wal_autocheckpoint = 0")
        holder.execute("SELECT count(*) FROM stored_events").fetchone()
        proc = h.run_cli("trust", "allow", "initech", h.key_hex(h.SEEDS["rogue"]), "--reason", "in the log only",
                         home=home)
        assert proc.returncode == 0, proc.stderr
        shutil.copytree(home, copy)
        holder.close()
        assert (copy / "journal.db-wal").stat().st_size > 0
        (copy / "journal.db-shm").unlink()
    else:
        shutil.copytree(home, copy)
    if variant == "views_behind":
        for suffix in ("-wal", "-shm"):
            Path(f"{copy / 'views.db'}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(early, copy / "views.db")
    if variant == "no_views":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy / 'views.db'}{suffix}").unlink(missing_ok=True)
    writable = tmp_path / "writable"
    shutil.copytree(copy, writable)
    expected = {}
    for args in READS:
        proc = h.run_cli(*args, home=writable)
        assert proc.returncode == 0, (args, proc.stderr)
        expected[tuple(args)] = comparable(args, proc.stdout)
    steps = [{"copy": str(copy), "to": "home"}, {"remount_ro": True}, *({"cli": args} for args in READS)]
    for r in in_mount(tmp_path, steps):
        args = r["cli"]
        assert r["rc"] == 0, (args, r["stderr"])
        assert comparable(args, r["stdout"]) == expected[tuple(args)], args


def test_writes_on_a_read_only_home_are_storage_errors(tmp_path: Path) -> None:
    home = tmp_path / "home"
    populate(home)
    artifact = h.write(tmp_path, "beta.palyra-skill", h.build("acme.beta", "1.0.0", "acme"))
    steps = [{"copy": str(home), "to": "home"}, {"remount_ro": True},
             {"cli": ["quarantine", "acme.alpha", "--reason", "on read-only media"]},
             {"cli": ["trust", "revoke", "acme", h.key_hex(h.SEEDS["acme"]), "--reason", "x"]},
             {"cli": ["install", "--artifact", artifact, "--allow-tofu"]},
             {"cli": ["index", "rebuild"]},
             {"cli": ["--json", "list"]}]
    results = in_mount(tmp_path, steps)
    for r in results[:-1]:
        assert r["rc"] == 1, r
        assert "error[storage_error]" in r["stderr"] or "error[io]" in r["stderr"], r
    assert results[-1]["rc"] == 0
    assert [v["status"] for v in json.loads(results[-1]["stdout"])["entries"]] == ["active", "quarantined"]


# --- a full disk ----------------------------------------------------------------------------


@pytest.mark.parametrize("room", [0, 48 * 1024], ids=["no_room_at_all", "room_for_the_wal_index_only"])
def test_a_full_disk_is_a_storage_error_and_the_next_read_works(tmp_path: Path, room: int) -> None:
    """A journal append that does not fit is ``storage_error`` (exit 1, not the exit 9 of a
    damaged journal) and records nothing; reads go on working while the disk is full, and once
    space is freed the same command succeeds. ``room``: bytes left free (with none at all SQLite
    cannot even make the journal's ``-shm`` file; the journal is then read without it)."""
    home = tmp_path / "home"
    populate(home)
    steps = [{"copy": str(home), "to": "home"}, {"fill": room},
             {"cli": ["enable", "globex.gamma", "--reason", "disk full"]},
             {"cli": ["--json", "list"]},
             {"cli": ["journal", "verify"]},
             {"cli": ["history", "globex.gamma"]},
             {"free": True},
             {"cli": ["enable", "globex.gamma", "--reason", "space freed"]},
             {"cli": ["--json", "list"]},
             {"cli": ["journal", "verify"]}]
    full_enable, full_list, full_verify, full_history, enable, listed, verified = in_mount(tmp_path, steps, size="4m")
    assert full_enable["rc"] == 1, full_enable
    assert full_enable["stderr"].splitlines()[-1].startswith("error[storage_error]: "), full_enable["stderr"]
    assert "rollback" not in full_enable["stderr"]
    for r in (full_list, full_verify, full_history):
        assert r["rc"] == 0, r
    assert [v["status"] for v in json.loads(full_list["stdout"])["entries"]] == ["active", "quarantined"]
    assert "enabled" not in full_history["stdout"]
    assert enable["rc"] == 0, enable
    assert [v["status"] for v in json.loads(listed["stdout"])["entries"]] == ["active", "active"]
    assert verified["rc"] == 0 and "journal ok: 16 events" in verified["stdout"], verified


# --- private files --------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_journal_and_views_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    old_umask = os.umask(0o022)  # what a login shell usually has
    try:
        artifact = h.write(tmp_path, "alpha.palyra-skill", h.build("acme.alpha", "1.0.0", "acme"))
        assert h.run_cli("install", "--artifact", artifact, "--allow-tofu", home=home).returncode == 0
        assert mode(home / "journal.db") == 0o600 and mode(home / "views.db") == 0o600
        # While a connection keeps them, the write-ahead files exist: SQLite makes them like their database.
        holders = [sqlite3.connect(home / name) for name in ("journal.db", "views.db")]
        for con in holders:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        assert h.run_cli("quarantine", "acme.alpha", "--reason", "x", home=home).returncode == 0
        for name in ("journal.db-wal", "journal.db-shm", "views.db-wal", "views.db-shm"):
            assert mode(home / name) == 0o600, name
        for con in holders:
            con.close()
        # Files an older version left readable to others are tightened when next opened.
        for name in ("journal.db", "views.db"):
            os.chmod(home / name, 0o644)
        assert h.run_cli("list", home=home).returncode == 0
        assert mode(home / "journal.db") == 0o600 and mode(home / "views.db") == 0o600
        # An index rebuild swaps in a new views file: private too, from the moment it is swapped in.
        assert h.run_cli("index", "rebuild", home=home).returncode == 0
        assert mode(home / "views.db") == 0o600
    finally:
        os.umask(old_umask)
