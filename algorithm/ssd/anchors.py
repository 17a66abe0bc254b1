"""Default boxes (anchors): the SSD paper's scales and aspect ratios on square feature maps.

Order, as torchvision's ``DefaultBoxGenerator``: feature map by feature map, locations row-major
(``y`` then ``x``), then the boxes of one location: ``(s, s)``, ``(s', s')`` with
``s' = sqrt(s * s_next)``, then ``(s sqrt(r), s / sqrt(r))`` and ``(s / sqrt(r), s sqrt(r))`` for
each aspect ratio ``r``. Widths and heights are clipped to 1, centres are not.
"""

from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor


class FeatureMapBoxes(NamedTuple):
    """The default boxes of one square feature map.

    ``size``: the map has ``size x size`` locations. ``cells``: the image side measured in steps
    (``image_shape / step``); the centre of column ``j`` lies at ``(j + 0.5) / cells``.
    ``box_sizes``: ``(w, h)`` of each box at one location, normalized, in order.
    """

    size: int
    cells: float
    box_sizes: Tuple[Tuple[float, float], ...]


class DefaultBoxes(NamedTuple):
    """Default boxes together with their grid layout, which the fast matcher exploits.

    ``boxes (Tensor[A, 4])``: ``(cx, cy, w, h)``, normalized, in the order above.
    ``grid``: per feature map, ``(size, boxes per location)``;
    ``A = sum(size * size * per_location)``.
    """

    boxes: Tensor
    grid: Tuple[Tuple[int, int], ...]


def ssd_scales(num_maps: int) -> List[float]:
    """The SSD paper's box scales for ``num_maps`` feature maps, plus one past the last.

    The first map gets 0.07; the others get integer percentages from 15 up to 90 in equal
    steps rounded down (the Caffe release's rule), and one more step closes the list. For 6 maps
    this is ``[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]`` (SSD300, as torchvision); for 7 maps
    ``[0.07, 0.15, 0.30, 0.45, 0.60, 0.75, 0.90, 1.05]`` (SSD512).
    """
    if num_maps < 3:
        raise ValueError(f"ssd_scales needs at least 3 feature maps, got {num_maps}")
    step = (90 - 15) // (num_maps - 2)
    percents = [15 + step * k for k in range(num_maps)]
    return [0.07] + [p / 100.0 for p in percents]


def linear_scales(num_maps: int, min_scale: float = 0.2, max_scale: float = 0.95) -> List[float]:
    """Scales evenly from ``min_scale`` to ``max_scale``, then 1.0 (SSDLite, as torchvision)."""
    if num_maps < 2:
        raise ValueError(f"linear_scales needs at least 2 feature maps, got {num_maps}")
    span = max_scale - min_scale
    return [min_scale + span * k / (num_maps - 1.0) for k in range(num_maps)] + [1.0]


def box_sizes(
    scale: float, next_scale: float, aspect_ratios: Sequence[int]
) -> Tuple[Tuple[float, float], ...]:
    """The ``(w, h)`` of the boxes at one location, clipped to 1."""
    prime = math.sqrt(scale * next_scale)
    sizes = [(scale, scale), (prime, prime)]
    for ratio in aspect_ratios:
        root = math.sqrt(ratio)
        sizes.extend([(scale * root, scale / root), (scale / root, scale * root)])
    return tuple((min(w, 1.0), min(h, 1.0)) for w, h in sizes)


def generate_default_boxes(
    maps: Sequence[FeatureMapBoxes],
    dtype: torch.dtype = torch.float32,
    device: Optional[torch.device] = None,
) -> Tensor:
    """All default boxes of ``maps``: Tensor[A, 4], ``(cx, cy, w, h)`` normalized."""
    blocks = []
    for fmap in maps:
        # Computed as torchvision computes them, so SSD300's boxes equal its boxes bit for bit.
        centres = ((torch.arange(fmap.size, device=device) + 0.5) / fmap.cells).to(dtype)
        sizes = torch.tensor(fmap.box_sizes, dtype=dtype, device=device)  # [P, 2]
        n, p = fmap.size, len(fmap.box_sizes)
        cx = centres.view(1, n, 1, 1).expand(n, n, p, 1)
        cy = centres.view(n, 1, 1, 1).expand(n, n, p, 1)
        wh = sizes.view(1, 1, p, 2).expand(n, n, p, 2)
        blocks.append(torch.cat((cx, cy, wh), dim=3).reshape(-1, 4))  # [n*n*P, 4]
    return torch.cat(blocks, dim=0)


def grid_of(maps: Sequence[FeatureMapBoxes]) -> Tuple[Tuple[int, int], ...]:
    """``(size, boxes per location)`` of each map: the ``grid`` of :class:`DefaultBoxes`."""
    return tuple((fmap.size, len(fmap.box_sizes)) for fmap in maps)
