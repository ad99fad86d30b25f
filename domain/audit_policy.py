"""The ``AuditPolicy`` aggregate (``policy:audit``): the audit policy as events.

Its version number is the policy version every ``skill.audited`` event names; before
the first ``policy.changed`` the defaults of ``artifact-format.md`` §19.1 apply
(version 0).
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from .events import Actor, LedgerAggregate, LedgerEvent
from .policy import PolicyValues, policy_to_dict

POLICY_KEY = "audit"


class PolicyChanged(LedgerEvent):
    KIND: ClassVar[str] = "policy.changed"
    policy: dict[str, Any]
    changed: list[str]
    reason: str

    def apply(self, aggregate: "AuditPolicy") -> None:
        aggregate.values = msgspec.convert(self.policy, PolicyValues)


class AuditPolicy(LedgerAggregate):
    PREFIX: ClassVar[str] = "policy"

    def __init__(self, id: Any, stream: str) -> None:
        super().__init__(id, stream)
        self.values = PolicyValues()

    @property
    def policy_version(self) -> int:
        return self.version

    def change(self, actor: Actor, values: PolicyValues, reason: str) -> list[str]:
        """Record the new policy; returns the changed member names (empty: nothing recorded)."""
        old, new = policy_to_dict(self.values), policy_to_dict(values)
        changed = [k for k in new if old.get(k) != new[k]]
        if changed:
            self._record(PolicyChanged, actor, policy=new, changed=changed, reason=reason)
        return changed
