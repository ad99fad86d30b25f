"""What the journal records about the local secret source: that a secret was set or removed,
by whom and why, never its value (``events.md``: nothing secret in events).

A secret of a skill's own scope (``skill:<skill_id>``) is part of that skill's story, so its
events go on the skill's stream (``skill.secret_set``, ``skill.secret_removed``): ``skills
history`` and ``skills journal --skill`` show them with the skill's other events, and a
skill's sharded replay keeps them with it. A secret of any other scope (``global``,
``principal:<id>``, ``channel:<id>``) has a stream of its own, ``secrets:<scope>`` (the
:class:`Secrets` aggregate: ``secret.set``, ``secret.removed``).

The events carry the scope and key names, whether a set replaced a value, and the operator's
reason when one was given. The aggregates keep the key names only, to tell a removal of
something that was recorded from one that was not.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .events import Actor, LedgerAggregate, LedgerEvent
from .text import event_text

SKILL_SCOPE_PREFIX = "skill:"
SECRET_KINDS = ("skill.secret_set", "skill.secret_removed", "secret.set", "secret.removed")


def _reason(text: str | None) -> str | None:
    return None if text is None else event_text(text)


class _SecretNamed(LedgerEvent):
    scope: str
    key: str
    reason: str | None


class _SecretSet(_SecretNamed):
    replaced: bool  # a value was stored under this name before (the value itself is never recorded)

    def apply(self, aggregate: Any) -> None:
        aggregate.secret_keys.add((self.scope, self.key))


class _SecretRemoved(_SecretNamed):
    def apply(self, aggregate: Any) -> None:
        aggregate.secret_keys.discard((self.scope, self.key))


class SkillSecretSet(_SecretSet):
    KIND: ClassVar[str] = "skill.secret_set"


class SkillSecretRemoved(_SecretRemoved):
    KIND: ClassVar[str] = "skill.secret_removed"


class SecretSet(_SecretSet):
    KIND: ClassVar[str] = "secret.set"


class SecretRemoved(_SecretRemoved):
    KIND: ClassVar[str] = "secret.removed"


class SecretNames:
    """Recording secret changes on an aggregate: the ``Skill`` (its own scope) and ``Secrets``."""

    SET: ClassVar[type[LedgerEvent]]
    REMOVED: ClassVar[type[LedgerEvent]]
    secret_keys: set[tuple[str, str]]

    def record_secret_set(self, actor: Actor, scope: str, key: str, replaced: bool, reason: str | None) -> None:
        """A value was stored under ``scope``/``key`` (always recorded: setting is an act, even to the
        same value, which is never compared)."""
        self._record(self.SET, actor, scope=scope, key=key, replaced=replaced,  # type: ignore[attr-defined]
                     reason=_reason(reason))

    def record_secret_removed(self, actor: Actor, scope: str, key: str, reason: str | None) -> None:
        self._record(self.REMOVED, actor, scope=scope, key=key, reason=_reason(reason))  # type: ignore[attr-defined]


class Secrets(SecretNames, LedgerAggregate):
    """One stream per secret scope other than a skill's own: ``secrets:<scope>``."""

    PREFIX: ClassVar[str] = "secrets"
    SET = SecretSet
    REMOVED = SecretRemoved

    def __init__(self, id: Any, stream: str) -> None:
        super().__init__(id, stream)
        self.secret_keys = set()

    @property
    def scope(self) -> str:
        return self.key


def skill_of_scope(scope: str) -> str | None:
    """The skill id of a ``skill:<id>`` scope, else None."""
    return scope[len(SKILL_SCOPE_PREFIX):] if scope.startswith(SKILL_SCOPE_PREFIX) else None
