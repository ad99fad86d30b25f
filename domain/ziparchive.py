"""ZIP encoding (``artifact-format.md`` §11) and hostile-input decoding (§12).

Pure: bytes in, bytes out. The decoder does its own central-directory walk with
``struct`` because the standard library silently tolerates prepended data,
comments, trailing bytes, overlapping entries and duplicate names, all of which
the format rejects. Once the structure is proven sound, the entries are streamed by
``zipfile`` with a read cap, so a deflate bomb costs at most ``entry_limit + 1``
bytes of output before it is stopped, whatever sizes the archive declares.

Every failure is a ``domain.errors`` error; no ``struct.error``, ``zlib.error`` or
``UnicodeDecodeError`` escapes.
"""

from __future__ import annotations

import copy
import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .constants import (
    MANIFEST_ENTRY,
    MAX_ARTIFACT_BYTES,
    MAX_ENTRIES,
    MAX_ENTRY_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_TOTAL_UNCOMPRESSED_BYTES,
)
from .errors import (
    ArtifactEntryTooLarge,
    ArtifactTooLarge,
    ArtifactTooManyEntries,
    DuplicateArtifactEntry,
    IoError,
    ZipError,
)
from .grammars import normalize_path

__all__ = [
    "encode_archive",
    "decode_archive",
    "Eocd",
    "CentralRecord",
    "find_eocd",
    "LOCAL_SIG",
    "CENTRAL_SIG",
    "EOCD_SIG",
    "DD_SIG",
    "ZIP64_EOCD_SIG",
    "ZIP64_LOCATOR_SIG",
    "LOCAL_HEADER",
    "CENTRAL_HEADER",
    "EOCD_RECORD",
    "DOS_DATE_1980",
    "DOS_TIME_MIDNIGHT",
    "REGULAR_FILE_ATTR",
    "HOST_UNIX",
    "FLAG_ENCRYPTED",
    "FLAG_DATA_DESCRIPTOR",
    "FLAG_UTF8",
]

# --- record layouts (APPNOTE 4.3) ----------------------------------------------------

LOCAL_SIG = 0x04034B50
CENTRAL_SIG = 0x02014B50
EOCD_SIG = 0x06054B50
DD_SIG = 0x08074B50
ZIP64_EOCD_SIG = 0x06064B50
ZIP64_LOCATOR_SIG = 0x07064B50

# signature, version needed, flags, method, time, date, crc, csize, usize, name len, extra len
LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
# signature, version made by, version needed, flags, method, time, date, crc, csize, usize,
# name len, extra len, comment len, disk start, internal attr, external attr, local offset
CENTRAL_HEADER = struct.Struct("<IHHHHHHIIIHHHHHII")
# signature, this disk, cd disk, entries on this disk, total entries, cd size, cd offset, comment len
EOCD_RECORD = struct.Struct("<IHHHHIIH")
_DD_FIELDS = struct.Struct("<III")  # crc, csize, usize (after the optional signature)
_U32 = struct.Struct("<I")
_CD_WALK = struct.Struct("<I24xHHH")  # just the signature and the three variable lengths

FLAG_ENCRYPTED = 0x0001
FLAG_DATA_DESCRIPTOR = 0x0008
FLAG_UTF8 = 0x0800

METHOD_STORED = 0
METHOD_DEFLATE = 8
DOS_DATE_1980 = 0x0021  # 1980-01-01
DOS_TIME_MIDNIGHT = 0x0000
HOST_UNIX = 3
VERSION_20 = 20  # 2.0: deflate
REGULAR_FILE_ATTR = 0o100644 << 16

S_IFMT = 0o170000
S_IFREG = 0o100000
S_IFDIR = 0o040000

_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF
_MAX_EOCD_SEARCH = EOCD_RECORD.size + _U16_MAX  # EOCD plus the longest possible comment


# --- §11 encoding ----------------------------------------------------------------------


def encode_archive(entries: Mapping[str, bytes]) -> bytes:
    """Write ``entries`` as a deterministic ZIP per §11, through the standard ``zipfile``.

    Every ``ZipInfo`` field that reaches the bytes is set explicitly (fixed 1980-01-01
    timestamp, Unix host, 0644 regular-file attributes, deflate, no extra fields), and
    the archive goes to a seekable buffer, so ``zipfile`` writes no data descriptors and
    the layout passes §12 D4; the tests parse the bytes to hold it to that.
    """
    try:
        return _encode(entries)
    except (zlib.error, struct.error, UnicodeEncodeError, TypeError, ValueError, OverflowError,
            zipfile.LargeZipFile) as exc:
        raise ZipError(f"cannot encode archive: {exc}") from exc


def _encode(entries: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=False) as zf:
        for path in sorted(entries):
            if not isinstance(path, str):
                raise ZipError(f"entry name must be a string, got {type(path).__name__}")
            data = entries[path]
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise ZipError(f"entry '{path}' content must be bytes, got {type(data).__name__}")
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = HOST_UNIX
            info.create_version = VERSION_20
            info.extract_version = VERSION_20
            info.external_attr = REGULAR_FILE_ATTR
            zf.writestr(info, bytes(data))
    return buffer.getvalue()


# --- §12 decoding: parsed structures ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Eocd:
    offset: int
    disk: int
    cd_disk: int
    disk_entries: int
    total_entries: int
    cd_size: int
    cd_offset: int
    comment_len: int


@dataclass(slots=True)
class CentralRecord:
    index: int  # position in the central directory
    flags: int
    method: int
    crc: int
    csize: int
    usize: int  # the *declared* size of §12
    disk_start: int
    external_attr: int
    local_offset: int
    raw_name: bytes
    name: str = ""  # decoded after D3 (UTF-8 with flag bit 11, CP437 otherwise)
    data_start: int = 0  # first byte of compressed data, set by D4d


# --- §12 decoding --------------------------------------------------------------------


def decode_archive(data: bytes, on_entry: Callable[[str, bytes], None] | None = None) -> dict[str, bytes]:
    """Decode an artifact ZIP per §12, steps D1-D6 in order; returns entries sorted by path.

    ``on_entry(path, content)`` is called as each entry passes D5, in central-directory
    order, so a caller can hash entries while the next ones are still being inflated."""
    # Slices of a memoryview share the input buffer: compressed data is never copied.
    mv = memoryview(data)
    if mv.ndim != 1 or mv.format != "B":
        mv = mv.cast("B")
    # D1: before any parsing, so a huge input costs nothing.
    if len(mv) > MAX_ARTIFACT_BYTES:
        raise ArtifactTooLarge(len(mv), MAX_ARTIFACT_BYTES)
    # D2
    eocd = find_eocd(mv)
    records, n, cd_end = _read_central_directory(mv, eocd)
    # D3: n counts every central record, directories included.
    if n > MAX_ENTRIES:
        raise ArtifactTooManyEntries(n, MAX_ENTRIES)
    for record in records:
        record.name = _decode_name(record)
    # D4
    _check_eocd(mv, eocd, n, cd_end)  # a, b
    _check_record_fields(records)  # b (per-record disk numbers, ZIP64 markers)
    _check_unique_raw_names(records)  # c
    _check_local_headers(mv, records, eocd.cd_offset)  # d
    _check_spans_tile(mv, records, eocd.cd_offset)  # e
    # D5: the structure is sound, so the standard reader can stream the entries.
    try:
        # BytesIO over a bytes object shares its buffer; over a memoryview it would copy it.
        reader = zipfile.ZipFile(io.BytesIO(data if isinstance(data, bytes) else mv.tobytes()))
    except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError, OSError) as exc:
        raise ZipError(f"the standard reader refuses the archive: {exc}") from exc
    if len(reader.infolist()) != len(records):
        raise ZipError("the standard reader sees a different central directory")
    result = _extract_entries(reader, records, on_entry)
    # D6
    return dict(sorted(result.items()))


def find_eocd(mv: memoryview) -> Eocd:
    """D2: locate the end-of-central-directory record.

    The canonical place is the last 22 bytes. Otherwise the last signature in the
    final 64 KiB + 22 bytes is taken (as other readers do) so that a comment or
    trailing data is reported by D4a rather than as "no EOCD".
    """
    size = len(mv)
    if size < EOCD_RECORD.size:
        raise ZipError(f"not a .palyra-skill archive: {size} bytes is too short for a ZIP archive "
                       "(no end of central directory record)")
    pos = size - EOCD_RECORD.size
    if _U32.unpack_from(mv, pos)[0] != EOCD_SIG:
        window_start = max(0, size - _MAX_EOCD_SEARCH)
        tail = bytes(mv[window_start:])
        found = tail.rfind(b"PK\x05\x06", 0, len(tail) - EOCD_RECORD.size + 4)
        if found < 0:
            if bytes(mv[:4]) == b"PK\x03\x04":
                raise ZipError("truncated or damaged ZIP archive: end of central directory record not found")
            raise ZipError("not a .palyra-skill archive (not a ZIP file: end of central directory record not found)")
        pos = window_start + found
    _sig, disk, cd_disk, disk_entries, total, cd_size, cd_offset, comment_len = EOCD_RECORD.unpack_from(mv, pos)
    return Eocd(pos, disk, cd_disk, disk_entries, total, cd_size, cd_offset, comment_len)


def _read_central_directory(mv: memoryview, eocd: Eocd) -> tuple[list[CentralRecord], int, int]:
    """D2: walk the central directory from ``cd_offset`` up to the EOCD.

    Returns the first MAX_ENTRIES + 1 records, the true record count ``n`` and the
    offset where the walk stopped. The count comes from the walk, not from the
    EOCD, so D3 and D4b can compare them. Past MAX_ENTRIES records only count
    (D3 will fail anyway), which keeps a CD of a million tiny records cheap.
    """
    if eocd.cd_offset == _U32_MAX or eocd.cd_size == _U32_MAX or eocd.total_entries == _U16_MAX:
        raise ZipError("ZIP64 archives are not supported")
    if eocd.cd_offset > eocd.offset:
        raise ZipError(f"central directory offset {eocd.cd_offset} is past the EOCD at {eocd.offset}")
    records: list[CentralRecord] = []
    pos = eocd.cd_offset
    end = eocd.offset
    n = 0
    walk = _CD_WALK.unpack_from
    while pos + CENTRAL_HEADER.size <= end:
        sig, name_len, extra_len, comment_len = walk(mv, pos)
        if sig != CENTRAL_SIG:
            break
        name_start = pos + CENTRAL_HEADER.size
        record_end = name_start + name_len + extra_len + comment_len
        if record_end > end:
            raise ZipError(f"truncated central directory record at offset {pos}")
        if n <= MAX_ENTRIES:
            records.append(_central_record(mv, pos, n, name_len))
        n += 1
        pos = record_end
    else:
        # Fewer than 46 bytes left: a record signature there is a truncated record.
        if pos + 4 <= end and _U32.unpack_from(mv, pos)[0] == CENTRAL_SIG:
            raise ZipError(f"truncated central directory record at offset {pos}")
    return records, n, pos


def _central_record(mv: memoryview, pos: int, index: int, name_len: int) -> CentralRecord:
    (_, _made_by, _needed, flags, method, _time, _date, crc, csize, usize,
     _name_len, _extra_len, _comment_len, disk_start, _internal, external, local_offset) = CENTRAL_HEADER.unpack_from(
        mv, pos
    )
    name_start = pos + CENTRAL_HEADER.size
    raw_name = bytes(mv[name_start : name_start + name_len])
    return CentralRecord(index, flags, method, crc, csize, usize, disk_start, external, local_offset, raw_name)


def _decode_name(record: CentralRecord) -> str:
    if record.flags & FLAG_UTF8:
        try:
            return record.raw_name.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ZipError(f"entry name {record.raw_name!r} is not valid UTF-8 although flag bit 11 is set") from exc
    return record.raw_name.decode("cp437")  # every byte maps, cannot fail


def _check_eocd(mv: memoryview, eocd: Eocd, n: int, cd_end: int) -> None:
    """D4a and the archive-level part of D4b."""
    # a: nothing may follow the EOCD: no comment, no trailing bytes hiding a second archive.
    if eocd.comment_len != 0:
        raise ZipError(f"archive comment is not allowed ({eocd.comment_len} bytes)")
    if eocd.offset + EOCD_RECORD.size != len(mv):
        raise ZipError(f"{len(mv) - eocd.offset - EOCD_RECORD.size} trailing bytes after the EOCD record")
    # b
    if eocd.disk != 0 or eocd.cd_disk != 0:
        raise ZipError(f"multi-disk archives are not supported (disk {eocd.disk}, cd disk {eocd.cd_disk})")
    if eocd.disk_entries != n or eocd.total_entries != n:
        raise ZipError(
            f"EOCD entry counts ({eocd.disk_entries}, {eocd.total_entries}) differ from the "
            f"{n} central directory records"
        )
    if eocd.cd_offset + eocd.cd_size != eocd.offset:
        raise ZipError(
            f"central directory offset {eocd.cd_offset} + size {eocd.cd_size} != EOCD offset {eocd.offset}"
        )
    if cd_end != eocd.offset:
        if eocd.offset >= 20 and _U32.unpack_from(mv, eocd.offset - 20)[0] == ZIP64_LOCATOR_SIG:
            raise ZipError("ZIP64 end of central directory locator is not supported")
        if cd_end + 4 <= eocd.offset and _U32.unpack_from(mv, cd_end)[0] == ZIP64_EOCD_SIG:
            raise ZipError("ZIP64 end of central directory record is not supported")
        raise ZipError(f"unexpected bytes in the central directory at offset {cd_end}")


def _check_record_fields(records: list[CentralRecord]) -> None:
    """D4b per record: single disk, and no ZIP64 marker values (they would point into extra fields)."""
    for r in records:
        if r.disk_start != 0:
            raise ZipError(f"entry '{r.name}' starts on disk {r.disk_start}; multi-disk archives are not supported")
        if _U32_MAX in (r.csize, r.usize, r.local_offset):
            raise ZipError(f"entry '{r.name}' uses ZIP64 fields, which are not supported")


def _check_unique_raw_names(records: list[CentralRecord]) -> None:
    """D4c: byte-identical raw names (the reference would silently keep the last)."""
    seen: set[bytes] = set()
    for r in records:
        if r.raw_name in seen:
            raise DuplicateArtifactEntry(r.name)
        seen.add(r.raw_name)


def _check_local_headers(mv: memoryview, records: list[CentralRecord], cd_offset: int) -> None:
    """D4d: a matching local header at each record's offset, inside the entry region.

    Beyond the name, the fields that decide how the data is read (encryption, data
    descriptor, method) must agree with the central record; without a data
    descriptor the local CRC and sizes must agree too, so the two views of an
    entry cannot disagree about what it contains.
    """
    unpack = LOCAL_HEADER.unpack_from
    for r in records:
        off = r.local_offset
        if off + LOCAL_HEADER.size > cd_offset:
            raise ZipError(f"local header of entry '{r.name}' at offset {off} is outside the entry region")
        sig, _needed, flags, method, _time, _date, crc, csize, usize, name_len, extra_len = unpack(mv, off)
        if sig != LOCAL_SIG:
            raise ZipError(f"no local file header signature at offset {off} for entry '{r.name}'")
        name_start = off + LOCAL_HEADER.size
        data_start = name_start + name_len + extra_len
        if data_start > cd_offset:
            raise ZipError(f"local header of entry '{r.name}' runs into the central directory")
        if mv[name_start : name_start + name_len] != r.raw_name:
            raise ZipError(f"local header name differs from central directory name for entry '{r.name}'")
        mask = FLAG_ENCRYPTED | FLAG_DATA_DESCRIPTOR
        if (flags & mask) != (r.flags & mask) or method != r.method:
            raise ZipError(f"local header flags or method differ from the central directory for entry '{r.name}'")
        if not r.flags & FLAG_DATA_DESCRIPTOR and (crc, csize, usize) != (r.crc, r.csize, r.usize):
            raise ZipError(f"local header CRC or sizes differ from the central directory for entry '{r.name}'")
        r.data_start = data_start


def _check_spans_tile(mv: memoryview, records: list[CentralRecord], cd_offset: int) -> None:
    """D4e: the entry spans cover [0, cd_offset) exactly, in offset order.

    This one rule rejects prepended stubs, gaps, hidden bytes between entries and
    every overlapping-entry bomb (several records sharing compressed data).
    """
    spans = sorted((r.local_offset, _span_end(mv, r, cd_offset), r.index) for r in records)
    expected = 0
    for start, end, index in spans:
        name = records[index].name
        if start != expected:
            what = "overlaps the previous entry" if start < expected else f"leaves a gap or prefix at {expected}"
            raise ZipError(f"entry '{name}' at offset {start} {what}")
        expected = end
    if expected != cd_offset:
        raise ZipError(f"entries end at {expected}, but the central directory starts at {cd_offset}")


def _span_end(mv: memoryview, r: CentralRecord, cd_offset: int) -> int:
    end = r.data_start + r.csize
    if end > cd_offset:
        raise ZipError(f"compressed data of entry '{r.name}' runs into the central directory")
    if not r.flags & FLAG_DATA_DESCRIPTOR:
        return end
    fields_at = end
    if end + 4 <= cd_offset and _U32.unpack_from(mv, end)[0] == DD_SIG:
        fields_at = end + 4
    dd_end = fields_at + _DD_FIELDS.size
    if dd_end > cd_offset:
        raise ZipError(f"data descriptor of entry '{r.name}' runs into the central directory")
    if _DD_FIELDS.unpack_from(mv, fields_at) != (r.crc, r.csize, r.usize):
        raise ZipError(f"data descriptor of entry '{r.name}' differs from the central directory")
    return dd_end


def _extract_entries(reader: zipfile.ZipFile, records: list[CentralRecord],
                     on_entry: Callable[[str, bytes], None] | None = None) -> dict[str, bytes]:
    """D5: per record in central-directory order, with the streamed total cap."""
    total = 0
    result: dict[str, bytes] = {}
    for r in records:
        # a
        if r.flags & FLAG_ENCRYPTED:
            raise ZipError(f"entry '{r.name}' is encrypted")
        if r.method not in (METHOD_STORED, METHOD_DEFLATE):
            raise ZipError(f"entry '{r.name}' uses unsupported compression method {r.method}")
        # b
        _check_file_type(r)
        # c: the name is deliberately not validated for directories (as the reference).
        if r.name.endswith(("/", "\\")):
            if r.csize or r.usize:
                raise ZipError(f"directory entry '{r.name}' has content")
            continue
        # d
        path = normalize_path(r.name)
        declared = r.usize
        # e (skill.toml has its own, smaller cap: it is parsed before anything is trusted)
        cap = MAX_MANIFEST_BYTES if path == MANIFEST_ENTRY else MAX_ENTRY_BYTES
        if declared > cap:
            raise ArtifactEntryTooLarge(path, declared, cap)
        # f
        if total >= MAX_TOTAL_UNCOMPRESSED_BYTES:
            raise ArtifactTooLarge(total, MAX_TOTAL_UNCOMPRESSED_BYTES)
        # g
        remaining = MAX_TOTAL_UNCOMPRESSED_BYTES - total
        if declared > remaining:
            raise ArtifactTooLarge(total + declared, MAX_TOTAL_UNCOMPRESSED_BYTES)
        # h
        entry_limit = min(remaining, cap)
        content = _read_entry(reader, r, entry_limit + 1)
        read = len(content)
        # i
        if read > entry_limit:
            if entry_limit < cap:
                raise ArtifactTooLarge(total + read, MAX_TOTAL_UNCOMPRESSED_BYTES)
            raise ArtifactEntryTooLarge(path, read, cap)
        # j
        if read != declared:
            raise ZipError(f"entry '{path}' declares {declared} bytes but contains {read}")
        # k
        total += read
        if total > MAX_TOTAL_UNCOMPRESSED_BYTES:
            raise ArtifactTooLarge(total, MAX_TOTAL_UNCOMPRESSED_BYTES)
        # l: different raw names can normalise to one path ("a\\b" and "a/b", " x" and "x").
        if path in result:
            raise DuplicateArtifactEntry(path)
        result[path] = content
        if on_entry is not None:
            on_entry(path, content)
    return result


def _check_file_type(r: CentralRecord) -> None:
    """D5b: only regular files and directories; a Unix mode lives in the high 16 bits."""
    mode = r.external_attr >> 16
    if not mode:
        return
    file_type = mode & S_IFMT
    if file_type not in (0, S_IFREG, S_IFDIR):
        kind = "symlink" if file_type == 0o120000 else f"special file (type {file_type:o})"
        raise ZipError(f"entry '{r.name}' is a {kind}")
    if file_type == S_IFDIR and not r.name.endswith(("/", "\\")):
        raise ZipError(f"entry '{r.name}' has a directory mode but is not named as a directory")


def _read_entry(reader: zipfile.ZipFile, r: CentralRecord, cap: int) -> bytes:
    """D5h: at most ``cap`` bytes of content, streamed by ``zipfile`` (which also checks the
    CRC once the whole entry has been read). Never sized from the declared size: zipfile
    would stop at the declared size and report a CRC error for an entry that lies about
    it, so the read is bounded by ``cap`` instead and the size is judged by the caller."""
    info = copy.copy(reader.infolist()[r.index])
    info.file_size = cap + 1  # one more than we read: stopping at the cap is not "end of entry"
    try:
        with reader.open(info) as f:
            return f.read(cap)
    except zipfile.BadZipFile as exc:  # CRC mismatch, truncated stream
        raise IoError(f"cannot read entry '{r.name}': {exc}") from exc
    except (zlib.error, EOFError) as exc:
        raise IoError(f"corrupt compressed data in entry '{r.name}': {exc}") from exc
    except (NotImplementedError, RuntimeError, ValueError) as exc:  # guarded above; belt and braces
        raise ZipError(f"cannot read entry '{r.name}': {exc}") from exc
