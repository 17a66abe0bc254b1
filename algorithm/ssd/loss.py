"""The MultiBox loss: smooth-L1 on matched boxes plus cross-entropy with hard negative mining."""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor

from .matcher import Anchors, MatchedTargets, match_targets


def multibox_loss(
    cls_logits: Tensor,
    box_regression: Tensor,
    anchors: Anchors,
    boxes: Tensor,
    labels: Tensor,
    iou_threshold: float = 0.5,
    neg_pos_ratio: float = 3.0,
) -> Dict[str, Tensor]:
    """The SSD paper's loss for one batch, each term divided by the number of matched boxes.

    Args:
        cls_logits (Tensor[N, A, C + 1]): class scores, index 0 = background (``SSD.forward``).
        box_regression (Tensor[N, A, 4]): ``(tx, ty, tw, th)`` per default box.
        anchors: ``model.default_boxes`` (fast matching) or ``Tensor[A, 4]`` ``(cx, cy, w, h)``.
        boxes (Tensor[N, M, 4]): ground truth ``(x1, y1, x2, y2)``, normalized, padded to the
            batch's most boxes; padding rows may hold anything.
        labels (Tensor[N, M]): class ids from 0 (no background), ``-1`` for padding. Boxes with
            no width or height count as padding.
        iou_threshold: IoU at which a default box matches a ground-truth box.
        neg_pos_ratio: background boxes kept per matched box, hardest first (3 in the paper).
            An image without objects keeps ``neg_pos_ratio`` of them, so it still teaches
            background; its box loss is zero.

    Returns:
        ``{"cross_entropy": Tensor[], "smooth_l1": Tensor[]}``; the training loss is their sum.
    """
    n = cls_logits.shape[0]
    if boxes.shape[0] != n:
        raise ValueError(f"boxes has {boxes.shape[0]} images but cls_logits has {n}")
    with torch.no_grad():
        targets = match_targets(anchors, boxes, labels, iou_threshold)
    return multibox_loss_from(cls_logits, box_regression, targets, neg_pos_ratio)


def multibox_loss_from(
    cls_logits: Tensor,
    box_regression: Tensor,
    targets: MatchedTargets,
    neg_pos_ratio: float = 3.0,
) -> Dict[str, Tensor]:
    """:func:`multibox_loss` with the default boxes already matched (:func:`match_targets`), as
    the training job does in its data loader's workers, on the CPU, while the GPU trains.

    On a GPU this makes no host-device synchronisation: the CPU can queue the backward pass while
    the forward pass still runs.
    """
    n, a = cls_logits.shape[:2]
    if box_regression.shape != (n, a, 4):
        raise ValueError(f"box_regression must be Tensor[{n}, {a}, 4] like cls_logits "
                         f"{tuple(cls_logits.shape)}, got {tuple(box_regression.shape)}")
    if neg_pos_ratio < 0:
        raise ValueError(f"neg_pos_ratio={neg_pos_ratio} must be >= 0")
    cls_targets = targets.cls_targets
    if cls_targets.shape != (n, a):
        raise ValueError(f"the model has {n} x {a} default boxes but the targets have "
                         f"{tuple(cls_targets.shape)}")

    positive = cls_targets > 0  # [N, A]
    num_positive = positive.sum(dim=1)  # [N]
    normalizer = num_positive.sum().clamp(min=1).to(torch.float32)

    # Half-precision logits (mixed precision) are scored in float32.
    ce = F.cross_entropy(cls_logits.float().reshape(n * a, -1), cls_targets.view(-1),
                         reduction="none").view(n, a)

    # Hard negative mining: per image, the background boxes with the highest loss.
    num_negative = (num_positive.clamp(min=1) * neg_pos_ratio).to(torch.int64)
    num_negative = torch.min(num_negative, a - num_positive)
    negative_loss = hard_negative_loss(ce, positive, num_negative, rank_all=ce.is_cuda)

    box_loss = F.smooth_l1_loss(box_regression[targets.image, targets.anchor].float(),
                                targets.box_targets, reduction="sum")
    return {
        "cross_entropy": (ce.masked_fill(~positive, 0.0).sum() + negative_loss) / normalizer,
        "smooth_l1": box_loss / normalizer,
    }


def hard_negative_loss(ce: Tensor, positive: Tensor, num_negative: Tensor,
                       rank_all: bool = False) -> Tensor:
    """The summed loss ``ce (Tensor[N, A])`` of each image's ``num_negative (Tensor[N])``
    highest-loss background boxes (``positive (Tensor[N, A])`` is False).

    Ranking only the hardest ``max(num_negative)`` is quicker, but reading that count back makes
    a GPU wait for the forward pass; ``rank_all`` ranks every box instead (what a GPU does).
    Either gives the same sum: the same losses are kept.
    """
    n, a = ce.shape
    most = a if rank_all else (int(num_negative.max()) if n > 0 else 0)
    ranking = ce.detach().masked_fill(positive, -1.0)  # cross-entropy >= 0: positives rank last
    hardest = ranking.topk(most, dim=1).indices  # [N, most]
    rank = torch.arange(most, device=ce.device).view(1, -1)
    return ce.gather(1, hardest).masked_fill(rank >= num_negative.view(-1, 1), 0.0).sum()
