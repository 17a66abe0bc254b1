"""The MultiBox loss."""

import pytest
import torch
from torchvision.models.detection import ssd300_vgg16
from torchvision.ops import box_iou

from algorithm.ssd.anchors import DefaultBoxes, generate_default_boxes, grid_of
from algorithm.ssd.boxes import cxcywh_to_xyxy
from algorithm.ssd.layout import layout
from algorithm.ssd.loss import hard_negative_loss, multibox_loss, multibox_loss_from
from algorithm.ssd.matcher import assign_targets, match_targets


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


def test_targets_matched_beforehand_give_the_same_loss_and_gradients():
    anchors, boxes, labels, cls_logits, box_regression = _setup(seed=5)
    direct = multibox_loss(cls_logits, box_regression, anchors, boxes, labels)
    (direct["cross_entropy"] + direct["smooth_l1"]).backward()
    grads = cls_logits.grad.clone(), box_regression.grad.clone()
    cls_logits.grad = box_regression.grad = None
    targets = match_targets(anchors, boxes, labels).to("cpu", non_blocking=True)
    beforehand = multibox_loss_from(cls_logits, box_regression, targets)
    (beforehand["cross_entropy"] + beforehand["smooth_l1"]).backward()
    assert all(torch.equal(direct[k], beforehand[k]) for k in direct)
    assert torch.equal(grads[0], cls_logits.grad) and torch.equal(grads[1], box_regression.grad)


def test_targets_of_another_model_are_refused():
    anchors, boxes, labels, cls_logits, box_regression = _setup()
    targets = match_targets(anchors, boxes, labels)
    with pytest.raises(ValueError, match=r"3 x 8732 default boxes but the targets have \(4, "):
        multibox_loss_from(cls_logits[:3], box_regression[:3], targets)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_every_box_keeps_the_same_hard_negatives(seed):
    g = torch.Generator().manual_seed(seed)
    ce = torch.rand(6, 500, generator=g).requires_grad_()
    ce_data = ce.detach()
    ce_data[:, ::7] = ce_data[:, 3:4]  # ties
    positive = torch.rand(6, 500, generator=g) < 0.05
    positive[5] = False  # an image without objects
    num_negative = torch.tensor([0, 3, 30, 200, 500 - int(positive[4].sum()), 3])
    quick = hard_negative_loss(ce, positive, num_negative)
    (grad_quick,) = torch.autograd.grad(quick, ce)
    full = hard_negative_loss(ce, positive, num_negative, rank_all=True)
    (grad_full,) = torch.autograd.grad(full, ce)
    assert torch.allclose(quick, full, rtol=1e-6)
    # as many boxes kept per image (those with a gradient), none of them positive
    for grad in (grad_quick, grad_full):
        assert torch.equal(grad.sum(dim=1).long(), num_negative)
        assert not grad[positive].any()
    expected = sum(float(ce_data[i][~positive[i]].sort(descending=True).values[:k].sum())
                   for i, k in enumerate(num_negative.tolist()))
    assert full.item() == pytest.approx(expected, rel=1e-6)
