"""The report's text safety and template environments (the writers are in ``writers.py``).

Names, descriptions, reasons and messages come from publishers and operators. In HTML they
are escaped by Jinja2's autoescaping, and a Content-Security-Policy forbids every script,
image, font and remote style, so even a mistake in a template could not make the file run
or fetch anything. In Markdown every value goes through :func:`md_escape` (the template
environment's ``finalize``), so no value can open a link, an image, an HTML tag, a heading
or a table cell. In both, control and invisible format characters (bidirectional overrides,
zero-width characters) are shown as ``[U+XXXX]`` rather than rendered.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import msgspec
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from .model import SEVERITIES

FORMATS = ("json", "markdown", "html")
_PACKAGE = __name__.rpartition(".")[0]


# --- text safety -------------------------------------------------------------------------------


def visible(value: Any) -> str:
    """``value`` as text with control and invisible format characters made visible."""
    text = "-" if value is None else str(value)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in "\t\n\r":
            out.append(" ")
        elif ch.isprintable() or unicodedata.category(ch) == "Zs":
            out.append(ch)
        else:
            out.append(f"[U+{ord(ch):04X}]")
    return "".join(out)


class MdSafe(str):
    """Markdown the renderer built itself (code spans, anchors, the output of the parts
    templates' macros): not escaped again."""


# ``<``, ``>`` and ``&`` as entities; every other ASCII punctuation character backslash-escaped
_MD_TABLE = str.maketrans({**{c: "\\" + c for c in "!\"#$%'()*+,-./:;=?@[\\]^_`{|}~"},
                           "<": "&lt;", ">": "&gt;", "&": "&amp;"})


def md_escape(value: Any) -> str:
    """Plain text for Markdown: ``<``, ``>`` and ``&`` as entities, every other ASCII punctuation
    character backslash-escaped (CommonMark allows that for all of them), line breaks as spaces.
    Nothing in the result can start a link, an autolink, an image, HTML, emphasis, a heading, a
    list or a table cell. Markdown we rendered ourselves (:class:`MdSafe`, and the ``Markup`` the
    writer wraps the parts it rendered earlier in) is left as it is: no value from the journal is
    ever either."""
    if isinstance(value, (MdSafe, Markup)):
        return value
    return visible(value).translate(_MD_TABLE)


_CODE_SAFE = re.compile(r"[A-Za-z0-9._:+/=@-]+")


def _md_code(value: Any) -> str:
    """A code span for identifiers and hashes. Only for text of identifier characters: a backtick
    would end the span and a pipe would split a table cell even inside one, so anything else
    (a damaged journal's "hash", say) stays escaped plain text."""
    text = visible(value)
    return MdSafe(f"`{text}`") if _CODE_SAFE.fullmatch(text) else md_escape(text)


def _md_links(items: Any) -> str:
    """Links to cited events in the appendix (``position`` members are integers from the report)."""
    return MdSafe(", ".join(f"[#{int(e.position)}](#ev-{int(e.position)})" for e in items))


def _md_anchor(position: Any) -> str:
    """The appendix row's anchor and position (an integer from the report)."""
    n = int(position)
    return MdSafe(f'<a id="ev-{n}"></a>{n}')


def _html_finalize(value: Any) -> Any:
    return value if isinstance(value, Markup) else visible(value)


def _short(value: Any, n: int = 12) -> str:
    return visible(value)[:n]


def _yes(value: Any) -> str:
    return {True: "yes", False: "no", None: "-"}.get(value, str(value))


def _seconds(value: Any) -> str:
    from .text import duration

    if value is None:
        return "-"
    return f"{duration(value)} ({value:g} s)" if value >= 1 else f"{value:g} s"


def _json_value(value: Any) -> str:
    return msgspec.json.encode(value, order="deterministic").decode("utf-8")


def _who(actor: Any) -> str:
    """An actor as a line: the declared principal, and the OS account when it was recorded."""
    if actor is None:
        return "-"
    return f"{actor.principal} (OS user {actor.os_user})" if actor.os_user else actor.principal


# --- the rows of the timelines: one per event ------------------------------------------------------
# Written here rather than as template macros: a report lists every event of its window, and in
# a macro each of a row's dozen values goes through Jinja2's attribute lookup, ``finalize`` and
# ``escape`` (over 100k events: most of the time the HTML and Markdown forms took over the
# JSON one). Each value gets exactly the treatment the environments give ``{{ value }}``:
# :func:`visible` and markupsafe's escaping in HTML, :func:`md_escape` in Markdown.


try:  # markupsafe's escaping of a str: what escape() does, without wrapping the result in Markup
    from markupsafe import _escape_inner
except ImportError:  # pragma: no cover - another markupsafe: its public escape() does the same

    def _escape_inner(s: str, /) -> str:
        return str(escape(s))


def _h(value: Any) -> str:
    """``{{ value }}`` in the HTML environment (``finalize``, then autoescaping)."""
    t = type(value)
    if t is str:
        if value.isprintable():
            return _escape_inner(value)
    elif t is int:
        return str(value)
    elif value is None:
        return "-"
    return str(escape(_html_finalize(value)))


def html_evidence(items: Iterable[Any]) -> Markup:
    """Links to cited events (``ev`` in the templates)."""
    return Markup(", ".join(f'<a href="#ev-{_h(e.position)}" title="{_h(e.hash)}">#{_h(e.position)}</a>'  # noqa: S704
                            for e in items))


def html_entry_rows(entries: Iterable[Any], stream: bool) -> Markup:
    """Timeline entries as HTML table rows (with a stream column when ``stream``)."""
    rows = []
    for e in entries:
        a = e.actor
        cell = f"<td>{_h(e.stream)}</td>" if stream else ""
        rows.append(f'<tr id="ev-{_h(e.position)}"><td class="pos">#{_h(e.position)}<span class="hash">{_h(e.hash)}'
                    f'</span></td><td>{_h(e.recorded_at)}</td><td class="nowrap"><span title="{_h(a.command)} on '
                    f'{_h(a.host)}">{_h(_who(a))}</span></td>{cell}<td><span class="mono">{_h(e.kind)}</span><br>'
                    f"{_h(e.summary)}</td><td>{_h(e.version)}</td><td>{_h(e.reason_code)}</td><td>{_h(e.reason)}"
                    "</td></tr>\n")
    return Markup("".join(rows))  # noqa: S704 - every value escaped above


def md_entry_rows(entries: Iterable[Any], stream: bool) -> str:
    """Timeline entries as Markdown table rows (with a stream column when ``stream``)."""
    m = md_escape
    rows = []
    for e in entries:
        cell = f" {m(e.stream)} |" if stream else ""
        rows.append(f"| {_md_anchor(e.position)} {_md_code(e.hash)} | {m(e.recorded_at)} | {m(_who(e.actor))} |{cell} "
                    f"{_md_code(e.kind)} {m(e.summary)} | {m(e.version)} | {m(e.reason_code)} | {m(e.reason)} |\n")
    return MdSafe("".join(rows))


def _common(env: Environment) -> Environment:
    env.filters.update(short=_short, yes=_yes, seconds=_seconds, value=_json_value, who=_who)
    env.globals.update(severities=SEVERITIES)
    return env


@functools.cache
def _html_env() -> Environment:
    env = Environment(loader=PackageLoader(_PACKAGE, "templates"), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, finalize=_html_finalize, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(entry_rows=html_entry_rows, ev=html_evidence)
    return _common(env)


@functools.cache
def _markdown_env() -> Environment:
    env = Environment(loader=PackageLoader(_PACKAGE, "templates"), autoescape=False, undefined=StrictUndefined,
                      finalize=md_escape, trim_blocks=True, lstrip_blocks=True)
    # |rendered marks the output of a macro of parts.md.j2 (already escaped inside it)
    env.filters.update(code=_md_code, links=_md_links, anchor=_md_anchor, rendered=MdSafe)
    env.globals.update(entry_rows=md_entry_rows)
    return _common(env)


def html_environment() -> Environment:
    return _html_env()


def markdown_environment() -> Environment:
    return _markdown_env()


def style() -> tuple[str, str]:
    """The report's CSS and its Content-Security-Policy hash (``sha256-<base64>``)."""
    env = _html_env()
    css = env.loader.get_source(env, "report.css")[0]  # type: ignore[union-attr]
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return css, f"sha256-{digest}"
