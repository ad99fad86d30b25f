"""The README's main job: `skills demo` tells the whole story and leaves a verifiable journal."""

import json
import subprocess
import sys
from pathlib import Path

SKILLS = Path(sys.executable).with_name("skills")


def test_demo_runs_end_to_end(tmp_path):
    home = tmp_path / "demo"
    r = subprocess.run([str(SKILLS), "demo", "--home", str(home), "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    steps = [s["step"] for s in d["steps"]]
    assert steps[:3] == ["generated a publisher key", "built and signed the example skill",
                         "installed it (publisher key pinned on first use)"]
    outputs = [s.get("output") for s in d["steps"] if s["step"].startswith("ran ")]
    assert {"text": "hello from the demo"} in outputs and {"words": 4} in outputs
    assert any(s["step"] == "run of examples.echo refused: not_active" for s in d["steps"])
    kinds = [e["kind"] for e in d["journal"]]
    assert kinds.count("skill.execution_denied") == 1 and kinds[-1] == "skill.enabled"
    assert [e["status"] for e in d["index"]] == ["active"]
    v = subprocess.run([str(SKILLS), "--home", str(home), "journal", "verify", "--json"], capture_output=True,
                       text=True, timeout=60)
    assert v.returncode == 0 and json.loads(v.stdout)["ok"]


def test_demo_human_output(tmp_path):
    r = subprocess.run([str(SKILLS), "demo", "--home", str(tmp_path / "d")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "==> ran examples.echo" in r.stdout and "the journal (every decision, hash-chained)" in r.stdout


def test_demo_refuses_a_home_that_is_not_empty_unless_forced(tmp_path):
    """Issue 12: `skills demo --home DIR` on an existing journal appended the demo's events to it
    (and pinned a new key for the example publisher)."""
    home = tmp_path / "real"
    home.mkdir()
    (home / "journal.db").write_bytes(b"")  # stands for a real journal: never opened by a refused demo
    r = subprocess.run([str(SKILLS), "demo", "--home", str(home), "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "usage_error" and "is not empty (it holds a journal)" in err["message"]
    assert "--force" in err["message"] and r.stderr.count("\n") == 1
    assert sorted(p.name for p in home.iterdir()) == ["journal.db"] and (home / "journal.db").read_bytes() == b""
    empty = tmp_path / "empty"
    empty.mkdir()
    (home / "journal.db").unlink()
    (home / "notes.txt").write_text("mine")
    forced = subprocess.run([str(SKILLS), "demo", "--home", str(home), "--force", "--json"], capture_output=True,
                            text=True, timeout=120)
    assert forced.returncode == 0, forced.stderr
    assert (home / "notes.txt").read_text() == "mine" and (home / "journal.db").exists()
    r = subprocess.run([str(SKILLS), "demo", "--home", str(empty), "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr  # an empty directory is a fresh home
