"""``skills journal export --output FILE``: write an evidence bundle (``adapters.journal.bundle``
for the format) of positions ``since + 1 .. until`` against the first checkpoint covering
``until`` (by default the whole journal up to its newest checkpoint).

The events are written to a temporary file beside the output while the links are collected,
then the header and the events are put together and renamed into place, so a reader never
sees half a bundle.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from skill_ledger.domain.errors import InvalidInput, JournalUnverifiable, UsageError
from skill_ledger.domain.notes import NoteVerifier

from .bundle import BUNDLE_FORMAT, cover
from .proofs import RecordedCheckpoint, _pick, recorded_checkpoints
from .pubkey import PublicKey
from .sqlite import LedgerApplication, export_row, iter_rows
from .tree import JournalTree

_encoder = msgspec.json.Encoder()


def export_bundle(app: LedgerApplication, output: Path, *, since: int | None, until: int | None,
                  key: PublicKey | None) -> dict[str, Any]:
    if key is None:
        raise JournalUnverifiable("the journal's checkpoint key is missing from the home: a bundle needs its public "
                                  "key and a checkpoint it signed")
    tree = JournalTree(app)
    try:
        checkpoints = recorded_checkpoints(tree)
        newest = _pick(checkpoints, None, key)
        last = newest.size if until is None else until
        first = (since or 0) + 1
        if last > newest.size:
            raise UsageError(f"--until {last} is after the newest checkpoint ({newest.size} events): record one with "
                             "skills journal checkpoint first", {"until": last, "checkpoint": newest.size})
        if first > last:
            raise InvalidInput(f"the range {first}..{last} is empty", {"since": since, "until": until})
        top = _pick(checkpoints, min(c.size for c in checkpoints if c.size >= last), key)
        tree.extend(newest.size)
        return _write(app, tree, output, first, last, top, checkpoints, key)
    finally:
        tree.close()


def _write(app: LedgerApplication, tree: JournalTree, output: Path, first: int, last: int, top: RecordedCheckpoint,
           checkpoints: list[RecordedCheckpoint], key: PublicKey) -> dict[str, Any]:
    output = output.absolute()
    fd, events_name = tempfile.mkstemp(prefix=".bundle-events-", dir=output.parent)
    final_name = events_name + ".bundle"
    try:
        firsts: dict[str, tuple[int, int]] = {}  # originator -> (position, stream version) of its first event
        count = 0
        with os.fdopen(fd, "wb") as out:
            for row in iter_rows(app, after=first - 1, until=last):
                firsts.setdefault(row.originator_id, (row.position, row.originator_version))
                out.write(_encoder.encode(export_row(row)) + b"\n")
                count += 1
        header = _header(tree, first, last, top, checkpoints, firsts, key)
        with open(final_name, "wb") as out, open(events_name, "rb") as events:
            out.write(_encoder.encode(header) + b"\n")
            while chunk := events.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(final_name, 0o644)
        os.replace(final_name, output)
    finally:
        for name in (events_name, final_name):
            Path(name).unlink(missing_ok=True)
    return {"output": str(output), "first_position": first, "last_position": last, "events": count,
            "tree_size": top.size, "origin": top.origin, "links": len(header["links"]),
            "checkpoints": 1 + len(header["checkpoints"])}


def _header(tree: JournalTree, first: int, last: int, top: RecordedCheckpoint, checkpoints: list[RecordedCheckpoint],
            firsts: dict[str, tuple[int, int]], key: PublicKey) -> dict[str, Any]:
    left = tree.get_nodes(cover(0, first - 1)) if first > 1 else []
    right_keys = cover(last, top.size)
    right = [{"level": level, "hash": h.hex()} for (level, _), h in zip(right_keys, tree.get_nodes(right_keys))]
    links = []
    for originator, (_position, version) in sorted(firsts.items(), key=lambda kv: kv[1][0]):
        if version <= 1:
            continue
        entry = tree.chain_entry(originator, version - 1)
        if entry is None or entry[0] >= first:
            continue  # the bundle's verification names the broken chain
        at, digest = entry
        links.append({"position": at, "hash": digest,
                      "proof": [h.hex() for h in tree.inclusion_proof(at - 1, top.size)]})
    others = []
    for cp in checkpoints:
        if cp.size == top.size and cp.root == top.root:
            continue
        old, new = sorted((cp.size, top.size))
        proof = tree.consistency_proof(old, new) if old else []
        others.append({"tree_size": cp.size, "note": cp.note, "consistency": [h.hex() for h in proof]})
    return {"format": BUNDLE_FORMAT, "origin": top.origin, "verifier_key": NoteVerifier(top.origin, key.raw).vkey,
            "public_key_hex": key.hex, "first_position": first, "last_position": last, "events": last - first + 1,
            "checkpoint": top.note, "tree_size": top.size, "left": [h.hex() for h in left], "right": right,
            "links": links, "checkpoints": others,
            "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
