"""The Registry aggregate's rules: the pin, the metadata floor recorded only on change, the
skill-level floor ``update`` may not go below, and refusals recorded once per repeat."""

from __future__ import annotations

import pytest

from skill_ledger.domain.constants import MAX_EVENT_TEXT_BYTES
from skill_ledger.domain.errors import DowngradeRefused, NotFound, UsageError, VersionConflict
from skill_ledger.domain.events import Actor
from skill_ledger.domain.registry import DOWNGRADE, INSTALL, UP_TO_DATE, Registry

ACTOR = Actor("user:alice", "host", "test")
META = {"root": 1, "timestamp": 2, "snapshot": 2, "targets": 2}
KEYS = {"root": "a", "targets": "a", "snapshot": "a", "timestamp": "a"}


def registry() -> Registry:
    r = Registry.start("main")
    assert r.add(ACTOR, "https://r.example/", "ab" * 32, 1)
    return r


def kinds(r: Registry) -> list[str]:
    return [e.KIND for e in r.collect_events()]


def installed(r: Registry, version: str, payload: str = "p1", **kw) -> None:
    r.record_installed(ACTOR, skill_id="acme.x", version=version, target=f"acme.x/{version}.palyra-skill",
                       artifact_sha256="a" * 64, payload_sha256=payload, metadata=META, **kw)


def test_the_pin_is_recorded_once_and_another_pin_needs_a_remove() -> None:
    r = registry()
    assert not r.add(ACTOR, "https://r.example/", "ab" * 32, 1)  # the very pin: nothing to record
    with pytest.raises(UsageError):
        r.add(ACTOR, "https://r.example/", "cd" * 32, 1)
    with pytest.raises(UsageError):
        r.add(ACTOR, "https://other.example/", "ab" * 32, 1)
    r.remove(ACTOR, "moved")
    assert r.add(ACTOR, "https://other.example/", "cd" * 32, 1)
    assert kinds(r) == ["registry.added", "registry.removed", "registry.added"]
    assert (r.active, r.url, r.root_sha256) == (True, "https://other.example/", "cd" * 32)


def test_an_unknown_or_removed_registry_is_not_found() -> None:
    with pytest.raises(NotFound, match="never added"):
        Registry.start("x").require_active()
    r = registry()
    r.remove(ACTOR, None)
    with pytest.raises(NotFound, match="was removed"):
        r.remove(ACTOR, None)
    with pytest.raises(NotFound):
        r.observe(ACTOR, META, KEYS)


def test_metadata_is_recorded_only_when_it_changes_and_a_re_add_starts_the_floor_again() -> None:
    r = registry()
    assert r.observe(ACTOR, META, KEYS)
    assert not r.observe(ACTOR, dict(META), dict(KEYS))
    assert r.observe(ACTOR, {**META, "timestamp": 3}, KEYS)
    assert r.observe(ACTOR, {**META, "timestamp": 3}, {**KEYS, "timestamp": "b"})  # a rotated key is a change
    assert r.trusted == {**META, "timestamp": 3} and r.role_keys["timestamp"] == "b"
    r.remove(ACTOR, None)
    r.add(ACTOR, "https://r.example/", "ab" * 32, 1)
    assert r.trusted is None and r.role_keys == {}


def test_plan_against_the_skill_level_floor() -> None:
    r = registry()
    assert r.plan("acme.x", "1.0.0", "p1") == INSTALL  # nothing installed from it yet
    installed(r, "2.0.0", "p2")
    assert r.plan("acme.x", "2.0.0", "p2") == UP_TO_DATE
    assert r.plan("acme.x", "02.0.0", "p2") == UP_TO_DATE  # the same version under SemVer
    assert r.plan("acme.x", "2.0.1", "p3") == INSTALL
    with pytest.raises(VersionConflict) as e:
        r.plan("acme.x", "2.0.0", "other")
    assert e.value.details["installed_payload_sha256"] == "p2"
    with pytest.raises(DowngradeRefused) as e:
        r.plan("acme.x", "1.0.0", "p1")
    assert e.value.details == {"registry": "main", "skill_id": "acme.x", "version": "1.0.0",
                               "installed_version": "2.0.0"}
    assert r.plan("acme.x", "1.0.0", "p1", allow_downgrade=True) == DOWNGRADE
    assert r.plan("acme.x", "1.0.0", "p1", explicit=True) == INSTALL  # an operator named the version
    assert r.plan("acme.other", "0.0.1", "q") == INSTALL


def test_the_floor_rises_with_installs_and_falls_only_with_an_allowed_downgrade() -> None:
    r = registry()
    installed(r, "2.0.0", "p2")
    installed(r, "1.0.0", "p1")  # an explicit older install: the floor stays
    assert r.installed["acme.x"].version == "2.0.0"
    installed(r, "3.0.0", "p3")
    assert r.installed["acme.x"].version == "3.0.0"
    installed(r, "1.0.0", "p1", downgraded_from="3.0.0", reason="broken")
    assert r.installed["acme.x"].version == "1.0.0"
    events = r.collect_events()
    assert (events[-1].downgraded_from, events[-1].reason) == ("3.0.0", "broken")


def refuse(r: Registry, code: str = "registry_rollback", detail: str = "older", skill_id: str | None = "acme.x",
           version: str | None = "2.0.0") -> bool:
    return r.refuse(ACTOR, operation="update", skill_id=skill_id, version=version, code=code,
                    tuf_error="BadVersionNumberError", phase="metadata", detail=detail)


def test_a_refusal_repeated_with_nothing_in_between_is_recorded_once() -> None:
    r = registry()
    assert refuse(r)
    assert not refuse(r)  # a timer retrying against a frozen mirror
    assert refuse(r, skill_id=None)  # another skill (here: every skill)
    assert refuse(r, detail="other")  # another detail
    assert not refuse(r, detail="other")
    r.observe(ACTOR, META, KEYS)  # something changed in between
    assert refuse(r, detail="other")
    installed(r, "2.0.0")
    assert refuse(r, detail="other")
    assert kinds(r).count("registry.update_refused") == 5


def test_refusal_text_is_bounded() -> None:
    r = registry()
    assert refuse(r, detail="x" * 100_000, version="1" * 50_000)
    event = r.collect_events()[-1]
    assert len(event.detail.encode()) <= MAX_EVENT_TEXT_BYTES and event.detail.endswith("bytes]")
    assert len(event.version.encode()) <= MAX_EVENT_TEXT_BYTES
    assert not refuse(r, detail="x" * 100_000, version="1" * 50_000)  # the same refusal, as bounded
    with pytest.raises(ValueError):
        r.refuse(ACTOR, operation="delete", skill_id=None, version=None, code="x", tuf_error=None, phase="metadata",
                 detail="")
