"""The own-image Dockerfiles (templates/docker/) against the code, without Docker.

Each Dockerfile lists its base images in its header, one per GPU generation (and one for CPU
hosts): that list must be exactly what the instance catalog maps the families to, and the
default BASE one of them. What it copies must exist and be let through by its .dockerignore;
what it runs must be what the code answers to (the training toolkit's entry point kept, and
detectctl's own train.py beside algorithm/; the serving image's `serve` giving SageMaker's
address and model directory).
"""

from __future__ import annotations

import json
import re
import shlex
from collections import defaultdict
from fnmatch import fnmatch
from pathlib import Path

import pytest

from detectctl import instances

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "templates" / "docker"
IMAGES = {"training.Dockerfile": instances.TRAINING, "serving.Dockerfile": instances.INFERENCE}
_BASE_LINE = re.compile(r"^#\s+(pytorch-[a-z]+:\S+)\s+([a-z0-9, ]+)$")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, rest = text.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def build_args(path: Path) -> dict[str, str]:
    """The ARG defaults declared before FROM."""
    args = {}
    for keyword, rest in instructions(path):
        if keyword == "FROM":
            break
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
    return args


def base_image(path: Path) -> str:
    """The FROM image with the build arguments' defaults filled in."""
    args = build_args(path)
    (rest,) = [rest for keyword, rest in instructions(path) if keyword == "FROM"]
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest)


def listed_bases(path: Path) -> dict[str, set[str]]:
    """The header's base images -> the instance families it names for each."""
    listed = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _BASE_LINE.match(line)
        if match:
            listed[match.group(1)] = {f.strip() for f in match.group(2).split(",")}
    return listed


def catalog_bases(scope: str) -> dict[str, set[str]]:
    """What the instance catalog maps: ``pytorch-<scope>:<tag>`` -> instance families."""
    mapped: dict[str, set[str]] = defaultdict(set)
    for instance in instances.catalog():
        if scope == instances.TRAINING and not instance.can_train:
            continue
        image = instances.framework_image(instance, scope)
        processor = "gpu" if instance.has_gpu else "cpu"
        mapped[f"pytorch-{scope}:{image.version}-{processor}-{image.python}"].add(
            instance.family)
    return dict(mapped)


def copies(path: Path) -> list[tuple[str, str]]:
    """(source, destination) of every COPY."""
    found = []
    for keyword, rest in instructions(path):
        if keyword == "COPY":
            *sources, destination = shlex.split(rest)
            found += [(source, destination) for source in sources]
    return found


def environment(path: Path) -> dict[str, str]:
    values = {}
    for keyword, rest in instructions(path):
        if keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                values[name] = value
    return values


def ignored(path: Path, relative: str) -> bool:
    """Whether the Dockerfile's own .dockerignore keeps ``relative`` out of the context
    (the last matching pattern wins; ``!`` lets a path in)."""
    patterns = [line.strip() for line in
                path.with_name(path.name + ".dockerignore").read_text("utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    excluded = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch(relative, pattern) or relative.startswith(pattern + "/"):
            excluded = not keep
    return excluded


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_base_images_are_the_catalogs_one_per_generation(name):
    path = DOCKER / name
    scope = IMAGES[name]
    assert listed_bases(path) == catalog_bases(scope)
    base = build_args(path)["BASE"]
    assert base in catalog_bases(scope)
    registry = build_args(path)["REGISTRY"]
    region = registry.split(".")[3]
    image = next(i for i in instances.images(scope)
                 if base.split(":")[1].startswith(i.version + "-"))
    processor = base.split("-")[-2]
    assert base_image(path) == image.uri(region, processor)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_what_is_copied_exists_and_is_in_the_build_context(name):
    path = DOCKER / name
    assert copies(path)
    for source, _ in copies(path):
        assert (ROOT / source).exists(), source
        assert not ignored(path, source), f"{source} is left out by the .dockerignore"
    assert ignored(path, ".venv") and ignored(path, "tests")
    assert ignored(path, "algorithm/__pycache__")


def test_training_image_keeps_the_toolkit_and_holds_the_source_archives_code():
    from detectctl.packaging import ENTRY_POINT, ENTRY_POINT_SOURCE

    path = DOCKER / "training.Dockerfile"
    keywords = [keyword for keyword, _ in instructions(path)]
    # SageMaker runs `train`: the base image's entry point (the toolkit) must stay.
    assert "ENTRYPOINT" not in keywords and "CMD" not in keywords
    env = environment(path)
    assert env["SAGEMAKER_PROGRAM"] == ENTRY_POINT
    directory = env["SAGEMAKER_SUBMIT_DIRECTORY"]
    copied = dict(copies(path))
    assert copied["algorithm"] == f"{directory}/algorithm"
    (entry,) = [source for source, target in copied.items()
                if target == f"{directory}/{ENTRY_POINT}"]
    assert (ROOT / entry).read_bytes() == ENTRY_POINT_SOURCE


def test_serving_image_answers_serve_as_sagemaker_starts_it():
    from algorithm import serve

    path = DOCKER / "serving.Dockerfile"
    found = dict(instructions(path))
    entry, command = json.loads(found["ENTRYPOINT"]), json.loads(found["CMD"])
    assert entry == ["python", "-m", "algorithm.serve"] and command == ["serve"]
    # `docker run IMAGE serve` replaces CMD with `serve`: the arguments the server gets.
    settings = serve.settings_from(["serve"], environ={})
    assert (settings.host, settings.port, settings.model_dir) == ("0.0.0.0", 8080,
                                                                   "/opt/ml/model")
    assert serve.settings_from(["serve"], environ={"SAGEMAKER_BIND_TO_PORT": "9000"}).port == 9000
    # `python -m algorithm.serve` finds the package copied into the working directory.
    copied = dict(copies(path))
    assert copied["algorithm"] == found["WORKDIR"] + "/algorithm"
    assert found["EXPOSE"] == "8080"
