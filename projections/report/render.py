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
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import msgspec
from jinja2 import BaseLoader, Environment, ModuleLoader, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

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
_MD_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))
_MD_PUNCT = frozenset("!\"#$%'()*+,-./:;=?@[]^_`{|}~")  # but the backslash
_MD_SPECIAL = _MD_PUNCT | {"\\", "&", "<", ">"}


def md_escape(value: Any) -> str:
    """Plain text for Markdown: ``<``, ``>`` and ``&`` as entities, every other ASCII punctuation
    character backslash-escaped (CommonMark allows that for all of them), line breaks as spaces.
    Nothing in the result can start a link, an autolink, an image, HTML, emphasis, a heading, a
    list or a table cell. Markdown we rendered ourselves (:class:`MdSafe`, and the ``Markup`` the
    writer wraps the parts it rendered earlier in) is left as it is: no value from the journal is
    ever either."""
    if type(value) is str:
        return _md_short(value) if len(value) <= _MD_REMEMBERED else _md_text(value)
    if value is None:  # an absent member, shown as "-"
        return "\\-"
    if isinstance(value, (MdSafe, Markup)):
        return value
    return _md_text(visible(value))


def _md_text(text: str) -> str:
    """:func:`md_escape` of plain text."""
    if not text.isprintable():
        text = visible(text)
    if len(text) < 8:
        return text.translate(_MD_TABLE)
    # the same as the translation, faster on longer text (str.translate with replacements longer
    # than one character goes character by character; over 100k events a quarter of the Markdown
    # form's time): one replace per punctuation character present, backslashes first, the entities
    # last (their "&" and ";" are not escaped again)
    found = _MD_SPECIAL.intersection(text)
    if "\\" in found:
        text = text.replace("\\", "\\\\")
    for c in found & _MD_PUNCT:
        text = text.replace(c, "\\" + c)
    for c, entity in _MD_ENTITIES:
        if c in found:
            text = text.replace(c, entity)
    return text


# Short texts are remembered (actors, kinds, versions and summaries repeat on every row of a
# report; the last 1,024 texts of at most 64 characters: a fixed ~200 KB, whatever the journal).
_MD_REMEMBERED = 64
_md_short = functools.lru_cache(maxsize=1024)(_md_text)

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


def _common(env: Environment) -> Environment:
    env.filters.update(short=_short, yes=_yes, seconds=_seconds, value=_json_value, who=_who)
    env.globals.update(severities=SEVERITIES)
    return env


# The templates compiled to Python modules ahead of time (``precompile``): compiling them here
# costs about 20 ms a format on every report.
_TEMPLATES = Path(__file__).with_name("templates")
COMPILED = Path(__file__).with_name("compiled")
COMPILED_MANIFEST = "sources.json"
KINDS = {"html": ".html.j2", "markdown": ".md.j2"}  # compiled directory -> its templates


def template_sources() -> dict[str, str]:
    """The SHA-256 of each template (what compiled modules must have been made from)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(_TEMPLATES.glob("*.j2"))}


def compiled_manifest() -> dict[str, Any]:
    """What ``precompile`` records next to the modules: the templates and the Jinja2 they are of."""
    import jinja2

    return {"jinja2": jinja2.__version__, "templates": template_sources()}


def _loader(kind: str, *, compiled: bool = True) -> BaseLoader:
    """The compiled templates of ``kind`` when they were made from these very templates by this
    Jinja2 version, else the templates themselves (compiled on first use)."""
    if compiled:
        try:
            made = json.loads((COMPILED / COMPILED_MANIFEST).read_text("utf-8"))
        except (OSError, ValueError):
            made = None
        if made == compiled_manifest():
            return ModuleLoader(COMPILED / kind)
    return PackageLoader(_PACKAGE, "templates")


def make_html_environment(*, compiled: bool = True) -> Environment:
    from . import rows  # (it imports this module)
    env = Environment(loader=_loader("html", compiled=compiled), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, finalize=_html_finalize, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(entry_rows=rows.html_entry_rows, ev=rows.html_evidence, findings=rows.html_findings,
                       cited_rows=rows.html_cited_rows, rejection_rows=rows.html_rejection_rows)
    return _common(env)


def make_markdown_environment(*, compiled: bool = True) -> Environment:
    from . import rows  # (it imports this module)
    env = Environment(loader=_loader("markdown", compiled=compiled), autoescape=False, undefined=StrictUndefined,
                      finalize=md_escape, trim_blocks=True, lstrip_blocks=True)
    # |rendered marks the output of a macro of parts.md.j2 (already escaped inside it)
    env.filters.update(code=_md_code, links=_md_links, anchor=_md_anchor, rendered=MdSafe)
    env.globals.update(entry_rows=rows.md_entry_rows, findings=rows.md_findings, cited_rows=rows.md_cited_rows,
                       rejection_rows=rows.md_rejection_rows)
    return _common(env)


@functools.cache
def html_environment() -> Environment:
    return make_html_environment()


@functools.cache
def markdown_environment() -> Environment:
    return make_markdown_environment()


@functools.cache
def style() -> tuple[str, str]:
    """The report's CSS and its Content-Security-Policy hash (``sha256-<base64>``)."""
    css = (_TEMPLATES / "report.css").read_text("utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return css, f"sha256-{digest}"
