"""Issue 17: the audit compiled every module to decide its validity (SQLite: 2.75 s against
0.011 s for ``Module.validate``), and every ``install``, ``enable``, ``audit`` and ``reaudit``
process paid it again. Now nothing on that path compiles: the module's one compilation
happens in the runner, at its first run.

Real signed artifacts, real SQLite journals; wasmtime's module constructor and deserializer
are replaced by ones that fail the test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import wasmtime

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers_audit as h  # noqa: E402

from skill_ledger.adapters.audit import inspector  # noqa: E402
from skill_ledger.adapters.audit.reaudit import Reauditor  # noqa: E402
from skill_ledger.adapters.usecases import lifecycle, verification  # noqa: E402


@pytest.fixture
def no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def compile_(*args: object, **kwargs: object) -> None:
        raise AssertionError("a module was compiled on the audit path")

    monkeypatch.setattr(wasmtime.Module, "__init__", compile_)
    monkeypatch.setattr(wasmtime.Module, "deserialize", compile_)
    monkeypatch.setattr(wasmtime.Module, "deserialize_file", compile_)


def test_install_audit_enable_and_reaudit_compile_nothing(tmp_path: Path, no_compiling: None) -> None:
    home = tmp_path / "home"
    inspector.clear_cache()
    assert h.install(home, h.artifact("acme.one", tools=("echo", "shout"))).status == "active"
    assert h.install(home, h.artifact("acme.two", salt=1)).status == "active"
    with h.ledger(home) as lg:
        assert verification.audit_installed(lg, "acme.one", None).report.passed
        lifecycle.quarantine(lg, "acme.one", None, "checking")
        assert lifecycle.enable(lg, "acme.one", None, "checked").status == "active"
        inspector.clear_cache()  # a fresh re-audit process: the facts are read again, still not compiled
        result = Reauditor(lg).run_pass()
    assert (result.checked, result.passed, result.quarantined) == (2, 2, [])
    assert inspector.cache_info()["validations"] == 2  # validated once per module, in this process


def test_the_audit_command_of_the_cli_compiles_nothing(tmp_path: Path, no_compiling: None) -> None:
    from click.testing import CliRunner

    from skill_ledger.cli.main import cli

    home = tmp_path / "home"
    artifact = h.write(tmp_path, "one.palyra-skill", h.artifact("acme.one"))
    runner = CliRunner()
    for args in (["install", "--artifact", str(artifact), "--allow-tofu"], ["audit", "acme.one"],
                 ["audit", "--artifact", str(artifact)], ["reaudit"], ["check"]):
        result = runner.invoke(cli, ["--home", str(home), "--actor", "user:test", "--json", *args])
        assert result.exit_code == 0, (args, result.output)
