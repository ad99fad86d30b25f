"""What ``skills --version`` reports: this package's version, the runtime version and protocol
major used for compatibility checks, and the installed versions of the libraries that decide
what runs (wasmtime), how the journal is kept (eventsourcing) and how signatures are checked
(cryptography).

A library's version is read from its installed ``*.dist-info/METADATA`` without importing the
library (importing wasmtime alone costs more than Python's start-up) and without
``importlib.metadata``, whose imports (email, zipfile, csv, ...) cost about as much again as
Python's start-up on every call. The scan finds what ``importlib.metadata.version`` finds for a
normally installed distribution: the first matching ``.dist-info`` directory along ``sys.path``.
Anything else (a zipped or egg install) falls back to ``importlib.metadata`` itself.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable
from typing import Any

LIBRARIES = ("wasmtime", "eventsourcing", "cryptography")


def normalize(name: str) -> str:
    """A distribution name compared the packaging way (PEP 503): case and runs of ``-_.`` ignored."""
    out: list[str] = []
    for ch in name.lower():
        if ch in "-_.":
            if out and out[-1] == "-":
                continue
            ch = "-"
        out.append(ch)
    return "".join(out)


def _metadata_version(path: str) -> str | None:
    """The ``Version`` header of a core-metadata file (the headers end at the first blank line)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, sep, value = line.partition(":")
                if sep and key.strip().lower() == "version":
                    return value.strip() or None
    except OSError:
        return None
    return None


def _dist_info_version(wanted: str, entries: Iterable[str]) -> str | None:
    for entry in entries:
        try:
            names = sorted(n for n in os.listdir(entry or ".") if n.endswith(".dist-info"))
        except OSError:  # a missing directory, a zip file on sys.path, ...
            continue
        for name in names:
            dist, sep, _ = name[: -len(".dist-info")].partition("-")
            if sep and normalize(dist) == wanted:
                version = _metadata_version(os.path.join(entry or ".", name, "METADATA"))
                if version is not None:
                    return version
    return None


def distribution_version(name: str, path: Iterable[str] | None = None) -> str | None:
    """The installed version of distribution ``name``, or ``None`` when it is not installed."""
    found = _dist_info_version(normalize(name), sys.path if path is None else path)
    if found is not None or path is not None:
        return found
    import importlib.metadata  # rare: installed in a form the scan above does not read

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def version_info() -> dict[str, Any]:
    """The ``skills --version`` document."""
    from skill_ledger.domain.constants import ENGINE_VERSION, PROTOCOL_MAJOR, RUNTIME_VERSION

    return {
        "engine_version": ENGINE_VERSION,
        "runtime_version": RUNTIME_VERSION,
        "protocol_major": PROTOCOL_MAJOR,
        "libraries": {name: distribution_version(name) for name in LIBRARIES},
        "python": platform.python_version(),
    }


def version_text(info: dict[str, Any]) -> str:
    """The human form: the first line as before (scripts read it), then one line per library."""
    lines = [f"skills {info['engine_version']} (runtime {info['runtime_version']}, "
             f"protocol major {info['protocol_major']})"]
    lines += [f"{name} {version or 'not installed'}" for name, version in info["libraries"].items()]
    lines.append(f"Python {info['python']}")
    return "\n".join(lines)
