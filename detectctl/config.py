"""detectctl's configuration file: defaults for the AWS settings a user would otherwise repeat.

The file is ``$DETECTCTL_CONFIG``, else ``$XDG_CONFIG_HOME/detectctl/config.toml`` (by default
``~/.config/detectctl/config.toml``)::

    [aws]
    profile = "research"                # else AWS_PROFILE / the default profile
    region = "eu-west-1"                # else AWS_REGION / the profile's region
    role = "arn:aws:iam::123456789012:role/detectctl-sagemaker"
    bucket = "my-detectctl-bucket"      # else sagemaker-<region>-<account>
    inference_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/detectctl-serve:1"

    [defaults]
    backend = "local"                   # or "sagemaker" (the default); else DETECTCTL_BACKEND

Command-line options win over environment variables (``DETECTCTL_ROLE``, ``DETECTCTL_BUCKET``),
which win over this file.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from detectctl.errors import ConfigError

KEYS = ("profile", "region", "role", "bucket", "inference_image")
DEFAULTS_KEYS = ("backend",)


@dataclass(frozen=True)
class Config:
    """The ``[aws]`` and ``[defaults]`` tables of the configuration file (every key
    optional)."""

    profile: Optional[str] = None
    region: Optional[str] = None
    role: Optional[str] = None
    bucket: Optional[str] = None
    inference_image: Optional[str] = None
    backend: Optional[str] = None
    path: Optional[Path] = None


def config_path() -> Path:
    """Where the configuration file is looked for."""
    explicit = os.environ.get("DETECTCTL_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "detectctl" / "config.toml"


def load(path: Optional[Path] = None) -> Config:
    """Read the configuration file; a missing file is an empty configuration."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config(path=path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    values = {}
    for name, keys in (("aws", KEYS), ("defaults", DEFAULTS_KEYS)):
        values.update(_table(path, data, name, keys))
    return Config(path=path, **values)


def _table(path: Path, data: dict, name: str, keys: tuple[str, ...]) -> dict[str, str]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} in [{name}]",
                          hint="known keys: " + ", ".join(keys))
    bad = [key for key, value in table.items() if not isinstance(value, str)]
    if bad:
        raise ConfigError(f"{path}: [{name}] {bad[0]} must be a string")
    return dict(table)
