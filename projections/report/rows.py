"""The report's per-event and per-version rows in HTML and Markdown, written in Python.

A report lists every event of its window as a timeline row and every version as a posture row.
As template macros, each of a row's values went through Jinja2's attribute lookup, the
environment's ``finalize`` and its escaping, a few Python calls per value: over 100k events, most
of the time the HTML and Markdown forms took over the JSON one. These functions write the
same bytes, each value getting exactly what the environments (``render.py``) give
``{{ value }}``: :func:`~.render.visible` then markupsafe's escaping in HTML (:func:`_h`),
:func:`~.render.md_escape` in Markdown, after the filter the template applied, if any (so a
value ``|code`` could not make a code span of is escaped twice, as the macros did). The
templates call ``entry_rows`` and ``ev``; the writers the posture functions.
``tests/projections/test_report_rows.py`` checks them against the macros they replaced, on
hostile values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

from markupsafe import Markup, escape

from .render import (
    _CODE_SAFE,
    MdSafe,
    _html_finalize,
    _json_value,
    _md_anchor,
    _md_code,
    _md_links,
    _short,
    _who,
    _yes,
    md_escape,
    visible,
)

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


def _joined(items: Iterable[Any], sep: str) -> str:
    """``items|join(sep)`` of plain values, as the templates' ``join`` filter gives it."""
    return sep.join(str(i) for i in items)


# --- timelines ----------------------------------------------------------------------------------


def html_evidence(items: Iterable[Any]) -> Markup:
    """Links to cited events (``ev``)."""
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
    """Timeline entries as Markdown table rows (with a stream column when ``stream``): each value
    as ``m(value)``, ``m(_md_code(value))`` or ``_md_anchor`` give it, by the shortest way (this
    is the Markdown form's per-event work)."""
    m = md_escape
    rows = []
    for e in entries:
        n = int(e.position)
        cell = f" {m(e.stream)} |" if stream else ""
        rows.append(f'| <a id="ev-{n}"></a>{n} {_md_code_text(e.hash)} | {_md_time(e.recorded_at)} | '
                    f"{_md_who(e.actor)} |{cell} {_md_code_cached(e.kind)} {m(e.summary)} | {m(e.version)} | "
                    f"{m(e.reason_code)} | {m(e.reason)} |\n")
    return MdSafe("".join(rows))


def _md_code_text(value: Any) -> str:
    """``md_escape(_md_code(value))``: a code span, or the text escaped twice (as the macros did)."""
    text = visible(value)
    return f"`{text}`" if _CODE_SAFE.fullmatch(text) else md_escape(md_escape(text))


_md_code_cached = functools.lru_cache(maxsize=256)(_md_code_text)  # event kinds: a few dozen
_TIME = re.compile(r"[0-9T:.+-]+")


def _md_time(value: Any) -> str:
    """``md_escape`` of a time: the common ISO 8601 text has four punctuation characters to escape."""
    if type(value) is str and _TIME.fullmatch(value):
        return value.replace("-", "\\-").replace(":", "\\:").replace(".", "\\.").replace("+", "\\+")
    return md_escape(value)


@functools.lru_cache(maxsize=256)
def _md_who_of(actor: Any) -> str:
    return md_escape(_who(actor))


def _md_who(actor: Any) -> str:
    """``md_escape(_who(actor))``; the report's actors are shared structs, few and hashable."""
    try:
        return _md_who_of(actor)
    except TypeError:  # (an unhashable stand-in)
        return md_escape(_who(actor))


# --- posture --------------------------------------------------------------------------------------

_POSTURE_HEAD = ("<table>\n<tr><th>Version</th><th>Name / description</th><th>Status</th><th>Current</th>"
                 "<th>Eligible</th><th>Trust</th><th>Last audit</th><th>Status reason</th><th>Evidence</th></tr>\n")


def _html_last_audit(p: Any) -> str:
    a = p.last_audit
    if not a:
        return "none"
    text = (f"{'passed' if a.passed else 'FAILED'} ({_h(a.trigger)}, policy v{_h(a.policy_version)}) "
            f"{_h(a.at)}")
    if a.failed_checks:
        text += f'<br><span class="muted">{_h(_joined(a.failed_checks, ", "))}</span>'
    return text


def html_posture(skill_id: str, versions: Iterable[Any]) -> Markup:
    """A skill's posture: its heading and a table of its versions."""
    rows = [f'<h3 id="skill-{_h(skill_id)}">{_h(skill_id)}</h3>\n', _POSTURE_HEAD]
    for p in versions:
        description = f'<br><span class="muted">{_h(p.description)}</span>' if p.description else ""
        reasons = f" ({_h(_joined(p.eligibility_reasons, ', '))})" if p.eligibility_reasons else ""
        revoked = " <strong>revoked</strong>" if p.key_revoked else ""
        status_reason = _joined(filter(None, (p.status_reason_code, p.status_reason)), ": ") or "-"
        rows.append(f'<tr>\n<td class="mono nowrap">{_h(p.version)}<br><span class="muted">{_h(p.publisher)}</span>'
                    f"</td>\n<td>{_h(p.display_name or p.name)}{description}</td>\n"
                    f'<td class="nowrap status-{_h(p.status)}">{_h(p.status)}</td>\n<td>{_h(_yes(p.current))}</td>\n'
                    f"<td>{_h(_yes(p.eligible))}{reasons}</td>\n<td>{_h(p.trust_decision)}<br>"
                    f'<span class="mono" title="key id">{_h(p.key_id)}</span>{revoked}</td>\n'
                    f"<td>{_html_last_audit(p)}</td>\n<td>{_h(status_reason)}</td>\n"
                    f"<td>{html_evidence(p.evidence)}</td>\n</tr>\n")
    rows.append("</table>\n")
    return Markup("".join(rows))  # noqa: S704 - every value escaped above


def md_posture_rows(versions: Iterable[Any]) -> str:
    """Versions as rows of the Markdown posture table."""
    m = md_escape
    rows = []
    for p in versions:
        description = f": {m(p.description)}" if p.description else ""
        reasons = f" ({m(_joined(p.eligibility_reasons, ', '))})" if p.eligibility_reasons else ""
        a = p.last_audit
        audit = (f"{'passed' if a.passed else 'FAILED'} ({m(a.trigger)}, policy v{m(a.policy_version)}) {m(a.at)}"
                 if a else "none")
        status_reason = _joined(filter(None, (p.status_reason_code, p.status_reason)), ": ") or "-"
        rows.append(f"| {m(p.skill_id)} | {m(p.version)} | {m(p.publisher)} | {m(p.display_name or p.name)}"
                    f"{description} | {m(p.status)} | {m(_yes(p.current))} | {m(_yes(p.eligible))}{reasons} | "
                    f"{m(p.trust_decision)} | {m(_md_code(p.key_id))}{' revoked' if p.key_revoked else ''} | {audit} | "
                    f"{m(status_reason)} | {_md_links(p.evidence)} |\n")
    return MdSafe("".join(rows))


# --- findings, rejections and the appendix --------------------------------------------------------------------


def _html_changes(f: Any) -> str:
    if not f.changes:
        return ""
    rows = ["<table><tr><th>Policy member</th><th>Old</th><th>New</th><th>Direction</th></tr>\n"]
    rows += [f'<tr><td class="mono">{_h(c.key)}</td><td class="mono">{_h(_json_value(c.old))}</td>'
             f'<td class="mono">{_h(_json_value(c.new))}</td><td>{_h(c.direction)}</td></tr>\n' for c in f.changes]
    return "".join(rows) + "</table>\n"


def html_finding_open(f: Any) -> Markup:
    """A finding up to its evidence (the skeleton streams the evidence, then ``finding_close``)."""
    meta = (f"skill {_h(f.skill_id)} {_h(f.version)} &middot; " if f.skill_id else "") + (
        f"publisher {_h(f.publisher)} &middot; " if f.publisher else "") + (
        f"{_h(f.at)} &middot; " if f.at else "") + (f"by {_h(f.actor)} &middot; " if f.actor else "") + (
        f"{_h(f.count)} events &middot; " if f.count > 1 else "")
    return Markup(  # noqa: S704 - every value escaped
        f'<article class="finding {_h(f.severity)}" id="{_h(f.id)}">\n<div><span class="sev {_h(f.severity)}">'
        f'{_h(f.severity)}</span> <strong class="mono">{_h(f.id)}</strong> &middot; <span class="mono">'
        f"{_h(f.kind)}</span></div>\n<div><strong>{_h(f.title)}</strong></div>\n<p>{_h(f.detail)}</p>\n"
        f'{_html_changes(f)}<div class="meta">{meta}evidence: ')


def md_finding_open(f: Any) -> str:
    """A finding up to its evidence, as a Markdown list item."""
    m = md_escape
    changes = "".join(f"  - {m(_md_code(c.key))}: {m(_json_value(c.old))} → {m(_json_value(c.new))} "
                      f"({m(c.direction)})\n" for c in f.changes)
    meta = (f"Skill {m(f.skill_id)} {m(f.version)}. " if f.skill_id else "") + (
        f"Publisher {m(f.publisher)}. " if f.publisher else "") + (f"{m(f.count)} events. " if f.count > 1 else "")
    return MdSafe(f"- **{m(_md_code(f.id))} {m(f.title)}** ({m(_md_code(f.kind))})\n  {m(f.detail)}\n{changes}"
                  f"  {meta}Evidence: ")


EVIDENCE_BATCH = 256  # links written at a time: a finding may cite a million denials
_NO_EVIDENCE = "none recorded in the journal"
_HTML_FINDING_CLOSE = "</div>\n</article>\n"


class RenderedFinding:
    """A finding the spool holds already rendered in the report's format (``Writer.finding_text``)."""

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text


def _findings(items: Iterable[Any], open_: Any, link: Any, close: str, wrap: Any) -> Iterator[Any]:
    """Each finding: its opening, the links to its evidence (read as they come, written in
    batches) or a note that there is none, and its closing; a :class:`RenderedFinding` as it is."""
    for f in items:
        if type(f) is RenderedFinding:
            yield wrap(f.text.decode("utf-8"))
            continue
        out = [open_(f)]
        n = 0
        for e in f.evidence:
            out.append(link(e) if n == 0 else ", " + link(e))
            n += 1
            if n % EVIDENCE_BATCH == 0:
                yield wrap("".join(out))
                out = []
        if n == 0:
            out.append(_NO_EVIDENCE)
        out.append(close)
        yield wrap("".join(out))


def _html_link(e: Any) -> str:
    return f'<a href="#ev-{_h(e.position)}" title="{_h(e.hash)}">#{_h(e.position)}</a>'


def _md_link(e: Any) -> str:
    n = int(e.position)
    return f"[#{n}](#ev-{n})"


def html_findings(items: Iterable[Any]) -> Iterator[Markup]:
    """The findings of one severity, as ``finding_open``, the evidence links and ``finding_close``
    of ``parts.html.j2`` wrote them."""
    return _findings(items, html_finding_open, _html_link, _HTML_FINDING_CLOSE, Markup)


def md_findings(items: Iterable[Any]) -> Iterator[str]:
    """The findings of one severity as Markdown list items (each ends its line)."""
    return _findings(items, md_finding_open, _md_link, "\n", MdSafe)


def html_cited_rows(rows: Iterable[Any]) -> Markup:
    """The appendix's rows: cited events not shown as entries."""
    return Markup("".join(  # noqa: S704 - every value escaped
        f'<tr id="ev-{_h(c.position)}"><td>{_h(c.position)}</td><td class="hash">{_h(c.hash)}</td>'
        f'<td class="mono">{_h(c.kind)}</td><td>{_h(c.recorded_at)}</td><td>{_h(c.stream)}</td>'
        f"<td>{_h(_who(c.actor))} ({_h(c.actor.command)}@{_h(c.actor.host)})</td></tr>\n" for c in rows))


def md_cited_rows(rows: Iterable[Any]) -> str:
    """The appendix's rows, in Markdown."""
    m = md_escape
    return MdSafe("".join(
        f"| {_md_anchor(c.position)} | {m(_md_code(c.hash))} | {m(_md_code(c.kind))} | {m(c.recorded_at)} | "
        f"{m(c.stream)} | {m(_who(c.actor))} ({m(c.actor.command)}@{m(c.actor.host)}) |\n" for c in rows))


def _html_actor(a: Any) -> str:
    """The ``actor`` macro of parts.html.j2."""
    return f'<span title="{_h(a.command)} on {_h(a.host)}">{_h(_who(a))}</span>' if a else "-"


def html_rejection_rows(rows: Iterable[Any]) -> Markup:
    """Rejected artifacts as HTML table rows."""
    return Markup("".join(  # noqa: S704 - every value escaped
        f'<tr id="ev-{_h(x.position)}"><td class="pos">#{_h(x.position)}<span class="hash">{_h(x.hash)}</span></td>'
        f'<td>{_h(x.recorded_at)}</td><td class="nowrap">{_html_actor(x.actor)}</td><td class="mono" '
        f'title="{_h(x.artifact_sha256)}">{_h(_short(x.artifact_sha256))}<br><span class="muted">{_h(x.source)}'
        f"</span></td><td>{_h(x.error_code)}</td><td>{_h(x.skill_id)} {_h(x.version)} {_h(x.publisher)}</td>"
        f"<td>{_h(x.message)}</td></tr>\n" for x in rows))


def md_rejection_rows(rows: Iterable[Any]) -> str:
    """Rejected artifacts as Markdown table rows."""
    m = md_escape
    return MdSafe("".join(
        f"| {_md_anchor(x.position)} {m(_md_code(x.hash))} | {m(x.recorded_at)} | {m(_who(x.actor))} | "
        f"{m(_md_code(_short(x.artifact_sha256)))} from {m(x.source)} | {m(x.error_code)} | {m(x.skill_id)} "
        f"{m(x.version)} {m(x.publisher)} | {m(x.message)} |\n" for x in rows))
