"""torchvision's ImageNet weights for the base networks, on the client: what
``use_pretrained_model=1`` starts from when no weights file is given.

The file is taken from torch hub's cache when it is there, else downloaded into it from
torchvision's URL and checked against the hash prefix in its name (torchvision's convention:
``resnet50-0676ba61.pth`` holds a file whose SHA-256 starts with ``0676ba61``). A cached file is
checked too, every time it is used (about half a second for VGG-16's 528 MB), so a truncated or
wrong file is refused on the client instead of failing inside a job that is already paid for;
torchvision checks only when it downloads. Never imports torch: the job loads the file
(``algorithm/ssd/weights.py``).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable, Optional

from detectctl.errors import PretrainedWeightsError, UsageError

TORCHVISION_URL = "https://download.pytorch.org/models/"
KEY_PREFIX = "detectctl/weights"  # where SageMaker jobs' weights go in the bucket
BASE_URL_ENV = "DETECTCTL_WEIGHTS_URL"  # a mirror (or a test server) holding the same file names

# Base network -> (file name, URL): the ImageNet weights torchvision's own detection builders
# start from. torchvision has no ResNet-50 SSD; its ResNet-50 detectors (fasterrcnn_, retinanet_,
# maskrcnn_, keypointrcnn_, fcos_resnet50_fpn) all default to weights_backbone=IMAGENET1K_V1.
WEIGHTS: dict[str, tuple[str, str]] = {
    network: (file_name, TORCHVISION_URL + file_name) for network, file_name in (
        ("vgg-16", "vgg16_features-amdegroot-88682ab5.pth"),  # ssd300_vgg16: IMAGENET1K_FEATURES
        ("resnet-50", "resnet50-0676ba61.pth"),  # ResNet50_Weights.IMAGENET1K_V1
        ("mobilenet-v3-large", "mobilenet_v3_large-8738ca79.pth"),  # ssdlite320: IMAGENET1K_V1
    )
}

Progress = Callable[[int, Optional[int]], None]  # (bytes done, total bytes or None if unknown)

CHUNK = 1 << 20
TIMEOUT_S = 30
FROM_SCRATCH = "set use_pretrained_model=0 to train from scratch"

# (absolute path, size, mtime_ns) -> SHA-256, so resolve() then the upload's sha256_of() read a
# file once per process.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def cache_dir() -> Path:
    """torch hub's checkpoint folder, by torch.hub's own rule: ``$TORCH_HOME/hub/checkpoints``,
    ``TORCH_HOME`` defaulting to ``$XDG_CACHE_HOME/torch``, ``XDG_CACHE_HOME`` to ``~/.cache``."""
    torch_home = os.path.expanduser(os.getenv(
        "TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")))
    return Path(torch_home) / "hub" / "checkpoints"


def weights_url(base_network: str) -> str:
    """Where the weights of ``base_network`` download from: torchvision's URL, or the same file
    name under ``$DETECTCTL_WEIGHTS_URL`` when that is set."""
    file_name, url = _weights(base_network)
    base = os.getenv(BASE_URL_ENV)
    return f"{base.rstrip('/')}/{file_name}" if base else url


def resolve(base_network: str, *, download: bool = True,
            on_progress: Progress | None = None) -> Path:
    """The local path of torchvision's ImageNet weights for ``base_network``.

    The file in :func:`cache_dir` if it is there, else downloaded into it (unless ``download``
    is false), ``on_progress(done_bytes, total_bytes_or_None)`` called before the first byte and
    after each chunk. Either way its SHA-256 must start with the hash in its name. The download
    goes to a temporary file in the cache folder, renamed into place only once checked.

    Raises:
        UsageError: ``base_network`` has no known weights.
        PretrainedWeightsError: offline or an HTTP error with nothing cached, the cache folder
            not writable, or a hash mismatch (a failed download leaves nothing behind).
    """
    file_name, _ = _weights(base_network)
    url = weights_url(base_network)
    path = cache_dir() / file_name
    if path.is_file():
        try:
            digest = sha256_of(path)
        except OSError as exc:
            raise _error(f"cannot read {path}: {_reason(exc)}", path, url,
                         hint=f"delete it to download it again, or {FROM_SCRATCH}") from None
        _check(path, url, digest, downloaded=False)
        return path
    if not download:
        raise _error(f"{file_name} is not in {path.parent} and downloading is off", path, url,
                     hint=f"download {url} into that folder, or {FROM_SCRATCH}")
    _download(url, path, on_progress)
    return path


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The SHA-256 hex digest of the file at ``path``, read in chunks (remembered per path,
    size and modification time for the life of the process)."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        sha = hashlib.sha256()
        with open(path, "rb") as file:
            while chunk := file.read(CHUNK):
                sha.update(chunk)
        _DIGESTS[key] = sha.hexdigest()
    return _DIGESTS[key]


def weights_key(sha256: str, file_name: str) -> str:
    """The S3 key (under the job's bucket) of a weights file: one copy per content,
    ``detectctl/weights/<sha256>/<file name>``."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"sha256={sha256!r} is not a SHA-256 hex digest")
    if not file_name or "/" in file_name:
        raise ValueError(f"file_name={file_name!r} must be a plain file name")
    return f"{KEY_PREFIX}/{sha256}/{file_name}"


def hash_prefix(file_name: str) -> str:
    """The start of the file's SHA-256 written in its name: what follows the last ``-`` before
    the extension (``88682ab5`` in ``vgg16_features-amdegroot-88682ab5.pth``)."""
    prefix = file_name.rsplit(".", 1)[0].rsplit("-", 1)[-1]
    if "-" not in file_name or not prefix or any(c not in "0123456789abcdef" for c in prefix):
        raise ValueError(f"{file_name!r} has no hash prefix in its name")
    return prefix


def _weights(base_network: str) -> tuple[str, str]:
    if base_network not in WEIGHTS:
        raise UsageError(f"base_network={base_network!r} has no pretrained weights",
                         hint="one of: " + ", ".join(WEIGHTS))
    return WEIGHTS[base_network]


def _download(url: str, path: Path, on_progress: Progress | None) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".part")
    except OSError as exc:
        raise _unwritable(path, url, exc) from None
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            digest = _fetch(url, path, out, on_progress)
        _check(path, url, digest, downloaded=True)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    stat = path.stat()
    _DIGESTS[(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)] = digest


def _fetch(url: str, path: Path, out: BinaryIO, on_progress: Progress | None) -> str:
    """Stream ``url`` into ``out``; the SHA-256 of what came."""
    request = urllib.request.Request(url, headers={"User-Agent": "detectctl"})
    sha = hashlib.sha256()
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: a bad URL
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()
        raise _cannot_download(path, url, _reason(exc)) from None
    try:
        with response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            if on_progress:
                on_progress(done, total)
            while chunk := response.read(CHUNK):
                try:
                    out.write(chunk)
                except OSError as exc:  # disk full: the cache's problem, not the network's
                    raise _unwritable(path, url, exc) from None
                sha.update(chunk)
                done += len(chunk)
                if on_progress:
                    on_progress(done, total)
    except (OSError, http.client.HTTPException) as exc:  # the connection broke off
        raise _cannot_download(path, url, _reason(exc)) from None
    if total is not None and done != total:
        raise _cannot_download(path, url, f"the connection closed after {done} of {total} bytes")
    return sha.hexdigest()


def _check(path: Path, url: str, digest: str, *, downloaded: bool) -> None:
    prefix = hash_prefix(path.name)
    if digest.startswith(prefix):
        return
    found = f"its SHA-256 starts with {digest[:len(prefix)]}, not {prefix}"
    if downloaded:
        raise _error(f"{path.name} from {url} failed its hash check: {found}; nothing was kept",
                     path, url, hint=f"try again, or put a good copy in {path.parent}, "
                                     f"or {FROM_SCRATCH}")
    raise _error(f"{path} is not torchvision's {path.name}: {found}", path, url,
                 hint=f"delete it to download it again, or {FROM_SCRATCH}")


def _cannot_download(path: Path, url: str, reason: str) -> PretrainedWeightsError:
    return _error(f"cannot download {path.name} from {url}: {reason}", path, url)


def _unwritable(path: Path, url: str, exc: OSError) -> PretrainedWeightsError:
    return _error(f"cannot write {path.name} to the torch hub cache {path.parent}: "
                  f"{_reason(exc)}", path, url,
                  hint=f"set TORCH_HOME to a writable folder, or put {path.name} in "
                       f"{path.parent}, or {FROM_SCRATCH}")


def _error(message: str, path: Path, url: str, *,
           hint: str | None = None) -> PretrainedWeightsError:
    return PretrainedWeightsError(
        message, file_name=path.name, folder=str(path.parent), url=url,
        hint=hint or f"put {path.name} in {path.parent}, or {FROM_SCRATCH}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
