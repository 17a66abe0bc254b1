"""The training input pipeline: one torch Dataset over every format, File and Pipe mode.

Use::

    dataset = build_dataset("/opt/ml/input/data/train", "recordio", image_shape=300,
                            train=True, seed=seed, rank=rank, world_size=world_size)
    loader = DataLoader(dataset, batch_size=b, num_workers=w, collate_fn=collate)
    for epoch in range(epochs):
        dataset.set_epoch(epoch)          # before iterating: reshuffles (File) or opens the FIFO
        for images, boxes, labels, difficult in loader:
            ...

Each item is ``(image, boxes, labels, difficult)``:

- image (Tensor[3, S, S] float32): RGB scaled to [0, 1]; the SSD model normalises it itself
  (mean and std saved with its weights), so training and serving feed it the same thing;
- boxes (Tensor[M, 4] float32): (xmin, ymin, xmax, ymax), normalised to [0, 1];
- labels (Tensor[M] int64): 0-based class ids (no background class);
- difficult (Tensor[M] bool): objects that evaluation ignores.

:func:`collate` stacks a batch and pads targets to the batch's most objects (at least 1):
boxes [N, M, 4] (zeros), labels [N, M] (-1), difficult [N, M] (False).

A sample that cannot be read (a corrupt image, a bad record, a class id >= ``num_classes``) ends
the pass with its own message: the dataset yields a :class:`BadSample` instead of raising (an
exception raised in a DataLoader worker reaches the main process only as the text of its
traceback), :func:`collate` hands it on as the batch, and :func:`batches` raises its
:class:`~algorithm.data.sample.FormatError` in the process that iterates the loader::

    for images, boxes, labels, difficult in batches(loader):   # FormatError: file#7: ...

File mode: each rank reads its shard (:mod:`algorithm.data.sharding`), reshuffled every epoch,
split again between DataLoader workers. Pipe mode: every process reads whole samples from the
epoch's FIFO under a lock (:mod:`algorithm.data.pipe`); the order is the stream's. In both, the
augmentation of a sample depends only on (seed, epoch, sample), never on which worker draws it.
"""

from __future__ import annotations

import warnings
import zlib
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import IterableDataset, get_worker_info

from algorithm.data.augment import MAX_ZOOM_OUT, MEAN_RGB, SSDAugmentation, color_matrix
from algorithm.data.manifest import sample_from_stream_pair
from algorithm.data.pipe import PipeReader, fifo_path, is_fifo, is_pipe
from algorithm.data.recordio import RecordIOError
from algorithm.data.sample import FormatError, Sample
from algorithm.data.sharding import shard_indices, shard_length
from algorithm.data.sources import open_source, sample_from_record

Item = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

_SCALE = 1.0 / 255
# Zoom-out fills the canvas with the mean colour (the SSD paper's choice).
_FILL = torch.tensor(MEAN_RGB, dtype=torch.float32).view(3, 1, 1)


def _canvas(size: int) -> torch.Tensor:
    return _FILL.expand(3, size, size).clone()


def to_tensors(image: Any, boxes: np.ndarray, labels: np.ndarray,
               difficult: np.ndarray) -> Item:
    """An item from the augmentation's output: ``image`` is already a [0, 1] tensor, or
    pixels ndarray[S, S, 3] uint8 to scale."""
    if not isinstance(image, torch.Tensor):
        image = pixels_to_tensor(image)
    return (image, torch.from_numpy(np.asarray(boxes, np.float32).reshape(-1, 4)),
            torch.from_numpy(np.asarray(labels, np.int64)),
            torch.from_numpy(np.asarray(difficult, bool)))


def pixels_to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """ndarray[S, S, 3] uint8 RGB to the model's input Tensor[3, S, S] in [0, 1] (validation
    and endpoints both use this one conversion)."""
    if not pixels.flags.writeable:  # Pillow's arrays are read-only; torch wants to own them
        pixels = pixels.copy()
    # Permuting uint8 then converting is about twice as fast as converting a strided view.
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous().float().mul_(_SCALE)


def _uint8_resize_available() -> bool:
    """torch >= 2.1 resizes uint8 images with antialiasing, about 3x faster than Pillow."""
    try:
        F.interpolate(torch.zeros((1, 3, 4, 4), dtype=torch.uint8), size=(2, 2), mode="bilinear",
                      antialias=True, align_corners=False)
    except (RuntimeError, TypeError, NotImplementedError):
        return False
    return True


UINT8_RESIZE = _uint8_resize_available()


def render_torch(image: Any, box: list, dest: Optional[Tuple[int, int, int, int]],
                 color: Optional[Tuple[Any, ...]], flip: bool, size: int) -> torch.Tensor:
    """The renderer of :class:`~algorithm.data.augment.SSDAugmentation` (same arguments as
    ``render_pillow``) that returns the [0, 1] Tensor[3, S, S] directly.

    The fill is the mean colour. The source box is rounded to whole pixels (at most half a
    source pixel off).
    """
    if dest is None:
        return _canvas(size)
    x0, y0 = round(box[0]), round(box[1])
    x1, y1 = max(round(box[2]), x0 + 1), max(round(box[3]), y0 + 1)
    with warnings.catch_warnings():
        # Pillow's buffer is read-only; interpolate only reads it.
        warnings.simplefilter("ignore", UserWarning)
        region = torch.from_numpy(np.asarray(image.crop((x0, y0, x1, y1))))
    part = F.interpolate(region.permute(2, 0, 1)[None], size=(dest[3] - dest[1], dest[2] - dest[0]),
                         mode="bilinear", antialias=True, align_corners=False)[0].float()
    if color is not None:
        matrix = torch.tensor(color_matrix(color, lambda: part.mean(dim=(1, 2)).tolist()),
                              dtype=torch.float32).view(3, 4)
        flat = torch.addmm(matrix[:, 3:], matrix[:, :3], part.reshape(3, -1))
        # Round and saturate like the uint8 pipeline, so both renderers agree.
        part = flat.add_(0.5).floor_().clamp_(0, 255).reshape(part.shape)
    part.mul_(_SCALE)
    if flip:
        part = part.flip(-1)
        dest = (size - dest[2], dest[1], size - dest[0], dest[3])
    if dest == (0, 0, size, size):
        return part
    out = _canvas(size)
    out[:, dest[1]:dest[3], dest[0]:dest[2]] = part
    return out


class BadSample:
    """A sample that could not be read, handed on as data rather than raised (see the module
    docstring); ``error`` is the :class:`~algorithm.data.sample.FormatError` that says why."""

    def __init__(self, error: FormatError):
        self.error = error


def batches(loader: Any) -> Any:
    """The batches of a DataLoader, raising the :class:`FormatError` of a :class:`BadSample`
    that a worker handed back, in this process, with the sample's own message."""
    for batch in loader:
        if isinstance(batch, BadSample):
            raise batch.error
        yield batch


def bad_sample(batch: Sequence[Any]) -> Optional[BadSample]:
    """The :class:`BadSample` of a batch, if it holds one."""
    return next((item for item in batch if isinstance(item, BadSample)), None)


def collate(batch: Sequence[Item]) -> Any:
    """Stack images [N, 3, S, S]; pad boxes [N, M, 4], labels [N, M] (-1), difficult [N, M].

    A batch holding a :class:`BadSample` is that :class:`BadSample`."""
    bad = bad_sample(batch)
    if bad is not None:
        return bad
    images = torch.stack([item[0] for item in batch])
    most = max([1] + [int(item[2].shape[0]) for item in batch])
    boxes = torch.zeros((len(batch), most, 4), dtype=torch.float32)
    labels = torch.full((len(batch), most), -1, dtype=torch.int64)
    difficult = torch.zeros((len(batch), most), dtype=torch.bool)
    for i, (_, b, lab, d) in enumerate(batch):
        boxes[i, :len(lab)] = b
        labels[i, :len(lab)] = lab
        difficult[i, :len(lab)] = d
    return images, boxes, labels, difficult


class _Augmented:
    """Shared by both datasets: a Sample to an item, seeded by (seed, epoch, sample).

    With ``num_classes``, a class id at or above it is refused (it would index past the
    classifier's outputs)."""

    def __init__(self, image_shape: int, train: bool, seed: int,
                 num_classes: Optional[int] = None, max_zoom_out: float = MAX_ZOOM_OUT):
        self.augment = SSDAugmentation(image_shape, train=train, max_zoom=max_zoom_out)
        if UINT8_RESIZE:
            self.augment.renderer = render_torch
        self.seed = seed
        self.epoch = 0
        self.num_classes = num_classes

    def item(self, sample: Sample, sample_seed: int) -> Item:
        where = sample.where or sample.key
        if self.num_classes is not None and len(sample.labels) and \
                sample.labels.max() >= self.num_classes:
            i = int(np.argmax(sample.labels >= self.num_classes))
            raise FormatError(where, f"objects[{i}]", f"class id {int(sample.labels[i])} is not "
                              f"below num_classes={self.num_classes}")
        rng = np.random.default_rng((self.seed, self.epoch, sample_seed))
        try:
            out = self.augment(sample.read_image_bytes(), sample.boxes, sample.labels,
                               sample.difficult, rng)
        except (OSError, ValueError) as exc:
            raise FormatError(where, "image", str(exc)) from None
        return to_tensors(*out)


class DetectionDataset(IterableDataset, _Augmented):
    """File mode: a source (see :func:`algorithm.data.sources.open_source`) read by shards.

    ``len()`` is this rank's number of samples per epoch; ``dataset[i]`` is sample ``i`` of the
    whole source, augmented for the current epoch (for evaluation and tests).
    """

    def __init__(self, source: Any, image_shape: int, train: bool = True, seed: int = 0,
                 rank: int = 0, world_size: int = 1, shuffle: Optional[bool] = None,
                 num_classes: Optional[int] = None, max_zoom_out: float = MAX_ZOOM_OUT):
        IterableDataset.__init__(self)
        _Augmented.__init__(self, image_shape, train, seed, num_classes, max_zoom_out)
        self.source = source
        self.format: str = source.format
        self.classes: Optional[List[str]] = source.classes
        self.rank, self.world_size = rank, world_size
        self.shuffle = train if shuffle is None else shuffle

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return shard_length(len(self.source), self.rank, self.world_size)

    def indices(self) -> np.ndarray:
        """The source indices this rank reads this epoch (before the split between workers)."""
        return shard_indices(len(self.source), self.rank, self.world_size, self.epoch,
                             self.seed, self.shuffle)

    def __getitem__(self, index: int) -> Item:
        return self.item(self.source[index], index)

    def __iter__(self) -> Any:
        indices = self.indices()
        worker = get_worker_info()
        if worker is not None:
            indices = indices[worker.id::worker.num_workers]
        for index in indices:
            try:
                item = self[int(index)]
            except FormatError as exc:
                yield BadSample(exc)
                return
            yield item


class PipeModeDataset(IterableDataset, _Augmented):
    """Pipe mode: samples streamed from ``<channel>_<epoch>`` FIFOs, one pass per epoch.

    Formats: ``recordio`` (one record per sample) and ``manifest`` (two records per sample).
    Call :meth:`set_epoch` before each epoch, in the process that creates the DataLoader: it
    opens the FIFO there, so forked workers share it. With several processes on a host, every
    process should call it before any starts reading (a barrier).
    """

    def __init__(self, channel_path: str, format: str, image_shape: int, train: bool = True,
                 seed: int = 0, num_classes: Optional[int] = None,
                 max_zoom_out: float = MAX_ZOOM_OUT):
        if format not in ("recordio", "manifest"):
            raise ValueError(f"Pipe mode reads recordio or manifest channels, not {format}")
        IterableDataset.__init__(self)
        _Augmented.__init__(self, image_shape, train, seed, num_classes, max_zoom_out)
        self.channel_path = channel_path
        self.format = format
        self.classes: Optional[List[str]] = None
        self.reader: Optional[PipeReader] = None

    def set_epoch(self, epoch: int) -> None:
        if self.reader is not None:
            self.reader.close()
        self.epoch = epoch
        per_sample = 2 if self.format == "manifest" else 1
        path = self.channel_path if is_fifo(self.channel_path) else fifo_path(
            self.channel_path, epoch)
        self.reader = PipeReader(path, per_sample).open()

    def __iter__(self) -> Any:
        if self.reader is None:
            self.set_epoch(self.epoch)
        assert self.reader is not None
        number = 0
        while True:
            try:
                records = self.reader.read()
                if records is None:
                    return
                number += 1
                where = f"{self.reader.path}#{number}"
                if self.format == "manifest":
                    sample = sample_from_stream_pair(records[0], records[1], where)
                else:
                    sample = sample_from_record(records[0], where)
                item = self.item(sample, zlib.crc32(records[-1]))
            except FormatError as exc:
                yield BadSample(exc)
                return
            except RecordIOError as exc:
                yield BadSample(FormatError(self.reader.path, "", str(exc)))
                return
            yield item


def build_dataset(path: str, format: Optional[str], image_shape: int, train: bool = True,
                  seed: int = 0, rank: int = 0, world_size: int = 1,
                  attribute: Optional[str] = None, num_classes: Optional[int] = None,
                  max_zoom_out: float = MAX_ZOOM_OUT) -> Any:
    """The dataset of a channel: File mode for a directory or file, Pipe mode for a FIFO.

    Args:
        path: a channel directory (``/opt/ml/input/data/train``), a ``.rec`` or ``.manifest``
            file, or a Pipe-mode channel (``.../train`` whose ``train_<epoch>`` FIFOs SageMaker
            creates, or one FIFO).
        format: ``recordio``, ``sagemaker-json`` or ``manifest`` (None: guessed, File mode).
        image_shape: side of the square network input.
        train: random SSD augmentation and shuffling; otherwise a plain resize, in order.
        seed: the job's seed, the same on every rank.
        rank, world_size: this process's place among all training processes (File mode).
        attribute: the label attribute of an augmented manifest (None: found automatically).
        num_classes: refuse samples with a class id at or above it (None: no check).
        max_zoom_out: the training augmentation's largest zoom-out (see ``SSDAugmentation``).

    Raises ``ValueError`` listing the data's problems when some entries cannot be read, or when
    there are no images (File mode; a Pipe-mode stream shows it only when read).
    """
    if is_pipe(path):
        return PipeModeDataset(path, format or "recordio", image_shape, train, seed,
                               num_classes, max_zoom_out)
    source = open_source(path, format, attribute)
    if source.problems:
        shown = "; ".join(str(p) for p in source.problems[:5])
        more = len(source.problems) - 5
        raise ValueError(f"{len(source.problems)} problem(s) in {path}: {shown}"
                         + (f"; and {more} more" if more > 0 else "")
                         + " (run `detectctl dataset validate` on it)")
    if not len(source):
        raise ValueError(f"{path}: no images ({source.format})")
    return DetectionDataset(source, image_shape, train, seed, rank, world_size,
                            num_classes=num_classes, max_zoom_out=max_zoom_out)
