"""Check 17, ``wasm_import_allowlist`` (an addition to §19.3), and what its failure tells a user.

A name is accepted as §19.3 says (byte-for-byte in ``allowed_import_modules``, or
``wasi_snapshot_preview1`` for a WASI command or a manifest that declares filesystem
capabilities), and one import more: ``env.abort (i32, i32, i32, i32) -> ()``, which the host
provides (AssemblyScript's default build imports it; ``domain.abi.ENV_FUNCTIONS``).

A failure names the functions, not only the namespace, and recognises what common toolchains
leave for their JavaScript glue (Emscripten, wasm-bindgen, Go's js/wasm, AssemblyScript's
runtime; see docs/real-world-modules.md), with a hint on how to build a module that runs here.
For a reactor importing WASI it says which ABI would allow it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .abi import ENV_FUNCTIONS, ENV_MODULE
from .constants import WASI_PREVIEW1_MODULE

if TYPE_CHECKING:
    from .audit import AuditCheck, ImportFact, ModuleFacts
    from .policy import PolicyValues

MAX_NAMES_IN_MESSAGE = 8  # per namespace; the rest are counted
MAX_NAMES_IN_DETAILS = 64

EMSCRIPTEN = (
    "This looks like Emscripten output built for its JavaScript loader; rebuild it standalone "
    "(emcc -sSTANDALONE_WASM, WASI imports only) as a WASI command, or with wasi-sdk"
)
WASM_BINDGEN = (
    "This looks like wasm-bindgen output, which needs its generated JavaScript glue; build a WASI command "
    "(cargo build --target wasm32-wasip1), or a json-v1 module without wasm-bindgen (export memory, alloc and run)"
)
GO_JS = (
    "This looks like Go's js/wasm output (GOOS=js), which needs wasm_exec.js; build a WASI command with "
    "GOOS=wasip1 GOARCH=wasm (Go 1.21 and later) or tinygo -target=wasip1"
)
ASSEMBLYSCRIPT = (
    "Of AssemblyScript's runtime imports the host provides only env.abort (i32, i32, i32, i32) -> (); "
    "avoid trace() and Math.random (which import env.trace and env.seed), or point them at your own "
    "functions (asc --use)"
)
ENV_GENERIC = (
    "The 'env' namespace holds symbols the linker left undefined for a JavaScript loader or an embedder to supply; "
    "build a standalone module: a WASI command, or json-v1 (memory, alloc, run) importing only skills:host/v1"
)
WASI_UNSTABLE = (
    "The wasi_unstable namespace is WASI's snapshot 0, which the host does not provide; rebuild with a current "
    "toolchain (wasi_snapshot_preview1)"
)
WASI_REACTOR = (
    "WASI (wasi_snapshot_preview1) is accepted for a WASI command (the wasi-command ABI: the module exports "
    "_start () -> ()); this module exports no _start (a reactor), so build it as a command "
    "(clang -mexec-model=command), or drop its WASI imports (json-v1 modules import only skills:host/v1)"
)
_EMSCRIPTEN_PREFIXES = ("emscripten_", "_emscripten_", "__syscall_", "invoke_", "_abort_js", "__wasi_")
_ASSEMBLYSCRIPT_NAMES = frozenset({"abort", "trace", "seed"})


def host_provides(imp: ImportFact) -> bool:
    """An import the host provides whatever the policy's allowlist says (``env.abort``)."""
    return imp.module == ENV_MODULE and imp.kind == "func" and ENV_FUNCTIONS.get(imp.name) == imp.type


def refused_imports(facts: ModuleFacts, policy: PolicyValues, filesystem_declared: bool) -> list[ImportFact]:
    """The module's imports check 17 does not accept, in module order."""
    command = facts.is_wasi_command()
    allowed = set(policy.allowed_import_modules)

    def accepted(imp: ImportFact) -> bool:
        if imp.module in allowed:  # byte-for-byte
            return True
        if imp.module == WASI_PREVIEW1_MODULE and (filesystem_declared or command):
            return True
        return host_provides(imp)

    return [i for i in facts.imports if not accepted(i)]


def import_allowlist_check(p: str, facts: ModuleFacts, policy: PolicyValues, filesystem_declared: bool) -> AuditCheck:
    from .audit import check

    command = facts.is_wasi_command()
    refused = refused_imports(facts, policy, filesystem_declared)
    by_namespace: dict[str, list[str]] = {}
    for imp in sorted(refused, key=lambda i: (i.module, i.name)):
        names = by_namespace.setdefault(imp.module, [])
        if imp.name not in names:
            names.append(imp.name)
    qualified = [f"{ns}::{name}" for ns, names in by_namespace.items() for name in names]
    hints = _hints(by_namespace, command)
    details: dict[str, Any] = {
        "module_path": p,
        "import_modules": facts.import_modules(),
        "disallowed_import_modules": list(by_namespace),
        "disallowed_imports": qualified[:MAX_NAMES_IN_DETAILS],
        "disallowed_import_count": len(qualified),
        "filesystem_declared": filesystem_declared,
        "wasi_command": command,
        "hints": hints,
    }
    if refused:
        groups = "; ".join(f"{ns} ({_names(names)})" for ns, names in by_namespace.items())
        message = f"module '{p}' imports from namespaces outside the allowlist: {groups}"
        if hints:
            message += ". " + ". ".join(hints)
        return check("wasm_import_allowlist", "fail", message, details)
    provided = " (and env.abort, which the host provides)" if any(host_provides(i) for i in facts.imports) else ""
    return check("wasm_import_allowlist", "pass", f"module '{p}' imports only allowed namespaces{provided}", details)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES_IN_MESSAGE])
    more = len(names) - MAX_NAMES_IN_MESSAGE
    return shown + (f" and {more} more" if more > 0 else "")


def _hints(by_namespace: dict[str, list[str]], command: bool) -> list[str]:
    """One hint per recognised toolchain or situation, in namespace order, each once."""
    hints: list[str] = []
    for ns, names in by_namespace.items():
        hint = _hint(ns, names, command)
        if hint is not None and hint not in hints:
            hints.append(hint)
    return hints


def _hint(ns: str, names: list[str], command: bool) -> str | None:
    if ns == WASI_PREVIEW1_MODULE:
        return None if command else WASI_REACTOR
    if ns == "wasi_unstable":
        return WASI_UNSTABLE
    if ns == "a":  # Emscripten's optimised builds minify the JavaScript boundary: module "a", names "a", "b", ...
        return EMSCRIPTEN
    if ns in ("wbg", "__wbindgen_placeholder__") or ns.endswith("_bg.js"):
        return WASM_BINDGEN
    if ns in ("gojs", "go"):
        return GO_JS
    if ns == ENV_MODULE:
        if any(n.startswith(_EMSCRIPTEN_PREFIXES) for n in names):
            return EMSCRIPTEN
        if set(names) <= _ASSEMBLYSCRIPT_NAMES:
            return ASSEMBLYSCRIPT
        return ENV_GENERIC
    return None
