"""Detections as endpoints answer them, whichever backend serves the model.

The response is the built-in algorithm's: ``{"prediction": [[class_id, score, xmin, ymin, xmax,
ymax], ...]}``, box corners normalised to [0, 1].
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from detectctl.errors import DetectctlError

# What an endpoint takes: the built-in algorithm's request content types, by file suffix.
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
DEFAULT_CONTENT_TYPE = "application/x-image"
# SageMaker's InvokeEndpoint limit on a request body.
MAX_BODY_BYTES = 6 * 1024 * 1024


@dataclass(frozen=True)
class Detection:
    """One detected object; box corners normalized to [0, 1]."""

    class_id: int
    score: float
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    class_name: Optional[str] = None

    @property
    def label(self) -> str:
        return self.class_name or f"class {self.class_id}"

    def to_dict(self) -> dict[str, Any]:
        return {"class_id": self.class_id, "class_name": self.class_name, "score": self.score,
                "box": [self.xmin, self.ymin, self.xmax, self.ymax]}


def parse_prediction(body: bytes, *, threshold: float = 0.0,
                     class_names: Optional[list[str]] = None) -> list[Detection]:
    """Detections from the endpoint's JSON answer, best first, those below ``threshold`` left
    out."""
    try:
        rows = json.loads(body)["prediction"]
        found = []
        for row in rows:
            class_id, score, *box = row
            if float(score) < threshold:
                continue
            name = (class_names[int(class_id)]
                    if class_names and 0 <= int(class_id) < len(class_names) else None)
            found.append(Detection(int(class_id), float(score), *map(float, box),
                                   class_name=name))
    except (ValueError, KeyError, TypeError):
        raise DetectctlError("the endpoint's answer is not a detectctl prediction",
                             hint="is the endpoint serving a detectctl model?") from None
    return sorted(found, key=lambda d: -d.score)
