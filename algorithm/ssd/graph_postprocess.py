"""Post-processing as one graph of tensor operations, for exported models.

The same detections as :func:`~algorithm.ssd.postprocess.postprocess_detections` (softmax; per
class and image the scores above ``score_threshold``, at most ``top_k``; boxes decoded and
clipped; NMS within each class; the best ``max_detections`` kept), written without Python
control flow that depends on the data, so that TorchScript and ONNX can hold it:

- the ``top_k`` best scores of each (image, class) stay in a dense [N, C, A] table, the others
  become 0;
- NMS runs on every (image, class) at once (:func:`multiclass_nms`): in PyTorch, torchvision's
  kernel on boxes shifted per group in float64, as the server's post-processing; in an ONNX
  graph, ONNX's ``NonMaxSuppression``, which takes the boxes and the [N, C, A] table as they are;
- the survivors go back into the table, and each image's best ``max_detections`` come out of
  one ``topk`` over its row: a fixed-size answer, padded.

It is slower than the server's post-processing on CPU (it scores every default box and class),
which is the price of a fixed graph.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor
from torchvision.ops import nms

from .boxes import decode

# Room between the groups of one NMS call: boxes are clipped to [0, 1].
_GROUP_SPACING = 2.0


def padded_detections(
    cls_logits: Tensor,
    box_regression: Tensor,
    anchors: Tensor,
    score_threshold: float = 0.01,
    nms_threshold: float = 0.45,
    top_k: int = 400,
    max_detections: int = 200,
) -> Tuple[Tensor, Tensor]:
    """Detections of each image, best first, padded to a fixed number of rows.

    Args:
        cls_logits (Tensor[N, A, C + 1]): class scores, index 0 = background.
        box_regression (Tensor[N, A, 4]): ``(tx, ty, tw, th)`` per default box.
        anchors (Tensor[A, 4]): default boxes ``(cx, cy, w, h)``, normalized.
        score_threshold, nms_threshold, top_k, max_detections: as
            :func:`~algorithm.ssd.postprocess.postprocess_detections`.

    Returns:
        detections (Tensor[N, D, 6] float32), ``D = min(max_detections, C * A)``: rows
            ``(class_id, score, x1, y1, x2, y2)``, ``class_id`` from 0, coordinates normalized
            and clipped to ``[0, 1]``, best first; rows past an image's count are padding
            ``(-1, 0, 0, 0, 0, 0)``.
        counts (Tensor[N] int64): detections of each image.
    """
    n = cls_logits.shape[0]
    a = anchors.shape[0]
    classes = cls_logits.shape[2] - 1
    probs = torch.softmax(cls_logits.float(), dim=2)[:, :, 1:].transpose(1, 2)  # [N, C, A]
    k = min(top_k, a)
    best, where = probs.topk(k, dim=2)  # [N, C, k]
    scores = torch.zeros_like(probs).scatter(2, where, best)  # [N, C, A]: top_k of each row
    boxes = decode(box_regression.float(), anchors).clamp(0.0, 1.0)  # [N, A, 4]

    selected = multiclass_nms(boxes, scores, nms_threshold, score_threshold, k)  # [S, 3]
    image, label, box = selected[:, 0], selected[:, 1], selected[:, 2]
    table = torch.full_like(scores, -1.0)
    table[image, label, box] = scores[image, label, box]

    d = min(max_detections, classes * a)
    best, position = table.reshape(n, classes * a).topk(d, dim=1)  # [N, D]
    label = torch.div(position, a, rounding_mode="floor")
    box = position - label * a
    chosen = boxes.gather(1, box.unsqueeze(2).expand(n, d, 4))  # [N, D, 4]
    rows = torch.cat((label.unsqueeze(2).to(chosen.dtype), best.unsqueeze(2), chosen), dim=2)
    found = best >= 0.0
    padding = torch.tensor([-1.0, 0.0, 0.0, 0.0, 0.0, 0.0], device=rows.device)
    rows = torch.where(found.unsqueeze(2), rows, padding)
    return rows, found.sum(dim=1)


def multiclass_nms(
    boxes: Tensor, scores: Tensor, iou_threshold: float, score_threshold: float, per_class: int
) -> Tensor:
    """Non-maximum suppression within each (image, class), boxes shared by the classes.

    Args:
        boxes (Tensor[N, A, 4]): ``(x1, y1, x2, y2)``, within ``[0, 1]``.
        scores (Tensor[N, C, A]): a box takes part in a class's NMS if its score there is above
            ``score_threshold``.
        iou_threshold: a box is removed when its IoU with a better box kept exceeds this.
        per_class: most boxes kept per (image, class); at least the number of scores above
            ``score_threshold`` in any (image, class) for the full answer.

    Returns:
        Tensor[S, 3] int64: ``(image, class, box)`` of every box kept, in no particular order.
    """
    if torch.onnx.is_in_onnx_export():
        return _onnx_nms(boxes, scores, iou_threshold, score_threshold, per_class)
    return _torch_nms(boxes, scores, iou_threshold, score_threshold)


def _torch_nms(boxes: Tensor, scores: Tensor, iou_threshold: float, score_threshold: float
               ) -> Tensor:
    """torchvision's kernel in one call, each (image, class) shifted to its own region of the
    plane in float64, by the same amount as in the server's post-processing (group
    ``class * N + image``), so that IoUs at the threshold are decided alike."""
    n = scores.shape[0]
    selected = torch.nonzero(scores > score_threshold)  # [K, 3]
    image, label, box = selected[:, 0], selected[:, 1], selected[:, 2]
    shift = (label * n + image).to(torch.float64).mul(_GROUP_SPACING).unsqueeze(1)
    shifted = boxes[image, box].to(torch.float64) + shift
    keep = nms(shifted, scores[image, label, box].to(torch.float64), iou_threshold)
    return selected.index_select(0, keep)


@torch.jit.unused
def _onnx_nms(boxes: Tensor, scores: Tensor, iou_threshold: float, score_threshold: float,
              per_class: int) -> Tensor:
    return _OnnxNms.apply(boxes, scores, iou_threshold, score_threshold, per_class)


class _OnnxNms(torch.autograd.Function):
    """ONNX's ``NonMaxSuppression`` (boxes [N, A, 4], scores [N, C, A]) in an exported graph;
    the PyTorch kernel while the exporter traces."""

    @staticmethod
    def forward(ctx, boxes, scores, iou_threshold, score_threshold, per_class):  # type: ignore
        return _torch_nms(boxes, scores, iou_threshold, score_threshold)

    @staticmethod
    def symbolic(g, boxes, scores, iou_threshold, score_threshold, per_class):  # type: ignore
        def constant(value, dtype):
            return g.op("Constant", value_t=torch.tensor([value], dtype=dtype))

        return g.op("NonMaxSuppression", boxes, scores, constant(per_class, torch.int64),
                    constant(iou_threshold, torch.float32),
                    constant(score_threshold, torch.float32))
