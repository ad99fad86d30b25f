"""``skills doctor``'s checks of what the home stores: the artifacts the installed versions
reference (``blobs``) and the runner's cache (``cache``). The report model and the other
checks are in ``adapters/doctor.py``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import msgspec

from skill_ledger.adapters.doctor import FAIL, FILES, MAX_LISTED, OK, WARN, Check, q

# --- stored artifacts -------------------------------------------------------------------------


def blobs_check(ledger: Any, thorough: bool) -> Check:
    from skill_ledger.domain.skill import Skill

    referenced: dict[str, list[str]] = {}  # digest -> ["skill version", ...]
    for skill_id in ledger.skill_ids():
        for v in ledger.load(Skill, skill_id).installed_versions():
            referenced.setdefault(v.artifact_sha256, []).append(f"{skill_id} {v.version}")
    blobs = ledger.blobs
    directory_problem = private_dir(blobs.root) if os.path.lexists(blobs.root) else None
    if directory_problem:
        return Check("blobs", FAIL, f"{blobs.root} {directory_problem}", f"chmod 700 {q(blobs.root)}")
    problems = [(who, problem) for digest, who in sorted(referenced.items())
                if (problem := _blob_problem(ledger.settings.home, blobs.path_for(digest), digest, thorough))]
    unreferenced = len(set(blobs.digests()) - set(referenced))
    extra = f"; {unreferenced} unreferenced (harmless: left by a crash or a removal)" if unreferenced else ""
    how = "digests recomputed" if thorough else "present, regular, readable, plausible size"
    if not problems:
        return Check("blobs", OK, f"{len(referenced)} stored artifact(s) of the installed versions: {how}{extra}")
    named = "; ".join(f"{who[0]}: {problem}" for who, problem in problems[:MAX_LISTED])
    first = problems[0][0][0].split(" ")
    more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
    code = "artifact_tampered" if any(p.startswith(TAMPERED) for _, p in problems) else "artifact_missing"
    return Check("blobs", FAIL, f"{len(problems)} of {len(referenced)} stored artifact(s) unusable: {named}{more}",
                 f"skills verify {first[0]} --version {first[1]} (records the quarantine); then reinstall it from its "
                 f".palyra-skill, or skills remove {first[0]} --version {first[1]} --reason 'artifact lost'",
                 FILES, code)


TAMPERED = "content does not match the digest recorded at install (tampered)"


def _blob_problem(home: Path, path: Path, digest: str, thorough: bool) -> str | None:
    from skill_ledger.adapters.storage.blobs import NotRegularFile, open_regular
    from skill_ledger.domain.constants import MAX_ARTIFACT_BYTES

    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if not 0 < size <= MAX_ARTIFACT_BYTES:
                return f"size {size} is outside 1..{MAX_ARTIFACT_BYTES} bytes"
            recorded = _verified_size(home, digest)
            if recorded is not None and recorded != size:
                return f"size {size} differs from the {recorded} bytes recorded when it was last verified"
            if thorough:
                h = hashlib.sha256()
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
                if h.hexdigest() != digest:
                    return TAMPERED
    except FileNotFoundError:
        return f"missing ({path})"
    except NotRegularFile as e:
        return f"{path} is {e.kind}, not a regular file"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    return None


def _verified_size(home: Path, digest: str) -> int | None:
    """The file size the runner's sealed record of its last full verification names, if any."""
    from skill_ledger.adapters.runner.cachekey import unseal
    from skill_ledger.adapters.runner.engine import read_private_file
    from skill_ledger.adapters.runner.gate import RECORD_PURPOSE, ArtifactRecord

    raw = read_private_file(home / "cache" / "verified" / f"{digest}.json", 1024 * 1024)
    body = unseal(home, RECORD_PURPOSE, raw) if raw is not None else None
    if body is None:
        return None
    try:
        record = msgspec.json.decode(body, type=ArtifactRecord)
    except msgspec.MsgspecError:
        return None
    return record.stat[2] if record.artifact_sha256 == digest else None


def private_dir(path: Path) -> str | None:
    from skill_ledger.adapters.runner.engine import private_dir_problem

    return private_dir_problem(path)


# --- the runner's cache -----------------------------------------------------------------------


def cache_check(home: Path) -> Check:
    from skill_ledger.adapters.runner import declarations, engine, gate
    from skill_ledger.adapters.runner.cachekey import KEY_NAME, CacheKey, KeyUnavailable

    cache = home / "cache"
    if not os.path.lexists(cache):
        return Check("cache", OK, "no cache yet (made by the first run)")
    problem = private_dir(cache)
    if problem:
        return Check("cache", FAIL, f"{cache} {problem}; the runner will not use it",
                     f"rm -rf {q(cache)} (the runner makes it again, 0700)")
    kinds = {"modules": engine.MAC_PURPOSE, "verified": gate.RECORD_PURPOSE, "tools": declarations.MAC_PURPOSE}
    try:
        key: CacheKey | None = CacheKey.for_home(home, create=False)
    except KeyUnavailable as e:
        if os.path.lexists(home / KEY_NAME):
            return Check("cache", FAIL, f"{home / KEY_NAME} is unusable ({e.reason}): the cache is not used",
                         f"rm {q(home / KEY_NAME)} && rm -rf {q(cache)} (both are made again on the next run)")
        key = None
    counts = {"entries": 0, "unauthenticated": 0, "stale": 0}
    for sub, purpose in kinds.items():
        directory = cache / sub
        if not os.path.lexists(directory):
            continue
        problem = private_dir(directory)
        if problem:
            return Check("cache", FAIL, f"{directory} {problem}; the runner will not use it", f"rm -rf {q(directory)}")
        _count_entries(directory, purpose, key, sub == "modules", counts)
    summary = f"{counts['entries']} entries"
    fix = f"rm -rf {q(cache)} (safe: the runner rebuilds its cache)"
    if counts["unauthenticated"]:
        return Check("cache", WARN, f"{summary}, {counts['unauthenticated']} not written with this home's key "
                     "(copied from elsewhere or injected; never loaded)", fix)
    if counts["stale"]:
        return Check("cache", WARN, f"{summary}, {counts['stale']} stale (another wasmtime version or engine "
                     "settings, or compiled code without its record): they only take space", fix)
    return Check("cache", OK, f"{summary}, all authenticated and current" if counts["entries"] else "empty")


def _count_entries(directory: Path, purpose: str, key: Any, modules: bool, counts: dict[str, int]) -> None:
    from skill_ledger.adapters.runner import engine

    names = os.listdir(directory)
    records = {n[: -len(".json")] for n in names if n.endswith(".json")}
    for stem in sorted(records):
        counts["entries"] += 1
        raw = engine.read_private_file(directory / f"{stem}.json", engine.MAX_META_BYTES)
        body = key.open(purpose, raw) if key is not None and raw is not None else None
        if body is None:
            counts["unauthenticated"] += 1
        elif modules and _stale_module(body):
            counts["stale"] += 1
    if modules:
        counts["stale"] += sum(1 for n in names if n.endswith(".cwasm") and n[: -len(".cwasm")] not in records)


def _stale_module(body: bytes) -> bool:
    from skill_ledger.adapters.runner import engine

    try:
        meta = msgspec.json.decode(body)
    except msgspec.MsgspecError:
        return True
    return not isinstance(meta, dict) or (meta.get("format"), meta.get("settings")) != (
        engine.CACHE_FORMAT, engine.settings_fingerprint())
