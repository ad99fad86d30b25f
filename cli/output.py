"""Rendering: exactly one JSON document on stdout with ``--json``, human text otherwise.
Diagnostics and progress go to stderr."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click
import msgspec

if TYPE_CHECKING:
    from skill_ledger.projections.queries import ListRow

_encoder = msgspec.json.Encoder()


def to_jsonable(value: Any) -> Any:
    return msgspec.to_builtins(value)


def json_text(value: Any, *, pretty: bool = True) -> str:
    raw = _encoder.encode(value)
    if pretty:
        raw = msgspec.json.format(raw, indent=2)
    return raw.decode("utf-8")


def emit(as_json: bool, data: Any, human: Callable[[Any], None]) -> None:
    if as_json:
        click.echo(json_text(data))
    else:
        human(data)


def kv(rows: Iterable[tuple[str, Any]]) -> None:
    rows = list(rows)
    width = max((len(k) for k, _ in rows), default=0)
    for k, v in rows:
        click.echo(f"{k.ljust(width)}  {v}")


def table(headers: list[str], rows: list[list[Any]]) -> None:
    if rows:
        click.echo("\n".join(table_lines(headers, [[str(c) for c in r] for r in rows])))  # one write


def table_lines(headers: Sequence[str], cells: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, headers upper-cased, no trailing spaces; no
    lines without rows. One ``%`` format per line: thousands of rows lay out fast."""
    if not cells:
        return []
    widths = [max(len(h), max(map(len, column))) for h, column in zip(headers, zip(*cells))]
    template = "  ".join(f"%-{w}s" for w in widths)
    return [(template % tuple(h.upper() for h in headers)).rstrip(), *[(template % tuple(r)).rstrip() for r in cells]]


LIST_HEADERS = ("skill", "version", "current", "status", "eligible", "trust", "last audit", "tools")


def list_table(rows: Iterable[ListRow]) -> list[str]:
    """The lines of the human ``skills list`` table (header first; none without entries)."""
    return table_lines(LIST_HEADERS, [
        (r.skill_id, r.version, "*" if r.current else "", r.status or "-", _eligible(r.eligible, r.eligibility_reasons),
         r.trust_decision or "-", _last_audit(r.last_audit_at, r.last_audit_passed, r.last_audit_trigger),
         "" if r.tool_count is None else str(r.tool_count))
        for r in rows])


@functools.lru_cache(maxsize=256)
def _eligible(eligible: int, reasons: str) -> str:
    """Few distinct (eligible, reasons) pairs across a whole index: each laid out once."""
    return "yes" if eligible else "no: " + ",".join(json.loads(reasons))


def _last_audit(at: str | None, passed: int | None, trigger: str | None) -> str:
    return "-" if at is None else f"{'passed' if passed else 'FAILED'} ({trigger or ''}, {at[:19]})"


def notice(message: str) -> None:
    click.echo(message, err=True)


def is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
