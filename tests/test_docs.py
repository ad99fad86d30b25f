"""The repository documents itself: the CLI reference covers every command and every error
code, and every relative link of the README and of docs/ resolves (file and anchor) inside
the repository."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from skill_ledger.cli.errors import EXIT_CODES
from skill_ledger.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CLI_DOC = DOCS / "cli.md"
MARKDOWN = sorted([ROOT / "README.md", *DOCS.glob("*.md")])

INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def commands() -> list[tuple[str, ...]]:
    """Every command path as `skills --help` (and each group's --help) lists it."""
    out: list[tuple[str, ...]] = []

    def walk(group: click.Group, path: tuple[str, ...]) -> None:
        ctx = click.Context(group, info_name=" ".join(("skills", *path)))
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, name
            out.append((*path, name))
            if isinstance(command, click.Group):
                walk(command, (*path, name))

    walk(cli, ())
    return out


def _prose(text: str) -> str:
    """Markdown without fenced blocks and code spans (where a link is only an example)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*|_(?=\W)|(?<=\W)_", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in FENCE.sub("", path.read_text()).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = _slug(m.group(1))
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
    found |= set(re.findall(r'<a\s+(?:name|id)="([^"]+)"', path.read_text()))
    return found


def relative_links(path: Path) -> list[str]:
    text = _prose(path.read_text())
    targets = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]  # no scheme: relative


def test_the_markdown_files_exist():
    assert CLI_DOC.is_file()
    for name in ("README", "artifact-format", "journal", "cli", "runtime", "threat-model"):
        assert (DOCS / f"{name}.md").is_file(), name


@pytest.mark.parametrize("path", commands(), ids=" ".join)
def test_every_command_is_in_the_cli_reference(path: tuple[str, ...]):
    assert f"skills {' '.join(path)}" in CLI_DOC.read_text(), f"docs/cli.md does not document `skills {' '.join(path)}`"


def test_every_error_code_is_in_the_cli_reference_with_its_exit_status():
    text = CLI_DOC.read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| ([0-9]+)[^|]*\|", text, re.M))
    missing = sorted(set(EXIT_CODES) - set(rows))
    assert not missing, f"error codes missing from docs/cli.md's table: {missing}"
    wrong = {code: (rows[code], exit) for code, exit in EXIT_CODES.items() if int(rows[code]) != exit}
    assert not wrong, f"docs/cli.md gives another exit status (documented, actual): {wrong}"


def test_every_exit_status_is_in_the_cli_reference():
    text = CLI_DOC.read_text()
    for status in sorted(set(EXIT_CODES.values()) | {0}):
        assert re.search(rf"^\| {status} \|", text, re.M), status


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path):
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)}: {broken}"


@pytest.mark.parametrize("path", [ROOT / "README.md", *(DOCS / f"{n}.md" for n in (
    "README", "artifact-format", "journal", "cli", "runtime", "threat-model"))],
    ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_points_outside_the_repository(path: Path):
    """Not even as text: a user of the repository has no `../shared/spec`."""
    assert "../shared" not in path.read_text(), path


def test_the_link_checker_sees_links_and_skips_examples(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("# A `Title`: here\n[a](other.md#x) [b](#a-title-here) ![c](img.png) [d]: ref.md\n"
                    "[e]: defs.md\n`[f](code.md)`\n```\n[g](fenced.md)\n```\n[h](https://example.org/y.md)\n")
    assert relative_links(page) == ["other.md#x", "#a-title-here", "img.png", "defs.md"]
    assert anchors(page) == {"a-title-here"}


CITED_TEST = re.compile(r"`([\w/]*\.py)?::(test_\w+)`|`(test_\w+)`")


def _defined_tests() -> dict[str, set[str]]:
    """test file (relative to tests/) -> the test functions it defines."""
    defines = re.compile(r"^(?:async )?def (test_\w+)", re.M)
    return {p.relative_to(ROOT / "tests").as_posix(): set(defines.findall(p.read_text()))
            for p in (ROOT / "tests").rglob("test_*.py")}


@pytest.mark.parametrize("name", ["threat-model.md", "journal.md", "../README.md"])
def test_every_test_the_docs_cite_exists(name: str):
    """A row that says "prevented" or "detected" names the test that shows it: `file.py::test`,
    `::test` (the file named last), or a bare `test` (anywhere in tests/). It must exist."""
    defined = _defined_tests()
    everywhere = set().union(*defined.values())
    missing, current, cited = [], "", 0
    for m in CITED_TEST.finditer((DOCS / name).read_text()):
        path, test, bare = m.groups()
        cited += 1
        if bare:
            if bare not in everywhere:
                missing.append(bare)
            continue
        current = path or current
        if test not in defined.get(current, set()):
            missing.append(f"{current}::{test}")
    assert cited >= 10, cited
    assert not missing, f"docs/{name} cites tests that do not exist: {missing}"
