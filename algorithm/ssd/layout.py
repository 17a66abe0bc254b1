"""The feature-map layout of each base network at any ``image_shape``, derived by rule.

One rule set covers every size; at 300 and 512 it gives the SSD paper's configurations exactly.

- **Feature-map sizes** follow from the base network's geometry (VGG-16's pool3 rounds up,
  its other pools down; ResNet-50's and MobileNetV3's stride-2 layers round up).
- **Extra layers** (VGG-16, ResNet-50) shrink the last map to 1x1, choosing each layer by the size
  of its input ``f``: a 4x4 convolution with padding 1 when ``f == 2`` (SSD512's conv12_2);
  an unpadded 3x3 convolution when ``f`` is 3 or 5 (SSD300's conv10_2 and conv11_2); otherwise a
  3x3 convolution with stride 2 and padding 1. SSD300: 38 19 10 5 3 1; SSD512: 64 32 16 8 4 2 1.
  MobileNetV3 (SSDLite) always has four stride-2 extra layers, as torchvision builds it.
- **Box centres**: a map made by stride-2 layers has its centres one stride apart (step = the
  network's stride there: 8, 16, 32, ...) as long as its last centre lies within a quarter step
  of the image; otherwise, and for maps made by an unpadded layer, the centres are spread
  evenly over the image (step = image_shape / size). SSDLite spreads every map evenly.
- **Scales and aspect ratios**: :func:`~algorithm.ssd.anchors.ssd_scales` (0.07 for the first map,
  then 0.15 to 0.90), aspect ratios {2} on the first and the last two maps and {2, 3} on the
  others; SSDLite: :func:`~algorithm.ssd.anchors.linear_scales` (0.2 to 0.95) and {2, 3}
  everywhere.
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

from ..hyperparameters import BASE_NETWORKS, MIN_IMAGE_SHAPE
from .anchors import FeatureMapBoxes, box_sizes, linear_scales, ssd_scales

VGG16 = "vgg-16"
RESNET50 = "resnet-50"
MOBILENET_V3_LARGE = "mobilenet-v3-large"

# Kinds of extra layer (the second, spatial convolution of each extra block).
STRIDE2 = "stride2"  # 3x3, stride 2, padding 1: f -> ceil(f / 2)
VALID3 = "valid3"  # 3x3, no padding: f -> f - 2
FINAL4 = "final4"  # 4x4, padding 1: 2 -> 1

SSDLITE_EXTRA_LAYERS = 4


class Layout(NamedTuple):
    """Where a base network's detections come from at one image_shape.

    ``sizes``: side of each feature map, in head order. ``extras``: kind of each extra layer
    (``STRIDE2``, ``VALID3``, ``FINAL4``). ``maps``: the default boxes of each feature map.
    """

    base_network: str
    image_shape: int
    sizes: Tuple[int, ...]
    extras: Tuple[str, ...]
    maps: Tuple[FeatureMapBoxes, ...]

    @property
    def boxes_per_location(self) -> Tuple[int, ...]:
        return tuple(len(fmap.box_sizes) for fmap in self.maps)

    @property
    def num_boxes(self) -> int:
        return sum(fmap.size * fmap.size * len(fmap.box_sizes) for fmap in self.maps)


def check_network(base_network: str, image_shape: int) -> None:
    """Raise ``ValueError`` naming the bad value unless the pair is supported."""
    if base_network not in BASE_NETWORKS:
        raise ValueError("base_network={!r} is not one of: {}".format(
            base_network, ", ".join(BASE_NETWORKS)))
    if isinstance(image_shape, bool) or not isinstance(image_shape, int):
        raise ValueError(f"image_shape={image_shape!r} must be an integer")
    if image_shape < MIN_IMAGE_SHAPE[base_network]:
        minimum = MIN_IMAGE_SHAPE[base_network]
        raise ValueError(f"image_shape={image_shape} is below the minimum of {minimum} for "
                         f"base_network={base_network}")


def _ceil_half(size: int) -> int:
    return (size + 1) // 2


def extra_layers(size: int) -> Tuple[str, ...]:
    """Kinds of the extra layers that take a ``size x size`` map down to 1x1."""
    kinds = []
    while size > 1:
        if size == 2:
            kind = FINAL4
        elif size in (3, 5):
            kind = VALID3
        else:
            kind = STRIDE2
        kinds.append(kind)
        size = extra_output_size(kind, size)
    return tuple(kinds)


def extra_output_size(kind: str, size: int) -> int:
    """Side of the map an extra layer of ``kind`` makes from a ``size x size`` map."""
    if kind == STRIDE2:
        return _ceil_half(size)
    if kind == VALID3:
        return size - 2
    if kind == FINAL4:
        return size - 1
    raise ValueError(f"unknown extra layer kind {kind!r}")


def extra_conv_args(kind: str) -> Tuple[int, int, int]:
    """``(kernel_size, stride, padding)`` of the spatial convolution of an extra layer."""
    if kind == STRIDE2:
        return 3, 2, 1
    if kind == VALID3:
        return 3, 1, 0
    if kind == FINAL4:
        return 4, 1, 1
    raise ValueError(f"unknown extra layer kind {kind!r}")


def extra_layer_channels(
    extras: Sequence[str], in_channels: int, table: Sequence[Tuple[int, int]]
) -> List[Tuple[int, int, int, Tuple[int, int, int]]]:
    """``(in, 1x1, out, (kernel_size, stride, padding))`` of each extra layer, chained from
    ``in_channels``; ``table`` gives ``(1x1 channels, output channels)`` per layer, later
    layers repeating its last entry."""
    layers = []
    for k, kind in enumerate(extras):
        middle, out = table[min(k, len(table) - 1)]
        layers.append((in_channels, middle, out, extra_conv_args(kind)))
        in_channels = out
    return layers


def backbone_sizes(base_network: str, image_shape: int) -> Tuple[int, int]:
    """Sides of the two feature maps the base network itself provides."""
    size = image_shape
    if base_network == VGG16:
        size = size // 2  # pool1
        size = size // 2  # pool2
        size = _ceil_half(size)  # pool3, ceil mode
        return size, size // 2  # conv4_3; fc7 after pool4
    for _ in range(4):  # stride 16 (ResNet-50 conv4_x, MobileNetV3 C4)
        size = _ceil_half(size)
    return size, _ceil_half(size)


def _cells(image_shape: int, size: int, stride: Optional[int]) -> float:
    """``image_shape / step`` for one map (see the module's rule for box centres)."""
    # Keep the stride while the last centre overhangs the image by at most a quarter step:
    # SSD300's 10x10 map overhangs by 4 of 32 pixels (Caffe's and torchvision's layout).
    if stride is not None and size * stride - image_shape <= 0.75 * stride:
        return image_shape / stride
    return float(size)


def layout(base_network: str, image_shape: int) -> Layout:
    """The :class:`Layout` of ``base_network`` at ``image_shape`` (see the module's rules)."""
    check_network(base_network, image_shape)
    first, second = backbone_sizes(base_network, image_shape)
    sizes = [first, second]
    if base_network == MOBILENET_V3_LARGE:
        extras = (STRIDE2,) * SSDLITE_EXTRA_LAYERS
        for _ in extras:
            sizes.append(_ceil_half(sizes[-1]))
        cells = [float(size) for size in sizes]
        scales = linear_scales(len(sizes))
        ratios = [(2, 3)] * len(sizes)
    else:
        extras = extra_layers(second)
        stride = 8 if base_network == VGG16 else 16
        strides: List[Optional[int]] = [stride, stride * 2]
        for kind in extras:
            sizes.append(extra_output_size(kind, sizes[-1]))
            last = strides[-1]
            strides.append(last * 2 if kind == STRIDE2 and last is not None else None)
        cells = [_cells(image_shape, size, s) for size, s in zip(sizes, strides)]
        scales = ssd_scales(len(sizes))
        ratios = [(2,)] + [(2, 3)] * (len(sizes) - 3) + [(2,), (2,)]
    maps = tuple(
        FeatureMapBoxes(size, cell, box_sizes(scales[k], scales[k + 1], ratios[k]))
        for k, (size, cell) in enumerate(zip(sizes, cells))
    )
    return Layout(base_network, image_shape, tuple(sizes), extras, maps)
