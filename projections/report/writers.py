"""The report's three forms, written as a stream: JSON (the document itself), Markdown, and one
self-contained HTML file.

A writer renders the parts that are folded one skill at a time (posture rows, timeline
entries) while the skills are folded, into the spool's files; then :meth:`Writer.document`
writes the whole document in order, reading every big part from an iterator (the spool) or
copying it from those files, so a report of a million entries never is in memory.

JSON is written by hand in exactly the layout of ``msgspec.json.format(..., indent=2)`` over
the encoded :class:`~.model.Report` (struct members in declaration order, dictionary keys
sorted): the tests check that decoding the stream and formatting it again gives the same bytes.
HTML and Markdown are rendered by the Jinja2 templates ``report.*.j2`` (the skeleton) and
``parts.*.j2`` (the pieces), with the environments of ``render.py`` (autoescaping; the Markdown
escape as ``finalize``), but for the rows there is one of per event or version (``rows.py``:
the same escaping, written in Python).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgspec
from markupsafe import Markup

from .model import (
    SEVERITIES,
    CitedEvent,
    Evidence,
    Finding,
    KeyTrust,
    Rejection,
    Report,
    Revocation,
    Scope,
    Summary,
    TimelineEntry,
    VersionPosture,
)
from .render import FORMATS, html_environment, markdown_environment, style
from .rows import (
    RenderedFinding,
    html_entry_rows,
    html_findings,
    html_posture,
    md_entry_rows,
    md_findings,
    md_posture_rows,
)

Chunks = Callable[[], Iterator[bytes]]


class StreamedFinding:
    """A finding whose evidence is read while it is written (an aggregated finding may cite a
    million denials). Reads as the :class:`Finding` it wraps; ``evidence`` is an iterator."""

    __slots__ = ("finding", "evidence")

    def __init__(self, finding: Finding, evidence: Iterable[Evidence] | None = None) -> None:
        self.finding = finding
        self.evidence = finding.evidence if evidence is None else evidence

    def __getattr__(self, name: str) -> Any:
        return getattr(self.finding, name)


@dataclass
class Document:
    """Everything a writer needs for the whole document; every iterable is read once, in the
    document's order (so the appendix, read last, may depend on what was written before it)."""

    summary: Summary
    scope: Scope
    finding_groups: Iterable[tuple[str, int, Iterable[StreamedFinding]]]  # per severity with findings
    posture: Chunks  # rendered by Writer.posture, in order
    timelines: Chunks  # rendered by Writer.timeline_*, in order
    keys: Iterable[KeyTrust]
    revocations: Iterable[Revocation]
    trust_events: Iterable[TimelineEntry]
    rejections: Iterable[Rejection]
    other_events: Iterable[TimelineEntry]
    cited: Iterable[CitedEvent]


class Writer:
    """One report's writer (it keeps the separators' state between the calls)."""

    fmt = ""
    joiner = b""  # between the parts two writers rendered of one list (JSON: a comma)

    def posture(self, rows: list[VersionPosture]) -> bytes:
        """The posture rows of one skill (its versions, in order)."""
        raise NotImplementedError

    def timeline_open(self, skill_id: str) -> bytes:
        raise NotImplementedError

    def timeline_entries(self, entries: list[TimelineEntry]) -> bytes:
        raise NotImplementedError

    def timeline_close(self) -> bytes:
        raise NotImplementedError

    def document(self, doc: Document, out: BinaryIO) -> None:
        raise NotImplementedError

    def finding_text(self, f: Finding) -> bytes:
        """A finding with its evidence, as the document writes it (rendered while the skills are
        folded, by whichever process folds them)."""
        raise NotImplementedError


def writer_for(fmt: str) -> Writer:
    if fmt == "json":
        return JsonWriter()
    if fmt in ("html", "markdown"):
        return TemplateWriter(fmt)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


# --- JSON ----------------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder(order="deterministic")
_INDENT = [b"  " * d for d in range(8)]


def _fmt(value: Any, depth: int) -> bytes:
    """``value`` formatted as msgspec does, for a place ``depth`` levels deep."""
    raw = msgspec.json.format(_encoder.encode(value), indent=2)
    return raw.replace(b"\n", b"\n" + _INDENT[depth]) if depth else raw


def _fmt_items(items: list[Any], depth: int) -> bytes:
    """``items`` formatted as the members of a list ``depth`` levels deep, joined by ``,\n``
    (one encode and one format for many items: what makes a long timeline cheap)."""
    raw = msgspec.json.format(_encoder.encode(items), indent=2)  # "[\n  {...},\n  {...}\n]"
    pad = _INDENT[depth - 1]
    return pad + raw[2:-2].replace(b"\n", b"\n" + pad)


def _json_list(w: Callable[[bytes], Any], items: Iterable[Callable[[Callable[[bytes], Any]], None] | bytes],
               depth: int) -> None:
    """A list ``depth`` levels deep; each item is its bytes (formatted one level deeper) or a
    function that writes them."""
    first = True
    for item in items:
        w((b"[\n" if first else b",\n") + _INDENT[depth + 1])
        first = False
        if isinstance(item, bytes):
            w(item)
        else:
            item(w)
    w(b"[]" if first else b"\n" + _INDENT[depth] + b"]")


class JsonWriter(Writer):
    fmt = "json"
    joiner = b","

    def __init__(self) -> None:
        self._first_posture = self._first_timeline = self._first_entry = True

    def posture(self, rows: list[VersionPosture]) -> bytes:
        if not rows:
            return b""
        sep = b"\n" if self._first_posture else b",\n"
        self._first_posture = False
        return sep + _fmt_items(rows, 2)

    def timeline_open(self, skill_id: str) -> bytes:
        sep = b"\n" if self._first_timeline else b",\n"
        self._first_timeline, self._first_entry = False, True
        return (sep + _INDENT[2] + b"{\n" + _INDENT[3] + b'"skill_id": ' + _encoder.encode(skill_id) + b",\n"
                + _INDENT[3] + b'"entries": [')

    def timeline_entries(self, entries: list[TimelineEntry]) -> bytes:
        if not entries:
            return b""
        sep = b"\n" if self._first_entry else b",\n"
        self._first_entry = False
        return sep + _fmt_items(entries, 4)

    def timeline_close(self) -> bytes:
        end = b"]" if self._first_entry else b"\n" + _INDENT[3] + b"]"
        return end + b"\n" + _INDENT[2] + b"}"

    def finding_text(self, f: Finding) -> bytes:
        return _fmt(f, 2)

    def document(self, doc: Document, out: BinaryIO) -> None:
        w = out.write
        w(b'{\n  "report_version": 1,\n  "summary": ' + _fmt(doc.summary, 1) + b',\n  "scope": ' + _fmt(doc.scope, 1)
          + b',\n  "findings": ')
        _json_list(w, (f.text if type(f) is RenderedFinding else self._finding(f)
                       for _sev, _n, found in doc.finding_groups for f in found), 1)
        w(b',\n  "posture": ')
        self._splice(w, doc.posture)
        w(b',\n  "timelines": ')
        self._splice(w, doc.timelines)
        w(b',\n  "trust": {\n    "keys": ')
        _json_list(w, (_fmt(k, 3) for k in doc.keys), 2)
        w(b',\n    "revocations": ')
        _json_list(w, (_fmt(r, 3) for r in doc.revocations), 2)
        w(b',\n    "events": ')
        _json_list(w, (_fmt(e, 3) for e in doc.trust_events), 2)
        w(b'\n  },\n  "rejections": ')
        _json_list(w, (_fmt(r, 2) for r in doc.rejections), 1)
        w(b',\n  "other_events": ')
        _json_list(w, (_fmt(e, 2) for e in doc.other_events), 1)
        w(b',\n  "cited_events": ')
        _json_list(w, (_fmt(c, 2) for c in doc.cited), 1)
        w(b"\n}\n")

    @staticmethod
    def _finding(f: StreamedFinding) -> Callable[[Callable[[bytes], Any]], None]:
        """A finding two levels deep, its evidence (its last member) written as it is read."""
        base = _fmt(msgspec.structs.replace(f.finding, evidence=[]), 2)
        tail = b'"evidence": []\n' + _INDENT[2] + b"}"
        if not base.endswith(tail):  # pragma: no cover - the model's last member is the evidence
            raise AssertionError("a finding's last member must be its evidence")

        def write(w: Callable[[bytes], Any]) -> None:
            w(base[:-len(tail)] + b'"evidence": ')
            _json_list(w, (_fmt(e, 4) for e in f.evidence), 3)
            w(b"\n" + _INDENT[2] + b"}")

        return write

    @staticmethod
    def _splice(w: Callable[[bytes], Any], chunks: Chunks) -> None:
        """A list the writer rendered in parts (each item starts with its separator)."""
        empty = True
        for chunk in chunks():
            if chunk:
                w(b"[" + chunk if empty else chunk)
                empty = False
        w(b"[]" if empty else b"\n  ]")


# --- HTML and Markdown ----------------------------------------------------------------------------


def _markup(chunks: Chunks) -> Iterator[Markup]:
    """Text the writer already rendered (and escaped), decoded across chunk boundaries."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    for chunk in chunks():
        text = decoder.decode(chunk)
        if text:
            yield Markup(text)  # noqa: S704 - rendered by the parts templates, every value escaped there
    rest = decoder.decode(b"", final=True)
    if rest:
        yield Markup(rest)  # noqa: S704


class TemplateWriter(Writer):
    _FLUSH = 1 << 16

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.html = fmt == "html"
        env = html_environment() if self.html else markdown_environment()
        ext = "html" if self.html else "md"
        self.parts = env.get_template(f"parts.{ext}.j2").module
        self.entry_rows = html_entry_rows if self.html else md_entry_rows
        self.findings = html_findings if self.html else md_findings
        self.template = env.get_template(f"report.{ext}.j2")

    def posture(self, rows: list[VersionPosture]) -> bytes:
        if self.html:
            return html_posture(rows[0].skill_id, rows).encode("utf-8")
        return md_posture_rows(rows).encode("utf-8")

    def timeline_open(self, skill_id: str) -> bytes:
        return str(self.parts.timeline_open(skill_id)).encode("utf-8")

    def timeline_entries(self, entries: list[TimelineEntry]) -> bytes:
        return self.entry_rows(entries, False).encode("utf-8")

    def timeline_close(self) -> bytes:
        return str(self.parts.timeline_close()).encode("utf-8")

    def finding_text(self, f: Finding) -> bytes:
        return "".join(self.findings([StreamedFinding(f)])).encode("utf-8")

    def document(self, doc: Document, out: BinaryIO) -> None:
        context: dict[str, Any] = dict(
            parts=self.parts, report_version=1, summary=doc.summary, scope=doc.scope,
            finding_groups=doc.finding_groups, posture_chunks=_markup(doc.posture),
            timeline_chunks=_markup(doc.timelines), keys=doc.keys, revocations=doc.revocations,
            trust_events=doc.trust_events, rejections=doc.rejections, other_events=doc.other_events, cited=doc.cited)
        if self.html:
            css, style_hash = style()
            context.update(css=Markup(css), style_hash=style_hash)  # noqa: S704 - our own stylesheet
        pending: list[str] = []
        size = 0
        for piece in self.template.generate(**context):
            if len(piece) >= self._FLUSH:  # a spooled chunk: written as it is, not copied into a join
                out.write("".join(pending).encode("utf-8"))
                pending.clear()
                size = 0
                out.write(piece.encode("utf-8"))
                continue
            pending.append(piece)
            size += len(piece)
            if size >= self._FLUSH:
                out.write("".join(pending).encode("utf-8"))
                pending.clear()
                size = 0
        out.write("".join(pending).encode("utf-8"))


# --- an in-memory report ----------------------------------------------------------------------------


def write_document(report: Report, fmt: str, out: BinaryIO) -> None:
    """``report`` (a whole :class:`Report` in memory) in ``fmt``: the same writers as a stream."""
    writer = writer_for(fmt)
    posture: list[bytes] = []
    by_skill: dict[str, list[VersionPosture]] = {}
    for p in report.posture:
        by_skill.setdefault(p.skill_id, []).append(p)
    for rows in by_skill.values():
        posture.append(writer.posture(rows))
    timelines: list[bytes] = []
    for t in report.timelines:
        timelines += [writer.timeline_open(t.skill_id), writer.timeline_entries(t.entries), writer.timeline_close()]
    groups = []
    for severity in SEVERITIES:
        found = [StreamedFinding(f) for f in report.findings if f.severity == severity]
        if found:
            groups.append((severity, len(found), found))
    writer.document(Document(
        summary=report.summary, scope=report.scope, finding_groups=groups, posture=lambda: iter(posture),
        timelines=lambda: iter(timelines), keys=report.trust.keys, revocations=report.trust.revocations,
        trust_events=report.trust.events, rejections=report.rejections, other_events=report.other_events,
        cited=report.cited_events), out)
