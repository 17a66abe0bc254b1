"""What every handle on a backend's resource shares (training jobs, endpoints, transform jobs):
a name, the last description, the backend that holds it, how it shows itself.

A subclass says how to describe the resource (:meth:`Resource.refresh`), which description key
holds its status (``STATUS_KEY``) and what it is called in messages (``KIND``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Optional

from detectctl.display import html_table


class Resource(ABC):
    """A handle on a job or an endpoint. Attributes read the last description;
    ``refresh()`` updates it."""

    #: ``sagemaker`` or ``local``
    backend: str = ""
    #: how often waiting and following poll the backend
    poll_seconds: float = 5.0
    #: the class name users know it by (``TrainingJob``), and its description's status key
    KIND = "Resource"
    STATUS_KEY = "Status"

    def __init__(self, name: str, description: Optional[dict[str, Any]] = None):
        self.name = name
        self._description = description

    @abstractmethod
    def refresh(self) -> dict[str, Any]:
        """Describe the resource now (and remember the description)."""

    @abstractmethod
    def summary(self) -> list[tuple[str, str]]:
        """Label/value rows: what a person wants to see about it."""

    @property
    def description(self) -> dict[str, Any]:
        return self._description if self._description is not None else self.refresh()

    @property
    def status(self) -> str:
        return self.description[self.STATUS_KEY]

    @property
    def cli_options(self) -> str:
        """What commands need to address it (`` --local`` on the local backend)."""
        return " --local" if self.backend == "local" else ""

    def __repr__(self) -> str:
        status = self._description.get(self.STATUS_KEY) if self._description else None
        where = f", backend={self.backend!r}" if self.backend != "sagemaker" else ""
        return f"{self.KIND}({self.name!r}, status={status!r}{where})"

    def _repr_html_(self) -> str:
        return html_table(self.summary())
