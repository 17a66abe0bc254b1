"""The exceptions detectctl raises. The CLI prints each as one line on stderr.

``DetectctlError`` is the root; ``exit_code`` is what the CLI exits with (1 for failures,
2 for input the user can fix: bad hyperparameters, an unknown instance type, a bad file).
``hint`` says what to do about it.
"""

from __future__ import annotations


class DetectctlError(Exception):
    """Base class of every error detectctl reports to its users."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(DetectctlError):
    """The user's input is wrong and can be fixed by changing it."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration file or setting is missing or malformed."""


class InstanceTypeError(UsageError):
    """An instance type is unknown, or cannot do what was asked of it."""


class HyperparameterValidationError(UsageError):
    """Hyperparameters failed validation; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str], *, source: str | None = None):
        self.problems = list(problems)
        self.source = source
        count = len(self.problems)
        where = f"{source}: " if source else ""
        super().__init__(
            f"{where}{count} invalid hyperparameter{'s' if count != 1 else ''}: "
            + "; ".join(self.problems)
        )

    def lines(self) -> list[str]:
        prefix = f"{self.source}: " if self.source else ""
        return [prefix + p for p in self.problems]


class MissingDependencyError(DetectctlError):
    """A package that this feature needs is not installed."""


class AwsError(DetectctlError):
    """An AWS call failed; ``code`` is AWS's error code, ``operation`` the API name."""

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None,
                 operation: str | None = None):
        super().__init__(message, hint=hint)
        self.code = code
        self.operation = operation


class CredentialsError(AwsError):
    """No AWS credentials, or expired or rejected ones."""


class AccessDeniedError(AwsError):
    """The credentials (or the execution role) lack an IAM permission; ``action`` names it."""

    def __init__(self, message: str, *, action: str | None = None, **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.action = action


class QuotaExceededError(AwsError):
    """An account quota (service limit) stops the request; ``quota`` names it."""

    def __init__(self, message: str, *, quota: str | None = None, **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.quota = quota


class ThrottlingError(AwsError):
    """AWS kept throttling a call after botocore's retries."""


class AwsValidationError(AwsError):
    """AWS rejected a request's field (a ValidationException); ``field`` names it."""

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None, **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.field = field


class NotFoundError(AwsError):
    """A training job, endpoint, bucket or object does not exist."""


class WaitTimeoutError(DetectctlError):
    """Waiting for a job or an endpoint took longer than the timeout; it goes on running."""


class JobFailedError(DetectctlError):
    """A training job ended Failed or Stopped; ``status`` and ``reason`` say how."""

    def __init__(self, message: str, *, status: str, reason: str | None = None,
                 hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.reason = reason


class EndpointFailedError(DetectctlError):
    """An endpoint could not be created or updated; ``reason`` is DescribeEndpoint's."""

    def __init__(self, message: str, *, reason: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.reason = reason


class DatasetRejectedError(DetectctlError):
    """Client-side validation found problems in a dataset; nothing was uploaded."""

    def __init__(self, message: str, *, problems: list[str], hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = list(problems)


class PretrainedWeightsError(DetectctlError):
    """torchvision's ImageNet weights for the base network are not usable on this machine: not
    in the torch hub cache and the download failed (offline, an HTTP error), the cache folder is
    not writable, or the file's SHA-256 does not start with the hash in its name.

    Exit 1, not 2: the hyperparameters are right (``use_pretrained_model=1`` is the default);
    the machine lacks a file. The hint says where to put it, or ``use_pretrained_model=0``.
    ``file_name``, ``folder`` (the cache folder) and ``url`` say which file, where, from where.
    """

    def __init__(self, message: str, *, file_name: str, folder: str, url: str,
                 hint: str | None = None):
        super().__init__(message, hint=hint)
        self.file_name = file_name
        self.folder = folder
        self.url = url


class OutputError(UsageError):
    """An output that cannot be written as asked: it exists already, its folder is a file or is
    not writable, or the disk filled up. Nothing was written (see detectctl/datasets/outputs.py)."""


class DatasetError(UsageError):
    """A dataset that cannot be used as asked: unreadable entries, no images, a class id or a
    format that does not fit. The message names the file, record or field."""
