"""Helpers for the export tests: a tiny model whose detections depend on the image, images
decoded as an endpoint decodes them, and a comparison of detections."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import numpy as np

from tests.serving.support import encode, photo, save_tiny_model

TOLERANCE = 1e-4


def save_image_dependent_model(model_dir: Path) -> Path:
    """The serving tests' tiny SSDLite (:func:`save_tiny_model`) with its convolutions redrawn
    (He initialisation x 0.7).

    As saved there, its untrained convolutions (N(0, 0.03)) fade the image out within a few
    layers: the BatchNorm biases decide the scores, translated copies of one box score exactly
    alike, and which of several equal boxes NMS keeps is arbitrary in every implementation
    (the server's included). Redrawn, the detections depend on the image and no two scores tie,
    so comparing runtimes compares the model, not tie-breaking."""
    import torch

    from algorithm import artifact

    save_tiny_model(model_dir)
    model, hp, classes = artifact.load(model_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(layer.weight)
                layer.weight.mul_(0.7)
    artifact.save(model_dir, model, hp.to_sagemaker(), classes)
    return model_dir


def jpeg_images() -> List[bytes]:
    """Four JPEGs: three of the synthetic-shapes dataset (`detectctl dataset synth`: coloured
    shapes on textured backgrounds, 320x240 and 500x375) and one noisy photo-like picture."""
    from detectctl.datasets.synth import synth_image

    images = [synth_image(index, 7, 3, size)[0]
              for index, size in ((4, (320, 240)), (5, (500, 375)), (2, (320, 240)))]
    return [*images, encode(photo(200, 150, seed=3), "JPEG", quality=90)]


def endpoint_answers(model_dir: Path, jpegs: List[bytes]) -> Tuple[np.ndarray, List[np.ndarray]]:
    """The images as the exported graph takes them (ndarray[N, 3, S, S] float32: decoded and
    resized by the server's own code) and what the server's handlers answer for each."""
    from algorithm import inference

    predictor = inference.model_fn(str(model_dir))
    requests = [inference.input_fn(data, "image/jpeg") for data in jpegs]
    pixels = np.stack([predictor.prepare(r).numpy() for r in requests])
    answers = [inference.predict_fn(r, predictor) for r in requests]
    return pixels, answers


def assert_same_detections(expected: np.ndarray, rows: np.ndarray, count: int,
                           tolerance: float = TOLERANCE) -> None:
    """``rows[:count]`` are ``expected``: as many, the scores best first within ``tolerance``,
    each expected row found once with the same class and its score and box within
    ``tolerance`` (two scores a rounding apart may come in either order); the rows after
    ``count`` are padding."""
    found = np.asarray(rows[:count], dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert found.shape == expected.shape, (found.shape, expected.shape)
    np.testing.assert_allclose(found[:, 1], expected[:, 1], rtol=0, atol=tolerance)
    unused = np.ones(len(found), dtype=bool)
    for i, row in enumerate(expected):
        near = unused & (found[:, 0] == row[0]) & (
            np.abs(found[:, 1:] - row[1:]).max(axis=1) <= tolerance)
        assert near.any(), f"expected detection {i} {row.tolist()} is missing"
        unused[np.flatnonzero(near)[0]] = False
    padding = np.asarray(rows[count:])
    assert (padding == np.array([-1, 0, 0, 0, 0, 0], np.float32)).all()


def no_ties(detections: np.ndarray) -> bool:
    """No two detections score exactly alike: which of two equal boxes NMS keeps is arbitrary,
    so a comparison of runtimes needs answers without such choices."""
    return len(np.unique(detections[:, 1])) == len(detections)
