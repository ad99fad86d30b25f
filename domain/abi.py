"""The runner ABIs of ``runtime.md``, recognised from a module's imports and exports (pure rules).

The runner plans a call with :func:`plan` before it instantiates anything; the audit asks
:func:`abi_problem` at install, so a tool whose module implements no ABI for it (or imports what
its ABI does not provide) fails the audit instead of failing only at run time.

The facts come from the inspector's own binary reader (``ModuleFacts``), never from wasmtime's
type reflection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .constants import HOST_CAPABILITIES_MODULE, SKILLS_HOST_MODULE, WASI_PREVIEW1_MODULE
from .errors import CapabilityDenied

if TYPE_CHECKING:
    from .audit import ModuleFacts

# The host functions each import module provides, with their signatures (the runner's linker
# defines exactly these; ``adapters/runner/hostcalls.py`` implements them).
PALYRA_FUNCTIONS: dict[str, str] = {
    **{f"{c}-count": "() -> (i32)" for c in ("http", "secret", "storage", "channel")},
    **{f"{c}-handle": "(i32) -> (i32)" for c in ("http", "secret", "storage", "channel")},
}
SKILLS_HOST_FUNCTIONS: dict[str, str] = {
    "log": "(i32, i32, i32) -> ()",
    "secret_get": "(i32, i32, i32, i32) -> (i32)",
    "http_fetch": "(i32, i32) -> (i64)",
    "storage_read": "(i32, i32, i32, i32) -> (i32)",
    "storage_write": "(i32, i32, i32, i32) -> (i32)",
}

# AssemblyScript's default build imports ``env.abort(message, fileName, line, column)``; the
# host provides it to json-v1 and wasi-command modules (it traps with the message).
ENV_MODULE = "env"
ENV_FUNCTIONS: dict[str, str] = {"abort": "(i32, i32, i32, i32) -> ()"}

PALYRA_V1, JSON_V1, WASI_COMMAND = "palyra-v1", "json-v1", "wasi-command"
JSON_TOOL_TYPE = "(i32, i32) -> (i64)"
_ALLOWED = {
    PALYRA_V1: {HOST_CAPABILITIES_MODULE: PALYRA_FUNCTIONS},
    JSON_V1: {SKILLS_HOST_MODULE: SKILLS_HOST_FUNCTIONS, ENV_MODULE: ENV_FUNCTIONS},
    WASI_COMMAND: {SKILLS_HOST_MODULE: SKILLS_HOST_FUNCTIONS, ENV_MODULE: ENV_FUNCTIONS,
                   WASI_PREVIEW1_MODULE: None},  # WASI: the linker checks
}


class AbiPlan(msgspec.Struct, frozen=True):
    abi: str
    entry: str


def plan(facts: ModuleFacts, tool_name: str, default_entrypoint: str | None) -> AbiPlan:
    exports = {e.name: e for e in facts.exports}

    def func(name: str, signature: str | None = None) -> bool:
        e = exports.get(name)
        return e is not None and e.kind == "func" and (signature is None or e.type == signature)

    if func("_start"):
        chosen = AbiPlan(WASI_COMMAND, "_start")
        if not func("_start", "() -> ()"):
            raise _denied(facts, "its _start export is not a () -> () function")
    elif "memory" in exports and exports["memory"].kind == "memory" and func("alloc", "(i32) -> (i32)") and (
            func(tool_name, JSON_TOOL_TYPE) or func("run", JSON_TOOL_TYPE)):
        chosen = AbiPlan(JSON_V1, tool_name if func(tool_name, JSON_TOOL_TYPE) else "run")
    elif func(default_entrypoint or "run", "() -> (i32)"):
        chosen = AbiPlan(PALYRA_V1, default_entrypoint or "run")
    else:
        raise _denied(facts, f"it implements no runner ABI for tool '{tool_name}' (json-v1: memory, "
                             f"alloc and '{tool_name}' or 'run' (i32, i32) -> (i64); palyra-v1: "
                             f"'{default_entrypoint or 'run'}' () -> (i32); wasi-command: '_start')")
    allowed = _ALLOWED[chosen.abi]
    for imp in facts.imports:
        where = f"{imp.module}::{imp.name}"
        if imp.kind != "func":
            raise _denied(facts, f"it imports a {imp.kind} ({where}); modules must define their own")
        if imp.module not in allowed:
            raise _denied(facts, f"it imports {where}, outside what the {chosen.abi} ABI provides")
        signatures = allowed[imp.module]
        if signatures is None:
            continue
        expected = signatures.get(imp.name)
        if expected is None:
            raise _denied(facts, f"it imports {where}, which the host does not provide")
        if imp.type != expected:
            raise _denied(facts, f"it imports {where} as {imp.type}; the host provides {expected}")
    return chosen


def _denied(facts: ModuleFacts, why: str) -> CapabilityDenied:
    return CapabilityDenied(f"module {facts.path} was not instantiated: {why}", {"module_path": facts.path})




def abi_problem(facts: ModuleFacts, tool_name: str, default_entrypoint: str | None) -> str | None:
    """``None`` when the module can serve the tool under some ABI, else why not (for the audit)."""
    try:
        plan(facts, tool_name, default_entrypoint)
    except CapabilityDenied as e:
        return e.message
    return None
