"""detectctl: train and serve SSD object detectors on Amazon SageMaker, or on this machine.

The SDK is importable piece by piece so that ``import detectctl`` stays instant: boto3 and
pydantic load only when a module that needs them is used.
"""

__version__ = "0.1.0"
