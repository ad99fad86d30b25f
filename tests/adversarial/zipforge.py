"""Forge ZIP archives byte by byte, including every malformed layout the decoder must reject.

``Entry`` describes one file: its content and every header field, each of which
can be overridden independently in the local header and in the central record.
``forge`` lays entries out back to back (or as told), writes the central
directory and the EOCD, and lets a test override any EOCD field or inject bytes
anywhere. Nothing here validates anything: producing broken archives is the point.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field, replace

LOCAL_SIG = 0x04034B50
CENTRAL_SIG = 0x02014B50
EOCD_SIG = 0x06054B50
DD_SIG = 0x08074B50
ZIP64_EOCD_SIG = 0x06064B50
ZIP64_LOCATOR_SIG = 0x07064B50

REGULAR = 0o100644 << 16
DIRECTORY = (0o040755 << 16) | 0x10
SYMLINK = 0o120777 << 16
FIFO = 0o010644 << 16
CHAR_DEVICE = 0o020644 << 16


def deflate(data: bytes, level: int = 6) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def local_header(
    name: bytes,
    *,
    version: int = 20,
    flags: int = 0,
    method: int = 8,
    time: int = 0,
    date: int = 0x21,
    crc: int = 0,
    csize: int = 0,
    usize: int = 0,
    extra: bytes = b"",
    signature: int = LOCAL_SIG,
) -> bytes:
    return (
        struct.pack(
            "<IHHHHHIIIHH", signature, version, flags, method, time, date, crc, csize, usize, len(name), len(extra)
        )
        + name
        + extra
    )


def central_record(
    name: bytes,
    *,
    made_by: int = (3 << 8) | 20,
    version: int = 20,
    flags: int = 0,
    method: int = 8,
    time: int = 0,
    date: int = 0x21,
    crc: int = 0,
    csize: int = 0,
    usize: int = 0,
    extra: bytes = b"",
    comment: bytes = b"",
    disk_start: int = 0,
    internal_attr: int = 0,
    external_attr: int = REGULAR,
    offset: int = 0,
    signature: int = CENTRAL_SIG,
) -> bytes:
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            signature, made_by, version, flags, method, time, date, crc, csize, usize,
            len(name), len(extra), len(comment), disk_start, internal_attr, external_attr, offset,
        )
        + name
        + extra
        + comment
    )


def eocd(
    *,
    disk: int = 0,
    cd_disk: int = 0,
    disk_entries: int = 0,
    total_entries: int = 0,
    cd_size: int = 0,
    cd_offset: int = 0,
    comment: bytes = b"",
    comment_len: int | None = None,
) -> bytes:
    return (
        struct.pack(
            "<IHHHHIIH", EOCD_SIG, disk, cd_disk, disk_entries, total_entries, cd_size, cd_offset,
            len(comment) if comment_len is None else comment_len,
        )
        + comment
    )


def zip64_eocd_record(*, entries: int, cd_size: int, cd_offset: int) -> bytes:
    # signature, size of the rest (44), made by, needed, disk, cd disk, entries on disk, total, cd size, cd offset
    return struct.pack("<IQHHIIQQQQ", ZIP64_EOCD_SIG, 44, 45, 45, 0, 0, entries, entries, cd_size, cd_offset)


def zip64_locator(*, record_offset: int) -> bytes:
    return struct.pack("<IIQI", ZIP64_LOCATOR_SIG, 0, record_offset, 1)


@dataclass
class Entry:
    """One file. ``None`` fields default to the values computed from ``data``."""

    name: bytes | str
    data: bytes = b""
    method: int = 8
    flags: int = 0
    payload: bytes | None = None  # the bytes written after the local header (default: compressed data)
    crc: int | None = None
    csize: int | None = None  # central compressed size (default: len(payload))
    usize: int | None = None  # central declared size (default: len(data))
    external_attr: int = REGULAR
    made_by: int = (3 << 8) | 20
    disk_start: int = 0
    offset: int | None = None  # central local-header offset (default: where the header was written)
    central_name: bytes | None = None
    central_extra: bytes = b""
    # local header overrides
    local_name: bytes | None = None
    local_flags: int | None = None
    local_method: int | None = None
    local_crc: int | None = None
    local_csize: int | None = None
    local_usize: int | None = None
    local_extra: bytes = b""
    local_signature: int = LOCAL_SIG
    data_descriptor: bytes = b""  # raw bytes written right after the payload
    after: bytes = b""  # raw bytes after the entry (a gap)
    write_local: bool = True  # False: only a central record (point ``offset`` somewhere)

    def raw_name(self) -> bytes:
        return self.name if isinstance(self.name, bytes) else self.name.encode("utf-8")

    def encoded_payload(self) -> bytes:
        if self.payload is not None:
            return self.payload
        return deflate(self.data) if self.method == 8 else self.data

    def with_(self, **changes: object) -> Entry:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass
class Layout:
    prefix: bytes = b""  # before the first local header
    between: bytes = b""  # between the central directory and the EOCD
    comment: bytes = b""
    trailing: bytes = b""  # after the EOCD
    eocd_overrides: dict[str, int] = field(default_factory=dict)


def forge(entries: list[Entry], layout: Layout | None = None, **eocd_overrides: int) -> bytes:
    """Lay out ``entries`` and return the archive bytes.

    Offsets in the central directory are absolute positions in the returned bytes
    (``prefix`` included), unless an entry overrides ``offset``.
    """
    layout = layout or Layout()
    parts = [layout.prefix]
    pos = len(layout.prefix)
    central = []
    for e in entries:
        name = e.raw_name()
        payload = e.encoded_payload()
        crc = zlib.crc32(e.data) if e.crc is None else e.crc
        csize = len(payload) if e.csize is None else e.csize
        usize = len(e.data) if e.usize is None else e.usize
        here = pos
        if e.write_local:
            header = local_header(
                name if e.local_name is None else e.local_name,
                flags=e.flags if e.local_flags is None else e.local_flags,
                method=e.method if e.local_method is None else e.local_method,
                crc=crc if e.local_crc is None else e.local_crc,
                csize=csize if e.local_csize is None else e.local_csize,
                usize=usize if e.local_usize is None else e.local_usize,
                extra=e.local_extra,
                signature=e.local_signature,
            )
            chunk = header + payload + e.data_descriptor + e.after
            parts.append(chunk)
            pos += len(chunk)
        central.append(
            central_record(
                name if e.central_name is None else e.central_name,
                made_by=e.made_by,
                flags=e.flags,
                method=e.method,
                crc=crc,
                csize=csize,
                usize=usize,
                extra=e.central_extra,
                disk_start=e.disk_start,
                external_attr=e.external_attr,
                offset=here if e.offset is None else e.offset,
            )
        )
    cd = b"".join(central)
    fields = {
        "disk_entries": len(entries),
        "total_entries": len(entries),
        "cd_size": len(cd),
        "cd_offset": pos,
        "comment": layout.comment,
    }
    fields.update(layout.eocd_overrides)
    fields.update(eocd_overrides)
    return b"".join(parts) + cd + layout.between + eocd(**fields) + layout.trailing  # type: ignore[arg-type]


def data_descriptor(data: bytes, payload: bytes, *, signature: bool = True) -> bytes:
    fields = struct.pack("<III", zlib.crc32(data), len(payload), len(data))
    return (struct.pack("<I", DD_SIG) + fields) if signature else fields


def zeros_deflate(size: int, chunk: int = 1 << 20) -> bytes:
    """A raw deflate stream of ``size`` zero bytes, built in O(size / chunk) time.

    Each chunk is compressed after a full flush, which resets the compressor, so
    every full chunk compresses to the same bytes and the stream can be built by
    repetition: a gigabyte bomb costs about a megabyte and a millisecond.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(b"\0" * chunk) + c.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(size, chunk)
    tail_c = zlib.compressobj(9, zlib.DEFLATED, -15)
    # The tail restarts a fresh compressor: after a full flush the decoder needs no history.
    tail = tail_c.compress(b"\0" * rest) + tail_c.flush()
    return block * full + tail


def overlap_bomb(n_files: int, kernel_size: int) -> bytes:
    """A Fifield-style overlapping zip bomb: every file's data contains all later files.

    File i's compressed data is a non-final stored deflate block that quotes file
    i+1's local header, followed by file i+1's data; the last file holds a kernel
    of zeros. Every central record is individually consistent (names, CRCs and
    sizes all match); only the overlapping spans give it away.
    """
    kernel = deflate(b"\0" * kernel_size, 9)
    kernel_content = b"\0" * kernel_size
    names = [f"f{i:04d}".encode() for i in range(n_files)]
    headers: list[bytes] = [b""] * n_files
    fields: list[tuple[int, int, int]] = [(0, 0, 0)] * n_files  # crc, csize, usize
    quoted_suffix = b""  # LH_{i+1} + ... + LH_{n-1}: what file i inflates to before the kernel
    csize = len(kernel)
    for i in range(n_files - 1, -1, -1):
        crc = zlib.crc32(kernel_content, zlib.crc32(quoted_suffix))
        fields[i] = (crc, csize, len(quoted_suffix) + kernel_size)
        headers[i] = local_header(names[i], crc=crc, csize=csize, usize=fields[i][2])
        quoted_suffix = headers[i] + quoted_suffix
        csize += 5 + len(headers[i])  # the previous file also carries this quote and its header
    parts = []
    for i in range(n_files):
        parts.append(headers[i])
        if i + 1 < n_files:
            quoted = headers[i + 1]
            parts.append(b"\x00" + struct.pack("<HH", len(quoted), len(quoted) ^ 0xFFFF))
    body = b"".join(parts) + kernel
    central = []
    offset = 0
    for i in range(n_files):
        crc, size_c, size_u = fields[i]
        central.append(central_record(names[i], crc=crc, csize=size_c, usize=size_u, offset=offset))
        offset += len(headers[i]) + 5  # the next header follows this one and its quote prefix
    cd = b"".join(central)
    return body + cd + eocd(disk_entries=n_files, total_entries=n_files, cd_size=len(cd), cd_offset=len(body))
