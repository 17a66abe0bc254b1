"""MXNet RecordIO, byte-compatible with ``mxnet.recordio`` and ``tools/im2rec.py``.

Framing (dmlc-core ``RecordIOWriter``): each record is the little-endian magic ``0xced7230a``,
then ``lrecord = (cflag << 29) | length``, then ``length`` payload bytes padded with zeros to a
multiple of 4. A payload holding the magic word at a 4-byte-aligned offset is split there; the
magic word itself is dropped and the parts are written with cflag 1 (first), 2 (middle), 3
(last); the reader puts the magic word back between parts. cflag 0 is a whole record.

Payload (``mxnet.recordio.pack``): the 24-byte image header ``IRHeader`` (``<IfQQ``: flag, label,
id, id2); when the label is an array, ``flag`` is its length and the float32 labels follow the
header. Detection labels are ``[A, B, header extras..., objects...]``: A = header width (2), B =
object width (5 or 6), each object ``[class, xmin, ymin, xmax, ymax(, difficult)]`` normalised.
Then the encoded image.

``.idx`` files hold ``key<TAB>offset`` lines (offset of the record's first part); ``.lst`` files
(im2rec's input) hold ``index<TAB>label...<TAB>path`` lines. No torch, no MXNet.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
IR_FORMAT = "<IfQQ"
IR_SIZE = struct.calcsize(IR_FORMAT)  # 24
LENGTH_MASK = (1 << 29) - 1


class IRHeader(NamedTuple):
    """``mxnet.recordio.IRHeader``: flag, label, id, id2."""

    flag: int
    label: object
    id: int
    id2: int


class RecordIOError(ValueError):
    """Bytes that are not valid RecordIO; ``offset`` is where reading stopped."""

    def __init__(self, message: str, offset: int):
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


# --- framing -----------------------------------------------------------------------------------

def frame(payload: bytes) -> bytes:
    """The bytes dmlc's ``RecordIOWriter::WriteRecord`` writes for one payload."""
    if len(payload) > LENGTH_MASK:
        raise ValueError(f"record of {len(payload)} bytes exceeds RecordIO's 2**29 - 1")
    out = []
    start = 0
    aligned_end = len(payload) & ~3
    pos = payload.find(MAGIC_BYTES, 0, aligned_end)
    while pos != -1:
        if pos % 4 == 0:
            out.append(_part(1 if start == 0 else 2, payload[start:pos]))
            start = pos + 4
            pos = payload.find(MAGIC_BYTES, start, aligned_end)
        else:
            pos = payload.find(MAGIC_BYTES, pos + 1, aligned_end)
    out.append(_part(3 if start != 0 else 0, payload[start:]))
    return b"".join(out)


def _part(cflag: int, data: bytes) -> bytes:
    pad = (-len(data)) % 4
    return struct.pack("<II", MAGIC, (cflag << 29) | len(data)) + data + b"\0" * pad


def read_record(stream: BinaryIO, offset: int = 0) -> Optional[bytes]:
    """Read one whole record (all its parts) from ``stream``; None at a clean end of stream.

    ``offset`` is only for error messages. Raises :class:`RecordIOError` on bad bytes.
    """
    return _read_record(stream, offset)[0]


def _read_record(stream: BinaryIO, offset: int) -> Tuple[Optional[bytes], int]:
    chunks: List[bytes] = []
    pos = offset
    while True:
        head = _read_exact(stream, 8)
        if not head:
            if chunks:
                raise RecordIOError("stream ends inside a multi-part record", pos)
            return None, 0
        if len(head) < 8:
            raise RecordIOError("truncated record header", pos)
        magic, lrec = struct.unpack("<II", head)
        if magic != MAGIC:
            raise RecordIOError(f"bad magic 0x{magic:08x} (not a RecordIO record)", pos)
        cflag, length = lrec >> 29, lrec & LENGTH_MASK
        if cflag > 3 or (not chunks and cflag in (2, 3)) or (chunks and cflag in (0, 1)):
            raise RecordIOError(f"unexpected continuation flag {cflag}", pos)
        padded = (length + 3) & ~3
        body = _read_exact(stream, padded)
        if len(body) < padded:
            raise RecordIOError(f"record truncated: {len(body)} of {padded} bytes", pos)
        pos += 8 + padded
        chunks.append(body[:length])
        if cflag in (0, 3):
            return MAGIC_BYTES.join(chunks), pos - offset


# Bytes asked of a stream at once: a length read from a record header (up to 512 MiB) never sizes
# a buffer before that many bytes have arrived.
READ_CHUNK = 1 << 20


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    """``n`` bytes, or fewer at the end of the stream, read in chunks of at most READ_CHUNK."""
    parts = []
    got = 0
    while got < n:
        more = stream.read(min(n - got, READ_CHUNK))
        if not more:
            break
        parts.append(more)
        got += len(more)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def iter_records(stream: BinaryIO) -> Iterator[Tuple[int, bytes]]:
    """Yield ``(offset, payload)`` for every record of a stream, start to end."""
    offset = stream.tell() if stream.seekable() else 0
    while True:
        payload, size = _read_record(stream, offset)
        if payload is None:
            return
        yield offset, payload
        offset += size


# --- image records ------------------------------------------------------------------------------

def pack(header: IRHeader, data: bytes) -> bytes:
    """``mxnet.recordio.pack``: header (+ float32 label array) + data."""
    label = header.label
    if isinstance(label, (int, float, np.integer, np.floating)):
        head = struct.pack(IR_FORMAT, 0, float(label), header.id, header.id2)
        return head + data
    array = np.asarray(label, dtype="<f4").ravel()
    return struct.pack(IR_FORMAT, array.size, 0.0, header.id, header.id2) + array.tobytes() + data


def unpack(payload: bytes) -> Tuple[IRHeader, bytes]:
    """``mxnet.recordio.unpack``: the header (label an ndarray when flag > 0) and the rest."""
    if len(payload) < IR_SIZE:
        raise ValueError(f"record of {len(payload)} bytes is shorter than the 24-byte header")
    flag, label, rid, rid2 = struct.unpack_from(IR_FORMAT, payload)
    rest = payload[IR_SIZE:]
    if flag > 0:
        if len(rest) < 4 * flag:
            raise ValueError(f"header announces {flag} labels but the record is too short")
        label = np.frombuffer(rest, dtype="<f4", count=flag).astype(np.float32)
        rest = rest[4 * flag:]
    return IRHeader(flag, label, rid, rid2), rest


def detection_label(objects: Sequence[Sequence[float]], object_width: int) -> np.ndarray:
    """The flat label ``[2, B, objects...]`` for rows ``[class, xmin, ymin, xmax, ymax(, d)]``."""
    rows = np.zeros((len(objects), object_width), dtype=np.float32)
    for i, obj in enumerate(objects):
        rows[i, :min(len(obj), object_width)] = obj[:object_width]
    return np.concatenate([np.array([2, object_width], dtype=np.float32), rows.ravel()])


def parse_detection_label(label: np.ndarray) -> np.ndarray:
    """Rows [M, B] of a flat detection label ``[A, B, extras..., objects...]``.

    Raises ``ValueError`` saying what is wrong with a malformed label.
    """
    label = np.asarray(label, dtype=np.float32).ravel()
    if label.size < 2:
        raise ValueError(f"detection label needs [header_width, object_width, ...], got "
                         f"{label.size} value(s)")
    header_width, object_width = float(label[0]), float(label[1])
    # Both widths are compared with the label's own size before use: NaN, infinity or a huge
    # width is refused, never turned into an integer or a shape.
    if not (2 <= header_width <= label.size and header_width.is_integer()):
        raise ValueError(f"bad label header width {header_width:g} (an integer from 2 to the "
                         f"label's {label.size} values)")
    if not (5 <= object_width <= max(5, label.size) and object_width.is_integer()):
        raise ValueError(f"bad label object width {object_width:g} (needs an integer >= 5)")
    header, width = int(header_width), int(object_width)
    body = label[header:]
    if body.size % width:
        raise ValueError(f"{body.size} label values are not a multiple of the object width "
                         f"{width}")
    if not body.size and header - 2 >= width:
        raise ValueError(f"label header width {header} leaves no objects: its {header - 2} "
                         f"extra values would hold {(header - 2) // width} object(s) of width "
                         f"{width} (header width is 2 for MXNet's im2rec)")
    return body.reshape(-1, width)


def unpack_detection(payload: bytes) -> Tuple[IRHeader, np.ndarray, bytes]:
    """Header, object rows [M, B] and encoded image bytes of a detection record."""
    header, image = unpack(payload)
    if header.flag == 0:
        raise ValueError("record has a scalar label, not a detection label array")
    return header, parse_detection_label(header.label), image


# --- .idx and .lst -------------------------------------------------------------------------------

def read_idx(path: str) -> List[Tuple[int, int]]:
    """``(key, offset)`` pairs of an ``.idx`` file; ``ValueError`` names the bad line."""
    from algorithm.data.fields import read_text

    entries = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split("\t")
        try:
            if len(parts) != 2 or max(len(p) for p in parts) > 20:
                raise ValueError
            entries.append((int(parts[0]), int(parts[1])))
        except ValueError:
            raise ValueError(f"line {number}: expected 'key<TAB>offset', got "
                             f"{line.strip()[:60]!r}") from None
    return entries


def lst_line(index: int, label: np.ndarray, path: str) -> str:
    """One im2rec ``.lst`` line: ``index<TAB>labels...<TAB>path``."""
    values = "\t".join(_format_label_value(v) for v in np.asarray(label).ravel())
    return f"{index}\t{values}\t{path}\n"


def _format_label_value(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:.6f}"
