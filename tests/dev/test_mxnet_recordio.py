"""RecordIO byte compatibility, checked against MXNet 1.9.1 itself.

MXNet runs on Python <= 3.9 with numpy < 1.24, so the check drives an interpreter that has it:

    python3.8 -m venv /tmp/mx38 && /tmp/mx38/bin/pip install mxnet==1.9.1 "numpy<1.24"
    DETECTCTL_MXNET_PYTHON=/tmp/mx38/bin/python pytest -m dev tests/dev/test_mxnet_recordio.py
"""

import json
import os
import subprocess

import numpy as np
import pytest

from algorithm.data.sample import make_sample
from algorithm.data.sources import RecordIOSource
from detectctl.datasets.synth import synth_image
from detectctl.datasets.writers import open_writer

pytestmark = pytest.mark.dev
MXNET_PYTHON = os.environ.get("DETECTCTL_MXNET_PYTHON")
if not MXNET_PYTHON:
    pytest.skip("set DETECTCTL_MXNET_PYTHON to a Python with mxnet 1.9.1", allow_module_level=True)

READ = r"""
import json, sys
import numpy as np
import mxnet as mx
rec = mx.recordio.MXIndexedRecordIO(sys.argv[1] + ".idx", sys.argv[1] + ".rec", "r")
out = []
for key in sorted(rec.keys):
    header, img = mx.recordio.unpack(rec.read_idx(key))
    out.append({"key": int(key), "flag": int(header.flag),
                "label": np.asarray(header.label).tolist(),
                "shape": list(mx.image.imdecode(img).shape)})
it = mx.image.ImageDetIter(batch_size=2, data_shape=(3, 32, 32), path_imgrec=sys.argv[1] + ".rec",
                           path_imgidx=sys.argv[1] + ".idx")
out.append(list(it.next().label[0].shape))
print(json.dumps(out))
"""

WRITE = r"""
import struct, sys
import numpy as np
import mxnet as mx
rec = mx.recordio.MXIndexedRecordIO(sys.argv[1] + ".idx", sys.argv[1] + ".rec", "w")
magic = struct.pack("<I", 0xced7230a)
for i in range(3):
    label = np.array([2, 6, i, 0.1, 0.2, 0.5, 0.6, 0, 1, 0.3, 0.3, 0.9, 0.8, 1], np.float32)
    body = b"IMAGE" + b"\0\0\0" + magic * (i + 1) + b"tail" * 3  # magic at aligned offsets
    rec.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, label, i, 0), body))
rec.close()
"""


def _mx(script, *args):
    result = subprocess.run([MXNET_PYTHON, "-c", script, *args], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_mxnet_reads_what_we_write(tmp_path):
    writer = open_writer("recordio", str(tmp_path / "ours.rec"), classes=["a", "b", "c"])
    expected = []
    index = 0
    while len(expected) < 4:
        # MXNet's ImageDetIter refuses records without objects: keep images that have some.
        image, rows = synth_image(index, 3, 3, (64, 48))
        index += 1
        if not rows:
            continue
        i = len(expected)
        sample = make_sample(f"img{i}.jpg", rows)
        writer.add(sample, image, f"img{i}.jpg", 64, 48)
        expected.append(rows)
    writer.close()
    records = json.loads(_mx(READ, str(tmp_path / "ours")))
    detiter_label = records.pop()
    assert detiter_label[0] == 2 and detiter_label[2] == 5  # [batch, objects, 5]
    for record, rows in zip(records, expected):
        assert record["flag"] == len(record["label"]) == 2 + 5 * len(rows)
        assert record["label"][:2] == [2, 5]
        got = np.asarray(record["label"][2:]).reshape(-1, 5)
        np.testing.assert_allclose(got, np.asarray(rows, np.float64), atol=1e-6)
        assert record["shape"] == [48, 64, 3]


def test_we_read_what_mxnet_writes_including_multi_part_records(tmp_path):
    _mx(WRITE, str(tmp_path / "theirs"))
    source = RecordIOSource(str(tmp_path / "theirs.rec"))
    assert len(source) == 3 and not source.problems
    magic = (0xced7230a).to_bytes(4, "little")
    for i in range(3):
        sample = source[i]
        assert sample.labels.tolist() == [i, 1]
        assert sample.difficult.tolist() == [False, True]
        np.testing.assert_allclose(sample.boxes, [[0.1, 0.2, 0.5, 0.6], [0.3, 0.3, 0.9, 0.8]],
                                   atol=1e-6)
        assert sample.image_bytes == b"IMAGE\0\0\0" + magic * (i + 1) + b"tail" * 3
