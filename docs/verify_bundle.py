#!/usr/bin/env python3
"""Verify a skill-ledger evidence bundle with the standard library and `cryptography` only.

    python3 verify_bundle.py BUNDLE --public-key FILE

FILE holds the journal's public key: its C2SP verifier key (`name+keyid+base64`), a PEM
public key, or the 32 bytes as hex or base64. The format is docs/transparency-log.md, section 7;
this script is an independent reading of it (the ledger's own check is `skills journal verify
--bundle`). Exit 0: every event is the one the signed checkpoint covers; exit 1: problems,
one per line, by position.

Event hashes are SHA-256 over the event without "hash", as JSON with sorted keys and no
spaces (UTF-8, no escaping beyond what JSON requires). Journal events carry no floating-point
numbers; a bundle with one is refused rather than hashed differently.
"""

import argparse
import base64
import hashlib
import json
import sys
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

GENESIS = "0" * 64
# Hash-chain format 2 events name their stream's id: uuid5 of this namespace and the stream name.
STREAM_NAMESPACE = uuid.UUID("6f1d7f7e-2b55-5a8e-9c33-0f3a5d6c2b11")


def sha256(data):
    return hashlib.sha256(data).digest()


def node(left, right):
    return sha256(b"\x01" + left + right)


# --- keys and signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint) ---------------------


def read_key(data):
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        return None, load_pem_public_key(text).public_bytes_raw()
    s = text.decode()
    if s.count("+") >= 2 and not s.endswith("="):
        name, key_id, material = s.split("+", 2)
        raw = base64.b64decode(material, validate=True)
        assert raw[0] == 1 and len(raw) == 33, "an Ed25519 verifier key"
        assert sha256(name.encode() + b"\n" + raw)[:4].hex() == key_id, "verifier key ID"
        return name, raw[1:]
    raw = bytes.fromhex(s) if len(s) == 64 else base64.b64decode(s, validate=True)
    assert len(raw) == 32, "an Ed25519 public key is 32 bytes"
    return None, raw


def open_checkpoint(note, name, key):
    """Check the note's signature by (name, key); return (origin, size, root)."""
    text, _, signatures = note.rpartition("\n\n")
    text += "\n"
    key_id = sha256(name.encode() + b"\n\x01" + key)[:4]
    good = False
    for line in signatures.splitlines():
        assert line.startswith("\u2014 "), "a signature line"
        sig_name, _, blob64 = line[2:].partition(" ")
        blob = base64.b64decode(blob64, validate=True)
        if sig_name == name and blob[:4] == key_id:  # signatures by other keys (witnesses) are ignored
            Ed25519PublicKey.from_public_bytes(key).verify(blob[4:], text.encode())  # raises if bad
            good = True
    if not good:
        raise ValueError(f"no signature by {name}'s key")
    origin, size, root = text.splitlines()[:3]
    assert origin == name, "the checkpoint's origin is the key's name"
    return origin, int(size), base64.b64decode(root, validate=True)


# --- RFC 9162 trees ------------------------------------------------------------------------------


def absorb(hashes, size, level, h):
    """Append a perfect subtree of 2**level leaves to a frontier (its hashes, biggest first)."""
    n = size >> level
    while n & 1:
        h = node(hashes.pop(), h)
        n >>= 1
    hashes.append(h)
    return size + (1 << level)


def root_of(hashes):
    if not hashes:
        return sha256(b"")
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node(left, h)
    return h


def verify_inclusion(leaf, m, n, proof, root):
    if m >= n:
        return False
    fn, sn, r = m, n - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(m, n, old_root, new_root, proof):
    if not 0 < m < n or not proof:
        return 0 < m == n and not proof and old_root == new_root
    if m & (m - 1) == 0:
        proof = [old_root, *proof]
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


# --- the bundle ------------------------------------------------------------------------------------


def no_floats(value):
    if isinstance(value, float):
        raise ValueError("a floating-point number: use skills journal verify --bundle")
    for child in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
        no_floats(child)


def event_hash(event):
    body = {k: v for k, v in event.items() if k != "hash"}
    no_floats(body)
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def verify(lines, name, key):
    problems = []
    header = json.loads(next(lines))
    assert header["format"] == "skill-ledger-bundle/1", "a skill-ledger bundle"
    origin = name or header["origin"]
    _, size, root = open_checkpoint(header["checkpoint"], origin, key)
    first, last = header["first_position"], header["last_position"]
    assert 1 <= first <= last <= size, "the checkpoint covers the range"
    checkpoints = {size: root}
    for entry in header["checkpoints"]:  # one log: every other checkpoint is consistent with this one
        _, s, r = open_checkpoint(entry["note"], origin, key)
        (m, old), (n, new) = sorted([(s, r), (size, root)])
        if not verify_consistency(m, n, old, new, [bytes.fromhex(h) for h in entry["consistency"]]):
            problems.append((0, f"the checkpoint of {s} events is not consistent with the bundle's"))
        checkpoints[s] = r
    linked = set()
    for link in header["links"]:  # earlier events the range's streams continue from
        leaf = sha256(b"\x00" + bytes.fromhex(link["hash"]))
        proof = [bytes.fromhex(h) for h in link["proof"]]
        if link["position"] < first and verify_inclusion(leaf, link["position"] - 1, size, proof, root):
            linked.add(link["hash"])
        else:
            problems.append((link["position"], "a linked earlier event is not in the checkpoint"))
    hashes, n = [bytes.fromhex(h) for h in header["left"]], first - 1
    roots = {n: root_of(hashes)}
    heads, expected = {}, first
    for line in lines:
        event = json.loads(line)
        p = event["position"]
        if p != expected:
            problems.append((expected, f"missing from the bundle: positions {expected}..{p - 1}"))
            return problems
        expected = p + 1
        digest = event_hash(event)
        if digest != event["hash"]:
            problems.append((p, "the event does not match its hash (edited)"))
        stream, version, prev = event["stream"], event["stream_version"], event["prev_hash"]
        if "originator_id" in event and event["originator_id"] != str(uuid.uuid5(STREAM_NAMESPACE, stream)):
            problems.append((p, "the event is recorded under another stream's id"))
        if stream in heads:
            if (version, prev) != (heads[stream][0] + 1, heads[stream][1]):
                problems.append((p, "the stream's chain is broken"))
        elif version == 1 and prev != GENESIS:
            problems.append((p, "the first event of a stream has a previous hash"))
        elif version != 1 and prev not in linked:
            problems.append((p, "the stream's previous event is neither in the bundle nor linked"))
        heads[stream] = (version, digest)
        n = absorb(hashes, n, 0, sha256(b"\x00" + bytes.fromhex(digest)))
        if n in checkpoints:
            roots[n] = root_of(hashes)
        note = event["data"].get("note") if event["kind"] == "journal.checkpoint" else None
        if note:  # a checkpoint inside the range: it must describe the events before it
            _, s, r = open_checkpoint(note, origin, key)
            if roots.get(s, checkpoints.get(s)) != r:
                problems.append((p, f"the checkpoint of {s} events does not match the events"))
    if expected != last + 1:
        problems.append((expected, f"the bundle ends at position {expected - 1}, its header says {last}"))
        return problems
    for piece in header["right"]:
        n = absorb(hashes, n, piece["level"], bytes.fromhex(piece["hash"]))
    if (n, root_of(hashes)) != (size, root):
        problems.append((last, "the events do not rebuild the signed root: one was edited, removed or added"))
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--public-key", required=True)
    args = parser.parse_args()
    with open(args.public_key, "rb") as f:
        name, key = read_key(f.read())
    with open(args.bundle, "rb") as f:
        try:
            problems = verify(iter(f), name, key)
        except Exception as e:  # a bad signature, a malformed line: the bundle is not verified
            problems = [(0, f"{type(e).__name__}: {e}")]
    for position, message in sorted(problems):
        print(f"position {position}: {message}")
    if not problems:
        print("bundle verified")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
