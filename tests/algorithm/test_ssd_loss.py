"""The MultiBox loss."""

import torch
from torchvision.models.detection import ssd300_vgg16
from torchvision.ops import box_iou

from algorithm.ssd.anchors import DefaultBoxes, generate_default_boxes, grid_of
from algorithm.ssd.boxes import cxcywh_to_xyxy
from algorithm.ssd.layout import layout
from algorithm.ssd.loss import multibox_loss
from algorithm.ssd.matcher import assign_targets


def _setup(n=4, m=5, seed=0, classes=21):
    plan = layout("vgg-16", 300)
    anchors = DefaultBoxes(generate_default_boxes(plan.maps), grid_of(plan.maps))
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(n, m, 2, generator=g) * 0.6 + 0.2
    size = torch.rand(n, m, 2, generator=g) * 0.4 + 0.05
    boxes = torch.cat((centre - size / 2, centre + size / 2), -1)
    labels = torch.randint(0, classes - 1, (n, m), generator=g)
    cls_logits = torch.randn(n, 8732, classes, generator=g, requires_grad=True)
    box_regression = torch.randn(n, 8732, 4, generator=g, requires_grad=True)
    return anchors, boxes, labels, cls_logits, box_regression


def test_equals_torchvision_compute_loss():
    anchors, boxes, labels, cls_logits, box_regression = _setup()
    ours = multibox_loss(cls_logits, box_regression, anchors, boxes, labels)
    tv = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21)
    corners = cxcywh_to_xyxy(anchors.boxes) * 300
    targets = [{"boxes": b * 300, "labels": lab + 1} for b, lab in zip(boxes, labels)]
    matched = [tv.proposal_matcher(box_iou(t["boxes"], corners)) for t in targets]
    theirs = tv.compute_loss(targets, {"cls_logits": cls_logits, "bbox_regression": box_regression},
                             [corners] * 4, matched)
    torch.testing.assert_close(ours["smooth_l1"], theirs["bbox_regression"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours["cross_entropy"], theirs["classification"], rtol=1e-4,
                               atol=1e-5)


def test_hard_negatives_are_three_per_positive():
    anchors, boxes, labels, _, _ = _setup(n=1, m=1)
    cls_targets, _ = assign_targets(anchors, boxes, labels)
    positives = int((cls_targets > 0).sum())
    background = (cls_targets[0] == 0).nonzero().squeeze(1)
    cls_logits = torch.zeros(1, 8732, 21)
    cls_logits[0, background[:100], 5] = 10.0  # 100 confident false positives: the hardest
    losses = multibox_loss(cls_logits, torch.zeros(1, 8732, 4), anchors, boxes, labels)
    assert 0 < 3 * positives <= 100
    hard = -torch.log_softmax(torch.tensor([0.0] * 5 + [10.0] + [0.0] * 15), 0)[0]
    expected = (positives * torch.log(torch.tensor(21.0)) + 3 * positives * hard) / positives
    torch.testing.assert_close(losses["cross_entropy"], expected)


def test_image_without_objects_gives_finite_loss_and_no_box_loss():
    anchors, _, _, cls_logits, box_regression = _setup(n=2)
    boxes = torch.zeros(2, 3, 4)
    labels = torch.full((2, 3), -1)
    losses = multibox_loss(cls_logits, box_regression, anchors, boxes, labels)
    assert losses["smooth_l1"].item() == 0.0
    assert torch.isfinite(losses["cross_entropy"]) and losses["cross_entropy"] > 0
    (losses["cross_entropy"] + losses["smooth_l1"]).backward()
    assert torch.isfinite(cls_logits.grad).all() and (box_regression.grad == 0).all()


def test_degenerate_boxes_and_wild_outputs_never_give_nan():
    anchors, boxes, labels, _, _ = _setup(n=2, m=3)
    boxes[0, 0] = torch.tensor([0.5, 0.5, 0.5, 0.5])  # zero area
    boxes[0, 1] = torch.tensor([0.7, 0.2, 0.3, 0.6])  # negative width
    boxes[1, 2] = torch.tensor([1.5, 1.5, 2.0, 2.0])  # outside the image
    cls_logits = (torch.randn(2, 8732, 21) * 1e4).requires_grad_()
    box_regression = (torch.randn(2, 8732, 4) * 1e4).requires_grad_()
    losses = multibox_loss(cls_logits, box_regression, anchors, boxes, labels)
    total = losses["cross_entropy"] + losses["smooth_l1"]
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(cls_logits.grad).all() and torch.isfinite(box_regression.grad).all()


def test_plain_tensor_anchors_give_the_same_loss():
    anchors, boxes, labels, cls_logits, box_regression = _setup(seed=3)
    fast = multibox_loss(cls_logits, box_regression, anchors, boxes, labels)
    dense = multibox_loss(cls_logits, box_regression, anchors.boxes, boxes, labels)
    assert all(torch.equal(fast[k], dense[k]) for k in fast)
