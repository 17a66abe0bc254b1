"""SSD data augmentation on encoded images, fast: Pillow and numpy, no torch.

The training chain is the SSD paper's (and torchvision's detection reference): photometric
distortion, zoom-out up to 4x on a mean-coloured canvas, min-IoU random crop, horizontal flip,
resize to ``image_shape`` x ``image_shape``. It is computed as one geometric mapping rather than
step by step:

- zoom-out and crop only move a window over a virtual canvas, so no enlarged canvas is ever
  drawn: the part of the image that lands in the window is cropped and resized in one Pillow
  call, and pasted on a canvas of the fill colour;
- JPEGs that will be shrunk by 2x or more are decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT
  scaling, ``Image.draft``), which is cheaper than decoding at full size and shrinking;
- the photometric distortion is applied after the resize, on the image's part of the output
  only (so the fill stays the mean colour, as when it is applied first), and all of it
  (brightness, contrast, saturation, hue, channel order) is composed into one 3x4 colour matrix
  applied in one pass. Hue is rotated in YIQ space, a linear stand-in for the HSV hue shift.

Random draws come from the ``numpy.random.Generator`` the caller passes, so a (seed, epoch,
sample) triple always gives the same output, whichever worker computes it.

Boxes are (xmin, ymin, xmax, ymax) normalised to [0, 1] on input and output.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np
from PIL import ImageStat

from algorithm import images

# torchvision's ImageNet statistics, for RGB in [0, 1]; the fill is the mean colour in 0..255.
MEAN_RGB = (0.485, 0.456, 0.406)
STD_RGB = (0.229, 0.224, 0.225)
FILL_RGB = tuple(round(255 * m) for m in MEAN_RGB)

# The largest zoom-out (canvas side / image side): the SSD paper's 4.
MAX_ZOOM_OUT = 4.0
# Crop options: None keeps the whole image; a number is the minimum IoU the patch must have with
# at least one object whose centre it contains (0.0: any patch with a centre in it).
CROP_MIN_IOUS: Tuple[Optional[float], ...] = (None, 0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
CROP_TRIALS = 50

_GRAY = np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma, as Pillow's "L" and torchvision use
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.596, -0.274, -0.322],
                        [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


class SSDAugmentation:
    """Decode, augment and resize one image with its boxes.

    Args:
        image_shape: side S of the square output.
        train: the random training chain when True; when False, the image as an endpoint
            prepares it (:func:`algorithm.images.model_pixels`), always uint8 pixels.
        max_zoom: the largest zoom-out factor (canvas side / image side).
        p_zoom, p_flip, p_photometric: probabilities of zoom-out, of a horizontal flip, and of
            each of the five photometric steps.

    ``renderer`` draws the output from the decoded image (see :func:`render_pillow`, which
    returns uint8 pixels); the torch Dataset swaps in one that returns a normalised tensor.
    """

    def __init__(self, image_shape: int, train: bool = True, max_zoom: float = MAX_ZOOM_OUT,
                 p_zoom: float = 0.5, p_flip: float = 0.5, p_photometric: float = 0.5,
                 crop_min_ious: Sequence[Optional[float]] = CROP_MIN_IOUS):
        self.size = int(image_shape)
        self.train = train
        self.max_zoom = max_zoom
        self.p_zoom, self.p_flip, self.p_photometric = p_zoom, p_flip, p_photometric
        self.crop_min_ious = tuple(crop_min_ious)
        self.renderer: Callable[..., Any] = render_pillow

    def __call__(self, data: bytes, boxes: np.ndarray, labels: np.ndarray,
                 difficult: np.ndarray, rng: Optional[np.random.Generator] = None
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Returns image (the renderer's: ndarray[S, S, 3] uint8 RGB by default), boxes [K, 4],
        labels [K], difficult [K].

        ``data`` is the encoded image, read by :mod:`algorithm.images` (which raises
        :class:`~algorithm.images.ImageError` for what it refuses); ``boxes`` [M, 4] are
        normalised xyxy.
        """
        if not self.train:  # exactly as an endpoint prepares the image
            pixels = images.model_pixels(data, self.size)
            return pixels, np.clip(boxes, 0, 1).astype(np.float32).reshape(-1, 4), labels, \
                difficult
        image = images.open_image(data)
        width, height = image.size
        boxes_px = np.asarray(boxes, np.float64).reshape(-1, 4) * (width, height, width, height)
        if rng is None:
            rng = np.random.default_rng()
        color = self._photometric(rng)
        canvas_w, canvas_h, offset = float(width), float(height), (0.0, 0.0)
        if rng.random() < self.p_zoom:
            ratio = rng.uniform(1.0, self.max_zoom)
            canvas_w, canvas_h = width * ratio, height * ratio
            offset = (rng.uniform(0, canvas_w - width), rng.uniform(0, canvas_h - height))
            boxes_px = boxes_px + np.array(offset * 2)
        patch = self._crop(rng, canvas_w, canvas_h, boxes_px)
        flip = rng.random() < self.p_flip
        if patch is None:
            patch = (0.0, 0.0, canvas_w, canvas_h)
        else:
            keep = centres_inside(boxes_px, patch)
            boxes_px, labels, difficult = boxes_px[keep], labels[keep], difficult[keep]
        out_boxes = boxes_in_patch(boxes_px, patch)
        if flip:
            out_boxes = hflip_boxes(out_boxes)
        pixels = self._render(image, patch, offset, color, flip)
        return pixels, out_boxes.astype(np.float32), labels, difficult

    # --- random draws -----------------------------------------------------------------------

    def _photometric(self, rng: np.random.Generator) -> Optional[Tuple[Any, ...]]:
        """The draws of torchvision's RandomPhotometricDistort, as a recipe for color_matrix."""
        p = self.p_photometric
        u = rng.random(6)
        brightness = rng.uniform(0.875, 1.125) if u[0] < p else None
        contrast = rng.uniform(0.5, 1.5) if u[1] < p else None
        saturation = rng.uniform(0.5, 1.5) if u[2] < p else None
        hue = rng.uniform(-0.05, 0.05) if u[3] < p else None
        contrast_first = u[4] < 0.5
        permutation = tuple(rng.permutation(3)) if u[5] < p else None
        if brightness is contrast is saturation is hue is permutation is None:
            return None
        return brightness, contrast, saturation, hue, contrast_first, permutation

    def _crop(self, rng: np.random.Generator, width: float, height: float,
              boxes: np.ndarray) -> Optional[Tuple[float, float, float, float]]:
        """A patch (x0, y0, x1, y1) of the canvas, or None to keep it whole.

        The patch has sides 0.3..1 of the canvas and an aspect ratio 0.5..2; with objects, at
        least one object's centre lies inside it and that object's IoU with it is at least the
        drawn minimum. After CROP_TRIALS failed draws the canvas is kept whole.
        """
        min_iou = self.crop_min_ious[int(rng.integers(len(self.crop_min_ious)))]
        if min_iou is None:
            return None
        draws = rng.random((CROP_TRIALS, 4))
        w = width * (0.3 + 0.7 * draws[:, 0])
        h = height * (0.3 + 0.7 * draws[:, 1])
        x0 = (width - w) * draws[:, 2]
        y0 = (height - h) * draws[:, 3]
        ok = (h / w >= 0.5) & (h / w <= 2.0)
        patches = np.stack([x0, y0, x0 + w, y0 + h], axis=1)  # [T, 4]
        if len(boxes):
            cx = (boxes[:, 0] + boxes[:, 2]) / 2
            cy = (boxes[:, 1] + boxes[:, 3]) / 2
            inside = ((patches[:, None, 0] < cx) & (cx < patches[:, None, 2])
                      & (patches[:, None, 1] < cy) & (cy < patches[:, None, 3]))  # [T, M]
            ok &= (inside & (_iou(patches, boxes) >= min_iou)).any(axis=1)
        found = np.flatnonzero(ok)
        if not len(found):
            return None
        return tuple(float(v) for v in patches[found[0]])  # type: ignore[return-value]

    # --- pixels -------------------------------------------------------------------------------

    def _render(self, image: Any, patch: Tuple[float, float, float, float],
                offset: Tuple[float, float], color: Optional[Tuple[Any, ...]],
                flip: bool) -> Any:
        """The S x S output: the window ``patch`` of a canvas holding ``image`` at ``offset``.

        Works out where the image lands in the output and which part of it does (decoding
        a JPEG at reduced scale when that part shrinks 2x or more), then hands the pixels to
        ``self.renderer``.
        """
        size = self.size
        width, height = image.size
        px0, py0, px1, py1 = patch
        sx, sy = size / (px1 - px0), size / (py1 - py0)
        ox, oy = offset
        ix0, iy0 = max(px0, ox), max(py0, oy)
        ix1, iy1 = min(px1, ox + width), min(py1, oy + height)
        dest = (round((ix0 - px0) * sx), round((iy0 - py0) * sy),
                round((ix1 - px0) * sx), round((iy1 - py0) * sy))
        if dest[2] <= dest[0] or dest[3] <= dest[1]:
            return self.renderer(None, [], None, None, flip, size)
        # The source rectangle that maps exactly onto the rounded destination rectangle.
        box = [min(max(dest[0] / sx + px0 - ox, 0.0), width),
               min(max(dest[1] / sy + py0 - oy, 0.0), height),
               min(max(dest[2] / sx + px0 - ox, 0.0), width),
               min(max(dest[3] / sy + py0 - oy, 0.0), height)]
        box = _draft(image, box, dest[2] - dest[0], dest[3] - dest[1])
        return self.renderer(images.decode(image), box, dest, color, flip, size)


def render_pillow(image: Any, box: list, dest: Optional[Tuple[int, int, int, int]],
                  color: Optional[Tuple[Any, ...]], flip: bool, size: int) -> np.ndarray:
    """The default renderer: ndarray[S, S, 3] uint8 with Pillow.

    ``box`` (float x0, y0, x1, y1) of the decoded RGB ``image`` is resized onto ``dest`` (x0,
    y0, x1, y1) of an S x S canvas of the fill colour; ``dest`` None means no image shows.
    """
    from PIL import Image

    if dest is None:
        return np.full((size, size, 3), FILL_RGB, dtype=np.uint8)
    resized = image.resize((dest[2] - dest[0], dest[3] - dest[1]), Image.BILINEAR, box=box)
    part = resized
    if color is not None:
        part = resized.convert("RGB", color_matrix(color, lambda: ImageStat.Stat(resized).mean[:3]))
    if dest != (0, 0, size, size):
        canvas = Image.new("RGB", (size, size), FILL_RGB)
        canvas.paste(part, dest[:2])
        part = canvas
    if flip:
        part = part.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(part)


def _draft(image: Any, box: list, out_w: int, out_h: int) -> list:
    """Ask a JPEG decoder for a 1/2, 1/4 or 1/8 scale when the region shrinks at least that
    much; returns ``box`` in the (possibly smaller) decoded image's coordinates."""
    if getattr(image, "format", None) != "JPEG":
        return box
    scale = images.reduction(min((box[2] - box[0]) / out_w, (box[3] - box[1]) / out_h))
    if scale == 1:
        return box
    width, height = image.size
    images.draft(image, scale)
    fx, fy = image.size[0] / width, image.size[1] / height
    return [box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy]


def color_matrix(recipe: Tuple[Any, ...], mean_rgb: Callable[[], Sequence[float]]
                 ) -> Tuple[float, ...]:
    """The 3x4 affine colour transform (Pillow's convert matrix, row-major) of a photometric
    recipe; ``mean_rgb()`` gives the image's mean colour (0..255), needed for contrast."""
    brightness, contrast, saturation, hue, contrast_first, permutation = recipe
    matrix = np.eye(4)

    def then(step: np.ndarray) -> None:
        matrix[:] = step @ matrix

    def contrast_step() -> None:
        if contrast is None:
            return
        mean_gray = float(_GRAY @ (matrix @ np.append(mean_rgb(), 1.0))[:3])
        step = np.eye(4) * contrast
        step[3, 3] = 1.0
        step[:3, 3] = (1 - contrast) * mean_gray
        then(step)

    if brightness is not None:
        then(np.diag([brightness, brightness, brightness, 1.0]))
    if contrast_first:
        contrast_step()
    if saturation is not None:
        step = np.eye(4)
        step[:3, :3] = saturation * np.eye(3) + (1 - saturation) * np.outer(np.ones(3), _GRAY)
        then(step)
    if hue is not None:
        angle = 2 * math.pi * hue
        rotation = np.array([[1, 0, 0],
                             [0, math.cos(angle), -math.sin(angle)],
                             [0, math.sin(angle), math.cos(angle)]])
        step = np.eye(4)
        step[:3, :3] = _YIQ_TO_RGB @ rotation @ _RGB_TO_YIQ
        then(step)
    if not contrast_first:
        contrast_step()
    if permutation is not None:
        then(np.eye(4)[[*permutation, 3]])
    return tuple(float(v) for v in matrix[:3].ravel())


def centres_inside(boxes: np.ndarray, patch: Tuple[float, float, float, float]) -> np.ndarray:
    """Mask [M] of the boxes [M, 4] whose centre lies strictly inside ``patch`` (x0, y0, x1, y1)."""
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    x0, y0, x1, y1 = patch
    return (x0 < cx) & (cx < x1) & (y0 < cy) & (cy < y1)


def boxes_in_patch(boxes: np.ndarray, patch: Tuple[float, float, float, float]) -> np.ndarray:
    """Boxes [M, 4] clipped to ``patch`` and normalised to it (same units as the patch)."""
    x0, y0, x1, y1 = patch
    clipped = np.clip(boxes, (x0, y0, x0, y0), (x1, y1, x1, y1)).reshape(-1, 4)
    return (clipped - (x0, y0, x0, y0)) / (x1 - x0, y1 - y0, x1 - x0, y1 - y0)


def hflip_boxes(boxes: np.ndarray) -> np.ndarray:
    """Mirror normalised boxes [M, 4] left to right (its own inverse)."""
    return np.stack([1 - boxes[:, 2], boxes[:, 1], 1 - boxes[:, 0], boxes[:, 3]], axis=1)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU [N, M] of xyxy boxes a [N, 4] and b [M, 4]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)
