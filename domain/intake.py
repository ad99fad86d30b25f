"""The ``Intake`` aggregate: one stream per artifact digest (``intake:<artifact_sha256>``)
recording rejected artifacts, so an artifact that never got a skill id still leaves a
trace in the journal."""

from __future__ import annotations

from typing import Any, ClassVar

from .events import Actor, LedgerAggregate, LedgerEvent


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
        """A record for the audit trail (and the projections); no decision reads it."""


class Intake(LedgerAggregate):
    PREFIX: ClassVar[str] = "intake"

    def reject(self, actor: Actor, *, source: str, error_code: str, message: str, details: dict[str, Any],
               skill_id: str | None = None, version: str | None = None, publisher: str | None = None) -> None:
        self._record(ArtifactRejected, actor, artifact_sha256=self.key, source=source, error_code=error_code,
                     message=message, details=details, skill_id=skill_id, version=version, publisher=publisher)
