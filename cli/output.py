"""Rendering: exactly one JSON document on stdout with ``--json``, human text otherwise.
Diagnostics and progress go to stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

import click
import msgspec

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
    if not rows:
        return
    cells = [list(map(str, r)) for r in rows]
    widths = [max(map(len, col)) for col in zip(headers, *cells)]
    template = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [template.format(*(h.upper() for h in headers)).rstrip()]
    lines += [template.format(*r).rstrip() for r in cells]
    click.echo("\n".join(lines))  # one write: thousands of rows print fast


def notice(message: str) -> None:
    click.echo(message, err=True)


def is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
