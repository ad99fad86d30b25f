"""``skills reaudit --watch`` as a service manager runs it: a real subprocess, its stdout read line
by line (one log line per pass), stopped with SIGTERM or SIGINT."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers_audit as h  # noqa: E402

PASS_LINE = re.compile(r"^\S+ reaudit pass (\d+): checked (\d+), passed (\d+), quarantined (.+), [0-9.]+ ms$")


WAITING = "reaudit: watching; next pass in"  # stderr, after each pass, just before the loop sleeps


class Watch:
    """A ``skills reaudit`` process whose stdout and stderr lines arrive on queues, so a test
    waits for what the process says (a pass line, the notice that it is waiting) instead of
    sleeping for a fixed time."""

    def __init__(self, home: Path, *args: str) -> None:
        argv = [str(h.SKILLS), "--home", str(home), "reaudit", *args]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=h.cli_env())
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.err_lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.err_seen: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(stream, q), daemon=True)
                        for stream, q in ((self.proc.stdout, self.lines), (self.proc.stderr, self.err_lines))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, q: queue.Queue[str | None]) -> None:
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)

    def next_line(self, timeout: float = 15) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"no output line within {timeout}s; so far {self.seen}") from None
        if line is None:
            raise AssertionError(f"process ended (rc={self.proc.wait()}) after {self.seen}; "
                                 f"stderr: {self.stderr()}")
        self.seen.append(line)
        return line

    def wait_for_notice(self, text: str, timeout: float = 15) -> str | None:
        """The next stderr line containing ``text``; None when the process ended without one."""
        while True:
            try:
                line = self.err_lines.get(timeout=timeout)
            except queue.Empty:
                self.kill()
                raise AssertionError(f"no {text!r} on stderr within {timeout}s; so far {self.err_seen}") from None
            if line is None:
                return None
            self.err_seen.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 15) -> tuple[int, list[str], str]:
        """Wait for exit; returns (rc, every stdout line, stderr)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running after {timeout}s; output {self.seen}") from None
        for reader in self.readers:
            reader.join(5)
        self.seen += _drain(self.lines)
        return rc, self.seen, self.stderr()

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "\n".join(self.err_seen)
        for reader in self.readers:
            reader.join(5)
        self.err_seen += _drain(self.err_lines)
        return "\n".join(self.err_seen)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _drain(q: queue.Queue[str | None]) -> list[str]:
    out = []
    while not q.empty():
        line = q.get_nowait()
        if line is not None:
            out.append(line)
    return out


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    h.install(home, h.artifact("acme.watched", salt=1))
    h.install(home, h.artifact("acme.other", salt=2))
    return home


def _pass(line: str) -> tuple[int, int, int, str]:
    m = PASS_LINE.match(line)
    assert m, f"not a pass log line: {line!r}"
    return int(m[1]), int(m[2]), int(m[3]), m[4]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_watch_runs_passes_every_interval_and_stops_on_a_signal(home: Path, sig: signal.Signals) -> None:
    with h.ledger(home) as lg:
        digest = lg.skill("acme.watched").installed().artifact_sha256
    w = Watch(home, "--watch", "--interval", "1s")
    try:
        first = w.next_line()
        t1 = time.monotonic()
        assert _pass(first) == (1, 2, 2, "none")
        h.tamper(home, digest, "delete")  # between two passes: the second one must see it
        second = w.next_line()
        assert time.monotonic() - t1 >= 0.8, "the second pass did not wait for the interval"
        assert _pass(second) == (2, 2, 1, "acme.watched 1.0.0 (artifact_missing)")
        assert w.wait_for_notice(WAITING) == f"{WAITING} 1s"  # waiting for the third pass
        sent = time.monotonic()
        w.proc.send_signal(sig)
        rc, lines, err = w.finish()
        assert time.monotonic() - sent < 1.0, "did not stop within a second"
    finally:
        w.kill()
    assert rc == 0, err
    assert lines == [first, second], "one log line per pass, nothing else on stdout"
    assert "stopped after 2 pass(es)" in err and "Traceback" not in err
    assert h.entry(home, "acme.watched")["status_reason_code"] == "artifact_missing"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_interrupts_a_long_interval_at_once(home: Path, sig: signal.Signals) -> None:
    """With ``--interval 1h`` the loop is sleeping when the signal arrives: it must wake up."""
    w = Watch(home, "--watch", "--interval", "1h")
    try:
        line = w.next_line()
        assert _pass(line)[0] == 1
        assert w.wait_for_notice(WAITING) == f"{WAITING} 1h"  # it is waiting, not finishing the pass
        sent = time.monotonic()
        w.proc.send_signal(sig)
        rc, lines, err = w.finish(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        w.kill()
    assert rc == 0, err
    assert elapsed < 1.0, f"took {elapsed:.2f}s to stop"
    assert lines == [line]
    assert "stopped after 1 pass(es)" in err


def test_interval_zero_runs_once_and_exits(home: Path) -> None:
    w = Watch(home, "--watch", "--interval", "0")
    rc, lines, err = w.finish(timeout=20)
    assert rc == 0, err
    assert len(lines) == 1 and _pass(lines[0])[:3] == (1, 2, 2)


def test_max_runs_stops_after_n_passes_with_json_lines(home: Path) -> None:
    started = time.monotonic()
    w = Watch(home, "--json", "--watch", "--interval", "1s", "--max-runs", "3")
    rc, lines, err = w.finish(timeout=30)
    assert rc == 0, err
    assert time.monotonic() - started >= 1.8  # two 1 s waits between three passes
    docs = [json.loads(line) for line in lines]
    assert [d["pass"] for d in docs] == [1, 2, 3]
    assert all(d["checked"] == 2 and d["passed"] == 2 and d["quarantined"] == [] for d in docs)
    assert [d["positions"] for d in docs] == [[], [], []]


@pytest.mark.parametrize("interval", ["1.5s", "-1", "abc", "5x", "1h30m", "", "10 s", "s", "1w"])
def test_a_bad_interval_is_a_usage_error(home: Path, interval: str) -> None:
    before = h.head(home)
    r = h.cli(home, "reaudit", "--watch", "--interval", interval, timeout=20)
    assert r.rc == 2, r
    assert r.json["error"]["code"] == "usage_error"
    assert "Traceback" not in r.stderr
    assert h.head(home) == before


def test_a_huge_interval_is_refused_or_honoured_never_a_crash(home: Path) -> None:
    """``999999999d`` parses to 8.6e13 s, beyond what ``threading.Event.wait`` accepts: it must be
    refused up front (exit 2) or waited on, not crash with a traceback after the first pass."""
    w = Watch(home, "--watch", "--interval", "999999999d")
    if w.wait_for_notice(WAITING) is not None:  # waiting: acceptable; stop it the way a service manager would
        w.proc.send_signal(signal.SIGTERM)
        rc, _, err = w.finish()
        assert rc == 0, err
        return
    rc, lines, err = w.finish()
    assert "Traceback" not in err, err
    assert rc == 2, (rc, lines, err)
