"""The training job: what runs inside every SageMaker (or local) training container.

Read top to bottom: container contract and hyperparameters -> distributed set-up -> data ->
model -> optimizer -> resume -> the epoch loop (train, validate, checkpoint, stop early) ->
model artifact. Any failure ends with a short reason in /opt/ml/output/failure and exit 1; a
sample that cannot be read names its file and record there, even when a DataLoader worker met it.
SIGTERM or Ctrl-C (SIGINT) stops the job at the next batch with a checkpoint written and exit 0;
a second one while it stops changes nothing (the checkpoint is being written).

Run it as ``python -m algorithm.train`` (SageMaker's toolkit runs the packed ``train.py`` that
does the same). Command-line arguments are ignored: the toolkit repeats the hyperparameters
there, and this job reads them from hyperparameters.json, where SageMaker puts them.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.distributed as dist

from algorithm import amp, artifact, checkpoints, distributed, memory, metrics
from algorithm.container import (
    Channel,
    ContractError,
    Paths,
    read_hyperparameters,
    read_input_data_config,
    read_resource_config,
    write_failure,
)
from algorithm.data import BadSample, batches, build_dataset, collate
from algorithm.data.sample import FormatError
from algorithm.data.sources import read_classes
from algorithm.early_stopping import EarlyStopping
from algorithm.evaluation import GroundTruth, evaluate
from algorithm.hyperparameters import HyperparameterError, Hyperparameters
from algorithm.ssd import DefaultBoxes, MatchedTargets, build_ssd, match_targets, multibox_loss_from

log = logging.getLogger("algorithm.train")

# Linear learning-rate warm-up over the first iterations (at most one epoch): SSD's first
# steps from a fresh head are the least stable.
WARMUP_ITERATIONS = 300
WARMUP_START = 0.1
LOG_EVERY = 20  # batches between loss metric lines


class JobError(Exception):
    """A failure with a reason the user can act on (what failed, where, how to fix)."""


class Stopped(Exception):
    """SIGTERM or SIGINT arrived (stop request, spot interruption, Ctrl-C)."""


class StopRequest:
    """Set by SIGTERM or SIGINT; the loop stops at the next batch with a checkpoint. A second
    signal only says so: stopping is already under way, and interrupting it would leave the
    job without its checkpoint."""

    def __init__(self) -> None:
        self.signal: Optional[str] = None

    def install(self) -> StopRequest:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            log.info("%s: already stopping (writing the checkpoint)", signal.Signals(signum).name)
            return
        self.signal = signal.Signals(signum).name

    def __bool__(self) -> bool:
        return self.signal is not None


def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(levelname)s] %(message)s",
                        stream=sys.stdout)
    paths = Paths.from_environ()
    stop = StopRequest().install()
    try:
        return run(paths, stop)
    except Stopped:
        log.info("stopped by %s after saving a checkpoint", stop.signal)
        return 0
    except (JobError, HyperparameterError, ContractError) as exc:
        reason = str(exc)
    except ValueError as exc:  # bad data or weights, raised with the file named
        reason = str(exc)
    except Exception as exc:
        log.exception("internal error")
        reason = f"internal error: {type(exc).__name__}: {exc}"
    if distributed.from_environ().is_main:
        write_failure(paths, reason)
    log.error("job failed: %s", reason)
    return 1


def run(paths: Paths, stop_requested: Optional[StopRequest] = None) -> int:
    # --- configuration: hyperparameters first, so a typo costs seconds, not a GPU-hour
    hp = Hyperparameters.from_sagemaker(read_hyperparameters(paths))
    resource = read_resource_config(paths)
    channels = read_input_data_config(paths)
    if "train" not in channels:
        raise JobError("no `train` channel: give the training data to the job as the channel "
                       "named train")
    if hp.early_stopping and "validation" not in channels:
        raise JobError("early_stopping=True needs a `validation` channel to measure mAP on")
    if hp.kv_store == "dist_async":
        raise JobError("kv_store=dist_async is not available: torch.distributed trains "
                       "synchronously. Use kv_store=dist_sync (or leave it unset).")

    # --- distributed: become one worker per GPU (or per host on CPU) unless already launched
    stop_requested = stop_requested if stop_requested is not None else StopRequest().install()
    procs = distributed.procs_per_host()
    if distributed.needs_launch(resource, procs):
        return _launch_workers(resource, procs)
    ctx = distributed.from_environ()
    device = distributed.init(ctx)
    reusing = memory.reuse_freed_memory()  # each step reuses the last step's pages
    host = resource.current_host
    local_batch = hp.mini_batch_size // ctx.local_world_size
    if local_batch < 1:
        raise JobError(f"mini_batch_size={hp.mini_batch_size} is smaller than the "
                       f"{ctx.local_world_size} processes of a host; it must be at least that")
    seed = hp.seed if hp.seed is not None else _shared_seed(ctx, device)
    # Every rank draws its own random numbers (dropout, ...); the data's order and augmentation
    # depend only on the shared seed, so the shards stay disjoint.
    torch.manual_seed(seed + ctx.rank)
    random.seed(seed + ctx.rank)
    np.random.seed((seed + ctx.rank) % 2**32)
    if ctx.is_main:
        log.info("hyperparameters: %s", json.dumps(hp.to_sagemaker()))
        log.info("hosts %s, %d process(es) per host, %s, local batch %d, seed %d",
                 resource.hosts, ctx.local_world_size, device, local_batch, seed)
        if reusing:
            log.info("host memory: malloc keeps freed memory for reuse (algorithm/memory.py)")

    # --- data
    train_set = _dataset(paths, channels["train"], hp, True, seed, ctx)
    val_set = (_dataset(paths, channels["validation"], hp, False, seed, ctx)
               if "validation" in channels else None)
    if val_set is not None and val_set.format != train_set.format:
        raise JobError(f"channel validation holds {val_set.format} data but channel train "
                       f"holds {train_set.format}: give both in one format (detectctl dataset "
                       "convert)")
    classes = _classes(paths, train_set)
    if classes is not None and len(classes) != hp.num_classes:
        raise JobError(f"num_classes={hp.num_classes} but the training data names "
                       f"{len(classes)} classes ({', '.join(classes[:5])}...); set num_classes="
                       f"{len(classes)}")
    shard_length = _known_length(train_set)
    if hp.num_training_samples is not None and shard_length is not None:
        total = shard_length * ctx.world_size
        if abs(total - hp.num_training_samples) > ctx.world_size:
            raise JobError(f"num_training_samples={hp.num_training_samples} but the train "
                           f"channel holds about {total} images; fix it or leave it unset")
    if shard_length is not None and shard_length < local_batch and ctx.is_main:
        log.warning("mini_batch_size=%d is more than the %d training images each of the %d "
                    "process(es) reads per epoch: every epoch is one step of %d images (a "
                    "smaller mini_batch_size takes more steps per epoch)", hp.mini_batch_size,
                    shard_length, ctx.world_size, shard_length)
    # --- model
    # A job that continues from a model (the `model` channel) takes all its weights from it.
    starts_from_model = "model" in channels
    weights = (_pretrained_weights(paths, hp)
               if hp.use_pretrained_model and not starts_from_model else None)
    model = build_ssd(hp.base_network, hp.num_classes, hp.image_shape, weights)
    if starts_from_model:
        _start_from(model, paths.channel("model"), hp)
    _freeze(model, hp.freeze_layer_pattern)
    # The loader's workers match the default boxes to the ground truth on the CPU while the GPU
    # trains; the step itself then never waits on the GPU.
    workers = hp.num_workers if hp.num_workers is not None else min(4, os.cpu_count() or 1)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=local_batch, collate_fn=CollateWithTargets(model.default_boxes),
        num_workers=workers, pin_memory=device.type == "cuda", drop_last=False,
        worker_init_fn=_worker_ignores_sigint)
    # Channels-last: tensor cores on GPUs, oneDNN's own layout on CPUs (a step on one core takes
    # 0.68x the time for MobileNetV3 at 160, 0.87x for VGG-16 and 0.88x for ResNet-50 at 300).
    model = model.to(device, memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one input size: cuDNN picks the fastest kernels
    amp_dtype = amp.amp_dtype(hp.amp, device)
    if ctx.is_main:
        log.info("precision: %s", amp.describe(amp_dtype))
    ddp = _data_parallel(model, device) if ctx.distributed else model

    # --- optimizer and schedule (learning rate set per iteration, see _learning_rate)
    optimizer = _optimizer(hp, [p for p in model.parameters() if p.requires_grad])
    scaler = amp.grad_scaler(amp_dtype)
    stopper = EarlyStopping(hp.early_stopping_min_epochs, hp.early_stopping_patience,
                            hp.early_stopping_tolerance)
    start_epoch, iteration, best_map = 0, 0, None
    final: Dict[str, float] = {}  # each metric's last value, for the artifact's metrics.json

    # --- resume: a restarted job (spot interruption) continues from its last checkpoint
    state = checkpoints.load(paths.checkpoints_dir)
    if state is not None:
        if state.get("hyperparameters", {}).get("base_network") != hp.base_network:
            raise JobError(f"{paths.checkpoints_dir}: the checkpoint is of another network; "
                           "give the job an empty checkpoint location")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        stopper.load_state_dict(state["early_stopping"])
        start_epoch, iteration = state["epoch"], state["scheduler"]["iteration"]
        best_map = state.get("best_map")
        if ctx.is_main:
            log.info("resumed from %s after epoch %d", paths.checkpoints_dir, start_epoch)

    def save_checkpoint(epoch: int) -> None:
        if ctx.is_main:
            checkpoints.save(paths.checkpoints_dir, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": {"iteration": iteration}, "scaler": scaler.state_dict()
                if scaler is not None else None, "epoch": epoch, "best_map": best_map,
                "early_stopping": stopper.state_dict(), "hyperparameters": hp.to_sagemaker()})

    # --- the loop
    steps_per_epoch = _steps_per_epoch(train_set, local_batch)
    epoch = start_epoch
    for epoch in range(start_epoch + 1, hp.epochs + 1):
        train_set.set_epoch(epoch - 1)
        if ctx.distributed and channels["train"].input_mode == "Pipe":
            # Every reader must open the epoch's FIFO before its writer finishes.
            dist.barrier()
        ddp.train()
        started, seen, batch, checked = time.time(), 0, 0, 0
        totals = torch.zeros(2, device=device)
        join = ddp.join() if ctx.distributed else contextlib.nullcontext()
        with join:
            for batch, (images, targets) in enumerate(_batches(loader, "train"), start=1):
                if stop_requested:
                    save_checkpoint(epoch - 1)
                    raise Stopped()
                lr = _learning_rate(hp, epoch, iteration, steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                images = images.to(device, non_blocking=True).contiguous(
                    memory_format=torch.channels_last)
                targets = targets.to(device, non_blocking=True)
                with amp.autocast(device, amp_dtype):
                    cls_logits, box_regression = ddp(images)
                losses = multibox_loss_from(cls_logits, box_regression, targets)
                optimizer.zero_grad(set_to_none=True)
                amp.backward_and_step(losses["cross_entropy"] + losses["smooth_l1"], optimizer,
                                      scaler)
                iteration += 1
                seen += len(images)
                totals += torch.stack([losses["cross_entropy"].detach(),
                                       losses["smooth_l1"].detach()])
                if batch % LOG_EVERY == 0:  # reading the losses waits for the GPU: not each step
                    mean = (totals / batch).tolist()
                    _check_finite(mean, hp, epoch, checked, batch)
                    checked = batch
                    if ctx.is_main:
                        for line in metrics.train_loss_lines(host, epoch, batch, *mean):
                            print(line, flush=True)
        _check_finite(totals.tolist(), hp, epoch, checked, batch)
        elapsed = max(time.time() - started, 1e-9)
        _sync_buffers(model, ctx)
        images_seen = _all_sum(float(seen), ctx, device)
        if not images_seen:  # Pipe mode: an empty stream shows only now
            raise JobError(f"channel train: epoch {epoch} read no images")
        throughput = images_seen / elapsed
        mean = (_all_mean(totals, ctx) / max(batch, 1)).tolist()
        summary = (f"epoch {epoch}/{hp.epochs}: cross_entropy {mean[0]:.4f}, smooth_l1 "
                   f"{mean[1]:.4f}, lr {lr:.3g}, {throughput:.1f} images/s, {elapsed:.0f} s")
        final.update({"train:cross_entropy": mean[0], "train:smooth_l1": mean[1],
                      "train:throughput": round(throughput, 2)})
        if ctx.is_main:
            for line in metrics.train_loss_lines(host, epoch, batch, *mean):
                print(line, flush=True)
            print(metrics.throughput_line(host, round(throughput, 2)), flush=True)

        stop = False
        if val_set is not None:
            val_set.set_epoch(epoch - 1)
            result = _validate(model, val_set, hp, local_batch, device, ctx)
            final["validation:mAP"] = round(result, 6)
            if ctx.is_main:
                print(metrics.validation_map_line(host, epoch, round(result, 6)), flush=True)
                summary += f", validation mAP {result:.4f}"
                best_map = result if best_map is None else max(best_map, result)
            if hp.early_stopping:
                stopper.update(epoch, result)
                stop = stopper.should_stop(epoch)
        if ctx.is_main:
            log.info(summary)
            print(metrics.progress_line(host, round(100.0 * epoch / hp.epochs, 2)), flush=True)
        if epoch % hp.checkpoint_frequency == 0 or epoch == hp.epochs or stop or stop_requested:
            save_checkpoint(epoch)
        if stop_requested and epoch < hp.epochs:
            raise Stopped()
        if stop:
            if ctx.is_main:
                log.info("early stopping after epoch %d: validation mAP has not improved on "
                         "%.4f (epoch %d) for %d epochs", epoch, stopper.best,
                         stopper.best_epoch, stopper.stale_epochs)
            break

    # --- the model artifact (rank 0), after checking that DDP kept every replica identical
    if ctx.distributed:
        _check_replicas(model, ctx, device)
    if ctx.is_main:
        artifact.save(paths.model_dir, model, hp.to_sagemaker(), classes,
                      metrics={"epochs": epoch, "final": final, "best_validation_mAP": best_map})
        log.info("model saved to %s after epoch %d", paths.model_dir, epoch)
    if ctx.distributed:
        dist.barrier()
    distributed.shutdown()
    return 0


# --- helpers, in the order the job uses them ---------------------------------------------------

def _launch_workers(resource: Any, procs: int) -> int:
    """Run this job as torchrun workers on this host and wait for them (SageMaker's toolkit
    does the same when torch distributed is enabled)."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    threads = distributed.cpu_threads(procs)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    command = distributed.launch_command("algorithm.train", resource, procs)
    log.info("launching %d worker(s) on %s: %s", procs, resource.current_host, " ".join(command))
    child = subprocess.Popen(command, env=env)
    # Forward a stop request so that the workers checkpoint before the instance goes away.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: _stop_workers(child))
    code = child.wait()
    # Workers that stopped on request exit 0, and so does torchrun then.
    return code


def _stop_workers(launcher: subprocess.Popen[bytes]) -> None:
    """SIGTERM to torchrun's workers, which checkpoint and exit 0 (torchrun then ends as they
    did). Signalled itself, torchrun would end with a SignalException and its traceback; it gets
    the signal only where its workers cannot be found (no /proc)."""
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children")
    try:
        workers = [int(pid) for pid in children.read_text().split()]
    except (OSError, ValueError):
        workers = []
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if not workers:
        launcher.send_signal(signal.SIGTERM)


def _data_parallel(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP without buffer broadcasts before each step: BatchNorm statistics are averaged over
    the workers once per epoch (_sync_buffers), one wait for the slowest worker less per step."""
    ddp = torch.nn.parallel.DistributedDataParallel
    options: dict = {"device_ids": [device.index] if device.type == "cuda" else None}
    if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters:
        options["forward_sync_buffers"] = False  # PyTorch >= 2.14 (still syncs once at start)
    else:
        options["broadcast_buffers"] = False
    distributed.match_bucket_strides(model)  # channels-last weights on torch 1.12
    return ddp(model, **options)


class CollateWithTargets:
    """Batches of ``(images, MatchedTargets)``: the default boxes matched to each batch's ground
    truth in the data loader (its workers, on the CPU)."""

    def __init__(self, anchors: DefaultBoxes):
        self.anchors = DefaultBoxes(anchors.boxes.detach().cpu(), anchors.grid)

    def __call__(self, batch: Any) -> Union[Tuple[torch.Tensor, MatchedTargets], BadSample]:
        collated = collate(batch)
        if isinstance(collated, BadSample):  # raised by _batches, in the main process
            return collated
        images, boxes, labels, _ = collated
        return images, match_targets(self.anchors, boxes, labels)


def _batches(loader: Any, channel: str) -> Any:
    """The loader's batches; a sample that cannot be read (met by a worker or here) fails the
    job with its own message: file, record, what is wrong."""
    try:
        yield from batches(loader)
    except FormatError as exc:
        raise JobError(f"channel {channel}: {exc}") from None


def _worker_ignores_sigint(worker_id: int) -> None:
    """Ctrl-C reaches a terminal's whole process group: the main process stops the job (with
    its checkpoint); a DataLoader worker that died of it would fail the job instead."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_finite(losses: List[float], hp: Hyperparameters, epoch: int, after: int,
                  batch: int) -> None:
    """Stop the job once the running loss sums hold inf or NaN (they stay so)."""
    if all(math.isfinite(value) for value in losses):
        return
    raise JobError(f"the loss became {'nan' if any(map(math.isnan, losses)) else 'inf'} at "
                   f"epoch {epoch}, between batches {after + 1} and {batch}; lower "
                   f"learning_rate (now {hp.learning_rate})")


def _shared_seed(ctx: distributed.Context, device: torch.device) -> int:
    """A fresh seed drawn by rank 0 and shared, so every rank shuffles the data alike."""
    # Collectives take tensors on the worker's device: NCCL has no CPU tensors.
    value = torch.tensor([random.SystemRandom().randrange(2**31) if ctx.is_main else 0],
                         device=device)
    if ctx.distributed:
        dist.broadcast(value, src=0)
    return int(value.item())


def _format(channel: Channel) -> Optional[str]:
    """The data format a channel's content type names (None: look at the files)."""
    content_type = (channel.content_type or "").lower()
    if (channel.record_wrapper or "").lower() == "recordio":
        return "manifest"  # augmented manifests arrive as RecordIO-wrapped records
    if "recordio" in content_type:
        return "recordio"
    if content_type.startswith("image/") or content_type == "application/x-image":
        return "sagemaker-json"
    if "manifest" in content_type or "jsonlines" in content_type:
        return "manifest"
    return None


def _dataset(paths: Paths, channel: Channel, hp: Hyperparameters, train: bool, seed: int,
             ctx: distributed.Context) -> Any:
    location = paths.channel(channel.name)
    try:
        return build_dataset(str(location), _format(channel), hp.image_shape, train=train,
                             seed=seed, rank=ctx.rank, world_size=ctx.world_size,
                             num_classes=hp.num_classes, max_zoom_out=hp.max_zoom_out)
    except (OSError, ValueError) as exc:
        raise JobError(f"channel {channel.name}: {exc}") from None


def _classes(paths: Paths, train_set: Any) -> Optional[List[str]]:
    """Class names: a `classes` channel, else what the training data carries."""
    for directory in (paths.channel("classes"), paths.channel("train")):
        if directory.is_dir():
            names = read_classes(str(directory))
            if names:
                return names
    return getattr(train_set, "classes", None)


def _known_length(dataset: Any) -> Optional[int]:
    try:
        return len(dataset)
    except TypeError:  # Pipe mode: a stream
        return None


def _steps_per_epoch(dataset: Any, batch: int) -> int:
    length = _known_length(dataset)
    return max(1, math.ceil(length / batch)) if length else WARMUP_ITERATIONS


def _pretrained_weights(paths: Paths, hp: Hyperparameters) -> str:
    directory = paths.channel("pretrained")
    files = sorted(p for p in directory.glob("*") if p.suffix in (".pth", ".pt")) \
        if directory.is_dir() else []
    if not files:
        raise JobError(
            f"use_pretrained_model=1 needs torchvision's ImageNet weights for {hp.base_network} "
            "in the `pretrained` channel (a .pth file); none was given. `detectctl train` "
            "provides it (torchvision's file, or --pretrained); otherwise give that channel, "
            "or set use_pretrained_model=0 to train from scratch.")
    if len(files) > 1:
        raise JobError(f"the `pretrained` channel holds {len(files)} weight files "
                       f"({', '.join(p.name for p in files)}); give exactly one")
    return str(files[0])


def _start_from(model: torch.nn.Module, location: Path, hp: Hyperparameters) -> None:
    """Incremental training: start from a previous job's model.tar.gz (the `model` channel)."""
    try:
        previous, old, _ = artifact.load(location)
    except (artifact.ArtifactError, OSError, ValueError) as exc:
        raise JobError(f"channel model: {exc}") from None
    for name in ("base_network", "num_classes", "image_shape"):
        if getattr(old, name) != getattr(hp, name):
            raise JobError(f"channel model: the previous model has {name}={getattr(old, name)} "
                           f"but this job has {name}={getattr(hp, name)}; they must match")
    model.load_state_dict(previous.state_dict())
    log.info("starting from the model in channel model (%s)", location)


def _freeze(model: torch.nn.Module, pattern: Optional[str]) -> None:
    if not pattern:
        return
    regex = re.compile(pattern)
    frozen = [name for name, p in model.named_parameters() if regex.search(name)]
    if not frozen:
        raise JobError(f"freeze_layer_pattern={pattern!r} matches no parameter; names look like "
                       f"{next(iter(dict(model.named_parameters())))!r} (see docs/ssd.md)")
    for name, parameter in model.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)
    log.info("froze %d parameter tensors matching %r", len(frozen), pattern)


def _optimizer(hp: Hyperparameters, parameters: List[torch.nn.Parameter]
               ) -> torch.optim.Optimizer:
    """The built-in's semantics: momentum for sgd only; weight decay for sgd and rmsprop."""
    if hp.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=hp.learning_rate, momentum=hp.momentum,
                               weight_decay=hp.weight_decay)
    if hp.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    if hp.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=hp.learning_rate)
    return torch.optim.Adadelta(parameters, lr=hp.learning_rate)


def _learning_rate(hp: Hyperparameters, epoch: int, iteration: int, steps_per_epoch: int
                   ) -> float:
    """lr x factor^(steps passed) at ``epoch`` (1-based), warmed up over the first iterations."""
    passed = sum(1 for step in hp.lr_scheduler_step if epoch > step)
    lr = hp.learning_rate * hp.lr_scheduler_factor ** passed
    warmup = min(WARMUP_ITERATIONS, steps_per_epoch)
    if iteration < warmup:
        lr *= WARMUP_START + (1.0 - WARMUP_START) * iteration / warmup
    return lr


def _sync_buffers(model: torch.nn.Module, ctx: distributed.Context) -> None:
    """Make every worker's buffers the same: BatchNorm running statistics become their mean over
    the workers (each saw its own shard), every other buffer comes from rank 0."""
    if not ctx.distributed:
        return
    with torch.no_grad():
        averaged = set()
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and \
                    module.track_running_stats and module.running_mean is not None:
                for buffer in (module.running_mean, module.running_var):
                    dist.all_reduce(buffer)
                    buffer /= ctx.world_size
                    averaged.add(id(buffer))
        for buffer in model.buffers():
            if id(buffer) not in averaged:
                dist.broadcast(buffer, src=0)


def _all_sum(value: float, ctx: distributed.Context, device: torch.device) -> float:
    if not ctx.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item())


def _all_mean(values: torch.Tensor, ctx: distributed.Context) -> torch.Tensor:
    values = values.detach().double()  # on the worker's device, as NCCL needs
    if ctx.distributed:
        dist.all_reduce(values)
        values /= ctx.world_size
    return values.cpu()


@torch.no_grad()
def _check_replicas(model: torch.nn.Module, ctx: distributed.Context,
                    device: torch.device) -> None:
    """Fail loudly if the workers' weights or buffers drifted apart (they must stay
    bit-identical)."""
    flat = torch.cat([t.detach().double().flatten().cpu()
                      for t in [*model.parameters(), *model.buffers()]])
    signature = torch.stack([flat.sum(), (flat * torch.arange(len(flat), dtype=flat.dtype)
                                          .remainder(997)).sum()]).to(device)
    gathered = [torch.zeros_like(signature) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, signature)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise JobError("the workers' model replicas differ after training (internal error in "
                       "distributed training); please report it with the job's logs")
    if ctx.is_main:
        log.info("all %d model replicas are identical", ctx.world_size)


@torch.no_grad()
def _validate(model: torch.nn.Module, dataset: Any, hp: Hyperparameters, batch: int,
              device: torch.device, ctx: distributed.Context) -> float:
    """VOC07 mAP at overlap_threshold on the validation channel; every rank evaluates its
    shard and rank 0 scores them together."""
    was_training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, collate_fn=collate,
                                         num_workers=0)
    detections: List[np.ndarray] = []
    truths: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for images, boxes, labels, difficult in _batches(loader, "validation"):
        images = images.to(device).contiguous(memory_format=torch.channels_last)
        found = model.detect(images, nms_threshold=hp.nms_threshold)
        for i, det in enumerate(found):
            keep = labels[i] >= 0
            detections.append(det.cpu().numpy())
            truths.append((boxes[i][keep].numpy(), labels[i][keep].numpy(),
                           difficult[i][keep].numpy()))
    model.train(was_training)
    if ctx.distributed:
        gathered: List[Any] = [None] * ctx.world_size
        dist.all_gather_object(gathered, (detections, truths))
        detections = [d for part in gathered for d in part[0]]
        truths = [t for part in gathered for t in part[1]]
    if not truths:  # every rank knows: a Pipe-mode stream that was empty
        raise JobError("channel validation: no images to validate on")
    score = 0.0
    if ctx.is_main:
        score = evaluate(detections, [GroundTruth(*t) for t in truths], hp.num_classes,
                         hp.overlap_threshold, "voc07").mAP
    if ctx.distributed:  # every rank takes the same early-stopping decision
        shared = torch.tensor([score], dtype=torch.float64, device=device)
        dist.broadcast(shared, src=0)
        score = float(shared.item())
    return score


if __name__ == "__main__":
    sys.exit(main())
