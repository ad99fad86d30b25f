"""The compliance report's scenario, shared by the engine tests (``tests/projections``) and the
command tests (``tests/cli``, ``tests/e2e``): a real home (real ledger use cases, signed
artifacts, real SQLite) with every kind of event a reviewer must see: installs, a failed
audit and an override of it, a quarantine lifted, a revocation that quarantines two
versions, a tamper detection, a policy loosening (and a tightening), two rejections, two
denials, a disable, a rollback, a removal, a signed checkpoint, and a manifest description
full of hostile markup.

Import it from a test as::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import helpers_report as hr
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import helpers_audit as ha  # noqa: E402

from skill_ledger.adapters.journal.sqlite import export_row, iter_rows  # noqa: E402
from skill_ledger.adapters.journal.verify import verify_journal  # noqa: E402
from skill_ledger.adapters.settings import resolve  # noqa: E402
from skill_ledger.adapters.usecases import lifecycle, trust, verification  # noqa: E402
from skill_ledger.adapters.usecases.checkpoints import record_checkpoint  # noqa: E402
from skill_ledger.adapters.usecases.install import install  # noqa: E402
from skill_ledger.adapters.usecases.policy import set_policy  # noqa: E402
from skill_ledger.adapters.usecases.unit_of_work import Ledger  # noqa: E402
from skill_ledger.domain.artifact import build_artifact  # noqa: E402
from skill_ledger.domain.errors import SkillLedgerError  # noqa: E402
from skill_ledger.projections.report import JournalVerification, Report, build_report  # noqa: E402


class Driver:
    """Runs use cases against a home as a given actor and reads the journal back."""

    def __init__(self, home: Path, journal: str | None = None) -> None:
        self.home, self.journal = home, journal  # journal: None for <home>/journal.db, or a postgresql:// URL

    @contextlib.contextmanager
    def ledger(self, actor: str = "user:alice", command: str = "test") -> Iterator[Ledger]:
        lg = Ledger(resolve(home=str(self.home), journal=self.journal, actor=actor, command=command))
        try:
            yield lg
        finally:
            lg.close()

    USE_CASES: dict[str, Any] = {
        "install": install, "allow": trust.allow, "revoke": trust.revoke, "verify": verification.verify,
        "set_policy": set_policy, "enable": lifecycle.enable, "disable": lifecycle.disable,
        "quarantine": lifecycle.quarantine, "rollback": lifecycle.rollback, "remove": lifecycle.remove,
        "deny_execution": lifecycle.deny_execution,
    }

    def do(self, actor: str, command: str, use_case: str, *args: Any, **kwargs: Any) -> Any:
        with self.ledger(actor, command) as lg:
            return self.USE_CASES[use_case](lg, *args, **kwargs)

    def install(self, actor: str, data: bytes, *, allow_tofu: bool = False) -> Any:
        return self.do(actor, "install", "install", "artifact.palyra-skill", data=data, allow_tofu=allow_tofu,
                       source="test")

    def try_install(self, actor: str, data: bytes) -> str:
        try:
            self.install(actor, data)
        except SkillLedgerError as e:
            return e.code
        raise AssertionError("install was expected to be rejected")

    def checkpoint(self, actor: str) -> None:
        with self.ledger(actor, "journal checkpoint") as lg:
            record_checkpoint(lg)

    def events(self) -> list[dict[str, Any]]:
        with self.ledger() as lg:
            return [export_row(r) for r in iter_rows(lg.app)]

    def verification(self) -> JournalVerification:
        with self.ledger() as lg:
            v = verify_journal(lg.app)
        message = "; ".join(f"{p.position}: {p.code}: {p.message}" for p in v.problems[:3])
        return JournalVerification(ok=v.ok, first_bad_position=v.first_bad_position, message=message)


def corrupt(data: bytes) -> bytes:
    """The artifact with 16 bytes flipped in the middle: a format or integrity rejection."""
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 16]) + data[mid + 16:]


def manifest(skill_id: str, version: str, publisher: str, description: str) -> str:
    return (f'manifest_version = 2\nskill_id = "{skill_id}"\nname = "Skill {skill_id}"\nversion = "{version}"\n'
            f'publisher = "{publisher}"\n\n[entrypoints]\n[[entrypoints.tools]]\nid = "{publisher}.echo"\n'
            'name = "echo"\ndescription = "Echo"\ninput_schema = { type = "object" }\n'
            'output_schema = { type = "object" }\n\n[compat]\nrequired_protocol_major = 1\n'
            f'min_palyra_version = "0.1.0"\n\n[operator]\ndisplay_name = "Test skill"\n'
            f"description = '{description}'\n")


def artifact(skill_id: str, version: str, publisher: str, seed: bytes, *, description: str = "A test skill",
             bad_audit: bool = False) -> bytes:
    module = ha.module("echo", imports=[("env", "abort")] if bad_audit else (), salt=hash(skill_id) % 1000)
    return build_artifact(manifest(skill_id, version, publisher, description), [("echo.wasm", module)],
                          [("note.txt", b"hello")], ha.SBOM, ha.PROVENANCE, seed, 0).artifact


# --- the scenario -------------------------------------------------------------------------------

SEED_ACME, SEED_GLOBEX, SEED_INITECH, SEED_STRANGER = (bytes([n]) * 32 for n in (0x51, 0x52, 0x53, 0x54))
# A manifest description that would run script if it were not escaped: the script would retitle
# the page, the image's error handler would mark the body (the browser test looks for both).
HOSTILE = ('<script>document.title="pwned"</script> <img src=x onerror="document.body.dataset.pwned=1"> '
           '[click](https://evil.example/x) ![pixel](https://evil.example/p.png) # heading | cell')
GENERATED_AT = "2026-12-01T00:00:00+00:00"
# Secret values the scenario stores: no report, in any format, may contain any of them.
SECRET_VALUES = ("tok-VALUE-0b1d-never-shown", "tok-VALUE-77e2-never-shown", "smtp-VALUE-5c3a-never-shown")


class Scenario:
    """Run it once per module (``Scenario(home).run()``); ``events`` is the journal as exported."""

    def __init__(self, home: Path, journal: str | None = None) -> None:
        self.home = home
        self.d = Driver(home, journal)
        self.events: list[dict[str, Any]] = []
        self.checkpoint_at = 0  # head right after the checkpoint

    def run(self) -> Scenario:
        d = self.d
        d.do("user:alice", "trust allow", "allow", "acme", ha.public_hex(SEED_ACME), "vendor contract 7")
        d.install("user:alice", artifact("acme.echo", "1.0.0", "acme", SEED_ACME))
        d.install("user:alice", artifact("acme.echo", "1.1.0", "acme", SEED_ACME))
        d.install("user:bob", artifact("globex.widget", "1.0.0", "globex", SEED_GLOBEX, description=HOSTILE),
                  allow_tofu=True)
        d.do("user:alice", "trust allow", "allow", "initech", ha.public_hex(SEED_INITECH), "partner")
        d.install("user:alice", artifact("initech.alpha", "1.0.0", "initech", SEED_INITECH))
        d.install("user:alice", artifact("initech.beta", "1.0.0", "initech", SEED_INITECH))
        d.install("user:carol", artifact("acme.bad", "1.0.0", "acme", SEED_ACME, bad_audit=True))
        d.checkpoint("user:alice")
        self.checkpoint_at = self.head()
        d.do("user:carol", "enable", "enable", "acme.bad", None, "vendor says it is fine", override=True)
        d.do("user:alice", "quarantine", "quarantine", "acme.echo", "1.0.0", "suspicious traffic")
        d.do("user:alice", "enable", "enable", "acme.echo", "1.0.0", "false alarm")
        d.do("user:dave", "trust revoke", "revoke", "initech", ha.public_hex(SEED_INITECH), "key leaked")
        tampered = d.install("user:alice", artifact("acme.tamper", "1.0.0", "acme", SEED_ACME))
        ha.tamper(self.home, tampered.artifact_sha256, "flip")
        assert not d.do("service:reaudit", "verify", "verify", "acme.tamper", "1.0.0").ok
        d.do("user:erin", "policy set", "set_policy", ["allowed_import_modules=skills:host/v1,env",
                                                       "max_module_bytes=99999999"], "new vendor SDK")
        d.do("user:erin", "policy set", "set_policy", ["max_exported_functions=32"], "tighten")
        assert d.try_install("user:mallory", corrupt(artifact("acme.echo", "2.0.0", "acme", SEED_ACME)))
        assert d.try_install("user:mallory", artifact("stranger.tool", "1.0.0", "stranger", SEED_STRANGER)) == \
            "untrusted_publisher"
        for _ in range(2):
            d.do("agent:bot", "run", "deny_execution", "acme.tamper", "1.0.0", "acme.echo", "quarantined")
        d.do("user:alice", "disable", "disable", "acme.echo", "1.0.0", "maintenance window")
        d.do("user:alice", "enable", "enable", "acme.echo", "1.0.0", "maintenance over")
        d.do("user:alice", "rollback", "rollback", "acme.echo", "1.0.0", "1.1.0 misbehaves")
        d.do("user:alice", "remove", "remove", "acme.echo", "1.1.0", "retired")
        self.secrets_and_registry()
        self.events = d.events()
        return self

    def secrets_and_registry(self) -> None:
        """Secrets set (one replacing a value) and removed, of a skill's scope and of the global
        one, through the real use case and store; a registry pinned, its metadata trusted, a
        skill installed from it, a refused update, and the registry removed (the ``Registry``
        aggregate's own events: the registry protocol is tested in ``tests/adapters/registry``)."""
        from skill_ledger.adapters.storage.secrets import SecretStore
        from skill_ledger.adapters.usecases.registry import load_registry
        from skill_ledger.adapters.usecases.secrets import remove_secret, set_secret

        with self.d.ledger("user:alice", "secret set") as lg:
            store = SecretStore(lg.settings.secrets_path)
            set_secret(lg, store, "skill:acme.bad", "api_token", SECRET_VALUES[0], "vendor token")
            set_secret(lg, store, "skill:acme.bad", "api_token", SECRET_VALUES[1], "rotated")
            set_secret(lg, store, "global", "smtp_password", SECRET_VALUES[2], "mail relay")
            remove_secret(lg, store, "skill:acme.bad", "api_token", "vendor offboarded")
            remove_secret(lg, store, "global", "smtp_password", "relay retired")
        with self.d.ledger("user:frank", "registry add") as lg:
            reg = load_registry(lg, "corp")
            reg.add(lg.actor, "https://registry.example/corp", "ab" * 32, 1)
            reg.observe(lg.actor, {"root": 1, "timestamp": 7, "snapshot": 5, "targets": 4}, {"root": "k1"})
            reg.record_installed(lg.actor, skill_id="initech.alpha", version="1.0.0", target="initech.alpha-1.0.0",
                                 artifact_sha256="cd" * 32, payload_sha256="ef" * 32,
                                 metadata={"root": 1, "timestamp": 7, "snapshot": 5, "targets": 4},
                                 downgraded_from=None, reason=None)
            reg.refuse(lg.actor, operation="update", skill_id="initech.alpha", version="2.0.0",
                       code="registry_rollback", tuf_error="BadVersionNumberError", phase="metadata",
                       detail="timestamp version 6 is older than the trusted 7")
            lg.save(reg)
        with self.d.ledger("user:frank", "registry remove") as lg:
            reg = load_registry(lg, "corp")
            reg.remove(lg.actor, "moved to the new registry")
            lg.save(reg)

    def head(self) -> int:
        with self.d.ledger() as lg:
            return lg.head()

    def find(self, kind: str, stream: str | None = None, **data: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind and (stream is None or e["stream"] == stream)
                and all(e["data"].get(k) == v for k, v in data.items())]

    def one(self, kind: str, stream: str | None = None, **data: Any) -> dict[str, Any]:
        found = self.find(kind, stream, **data)
        assert len(found) == 1, (kind, stream, data, found)
        return found[0]

    def report(self, **kw: Any) -> Report:
        args: dict[str, Any] = dict(generated_at=GENERATED_AT, generated_by="user:auditor", project_version="0.2.0",
                                    journal_verification=JournalVerification(ok=True))
        args.update(kw)
        return build_report(iter(self.events), **args)


