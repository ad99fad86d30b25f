"""Compile the report's templates to Python modules ahead of time (``compiled/``), so a report
does not spend about 20 ms a format compiling them.

    python -m skill_ledger.projections.report.precompile

writes ``compiled/html/`` and ``compiled/markdown/`` (Jinja2's ``compile_templates``, one module
a template) and ``compiled/sources.json`` (the SHA-256 of every template and the Jinja2 version).
``render`` uses the modules only while that manifest matches the templates and the Jinja2 it
runs with; otherwise it compiles the templates as before, so a stale ``compiled/`` is slower,
never wrong. ``tests/projections/test_report_templates.py`` fails when ``compiled/`` is not what
this writes.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from .render import (
    COMPILED,
    COMPILED_MANIFEST,
    KINDS,
    compiled_manifest,
    make_html_environment,
    make_markdown_environment,
)


def compile_into(target: Path) -> None:
    """The compiled templates and their manifest in ``target`` (replacing what was there)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    makers = {"html": make_html_environment, "markdown": make_markdown_environment}
    for kind, suffix in KINDS.items():
        env = makers[kind](compiled=False)
        env.compile_templates(target / kind, filter_func=lambda name, suffix=suffix: name.endswith(suffix),
                              zip=None, ignore_errors=False)
    (target / COMPILED_MANIFEST).write_text(json.dumps(compiled_manifest(), indent=2, sort_keys=True) + "\n",
                                            "utf-8")


def main() -> int:
    compile_into(COMPILED)
    print(f"compiled the report templates into {COMPILED}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
