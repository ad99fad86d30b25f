"""Tool declarations: how a WASI command is driven (pure rules; ``docs/runtime-abis.md``).

A manifest's tool table rejects unknown keys (Palyra's does too), so a tool says how its
program wants to be called in a JSON document of the artifact, covered by the signature like
every entry: ``assets/tools/<tool id>.json`` (a ``:`` of the tool id written ``%3a``)::

    {"version": 1,
     "args": ["--format", "{format}", "{files}"],
     "stdin": "json" | "text" | "none" | {"text": "<property>"},
     "stdout": "json" | "text",
     "success_exit_codes": [0, 1],
     "env": {"LANG": "C.UTF-8", "MODE": "{mode}"}}

Every member but ``version`` is optional (defaults: no arguments, the input as JSON on stdin,
JSON on stdout, only 0 is success, no environment). Unknown members, duplicate members and
anything outside the grammar are refused. ``{name}`` is a placeholder for the top-level
property ``name`` of the (schema-validated) input; ``{{`` and ``}}`` are literal braces.
An argument or variable whose placeholder has no value (absent or null) is left out; an
argument that is exactly one placeholder of an array becomes one argument per item.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from .errors import CapabilityDenied, InvalidInput
from .text import StrictJsonError, is_exact_int, loads_strict

__all__ = ["DECLARATION_PREFIX", "Invocation", "ToolDeclaration", "declaration_path", "declaration_problems",
           "expand", "parse_declaration"]

DECLARATION_PREFIX = "assets/tools/"
VERSION = 1
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_ARGS = 256
MAX_ENV = 64
MAX_TEMPLATE_CHARS = 4096
MAX_EXPANDED_BYTES = 64 * 1024  # argv and environment together, after placeholders are filled
STDIN_MODES = ("json", "text", "none")
STDOUT_MODES = ("json", "text")
_MEMBERS = ("version", "args", "stdin", "stdout", "success_exit_codes", "env")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class ToolDeclaration(msgspec.Struct, frozen=True, kw_only=True):
    args: tuple[str, ...] = ()
    stdin: str = "json"
    stdin_property: str | None = None  # stdin {"text": name}
    stdout: str = "json"
    success_exit_codes: tuple[int, ...] = (0,)
    env: tuple[tuple[str, str], ...] = ()


DEFAULT = ToolDeclaration()


class Invocation(msgspec.Struct, frozen=True):
    argv: list[str]
    env: list[tuple[str, str]]
    stdin: bytes


def declaration_path(tool_id: str) -> str:
    """Where a tool's declaration lives in an artifact (artifact paths may not contain ``:``)."""
    return DECLARATION_PREFIX + tool_id.replace(":", "%3a") + ".json"


def _invalid(path: str, why: str) -> CapabilityDenied:
    return CapabilityDenied(f"the tool declaration {path} is invalid: {why}", {"declaration": path},
                            code="tool_declaration_invalid")


def parse_declaration(data: bytes, path: str) -> ToolDeclaration:
    """The declaration in ``data``, or ``tool_declaration_invalid`` naming what is wrong."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise _invalid(path, f"it is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        doc = loads_strict(data)
    except StrictJsonError as e:
        raise _invalid(path, f"not strict JSON ({e})") from None
    if not isinstance(doc, dict):
        raise _invalid(path, "it must be a JSON object")
    unknown = sorted(set(doc) - set(_MEMBERS))
    if unknown:
        raise _invalid(path, f"unknown member {unknown[0]!r} (members: {', '.join(_MEMBERS)})")
    if doc.get("version") != VERSION or not is_exact_int(doc.get("version")):
        raise _invalid(path, f'"version" must be {VERSION}')
    fields: dict[str, Any] = {}
    if "args" in doc:
        args = doc["args"]
        if not isinstance(args, list) or len(args) > MAX_ARGS or not all(isinstance(a, str) for a in args):
            raise _invalid(path, f'"args" must be a list of at most {MAX_ARGS} strings')
        for a in args:
            _template(a, path, "args")
        fields["args"] = tuple(args)
    if "stdin" in doc:
        fields.update(_stdin(doc["stdin"], path))
    if "stdout" in doc:
        if doc["stdout"] not in STDOUT_MODES:
            raise _invalid(path, f'"stdout" must be one of {", ".join(STDOUT_MODES)}')
        fields["stdout"] = doc["stdout"]
    if "success_exit_codes" in doc:
        codes = doc["success_exit_codes"]
        if (not isinstance(codes, list) or not 1 <= len(codes) <= 256 or len(set(codes)) != len(codes)
                or not all(is_exact_int(c) and 0 <= c <= 255 for c in codes)):
            raise _invalid(path, '"success_exit_codes" must be a non-empty list of distinct integers in 0..255')
        fields["success_exit_codes"] = tuple(sorted(codes))
    if "env" in doc:
        env = doc["env"]
        if not isinstance(env, dict) or len(env) > MAX_ENV:
            raise _invalid(path, f'"env" must be an object of at most {MAX_ENV} variables')
        for name, value in env.items():
            if _ENV_NAME.fullmatch(name) is None:
                raise _invalid(path, f"environment variable name {name!r} must match [A-Za-z_][A-Za-z0-9_]*")
            if not isinstance(value, str):
                raise _invalid(path, f"environment variable {name} must be a string")
            _template(value, path, f"env.{name}")
        fields["env"] = tuple(sorted(env.items()))
    return ToolDeclaration(**fields)


def _stdin(value: Any, path: str) -> dict[str, Any]:
    if value in STDIN_MODES:
        return {"stdin": value}
    if isinstance(value, dict) and set(value) == {"text"} and isinstance(value["text"], str) \
            and _NAME.fullmatch(value["text"]):
        return {"stdin": "text", "stdin_property": value["text"]}
    raise _invalid(path, '"stdin" must be "json", "text", "none" or {"text": "<input property>"}')


def _template(text: str, path: str, where: str) -> list[str | tuple[str]]:
    """The parts of a template: literal strings and ``(name,)`` placeholders."""
    if len(text) > MAX_TEMPLATE_CHARS or "\x00" in text:
        raise _invalid(path, f"{where}: a template must be at most {MAX_TEMPLATE_CHARS} characters, without NUL")
    parts: list[str | tuple[str]] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            parts.append(text[pos:m.start()])
        token = m.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif m.group(1) is not None and _NAME.fullmatch(m.group(1)):
            parts.append((m.group(1),))
        else:
            raise _invalid(path, f"{where}: {text!r} has a brace that is neither a placeholder {{name}} "
                                 "nor an escaped {{ or }}")
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return parts


# --- filling placeholders from the input -------------------------------------------------------


def _scalar(value: Any, name: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(f"input property {name!r} contains NUL, which an argument cannot carry",
                               {"property": name})
        return value
    if isinstance(value, (int, float)):
        return msgspec.json.encode(value).decode()
    raise InvalidInput(f"input property {name!r} must be a string, number or boolean to fill a placeholder",
                       {"property": name})


def _fill(parts: list[str | tuple[str]], value: Mapping[str, Any], *, spread: bool) -> list[str] | None:
    """The strings a template gives (``None`` when a placeholder has no value)."""
    if spread and len(parts) == 1 and isinstance(parts[0], tuple):
        name = parts[0][0]
        item = value.get(name)
        if item is None:
            return None
        if isinstance(item, list):
            return [_scalar(v, name) for v in item]
        return [_scalar(item, name)]
    out = []
    for part in parts:
        if isinstance(part, tuple):
            item = value.get(part[0])
            if item is None:
                return None
            out.append(_scalar(item, part[0]))
        else:
            out.append(part)
    return ["".join(out)]


def expand(decl: ToolDeclaration, tool_name: str, input_value: Any, payload: bytes) -> Invocation:
    """argv, environment and stdin of one call (``payload`` is the input as compact JSON)."""
    props = input_value if isinstance(input_value, dict) else {}
    argv = [tool_name]
    for template in decl.args:
        argv.extend(_fill(_template(template, "", "args"), props, spread=True) or [])
    env = []
    for name, template in decl.env:
        filled = _fill(_template(template, "", f"env.{name}"), props, spread=False)
        if filled is not None:
            env.append((name, filled[0]))
    size = sum(len(a.encode()) + 1 for a in argv) + sum(len(n) + len(v.encode()) + 2 for n, v in env)
    if size > MAX_EXPANDED_BYTES:
        raise InvalidInput(f"the arguments and environment would take {size} bytes, above {MAX_EXPANDED_BYTES}",
                           {"bytes": size})
    return Invocation(argv, env, _stdin_bytes(decl, input_value, payload))


def _stdin_bytes(decl: ToolDeclaration, input_value: Any, payload: bytes) -> bytes:
    if decl.stdin == "json":
        return payload
    if decl.stdin == "none":
        return b""
    if decl.stdin_property is None:
        if not isinstance(input_value, str):
            raise InvalidInput('the tool reads its input as text: the input must be a JSON string')
        return input_value.encode("utf-8")
    text = input_value.get(decl.stdin_property) if isinstance(input_value, dict) else None
    if text is None:
        return b""
    if not isinstance(text, str):
        raise InvalidInput(f"input property {decl.stdin_property!r} is read as stdin text and must be a string",
                           {"property": decl.stdin_property})
    return text.encode("utf-8")


def declaration_problems(tool_ids: Iterable[str], entries: Mapping[str, bytes]) -> dict[str, str]:
    """For the audit and the build: each declaration document that is invalid or names no
    declared tool, with the reason (an empty dict when all are well)."""
    wanted = {declaration_path(t): t for t in tool_ids}
    problems: dict[str, str] = {}
    for path in sorted(p for p in entries if p.startswith(DECLARATION_PREFIX) and p.endswith(".json")):
        if path not in wanted:
            problems[path] = "it names no tool of the manifest"
            continue
        try:
            parse_declaration(entries[path], path)
        except CapabilityDenied as e:
            problems[path] = e.message
    return problems
