"""A run's limits: the host decides them, the skill can only ask for less.

Effective limit = min(manifest quota, policy cap, engine maximum) for fuel, memory and wall
clock (and ``--timeout-ms`` lowers the wall clock further); the policy also caps the
instances a store may create. The runner's own bounds (output, log, host calls, compilation)
come from :class:`RunLimits`.
"""

from __future__ import annotations

import msgspec

from skill_ledger.domain.manifest import Quotas
from skill_ledger.domain.policy import PolicyValues

MAX_FUEL = 100_000_000_000  # the engine's maximum fuel per run (a few seconds of guest code)
MAX_MEMORY_BYTES = 4 * 1024 * 1024 * 1024  # a wasm32 memory cannot be larger anyway
MAX_TIMEOUT_MS = 24 * 3600 * 1000


class RunLimits(msgspec.Struct, frozen=True, kw_only=True):
    fuel: int = 10_000_000
    memory_bytes: int = 64 * 1024 * 1024
    timeout_ms: int = 30_000
    output_max_bytes: int = 1024 * 1024  # output JSON (json-v1) or stdout (wasi-command); past it, discarded
    input_max_bytes: int = 16 * 1024 * 1024
    host_call_budget: int = 512
    log_max_entries: int = 256  # host and guest log entries and WASI stderr lines together
    log_max_bytes: int = 64 * 1024  # also the stderr kept for the log (past it, discarded)
    log_message_max_bytes: int = 4096
    stderr_tail_bytes: int = 2048  # the end of stderr quoted in an error
    http_max_response_bytes: int = 1024 * 1024
    http_max_redirects: int = 5
    storage_max_bytes: int = 16 * 1024 * 1024
    table_elements: int = 100_000
    tables: int = 8
    memories: int = 1
    instances: int = 1
    # Compiling untrusted code happens in a worker process with these bounds (compile_worker.py).
    # Not the run's deadline: a compilation is done once per module and shared by every later run.
    compile_timeout_ms: int = 30_000
    compile_memory_bytes: int = 2 * 1024 * 1024 * 1024  # the worker's address space (RLIMIT_AS)


DEFAULT_LIMITS = RunLimits()


def limits_for(quotas: Quotas, timeout_ms: int | None, *, policy: PolicyValues | None = None,
               base: RunLimits = DEFAULT_LIMITS) -> RunLimits:
    """The limits of one run: the manifest's quotas, capped by the policy (when given, as the
    journal recorded it) and by the engine; the wall clock is also capped by ``--timeout-ms``.

    Without ``policy`` only the engine's maxima cap the manifest: the runner's gate always
    passes the policy it confirmed, so that form is for tools and tests that have none.
    """
    fuel = min(quotas.fuel_budget, MAX_FUEL)
    memory = min(quotas.max_memory_bytes, MAX_MEMORY_BYTES)
    wall = min(quotas.wall_clock_timeout_ms, MAX_TIMEOUT_MS)
    instances = base.instances
    if policy is not None:
        fuel = min(fuel, policy.max_fuel_budget)
        memory = min(memory, policy.max_memory_bytes)
        wall = min(wall, policy.max_wall_clock_timeout_ms)
        instances = min(instances, policy.max_instances)
    if timeout_ms is not None:
        wall = min(wall, timeout_ms)
    # A cap of 0 never means "unlimited": no fuel or time ends a run at once (fuel_exhausted,
    # execution_timed_out), no memory fails instantiation (memory_limit_exceeded). One instance
    # always remains: without it nothing could be instantiated and the error would mislead.
    return msgspec.structs.replace(base, fuel=max(1, fuel), memory_bytes=memory, timeout_ms=max(1, wall),
                                   instances=max(1, instances))
