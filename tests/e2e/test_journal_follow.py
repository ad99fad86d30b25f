"""`skills journal --follow`: new events appear as they are appended; Ctrl-C ends it cleanly."""

import json
import select
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import builders as b  # noqa: E402

from skill_ledger.adapters.usecases.install import install  # noqa: E402

SKILLS = str(Path(sys.executable).with_name("skills"))


def first_line(stream, timeout_s: float = 60) -> str:
    """The next line of a subprocess's pipe (a hung subprocess fails the test, not hangs it)."""
    ready, _, _ = select.select([stream], [], [], timeout_s)
    assert ready, f"no line within {timeout_s} s"
    return stream.readline()


def test_follow_prints_events_appended_by_another_process(tmp_path):
    home = tmp_path / "home"
    led = b.ledger(home)
    install(led, b.write(tmp_path, "a.skill", b.artifact()), allow_tofu=True)
    led.close()
    follower = subprocess.Popen([SKILLS, "--home", str(home), "journal", "--follow", "--json", "--kind",
                                 "skill.quarantined"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # It has printed the (empty) backlog; what is appended from now on is followed.
        ready = first_line(follower.stderr)
        assert ready.startswith("following the journal from position 6"), ready
        q = subprocess.run([SKILLS, "--home", str(home), "quarantine", "acme.echo", "--reason", "followed"],
                           capture_output=True, text=True, timeout=60)
        assert q.returncode == 0, q.stderr
        line = first_line(follower.stdout)
        event = json.loads(line)
        assert event["kind"] == "skill.quarantined" and event["data"]["reason"] == "followed"
        assert event["position"] == 7
    finally:
        follower.send_signal(signal.SIGINT)
        try:
            follower.wait(timeout=5)
        except subprocess.TimeoutExpired:
            follower.kill()
            raise
    assert follower.returncode == 0, follower.stderr.read()
