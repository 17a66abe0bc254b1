"""The class names of a deployed model: ``classes.json`` at the top of its model.tar.gz.

Training writes ``classes.json`` (``{"classes": ["name of class 0", ...]}``) into
``/opt/ml/model``, so it sits at the top level of the job's model.tar.gz. Reading it streams the
archive from S3 and stops at that member: nothing after it is downloaded or decompressed. The
names are then cached in ``$XDG_CACHE_HOME/detectctl/classes/`` (by default
``~/.cache/detectctl/classes/``), keyed by the archive's URI and ETag, so later look-ups cost one
HeadObject and an archive replaced at the same URI is read again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from detectctl.artifacts import from_archive
from detectctl.errors import DetectctlError
from detectctl.s3uri import split_s3_uri

if TYPE_CHECKING:
    from detectctl.sagemaker.endpoints import SageMakerEndpoint
    from detectctl.session import Session


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "detectctl" / "classes"


def for_model(session: Session, model_data: str) -> Optional[list[str]]:
    """The class names of the model.tar.gz at ``model_data`` (an S3 URI), from the cache or the
    archive; None when it has no ``classes.json``."""
    bucket, key = split_s3_uri(model_data)
    etag = session.aws.call("s3", "head_object", Bucket=bucket, Key=key).get("ETag", "")
    cached = cache_dir() / (hashlib.sha256(f"{model_data}\n{etag}".encode()).hexdigest()
                            + ".json")
    try:
        return json.loads(cached.read_text(encoding="utf-8"))["classes"]
    except (OSError, ValueError, KeyError):
        pass
    names = session.aws.read_object(bucket, key, lambda body: from_archive(body, model_data))
    _write(cached, {"model": model_data, "etag": etag, "classes": names})
    return names


def _write(path: Path, doc: dict) -> None:
    """Write the cache entry atomically; a cache that cannot be written is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False,
                                         encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(f.name, path)
    except OSError:
        pass


def for_endpoint(endpoint: SageMakerEndpoint) -> Optional[list[str]]:
    """The class names of the model an endpoint serves (its first variant's)."""
    aws = endpoint.session.aws
    variant = endpoint.config["ProductionVariants"][0]
    model = aws.call("sagemaker", "describe_model", ModelName=variant["ModelName"])
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    model_data = container.get("ModelDataUrl")
    if not model_data:
        raise DetectctlError(f"endpoint {endpoint.name}: its model {variant['ModelName']} has "
                             "no model.tar.gz")
    return for_model(endpoint.session, model_data)
