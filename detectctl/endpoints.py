"""``Endpoint``: a handle on a model being served, the same whichever backend serves it.

    >>> endpoint = detectctl.Session().endpoint("my-detector")           # doctest: +SKIP
    >>> for d in endpoint.predict("photo.jpg", threshold=0.5):           # doctest: +SKIP
    ...     print(d.label, d.score, d.xmin, d.ymin, d.xmax, d.ymax)

Requests and responses are those of the built-in algorithm: an image in (JPEG or PNG), and
``{"prediction": [[class_id, score, xmin, ymin, xmax, ymax], ...]}`` out, coordinates in [0, 1].
A backend subclass says how to describe, invoke and delete the endpoint.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from detectctl.backend import not_available
from detectctl.detections import (
    CONTENT_TYPES,
    DEFAULT_CONTENT_TYPE,
    MAX_BODY_BYTES,
    Detection,
    parse_prediction,
)
from detectctl.errors import NotFoundError, UsageError
from detectctl.logs import JobLogs
from detectctl.resources import Resource

if TYPE_CHECKING:
    from detectctl.logs import LogStreams


class Endpoint(Resource):
    """An endpoint serving a detectctl model."""

    KIND = "Endpoint"
    STATUS_KEY = "EndpointStatus"
    #: requests served over the last 24 hours, where the backend's listing counts them
    invocations_24h: Optional[float] = None

    @abstractmethod
    def invoke(self, body: bytes, content_type: str, *,
               custom_attributes: Optional[str] = None) -> bytes:
        """POST ``body`` to the endpoint; the raw answer."""

    @abstractmethod
    def delete(self) -> list[str]:
        """Delete the endpoint and what serves it; return what was deleted."""

    @abstractmethod
    def class_names(self) -> Optional[list[str]]:
        """The names in the served model's ``classes.json``, or None when it has none."""

    @abstractmethod
    def log_streams(self) -> LogStreams:
        """Where the serving containers' (or the local server's) log streams are."""

    @property
    def log_prefix(self) -> str:
        """What the endpoint's stream names start with (before a ``/``)."""
        return self.name

    def logs(self, *, follow: bool = False, since: Optional[datetime] = None,
             poll_seconds: float = 2.0) -> JobLogs:
        """The serving log events, every instance merged in time order (an iterator); with
        ``follow``, until the endpoint fails or is deleted (or Ctrl-C)."""

        def status() -> str:
            try:
                current = self.refresh()["EndpointStatus"]
            except NotFoundError:
                return "Stopped"
            return "Failed" if current in ("Failed", "OutOfService") else "InProgress"

        return JobLogs(self.log_streams(), self.log_prefix, since=since,
                       status=status if follow else None, poll_seconds=poll_seconds)

    @property
    @abstractmethod
    def instance_type(self) -> str:
        """What serves the model (``ml.c5.xlarge``, ``local``)."""

    @property
    @abstractmethod
    def instance_count(self) -> int:
        """How many instances (or local servers) serve it."""

    @property
    def cost_per_hour(self) -> Optional[float]:
        """What it costs while it runs (None where nothing is billed)."""
        return None

    @property
    def idle(self) -> bool:
        """In service for a long time without a request (where the backend can tell)."""
        return False

    def details(self) -> dict[str, Any]:
        """Everything known about the endpoint, for ``--json``."""
        return self.description

    @property
    def age(self) -> timedelta:
        created = self.description["CreationTime"]
        return datetime.now(timezone.utc) - created.astimezone(timezone.utc)

    @property
    def failure_reason(self) -> Optional[str]:
        return self.description.get("FailureReason")

    def exists(self) -> bool:
        try:
            self.refresh()
        except NotFoundError:
            return False
        return True

    def to_sagemaker(self) -> Any:
        """The sagemaker SDK's resource for this endpoint (``sagemaker.core.resources.Endpoint``),
        for what the SDK offers beyond detectctl. SageMaker endpoints only; needs
        ``pip install 'detectctl[sagemaker]'``."""
        raise not_available("to_sagemaker()", self.backend,
                            hint="it hands back sagemaker SDK resources, which exist for "
                                 "SageMaker endpoints only")

    def predict(self, image: Union[bytes, str, Path], *, content_type: Optional[str] = None,
                threshold: float = 0.0,
                class_names: Optional[list[str]] = None) -> list[Detection]:
        """Detections in one image (a path, or encoded bytes with their ``content_type``)."""
        if isinstance(image, (str, Path)):
            path = Path(image)
            content_type = content_type or CONTENT_TYPES.get(path.suffix.lower(),
                                                             DEFAULT_CONTENT_TYPE)
            try:
                image = path.read_bytes()
            except OSError as exc:
                raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
        if len(image) > MAX_BODY_BYTES:
            raise UsageError(f"the image is {len(image) / 2**20:.1f} MiB; endpoints take at "
                             "most 6 MiB", hint="resize or recompress it")
        body = self.invoke(image, content_type or DEFAULT_CONTENT_TYPE)
        return parse_prediction(body, threshold=threshold, class_names=class_names)
