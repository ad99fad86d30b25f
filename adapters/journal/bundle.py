"""Evidence bundles: a range of the journal that an auditor verifies with no home and no
journal, only the journal's public key (``skills journal export`` / ``verify --bundle``).

A bundle is one NDJSON file (``docs/transparency-log.md``, section 7): a header line, then the
events of positions ``first..last`` in the exported shape, exactly as ``skills journal --json`` prints
them. The header carries the signed checkpoint the range is verified against (the first one
covering ``last``, of ``N`` events) and what, with the events, rebuilds its tree:

* ``left``: the frontier of the ``first - 1`` events before the range (one hash per set bit);
* ``right``: the perfect subtrees covering the events ``last + 1 .. N`` after it;
* ``links``: for each stream whose first event in the range follows an earlier event, that
  earlier event's position and hash with its inclusion proof in the checkpoint;
* ``checkpoints``: the journal's other checkpoints, each with its consistency proof with the
  bundle's checkpoint (so the bundle shows one log, never two versions of it).

Verifying recomputes each event's hash (``domain.codec.event_hash``, the journal's one
definition), checks positions, stream versions and chains, rebuilds the root and compares it
with the signed checkpoint. A gap, an edited or removed event, a cut-off end and a checkpoint
re-signed with another key are each named.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from skill_ledger.domain.codec import GENESIS_HASH, event_hash
from skill_ledger.domain.errors import NoteError, ProofError
from skill_ledger.domain.events import stream_uuid
from skill_ledger.domain.merkle import Frontier, event_leaf_hash, node_hash, verify_consistency, verify_inclusion
from skill_ledger.domain.notes import Checkpoint, NoteVerifier, open_checkpoint, parse_checkpoint, parse_note

from .pubkey import PublicKey

BUNDLE_FORMAT = "skill-ledger-bundle/1"
MAX_LINE = 64 * 1024 * 1024  # one event line (manifests are big, but not that big)


def cover(start: int, end: int) -> list[tuple[int, int]]:
    """The aligned perfect subtrees (level, index) that cover leaves ``[start, end)``, in order."""
    out = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else 63
        while (1 << level) > end - start:
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def absorb(hashes: list[bytes], size: int, level: int, h: bytes) -> int:
    """Append the perfect subtree ``h`` of ``2**level`` leaves to the frontier ``hashes`` of a
    tree of ``size`` leaves (``size`` a multiple of ``2**level``); returns the new size."""
    n = size >> level
    while n & 1:
        h = node_hash(hashes.pop(), h)
        n >>= 1
    hashes.append(h)
    return size + (1 << level)


class Problem(msgspec.Struct, frozen=True):
    position: int
    code: str
    message: str


class BundleReport(msgspec.Struct, frozen=True):
    ok: bool
    trusted: bool  # verified against a key the auditor supplied, not the bundle's own
    origin: str
    first_position: int
    last_position: int
    events: int
    tree_size: int
    root_hash: str
    checkpoints: int
    first_bad_position: int | None
    problems: list[Problem]
    notes: list[str]


class _Header(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    format: str
    origin: str
    verifier_key: str
    first_position: int
    last_position: int
    checkpoint: str
    left: list[str]
    right: list[dict[str, Any]]
    links: list[dict[str, Any]]
    checkpoints: list[dict[str, Any]]


def _hex32(value: Any, what: str) -> bytes:
    if isinstance(value, str) and len(value) == 64 and value == value.lower():
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    raise ProofError("document_malformed", f"{what} is not 64 lowercase hex digits")


def read_lines(lines: Iterable[bytes]) -> Iterator[Any]:
    decoder = msgspec.json.Decoder()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield decoder.decode(line)
        except msgspec.DecodeError as e:
            raise ProofError("document_malformed", f"line {n} of the bundle is not JSON: {e}") from None


def verify_bundle(lines: Iterable[bytes], key: PublicKey | None) -> BundleReport:
    """Verify a bundle's lines. ``key``: the journal's public key as the auditor knows it;
    without one the bundle is checked against its own key and reported as not trusted."""
    docs = read_lines(lines)
    try:
        header = msgspec.convert(next(docs), _Header)
    except (StopIteration, msgspec.ValidationError) as e:
        raise ProofError("document_malformed", f"the bundle has no valid header line: {e}") from None
    if header.format != BUNDLE_FORMAT:
        raise ProofError("document_malformed", f"the bundle's format is not {BUNDLE_FORMAT!r}")
    own = PublicKey(NoteVerifier.from_vkey(header.verifier_key).public_key, name=header.origin, source="bundle")
    check = _Check(header, key or own)
    if key is None:
        check.problem(0, "key_not_supplied", "no --public-key: the bundle was checked against its own key, which "
                                             "proves nothing about who wrote it")
    elif key.raw != own.raw:
        check.notes.append("the bundle names another key than the one supplied; its signatures were checked against "
                           "the supplied key")
    check.run(docs)
    return check.report(trusted=key is not None)


class _Check:
    def __init__(self, header: _Header, key: PublicKey) -> None:
        self.h = header
        self.key = key
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.count = 0
        self.root = b""

    def problem(self, position: int, code: str, message: str) -> None:
        if len(self.problems) < 100:
            self.problems.append(Problem(position, code, message))

    def _open(self, note: str, what: str) -> Checkpoint | None:
        try:
            return open_checkpoint(note, [self.key.verifier(self.h.origin)], origin=self.h.origin)[0]
        except NoteError as e:
            code = "checkpoint_untrusted_key" if e.reason == "no_known_signature" else "checkpoint_signature"
            self.problem(0, code, f"{what}: {e.message}")
            return None

    def run(self, docs: Iterator[Any]) -> None:
        h = self.h
        first, last = h.first_position, h.last_position
        top = self._open(h.checkpoint, "the bundle's checkpoint")
        if top is None:
            return
        if not 1 <= first <= last + 1 or top.size < last:
            self.problem(0, "document_malformed", f"the range {first}..{last} is not covered by the checkpoint of "
                                                  f"{top.size} events")
            return
        left = [_hex32(x, "a left hash") for x in h.left]
        frontier = Frontier(first - 1, left)
        others = self._other_checkpoints(top)
        sizes = {s for s in others if s >= first - 1}
        roots: dict[int, bytes] = {first - 1: frontier.root()} if first - 1 in sizes else {}
        links = set(self._links(top).values())
        heads: dict[str, tuple[int, str]] = {}
        expected = first
        for doc in docs:
            if not isinstance(doc, dict) or not isinstance(doc.get("position"), int):
                self.problem(expected, "document_malformed", "a line is not an exported event")
                continue
            position = doc["position"]
            if position != expected:
                gap = f"{expected}..{position - 1}" if position > expected + 1 else str(expected)
                self.problem(expected, "missing_event", f"position(s) {gap} are missing from the bundle"
                             if position > expected else f"position {position} repeats or goes backwards")
                if position < expected:
                    continue
            expected = position + 1
            self.count += 1
            digest = self._event(doc, heads, links)
            if frontier.size + 1 != position:  # keep leaves aligned with positions across a gap
                self.problem(position, "missing_event", "the tree cannot be rebuilt across the gap")
                return
            frontier.extend_events([digest], collect_nodes=False)
            if frontier.size in sizes:
                roots[frontier.size] = frontier.root()
            if doc.get("kind") == "journal.checkpoint":
                self._inline_checkpoint(doc, roots, others)
        if expected != last + 1:
            self.problem(expected, "truncated", f"the bundle ends at position {expected - 1}, its header says "
                                                f"{last}: events were cut off its end")
            return
        self._close(frontier, top)

    def _event(self, doc: dict[str, Any], heads: dict[str, tuple[int, str]], links: set[str]) -> bytes:
        position = doc["position"]
        claimed = doc.get("hash")
        try:
            actual = event_hash({k: v for k, v in doc.items() if k != "hash"})
        except (TypeError, ValueError, msgspec.EncodeError):
            actual = ""
        if actual != claimed:
            self.problem(position, "hash_mismatch", "the event does not match its hash (edited)")
        stream, version, prev = doc.get("stream"), doc.get("stream_version"), doc.get("prev_hash")
        if "originator_id" in doc and isinstance(stream, str) and doc["originator_id"] != str(stream_uuid(stream)):
            self.problem(position, "originator_mismatch", f"recorded under originator id {doc['originator_id']}, "
                                                          f"which is not the id of stream {stream!r}")
        known = heads.get(stream) if isinstance(stream, str) else None
        if known is not None:
            if version != known[0] + 1:
                self.problem(position, "stream_version_gap", f"stream version {version} follows {known[0]}")
            if prev != known[1]:
                self.problem(position, "chain_broken", "prev_hash does not match the stream's previous hash")
        elif version == 1:
            if prev != GENESIS_HASH:
                self.problem(position, "chain_broken", "the first event of a stream has a previous hash")
        elif prev not in links:
            self.problem(position, "chain_broken", "the stream's previous event is neither in the bundle nor linked")
        if isinstance(stream, str) and isinstance(version, int):
            heads[stream] = (version, actual or str(claimed))
        try:
            return bytes.fromhex(actual or str(claimed))
        except ValueError:
            return bytes(32)

    def _links(self, top: Checkpoint) -> dict[int, str]:
        """Earlier events the range's streams link to, each proven in the checkpoint."""
        out = {}
        for link in self.h.links:
            position = link.get("position")
            digest = _hex32(link.get("hash"), "a link hash")
            proof = [_hex32(x, "a proof hash") for x in link.get("proof") or []]
            if not isinstance(position, int) or not 1 <= position < self.h.first_position:
                self.problem(0, "document_malformed", "a link is not to an event before the range")
                continue
            try:
                verify_inclusion(event_leaf_hash(digest), position - 1, top.size, proof, top.root_hash)
            except ProofError as e:
                self.problem(position, "chain_broken", f"the linked event at {position} is not in the checkpoint "
                                                       f"({e.message})")
                continue
            out[position] = digest.hex()
        return out

    def _other_checkpoints(self, top: Checkpoint) -> dict[int, bytes]:
        """The journal's other checkpoints, each consistent with the bundle's: {size: root}."""
        out = {top.size: top.root_hash}
        for entry in self.h.checkpoints:
            note = entry.get("note")
            cp = self._open(note, "a listed checkpoint") if isinstance(note, str) else None
            if cp is None:
                continue
            proof = [_hex32(x, "a proof hash") for x in entry.get("consistency") or []]
            old, new = (cp, top) if cp.size <= top.size else (top, cp)
            try:
                verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
            except ProofError as e:
                self.problem(0, "checkpoint_mismatch", f"the checkpoint of {cp.size} events is not consistent with "
                                                       f"the bundle's ({e.message}): two versions of the journal")
                continue
            out[cp.size] = cp.root_hash
        return out

    def _inline_checkpoint(self, doc: dict[str, Any], roots: dict[int, bytes], others: dict[int, bytes]) -> None:
        data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
        position = doc["position"]
        note = data.get("note")
        if not note:
            key_hex = data.get("public_key_hex")
            if key_hex != self.key.hex:
                self.problem(position, "checkpoint_untrusted_key", "a version-1 checkpoint signed by another key")
            else:
                self.notes.append(f"the version-1 checkpoint at position {position} covers events before the bundle; "
                                  "its root can only be checked against the whole journal")
            return
        cp = self._open(note, f"the checkpoint at position {position}")
        if cp is None:
            return
        expected = roots.get(cp.size, others.get(cp.size))
        if expected is None:
            self.problem(position, "checkpoint_mismatch", f"the checkpoint of {cp.size} events cannot be checked: "
                                                          "the bundle does not list it")
        elif expected != cp.root_hash:
            self.problem(position, "checkpoint_mismatch", f"the checkpoint of {cp.size} events does not match the "
                                                          "events")

    def _close(self, frontier: Frontier, top: Checkpoint) -> None:
        hashes, size = list(frontier.hashes), frontier.size
        for piece in self.h.right:
            level, digest = piece.get("level"), _hex32(piece.get("hash"), "a right hash")
            if not isinstance(level, int) or not 0 <= level < 64 or size % (1 << level):
                self.problem(0, "document_malformed", "a right subtree does not fit the tree")
                return
            size = absorb(hashes, size, level, digest)
        self.root = Frontier(size, hashes).root() if size.bit_count() == len(hashes) else b""
        if size != top.size or self.root != top.root_hash:
            self.problem(self.h.last_position, "root_mismatch",
                         f"the events with the header's material do not rebuild the checkpoint's root over {top.size} "
                         "events: an event was edited, removed or added")

    def report(self, *, trusted: bool) -> BundleReport:
        problems = sorted(self.problems, key=lambda p: p.position)
        positions = [p.position for p in problems if p.position > 0]
        size = 0
        try:
            size = parse_checkpoint(parse_note(self.h.checkpoint).text).size
        except NoteError:
            pass
        return BundleReport(
            ok=not problems, trusted=trusted and not problems, origin=self.h.origin,
            first_position=self.h.first_position, last_position=self.h.last_position, events=self.count,
            tree_size=size, root_hash=self.root.hex(), checkpoints=1 + len(self.h.checkpoints),
            first_bad_position=min(positions) if positions else (0 if problems else None), problems=problems,
            notes=self.notes)
