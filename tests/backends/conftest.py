"""The local backend's fixtures (a temporary DETECTCTL_HOME, tiny data, clean-up)."""

from tests.local.conftest import data, home, jobs_to_clean  # noqa: F401
