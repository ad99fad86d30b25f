"""Secret use cases: set and remove a value in the local secret source, each recorded as an
event (scope and key names, never the value; ``domain/secrets.py`` says on which stream).

The event is appended under the secret store's lock just before the file is written, so a
change never goes untraced: if the append fails nothing is written; if the write fails after
it, the error is reported and the journal holds a change that did not happen (rerun it).
"""

from __future__ import annotations

import msgspec

from skill_ledger.adapters.storage.secrets import SecretStore, check_name
from skill_ledger.domain.secrets import SecretNames, Secrets, skill_of_scope
from skill_ledger.domain.skill import Skill

from .unit_of_work import Ledger


class SecretChange(msgspec.Struct, frozen=True):
    scope: str
    key: str
    changed: bool  # stored (always) or removed (when there was a value)
    replaced: bool  # a set that replaced a value
    positions: list[int]


def _aggregate(ledger: Ledger, scope: str) -> SecretNames:
    skill_id = skill_of_scope(scope)
    return ledger.load(Skill, skill_id) if skill_id is not None else ledger.load(Secrets, scope)


def set_secret(ledger: Ledger, store: SecretStore, scope: str, key: str, value: str, reason: str | None
               ) -> SecretChange:
    scope, key = check_name(scope, key)
    positions: list[int] = []

    def record(replaced: bool) -> None:
        def attempt() -> list[int]:
            agg = _aggregate(ledger, scope)
            agg.record_secret_set(ledger.actor, scope, key, replaced, reason)
            return ledger.save(agg)  # type: ignore[arg-type]

        positions.extend(ledger.retrying(attempt))

    replaced = store.set(scope, key, value, before_write=record)
    return SecretChange(scope, key, True, replaced, positions)


def remove_secret(ledger: Ledger, store: SecretStore, scope: str, key: str, reason: str | None) -> SecretChange:
    scope, key = check_name(scope, key)
    positions: list[int] = []

    def record() -> None:
        def attempt() -> list[int]:
            agg = _aggregate(ledger, scope)
            agg.record_secret_removed(ledger.actor, scope, key, reason)
            return ledger.save(agg)  # type: ignore[arg-type]

        positions.extend(ledger.retrying(attempt))

    removed = store.remove(scope, key, before_write=record)
    return SecretChange(scope, key, removed, False, positions)
