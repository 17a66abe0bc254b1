"""SSD augmentation invariants: boxes stay inside, crops keep centred boxes, flip is an
involution, the same seed gives the same output, images without objects are kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from algorithm.data.augment import (
    FILL_RGB,
    SSDAugmentation,
    boxes_in_patch,
    centres_inside,
    color_matrix,
    hflip_boxes,
)
from algorithm.data.dataset import UINT8_RESIZE, render_torch, to_tensors


def run(augment, sample, data, seed):
    return augment(data, sample.boxes, sample.labels, sample.difficult,
                   np.random.default_rng(seed))


def test_boxes_stay_inside_and_keep_positive_size(samples):
    augment = SSDAugmentation(64)
    for seed in range(60):
        sample, data = samples[seed % len(samples)]
        pixels, boxes, labels, difficult = run(augment, sample, data, seed)
        assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
        assert boxes.shape == (len(labels), 4) and len(difficult) == len(labels)
        assert (boxes >= 0).all() and (boxes <= 1).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert set(labels.tolist()) <= set(sample.labels.tolist())


def test_same_seed_same_output_and_other_seeds_differ(samples):
    sample, data = samples[0]
    augment = SSDAugmentation(64)
    a, b, c = (run(augment, sample, data, s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_crops_keep_the_boxes_whose_centre_is_inside():
    boxes = np.array([[0, 0, 10, 10], [8, 8, 30, 30], [40, 40, 50, 50]], np.float64)
    patch = (4.0, 4.0, 24.0, 24.0)
    keep = centres_inside(boxes, patch)
    assert keep.tolist() == [True, True, False]
    np.testing.assert_allclose(boxes_in_patch(boxes[keep], patch),
                               [[0, 0, 0.3, 0.3], [0.2, 0.2, 1, 1]])
    assert not centres_inside(boxes, (5.0, 5.0, 25.0, 25.0))[0]  # a centre on the edge is out


def test_crop_patches_satisfy_the_min_iou_constraint():
    boxes = np.array([[20, 20, 60, 50], [70, 10, 90, 40]], np.float64)
    for seed in range(200):
        augment = SSDAugmentation(32, crop_min_ious=(0.5,))
        patch = augment._crop(np.random.default_rng(seed), 100.0, 80.0, boxes)
        if patch is None:
            continue
        x0, y0, x1, y1 = patch
        assert 0 <= x0 < x1 <= 100 and 0 <= y0 < y1 <= 80
        assert 0.5 <= (y1 - y0) / (x1 - x0) <= 2
        inside = centres_inside(boxes, patch)
        assert inside.any()
        ix = np.clip(np.minimum(boxes[:, 2], x1) - np.maximum(boxes[:, 0], x0), 0, None)
        iy = np.clip(np.minimum(boxes[:, 3], y1) - np.maximum(boxes[:, 1], y0), 0, None)
        inter = ix * iy
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        iou = inter / (areas + (x1 - x0) * (y1 - y0) - inter)
        assert (iou[inside] >= 0.5).any()


def test_flip_is_an_involution(samples):
    boxes = samples[0][0].boxes
    np.testing.assert_allclose(hflip_boxes(hflip_boxes(boxes)), boxes, atol=1e-7)
    sample, data = samples[0]
    flipped = run(SSDAugmentation(64, p_flip=1.0), sample, data, 3)
    straight = run(SSDAugmentation(64, p_flip=0.0), sample, data, 3)
    np.testing.assert_array_equal(flipped[0], straight[0][:, ::-1])
    np.testing.assert_allclose(hflip_boxes(flipped[1]), straight[1], atol=1e-6)


def test_images_without_objects_are_kept(samples):
    data = samples[0][1]
    empty = np.zeros((0, 4), np.float32)
    for seed in range(20):
        pixels, boxes, labels, _ = SSDAugmentation(48)(
            data, empty, np.zeros(0, np.int64), np.zeros(0, bool), np.random.default_rng(seed))
        assert pixels.shape == (48, 48, 3) and boxes.shape == (0, 4) and len(labels) == 0


def test_evaluation_is_a_plain_resize(samples):
    sample, data = samples[0]
    pixels, boxes, labels, _ = SSDAugmentation(64, train=False)(
        data, sample.boxes, sample.labels, sample.difficult)
    np.testing.assert_allclose(boxes, sample.boxes, atol=1e-7)
    assert labels.tolist() == sample.labels.tolist() and pixels.shape == (64, 64, 3)


def test_zoom_out_fills_with_the_mean_colour(samples):
    sample, data = samples[0]
    augment = SSDAugmentation(64, p_zoom=1.0, max_zoom=4.0, crop_min_ious=(None,),
                              p_photometric=0.0)
    pixels = run(augment, sample, data, 11)[0]
    corners = [pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]]
    assert any(tuple(c) == FILL_RGB for c in corners)


def test_color_matrix_is_identity_for_neutral_factors():
    identity = (1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    recipe = (1.0, 1.0, 1.0, 0.0, True, (0, 1, 2))
    np.testing.assert_allclose(color_matrix(recipe, lambda: [10, 20, 30]), identity, atol=1e-9)
    swap = color_matrix((None, None, None, None, False, (2, 1, 0)), lambda: [0, 0, 0])
    assert swap[:4] == (0.0, 0.0, 1.0, 0.0)


@pytest.mark.skipif(not UINT8_RESIZE, reason="torch without uint8 antialiased resize")
def test_torch_and_pillow_renderers_agree(samples):
    sample, data = samples[2]
    for seed in range(12):
        pillow = SSDAugmentation(64)
        fast = SSDAugmentation(64)
        fast.renderer = render_torch
        a, b = run(pillow, sample, data, seed), run(fast, sample, data, seed)
        np.testing.assert_array_equal(a[1], b[1])
        reference = to_tensors(*a)[0]
        assert isinstance(b[0], torch.Tensor) and b[0].shape == (3, 64, 64)
        # Same geometry, same colours; resampling differs by a grey level or two on average.
        assert (reference - b[0]).abs().mean() < 0.06, seed
