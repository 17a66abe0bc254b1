"""The image loader: what an encoded image must be for the detector to read it, in one place.

:func:`load_image` turns encoded bytes into 8-bit RGB pixels, or refuses them with one
:class:`ImageError` (a ``ValueError``) whose message says why. It is two steps, each usable on its
own: :func:`open_image` reads and checks the header only (format, size, mode; nothing decoded),
and :func:`decode` decodes a checked image to RGB, at a reduced scale for a JPEG when asked.

- formats: JPEG, PNG, BMP, GIF (first frame), TIFF and WebP, whatever the declared content type;
  anything else (including formats that would run an external program, such as EPS) is
  "not a readable image";
- size: from 1 pixel up to :data:`MAX_PIXELS` pixels (width x height), read from the image's
  header before anything is decoded, so a decompression bomb (a small file declaring an enormous
  image) is refused without allocating its pixels;
- modes: grayscale, grayscale with alpha, palette (with or without transparency), RGBA, CMYK,
  YCbCr and 16-bit grayscale are converted to 8-bit RGB (alpha dropped, 16-bit values scaled to
  8 bits); floating-point and other modes are refused;
- data: truncated or corrupt data is refused, whichever decoder notices.

Every reader of images goes through it: the serving handlers (``algorithm/inference.py``), the
training pipeline (``algorithm/data/augment.py``), and on the client ``detectctl dataset
validate``, ``stats``, ``convert`` and ``preview``. So an image is accepted or refused alike
everywhere, with the same message.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import Any, Optional, Tuple

import numpy as np
from PIL import Image

# Pillow's own default limit (Image.MAX_IMAGE_PIXELS): about a quarter gigapixel, 268 MB of RGB.
MAX_PIXELS = 89_478_485
FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP")
# Modes Pillow converts to RGB as they are.
CONVERTIBLE_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK",
                     "YCbCr")
# 16-bit grayscale (Pillow opens older 16-bit PNGs as 32-bit "I" holding 0..65535).
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class ImageError(ValueError):
    """Bytes that are not an image the detector can read; the message says why."""


def load_image(data: bytes, shrink_to: Optional[Tuple[int, int]] = None,
               max_pixels: int = MAX_PIXELS) -> Any:
    """The decoded image, a ``PIL.Image.Image`` in mode ``RGB``.

    Args:
        data: the encoded image.
        shrink_to: (width, height) the caller will resize the image to. A JPEG that shrinks by
            2x or more is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling), cheaper than
            decoding it whole, exactly as training's resize does (``algorithm/data/augment.py``).
        max_pixels: the most pixels (width x height) accepted.

    Raises:
        ImageError: the bytes are not an image of the accepted formats, sizes and modes.
    """
    image = open_image(data, max_pixels)
    scale = 1
    if shrink_to is not None:
        width, height = image.size
        scale = reduction(min(width / shrink_to[0], height / shrink_to[1]))
    return decode(image, scale)


def model_pixels(data: bytes, size: int, max_pixels: int = MAX_PIXELS) -> Any:
    """The image as an SSD of ``image_shape`` ``size`` takes it at inference: ndarray[S, S, 3]
    uint8 RGB, decoded by :func:`load_image` (a JPEG 2x or more larger at reduced scale) and
    stretched to ``size x size`` with Pillow's bilinear filter.

    Validation during training and every endpoint prepare images with this one function, so a
    model scores the same images identically in both (docs/evaluation.md)."""
    image = load_image(data, shrink_to=(size, size), max_pixels=max_pixels)
    return np.asarray(image.resize((size, size), Image.BILINEAR))


def open_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Any:
    """The image with its header read and checked (format, size, mode); nothing decoded yet.

    ``image.size``, ``image.mode`` and ``image.format`` are what the header declares. Raises
    :class:`ImageError` as :func:`load_image` does.
    """
    if not data:
        raise ImageError("not a readable image: no data")
    return _checked(_open(io.BytesIO(data), max_pixels), max_pixels)


def image_size(path: str, max_pixels: int = MAX_PIXELS) -> Tuple[int, int]:
    """(width, height) from the header of the image file ``path``, checked as
    :func:`open_image` checks it. Raises :class:`ImageError`, or ``OSError`` when the file
    cannot be read."""
    with open(path, "rb") as f:
        if not f.read(1):
            raise ImageError("not a readable image: no data")
        f.seek(0)
        return _checked(_open(f, max_pixels), max_pixels).size


def _checked(image: Any, max_pixels: int) -> Any:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(f"the image is {width}x{height} = {width * height:,} pixels; the limit "
                         f"is {max_pixels:,} (a decompression bomb is refused before decoding)")
    if width < 1 or height < 1:
        raise ImageError(f"the image is {width}x{height} pixels: empty")
    if image.mode not in CONVERTIBLE_MODES + SIXTEEN_BIT_MODES:
        raise ImageError(f"unsupported image mode {image.mode} (8-bit or 16-bit grayscale, "
                         "palette, RGB, RGBA, CMYK and YCbCr are read)")
    return image


def reduction(factor: float) -> int:
    """The JPEG decoding scale, 1, 2, 4 or 8, for an image about to shrink by ``factor``."""
    return 1 << min(3, int(math.log2(factor))) if factor >= 2 else 1


def draft(image: Any, scale: int) -> None:
    """Have a JPEG decoded at 1/``scale`` (libjpeg's DCT scaling); other formats decode whole."""
    if scale > 1 and image.format == "JPEG":
        width, height = image.size
        image.draft("RGB", (max(1, width // scale), max(1, height // scale)))


def decode(image: Any, scale: int = 1) -> Any:
    """The pixels of an image from :func:`open_image`, in mode ``RGB`` (8 bits), a JPEG at
    1/``scale`` of its size. Raises :class:`ImageError` for truncated or corrupt data."""
    try:
        draft(image, scale)
        image.load()
        return _to_rgb(image)
    except Exception as exc:
        # Pillow's decoders report bad data with many types (OSError for truncated files,
        # SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError ...).
        raise ImageError(f"not a readable image: truncated or corrupt data ({_reason(exc)})"
                         ) from None


def _open(stream: Any, max_pixels: int) -> Any:
    """Pillow's lazily opened image: the header is read, the pixels are not."""
    try:
        with warnings.catch_warnings():
            # Our own limit applies below; Pillow's warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(stream, formats=FORMATS)
    except Image.DecompressionBombError:
        # Pillow refuses more than twice its MAX_IMAGE_PIXELS before we see the size.
        raise ImageError(f"the image declares more than {max_pixels:,} pixels (a decompression "
                         "bomb is refused before decoding)") from None
    except Exception as exc:
        if isinstance(exc, Image.UnidentifiedImageError):
            raise ImageError("not a readable image: the data is not a "
                             f"{', '.join(FORMATS)} image") from None
        raise ImageError(f"not a readable image: corrupt header ({_reason(exc)})") from None


def _to_rgb(image: Any) -> Any:
    if image.mode == "RGB":
        return image
    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.int64)
        gray = np.clip((values + 128) // 257, 0, 255).astype(np.uint8)  # 0..65535 -> 0..255
        return Image.fromarray(gray, "L").convert("RGB")
    with warnings.catch_warnings():
        # "Palette images with Transparency expressed in bytes should be converted to RGBA":
        # the transparency is dropped, as the alpha of RGBA images is.
        warnings.simplefilter("ignore", UserWarning)
        return image.convert("RGB")


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__
