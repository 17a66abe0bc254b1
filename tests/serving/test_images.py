"""The image loader (algorithm/images.py): what is converted, what is refused, and that serving
sees the same pixels as validation in training."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image, ImageFile

from algorithm import images
from algorithm.data.augment import SSDAugmentation
from tests.serving.support import encode, photo, png_header_only


def _rgb(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image)


@pytest.mark.parametrize("mode, fmt", [("L", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("P", "GIF"),
                                       ("RGBA", "PNG"), ("1", "PNG"), ("CMYK", "JPEG"),
                                       ("L", "JPEG"), ("RGB", "BMP"), ("RGB", "TIFF"),
                                       ("RGB", "WEBP")])
def test_modes_and_formats_become_8_bit_rgb(mode, fmt):
    source = photo(40, 30).convert(mode)
    image = images.load_image(encode(source, fmt))
    assert image.size == (40, 30)
    assert _rgb(image).dtype == np.uint8


def test_palette_with_transparency_drops_it():
    source = Image.new("P", (8, 8), 3)
    source.putpalette([0, 0, 0, 10, 20, 30, 0, 0, 0, 200, 100, 50] + [0] * 756)
    data = encode(source, "PNG", transparency=3)
    assert _rgb(images.load_image(data))[0, 0].tolist() == [200, 100, 50]


def test_16_bit_grayscale_is_scaled_to_8_bits():
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    source = Image.fromarray(values)
    assert source.mode.startswith("I;16")
    pixels = _rgb(images.load_image(encode(source, "PNG")))
    assert pixels[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (pixels[..., 0] == pixels[..., 2]).all()


def test_one_pixel_is_an_image():
    assert images.load_image(encode(Image.new("RGB", (1, 1), (9, 8, 7)), "PNG")).size == (1, 1)


@pytest.mark.parametrize("data, reason", [
    (b"", "no data"),
    (b"just some text", "not a readable image"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not a readable image"),
    (encode(photo(), "JPEG")[:400], "not a readable image"),
    (encode(photo(), "PNG")[:600], "truncated or corrupt"),
    (encode(Image.new("F", (4, 4)), "TIFF"), "unsupported image mode F"),
])
def test_unreadable_data_is_refused_with_its_reason(data, reason):
    with pytest.raises(images.ImageError, match=reason):
        images.load_image(data)


def test_truncated_jpeg_is_refused():
    data = encode(photo(200, 150), "JPEG", quality=95)
    with pytest.raises(images.ImageError, match="truncated or corrupt"):
        images.load_image(data[: len(data) // 2])


def test_decompression_bombs_are_refused_from_the_header(monkeypatch):
    def no_decoding(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    started = time.monotonic()
    # 10^10 pixels (30 GB of RGB): Pillow itself refuses it while reading the header.
    with pytest.raises(images.ImageError, match="more than 89,478,485 pixels"):
        images.load_image(png_header_only(100_000, 100_000))
    # 10^8 pixels: between Pillow's warning and its error; our limit refuses it.
    with pytest.raises(images.ImageError, match="10000x10000 = 100,000,000 pixels"):
        images.load_image(png_header_only(10_000, 10_000))
    # A real image over a lower limit, refused before decoding too.
    with pytest.raises(images.ImageError, match="the limit is 1,000"):
        images.load_image(encode(photo(40, 30), "PNG"), max_pixels=1000)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("size, shape", [((160, 120), 128), ((500, 375), 128), ((1001, 777), 300),
                                         ((333, 999), 128), ((2000, 1333), 300), ((37, 21), 128)])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_serving_pixels_equal_validation_pixels(size, shape, fmt):
    """Inference resizes exactly as training validates (same reduced-scale JPEG decode)."""
    import torch

    from algorithm.inference import Predictor, Request

    data = encode(photo(*size), fmt)
    expected, *_ = SSDAugmentation(shape, train=False)(
        data, np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0, bool))
    hp = type("HP", (), {"image_shape": shape})()
    predictor = Predictor(model=None, hyperparameters=hp, classes=[], device=torch.device("cpu"))
    pixels = predictor.prepare(Request(data, {}))
    assert pixels.shape == (3, shape, shape)
    got = (pixels * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("size, shape", [((500, 375), 300), ((2000, 1333), 300), ((96, 72), 128)])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_serving_tensor_equals_the_training_jobs_validation_tensor(size, shape, fmt):
    """The validation item the training job scores (its dataset, whatever renderer it uses
    for training) is the tensor an endpoint feeds the model, bit for bit."""
    import torch

    from algorithm.data.dataset import _Augmented, to_tensors
    from algorithm.inference import Predictor, Request

    data = encode(photo(*size), fmt)
    validation = _Augmented(shape, train=False, seed=0)
    expected = to_tensors(*validation.augment(data, np.zeros((0, 4)), np.zeros(0, np.int64),
                                              np.zeros(0, bool)))[0]
    hp = type("HP", (), {"image_shape": shape})()
    predictor = Predictor(model=None, hyperparameters=hp, classes=[], device=torch.device("cpu"))
    assert torch.equal(predictor.prepare(Request(data, {})), expected)
