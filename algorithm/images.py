"""The image loader: what an encoded image must be for the detector to read it, in one place.

:func:`load_image` turns encoded bytes into 8-bit RGB pixels, or refuses them with one
:class:`ImageError` (a ``ValueError``) whose message says why:

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

The serving handlers (``algorithm/inference.py``) read every request through it.
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
    if not data:
        raise ImageError("not a readable image: no data")
    image = _open(data, max_pixels)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(f"the image is {width}x{height} = {width * height:,} pixels; the limit "
                         f"is {max_pixels:,} (a decompression bomb is refused before decoding)")
    if width < 1 or height < 1:
        raise ImageError(f"the image is {width}x{height} pixels: empty")
    if image.mode not in CONVERTIBLE_MODES + SIXTEEN_BIT_MODES:
        raise ImageError(f"unsupported image mode {image.mode} (8-bit or 16-bit grayscale, "
                         "palette, RGB, RGBA, CMYK and YCbCr are read)")
    if shrink_to is not None and image.format == "JPEG":
        factor = min(width / shrink_to[0], height / shrink_to[1])
        if factor >= 2:
            scale = 1 << min(3, int(math.log2(factor)))
            image.draft("RGB", (width // scale, height // scale))
    try:
        image.load()
        return _to_rgb(image)
    except Exception as exc:
        # Pillow's decoders report bad data with many types (OSError for truncated files,
        # SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError ...).
        raise ImageError(f"not a readable image: truncated or corrupt data ({_reason(exc)})"
                         ) from None


def _open(data: bytes, max_pixels: int) -> Any:
    """Pillow's lazily opened image: the header is read, the pixels are not."""
    try:
        with warnings.catch_warnings():
            # Our own limit applies below; Pillow's warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=FORMATS)
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
