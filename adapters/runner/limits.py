"""A run's limits: the manifest's quotas (capped by the engine's maxima) and the runner's own."""

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
    output_max_bytes: int = 1024 * 1024  # output JSON (json-v1) or stdout (wasi-command)
    input_max_bytes: int = 16 * 1024 * 1024
    host_call_budget: int = 512
    log_max_entries: int = 256
    log_max_bytes: int = 64 * 1024
    log_message_max_bytes: int = 4096
    http_max_response_bytes: int = 1024 * 1024
    http_max_redirects: int = 5
    storage_max_bytes: int = 16 * 1024 * 1024
    table_elements: int = 100_000
    tables: int = 8
    memories: int = 1
    instances: int = 1


DEFAULT_LIMITS = RunLimits()


def limits_for(quotas: Quotas, timeout_ms: int | None, *, policy: PolicyValues | None = None,
               base: RunLimits = DEFAULT_LIMITS) -> RunLimits:
    """The manifest's quotas, capped by the policy (when given: the one the journal recorded) and
    the engine; the wall clock is also capped by ``--timeout-ms``."""
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
    return msgspec.structs.replace(base, fuel=max(1, fuel), memory_bytes=memory, timeout_ms=max(1, wall),
                                   instances=max(1, instances))
