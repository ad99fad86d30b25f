"""The per-tool audit checks (this project's additions to §19.3), emitted for each tool in
manifest order after the per-module checks:

- ``tool_module_resolution`` (``runtime.md``): exactly one module is the tool's;
- ``tool_module_abi``: that module implements a runner ABI for the tool and imports only what
  that ABI provides (``domain.abi``, the rule the runner applies before it loads anything);
- ``tool_schema_references``: the tool's schemas reference nothing outside their own document;
- ``tool_schema_compiles``: both schemas compile for the host (facts from
  ``adapters/audit/schema_facts.py``: invalid schemas and patterns that need backtracking fail).

The schema rules are shared with ``skills package build``, which refuses what they fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from .abi import plan
from .errors import CapabilityDenied
from .schemas import non_local_refs

if TYPE_CHECKING:
    from .audit import AuditCheck, ModuleFacts
    from .manifest import Manifest, Tool

SchemaMember = Literal["input_schema", "output_schema"]
SCHEMA_MEMBERS: tuple[SchemaMember, ...] = ("input_schema", "output_schema")
MAX_REFS_SHOWN = 5


class SchemaFacts(msgspec.Struct, frozen=True, kw_only=True):
    """Whether one tool schema compiles for the host. ``compiled`` is false when compiling was
    not attempted because the schema references outside itself (``tool_schema_references``
    fails it); ``problem`` is why a compiled schema was refused, ``None`` when it compiles."""

    tool_id: str  # trimmed, as ``manifest.tool_ids`` gives it
    member: SchemaMember
    compiled: bool
    problem: str | None = None


def schema_reference_problems(tool: Tool) -> dict[str, list[str]]:
    """``{member: [non-local reference, ...]}`` for the tool's schemas that reference outside
    themselves (empty when every reference is a local ``#...`` fragment)."""
    found = {member: non_local_refs(getattr(tool, member)) for member in SCHEMA_MEMBERS}
    return {member: refs for member, refs in found.items() if refs}


def describe_references(tool_id: str, problems: Mapping[str, list[str]]) -> str:
    parts = []
    for member, refs in problems.items():
        shown = ", ".join(refs[:MAX_REFS_SHOWN]) + (f" and {len(refs) - MAX_REFS_SHOWN} more"
                                                    if len(refs) > MAX_REFS_SHOWN else "")
        parts.append(f"{member} references {shown}")
    return (f"tool '{tool_id}' has schema references outside the schema document: {'; '.join(parts)} "
            "(only local '#...' references are allowed: the host never fetches or reads a schema)")


def describe_compile_problems(tool_id: str, problems: Mapping[str, str]) -> str:
    parts = "; ".join(f"{member}: {problem}" for member, problem in problems.items())
    return f"tool '{tool_id}' has schemas that do not compile for the host: {parts}"


def tool_checks(m: Manifest, modules: Mapping[str, ModuleFacts], usable: Mapping[str, ModuleFacts],
                schemas: Sequence[SchemaFacts]) -> list[AuditCheck]:
    """The four checks of every tool. ``usable``: facts of the modules that passed validation,
    with the imports the allowlist check already refused left out (each problem is reported once)."""
    from .audit import resolve_tool_module
    from .manifest import tool_ids

    facts_by_tool = _schema_facts_by_tool(m, schemas)
    out: list[AuditCheck] = []
    for tool_id, tool in zip(tool_ids(m), m.entrypoints.tools):
        resolution = resolve_tool_module(m, modules, tool)
        out.append(_resolution_check(tool_id, resolution.module_path, resolution.rule, resolution.reason,
                                     resolution.candidates))
        if resolution.module_path is not None and resolution.module_path in usable:
            out.append(_abi_check(m, tool_id, tool, usable[resolution.module_path]))
        out.extend(_schema_checks(tool_id, tool, facts_by_tool[tool_id]))
    return out


def _schema_facts_by_tool(m: Manifest, schemas: Sequence[SchemaFacts]) -> dict[str, dict[str, SchemaFacts]]:
    from .manifest import tool_ids

    by_tool: dict[str, dict[str, SchemaFacts]] = {tid: {} for tid in tool_ids(m)}
    for f in schemas:
        if f.tool_id not in by_tool or f.member in by_tool[f.tool_id]:
            raise ValueError(f"unexpected schema facts for tool '{f.tool_id}' {f.member}")
        by_tool[f.tool_id][f.member] = f
    for tid, members in by_tool.items():
        if set(members) != set(SCHEMA_MEMBERS):
            raise ValueError(f"no schema facts for tool '{tid}'")
    return by_tool


_RULES = {"export": "it exports the tool's name", "only_module": "the artifact's only module",
          "default_module_path": "operator.plugin.default_module_path"}


def _resolution_check(tool_id: str, module_path: str | None, rule: str | None, reason: str | None,
                      candidates: tuple[str, ...]) -> AuditCheck:
    from .audit import check

    if module_path is not None:
        return check("tool_module_resolution", "pass",
                     f"tool '{tool_id}' resolves to module '{module_path}' ({_RULES.get(rule or '', rule)})",
                     {"tool_id": tool_id, "module_path": module_path})
    return check("tool_module_resolution", "fail",
                 f"tool '{tool_id}' cannot be resolved to exactly one module: {reason}",
                 {"tool_id": tool_id, "candidates": list(candidates)})


def _abi_check(m: Manifest, tool_id: str, tool: Tool, facts: ModuleFacts) -> AuditCheck:
    from .audit import check

    entrypoint = m.operator.plugin.default_entrypoint
    try:
        chosen = plan(facts, tool.name, entrypoint)
    except CapabilityDenied as e:
        prefix = f"module {facts.path} was not instantiated: "
        problem = e.message.removeprefix(prefix)
        return check("tool_module_abi", "fail", f"tool '{tool_id}' cannot run on module '{facts.path}': {problem}",
                     {"tool_id": tool_id, "module_path": facts.path, "problem": problem})
    return check("tool_module_abi", "pass",
                 f"tool '{tool_id}' runs on module '{facts.path}' under the {chosen.abi} ABI (entry '{chosen.entry}')",
                 {"tool_id": tool_id, "module_path": facts.path, "abi": chosen.abi, "entry": chosen.entry})


def _schema_checks(tool_id: str, tool: Tool, facts: Mapping[str, SchemaFacts]) -> list[AuditCheck]:
    from .audit import check

    refs = schema_reference_problems(tool)
    if refs:  # a schema that leaves its document is never compiled: its checks end here
        details: dict[str, Any] = {"tool_id": tool_id, "references": {k: v[:16] for k, v in refs.items()}}
        return [check("tool_schema_references", "fail", describe_references(tool_id, refs), details)]
    out = [check("tool_schema_references", "pass", f"tool '{tool_id}' schemas reference only their own document",
                 {"tool_id": tool_id})]
    uncompiled = [member for member, f in facts.items() if not f.compiled]
    if uncompiled:  # the facts say a reference left the document, the rule above says not: a caller bug
        raise ValueError(f"schema facts for tool '{tool_id}' were computed from another manifest")
    problems = {member: f.problem for member, f in facts.items() if f.problem is not None}
    if problems:
        out.append(check("tool_schema_compiles", "fail", describe_compile_problems(tool_id, problems),
                         {"tool_id": tool_id, "problems": problems}))
    else:
        out.append(check("tool_schema_compiles", "pass", f"tool '{tool_id}' schemas compile for the host",
                         {"tool_id": tool_id}))
    return out
