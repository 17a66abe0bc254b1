"""Post-processing: torchvision's detections, our format, faster."""

import pytest
import torch
from torchvision.models.detection import ssd300_vgg16
from torchvision.ops import box_iou, nms

from algorithm.ssd import postprocess
from algorithm.ssd.anchors import generate_default_boxes
from algorithm.ssd.boxes import cxcywh_to_xyxy, decode
from algorithm.ssd.layout import layout
from algorithm.ssd.postprocess import postprocess_detections
from tests.algorithm.support import head_outputs

ANCHORS = generate_default_boxes(layout("vgg-16", 300).maps)


def _head_outputs(background, noise, n=3, classes=20, seed=0):
    """Three objects per image, regression exactly onto them (see ``head_outputs``)."""
    return head_outputs(ANCHORS, n, classes, seed, background, noise, objects=3, jitter=0.0)


@pytest.mark.parametrize("background, noise, top_k", [
    (8.0, -2.4, 400), (8.0, -1.0, 400), (8.0, -1.0, 50), (3.0, 0.0, 400)])
def test_same_detections_as_torchvision(background, noise, top_k):
    logits, regression = _head_outputs(background, noise)
    tv = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21, topk_candidates=top_k)
    theirs = tv.postprocess_detections({"cls_logits": logits, "bbox_regression": regression},
                                       [cxcywh_to_xyxy(ANCHORS) * 300] * 3, [(300, 300)] * 3)
    ours = postprocess_detections(logits, regression, ANCHORS, top_k=top_k)
    for mine, their in zip(ours, theirs):
        assert mine.shape == (their["scores"].shape[0], 6)
        assert torch.equal(mine[:, 0].long(), their["labels"] - 1)
        torch.testing.assert_close(mine[:, 1], their["scores"], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(mine[:, 2:] * 300, their["boxes"], rtol=1e-4, atol=1e-3)


def test_format_order_clipping_and_suppression():
    logits, regression = _head_outputs(8.0, -1.0, seed=1)
    regression[:, :, 2:] += 1.0  # large boxes, many cross the border
    detections = postprocess_detections(logits, regression, ANCHORS, nms_threshold=0.3,
                                        max_detections=50)
    for rows in detections:
        assert rows.shape[1] == 6 and 0 < rows.shape[0] <= 50
        assert (rows[:-1, 1] >= rows[1:, 1]).all()  # best first
        assert (rows[:, 1] > 0.01).all() and (rows[:, 2:] >= 0).all() and (rows[:, 2:] <= 1).all()
        assert ((rows[:, 0] >= 0) & (rows[:, 0] < 20)).all()
        for label in rows[:, 0].unique():
            boxes = rows[rows[:, 0] == label, 2:]
            overlap = box_iou(boxes, boxes).fill_diagonal_(0)
            assert (overlap <= 0.3 + 1e-6).all()


def test_all_background_gives_empty_detections():
    logits = torch.zeros(2, ANCHORS.shape[0], 21)
    logits[..., 0] = 20.0
    detections = postprocess_detections(logits, torch.zeros(2, ANCHORS.shape[0], 4), ANCHORS)
    assert [d.shape for d in detections] == [(0, 6), (0, 6)]


def test_bad_arguments_name_the_value():
    logits, regression = _head_outputs(8.0, -1.0, n=1)
    with pytest.raises(ValueError, match=r"nms_threshold=1\.5"):
        postprocess_detections(logits, regression, ANCHORS, nms_threshold=1.5)
    with pytest.raises(ValueError, match=r"\(1, 8732, 3\)"):
        postprocess_detections(logits, regression[..., :3], ANCHORS)


def _reference_detections(logits, regression, threshold, nms_threshold, top_k, max_detections):
    """The steps written plainly: softmax, per class and image top_k, NMS, the best first."""
    scores = torch.softmax(logits, dim=-1)
    out = []
    for i in range(logits.shape[0]):
        boxes = decode(regression[i], ANCHORS).clamp(0.0, 1.0)
        rows = []
        for label in range(1, logits.shape[2]):
            score = scores[i, :, label]
            index = torch.nonzero(score > threshold).squeeze(1)
            score, order = score[index].topk(min(top_k, index.numel()))
            index = index[order]
            kept = nms(boxes[index].double(), score.double(), nms_threshold)
            rows.append(torch.cat((torch.full((kept.numel(), 1), label - 1.0),
                                   score[kept].unsqueeze(1), boxes[index[kept]]), dim=1))
        rows = torch.cat(rows)
        out.append(rows[rows[:, 1].argsort(descending=True)][:max_detections])
    return out


@pytest.mark.parametrize("rounds", [True, False])
@pytest.mark.parametrize("max_detections, nms_threshold, spread", [
    (200, 0.45, 0.1), (20, 0.45, 0.1), (3, 0.3, 0.02), (5, 0.6, 0.05), (1000, 0.45, 0.1)])
def test_survivors_equal_plain_nms(monkeypatch, rounds, max_detections, nms_threshold, spread):
    # Clusters of near-duplicate boxes: long suppression chains, so that the rounds stop early
    # and some images need the kernel's second call (few survivors among their best boxes).
    logits, regression = _head_outputs(6.0, -1.0, n=3, seed=3)
    regression += spread * torch.randn(regression.shape, generator=torch.Generator().manual_seed(4))
    calls = []
    kernel = postprocess._packed_nms
    monkeypatch.setattr(postprocess, "_packed_nms", lambda *args: calls.append(1) or kernel(*args))
    survivors, use_rounds = postprocess._survivors, rounds
    monkeypatch.setattr(postprocess, "_survivors",
                        lambda *args, **kwargs: survivors(*args, rounds=use_rounds))
    ours = postprocess_detections(logits, regression, ANCHORS, nms_threshold=nms_threshold,
                                  max_detections=max_detections)
    theirs = _reference_detections(logits, regression, 0.01, nms_threshold, 400, max_detections)
    for mine, plain in zip(ours, theirs):
        assert mine.shape == plain.shape
        assert torch.equal(mine, plain)
    assert calls  # the kernel took part (in several of these cases, twice: a second call)


def test_best_box_rounds_find_survivors_only():
    g = torch.Generator().manual_seed(0)
    centre = torch.rand(300, 2, generator=g).mul_(0.2).add_(0.4)
    size = torch.rand(300, 2, generator=g).mul_(0.2).add_(0.1)
    boxes = torch.cat((centre - size / 2, centre + size / 2), 1).double()
    score = torch.rand(300, generator=g)
    group = torch.randint(0, 4, (300,), generator=g).sort().values
    shifted = boxes + 2.0 * group.double().unsqueeze(1)
    found, rest = postprocess._best_box_rounds(shifted, score, group, 0.5)
    expected = set(nms(shifted, score.double(), 0.5).tolist())
    assert set(found.tolist()) <= expected
    left = postprocess._packed_nms(shifted[rest], score[rest].double(), group[rest], 0.5)
    assert set(found.tolist()) | set(rest[left].tolist()) == expected


def test_candidate_rows_hold_every_score_above_the_threshold():
    logits = 6.0 * torch.randn(2000, 21, generator=torch.Generator().manual_seed(0))
    for threshold in (0.01, 0.2, 0.9):
        rows = postprocess._possible_boxes(logits, threshold)
        passing = (torch.softmax(logits, dim=1)[:, 1:] > threshold).any(dim=1)
        assert set(torch.nonzero(passing).squeeze(1).tolist()) <= set(rows.tolist())
    assert postprocess._possible_boxes(logits, 0.0).numel() == 2000
