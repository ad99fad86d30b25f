"""What a user installs: a wheel built from the repository, installed into a fresh virtual
environment with no access to the checkout.

The wheel must hold exactly one import package, ``skill_ledger`` (plus its dist-info): the
repository's folders ``domain/``, ``adapters/``, ``projections/``, ``cli/`` and ``examples/``
are mapped into it and must not land at the top of site-packages (``adapters`` is also the
import name of an unrelated PyPI package). Every module of those folders and the example
skill's files must be in it, and the installed ``skills`` must work from anywhere:
``--version``, ``python -m skill_ledger``, ``demo`` (which needs the example as package data)
and shell completion.

The build runs on a copy of exactly the files the build reads (``pyproject.toml``, the README,
the license files, the mapped folders), so it neither writes ``build/`` into the checkout nor
depends on anything else lying there. Dependencies come from the configured package index.

The source distribution (``python -m build --sdist``, on a copy of the repository's tracked
files) holds every tracked file (tests, examples, docs, scripts, benchmarks included) with the
PEP 639 license metadata, and a wheel built from it holds exactly what the repository's wheel does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
LAYERS = ("domain", "adapters", "projections", "cli", "examples", "tests")


def _run(argv: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300,
         check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"{argv}\nstdout: {p.stdout[-3000:]}\nstderr: {p.stderr[-3000:]}"
    return p


def _source_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and not p.name.endswith((".pyc", ".pyo")))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wheel")


@pytest.fixture(scope="module")
def wheel(work: Path) -> Path:
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", PYPROJECT["project"]["readme"], *PYPROJECT["project"]["license-files"]):
        shutil.copy2(ROOT / name, src / name)
    for folder in sorted(set(PACKAGE_DIRS.values())):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", work / "dist", src], cwd=work)
    wheels = list((work / "dist").glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def venv(work: Path, wheel: Path) -> Path:
    """A fresh venv (from the base interpreter, no system site-packages) with the wheel installed."""
    target = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", target], cwd=work)
    _run([sys.executable, "-m", "pip", "--python", target / "bin" / "python", "install", "--quiet", wheel], cwd=work)
    return target


@pytest.fixture(scope="module")
def outside(work: Path) -> Path:
    """A working directory far from the checkout."""
    d = work / "elsewhere"
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def env(work: Path) -> dict[str, str]:
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    clean = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SKILLS_")}
    clean["XDG_STATE_HOME"] = str(work / "state")  # a default home, never the developer's
    return clean


def test_the_wheel_holds_one_import_package_and_its_dist_info(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    version = PYPROJECT["project"].get("version") or _package_version()
    assert top == {"skill_ledger", f"skill_ledger-{version}.dist-info"}, top
    assert not top & set(LAYERS)


def _package_version() -> str:
    namespace: dict[str, str] = {}
    exec((ROOT / "skill_ledger" / "__init__.py").read_text(), namespace)
    return namespace["__version__"]


def test_the_wheel_holds_every_module_of_the_mapped_folders_and_the_example(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = []
    for package, folder in PACKAGE_DIRS.items():  # each mapped folder with everything beneath it
        for path in _source_files(ROOT / folder):
            inside = f"{package.replace('.', '/')}/{path.relative_to(ROOT / folder).as_posix()}"
            if path.suffix == ".py" or folder == "examples":
                if inside not in names:
                    missing.append(inside)
    assert not missing, f"not in the wheel (a sub-package missing from pyproject's packages?): {missing}"
    assert "skill_ledger/examples/hello/skill.toml" in names
    assert any(n.startswith("skill_ledger/examples/hello/modules/") and n.endswith(".wasm") for n in names)


def test_site_packages_gets_only_skill_ledger(venv: Path, outside: Path, env: dict[str, str]):
    code = ("import json, site, sys, skill_ledger, skill_ledger.adapters\n"
            "print(json.dumps({'file': skill_ledger.__file__, 'adapters': skill_ledger.adapters.__file__,"
            " 'site': site.getsitepackages(), 'path': sys.path}))")
    info = json.loads(_run([venv / "bin" / "python", "-c", code], cwd=outside, env=env).stdout)
    site_packages = Path(info["site"][0])
    assert Path(info["file"]).is_relative_to(site_packages), info
    assert Path(info["adapters"]) == site_packages / "skill_ledger" / "adapters" / "__init__.py"
    assert not any(Path(p).resolve() == ROOT for p in info["path"] if p)
    present = {p.name for p in site_packages.iterdir()}
    assert not present & set(LAYERS), present & set(LAYERS)


def test_the_installed_command_reports_its_versions(venv: Path, outside: Path, env: dict[str, str]):
    libraries = {}
    for name in ("wasmtime", "eventsourcing", "cryptography"):
        libraries[name] = _run([venv / "bin" / "python", "-c", f"import importlib.metadata as m; "
                                f"print(m.version({name!r}))"], cwd=outside, env=env).stdout.strip()
    human = _run([venv / "bin" / "skills", "--version"], cwd=outside, env=env).stdout.splitlines()
    assert human[0] == f"skills {_package_version()} (runtime 0.1.0, protocol major 1)"
    assert human[1:4] == [f"{name} {version}" for name, version in libraries.items()]
    assert human[4].startswith("Python 3.")
    as_module = _run([venv / "bin" / "python", "-m", "skill_ledger", "--version"], cwd=outside, env=env)
    assert as_module.stdout.splitlines() == human
    doc = json.loads(_run([venv / "bin" / "skills", "--version", "--json"], cwd=outside, env=env).stdout)
    assert doc["engine_version"] == _package_version() and doc["libraries"] == libraries


def test_demo_runs_from_the_installed_wheel(venv: Path, outside: Path, env: dict[str, str], work: Path):
    home = work / "demo-home"
    p = _run([venv / "bin" / "skills", "demo", "--home", home, "--json"], cwd=outside, env=env)
    d = json.loads(p.stdout)
    assert [e["status"] for e in d["index"]] == ["active"]
    assert {"text": "hello from the demo"} in [s.get("output") for s in d["steps"]]
    verified = _run([venv / "bin" / "skills", "--home", home, "journal", "verify", "--json"], cwd=outside, env=env)
    assert json.loads(verified.stdout)["ok"] is True
    ran = _run([venv / "bin" / "skills", "--home", home, "run", "examples.echo", "--input", '{"text": "wheel"}',
                "--json"], cwd=outside, env=env)
    assert json.loads(ran.stdout)["output"] == {"text": "wheel"}


def test_shell_completion_from_the_installed_wheel(venv: Path, outside: Path, env: dict[str, str]):
    script = _run([venv / "bin" / "skills"], cwd=outside, env={**env, "_SKILLS_COMPLETE": "bash_source"})
    assert "complete -o nosort -F _skills_completion skills" in script.stdout
    words = _run([venv / "bin" / "skills"], cwd=outside,
                 env={**env, "_SKILLS_COMPLETE": "bash_complete", "COMP_WORDS": "skills de", "COMP_CWORD": "1"})
    assert words.stdout.split() == ["plain,demo"]


# --- the license and the source distribution -----------------------------------------------------


def test_the_wheel_carries_the_license_as_pep_639_metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        dist_info = next(n.split("/", 1)[0] for n in z.namelist() if ".dist-info/" in n)
        metadata = z.read(f"{dist_info}/METADATA").decode()
        shipped = z.read(f"{dist_info}/licenses/LICENSE").decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()
    assert not any(line.startswith("Classifier: License ::") for line in metadata.splitlines())
    assert shipped == (ROOT / "LICENSE").read_text() and "Apache License" in shipped and "Version 2.0" in shipped


IGNORED_DIRS = {".git", ".venv", "__pycache__", ".hypothesis", ".pytest_cache", ".ruff_cache", "build", "dist"}


def _repository_files() -> list[str]:
    """The repository's files: git's tracked files in a checkout, else (an unpacked sdist) the tree."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60)
        names = [n for n in listed.stdout.decode().split("\0") if n and (ROOT / n).is_file()]
        if names:
            return sorted(names)
    except (OSError, subprocess.CalledProcessError):
        pass
    return sorted(p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                  if p.is_file() and not IGNORED_DIRS & set(p.relative_to(ROOT).parts)
                  and not p.name.endswith((".pyc", ".pyo")) and ".egg-info" not in p.as_posix()
                  and p.name != "PKG-INFO" and p.name != "setup.cfg")


@pytest.fixture(scope="module")
def sdist(work: Path) -> Path:
    src = work / "sdist-src"
    for name in _repository_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "build", "--sdist", "--outdir", work / "sdist-dist", src], cwd=work)
    archives = list((work / "sdist-dist").glob("*.tar.gz"))
    assert len(archives) == 1, archives
    return archives[0]


def _sdist_names(archive: Path) -> set[str]:
    with tarfile.open(archive) as t:
        return {m.name.split("/", 1)[1] for m in t.getmembers() if m.isfile() and "/" in m.name}


def test_the_sdist_holds_every_repository_file(sdist: Path):
    names = _sdist_names(sdist)
    missing = [n for n in _repository_files() if n not in names and n != ".gitignore"]
    assert not missing, f"not in the sdist (MANIFEST.in?): {missing}"
    for folder in ("tests/", "examples/", "docs/", "scripts/", "benchmarks/"):
        assert any(n.startswith(folder) for n in names), folder
    assert {"LICENSE", "README.md", "pyproject.toml", "PKG-INFO"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith(".venv/")]


def test_the_sdist_metadata_has_the_license_expression_and_the_extras(sdist: Path):
    with tarfile.open(sdist) as t:
        member = next(m for m in t.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
        lines = t.extractfile(member).read().decode().splitlines()  # type: ignore[union-attr]
    assert "License-Expression: Apache-2.0" in lines and "License-File: LICENSE" in lines
    assert "Provides-Extra: postgres" in lines and "Provides-Extra: test" in lines
    requires = [line for line in lines if line.startswith("Requires-Dist: ")]
    assert not [r for r in requires if "==" in r.split(";")[0]], requires  # ranges, never exact pins
    assert any(r.startswith("Requires-Dist: psycopg") and 'extra == "postgres"' in r for r in requires)
    assert not any(r.startswith("Requires-Dist: psycopg") and "extra ==" not in r for r in requires)


def test_a_wheel_built_from_the_sdist_equals_the_repositorys_wheel(sdist: Path, wheel: Path, work: Path):
    out = work / "from-sdist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", out, sdist], cwd=work)
    (built,) = out.glob("*.whl")
    assert set(zipfile.ZipFile(built).namelist()) == set(zipfile.ZipFile(wheel).namelist())


# --- PostgreSQL support is an extra ------------------------------------------------------------------


def test_the_installed_wheel_without_the_postgres_extra_names_it(venv: Path, outside: Path, env: dict[str, str],
                                                                  work: Path):
    """The wheel's own venv has no psycopg (only `skill-ledger[postgres]` brings it)."""
    probe = _run([venv / "bin" / "python", "-c", "import importlib.util as u; print(u.find_spec('psycopg'))"],
                 cwd=outside, env=env)
    assert probe.stdout.strip() == "None"
    p = _run([venv / "bin" / "skills", "--home", work / "pg-home", "--journal",
              "postgresql://ledger:pw-not-shown@127.0.0.1:1/skills", "list", "--json"], cwd=outside, env=env,
             check=False)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("error[configuration_error]: ") and "pip install 'skill-ledger[postgres]'" in p.stderr
    assert json.loads(p.stdout)["error"]["details"]["extra"] == "postgres"
    assert "pw-not-shown" not in p.stdout + p.stderr and "Traceback" not in p.stderr


def test_a_missing_psycopg_is_reported_as_the_missing_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The same in this process, with psycopg's import made to fail."""
    from click.testing import CliRunner

    from skill_ledger.cli.main import cli

    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now raises ImportError
    url = "postgresql://ledger:pw-not-shown@127.0.0.1:1/skills"
    for args in (["list", "--json"], ["doctor", "--json"], ["journal", "verify", "--json"]):
        r = CliRunner().invoke(cli, ["--home", str(tmp_path / "home"), "--journal", url, *args])
        assert r.exit_code == 2, (args, r.output)
        assert "skill-ledger[postgres]" in r.stderr and "pw-not-shown" not in r.output
        assert json.loads(r.stdout)["error"]["code"] == "configuration_error"
