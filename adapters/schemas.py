"""Tool schemas (a manifest's ``input_schema`` / ``output_schema``) compiled for the host.

The schemas come from a publisher and are evaluated in the host process, outside the sandbox,
so they get the same care as the modules:

- **No retrieval.** A ``$ref`` resolves only inside the schema document: nothing is fetched over
  the network or read from a file (``offline=True``). The audit refuses non-local references
  before anything runs (``domain.schemas.non_local_refs``), and this layer refuses them again.
- **Linear-time patterns.** ``pattern`` and ``patternProperties`` run on Rust's ``regex`` engine
  (no backtracking: matching costs time linear in the input), so a pattern such as ``^(a+)+$``
  cannot stall a call. Patterns that need backtracking (back-references, look-around) do not
  compile, and the audit fails them.
- **Draft.** The schema's own ``$schema``, else JSON Schema 2020-12.

Validation uses ``jsonschema-rs`` (a maintained Rust implementation with Python bindings): it
imports in a fraction of the time the pure-Python ``jsonschema`` package took, which every
``skills run`` process pays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_PROBLEM_CHARS = 300


class SchemaInvalid(Exception):
    """The schema does not compile (invalid, non-local reference, unsupported pattern)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class CompiledSchema:
    """A validator for one schema; cheap to reuse for many values."""

    def __init__(self, schema: Any) -> None:
        import jsonschema_rs

        try:
            self._validator = jsonschema_rs.validator_for(
                schema, offline=True, pattern_options=jsonschema_rs.RegexOptions())
        except jsonschema_rs.ValidationError as e:  # the schema fails its meta-schema or a reference
            raise SchemaInvalid(_first_line(e.message)) from None
        except (ValueError, TypeError) as e:  # not a JSON value at all
            raise SchemaInvalid(_first_line(str(e))) from None

    def problem(self, value: Any, *, redact: Callable[[str], str] | None = None) -> str | None:
        """``None`` when ``value`` is valid, else one readable reason (the first error, with its path).

        ``redact`` (the runner's secret redaction) runs on the whole message *before* it is cut
        to one line, so no part of a secret survives the cut."""
        if self._validator.is_valid(value):
            return None
        error = next(iter(self._validator.iter_errors(value)), None)
        if error is None:  # pragma: no cover - is_valid said otherwise
            return "invalid"
        at = "/".join(str(p) for p in error.instance_path)
        message = error.message if redact is None else redact(error.message)
        if at and redact is not None:
            at = redact(at)
        return _first_line(message) + (f" (at /{at})" if at else "")


def compile_schema(schema: Any) -> CompiledSchema:
    """Compile ``schema`` or raise :class:`SchemaInvalid` with one readable line."""
    return CompiledSchema(schema)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "invalid schema"
    return line if len(line) <= MAX_PROBLEM_CHARS else line[: MAX_PROBLEM_CHARS - 3] + "..."
