"""The ``skills`` console script.

``skills --version`` (alone or with ``--json``) is answered here, before click and the command
table are imported: it is what wrappers, agents and bug reports run to probe the tool, and
importing click alone costs more than Python's own start-up. Every other invocation goes to the
click group in ``cli/main.py``; ``tests/cli/test_cli_conventions.py`` checks that both paths print
the same thing.
"""

from __future__ import annotations

import sys

_VERSION_ONLY = {"--version", "--json"}


def main() -> None:
    args = sys.argv[1:]
    if "--version" in args and set(args) <= _VERSION_ONLY:
        import json

        from skill_ledger.versions import version_info, version_text

        info = version_info()
        print(json.dumps(info, indent=2, ensure_ascii=False) if "--json" in args else version_text(info))
        return
    from .main import main as click_main

    click_main()
