"""The rows written in Python (``projections/report/rows.py``) against the template macros they
replaced (kept here verbatim): the same bytes for hostile values, in HTML and Markdown."""

from __future__ import annotations

import itertools

import pytest

from skill_ledger.projections.report import rows
from skill_ledger.projections.report.model import (
    Actor,
    CitedEvent,
    Evidence,
    Finding,
    LastAudit,
    PolicyChange,
    Rejection,
    TimelineEntry,
    VersionPosture,
)
from skill_ledger.projections.report.writers import StreamedFinding
from skill_ledger.projections.report.render import html_environment, markdown_environment

OLD_HTML_MACROS = '''\
{% macro ev(items) %}{% for e in items %}<a href="#ev-{{ e.position }}" title="{{ e.hash }}">#{{ e.position }}</a>{% if not loop.last %}, {% endif %}{% endfor %}{% endmacro %}
{% macro posture_skill(skill_id, versions) %}
<h3 id="skill-{{ skill_id }}">{{ skill_id }}</h3>
<table>
<tr><th>Version</th><th>Name / description</th><th>Status</th><th>Current</th><th>Eligible</th><th>Trust</th><th>Last audit</th><th>Status reason</th><th>Evidence</th></tr>
{% for p in versions %}
<tr>
<td class="mono nowrap">{{ p.version }}<br><span class="muted">{{ p.publisher }}</span></td>
<td>{{ p.display_name or p.name }}{% if p.description %}<br><span class="muted">{{ p.description }}</span>{% endif %}</td>
<td class="nowrap status-{{ p.status }}">{{ p.status }}</td>
<td>{{ p.current|yes }}</td>
<td>{{ p.eligible|yes }}{% if p.eligibility_reasons %} ({{ p.eligibility_reasons|join(", ") }}){% endif %}</td>
<td>{{ p.trust_decision }}<br><span class="mono" title="key id">{{ p.key_id }}</span>{% if p.key_revoked %} <strong>revoked</strong>{% endif %}</td>
<td>{% if p.last_audit %}{{ "passed" if p.last_audit.passed else "FAILED" }} ({{ p.last_audit.trigger }}, policy v{{ p.last_audit.policy_version }}) {{ p.last_audit.at }}{% if p.last_audit.failed_checks %}<br><span class="muted">{{ p.last_audit.failed_checks|join(", ") }}</span>{% endif %}{% else %}none{% endif %}</td>
<td>{{ [p.status_reason_code, p.status_reason]|select|join(": ") or "-" }}</td>
<td>{{ ev(p.evidence) }}</td>
</tr>
{% endfor %}
</table>
{% endmacro %}
{% macro entry_rows(entries, stream) %}{% for e in entries %}<tr id="ev-{{ e.position }}"><td class="pos">#{{ e.position }}<span class="hash">{{ e.hash }}</span></td><td>{{ e.recorded_at }}</td><td class="nowrap"><span title="{{ e.actor.command }} on {{ e.actor.host }}">{{ e.actor|who }}</span></td>{% if stream %}<td>{{ e.stream }}</td>{% endif %}<td><span class="mono">{{ e.kind }}</span><br>{{ e.summary }}</td><td>{{ e.version }}</td><td>{{ e.reason_code }}</td><td>{{ e.reason }}</td></tr>
{% endfor %}{% endmacro %}
{% macro finding_open(f) %}
<article class="finding {{ f.severity }}" id="{{ f.id }}">
<div><span class="sev {{ f.severity }}">{{ f.severity }}</span> <strong class="mono">{{ f.id }}</strong> &middot; <span class="mono">{{ f.kind }}</span></div>
<div><strong>{{ f.title }}</strong></div>
<p>{{ f.detail }}</p>
{% if f.changes %}
<table><tr><th>Policy member</th><th>Old</th><th>New</th><th>Direction</th></tr>
{% for c in f.changes %}<tr><td class="mono">{{ c.key }}</td><td class="mono">{{ c.old|value }}</td><td class="mono">{{ c.new|value }}</td><td>{{ c.direction }}</td></tr>
{% endfor %}</table>
{% endif %}
<div class="meta">{% if f.skill_id %}skill {{ f.skill_id }} {{ f.version }} &middot; {% endif %}{% if f.publisher %}publisher {{ f.publisher }} &middot; {% endif %}{% if f.at %}{{ f.at }} &middot; {% endif %}{% if f.actor %}by {{ f.actor }} &middot; {% endif %}{% if f.count > 1 %}{{ f.count }} events &middot; {% endif %}evidence: {% endmacro %}
{% macro cited_rows(rows) %}{% for c in rows %}<tr id="ev-{{ c.position }}"><td>{{ c.position }}</td><td class="hash">{{ c.hash }}</td><td class="mono">{{ c.kind }}</td><td>{{ c.recorded_at }}</td><td>{{ c.stream }}</td><td>{{ c.actor|who }} ({{ c.actor.command }}@{{ c.actor.host }})</td></tr>
{% endfor %}{% endmacro %}
{% macro actor(a) %}{% if a %}<span title="{{ a.command }} on {{ a.host }}">{{ a|who }}</span>{% else %}-{% endif %}{% endmacro %}
{% macro rejection_rows(rows) %}{% for x in rows %}<tr id="ev-{{ x.position }}"><td class="pos">#{{ x.position }}<span class="hash">{{ x.hash }}</span></td><td>{{ x.recorded_at }}</td><td class="nowrap">{{ actor(x.actor) }}</td><td class="mono" title="{{ x.artifact_sha256 }}">{{ x.artifact_sha256|short }}<br><span class="muted">{{ x.source }}</span></td><td>{{ x.error_code }}</td><td>{{ x.skill_id }} {{ x.version }} {{ x.publisher }}</td><td>{{ x.message }}</td></tr>
{% endfor %}{% endmacro %}'''

OLD_MD_MACROS = '''\
{% macro posture_rows(versions) %}
{% for p in versions %}
| {{ p.skill_id }} | {{ p.version }} | {{ p.publisher }} | {{ p.display_name or p.name }}{% if p.description %}: {{ p.description }}{% endif %} | {{ p.status }} | {{ p.current|yes }} | {{ p.eligible|yes }}{% if p.eligibility_reasons %} ({{ p.eligibility_reasons|join(", ") }}){% endif %} | {{ p.trust_decision }} | {{ p.key_id|code }}{% if p.key_revoked %} revoked{% endif %} | {% if p.last_audit %}{{ "passed" if p.last_audit.passed else "FAILED" }} ({{ p.last_audit.trigger }}, policy v{{ p.last_audit.policy_version }}) {{ p.last_audit.at }}{% else %}none{% endif %} | {{ [p.status_reason_code, p.status_reason]|select|join(": ") or "-" }} | {{ p.evidence|links }} |
{% endfor %}
{% endmacro %}
{% macro entry_rows(entries, stream) %}
{% for e in entries %}
| {{ e.position|anchor }} {{ e.hash|code }} | {{ e.recorded_at }} | {{ e.actor|who }} |{% if stream %} {{ e.stream }} |{% endif %} {{ e.kind|code }} {{ e.summary }} | {{ e.version }} | {{ e.reason_code }} | {{ e.reason }} |
{% endfor %}
{% endmacro %}
{% macro finding_open(f) %}
- **{{ f.id|code }} {{ f.title }}** ({{ f.kind|code }})
  {{ f.detail }}
{% for c in f.changes %}
  - {{ c.key|code }}: {{ c.old|value }} → {{ c.new|value }} ({{ c.direction }})
{% endfor %}
  {%+ if f.skill_id %}Skill {{ f.skill_id }} {{ f.version }}. {% endif %}{% if f.publisher %}Publisher {{ f.publisher }}. {% endif %}{% if f.count > 1 %}{{ f.count }} events. {% endif %}Evidence: {% endmacro %}
{% macro cited_rows(rows) %}
{% for c in rows %}
| {{ c.position|anchor }} | {{ c.hash|code }} | {{ c.kind|code }} | {{ c.recorded_at }} | {{ c.stream }} | {{ c.actor|who }} ({{ c.actor.command }}@{{ c.actor.host }}) |
{% endfor %}
{% endmacro %}
{% macro rejection_rows(rows) %}
{% for x in rows %}
| {{ x.position|anchor }} {{ x.hash|code }} | {{ x.recorded_at }} | {{ x.actor|who }} | {{ x.artifact_sha256|short|code }} from {{ x.source }} | {{ x.error_code }} | {{ x.skill_id }} {{ x.version }} {{ x.publisher }} | {{ x.message }} |
{% endfor %}
{% endmacro %}'''

NASTY = ["plain", "", "<script>alert('x')</script>", 'a "quoted" & <b>bold</b>',
         "pipe | back`tick` *em* _u_ [l](u)",
         "bidi \u202eevil\u202c zero\u200bwidth", "line\nbreak\ttab\r", "# heading", "caf\u00e9 \u00a0nbsp", "1.2.3-rc.1+b"]


def _text(i: int) -> str:
    return NASTY[i % len(NASTY)]


def _maybe(i: int) -> str | None:
    return None if i % 3 == 0 else _text(i)


def _actor(i: int) -> Actor:
    return Actor(principal=_text(i), host=_text(i + 1), command=_text(i + 2), os_user=_maybe(i + 3),
                 os_uid=i if i % 2 else None)


def _entries() -> list[TimelineEntry]:
    return [TimelineEntry(position=i + 1, hash=_text(i + 4) if i % 4 == 0 else f"{i:064x}", recorded_at=_text(i + 5),
                          stream=_text(i + 6), actor=_actor(i), kind=_text(i + 7), version=_maybe(i + 8),
                          reason=_maybe(i + 9), reason_code=_maybe(i + 1), summary=_text(i + 2), details={})
            for i in range(40)]


def _postures() -> list[VersionPosture]:
    out = []
    for i in range(40):
        audit = None if i % 4 == 0 else LastAudit(
            at=_text(i), trigger=_text(i + 1), passed=i % 2 == 0, policy_version=i,
            failed_checks=[_text(j) for j in range(i % 3)], position=i + 1, hash=_text(i + 2))
        out.append(VersionPosture(
            skill_id=_text(i), version=_text(i + 1), publisher=_text(i + 2), name=_maybe(i + 3),
            display_name=_maybe(i + 4), description=_maybe(i + 5), installed=i % 5 != 0, status=_maybe(i + 6),
            current=i % 2 == 1, eligible=i % 3 == 1, eligibility_reasons=[_text(j) for j in range(i % 3)],
            trust_decision=_text(i + 7), key_id=_text(i + 8), key_revoked=i % 4 == 1, payload_sha256="",
            artifact_sha256="", installed_at=None, last_audit=audit, status_reason_code=_maybe(i + 9),
            status_reason=_maybe(i + 1),
            evidence=[Evidence(position=j + 1, hash=_text(j)) for j in range(i % 4)]))
    return out


@pytest.fixture(scope="module")
def old_html():
    return html_environment().from_string(OLD_HTML_MACROS).module


@pytest.fixture(scope="module")
def old_md():
    return markdown_environment().from_string(OLD_MD_MACROS).module


@pytest.mark.parametrize("stream", [False, True])
def test_entry_rows_are_the_macros(old_html, old_md, stream: bool) -> None:
    entries = _entries()
    for chunk in (entries[:1], entries[:7], entries, []):
        assert str(rows.html_entry_rows(chunk, stream)) == str(old_html.entry_rows(chunk, stream))
        assert str(rows.md_entry_rows(chunk, stream)) == str(old_md.entry_rows(chunk, stream))


def test_posture_and_evidence_are_the_macros(old_html, old_md) -> None:
    postures = _postures()
    for _key, group in itertools.groupby(postures, key=lambda p: p.skill_id):
        versions = list(group)
        assert str(rows.html_posture(versions[0].skill_id, versions)) == str(
            old_html.posture_skill(versions[0].skill_id, versions))
        assert str(rows.md_posture_rows(versions)) == str(old_md.posture_rows(versions))
    for p in postures:
        assert str(rows.html_posture(p.skill_id, [p])) == str(old_html.posture_skill(p.skill_id, [p]))
        assert str(rows.md_posture_rows([p])) == str(old_md.posture_rows([p]))
        assert str(rows.html_evidence(p.evidence)) == str(old_html.ev(p.evidence))


def _findings() -> list[StreamedFinding]:
    values = [None, 3, 2.5, True, "<b>", {"a": [1, "|"]}, ["x", None]]
    out = []
    for i in range(30):
        changes = [PolicyChange(key=_text(i + j), old=values[(i + j) % len(values)], new=values[(i + 2 * j) % len(values)],
                                direction=("stricter", "looser", "changed")[j % 3]) for j in range(i % 3)]
        out.append(StreamedFinding(Finding(
            id=_text(i) if i % 5 == 0 else f"F-{i}", kind=_text(i + 1), severity=("high", "medium", "low")[i % 3],
            title=_text(i + 2), detail=_text(i + 3), skill_id=_maybe(i + 4), version=_maybe(i + 5),
            publisher=_maybe(i + 6), at=_maybe(i + 7), actor=_maybe(i + 8), count=i % 4, changes=changes,
            evidence=[])))
    return out


def _cited() -> list[CitedEvent]:
    return [CitedEvent(position=i + 1, hash=_text(i) if i % 3 == 0 else f"{i:064x}", kind=_text(i + 1),
                       recorded_at=_text(i + 2), stream=_text(i + 3), actor=_actor(i)) for i in range(30)]


def _rejections() -> list[Rejection]:
    return [Rejection(position=i + 1, hash=_text(i) if i % 3 == 0 else f"{i:064x}", recorded_at=_text(i + 1),
                      actor=_actor(i), artifact_sha256=_text(i + 2) if i % 2 else f"{i:064x}", source=_text(i + 3),
                      error_code=_text(i + 4), message=_text(i + 5), skill_id=_maybe(i + 6), version=_maybe(i + 7),
                      publisher=_maybe(i + 8)) for i in range(30)]


def test_rejection_rows_are_the_macros(old_html, old_md) -> None:
    rejections = _rejections()
    for chunk in (rejections[:1], rejections, []):
        assert str(rows.html_rejection_rows(chunk)) == str(old_html.rejection_rows(chunk))
        assert str(rows.md_rejection_rows(chunk)) == str(old_md.rejection_rows(chunk))


def test_findings_and_appendix_are_the_macros(old_html, old_md) -> None:
    for f in _findings():
        assert str(rows.html_finding_open(f)) == str(old_html.finding_open(f))
        assert str(rows.md_finding_open(f)) == str(old_md.finding_open(f))
    cited = _cited()
    for chunk in (cited[:1], cited, []):
        assert str(rows.html_cited_rows(chunk)) == str(old_html.cited_rows(chunk))
        assert str(rows.md_cited_rows(chunk)) == str(old_md.cited_rows(chunk))


# The findings loops of report.html.j2 and report.md.j2 before ``findings`` replaced them.
OLD_HTML_FINDINGS = (
    "{% for f in items %}{{ finding_open(f) }}{% for chunk in f.evidence|batch(256) %}{% if not loop.first %}, "
    "{% endif %}{{ ev(chunk) }}{% else %}none recorded in the journal{% endfor %}{{ finding_close() }}{% endfor %}")
OLD_FINDING_CLOSE = "{% macro finding_close() %}</div>\n</article>\n{% endmacro %}"  # parts.html.j2's
OLD_MD_FINDINGS = (
    "{% for f in items %}{{ finding_open(f)|rendered }}{% for chunk in f.evidence|batch(256) %}{% if not loop.first %}"
    ", {% endif %}{{ chunk|links }}{% else %}none recorded in the journal{% endfor %}\n\n{% endfor %}")


@pytest.mark.parametrize("cited", [0, 1, 3, 256, 257, 700])
def test_findings_with_their_evidence_are_the_template_loops(old_html, cited: int) -> None:
    """Each finding, its evidence streamed in batches (none, one, several, batch edges) or the
    note that there is none: what the templates' loops wrote, in both formats."""
    findings = _findings()

    def streamed() -> list[StreamedFinding]:
        return [StreamedFinding(f.finding, iter([Evidence(position=j + 1, hash=_text(i + j) if j % 5 == 0 else
                                                         f"{j:064x}") for j in range(cited if i % 2 else i % 3)]))
                for i, f in enumerate(findings)]

    html_env, md_env = html_environment(), markdown_environment()
    html_loop = html_env.from_string(OLD_HTML_FINDINGS)
    md_loop = md_env.from_string(OLD_MD_FINDINGS)
    finding_close = html_env.from_string(OLD_FINDING_CLOSE).module.finding_close
    old = html_loop.render(items=streamed(), finding_open=rows.html_finding_open, ev=old_html.ev,
                           finding_close=finding_close)
    assert "".join(rows.html_findings(streamed())) == old
    old = md_loop.render(items=streamed(), finding_open=rows.md_finding_open)
    assert "".join(rows.md_findings(streamed())) == old
    if cited > 256:  # the evidence is written as it is read, not gathered first
        assert len(list(rows.md_findings(streamed()[1:2]))) == 1 + cited // 256


def test_rows_escape_what_they_show() -> None:
    """No journal value reaches the output unescaped (what the macros guaranteed)."""
    html = str(rows.html_entry_rows(_entries(), True)) + str(rows.html_posture("<x>", _postures()))
    assert "<script>" not in html and "\u202e" not in html and "[U+202E]" in html
    md = rows.md_entry_rows(_entries(), True) + rows.md_posture_rows(_postures())
    assert "<script>" not in md and "](u)" not in md and "\u202e" not in md


def test_md_escape_is_the_translation() -> None:
    """md_escape's replace chain (text of 8 characters or more) gives what the table gives."""
    import random

    from skill_ledger.projections.report.render import _MD_TABLE, md_escape, visible

    rng = random.Random(7)
    alphabet = "ab1 \\&<>;!\"#$%'()*+,-./:=?@[]^_`{|}~\n\u202e\u00e9"
    for n in list(range(20)) + [40, 200]:
        for _ in range(50):
            text = "".join(rng.choice(alphabet) for _ in range(n))
            assert md_escape(text) == visible(text).translate(_MD_TABLE), text
    assert md_escape(None) == "\\-" and md_escape(12345678) == "12345678"
