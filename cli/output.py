"""Rendering: exactly one JSON document on stdout with ``--json``, human text otherwise.
Diagnostics and progress go to stderr.

Human output quotes outside text (a manifest's name, a tool's description, a reason, an
error that names an entry, a guest's log line). A terminal would obey the control and
format characters in it (``ESC [2J`` clears the screen, an OSC 52 sequence writes the
clipboard, U+202E reverses what follows), so every piece of it goes through :func:`safe`,
which escapes them visibly (``\\x1b``, ``\\u202e``). ``kv``, ``table_lines``, ``notice``
and the error renderer apply it; commands apply it to what else they print. JSON output is
escaped by its encoder.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


# --- outside text, made harmless for a terminal ---------------------------------------------

# Control (C0, DEL, C1), format (bidi overrides and isolates, zero-width characters, the BOM,
# tag characters), surrogates, and the line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def safe(value: Any) -> str:
    """``value`` as text a terminal shows but never obeys: every control, format, surrogate and
    line/paragraph-separator character is replaced by a visible escape (``\\x1b``, ``\\u202e``,
    ``\\n``). Printable text (the common case) is returned as it is, after one C-level check."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return "".join(map(_escape, text))


@functools.lru_cache(maxsize=4096)
def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    if unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
        return ch  # e.g. a no-break space: not printable by str's rule, but harmless
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def safe_lines(text: str) -> str:
    """Multi-line text (pretty JSON of a guest's output) with each line made safe; only the line
    breaks themselves are kept."""
    return "\n".join(safe(part) for part in text.split("\n"))


def kv(rows: Iterable[tuple[str, Any]]) -> None:
    rows = [(k, safe(v)) for k, v in rows]
    width = max((len(k) for k, _ in rows), default=0)
    click.echo("\n".join(f"{k.ljust(width)}  {v}".rstrip() for k, v in rows))


# --- terminals: width and colour -------------------------------------------------------------


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def is_tty() -> bool:
    return stdout_is_tty()


def terminal_width() -> int | None:
    """The width tables must fit: ``COLUMNS`` when set, else the terminal's when stdout is one,
    else None (output to a file or a pipe is never cut)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if stdout_is_tty():
        import shutil

        return shutil.get_terminal_size().columns
    return None


def use_color() -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set to anything (no-color.org)."""
    return not os.environ.get("NO_COLOR") and stdout_is_tty()


STATUS_COLORS = {"active": "green", "quarantined": "red", "disabled": "yellow", "removed": "bright_black",
                 "yes": "green", "no": "red", "passed": "green", "FAILED": "red", "ready": "green",
                 "NOT READY": "red", "ok": "green", "fail": "red", "warn": "yellow", "FAIL": "red"}


def status_color(text: str) -> str | None:
    """The colour of a cell that starts with a status word (``no: quarantined`` is red)."""
    word = text.split(":", 1)[0].split(" (", 1)[0]
    return STATUS_COLORS.get(word)


def colored(text: str, color: str | None) -> str:
    return click.style(text, fg=color) if color and use_color() else text


# --- tables -------------------------------------------------------------------------------------

ELLIPSIS = "…"
MIN_CELL = 6  # no column is cut narrower than this (or its header, or its widest cell)


def display_width(text: str) -> int:
    """Columns a terminal gives ``text``: wide East Asian characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


@functools.lru_cache(maxsize=4096)
def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, the cut marked with an ellipsis."""
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + ELLIPSIS


def fit_widths(headers: Sequence[str], natural: Sequence[int], width: int | None,
               shrink: Sequence[int] | None = None) -> list[int]:
    """Column widths that fit ``width`` (two spaces between columns), none below its floor. The
    ``shrink`` columns (free text: a description, a summary) give way first, in that order, each
    down to its floor before the next; then, if that is not enough, the widest of the others.
    Without ``width``, or when the table fits, the natural widths."""
    widths = list(natural)
    if width is None:
        return widths
    floors = [min(n, max(len(h), MIN_CELL)) for h, n in zip(headers, natural)]
    over = sum(widths) + 2 * (len(widths) - 1) - width
    for i in shrink or ():
        if over <= 0:
            break
        if i < len(widths):
            step = min(over, widths[i] - floors[i])
            widths[i] -= step
            over -= step
    while over > 0:
        candidates = [i for i, w in enumerate(widths) if w > floors[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
        over -= 1
    return widths


def table(headers: list[str], rows: list[list[Any]], **layout: Any) -> None:
    if rows:
        click.echo("\n".join(table_lines(headers, [[str(c) for c in r] for r in rows], **layout)))  # one write


def table_lines(headers: Sequence[str], cells: Sequence[Sequence[str]], *, width: int | None = None,
                styles: Mapping[int, Callable[[str], str | None]] | None = None,
                shrink: Sequence[int] | None = None) -> list[str]:
    """Left-aligned columns two spaces apart, headers upper-cased, no trailing spaces; no lines
    without rows. Every cell is outside text and goes through :func:`safe`. With ``width``, long
    cells are cut with an ellipsis so each line fits (the ``shrink`` columns first, see
    :func:`fit_widths`); ``styles`` colours a column's cells (on a terminal). Plain ASCII tables
    that fit take one ``%`` format per line: thousands of rows lay out fast."""
    if not cells:
        return []
    cells = [[safe(c) for c in row] for row in cells]
    plain = all(c.isascii() for row in cells for c in row)
    measure = len if plain else display_width
    natural = [max(len(h), max(map(measure, column))) for h, column in zip(headers, zip(*cells))]
    widths = fit_widths(headers, natural, width, shrink)
    colour = styles if styles and use_color() else None
    heads = [h.upper() for h in headers]
    if plain and widths == natural and not colour:
        template = "  ".join(f"%-{w}s" for w in widths)
        return [(template % tuple(heads)).rstrip(), *[(template % tuple(r)).rstrip() for r in cells]]
    return [_layout(heads, widths, None), *[_layout(r, widths, colour) for r in cells]]


def _layout(row: Sequence[str], widths: Sequence[int], styles: Mapping[int, Callable[[str], str | None]] | None
            ) -> str:
    parts = []
    for i, (text, w) in enumerate(zip(row, widths)):
        shown = clip(text, w)
        pad = " " * (w - display_width(shown))
        color = styles[i](text) if styles and i in styles else None
        parts.append((click.style(shown, fg=color) if color else shown) + pad)
    return "  ".join(parts).rstrip()


LIST_HEADERS = ("skill", "version", "current", "status", "eligible", "trust", "last audit", "tools")


def list_table(rows: Iterable[ListRow], *, width: int | None = None) -> list[str]:
    """The lines of the human ``skills list`` table (header first; none without entries). A removed
    version (``list --all``) has the status ``removed``."""
    return table_lines(LIST_HEADERS, [
        (r.skill_id, r.version, "*" if r.current else "", r.status or "-",
         _eligible(r.eligible, r.eligibility_reasons), r.trust_decision or "-",
         _last_audit(r.last_audit_at, r.last_audit_passed, r.last_audit_trigger),
         "" if r.tool_count is None else str(r.tool_count))
        for r in rows], width=width, styles={3: status_color, 4: status_color}, shrink=(6, 4, 5, 0))


@functools.lru_cache(maxsize=256)
def _eligible(eligible: int, reasons: str) -> str:
    """Few distinct (eligible, reasons) pairs across a whole index: each laid out once."""
    return "yes" if eligible else "no: " + ",".join(json.loads(reasons))


def _last_audit(at: str | None, passed: int | None, trigger: str | None) -> str:
    return "-" if at is None else f"{'passed' if passed else 'FAILED'} ({trigger or ''}, {at[:19]})"


# --- CSV ----------------------------------------------------------------------------------------

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A CSV cell: ``None`` empty, booleans ``true``/``false``, lists as JSON; outside text with
    its control characters escaped (a CSV is often read on a terminal) and a leading ``'`` when a
    spreadsheet would take it for a formula (``=``, ``+``, ``-``, ``@``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    if text.startswith(_FORMULA_STARTS):
        text = "'" + text
    return safe(text)


def csv_text(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV (CRLF line ends), a header row first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([csv_cell(c) for c in row])
    return out.getvalue()


def echo_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    click.echo(csv_text(headers, rows), nl=False)


# --- diagnostics and progress -------------------------------------------------------------------


def notice(message: str) -> None:
    click.echo(safe(message), err=True)


@contextlib.contextmanager
def progress_bar(total: int, label: str, *, hidden: bool = False, at_least: int = 0
                 ) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for ``total`` steps, yielding its ``update(n)``; ``None`` (no bar)
    with ``hidden`` (``--json``), when stdout or stderr is not a terminal, or below ``at_least``
    steps (short work needs none)."""
    if hidden or total < max(at_least, 1) or not (stdout_is_tty() and stderr_is_tty()):
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


CATCH_UP_BAR_FROM = 5_000  # a catch-up over fewer events is quick enough to need no bar


def views_progress(label: str = "Catching up with the journal", at_least: int | None = None
                   ) -> Callable[[int], contextlib.AbstractContextManager[Callable[[int], None] | None]]:
    """``progress_for`` for ``open_views``: a bar over a catch-up of at least ``at_least`` events
    (default ``CATCH_UP_BAR_FROM``)."""
    from .base import obj

    hidden = obj().as_json
    floor = CATCH_UP_BAR_FROM if at_least is None else at_least
    return lambda total: progress_bar(total, label, hidden=hidden, at_least=floor)
