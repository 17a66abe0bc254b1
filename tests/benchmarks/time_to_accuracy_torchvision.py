"""torchvision's side of time_to_accuracy.py: SSDLite from scratch in a plain PyTorch loop.

Started by time_to_accuracy.py, one process per run (and per tuning trial):

    python tests/benchmarks/time_to_accuracy_torchvision.py --train T.rec --validation V.rec
        --image-size 192 --batch 16 --lr 0.0125 --bn-momentum 0.03 --budget 1500
        [--stop-epochs 5] [--threads 2] [--workers 1]

- the model: ``ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
  num_classes=4)`` (background included), its transform resizing to ``--image-size`` square
  (ours' image_shape) instead of 320, every BatchNorm layer's momentum set to ``--bn-momentum``;
- the data: the RecordIO files read by our reader, with torchvision's reference SSDlite
  augmentation (references/detection/presets.py, ``--data-augmentation ssdlite``:
  RandomIoUCrop, RandomHorizontalFlip, then ToDtype and SanitizeBoundingBoxes);
- the optimizer: the reference recipe's (SGD, momentum 0.9, weight decay 4e-5, linear warm-up
  over min(1000, one epoch) iterations from 0.001 x lr, then cosine annealing to 0 over
  ``--budget`` seconds of training);
- validation after every epoch, as the job does, with ``algorithm.evaluation.evaluate`` (VOC07
  mAP at IoU 0.5) on the model's own post-processing defaults. Prints ``#tta evaluating after
  epoch E`` before and ``#tta epoch=E mAP=X`` after each.

Training time is measured from the process's start, validations excluded. The run ends at
``--budget`` seconds of it, or after ``--stop-epochs`` epochs (a tuning trial: the first epochs
of the run's schedule).
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CLASSES = 3
# torchvision's reference recipe for ssdlite320_mobilenet_v3_large (references/detection):
# 8 GPUs x 24 images, lr 0.15, momentum 0.9, weight decay 4e-5, cosine annealing, warm-up over
# the first min(1000, iterations per epoch) iterations from 0.001 x lr.
REFERENCE_BATCH, REFERENCE_LR, REFERENCE_WD, REFERENCE_BN_MOMENTUM = 192, 0.15, 4e-5, 0.03


def reference_lr(batch: int) -> float:
    """The reference learning rate scaled linearly to ``batch``."""
    return REFERENCE_LR * batch / REFERENCE_BATCH


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--validation", type=Path, required=True)
    parser.add_argument("--image-size", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--bn-momentum", type=float, default=REFERENCE_BN_MOMENTUM)
    parser.add_argument("--budget", type=float, required=True,
                        help="seconds of training; the cosine schedule spans them")
    parser.add_argument("--stop-epochs", type=int, default=0, help="end after N epochs (0: no)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="data loader workers")
    return train(parser.parse_args())


def train(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from PIL import Image
    from torchvision import tv_tensors
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F

    from algorithm.data.sources import open_source
    from algorithm.evaluation import GroundTruth, evaluate

    start = time.monotonic()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    class Synth(torch.utils.data.Dataset):
        """The RecordIO file, read by our reader, as torchvision's (image, target) pairs."""

        def __init__(self, path: Path, transform: Any):
            self.source = open_source(str(path), "recordio")
            self.transform = transform

        def __len__(self) -> int:
            return len(self.source)

        def __getitem__(self, index: int) -> Any:
            sample = self.source[index]
            image = F.pil_to_tensor(Image.open(io.BytesIO(sample.read_image_bytes()))
                                    .convert("RGB"))
            h, w = image.shape[-2:]
            boxes = torch.as_tensor(np.asarray(sample.boxes, np.float32).reshape(-1, 4)
                                    * np.array([w, h, w, h], np.float32))
            target = {"boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w)),
                      "labels": torch.as_tensor(np.asarray(sample.labels, np.int64) + 1)}
            return self.transform(tv_tensors.Image(image), target)

    # references/detection/presets.py, data_augmentation="ssdlite" (v2 transforms).
    train_transform = v2.Compose([v2.RandomIoUCrop(), v2.RandomHorizontalFlip(p=0.5),
                                  v2.ToDtype(torch.float, scale=True),
                                  v2.SanitizeBoundingBoxes(), v2.ToPureTensor()])
    eval_transform = v2.Compose([v2.ToDtype(torch.float, scale=True), v2.ToPureTensor()])
    train_set = Synth(args.train, train_transform)
    validation = Synth(args.validation, eval_transform)
    truths = []
    for index in range(len(validation.source)):
        sample = validation.source[index]
        truths.append(GroundTruth(np.asarray(sample.boxes, np.float32).reshape(-1, 4),
                                  np.asarray(sample.labels, np.int64),
                                  np.asarray(sample.difficult, bool)))
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=args.batch, shuffle=True, num_workers=args.workers,
        collate_fn=lambda batch: tuple(zip(*batch)), drop_last=True,
        persistent_workers=args.workers > 0)

    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                          num_classes=CLASSES + 1)
    # Ours' image size, not 320: the default boxes are relative to the image, so only the
    # transform's fixed size changes.
    model.transform.min_size = (args.image_size,)
    model.transform.max_size = args.image_size
    model.transform.fixed_size = (args.image_size, args.image_size)
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = args.bn_momentum
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=args.lr, momentum=0.9, weight_decay=REFERENCE_WD)
    warmup = min(1000, len(loader) - 1)

    @torch.no_grad()
    def validate() -> float:
        model.eval()
        detections = []
        for first in range(0, len(validation), 16):
            images = [validation[i][0] for i in range(first, min(first + 16, len(validation)))]
            for image, found in zip(images, model(images)):
                h, w = image.shape[-2:]
                boxes = found["boxes"] / torch.tensor([w, h, w, h])
                detections.append(torch.cat([(found["labels"] - 1)[:, None].float(),
                                             found["scores"][:, None], boxes], 1).numpy())
        model.train()
        return evaluate(detections, truths, CLASSES, 0.5, "voc07").mAP

    evaluation, iteration, epoch = 0.0, 0, 0
    model.train()
    while not args.stop_epochs or epoch < args.stop_epochs:
        for images, targets in loader:
            trained = time.monotonic() - start - evaluation
            if trained >= args.budget:
                return 0
            if iteration < warmup:
                factor = 0.001 + (1 - 0.001) * iteration / warmup
            else:
                factor = 0.5 * (1 + math.cos(math.pi * min(1.0, trained / args.budget)))
            for group in optimizer.param_groups:
                group["lr"] = args.lr * factor
            losses = model(list(images), list(targets))
            loss = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            iteration += 1
        epoch += 1
        print(f"#tta evaluating after epoch {epoch} ({iteration} iterations), loss "
              f"{loss.item():.3f}", flush=True)
        began = time.monotonic()
        score = validate()
        print(f"#tta epoch={epoch} mAP={score:.6f}", flush=True)
        evaluation += time.monotonic() - began
    return 0


if __name__ == "__main__":
    sys.exit(main())
