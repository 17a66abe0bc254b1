"""Helpers for the serving tests: a tiny untrained model artifact, images, an HTTP client."""

from __future__ import annotations

import http.client
import io
import json
import socket
import struct
import zlib
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
from PIL import Image

HYPERPARAMETERS = {"num_classes": "3", "base_network": "mobilenet-v3-large",
                   "image_shape": "128", "use_pretrained_model": "0", "nms_threshold": "0.45"}
CLASSES = ["circle", "square", "triangle"]


def save_tiny_model(model_dir: Path) -> Path:
    """An untrained SSDLite (mobilenet-v3-large, image_shape 128, 3 classes) artifact.

    Its BatchNorm biases are drawn at random: as built, every box scores 0.25 for every class,
    and tests of thresholds and ordering need scores that differ."""
    import torch

    from algorithm import artifact
    from algorithm.ssd import build_ssd

    torch.manual_seed(0)
    model = build_ssd("mobilenet-v3-large", 3, 128)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.bias.normal_(0, 1.0)
    artifact.save(model_dir, model, dict(HYPERPARAMETERS), CLASSES)
    return model_dir


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(width: int = 160, height: int = 120, seed: int = 0) -> Image.Image:
    """A noisy RGB picture (so that JPEG sizes and decodes are realistic)."""
    rng = np.random.default_rng(seed)
    pixels = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR declaring ``width`` x ``height`` RGB, then one empty IDAT: a
    decompression bomb's header, a few dozen bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def request(url: str, method: str = "GET", path: str = "/ping", body: Optional[bytes] = None,
            headers: Optional[Dict[str, str]] = None, timeout: float = 30
            ) -> Tuple[int, Dict[str, str], bytes]:
    """(status, headers, body) of one request on a fresh connection."""
    host, port = url.split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def invoke(url: str, body: bytes, content_type: Optional[str] = "image/jpeg",
           **headers: str) -> Tuple[int, Dict[str, str], dict]:
    """POST /invocations; (status, headers, parsed JSON body)."""
    sent = {k.replace("_", "-"): v for k, v in headers.items()}
    if content_type is not None:
        sent["Content-Type"] = content_type
    status, answer_headers, data = request(url, "POST", "/invocations", body, sent)
    return status, answer_headers, json.loads(data)


def raw_connection(url: str) -> socket.socket:
    host, port = url.split("//")[1].split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def read_response(sock: socket.socket) -> Tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 response read from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next((int(line.split(":")[1]) for line in lines
                   if line.lower().startswith("content-length")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), body


def check_rows(prediction: list, max_rows: int = 200, threshold: float = 0.0) -> None:
    """Rows [class_id, score, xmin, ymin, xmax, ymax]: known classes, normalised, best first."""
    rows = np.asarray(prediction, dtype=np.float64).reshape(-1, 6)
    assert len(rows) <= max_rows
    assert set(rows[:, 0].tolist()) <= {0.0, 1.0, 2.0}
    assert (rows[:, 1] > threshold).all() and (rows[:, 1] <= 1).all()
    assert (np.diff(rows[:, 1]) <= 0).all(), "not best first"
    assert (rows[:, 2:] >= 0).all() and (rows[:, 2:] <= 1).all()
    assert (rows[:, 4] >= rows[:, 2]).all() and (rows[:, 5] >= rows[:, 3]).all()
