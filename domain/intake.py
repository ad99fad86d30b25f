"""The ``Intake`` aggregate: one stream per artifact digest (``intake:<artifact_sha256>``)
recording rejected artifacts, so an artifact that never got a skill id still leaves a
trace in the journal.

Everything an ``artifact.rejected`` carries comes from outside (the artifact, the path
it was given by, a registry's answer), so it is bounded before it is recorded
(``MAX_EVENT_*`` in ``constants.py``), and the same artifact refused again for the same
reason records nothing: the journal holds each (digest, error) once, however often a
script retries it.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import msgspec

from .events import Actor, LedgerAggregate, LedgerEvent
from .text import event_details, event_text


def rejection_key(error_code: str, message: str, details: dict[str, Any]) -> str:
    """What makes two rejections "the same error": code, message and details, as bounded."""
    canonical = msgspec.json.encode([error_code, event_text(message), event_details(details)], order="sorted")
    return hashlib.sha256(canonical).hexdigest()


class ArtifactRejected(LedgerEvent):
    KIND: ClassVar[str] = "artifact.rejected"
    artifact_sha256: str
    source: str
    error_code: str
    message: str
    details: dict[str, Any]
    skill_id: str | None
    version: str | None
    publisher: str | None

    def apply(self, intake: "Intake") -> None:
        """A record for the audit trail (and the projections); only the repeat check reads it."""
        intake.seen.add(rejection_key(self.error_code, self.message, self.details))


class Intake(LedgerAggregate):
    PREFIX: ClassVar[str] = "intake"

    def __init__(self, id: Any, stream: str) -> None:
        super().__init__(id, stream)
        self.seen: set[str] = set()  # rejection_key of every recorded rejection

    def reject(self, actor: Actor, *, source: str, error_code: str, message: str, details: dict[str, Any],
               skill_id: str | None = None, version: str | None = None, publisher: str | None = None) -> bool:
        """Record ``artifact.rejected`` with every text member bounded; ``False`` (nothing recorded)
        when this artifact was already rejected with the same error."""
        message, details = event_text(message), event_details(details)
        if rejection_key(error_code, message, details) in self.seen:
            return False
        self._record(ArtifactRejected, actor, artifact_sha256=self.key, source=event_text(source),
                     error_code=event_text(error_code), message=message, details=details,
                     skill_id=_bounded_or_none(skill_id), version=_bounded_or_none(version),
                     publisher=_bounded_or_none(publisher))
        return True


def _bounded_or_none(text: str | None) -> str | None:
    return None if text is None else event_text(text)
