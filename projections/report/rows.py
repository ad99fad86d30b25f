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

from collections.abc import Iterable
from typing import Any

from markupsafe import Markup, escape

from .render import MdSafe, _html_finalize, _md_anchor, _md_code, _md_links, _who, _yes, md_escape

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
    """Timeline entries as Markdown table rows (with a stream column when ``stream``)."""
    m = md_escape
    rows = []
    for e in entries:
        cell = f" {m(e.stream)} |" if stream else ""
        rows.append(f"| {_md_anchor(e.position)} {m(_md_code(e.hash))} | {m(e.recorded_at)} | {m(_who(e.actor))} |"
                    f"{cell} {m(_md_code(e.kind))} {m(e.summary)} | {m(e.version)} | {m(e.reason_code)} | "
                    f"{m(e.reason)} |\n")
    return MdSafe("".join(rows))


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
