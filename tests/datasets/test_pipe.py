"""Pipe mode: records streamed through FIFOs, one pass per epoch, shared by processes."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
from torch.utils.data import DataLoader

from algorithm.data import build_dataset, collate
from algorithm.data.dataset import PipeModeDataset
from algorithm.data.pipe import PipeReader, is_pipe
from algorithm.data.recordio import frame, unpack
from tests.datasets.support import jpeg

fork = multiprocessing.get_context("fork")


@pytest.fixture(autouse=True)
def lock_files_in_tmp_path(tmp_path, monkeypatch):
    """Pipe readers keep their lock files in the temporary directory: this test's, here."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:  # blocks until a reader opens, as SageMaker's writer does
        f.write(data)


def feed(path: str, data: bytes):
    """A writer process (not a thread: forked readers must not inherit the write end)."""
    if not os.path.exists(path):
        os.mkfifo(path)
    process = fork.Process(target=_write, args=(path, data), daemon=True)
    process.start()
    return process


def test_recordio_channel_in_pipe_mode_one_pass_per_epoch(tmp_path, rec, samples):
    channel = str(tmp_path / "train")
    data = Path(rec).read_bytes()
    writers = [feed(f"{channel}_{epoch}", data) for epoch in range(2)]
    assert is_pipe(channel)
    dataset = build_dataset(channel, "recordio", 32, train=False)
    assert isinstance(dataset, PipeModeDataset)
    for epoch in range(2):
        dataset.set_epoch(epoch)
        items = list(dataset)
        assert len(items) == len(samples)
        assert sorted(len(i[2]) for i in items) == sorted(s.num_objects for s, _ in samples)
    for writer in writers:
        writer.join(5)


def test_dataloader_workers_share_one_fifo_and_read_each_sample_once(tmp_path, rec, samples):
    channel = str(tmp_path / "train")
    writer = feed(f"{channel}_0", Path(rec).read_bytes())
    dataset = PipeModeDataset(channel, "recordio", 32, train=False)
    dataset.set_epoch(0)  # opens the FIFO here, so the workers inherit it
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collate)
    labels = []
    for _, _, batch_labels, _ in loader:
        labels.extend(tuple(lab[lab >= 0].tolist()) for lab in batch_labels)
    assert sorted(labels) == sorted(tuple(s.labels.tolist()) for s, _ in samples)
    writer.join(5)


def _read_ids(reader: PipeReader, queue) -> None:
    ids = []
    while True:
        records = reader.read()
        if records is None:
            break
        ids.append(unpack(records[0])[0].id)
    queue.put(ids)


@pytest.mark.parametrize("readers", [1, 3])
def test_processes_sharing_a_fifo_split_the_records_exactly(tmp_path, readers):
    # Records of several sizes, some holding the magic word (multi-part), 200 in all.
    from algorithm.data.recordio import MAGIC_BYTES, IRHeader, pack

    records = [pack(IRHeader(0, 0.0, i, 0), (MAGIC_BYTES * (i % 3)) + os.urandom(i * 37 % 5000))
               for i in range(200)]
    path = str(tmp_path / "fifo")
    writer = feed(path, b"".join(frame(r) for r in records))
    reader = PipeReader(path, lock_path=str(tmp_path / "lock")).open()
    queue = fork.Queue()
    children = [fork.Process(target=_read_ids, args=(reader, queue)) for _ in range(readers)]
    for child in children:
        child.start()
    ids = [i for _ in children for i in queue.get(timeout=30)]
    for child in children:
        child.join(5)
    writer.join(5)
    assert sorted(ids) == list(range(200))


def test_augmented_manifest_in_pipe_mode(tmp_path):
    stream = b""
    for i in range(4):
        label = {"image_size": [{"width": 64, "height": 48, "depth": 3}],
                 "annotations": [{"class_id": i % 2, "left": 8, "top": 8, "width": 16,
                                  "height": 16}] * (i % 3)}
        stream += frame(jpeg(64, 48, seed=i)) + frame(json.dumps(label).encode())
    channel = str(tmp_path / "train")
    writer = feed(f"{channel}_0", stream)
    dataset = build_dataset(channel, "manifest", 32, train=False)
    dataset.set_epoch(0)
    items = list(dataset)
    assert [len(i[2]) for i in items] == [0, 1, 2, 0]
    assert items[1][1].tolist()[0] == pytest.approx([0.125, 8 / 48, 0.375, 0.5])
    writer.join(5)


def test_pipe_mode_refuses_sagemaker_json():
    with pytest.raises(ValueError, match="recordio or manifest"):
        PipeModeDataset("/nonexistent", "sagemaker-json", 32)
