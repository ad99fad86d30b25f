"""``parse_duration`` (``skills reaudit --interval``): ``30s``, ``15m``, ``6h``, ``1d``, plain
seconds, ``0`` to disable; everything else is a usage error."""

from __future__ import annotations

import threading

import pytest

from skill_ledger.domain.errors import UsageError
from skill_ledger.domain.schedule import parse_duration


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30),
    ("15m", 900),
    ("6h", 21600),
    ("1d", 86400),
    ("45", 45),
    ("0", 0),
    ("0s", 0),
    ("0h", 0),
    ("00", 0),
    ("007m", 420),
    ("  30s  ", 30),
    ("30s\n", 30),
    ("1s", 1),
    ("999999999", 999_999_999),
    ("90m", 5400),
])
def test_valid_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [
    "", "   ", "s", "m", "-1", "-1s", "+5s", "1.5s", "0.5", ".5s", "1e3", "0x10",
    "1h30m", "1h 30m", "10 s", "30S", "6H", "1w", "1y", "5ms", "abc", "s30", "30ss",
    "1_000", "١٢s", "１０s", "1000000000",  # ten digits: beyond the grammar
    "inf", "nan",
])
def test_invalid_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_duration(text)
    assert e.value.code == "usage_error"
    assert e.value.details == {"value": text}
    assert "30s" in e.value.message  # says what a valid value looks like


def test_the_error_is_a_usage_error_class_mapped_to_exit_2() -> None:
    from skill_ledger.cli.errors import exit_code_for

    with pytest.raises(UsageError) as e:
        parse_duration("soon")
    assert exit_code_for(e.value.code) == 2


@pytest.mark.parametrize("text", ["999999999d", "999999999h", "999999999m"])
def test_every_accepted_duration_can_be_waited_on(text: str) -> None:
    """The watch loop sleeps with ``threading.Event.wait(seconds)``, which raises OverflowError
    above ``threading.TIMEOUT_MAX`` (~292 years). An accepted duration must be one the loop can
    wait for; a longer one must be a usage error (exit 2), not a crash after the first pass."""
    try:
        seconds = parse_duration(text)
    except UsageError:
        return
    assert seconds <= threading.TIMEOUT_MAX, f"{text!r} -> {seconds} s, above threading.TIMEOUT_MAX"
