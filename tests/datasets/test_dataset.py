"""The torch Dataset: items, collate, sharding across ranks and workers."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from algorithm.data import build_dataset, collate
from algorithm.data.dataset import DetectionDataset
from algorithm.data.sharding import shard_indices, shard_length
from tests.datasets.support import write


def test_items_have_the_documented_shapes_and_types(rec, samples):
    dataset = build_dataset(rec, "recordio", 64, train=True, seed=1)
    assert dataset.classes == ["circle", "square", "triangle"]
    image, boxes, labels, difficult = dataset[1]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert boxes.dtype == torch.float32 and boxes.shape[1] == 4
    assert labels.dtype == torch.int64 and difficult.dtype == torch.bool
    assert len(boxes) == len(labels) == len(difficult)


def test_max_zoom_out_bounds_how_far_objects_shrink(rec, samples):
    shrink = {}
    for zoom in (1.0, 2.0):
        dataset = build_dataset(rec, "recordio", 64, train=True, seed=1, max_zoom_out=zoom)
        assert dataset.augment.max_zoom == zoom
        # zoom out every image and never crop, so that only the zoom-out changes a box's width
        dataset.augment.p_zoom, dataset.augment.crop_min_ious = 1.0, (None,)
        shrink[zoom] = np.concatenate([
            (dataset[i][1][:, 2] - dataset[i][1][:, 0]).numpy()
            / (sample.boxes[:, 2] - sample.boxes[:, 0])
            for i, (sample, _) in enumerate(samples) if len(sample.boxes)])
    np.testing.assert_allclose(shrink[1.0], 1.0, atol=1e-4)
    assert shrink[2.0].min() >= 0.5 - 1e-4 and shrink[2.0].max() <= 1.0 + 1e-4
    assert shrink[2.0].min() < 0.9  # it did zoom out


def test_evaluation_items_are_rgb_in_unit_range(rec, samples):
    from PIL import Image

    dataset = build_dataset(rec, "recordio", 32, train=False)
    image, boxes, labels, _ = dataset[0]
    sample, data = samples[0]
    import io

    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize(
        (32, 32), Image.BILINEAR), np.float32) / 255
    assert abs(image.permute(1, 2, 0).numpy() - expected).mean() < 0.05
    np.testing.assert_allclose(boxes.numpy(), sample.boxes, atol=1e-6)
    assert labels.tolist() == sample.labels.tolist()


def test_collate_pads_targets_with_minus_one():
    items = [(torch.zeros(3, 8, 8), torch.rand(2, 4), torch.tensor([0, 1]),
              torch.tensor([False, True])),
             (torch.ones(3, 8, 8), torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64),
              torch.zeros(0, dtype=torch.bool))]
    images, boxes, labels, difficult = collate(items)
    assert images.shape == (2, 3, 8, 8)
    assert boxes.shape == (2, 2, 4) and labels.tolist() == [[0, 1], [-1, -1]]
    assert difficult.tolist() == [[False, True], [False, False]]
    empty = collate([items[1]])
    assert empty[1].shape == (1, 1, 4) and empty[2].tolist() == [[-1]]


@pytest.mark.parametrize("length, world", [(10, 3), (7, 1), (2, 4), (16, 4)])
def test_shards_cover_every_image_exactly_once_per_epoch(length, world):
    orders = []
    for epoch in range(3):
        shards = [shard_indices(length, r, world, epoch, seed=9) for r in range(world)]
        merged = np.concatenate(shards)
        assert sorted(merged.tolist()) == list(range(length))
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
        assert [len(s) for s in shards] == [shard_length(length, r, world) for r in range(world)]
        orders.append(shards[0].tolist())
    if length > 4:
        assert orders[0] != orders[1]  # reshuffled every epoch


def test_ranks_and_dataloader_workers_partition_an_epoch(rec, samples):
    seen = []
    for rank in range(2):
        dataset = build_dataset(rec, "recordio", 32, train=False, seed=4, rank=rank,
                                world_size=2)
        dataset.shuffle = True
        dataset.set_epoch(1)
        loader = DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=collate)
        count = 0
        for images, boxes, labels, _ in loader:
            count += len(images)
            for b, lab in zip(boxes, labels):
                seen.append(tuple(lab[lab >= 0].tolist()) + tuple(b[lab >= 0].flatten().tolist()))
        assert count == len(dataset)
    expected = [tuple(s.labels.tolist()) + tuple(s.boxes.flatten().tolist()) for s, _ in samples]
    assert sorted(seen) == sorted(expected)


def test_augmentation_depends_on_sample_not_on_worker(rec):
    dataset = build_dataset(rec, "recordio", 32, train=True, seed=2)
    dataset.set_epoch(3)
    direct = [dataset[i][0] for i in range(3)]
    again = [dataset[i][0] for i in range(3)]
    for a, b in zip(direct, again):
        assert torch.equal(a, b)
    dataset.set_epoch(4)
    assert not torch.equal(dataset[0][0], direct[0])


def test_sagemaker_json_channels(tmp_path, samples):
    write("sagemaker-json", str(tmp_path / "ds"), samples[:3])
    os.rename(tmp_path / "ds" / "images", tmp_path / "train")
    os.rename(tmp_path / "ds" / "annotations", tmp_path / "train_annotation")
    dataset = build_dataset(str(tmp_path / "train"), "sagemaker-json", 32)
    assert isinstance(dataset, DetectionDataset) and len(dataset) == 3
    assert len(list(dataset)) == 3


def test_data_with_problems_is_refused(tmp_path, samples):
    write("sagemaker-json", str(tmp_path / "ds"), samples[:2])
    (tmp_path / "ds" / "annotations" / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="1 problem"):
        build_dataset(str(tmp_path / "ds"), "sagemaker-json", 32)
