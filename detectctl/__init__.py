"""detectctl: train and serve SSD object detectors on Amazon SageMaker, or on this machine.

The SDK is importable piece by piece so that ``import detectctl`` stays instant: boto3 and
pydantic load only when a module that needs them is used.
"""

__version__ = "0.1.0"

# The SDK's entry points, imported on first use: ``detectctl.Session()`` loads detectctl.session.
_LAZY = {"Session": "detectctl.session", "TrainingJob": "detectctl.jobs",
         "Endpoint": "detectctl.endpoints"}

__all__ = ["Endpoint", "Session", "TrainingJob", "__version__"]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'detectctl' has no attribute {name!r}")
