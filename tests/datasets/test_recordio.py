"""RecordIO bytes, checked against hand-built fixtures of what MXNet (dmlc-core) writes."""

from __future__ import annotations

import io
import os
import struct

import numpy as np
import pytest

from algorithm.data import recordio
from algorithm.data.recordio import MAGIC_BYTES, IRHeader, RecordIOError
from algorithm.data.sources import RecordIOSource

M = MAGIC_BYTES  # b"\x0a\x23\xd7\xce"


def head(cflag: int, length: int) -> bytes:
    """What dmlc's RecordIOWriter writes before each part: magic, then (cflag << 29) | length."""
    return b"\x0a\x23\xd7\xce" + struct.pack("<I", (cflag << 29) | length)


def test_magic_is_little_endian_0xced7230a():
    assert struct.unpack("<I", M) == (0xCED7230A,)


def test_a_plain_record_is_header_payload_and_zero_padding():
    assert recordio.frame(b"abcde") == head(0, 5) + b"abcde\0\0\0"
    assert recordio.frame(b"abcd") == head(0, 4) + b"abcd"
    assert recordio.frame(b"") == head(0, 0)


def test_magic_at_aligned_offsets_splits_the_record_into_parts():
    payload = b"abcd" + M + b"xy" + M + b"12" + M + b"tail!"
    # Aligned magic words at 4 and 16 split; the one at 10 is not aligned and stays.
    expected = (head(1, 4) + b"abcd"
                + head(2, 8) + b"xy" + M + b"12"
                + head(3, 5) + b"tail!\0\0\0")
    assert recordio.frame(payload) == expected
    assert recordio.read_record(io.BytesIO(expected)) == payload


def test_magic_at_the_start_and_at_the_end():
    assert recordio.frame(M + b"abcd") == head(1, 0) + head(3, 4) + b"abcd"
    assert recordio.frame(b"abcd" + M) == head(1, 4) + b"abcd" + head(3, 0)
    assert recordio.frame(M + M) == head(1, 0) + head(2, 0) + head(3, 0)
    for payload in (M + b"abcd", b"abcd" + M, M + M, M):
        assert recordio.read_record(io.BytesIO(recordio.frame(payload))) == payload


def test_magic_in_the_unaligned_tail_is_not_split():
    payload = b"abcdef" + M  # magic at offset 6: not aligned
    assert recordio.frame(payload) == head(0, 10) + payload + b"\0\0"


def test_reading_a_stream_of_records_as_mxnet_writes_it():
    # Three records as MXNet writes them, the second one split in three parts.
    stream = (head(0, 3) + b"one\0"
              + head(1, 4) + b"AAAA" + head(2, 4) + b"BBBB" + head(3, 1) + b"C\0\0\0"
              + head(0, 0))
    records = list(recordio.iter_records(io.BytesIO(stream)))
    assert [r for _, r in records] == [b"one", b"AAAA" + M + b"BBBB" + M + b"C", b""]
    assert [offset for offset, _ in records] == [0, 12, 48]


@pytest.mark.parametrize("data, message", [
    (head(0, 8) + b"abc", "truncated"),
    (b"\x01\x02\x03\x04" + struct.pack("<I", 4) + b"abcd", "bad magic"),
    (head(1, 4) + b"abcd", "ends inside a multi-part record"),
    (head(2, 4) + b"abcd", "unexpected continuation flag"),
    (head(0, 4)[:6], "truncated record header"),
])
def test_bad_bytes_are_reported_with_their_offset(data, message):
    with pytest.raises(RecordIOError, match=message):
        recordio.read_record(io.BytesIO(data))


def test_image_header_is_mxnet_pack_format():
    label = np.array([2, 5, 1, 0.1, 0.2, 0.3, 0.4], np.float32)
    payload = recordio.pack(IRHeader(0, label, 7, 0), b"IMG")
    # <IfQQ: flag = label length, label = 0 when an array follows, id, id2.
    assert payload[:24] == struct.pack("<IfQQ", 7, 0.0, 7, 0)
    assert payload[24:52] == label.astype("<f4").tobytes()
    assert payload[52:] == b"IMG"
    header, rest = recordio.unpack(payload)
    assert (header.flag, header.id, header.id2, rest) == (7, 7, 0, b"IMG")
    np.testing.assert_array_equal(header.label, label)


def test_scalar_label_header():
    payload = recordio.pack(IRHeader(0, 3.0, 1, 2), b"x")
    assert payload == struct.pack("<IfQQ", 0, 3.0, 1, 2) + b"x"
    header, rest = recordio.unpack(payload)
    assert header.label == 3.0 and header.flag == 0 and rest == b"x"


def test_detection_labels_with_a_wider_header_and_difficult_column():
    rows = recordio.parse_detection_label(
        np.array([4, 6, 500, 375, 1, .1, .2, .3, .4, 1, 0, .5, .5, .6, .6, 0], np.float32))
    assert rows.shape == (2, 6)
    np.testing.assert_allclose(rows[0], [1, .1, .2, .3, .4, 1], rtol=1e-6)
    with pytest.raises(ValueError, match="not a multiple"):
        recordio.parse_detection_label(np.array([2, 5, 1, .1, .2], np.float32))
    with pytest.raises(ValueError, match="object width"):
        recordio.parse_detection_label(np.array([2, 3, 1, .1, .2], np.float32))


def test_writer_leaves_rec_idx_lst_and_classes(rec, samples):
    base = rec[:-4]
    with open(base + ".idx") as f:
        idx = [line.rstrip("\n").split("\t") for line in f]
    assert [k for k, _ in idx] == [str(i) for i in range(len(samples))]
    with open(rec, "rb") as f:
        for key, offset in idx:
            f.seek(int(offset))
            header, _ = recordio.unpack(recordio.read_record(f))
            assert header.id == int(key)
    with open(base + ".lst") as f:
        first = f.readline().rstrip("\n").split("\t")
    # index, header width 2, object width, objects..., path (im2rec's detection .lst)
    assert first[0] == "0" and first[1] == "2" and first[2] in ("5", "6")
    assert first[-1] == "img0.jpg"
    assert os.path.isfile(os.path.join(os.path.dirname(rec), "classes.json"))


def test_difficult_objects_are_written_with_object_width_6(rec, samples):
    source = RecordIOSource(rec)
    assert source[1].difficult.tolist() == samples[1][0].difficult.tolist()
    with open(rec[:-4] + ".lst") as f:
        lst = f.read().splitlines()
    assert lst[1].split("\t")[2] == "6"
    assert lst[0].split("\t")[2] == "5"


def test_multi_part_records_through_the_indexed_reader(tmp_path):
    # Image bytes that hold the magic word at aligned offsets of the payload force a split.
    label = recordio.detection_label([[0, 0.1, 0.1, 0.5, 0.5]], 5)
    image = b"\xff\xd8" + b"\0\0" + M * 3 + b"rest"
    payload = recordio.pack(IRHeader(0, label, 0, 0), image)
    assert payload.find(M) % 4 == 0
    path = tmp_path / "multi.rec"
    other = recordio.pack(IRHeader(0, label, 1, 0), b"plain")
    path.write_bytes(recordio.frame(payload) + recordio.frame(other))
    source = RecordIOSource(str(path))  # no .idx: found by a scan
    assert not source.problems and len(source) == 2
    assert source[0].image_bytes == image
    assert source[1].image_bytes == b"plain"
    (tmp_path / "multi.idx").write_text(f"0\t0\n1\t{len(recordio.frame(payload))}\n")
    assert not RecordIOSource(str(path)).problems
