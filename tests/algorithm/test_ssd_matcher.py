"""Matching and box coding."""

import pytest
import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import box_iou

from algorithm.ssd.anchors import DefaultBoxes, generate_default_boxes, grid_of
from algorithm.ssd.boxes import cxcywh_to_xyxy, decode, encode
from algorithm.ssd.layout import layout
from algorithm.ssd.matcher import assign_targets, match, match_targets


def _default_boxes(network="vgg-16", size=300):
    plan = layout(network, size)
    return DefaultBoxes(generate_default_boxes(plan.maps), grid_of(plan.maps))


def _targets(n=6, m=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(n, m, 2, generator=g)
    size = torch.rand(n, m, 2, generator=g) * 0.6 + 0.02
    boxes = torch.cat((centre - size / 2, centre + size / 2), -1).clamp(0, 1)
    labels = torch.randint(0, 20, (n, m), generator=g)
    labels[1, 3:] = -1  # padding
    labels[2] = -1  # an image without objects
    return boxes, labels


def test_encode_decode_round_trip():
    anchors = _default_boxes().boxes
    boxes = cxcywh_to_xyxy(anchors) + torch.tensor([0.01, -0.02, 0.03, 0.05])
    boxes[:, 2:] = torch.max(boxes[:, 2:], boxes[:, :2] + 0.01)
    codes = encode(boxes, anchors)
    torch.testing.assert_close(decode(codes, anchors), boxes, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(encode(cxcywh_to_xyxy(anchors), anchors),
                               torch.zeros_like(anchors), atol=1e-5, rtol=0)


def test_every_ground_truth_gets_its_best_default_box():
    anchors = _default_boxes()
    boxes, labels = _targets()
    matched = match(anchors, boxes, labels)
    iou = box_iou(boxes.view(-1, 4), cxcywh_to_xyxy(anchors.boxes)).view(6, 7, -1)
    for n in range(6):
        for m in range(7):
            if labels[n, m] >= 0:
                assert (matched[n] == m).any(), (n, m)
                assert iou[n, m, matched[n] == m].max() >= iou[n, m].max() - 1e-6
        # Matched default boxes overlap their box by >= 0.5 unless claimed as some box's best.
        positive = matched[n] >= 0
        overlap = iou[n, matched[n][positive], positive.nonzero().squeeze(1)]
        assert (overlap >= 0.5).sum() >= positive.sum() - (labels[n] >= 0).sum()
    assert (matched[2] == -1).all()
    assert (matched[1] < 3).all()


def test_grid_path_equals_dense_path_and_torchvision():
    anchors = _default_boxes()
    boxes, labels = _targets(seed=1)
    fast = match(anchors, boxes, labels)
    assert torch.equal(fast, match(anchors.boxes, boxes, labels))
    matcher = det_utils.SSDMatcher(0.5)
    corners = cxcywh_to_xyxy(anchors.boxes)
    for n in range(boxes.shape[0]):
        real = labels[n] >= 0
        if not real.any():
            continue
        iou = box_iou(boxes[n][real], corners)
        theirs = matcher(iou)
        # Equal but for ties that rounding breaks differently: each box's best overlap is the same.
        assert (theirs != fast[n]).sum() <= 2
        for m in range(int(real.sum())):
            torch.testing.assert_close(iou[m, fast[n] == m].max(), iou[m, theirs == m].max())


def test_padding_degenerate_boxes_and_empty_batches():
    anchors = _default_boxes()
    boxes = torch.tensor([[[0.1, 0.1, 0.1, 0.5], [0.6, 0.6, 0.4, 0.9], [0.2, 0.2, 0.6, 0.6]]])
    labels = torch.tensor([[3, 4, 5]])
    cls_targets, box_targets = assign_targets(anchors, boxes, labels)
    assert set(cls_targets.unique().tolist()) == {0, 6}  # only the real box, label + 1
    assert torch.isfinite(box_targets).all()
    empty = assign_targets(anchors, torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.long))
    assert (empty[0] == 0).all() and (empty[1] == 0).all()


def test_targets_encode_the_matched_box():
    anchors = _default_boxes("mobilenet-v3-large", 128)
    boxes, labels = _targets(seed=2)
    cls_targets, box_targets = assign_targets(anchors, boxes, labels)
    matched = match(anchors, boxes, labels)
    image, anchor = (matched >= 0).nonzero(as_tuple=True)
    slot = matched[image, anchor]
    assert torch.equal(cls_targets[image, anchor], labels[image, slot] + 1)
    torch.testing.assert_close(decode(box_targets[image, anchor], anchors.boxes[anchor]),
                               boxes[image, slot], atol=1e-5, rtol=1e-5)
    assert (cls_targets[matched < 0] == 0).all() and (box_targets[matched < 0] == 0).all()


def _hard_targets(anchors, seed):
    """Boxes from tiny to whole-image, on the edges, and boxes at IoU 0.5 with a default box."""
    g = torch.Generator().manual_seed(seed)
    n, m = 4, 12
    centre = torch.rand(n, m, 2, generator=g)
    size = torch.exp(torch.empty(n, m, 2).uniform_(-5.0, 0.0, generator=g))  # 0.007 to 1
    boxes = torch.cat((centre - size / 2, centre + size / 2), -1).clamp(0, 1)
    corners = cxcywh_to_xyxy(anchors.boxes)
    picks = torch.randint(0, corners.shape[0], (n, 4), generator=g)
    doubled = corners[picks].clone()
    doubled[..., 2] += doubled[..., 2] - doubled[..., 0]  # twice as wide: IoU 0.5 exactly
    boxes[:, :4] = doubled
    boxes[:, 4] = corners[picks[:, 0]]  # a default box itself
    boxes[:, 5] = torch.tensor([0.0, 0.0, 1.0, 1.0])
    labels = torch.randint(0, 20, (n, m), generator=g)
    labels[3, 8:] = -1
    return boxes, labels


@pytest.mark.parametrize("network,size", [("vgg-16", 300), ("vgg-16", 512), ("vgg-16", 333),
                                          ("resnet-50", 300), ("mobilenet-v3-large", 320)])
@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.7])
def test_grid_path_equals_dense_path_on_hard_cases(network, size, threshold):
    anchors = _default_boxes(network, size)
    for seed in range(3):
        boxes, labels = _hard_targets(anchors, seed)
        fast = match(anchors, boxes, labels, threshold)
        assert torch.equal(fast, match(anchors.boxes, boxes, labels, threshold)), (seed, threshold)
        iou = box_iou(boxes.view(-1, 4), cxcywh_to_xyxy(anchors.boxes)).view(*boxes.shape[:2], -1)
        # Every default box at or above the threshold with some real box is matched.
        real = (labels >= 0).unsqueeze(-1)
        assert ((iou * real).amax(dim=1) >= threshold + 1e-5).le(fast >= 0).all()


def test_match_targets_are_the_dense_targets_at_the_matches():
    anchors = _default_boxes("vgg-16", 512)
    boxes, labels = _hard_targets(anchors, 7)
    targets = match_targets(anchors, boxes, labels)
    cls_targets, box_targets = assign_targets(anchors, boxes, labels)
    assert torch.equal(targets.cls_targets, cls_targets)
    positive = cls_targets > 0
    image, anchor = positive.nonzero(as_tuple=True)
    assert torch.equal(targets.image, image) and torch.equal(targets.anchor, anchor)
    assert torch.equal(targets.box_targets, box_targets[positive])


def test_a_grid_that_does_not_fit_the_default_boxes_is_refused():
    anchors = _default_boxes()
    wrong = DefaultBoxes(anchors.boxes, anchors.grid[:-1])
    boxes, labels = _targets()
    with pytest.raises(ValueError, match="describes 8728 boxes, but there are 8732"):
        match(wrong, boxes, labels)
