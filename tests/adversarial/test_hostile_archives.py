"""Hostile archives against ``decode_archive`` (artifact-format.md §12, steps D1-D6).

Every archive is forged here, byte by byte, with ``zipforge``; nothing is
downloaded. Each case asserts the exact error class and its key data, and a
metered ``zlib`` checks that no case inflates more than the caps allow: a bomb
is stopped after ``entry_limit + 1`` bytes of output, whatever it declares.
"""

from __future__ import annotations

import functools
import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skill_ledger.domain import ziparchive
from skill_ledger.domain.constants import MAX_ARTIFACT_BYTES, MAX_ENTRIES, MAX_ENTRY_BYTES, MAX_TOTAL_UNCOMPRESSED_BYTES
from skill_ledger.domain.errors import (
    ArtifactEntryTooLarge,
    ArtifactTooLarge,
    ArtifactTooManyEntries,
    DuplicateArtifactEntry,
    InvalidArtifactPath,
    IoError,
    SkillLedgerError,
    ZipError,
)
from skill_ledger.domain.ziparchive import decode_archive, encode_archive

try:
    from tests.adversarial import zipforge as zf
except ImportError:  # tests/ is not a package: pytest puts this directory on sys.path instead
    import zipforge as zf  # type: ignore[no-redef]

Entry = zf.Entry
Layout = zf.Layout
MiB = 1 << 20
UTF8 = 0x0800
TOTAL = MAX_TOTAL_UNCOMPRESSED_BYTES


# --- building blocks ---------------------------------------------------------------------


def valid_entries() -> list[zf.Entry]:
    return [
        Entry("skill.toml", b"name = 'demo'\n" * 20),
        Entry("modules/a.wasm", b"\0asm\x01\0\0\0" + bytes(range(256))),
        Entry("assets/readme.txt", b"hello hostile world\n" * 50),
    ]


def valid_archive() -> bytes:
    return zf.forge(valid_entries())


def one(name: str | bytes, data: bytes = b"payload", **fields: Any) -> Callable[[], bytes]:
    return lambda: zf.forge([Entry(name, data, **fields)])


def many(*entries: zf.Entry, layout: zf.Layout | None = None, **eocd: int) -> Callable[[], bytes]:
    return lambda: zf.forge(list(entries), layout, **eocd)


@functools.lru_cache(maxsize=None)
def zeros(size: int) -> bytes:
    """Raw deflate of ``size`` zero bytes (a gigabyte costs about a megabyte)."""
    return zf.zeros_deflate(size)


@functools.lru_cache(maxsize=None)
def zeros_crc(size: int) -> int:
    return zlib.crc32(bytes(size))


def zero_entry(name: str, size: int, declared: int | None = None) -> zf.Entry:
    """An entry of ``size`` zero bytes that declares ``declared`` (default: the truth)."""
    return Entry(name, b"", payload=zeros(size), crc=zeros_crc(size) if size <= 64 * MiB else 0,
                 usize=size if declared is None else declared)


def patched(build: Callable[[], bytes], offset_of: Callable[[bytes], int], fmt: str, value: int) -> Callable[[], bytes]:
    """Overwrite one little-endian field of an archive produced by ``build``."""

    def go() -> bytes:
        data = bytearray(build())
        struct.pack_into(fmt, data, offset_of(bytes(data)), value)
        return bytes(data)

    return go


def cd_offset(data: bytes) -> int:
    return struct.unpack_from("<I", data, len(data) - 6)[0]


def nth_central_record(data: bytes, n: int) -> int:
    pos = cd_offset(data)
    for _ in range(n):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        pos += 46 + name_len + extra_len + comment_len
    return pos


def with_zip64_records(locator_only: bool) -> Callable[[], bytes]:
    """A ZIP64 EOCD record and/or locator between the central directory and the EOCD."""

    def go() -> bytes:
        entries = valid_entries()
        plain = zf.forge(entries)
        cd_start = cd_offset(plain)
        cd_len = len(plain) - 22 - cd_start
        record = zf.zip64_eocd_record(entries=len(entries), cd_size=cd_len, cd_offset=cd_start)
        locator = zf.zip64_locator(record_offset=cd_start + cd_len)
        between = locator if locator_only else record + locator
        # cd_size covers the ZIP64 records too, so only the ZIP64 rule can fail.
        return zf.forge(entries, Layout(between=between), cd_size=cd_len + len(between))

    return go


def nested_bomb_layers(depth: int) -> bytes:
    """A zip whose only entry is a zip whose only entry is ... a gigabyte deflate bomb."""
    data = zf.forge([zero_entry("bomb.bin", 1 << 30, declared=1000)])
    for level in range(depth):
        data = zf.forge([Entry(f"layer{level}.zip", data)])
    return data


# --- the cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[], bytes]
    error: type[SkillLedgerError]
    details: dict[str, Any] = field(default_factory=dict)
    message: str | None = None  # a substring the message must contain, where the rule matters
    max_inflated: int = TOTAL + 1  # bytes of deflate output the decoder may produce before failing


def iap(raw: str | bytes, **fields: Any) -> Case:
    shown = raw if isinstance(raw, str) else raw.decode("cp437")
    return Case(f"path-{shown!r}", one(raw, **fields), InvalidArtifactPath, {"raw": shown})


PATH_CASES = [
    iap("../x"),
    iap("a/../b"),
    iap("..\\x"),
    iap("a\\..\\b"),
    iap("/etc/x"),
    iap("\\etc\\x"),
    iap("C:/x"),
    iap("c:x"),
    iap("\\\\server\\share\\x"),
    iap("//server/share/x"),
    iap("a\x00b"),
    iap("a//b"),
    iap("./a"),
    iap("a/./b"),
    iap("a/."),
    iap("a/.."),
    iap(""),
    iap("   "),
    iap(" ../x"),  # trimmed first, then rejected; the raw name is reported untrimmed
    iap("x.txt:secret"),  # NTFS alternate data stream
    iap("file:///etc/passwd"),
    iap("\u3000/x", flags=UTF8),  # ideographic space is WS: trims to "/x"
]

CASES: list[Case] = [
    # D1 ----------------------------------------------------------------------------------
    Case("d1-file-over-64MiB", lambda: b"\0" * (MAX_ARTIFACT_BYTES + 1), ArtifactTooLarge,
         {"actual": MAX_ARTIFACT_BYTES + 1, "limit": MAX_ARTIFACT_BYTES}),
    Case("d1-valid-archive-padded-over-64MiB", lambda: valid_archive() + bytes(MAX_ARTIFACT_BYTES),
         ArtifactTooLarge, {"limit": MAX_ARTIFACT_BYTES}),
    # D2: not a zip at all ----------------------------------------------------------------
    Case("d2-empty-input", lambda: b"", ZipError),
    Case("d2-shorter-than-eocd", lambda: b"PK\x05\x06" + bytes(10), ZipError),
    Case("d2-random-garbage", lambda: random.Random(1234).randbytes(4096), ZipError),
    Case("d2-truncated-half", lambda: valid_archive()[: len(valid_archive()) // 2], ZipError),
    Case("d2-truncated-one-byte", lambda: valid_archive()[:-1], ZipError),
    Case("d2-cut-inside-central-directory", lambda: valid_archive()[:cd_offset(valid_archive()) + 30] + valid_archive()[-22:],
         ZipError),
    Case("d2-garbage-with-fake-eocd", lambda: random.Random(7).randbytes(1000) + zf.eocd(disk_entries=1, total_entries=1,
         cd_size=46, cd_offset=0), ZipError),
    Case("d2-cd-offset-past-eocd", many(*valid_entries(), cd_offset=0x7FFFFFFF), ZipError),
    Case("d2-zip64-marker-cd-offset", many(*valid_entries(), cd_offset=0xFFFFFFFF), ZipError, message="ZIP64"),
    Case("d2-zip64-marker-entry-count", many(*valid_entries(), disk_entries=0xFFFF, total_entries=0xFFFF), ZipError,
         message="ZIP64"),
    Case("d2-central-record-name-runs-past-eocd",
         patched(valid_archive, lambda d: nth_central_record(d, 2) + 28, "<H", 0xFFFF), ZipError),
    # D3 ----------------------------------------------------------------------------------
    Case("d3-257-records", lambda: zf.forge([Entry(f"assets/{i}", b"x") for i in range(MAX_ENTRIES + 1)]),
         ArtifactTooManyEntries, {"actual": 257, "limit": 256}),
    Case("d3-5000-records", lambda: zf.forge([Entry(f"f{i}", b"", method=0) for i in range(5000)]),
         ArtifactTooManyEntries, {"actual": 5000, "limit": 256}),
    Case("d3-before-d4-comment", lambda: zf.forge([Entry(f"a{i}", b"") for i in range(300)], Layout(comment=b"hi")),
         ArtifactTooManyEntries, {"actual": 300, "limit": 256}),
    Case("d3-central-directory-only-bomb",
         lambda: zf.central_record(b"x", offset=0) * 200_000 + zf.eocd(disk_entries=200_000 & 0xFFFF,
                 total_entries=200_000 & 0xFFFF, cd_size=47 * 200_000, cd_offset=0),
         ArtifactTooManyEntries, {"actual": 200_000, "limit": 256}, max_inflated=0),
    Case("d3-counts-directories", lambda: zf.forge([Entry(f"d{i}/", b"", method=0) for i in range(257)]),
         ArtifactTooManyEntries, {"actual": 257, "limit": 256}),
    # D4a ---------------------------------------------------------------------------------
    Case("d4a-eocd-comment", many(*valid_entries(), layout=Layout(comment=b"a comment")), ZipError, message="comment"),
    Case("d4a-comment-length-without-bytes", many(*valid_entries(), comment_len=12), ZipError),
    Case("d4a-trailing-bytes", many(*valid_entries(), layout=Layout(trailing=b"trailing")), ZipError,
         message="trailing"),
    Case("d4a-second-archive-appended", lambda: valid_archive() + zf.forge([Entry("evil.txt", b"evil")]),
         ZipError),
    Case("d4a-second-archive-hidden-in-comment",
         lambda: zf.forge(valid_entries(), Layout(comment=zf.forge([Entry("evil.txt", b"x")])[:-22])), ZipError),
    # D4b ---------------------------------------------------------------------------------
    Case("d4b-multi-disk-this-disk", many(*valid_entries(), disk=1), ZipError, message="disk"),
    Case("d4b-multi-disk-cd-disk", many(*valid_entries(), cd_disk=1), ZipError, message="disk"),
    Case("d4b-record-disk-start", many(Entry("a.txt", b"a", disk_start=1)), ZipError, message="disk"),
    Case("d4b-total-count-mismatch", many(*valid_entries(), total_entries=4), ZipError, message="count"),
    Case("d4b-disk-count-mismatch", many(*valid_entries(), disk_entries=2), ZipError, message="count"),
    Case("d4b-cd-size-mismatch", patched(valid_archive, lambda d: len(d) - 10, "<I", 1), ZipError),
    Case("d4b-cd-offset-off-by-one",
         lambda: zf.forge(valid_entries(), Layout(prefix=b""), cd_offset=cd_offset(valid_archive()) - 1),
         ZipError),
    Case("d4b-zip64-locator", with_zip64_records(locator_only=True), ZipError, message="ZIP64"),
    Case("d4b-zip64-record-and-locator", with_zip64_records(locator_only=False), ZipError, message="ZIP64"),
    Case("d4b-zip64-size-marker", many(Entry("a.txt", b"a", usize=0xFFFFFFFF, local_usize=0xFFFFFFFF)), ZipError,
         message="ZIP64"),
    Case("d4b-junk-between-cd-and-eocd",
         lambda: zf.forge(valid_entries(), Layout(between=b"junk!"),
                          cd_size=len(valid_archive()) - 22 - cd_offset(valid_archive()) + 5), ZipError),
    Case("d4b-bad-central-signature",
         patched(valid_archive, lambda d: nth_central_record(d, 1), "<I", 0x12345678), ZipError),
    # D4c ---------------------------------------------------------------------------------
    Case("d4c-byte-identical-names", many(Entry("a.txt", b"one"), Entry("a.txt", b"two")), DuplicateArtifactEntry,
         {"path": "a.txt"}),
    Case("d4c-many-records-one-local-header",
         lambda: zf.forge([Entry("a.txt", b"hello")] + [Entry("a.txt", b"hello", write_local=False, offset=0)] * 50),
         DuplicateArtifactEntry, {"path": "a.txt"}),
    Case("d4c-before-path-check", many(Entry("../x", b"1"), Entry("../x", b"2")), DuplicateArtifactEntry,
         {"path": "../x"}),
    # D4d ---------------------------------------------------------------------------------
    Case("d4d-local-name-differs", many(Entry("a.txt", b"a", local_name=b"b.txt")), ZipError, message="name"),
    Case("d4d-local-name-case-differs", many(Entry("A.txt", b"a", local_name=b"a.txt")), ZipError),
    Case("d4d-missing-local-signature", many(Entry("a.txt", b"a", local_signature=0)), ZipError, message="signature"),
    Case("d4d-local-header-is-central-signature", many(Entry("a.txt", b"a", local_signature=zf.CENTRAL_SIG)),
         ZipError),
    Case("d4d-offset-outside-entries", many(Entry("a.txt", b"a", offset=10_000)), ZipError),
    Case("d4d-two-names-one-local-header",
         many(Entry("a.txt", b"hello"), Entry("b.txt", b"hello", write_local=False, offset=0)), ZipError),
    Case("d4d-local-method-differs", many(Entry("a.txt", b"hello", local_method=0)), ZipError),
    Case("d4d-local-crc-differs", many(Entry("a.txt", b"hello", local_crc=1)), ZipError),
    Case("d4d-local-size-differs", many(Entry("a.txt", b"hello", local_usize=1)), ZipError),
    Case("d4d-local-encryption-flag-differs", many(Entry("a.txt", b"hello", local_flags=1)), ZipError),
    # D4e ---------------------------------------------------------------------------------
    Case("d4e-prepended-stub-offsets-adjusted", many(*valid_entries(), layout=Layout(prefix=b"#!/bin/sh\nexit 0\n")),
         ZipError, message="offset"),
    Case("d4e-prepended-stub-concatenated", lambda: b"MZ" + bytes(62) + valid_archive(), ZipError),
    Case("d4e-gap-between-entries",
         many(Entry("a.txt", b"a", after=b"hidden bytes"), Entry("b.txt", b"b")), ZipError, message="gap"),
    Case("d4e-gap-before-central-directory", many(Entry("a.txt", b"a", after=b"hidden")), ZipError),
    Case("d4e-overlap-bomb-fifield", lambda: zf.overlap_bomb(100, 1 << 18), ZipError, message="overlap",
         max_inflated=0),
    Case("d4e-overlap-by-size", many(Entry("a.txt", b"aaaa", csize=20, local_csize=20), Entry("b.txt", b"b")),
         ZipError),
    Case("d4e-data-descriptor-missing", many(Entry("a.txt", b"hello", flags=0x08)), ZipError),
    Case("d4e-data-descriptor-lies",
         many(Entry("a.txt", b"hello", flags=0x08, data_descriptor=struct.pack("<IIII", zf.DD_SIG, 0, 7, 5))),
         ZipError, message="descriptor"),
    # D5a ---------------------------------------------------------------------------------
    Case("d5a-encrypted", one("a.txt", flags=0x01), ZipError, message="encrypted"),
    Case("d5a-bzip2", one("a.txt", method=12, payload=b"BZh91AY&SY"), ZipError, message="method 12"),
    Case("d5a-lzma", one("a.txt", method=14, payload=b"\x09\x14\x05\x00"), ZipError, message="method 14"),
    Case("d5a-method-99-aes", one("a.txt", method=99, payload=b"\0" * 16), ZipError, message="method 99"),
    Case("d5a-encrypted-before-path", one("../x", flags=0x01), ZipError),
    # D5b ---------------------------------------------------------------------------------
    Case("d5b-symlink", one("link", b"/etc/passwd", external_attr=zf.SYMLINK), ZipError, message="symlink"),
    Case("d5b-symlink-before-path", one("../../etc/passwd", b"/etc/passwd", external_attr=zf.SYMLINK), ZipError),
    Case("d5b-fifo", one("pipe", b"", external_attr=zf.FIFO), ZipError),
    Case("d5b-char-device", one("dev/null", b"", external_attr=zf.CHAR_DEVICE), ZipError),
    Case("d5b-socket", one("sock", b"", external_attr=0o140755 << 16), ZipError),
    Case("d5b-directory-mode-on-file-name", one("a.txt", b"", external_attr=zf.DIRECTORY), ZipError),
    Case("d5b-directory-mode-on-file-with-data", one("a.txt", b"data", external_attr=zf.DIRECTORY), ZipError),
    # D5c ---------------------------------------------------------------------------------
    Case("d5c-directory-with-content", one("dir/", b"content"), ZipError, message="directory"),
    Case("d5c-backslash-directory-with-content", one("dir\\", b"content"), ZipError),
    Case("d5c-directory-declaring-size", one("dir/", b"", method=0, usize=5, local_usize=5), ZipError),
    Case("d5c-traversal-directory-with-content", one("../dir/", b"content"), ZipError),
    # D5d: see PATH_CASES; name decoding ---------------------------------------------------
    Case("name-invalid-utf8-flagged", one(b"bad\xff\xfe.txt", flags=UTF8), ZipError, message="UTF-8"),
    Case("name-overlong-utf8-slash", one(b"..\xc0\xafetc\xc0\xafpasswd", flags=UTF8), ZipError),
    Case("name-utf8-surrogate", one(b"\xed\xa0\x80.txt", flags=UTF8), ZipError),
    Case("name-path-before-size", one("../big", b"x", usize=MAX_ENTRY_BYTES + 1), InvalidArtifactPath,
         {"raw": "../big"}),
    # D5e-k: sizes and bombs ---------------------------------------------------------------
    Case("d5e-declared-over-16MiB", one("big.bin", b"tiny", usize=MAX_ENTRY_BYTES + 1), ArtifactEntryTooLarge,
         {"path": "big.bin", "actual": MAX_ENTRY_BYTES + 1, "limit": MAX_ENTRY_BYTES}, max_inflated=0),
    Case("d5e-bomb-declaring-4GiB", many(zero_entry("bomb.bin", 1 << 30, declared=0xFFFFFFFE)),
         ArtifactEntryTooLarge, {"path": "bomb.bin", "actual": 0xFFFFFFFE, "limit": MAX_ENTRY_BYTES}, max_inflated=0),
    Case("d5i-actual-over-16MiB-declared-small", many(zero_entry("big.bin", MAX_ENTRY_BYTES + 4096, declared=10)),
         ArtifactEntryTooLarge, {"path": "big.bin", "actual": MAX_ENTRY_BYTES + 1, "limit": MAX_ENTRY_BYTES},
         max_inflated=MAX_ENTRY_BYTES + 1),
    Case("d5i-deflate-bomb-2GiB", many(zero_entry("bomb.bin", 2 << 30, declared=1000)),
         ArtifactEntryTooLarge, {"path": "bomb.bin", "actual": MAX_ENTRY_BYTES + 1, "limit": MAX_ENTRY_BYTES},
         max_inflated=MAX_ENTRY_BYTES + 1),
    Case("d5i-deflate-bomb-declaring-its-cap", many(zero_entry("bomb.bin", 1 << 30, declared=MAX_ENTRY_BYTES)),
         ArtifactEntryTooLarge, {"path": "bomb.bin", "actual": MAX_ENTRY_BYTES + 1, "limit": MAX_ENTRY_BYTES},
         max_inflated=MAX_ENTRY_BYTES + 1),
    Case("d5g-total-over-64MiB-declared",
         lambda: zf.forge([zero_entry(f"assets/{i}.bin", 14 * MiB) for i in range(5)]),
         ArtifactTooLarge, {"actual": 70 * MiB, "limit": TOTAL}, max_inflated=56 * MiB),
    Case("d5i-total-over-64MiB-while-streaming",
         lambda: zf.forge([zero_entry(f"assets/{i}.bin", 14 * MiB) for i in range(4)]
                          + [zero_entry("assets/4.bin", 14 * MiB, declared=1)]),
         ArtifactTooLarge, {"actual": 64 * MiB + 1, "limit": TOTAL}, max_inflated=64 * MiB + 1),
    Case("d5f-empty-entry-after-exactly-64MiB",
         lambda: zf.forge([zero_entry(f"assets/{i}.bin", 16 * MiB) for i in range(4)] + [Entry("z.txt", b"")]),
         ArtifactTooLarge, {"actual": TOTAL, "limit": TOTAL}, max_inflated=TOTAL),
    Case("d5j-declared-smaller-than-actual", one("a.txt", b"x" * 100, usize=50, local_usize=50), ZipError,
         message="declares"),
    Case("d5j-declared-larger-than-actual", one("a.txt", b"x" * 100, usize=200, local_usize=200), ZipError,
         message="declares"),
    Case("d5j-stored-sizes-differ", one("a.txt", b"x" * 100, method=0, usize=50, local_usize=50), ZipError),
    Case("d5j-stored-declared-larger", one("a.txt", b"x" * 100, method=0, usize=150, local_usize=150), ZipError),
    # D5h: read errors ---------------------------------------------------------------------
    Case("d5h-corrupt-deflate", one("a.txt", b"hello", payload=b"\xff" * 16), IoError),
    Case("d5h-truncated-deflate", one("a.txt", random.Random(3).randbytes(2000),
                                      payload=zf.deflate(random.Random(3).randbytes(2000))[:-40]), IoError),
    Case("d5h-crc-mismatch", one("a.txt", b"hello world", crc=zlib.crc32(b"hello world") ^ 1), IoError,
         message="CRC"),
    Case("d5h-stored-crc-mismatch", one("a.txt", b"hello world", method=0, crc=0), IoError, message="CRC"),
    # D5l: duplicates after normalisation --------------------------------------------------
    Case("d5l-backslash-vs-slash", many(Entry("a\\b", b"1"), Entry("a/b", b"2")), DuplicateArtifactEntry,
         {"path": "a/b"}),
    Case("d5l-leading-space", many(Entry(" x", b"1"), Entry("x", b"2")), DuplicateArtifactEntry, {"path": "x"}),
    Case("d5l-ideographic-space", many(Entry("x", b"1"), Entry("x\u3000", b"2", flags=UTF8)), DuplicateArtifactEntry,
         {"path": "x"}),
    Case("d5l-cp437-vs-utf8", many(Entry(b"\x82.txt", b"1"), Entry("é.txt", b"2", flags=UTF8)),
         DuplicateArtifactEntry, {"path": "é.txt"}),
    *PATH_CASES,
]


# --- running them ------------------------------------------------------------------------


class _Meter:
    """Counts every byte of deflate output the decoder produces."""

    def __init__(self) -> None:
        self.inflated = 0

    def decompressobj(self, *args: Any, **kwargs: Any) -> _MeteredInflater:
        return _MeteredInflater(zlib.decompressobj(*args, **kwargs), self)

    def __getattr__(self, name: str) -> Any:
        return getattr(zlib, name)


class _MeteredInflater:
    def __init__(self, inner: Any, meter: _Meter) -> None:
        self._inner = inner
        self._meter = meter

    def decompress(self, data: Any, max_length: int = 0) -> bytes:
        out = self._inner.decompress(data, max_length)
        self._meter.inflated += len(out)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def meter(monkeypatch: pytest.MonkeyPatch) -> _Meter:
    m = _Meter()
    monkeypatch.setattr(ziparchive, "zlib", m)
    return m


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_archive_is_rejected(case: Case, meter: _Meter) -> None:
    data = case.build()
    with pytest.raises(case.error) as info:
        decode_archive(data)
    assert type(info.value) is case.error
    for key, value in case.details.items():
        assert info.value.details[key] == value, key
    if case.message is not None:
        assert case.message in info.value.message
    assert meter.inflated <= case.max_inflated


# --- accepted oddities and nested archives -----------------------------------------------


def test_empty_directory_records_are_skipped_without_name_checks() -> None:
    data = zf.forge(
        [
            Entry("assets/", b"", method=0, external_attr=zf.DIRECTORY),
            Entry("../weird\\", b"", method=0),  # the reference skips directory names unvalidated
            Entry("assets/a.txt", b"a"),
        ]
    )
    assert decode_archive(data) == {"assets/a.txt": b"a"}


def test_data_descriptors_with_and_without_signature_are_accepted() -> None:
    a, b = b"alpha" * 10, b"beta" * 10
    pa, pb = zf.deflate(a), zf.deflate(b)
    data = zf.forge(
        [
            Entry("a", a, flags=0x08, local_crc=0, local_csize=0, local_usize=0,
                  data_descriptor=zf.data_descriptor(a, pa)),
            Entry("b", b, flags=0x08, local_crc=0, local_csize=0, local_usize=0,
                  data_descriptor=zf.data_descriptor(b, pb, signature=False)),
        ]
    )
    assert decode_archive(data) == {"a": a, "b": b}


def test_cp437_names_without_the_utf8_flag() -> None:
    assert decode_archive(zf.forge([Entry(b"caf\x82.txt", b"x")])) == {"café.txt": b"x"}


def test_exactly_256_entries_and_exactly_64MiB_are_accepted() -> None:
    entries = [zero_entry(f"assets/{i}.bin", 16 * MiB) for i in range(4)]
    entries += [Entry(f"e/{i}", b"") for i in range(MAX_ENTRIES - 4)]
    # Empty entries after the total has reached the cap fail at D5f, so put them first.
    result = decode_archive(zf.forge(entries[4:] + entries[:4]))
    assert len(result) == MAX_ENTRIES
    assert sum(map(len, result.values())) == TOTAL


def test_nested_bomb_is_just_bytes_one_layer_at_a_time(meter: _Meter) -> None:
    data = nested_bomb_layers(depth=5)
    for level in reversed(range(5)):
        (name, inner), = decode_archive(data).items()
        assert name == f"layer{level}.zip"
        data = inner
    assert meter.inflated < 16 * MiB  # the layers themselves are small
    with pytest.raises(ArtifactEntryTooLarge) as info:
        decode_archive(data)
    assert info.value.details == {"path": "bomb.bin", "actual": MAX_ENTRY_BYTES + 1, "limit": MAX_ENTRY_BYTES}
    assert meter.inflated < 2 * 16 * MiB


# --- mutation fuzzing ----------------------------------------------------------------------


def _zipfile_archive(*, seekable: bool) -> bytes:
    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.buf += b
            return len(b)

    sink: Any = io.BytesIO() if seekable else Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("skill.toml", b"a = 1\n" * 5)
        z.writestr(zipfile.ZipInfo("assets/stored.bin"), b"\x01\x02\x03" * 7, compress_type=zipfile.ZIP_STORED)
        if seekable:
            z.mkdir("assets/dir")
        z.writestr("modules/m.wasm", b"\0asm\x01\0\0\0" * 4)
    return sink.getvalue() if seekable else bytes(sink.buf)


SEEDS = [
    encode_archive({"skill.toml": b"x = 1\n" * 8, "modules/a.wasm": b"\0asm" + bytes(40), "assets/é": b"e"}),
    encode_archive({"a": b""}),
    _zipfile_archive(seekable=True),
    _zipfile_archive(seekable=False),
    zf.forge([Entry("x", b"stored data", method=0), Entry("d/", b"", method=0, external_attr=zf.DIRECTORY)]),
]

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("set"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 64)),
    st.tuples(st.just("splice"), st.integers(0, 10_000), st.tuples(st.integers(0, len(SEEDS) - 1),
                                                                  st.integers(0, 10_000), st.integers(1, 200))),
    st.tuples(st.just("u32"), st.integers(0, 10_000), st.sampled_from([0, 1, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, 46])),
)


def _mutate(data: bytes, ops: list[tuple[str, int, Any]]) -> bytes:
    buf = bytearray(data)
    for op, pos, arg in ops:
        pos = pos % (len(buf) + 1)
        if op == "flip" and pos < len(buf):
            buf[pos] ^= arg
        elif op == "set" and pos < len(buf):
            buf[pos] = arg
        elif op == "truncate":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = arg
        elif op == "delete":
            del buf[pos : pos + arg]
        elif op == "splice":
            seed, start, length = arg
            donor = SEEDS[seed]
            start %= len(donor)
            buf[pos : pos + length] = donor[start : start + length]
        elif op == "u32" and pos + 4 <= len(buf):
            struct.pack_into("<I", buf, pos, arg)
    return bytes(buf)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, len(SEEDS) - 1), ops=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_archives_only_raise_domain_errors(seed: int, ops: list[tuple[str, int, Any]]) -> None:
    data = _mutate(SEEDS[seed], ops)
    try:
        result = decode_archive(data)
    except SkillLedgerError:
        return
    assert isinstance(result, dict)
    assert list(result) == sorted(result)
    assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in result.items())


def test_seeds_decode() -> None:
    for seed in SEEDS:
        assert isinstance(decode_archive(seed), dict)


def test_bytes_after_the_deflate_stream_are_ignored_like_every_reader_does():
    # The standard reader stops at the end of the deflate stream; the stray bytes are part of
    # the archive (and of artifact_sha256) but of no entry, so the payload cannot be changed
    # through them. D4e still forbids bytes outside every entry's span.
    data = one("a.txt", b"hello", payload=zf.deflate(b"hello") + b"smuggled")()
    assert decode_archive(data) == {"a.txt": b"hello"}
