"""The HTML compliance report in a real browser: headless Chromium (Debian's ``chromium``;
``scripts/ensure-chromium`` installs it, ``./scripts/test`` runs that first) loads the report
of the scenario journal, takes a screenshot, and gives back the DOM it built. The sections
are there, every finding and cited event has its anchor, and a manifest description holding
a ``<script>`` that would retitle the page and an ``<img onerror>`` that would mark the body
is shown as text and runs nothing. A control page with the same markup unescaped shows that
the browser would have run both: the checks can fail.

Without Chromium the test fails (it never skips)."""

from __future__ import annotations

import html.parser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from helpers_report import HOSTILE, Scenario  # noqa: E402

from skill_ledger.cli.main import cli  # noqa: E402

SECTIONS = ("top", "summary", "findings", "posture", "trust", "policy", "timelines", "rejections", "other-events",
            "appendix")


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if not found:
        pytest.fail("chromium is not installed: run ./scripts/ensure-chromium (Debian: apt-get install chromium)",
                    pytrace=False)
    return found


def browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium, headless, offline and without a profile of its own, on a local file."""
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=3000", *args, page.as_uri()]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


class Dom(html.parser.HTMLParser):
    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.title = ""
        self._in_title = False
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self.text.append(data)

    def ids(self) -> set[str]:
        return {a["id"] for _t, a in self.elements if a.get("id")}

    def body(self) -> dict[str, str | None]:
        return next(a for t, a in self.elements if t == "body")


def test_the_html_report_in_headless_chromium(tmp_path: Path) -> None:
    scenario = Scenario(tmp_path / "home").run()
    page = tmp_path / "report.html"
    r = CliRunner().invoke(cli, ["--home", str(scenario.home), "report", "compliance", "--format", "html",
                                 "--output", str(page), "--max-audit-age", "0s"])
    assert r.exit_code == 0, r.stderr
    json_report = tmp_path / "report.json"
    r = CliRunner().invoke(cli, ["--home", str(scenario.home), "report", "compliance", "--format", "json",
                                 "--output", str(json_report), "--max-audit-age", "0s"])
    assert r.exit_code == 0, r.stderr
    import json

    doc = json.loads(json_report.read_text())

    shot = tmp_path / "report.png"
    browse(page, tmp_path / "profile-shot", "--window-size=1280,2400", f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 50_000  # a rendered page, not a blank one

    dom = Dom(browse(page, tmp_path / "profile-dom", "--dump-dom").stdout)
    # nothing ran: the title is the report's, the body unmarked, no script or image element exists
    assert dom.title.startswith("Compliance report: positions 0..") and "pwned" not in dom.title
    assert "data-pwned" not in dom.body()
    tags = {t for t, _a in dom.elements}
    assert not tags & {"script", "img", "iframe", "object", "embed", "link", "form"}, tags
    # ... and the description is on the page, as text
    assert HOSTILE in "".join(dom.text)
    # the sections, in order, every finding and every shown event with its anchor
    ids = dom.ids()
    assert set(SECTIONS) <= ids
    order = [a["id"] for _t, a in dom.elements if a.get("id") in SECTIONS]
    assert order == list(SECTIONS)
    for f in doc["findings"]:
        assert f["id"] in ids
        for e in f["evidence"]:
            assert f"ev-{e['position']}" in ids
    banner = next(a for t, a in dom.elements if t == "div" and "banner" in (a.get("class") or ""))
    assert banner["class"] == "banner warn"  # verified, with findings
    links = [a["href"] for t, a in dom.elements if t == "a"]
    assert links and all(h and h.startswith("#") and h[1:] in ids for h in links)


def test_the_control_page_shows_the_browser_would_run_the_markup(tmp_path: Path) -> None:
    """The same description written into a page unescaped (and without the report's policy) does
    run: the checks above would see it."""
    control = tmp_path / "control.html"
    control.write_text(f"<!DOCTYPE html><html><head><title>control</title></head><body><p>{HOSTILE}</p></body></html>",
                       encoding="utf-8")
    dom = Dom(browse(control, tmp_path / "profile", "--dump-dom").stdout)
    assert dom.title == "pwned"
    assert dom.body().get("data-pwned") == "1"
