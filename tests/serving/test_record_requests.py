"""Batch transform's requests to the handlers: one RecordIO record (framed as in a .rec, or its
payload alone) as the body, JSON lines as the answer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from algorithm import inference
from algorithm.data import recordio
from tests.serving.support import encode, photo


def _record(image: bytes) -> bytes:
    label = recordio.detection_label([[0, 0.1, 0.1, 0.5, 0.5]], 5)
    return recordio.pack(recordio.IRHeader(0, label, 7, 0), image)


def test_a_framed_record_and_a_bare_payload_give_the_image():
    image = encode(photo(), "JPEG")
    payload = _record(image)
    for body in (recordio.frame(payload), payload):
        request = inference.input_fn(body, "application/x-recordio")
        assert request.data == image


@pytest.mark.parametrize("body", [b"\x0a\x23\xd7\xce" + b"\x00" * 3, b"not a record at all"])
def test_a_body_that_is_not_a_record_is_400(body):
    with pytest.raises(inference.RequestError) as info:
        inference.input_fn(body, "application/x-recordio")
    assert info.value.status == 400
    assert "RecordIO" in str(info.value)


def test_json_lines_answers_end_with_a_newline():
    rows = np.array([[1, 0.9, 0.1, 0.2, 0.3, 0.4]], np.float32)
    assert inference.accept_type_of("application/jsonlines") == "application/jsonlines"
    line = inference.output_fn(rows, "application/jsonlines")
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line)["prediction"][0][0] == 1.0
    assert not inference.output_fn(rows, "application/json").endswith("\n")
