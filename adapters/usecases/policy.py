"""Policy use cases: the audit policy as it stands, and a change to it (optionally followed by
a re-audit of every installed version under the new policy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from skill_ledger.domain.policy import apply_settings, policy_to_dict

from .unit_of_work import Ledger

if TYPE_CHECKING:
    from skill_ledger.adapters.audit.reaudit import PassResult


class PolicyDoc(msgspec.Struct, frozen=True):
    policy_version: int
    policy: dict[str, Any]


class PolicyChange(msgspec.Struct, frozen=True, omit_defaults=True):
    policy_version: int
    policy: dict[str, Any]
    changed: list[str]
    positions: list[int]
    reaudit: PassResult | None = None  # with --reaudit: the pass under the new policy

    def failure_code(self) -> str | None:
        """The error code the command ends with: ``audit_failed`` when the re-audit quarantined
        something, else None (success)."""
        return self.reaudit.failure_code() if self.reaudit is not None else None


def current_policy(ledger: Ledger) -> PolicyDoc:
    agg = ledger.policy()
    return PolicyDoc(agg.policy_version, policy_to_dict(agg.values))


def set_policy(ledger: Ledger, settings: Sequence[str], reason: str, *, reaudit: bool = False) -> PolicyChange:
    """Change policy members (``KEY=VALUE``); nothing recorded when none changes. ``reaudit``:
    then verify and audit every installed version under the new policy (the periodic pass)."""
    def attempt() -> PolicyChange:
        agg = ledger.policy()
        values = apply_settings(agg.values, list(settings))
        changed = agg.change(ledger.actor, values, reason)
        positions = ledger.save(agg)
        return PolicyChange(agg.policy_version, policy_to_dict(agg.values), changed, positions)

    result = ledger.retrying(attempt)
    if not reaudit:
        return result
    from skill_ledger.adapters.audit.reaudit import Reauditor

    return msgspec.structs.replace(result, reaudit=Reauditor(ledger).run_pass())
