"""Builds the corpus of real WebAssembly modules: small C programs compiled here with the
system's clang for wasm32-wasi against Debian's wasi-libc (``scripts/ensure-wasi-toolchain``
installs them), plus committed modules from toolchains this machine does not have.

Used by the tests (the session fixture in ``conftest.py``) and by the benchmarks::

    sys.path.insert(0, str(ROOT / "tests"))
    from corpus.build import build_corpus
    modules = build_corpus(out_dir)          # {"json_filter": Path(".../json_filter.wasm"), ...}

Compiling takes about 0.2 s a module, so the results are cached in
``$SKILLS_CORPUS_CACHE`` (default ``$XDG_CACHE_HOME/skill-ledger-corpus``, else
``~/.cache/skill-ledger-corpus``), keyed by the SHA-256 of the sources, the flags and
``clang --version``. A missing or broken toolchain is an error naming the script that
installs it, never a skipped test.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "COMMITTED",
    "COMPONENTS",
    "MODULES",
    "CorpusModule",
    "ToolchainError",
    "build_corpus",
    "cache_dir",
    "clang_command",
    "compile_c",
]

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
TARGET = "wasm32-wasi"
# Debian's clang finds wasi-libc by itself for this target (headers in /usr/include/wasm32-wasi,
# crt1 and libc.a in /usr/lib/wasm32-wasi): no --sysroot is needed, and the usual
# /usr/share/wasi-sysroot of wasi-sdk does not exist on Debian.
# --strip-debug drops the DWARF sections wasi-libc.a brings along (two thirds of each module)
# and keeps the name section, so traps still name functions.
COMMON_FLAGS = (f"--target={TARGET}", "-O2", "-Wall", "-Wextra", "-Wl,--strip-debug")
INSTALL_HINT = ("run scripts/ensure-wasi-toolchain (as root it installs Debian's clang, lld, wasi-libc and "
                "libclang-rt-dev-wasm32)")


class ToolchainError(RuntimeError):
    """The wasm32-wasi C toolchain is missing or failed to compile a corpus source."""


@dataclass(frozen=True)
class CorpusModule:
    source: str  # a file under src/
    exec_model: str  # "command" (exports _start) or "reactor" (exports _initialize)


MODULES: Mapping[str, CorpusModule] = {
    "json_filter": CorpusModule("json_filter.c", "command"),
    "wordcount": CorpusModule("wordcount.c", "command"),
    "malloc_heavy": CorpusModule("malloc_heavy.c", "command"),
    "reactor_ctor": CorpusModule("reactor_ctor.c", "reactor"),
    "reactor_logging": CorpusModule("reactor_logging.c", "reactor"),
    "fail_stderr": CorpusModule("fail_stderr.c", "command"),
    "exit_after_output": CorpusModule("exit_after_output.c", "command"),
    "stderr_flood": CorpusModule("stderr_flood.c", "command"),
}

# Built elsewhere with the command in their source's header, committed as binaries (small).
COMMITTED: Mapping[str, Path] = {
    "assemblyscript_digits": HERE / "assemblyscript" / "digits.wasm",
}
# WebAssembly components (not core modules, so not in build_corpus(): Module.validate and the
# benchmarks' compile refuse them). Committed, built as their source's header says.
COMPONENTS: Mapping[str, Path] = {
    "wordcount_p2": HERE / "component" / "wordcount_p2.component.wasm",
}


def cache_dir() -> Path:
    explicit = os.environ.get("SKILLS_CORPUS_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "skill-ledger-corpus"


@functools.lru_cache(maxsize=1)
def _clang() -> tuple[str, str]:
    """The clang executable and its ``--version`` text (part of every cache key)."""
    clang = shutil.which("clang")
    if clang is None:
        raise ToolchainError(f"clang is not installed, so the corpus of real modules cannot be built: {INSTALL_HINT}")
    done = subprocess.run([clang, "--version"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ToolchainError(f"'{clang} --version' failed ({done.stderr.strip()}): {INSTALL_HINT}")
    return clang, done.stdout


def clang_command(sources: Sequence[Path], output: Path, exec_model: str, extra: Sequence[str] = ()) -> list[str]:
    """The exact clang invocation for a wasm32-wasi command or reactor."""
    if exec_model not in ("command", "reactor"):
        raise ValueError(f"unknown exec model {exec_model!r}")
    return [_clang()[0], *COMMON_FLAGS, f"-mexec-model={exec_model}", *extra, *map(str, sources), "-o", str(output)]


def compile_c(sources: Sequence[Path], output: Path, exec_model: str, extra: Sequence[str] = ()) -> None:
    """Compile and link ``sources`` into ``output`` (replaced atomically); clang's own
    message, with the installation hint, on failure."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    os.close(fd)
    try:
        done = subprocess.run(clang_command(sources, Path(temp), exec_model, extra), capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise ToolchainError(f"clang could not build {output.name} from {', '.join(map(str, sources))}:\n"
                                 f"{done.stderr.strip()}\nIf headers, crt1 or libc are missing: {INSTALL_HINT}")
        os.replace(temp, output)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def cache_key(sources: Sequence[Path], exec_model: str, extra: Sequence[str] = ()) -> str:
    h = hashlib.sha256()
    for part in (_clang()[1], " ".join(COMMON_FLAGS), exec_model, " ".join(extra)):
        h.update(part.encode() + b"\0")
    for source in sources:
        h.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return h.hexdigest()


def cached_build(name: str, sources: Sequence[Path], exec_model: str, extra: Sequence[str] = (),
                 cache: Path | None = None) -> Path:
    """The module built from ``sources``, from the cache when the same inputs built it before."""
    cache = cache or cache_dir()
    target = cache / f"{name}-{cache_key(sources, exec_model, extra)[:24]}.wasm"
    if not target.is_file():
        compile_c(sources, target, exec_model, extra)
    return target


def build_corpus(out_dir: Path | None = None, *, cache: Path | None = None) -> dict[str, Path]:
    """Every corpus module by name: the C programs (built or from the cache) and the committed
    binaries. With ``out_dir``, they are copied there as ``<name>.wasm`` and those paths returned."""
    built = {name: cached_build(name, [SOURCES / m.source], m.exec_model, cache=cache) for name, m in MODULES.items()}
    built.update(COMMITTED)
    if out_dir is None:
        return built
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    copies = {}
    for name, path in built.items():
        copies[name] = out_dir / f"{name}.wasm"
        shutil.copyfile(path, copies[name])
    return copies
