"""Benchmark: ``skills package verify`` logic in-process against the floor of reading and hashing.

For each size (default a 1 MiB and a 32 MiB artifact file) one artifact is generated and
signed with the project's builder: three quarters of the entry bytes are incompressible random
module bytes (split into modules of at most 8 MiB), one quarter compressible text assets
(prose-like lines with random words and numbers, several files, ~3x with deflate). The amount
of entry data is scaled so that the ZIP file itself has the requested size (within ~1%). The
artifact is written to a temporary file.

Measured in the same run, interleaved, each repeated ``--repeat`` times (median reported):

* figure: ``adapters.packaging.verify_package(path, TrustStore(), allow_tofu=True, now)``,
  i.e. read the file under the limits + inspect (hostile-input ZIP decode, manifest, SBOM,
  provenance, payload hash, Ed25519 signature, integrity table, compat) + trust evaluation;
* floor: read the file, open it with ``zipfile`` and read every entry, hashing each with
  ``hashlib.sha256``.

Target: figure / floor <= 1.5 for every size.

    .venv/bin/python benchmarks/verify.py [--json] [--repeat N] [--sizes 1,32] [--check]

``--json`` prints one JSON object ``{"figures", "floor", "ratios", ...}``; without it a table.
``--check`` exits with status 1 when a ratio misses the target.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from skill_ledger.adapters.packaging.package import verify_package  # noqa: E402
from skill_ledger.domain.artifact import build_artifact  # noqa: E402
from skill_ledger.domain.trust import TrustDecision, TrustStore  # noqa: E402

MiB = 1024 * 1024
TARGET_RATIO = 1.5
SEED = bytes(range(32))
MAX_PART = 8 * MiB
NOW_MS = 1_700_000_000_000

MANIFEST = """manifest_version = 2
skill_id = "bench.verify"
name = "Verify benchmark"
version = "1.0.0"
publisher = "bench"

[entrypoints]
[[entrypoints.tools]]
id = "bench.echo"
name = "echo"
description = "Echo"
input_schema = { type = "object" }
output_schema = { type = "object" }

[compat]
required_protocol_major = 1
min_palyra_version = "0.1.0"

[operator]
display_name = "Verify benchmark"
"""
SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6","components":[]}'
PROVENANCE = b'{"builder":{"id":"bench"},"subject":[{"name":"modules/m0.wasm"}]}'
WORDS = ("skill ledger artifact manifest signature module asset trust publisher verify inspect "
         "payload integrity compat runtime capability quota policy binding event journal").split()


def _parts(total: int) -> list[int]:
    sizes = []
    while total > 0:
        sizes.append(min(total, MAX_PART))
        total -= sizes[-1]
    return sizes


def _text(rng: random.Random, size: int) -> bytes:
    """Compressible prose: a few hundred distinct lines repeated with variations (~4-6x with deflate)."""
    out = bytearray()
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) for _ in range(256)]
    n = 0
    while len(out) < size:
        out += f"{n:08d} {rng.choice(lines)} {rng.getrandbits(24):06x}\n".encode()
        n += 1
    return bytes(out[:size])


def make_inputs(size: int, seed: int = 7) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    rng = random.Random(seed)
    random_part = size * 3 // 4
    modules = [(f"m{i}.wasm", b"\0asm\x01\0\0\0" + rng.randbytes(max(0, n - 8))) for i, n in enumerate(_parts(random_part))]
    text_total = size - random_part
    assets = [(f"docs/t{i}.txt", _text(rng, n)) for i, n in enumerate(_parts(text_total))]
    # a few small assets too, as real skills have
    assets += [(f"templates/p{i}.txt", _text(rng, 2048)) for i in range(4)]
    return modules, assets


def build(size: int) -> bytes:
    modules, assets = make_inputs(size)
    return build_artifact(MANIFEST, modules, assets, SBOM, PROVENANCE, SEED, NOW_MS).artifact


def build_sized(artifact_size: int) -> bytes:
    """An artifact whose ZIP file is ``artifact_size`` bytes (+-1%): scale the entry data once."""
    guess = int(artifact_size / 0.84)
    data = build(guess)
    scaled = min(int(guess * artifact_size / len(data)), 60 * MiB)
    return build(scaled) if abs(len(data) - artifact_size) > artifact_size // 100 else data


def floor_once(path: str) -> float:
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        data = f.read()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            hashlib.sha256(z.read(info)).hexdigest()
    return time.perf_counter() - t0


def verify_once(path: str) -> float:
    t0 = time.perf_counter()
    v = verify_package(path, TrustStore(), True, NOW_MS)
    elapsed = time.perf_counter() - t0
    assert v.report.trust_decision is TrustDecision.TOFU_NEWLY_PINNED
    return elapsed


def measure(size_mib: float, repeat: int, workdir: str) -> dict:
    size = int(size_mib * MiB)
    t0 = time.perf_counter()
    data = build_sized(size)
    build_s = time.perf_counter() - t0
    path = os.path.join(workdir, f"bench-{size_mib:g}MiB.palyra-skill")
    with open(path, "wb") as f:
        f.write(data)
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    # warm-up (page cache, imports, first-call costs), not reported
    floor_once(path)
    verify_once(path)
    floors, figures = [], []
    for _ in range(repeat):  # interleaved so drift affects both sides alike
        floors.append(floor_once(path))
        figures.append(verify_once(path))
    return {
        "artifact_bytes": len(data),
        "entry_bytes": sum(i.file_size for i in infos),
        "entries": len(infos),
        "build_s": round(build_s, 4),
        "figure_runs_s": [round(x, 5) for x in figures],
        "floor_runs_s": [round(x, 5) for x in floors],
        "figure_s": statistics.median(figures),
        "floor_s": statistics.median(floors),
    }


def run(sizes: list[float], repeat: int) -> dict:
    results = {}
    with tempfile.TemporaryDirectory(prefix="skills-bench-verify-") as workdir:
        for s in sizes:
            results[f"{s:g}MiB"] = measure(s, repeat, workdir)
    figures = {k: {"verify_s": round(r["figure_s"], 5), "runs_s": r["figure_runs_s"],
                   "artifact_bytes": r["artifact_bytes"], "entry_bytes": r["entry_bytes"], "entries": r["entries"],
                   "throughput_mib_s": round(r["entry_bytes"] / MiB / r["figure_s"], 1)}
               for k, r in results.items()}
    floor = {k: {"read_and_hash_s": round(r["floor_s"], 5), "runs_s": r["floor_runs_s"],
                 "throughput_mib_s": round(r["entry_bytes"] / MiB / r["floor_s"], 1)}
             for k, r in results.items()}
    ratios = {k: round(r["figure_s"] / r["floor_s"], 3) for k, r in results.items()}
    return {
        "benchmark": "verify",
        "figures": figures,
        "floor": floor,
        "ratios": ratios,
        "target": {"max_ratio": TARGET_RATIO},
        "met": {k: v <= TARGET_RATIO for k, v in ratios.items()},
        "repeat": repeat,
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
    }


def table(r: dict) -> str:
    head = ("size", "artifact", "entries", "verify (median)", "floor (median)", "ratio", "target")
    rows = [head]
    for k in r["figures"]:
        f, fl, ratio = r["figures"][k], r["floor"][k], r["ratios"][k]
        rows.append((
            k,
            f"{f['artifact_bytes'] / MiB:.2f} MiB",
            str(f["entries"]),
            f"{f['verify_s'] * 1000:.1f} ms",
            f"{fl['read_and_hash_s'] * 1000:.1f} ms",
            f"{ratio:.2f}x",
            f"<= {TARGET_RATIO} {'OK' if r['met'][k] else 'MISSED'}",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"(median of {r['repeat']} interleaved runs each; verify = read + inspect + trust, "
                 "floor = read + zipfile + sha256 of every entry)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object {figures, floor, ratios, ...}")
    ap.add_argument("--repeat", type=int, default=7, help="measurements per size and side (default 7)")
    ap.add_argument("--sizes", default="1,32", help="comma-separated artifact file sizes in MiB (default 1,32)")
    ap.add_argument("--check", action="store_true", help=f"exit 1 if a ratio is above {TARGET_RATIO}")
    args = ap.parse_args(argv)
    try:
        sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        ap.error("--sizes must be numbers in MiB, e.g. 1,32")
    if not sizes or any(s <= 0 or s > 48 for s in sizes):
        ap.error("--sizes must be in (0, 48] MiB (the entry data stays under the 64 MiB limit)")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    r = run(sizes, args.repeat)
    print(json.dumps(r) if args.json else table(r))
    return 1 if args.check and not all(r["met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
