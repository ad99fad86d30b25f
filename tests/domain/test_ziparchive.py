"""Normal cases of ``domain.ziparchive``: §11 encoding layout, round trips, interop with ``zipfile``.

Hostile inputs live in ``tests/adversarial/test_hostile_archives.py``.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

import pytest

from skill_ledger.domain.errors import ZipError
from skill_ledger.domain.ziparchive import (
    CENTRAL_HEADER,
    CENTRAL_SIG,
    EOCD_RECORD,
    EOCD_SIG,
    LOCAL_HEADER,
    LOCAL_SIG,
    decode_archive,
    encode_archive,
    find_eocd,
)

MiB = 1 << 20
_rng = random.Random(20240601)


def _text(size: int) -> bytes:
    """Compressible, word-like text (deflate ratio of roughly 2-3)."""
    words = [bytes(_rng.choice(b"abcdefghijklmnop") for _ in range(_rng.randint(2, 9))) for _ in range(300)]
    return b" ".join(_rng.choices(words, k=size // 4))[:size]


ENTRY_SETS = {
    "minimal": {"skill.toml": b"name = 'demo'\n"},
    "typical": {
        "skill.toml": b"[skill]\nid = 'acme.echo'\n",
        "modules/echo.wasm": b"\0asm\x01\0\0\0" + bytes(range(256)) * 4,
        "sbom.cdx.json": b'{"bomFormat": "CycloneDX"}',
        "provenance.json": b"{}",
        "signature.json": b'{"algorithm": "ed25519-sha256"}',
    },
    "nested-and-empty": {
        "assets/a/b/c/d/e.txt": b"deep",
        "assets/empty": b"",
        "assets/also-empty.bin": b"",
        "modules/lib/x.wasm": b"\0asm",
    },
    "non-ascii": {
        "assets/café.txt": "crème brûlée".encode(),
        "assets/日本語/ファイル.md": b"# hi",
        "assets/emoji-\U0001f600.bin": b"\xf0\x9f\x98\x80",
        "assets/plain.txt": b"ascii",
    },
    "large": {
        "assets/random.bin": _rng.randbytes(3 * MiB),
        "assets/text.txt": _text(5 * MiB),
        "assets/zeros.bin": bytes(2 * MiB),
    },
}


@pytest.mark.parametrize("name", list(ENTRY_SETS))
def test_round_trip(name: str) -> None:
    entries = ENTRY_SETS[name]
    decoded = decode_archive(encode_archive(entries))
    assert decoded == entries
    assert list(decoded) == sorted(entries)


@pytest.mark.parametrize("name", list(ENTRY_SETS))
def test_encoding_is_deterministic(name: str) -> None:
    entries = ENTRY_SETS[name]
    reversed_order = dict(reversed(list(entries.items())))
    assert encode_archive(entries) == encode_archive(entries) == encode_archive(reversed_order)


def test_empty_archive_is_a_bare_eocd() -> None:
    data = encode_archive({})
    assert data == struct.pack("<IHHHHIIH", EOCD_SIG, 0, 0, 0, 0, 0, 0, 0)
    assert decode_archive(data) == {}


def _walk(data: bytes) -> tuple[list[tuple[tuple[int, ...], bytes]], list[tuple[tuple[int, ...], bytes]], tuple[int, ...]]:
    """Parse our own output: local headers back to back, central records, EOCD."""
    eocd = EOCD_RECORD.unpack_from(data, len(data) - EOCD_RECORD.size)
    cd_offset = eocd[6]
    locals_, centrals = [], []
    pos = 0
    while pos < cd_offset:
        fields = LOCAL_HEADER.unpack_from(data, pos)
        name = data[pos + 30 : pos + 30 + fields[9]]
        locals_.append((fields, name))
        pos += 30 + fields[9] + fields[10] + fields[7]
    assert pos == cd_offset
    while pos < len(data) - EOCD_RECORD.size:
        fields = CENTRAL_HEADER.unpack_from(data, pos)
        name = data[pos + 46 : pos + 46 + fields[10]]
        centrals.append((fields, name))
        pos += 46 + fields[10] + fields[11] + fields[12]
    assert pos == len(data) - EOCD_RECORD.size
    return locals_, centrals, eocd


def test_layout_matches_section_11() -> None:
    entries = ENTRY_SETS["non-ascii"] | ENTRY_SETS["typical"]
    data = encode_archive(entries)
    locals_, centrals, eocd = _walk(data)
    names = sorted(entries)
    assert [n.decode() for _, n in locals_] == names  # sorted path order, one per entry, no directories
    assert [n.decode() for _, n in centrals] == names

    offset = 0
    for (local, lname), (central, cname), path in zip(locals_, centrals, names):
        sig, needed, flags, method, time, date, crc, csize, usize, name_len, extra_len = local
        assert sig == LOCAL_SIG
        assert method == 8  # deflate
        assert (time, date) == (0x0000, 0x0021)  # 1980-01-01 00:00:00
        assert flags & 0x0001 == 0  # no encryption
        assert flags & 0x0008 == 0  # no data descriptor: sizes are in the header
        assert bool(flags & 0x0800) == (not path.isascii())  # UTF-8 flag only for non-ASCII names
        assert flags & ~0x0800 == 0
        assert extra_len == 0
        assert crc == zlib.crc32(entries[path]) and usize == len(entries[path])
        assert lname == path.encode("utf-8")

        (csig, made_by, cneeded, cflags, cmethod, ctime, cdate, ccrc, ccsize, cusize,
         cname_len, cextra, ccomment, disk_start, internal, external, local_offset) = central
        assert csig == CENTRAL_SIG
        assert made_by >> 8 == 3  # host Unix
        assert external == 0o100644 << 16  # regular file, 0644
        assert (cneeded, cflags, cmethod, ctime, cdate, ccrc, ccsize, cusize) == (
            needed, flags, method, time, date, crc, csize, usize
        )
        assert (cextra, ccomment, disk_start, internal) == (0, 0, 0, 0)
        assert local_offset == offset  # back to back from offset 0
        offset += 30 + name_len + csize

    sig, disk, cd_disk, disk_entries, total, cd_size, cd_offset, comment_len = eocd
    assert sig == EOCD_SIG
    assert (disk, cd_disk, comment_len) == (0, 0, 0)
    assert disk_entries == total == len(entries)
    assert cd_offset == offset
    assert cd_offset + cd_size == len(data) - 22  # the EOCD is the last 22 bytes
    assert find_eocd(memoryview(data)).offset == len(data) - 22
    assert b"PK\x06\x06" not in data[cd_offset:] and b"PK\x06\x07" not in data[cd_offset:]  # no ZIP64


def test_zipfile_reads_our_output() -> None:
    entries = ENTRY_SETS["non-ascii"] | ENTRY_SETS["nested-and-empty"]
    with zipfile.ZipFile(io.BytesIO(encode_archive(entries))) as z:
        assert z.testzip() is None
        infos = z.infolist()
        assert [i.filename for i in infos] == sorted(entries)
        for info in infos:
            assert z.read(info) == entries[info.filename]
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.create_system == 3
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
            assert info.extra == b""
            assert not info.is_dir()


def _zipfile_archive(entries: dict[str, bytes], *, seekable: bool = True, dirs: tuple[str, ...] = ()) -> bytes:
    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: object) -> int:
            self.buf += b  # type: ignore[operator]
            return len(b)  # type: ignore[arg-type]

    sink: io.BytesIO | Unseekable = io.BytesIO() if seekable else Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as z:
        for d in dirs:
            z.mkdir(d)
        for name, data in entries.items():
            z.writestr(name, data)
    return sink.getvalue() if isinstance(sink, io.BytesIO) else bytes(sink.buf)


def test_plain_zipfile_archive_decodes() -> None:
    """A typical third-party builder: zipfile, deflate, no directory entries, insertion order."""
    entries = {"skill.toml": b"a = 1\n", "modules/m.wasm": b"\0asm" * 100, "assets/é.txt": b"x" * 1000}
    decoded = decode_archive(_zipfile_archive(entries))
    assert decoded == entries
    assert list(decoded) == sorted(entries)  # sorted although the central directory is not


def test_zipfile_archive_with_directories_and_stored_entries() -> None:
    entries = {"assets/dir/a.txt": b"a", "assets/b.txt": b""}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # ZIP_STORED
        z.mkdir("assets")
        z.mkdir("assets/dir")
        for name, data in entries.items():
            z.writestr(name, data)
    assert decode_archive(buf.getvalue()) == entries


def test_zipfile_streamed_archive_with_data_descriptors_decodes() -> None:
    entries = {"skill.toml": b"a = 1\n" * 50, "modules/m.wasm": _rng.randbytes(5000)}
    data = _zipfile_archive(entries, seekable=False)
    assert b"PK\x07\x08" in data  # zipfile wrote data descriptors
    assert decode_archive(data) == entries


def test_decode_accepts_any_bytes_like() -> None:
    data = encode_archive(ENTRY_SETS["typical"])
    assert decode_archive(bytearray(data)) == decode_archive(memoryview(data)) == ENTRY_SETS["typical"]


def test_decoded_values_are_bytes() -> None:
    decoded = decode_archive(encode_archive({"a": b"", "b": b"stored?"}))
    assert all(type(v) is bytes for v in decoded.values())


@pytest.mark.parametrize(
    "entries",
    [{1: b"x"}, {"a": "not bytes"}, {"a": None}],
    ids=["non-str-key", "str-value", "none-value"],
)
def test_encode_library_failures_are_zip_errors(entries: dict) -> None:
    with pytest.raises(ZipError):
        encode_archive(entries)
