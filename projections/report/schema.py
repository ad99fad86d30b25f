"""The JSON Schema of ``report_version`` 1, shipped as package data.

The file is generated from the structs of ``model.py`` (so it cannot describe another
document than the one the code writes) and committed, so that readers without this package
can validate a report. The tests fail when the file and the structs drift apart; regenerate
with ``python -m skill_ledger.projections.report.schema``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import msgspec

from .model import REPORT_VERSION, Report

SCHEMA_FILE = f"compliance-report-v{REPORT_VERSION}.json"
SCHEMA_ID = f"https://skill-ledger.invalid/schema/{SCHEMA_FILE}"


def generated_schema() -> dict[str, Any]:
    """The schema as the structs define it (draft 2020-12, every object closed)."""
    body = msgspec.json.schema(Report)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"skill-ledger compliance report, report_version {REPORT_VERSION}",
        "description": "The JSON form of `skills report compliance` (docs/compliance-report.md).",
        **body,
    }


def schema_text() -> str:
    return json.dumps(generated_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load_schema() -> dict[str, Any]:
    """The shipped schema file."""
    text = resources.files(__package__).joinpath("schema", SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def main() -> None:  # pragma: no cover - a maintainer's tool
    from pathlib import Path

    path = Path(__file__).resolve().parent / "schema" / SCHEMA_FILE
    path.parent.mkdir(exist_ok=True)
    path.write_text(schema_text(), encoding="utf-8")
    print(path)


if __name__ == "__main__":  # pragma: no cover
    main()
