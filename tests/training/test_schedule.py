"""The job's learning-rate schedule, optimizers and channel formats, without running a job."""

import pytest
import torch

from algorithm import amp
from algorithm.container import Channel
from algorithm.hyperparameters import Hyperparameters
from algorithm.ssd import build_ssd, match_targets
from algorithm.train import (
    WARMUP_ITERATIONS,
    CollateWithTargets,
    JobError,
    _check_finite,
    _format,
    _learning_rate,
    _optimizer,
)


def test_steps_at_the_listed_epochs_after_warm_up():
    hp = Hyperparameters(num_classes=2, learning_rate=0.01, lr_scheduler_step="2,4",
                         lr_scheduler_factor=0.5)
    late = WARMUP_ITERATIONS
    assert _learning_rate(hp, 1, late, 1000) == pytest.approx(0.01)
    assert _learning_rate(hp, 2, late, 1000) == pytest.approx(0.01)   # reduced *after* epoch 2
    assert _learning_rate(hp, 3, late, 1000) == pytest.approx(0.005)
    assert _learning_rate(hp, 5, late, 1000) == pytest.approx(0.0025)


def test_warm_up_is_short_and_linear():
    hp = Hyperparameters(num_classes=2, learning_rate=0.01)
    assert _learning_rate(hp, 1, 0, 1000) == pytest.approx(0.001)
    assert _learning_rate(hp, 1, WARMUP_ITERATIONS // 2, 1000) == pytest.approx(0.0055)
    # Never longer than one epoch.
    assert _learning_rate(hp, 2, 10, 10) == pytest.approx(0.01)


@pytest.mark.parametrize(("name", "kind", "momentum", "decay"), [
    ("sgd", torch.optim.SGD, 0.8, 0.001),
    ("rmsprop", torch.optim.RMSprop, 0, 0.001),
    ("adam", torch.optim.Adam, None, 0),
    ("adadelta", torch.optim.Adadelta, None, 0),
])
def test_optimizers_keep_the_builtin_semantics(name, kind, momentum, decay):
    hp = Hyperparameters(num_classes=2, optimizer=name, momentum=0.8, weight_decay=0.001)
    optimizer = _optimizer(hp, [torch.nn.Parameter(torch.zeros(1))])
    assert isinstance(optimizer, kind)
    group = optimizer.param_groups[0]
    assert group["weight_decay"] == decay
    if momentum is not None:
        assert group["momentum"] == momentum


@pytest.mark.parametrize(("channel", "expected"), [
    (Channel("train", "application/x-recordio"), "recordio"),
    (Channel("train", "application/x-image"), "sagemaker-json"),
    (Channel("train", "image/jpeg"), "sagemaker-json"),
    (Channel("train", "application/x-recordio", "Pipe", "RecordIO"), "manifest"),
    (Channel("train", None), None),
])
def test_channel_formats(channel, expected):
    assert _format(channel) == expected


def test_mixed_precision_is_float32_on_cpu_and_steps_plainly():
    cpu = torch.device("cpu")
    assert amp.amp_dtype(True, cpu) is None and amp.amp_dtype(False, cpu) is None
    assert amp.grad_scaler(None) is None and amp.grad_scaler(torch.bfloat16) is None
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    with amp.autocast(cpu, None):
        loss = (weight * 2).sum()
    amp.backward_and_step(loss, optimizer, None)
    assert torch.equal(weight.detach(), torch.zeros(3))


def test_amp_precision_can_be_forced_for_the_v100_path(monkeypatch):
    gpu = torch.device("cuda", 0)  # only its type is read: no GPU needed
    monkeypatch.setenv(amp.DTYPE_VARIABLE, "float16")
    assert amp.amp_dtype(True, gpu) is torch.float16
    assert amp.amp_dtype(False, gpu) is None
    monkeypatch.setenv(amp.DTYPE_VARIABLE, "BFloat16")
    assert amp.amp_dtype(True, gpu) is torch.bfloat16
    monkeypatch.setenv(amp.DTYPE_VARIABLE, "fp8")
    with pytest.raises(ValueError, match="DETECTCTL_AMP_DTYPE='fp8'"):
        amp.amp_dtype(True, gpu)


def test_the_job_log_names_the_precision():
    assert amp.describe(None) == "float32"
    assert amp.describe(torch.bfloat16) == "bfloat16 autocast"
    assert amp.describe(torch.float16) == "float16 autocast with loss scaling"


def test_a_loss_that_is_no_longer_finite_ends_the_job_naming_the_batches():
    hp = Hyperparameters(num_classes=2, learning_rate=0.5)
    _check_finite([0.3, 1.2], hp, 3, 20, 40)
    with pytest.raises(JobError, match=r"became nan at epoch 3, between batches 21 and 40; "
                                       r"lower learning_rate \(now 0.5\)"):
        _check_finite([float("nan"), 1.2], hp, 3, 20, 40)
    with pytest.raises(JobError, match="became inf"):
        _check_finite([0.3, float("inf")], hp, 3, 20, 40)


def test_the_loader_matches_the_default_boxes_on_the_cpu():
    model = build_ssd("mobilenet-v3-large", 3, 128)
    collate = CollateWithTargets(model.default_boxes)
    g = torch.Generator().manual_seed(0)
    box = [0.1, 0.2, 0.5, 0.6]
    items = [(torch.rand(3, 128, 128, generator=g), torch.tensor([box] * k).reshape(k, 4),
              torch.arange(k), torch.zeros(k, dtype=torch.bool)) for k in (1, 3, 0)]
    images, targets = collate(items)
    assert images.shape == (3, 3, 128, 128)
    boxes = torch.zeros(3, 3, 4)
    labels = torch.full((3, 3), -1)
    for i, (_, b, lab, _) in enumerate(items):
        boxes[i, :len(lab)], labels[i, :len(lab)] = b, lab
    expected = match_targets(model.default_boxes, boxes, labels)
    assert all(torch.equal(a, b) for a, b in zip(targets, expected))
    assert targets.cls_targets[2].eq(0).all()  # the image without objects: all background
