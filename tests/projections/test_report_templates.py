"""The report's templates compiled ahead of time (``projections/report/precompile.py``): the
checked-in modules are exactly what the templates compile to, they are used only while they
match the templates and this Jinja2, and they render what the templates render."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from jinja2 import ModuleLoader, PackageLoader

from skill_ledger.projections.report.precompile import compile_into

render = importlib.import_module("skill_ledger.projections.report.render")  # (the package exports a function render)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and "__pycache__" not in p.parts}


def test_the_compiled_templates_are_current(tmp_path: Path) -> None:
    """Editing a template (or the environments) without running the precompiler fails here:
    ``python -m skill_ledger.projections.report.precompile`` writes ``compiled/`` again."""
    compile_into(tmp_path / "compiled")
    assert _files(tmp_path / "compiled") == _files(render.COMPILED)


def test_the_environments_use_the_compiled_templates_only_while_they_match(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(render.make_markdown_environment().loader, ModuleLoader)
    assert isinstance(render.make_html_environment().loader, ModuleLoader)
    edited = {**render.template_sources(), "report.md.j2": "0" * 64}  # a template changed after compiling
    monkeypatch.setattr(render, "template_sources", lambda: edited)
    assert isinstance(render.make_markdown_environment().loader, PackageLoader)
    assert isinstance(render.make_html_environment().loader, PackageLoader)


def test_a_missing_or_damaged_manifest_means_compiling_the_templates(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "COMPILED", tmp_path)
    assert isinstance(render.make_markdown_environment().loader, PackageLoader)
    (tmp_path / render.COMPILED_MANIFEST).write_text("{not json", "utf-8")
    assert isinstance(render.make_html_environment().loader, PackageLoader)


@pytest.mark.parametrize("kind", ["html", "markdown"])
def test_compiled_and_source_templates_render_the_same(kind: str) -> None:
    make = render.make_html_environment if kind == "html" else render.make_markdown_environment
    name = "parts.html.j2" if kind == "html" else "parts.md.j2"
    compiled, source = make().get_template(name).module, make(compiled=False).get_template(name).module
    for skill_id in ("acme.hello", "<b>|`x`*_\u202e", ""):
        assert str(compiled.timeline_open(skill_id)) == str(source.timeline_open(skill_id))
        assert str(compiled.timeline_close()) == str(source.timeline_close())
