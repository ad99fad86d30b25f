"""``skills demo``: the whole story in one command, in a fresh home.

Builds the bundled example skill with a new key, installs it (TOFU), runs one of its
tools, quarantines it, shows that a run is refused, re-enables it (re-verify and
re-audit), and returns the index and the journal.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from skill_ledger.adapters.packaging.package import FileSpec, build_package, signing_time_ms
from skill_ledger.adapters.readmodel.views import open_views
from skill_ledger.adapters.storage.keys import generate_key_file, read_seed_file
from skill_ledger.adapters.usecases import lifecycle
from skill_ledger.adapters.usecases.install import install
from skill_ledger.adapters.usecases.session import ledger_session
from skill_ledger.adapters.usecases.unit_of_work import Ledger

from .settings import Settings, resolve

EXAMPLE_DIR = Path(str(resources.files("skill_ledger.examples") / "hello"))  # package data

Step = Callable[[str, dict[str, Any]], None]


def example_inputs(example: Path = EXAMPLE_DIR) -> tuple[Path, list[FileSpec], list[FileSpec]]:
    manifest = example / "skill.toml"
    modules = [FileSpec(p.name, str(p)) for p in sorted((example / "modules").glob("*.wasm"))]
    assets = [FileSpec(str(p.relative_to(example / "assets")), str(p))
              for p in sorted((example / "assets").rglob("*")) if p.is_file()]
    return manifest, modules, assets


def run_demo(home: str | None, *, actor: str | None, step: Step, force: bool = False) -> dict[str, Any]:
    """The demo in ``home`` (a new temporary directory when None). A given home that exists and is
    not empty is refused unless ``force``: the demo would append its events to a real journal
    (and pin its freshly generated key for the example publisher)."""
    if home:
        _check_demo_home(Path(home), force)
    home_path = Path(home) if home else Path(tempfile.mkdtemp(prefix="skill-ledger-demo-"))
    settings: Settings = resolve(home=str(home_path), journal=str(home_path / "journal.db"), actor=actor,
                                 command="demo")
    work = home_path / "demo-build"
    work.mkdir(parents=True, exist_ok=True)

    key_path = work / "publisher-key.pem"
    facts = generate_key_file(str(key_path), force=True)
    step("generated a publisher key", {"key_id": facts.key_id, "path": str(key_path)})

    manifest, modules, assets = example_inputs()
    artifact = work / "hello.palyra-skill"
    built = build_package(manifest_path=str(manifest), modules=modules, assets=assets, sbom_path=None,
                          provenance_path=None, output=str(artifact), signing_seed=read_seed_file(str(key_path)),
                          signed_at_unix_ms=signing_time_ms(False))
    step("built and signed the example skill", {"artifact": str(artifact), "entries": built.entries,
                                                 "payload_sha256": built.payload_sha256})

    skill_id = built.manifest.skill_id
    with ledger_session(settings) as ledger:
        installed = install(ledger, str(artifact), allow_tofu=True)
    step("installed it (publisher key pinned on first use)",
         {"skill_id": installed.skill_id, "version": installed.version, "status": installed.status,
          "trust_decision": installed.trust_decision, "positions": installed.positions})

    tool_id = built.manifest.entrypoints.tools[0].id
    step(*_run(settings, tool_id, {"text": "hello from the demo"}))
    for tool in built.manifest.entrypoints.tools[1:]:
        step(*_run(settings, tool.id, {"text": "four words right here"}))

    with ledger_session(settings) as ledger:
        q = lifecycle.quarantine(ledger, skill_id, None, "demo: pretend an operator saw something odd")
    step("quarantined it", {"status": q.status, "positions": q.positions})

    step(*_run(settings, tool_id, {"text": "this run must be refused"}))

    with ledger_session(settings) as ledger:
        e = lifecycle.enable(ledger, skill_id, None, "demo: checked, re-enabling")
    step("re-enabled it after a fresh verify and audit", {"status": e.status, "positions": e.positions})

    step(*_run(settings, tool_id, {"text": "running again"}))

    from skill_ledger.projections.queries import list_entries

    store = open_views(settings)
    try:
        index = list_entries(store.con)
    finally:
        store.close()
    from skill_ledger.adapters.journal.read import journal_events

    ledger = Ledger(settings)
    try:
        journal = list(journal_events(ledger, skill=None, kinds=(), since=None, until=None, limit=None))
    finally:
        ledger.close()
    return {"home": str(home_path), "artifact": str(artifact), "index": index, "journal": journal}


def _check_demo_home(home: Path, force: bool) -> None:
    from skill_ledger.domain.errors import UsageError

    from .settings import check_home

    check_home(home.expanduser().resolve(), "--home")  # a file (or below one) is a configuration_error, as everywhere

    try:
        entries = sorted(p.name for p in home.iterdir()) if home.is_dir() else None
    except OSError as e:
        raise UsageError(f"cannot use {home} as the demo's home: {e.strerror or e}", {"home": str(home)}) from None
    if home.exists() and entries is None:
        raise UsageError(f"{home} is not a directory", {"home": str(home)})
    if entries and not force:
        what = "a journal" if "journal.db" in entries else f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
        raise UsageError(f"{home} is not empty (it holds {what}); the demo would add its events and keys to it: "
                         "give a new or empty directory, or --force to run it there anyway",
                         {"home": str(home), "entries": entries[:20]})


def _run(settings: Settings, tool_id: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Run a tool through the runner; a refusal is part of the story, not a failure."""
    try:
        from .runner import run_tool
    except ImportError:
        return ("skipped running a tool (this build has no runner)", {})
    from skill_ledger.domain.errors import SkillLedgerError

    try:
        result = run_tool(settings, tool_id, json.dumps(payload))
    except SkillLedgerError as e:
        return (f"run of {tool_id} refused: {e.code}", {"error": e.to_dict()})
    import msgspec

    return (f"ran {tool_id}", msgspec.to_builtins(result))
