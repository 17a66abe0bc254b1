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
