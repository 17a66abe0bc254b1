"""Our SSD against torchvision's, side by side on one CPU (issue 3's benchmarks).

    python tests/benchmarks/ssd_vs_torchvision.py            # everything, one thread
    python tests/benchmarks/ssd_vs_torchvision.py --only postprocess assignment

1. Post-processing SSD300-VOC outputs (8,732 boxes x 21 classes), batch 8: ours vs
   torchvision's ``SSD.postprocess_detections`` on the same tensors (same detections checked),
   and the floor: torchvision's bare NMS kernel on the same candidate boxes.
2. Target assignment (match + encode), batch 32, ~8 boxes per image: ours vs torchvision's
   per-image ``SSDMatcher`` + ``BoxCoder``.
3. One training step (forward, loss, backward), SSD300 VGG-16, batch 8: ours vs
   torchvision's ``ssd300_vgg16`` in train mode.
4. Inference, batch 1, forward + post-processing: VGG-16/300 vs ``ssd300_vgg16`` and
   MobileNetV3/320 vs ``ssdlite320_mobilenet_v3_large``.

Each figure is the median of repeated runs, ours and torchvision's interleaved. Prints a table
and writes tests/benchmarks/results/ssd_vs_torchvision.json. With ``--only``, the benchmarks not
run are kept from that file when it comes from the same machine and thread count, and ``runs``
says which command and date each benchmark's figures come from. Models are randomly initialised
(nothing is downloaded); where ours and torchvision's are compared end to end they hold the same
weights.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection import ssd300_vgg16, ssdlite, ssdlite320_mobilenet_v3_large
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.ops import box_iou, nms

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from algorithm.ssd import build_ssd, from_torchvision, multibox_loss  # noqa: E402
from algorithm.ssd.anchors import DefaultBoxes, generate_default_boxes, grid_of  # noqa: E402
from algorithm.ssd.boxes import cxcywh_to_xyxy  # noqa: E402
from algorithm.ssd.layout import layout  # noqa: E402
from algorithm.ssd.matcher import assign_targets, match_targets  # noqa: E402
from algorithm.ssd.postprocess import postprocess_detections  # noqa: E402
from tests.algorithm.support import head_outputs  # noqa: E402
from tests.benchmarks import result_files  # noqa: E402

RESULTS = result_files.RESULTS / "ssd_vs_torchvision.json"
CLASSES = 20  # VOC
RESULT_FILES = ["ssd_vs_torchvision.json"]
RESULT_KEYS = {
    "threads": "int",
    "runs": {"*": {"command": "str", "date": "str"}},
    "results": {
        "postprocess?": {
            "batch": "int", "boxes": "int", "classes": "int", "candidates_per_image": "number",
            "detections_per_image": "number", "same_detections": "bool", "ours_ms": "number",
            "torchvision_ms": "number", "nms_kernel_per_class_ms": "number",
            "nms_kernel_per_image_ms": "number", "floor_ms": "number", "speedup": "number",
            "ours_over_floor": "number", "goals": {"*": "bool"}},
        "assignment?": {
            "batch": "int", "boxes_per_image": "number", "class_targets_agreeing": "number",
            "ours_ms": "number", "ours_dense_targets_ms": "number", "torchvision_ms": "number",
            "speedup": "number", "speedup_dense_targets": "number", "goals": {"*": "bool"}},
        "training?": {
            "batch": "int", "image_shape": "int", "ours_s": "number", "torchvision_s": "number",
            "ratio": "number", "goals": {"*": "bool"}},
        "inference?": {
            "vgg16_300": {"ours_ms": "number", "torchvision_ms": "number", "ratio": "number"},
            "mobilenet_v3_large_320": {
                "ours_ms": "number", "torchvision_ms": "number", "ratio": "number",
                "torchvision_reduced_tail_ms": "number", "ratio_to_reduced_tail": "number"}},
    },
}


def timed(functions, repeats, warmup=1):
    """Median seconds of each function, runs interleaved so that drift hits all alike."""
    for _ in range(warmup):
        for f in functions.values():
            f()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, f in functions.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def voc_like_outputs(anchors, n, seed=0, background=8.0, noise=-2.4):
    """SSD300-VOC head outputs with a realistic score distribution.

    Each image has 1 to 4 objects (VOC averages 2.5) of random classes, sizes and places.
    Background logits are ``background + 1.5 z`` and class logits ``noise + 1.5 z``, so away
    from objects the background wins by 10.4 nats on average and about 0.3% of (box, class)
    scores pass 0.01, as confusions of a trained model do. A default box overlapping an object
    with IoU u > 0.2 loses 16 u on its background logit and gains 10 u on the object's class
    (u = 0.5: score ~0.9), and regresses to the object with noise 0.1.
    """
    return head_outputs(anchors, n, CLASSES, seed, background, noise, objects=(1, 4), jitter=0.1)


def torchvision_candidates(logits, regression, anchors_px, coder, size=300):
    """The candidate boxes torchvision's post-processing hands to NMS, per (image, class)."""
    groups = []
    scores = torch.softmax(logits, -1)
    for i in range(logits.shape[0]):
        boxes = coder.decode_single(regression[i], anchors_px)
        boxes = torchvision.ops.clip_boxes_to_image(boxes, (size, size))
        image = []
        for label in range(1, logits.shape[2]):
            score = scores[i, :, label]
            keep = score > 0.01
            score, index = score[keep].topk(min(400, int(keep.sum())))
            image.append((boxes[keep][index], score, label))
        groups.append(image)
    return groups


def bench_postprocess(repeats):
    anchors = generate_default_boxes(layout("vgg-16", 300).maps)
    anchors_px = [cxcywh_to_xyxy(anchors) * 300] * 8
    logits, regression = voc_like_outputs(anchors, 8)
    tv = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=CLASSES + 1)
    head = {"cls_logits": logits, "bbox_regression": regression}

    theirs = tv.postprocess_detections(head, anchors_px, [(300, 300)] * 8)
    ours = postprocess_detections(logits, regression, anchors)
    same = all(
        mine.shape[0] == their["scores"].shape[0]
        and torch.equal(mine[:, 0].long(), their["labels"] - 1)
        and torch.allclose(mine[:, 1], their["scores"], atol=1e-6)
        and torch.allclose(mine[:, 2:] * 300, their["boxes"], atol=1e-3)
        for mine, their in zip(ours, theirs))

    groups = torchvision_candidates(logits, regression, anchors_px[0], tv.box_coder)
    per_group = [(b, s) for image in groups for b, s, _ in image if s.numel()]
    per_image = []
    for image in groups:
        boxes = torch.cat([b + (label * 301.0) for b, _, label in image])  # coordinate trick
        per_image.append((boxes, torch.cat([s for _, s, _ in image])))
    candidates = sum(s.numel() for _, s in per_group) / 8

    times = timed({
        "ours": lambda: postprocess_detections(logits, regression, anchors),
        "torchvision": lambda: tv.postprocess_detections(head, anchors_px, [(300, 300)] * 8),
        "nms_per_class": lambda: [nms(b, s, 0.45) for b, s in per_group],
        "nms_per_image": lambda: [nms(b, s, 0.45) for b, s in per_image],
    }, repeats)
    floor = min(times["nms_per_class"], times["nms_per_image"])
    return {
        "batch": 8, "boxes": 8732, "classes": CLASSES + 1,
        "candidates_per_image": candidates,
        "detections_per_image": sum(d.shape[0] for d in ours) / 8,
        "same_detections": same,
        "ours_ms": times["ours"] * 1e3,
        "torchvision_ms": times["torchvision"] * 1e3,
        "nms_kernel_per_class_ms": times["nms_per_class"] * 1e3,
        "nms_kernel_per_image_ms": times["nms_per_image"] * 1e3,
        "floor_ms": floor * 1e3,
        "speedup": times["torchvision"] / times["ours"],
        "ours_over_floor": times["ours"] / floor,
        "goals": {"speedup >= 3": times["torchvision"] / times["ours"] >= 3,
                  "ours_over_floor <= 2": times["ours"] / floor <= 2,
                  "same_detections": same},
    }


def bench_assignment(repeats):
    plan = layout("vgg-16", 300)
    anchors = DefaultBoxes(generate_default_boxes(plan.maps), grid_of(plan.maps))
    anchors_px = cxcywh_to_xyxy(anchors.boxes) * 300
    g = torch.Generator().manual_seed(0)
    n, most = 32, 10
    counts = torch.randint(6, 11, (n,), generator=g)  # 6 to 10 boxes, 8 on average
    centre = torch.rand(n, most, 2, generator=g) * 0.8 + 0.1
    size = torch.rand(n, most, 2, generator=g) * 0.5 + 0.03
    boxes = torch.cat((centre - size / 2, centre + size / 2), -1).clamp(0, 1)
    labels = torch.randint(0, CLASSES, (n, most), generator=g)
    labels[torch.arange(most).view(1, -1) >= counts.view(-1, 1)] = -1
    targets = [{"boxes": boxes[i, :c] * 300, "labels": labels[i, :c] + 1}
               for i, c in enumerate(counts.tolist())]
    matcher = det_utils.SSDMatcher(0.5)
    coder = det_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))

    def torchvision_assign():
        # What torchvision's SSD does per image in train mode (forward, then compute_loss).
        out = []
        for target in targets:
            matched = matcher(box_iou(target["boxes"], anchors_px))
            foreground = torch.where(matched >= 0)[0]
            gt = matched[foreground]
            regression = coder.encode_single(target["boxes"][gt], anchors_px[foreground])
            classes = torch.zeros(anchors_px.shape[0], dtype=torch.int64)
            classes[foreground] = target["labels"][gt]
            out.append((classes, regression))
        return out

    mine = match_targets(anchors, boxes, labels).cls_targets
    agree = sum(int((mine[i] == c).sum()) for i, (c, _) in enumerate(torchvision_assign()))
    # Like torchvision's, ours gives regression targets for the matched default boxes only: what
    # the loss reads. assign_targets spreads them over a dense Tensor[N, A, 4] as well.
    times = timed({"ours": lambda: match_targets(anchors, boxes, labels),
                   "ours_dense": lambda: assign_targets(anchors, boxes, labels),
                   "torchvision": torchvision_assign}, repeats, warmup=3)
    return {
        "batch": n, "boxes_per_image": counts.float().mean().item(),
        "class_targets_agreeing": agree / mine.numel(),
        "ours_ms": times["ours"] * 1e3,
        "ours_dense_targets_ms": times["ours_dense"] * 1e3,
        "torchvision_ms": times["torchvision"] * 1e3,
        "speedup": times["torchvision"] / times["ours"],
        "speedup_dense_targets": times["torchvision"] / times["ours_dense"],
        "goals": {"speedup >= 5": times["torchvision"] / times["ours"] >= 5},
    }


def bench_training(repeats):
    torch.manual_seed(0)
    tv = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=CLASSES + 1).train()
    ours = from_torchvision(tv.state_dict(), CLASSES).train()
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 300, 300, generator=g)
    centre = torch.rand(8, 3, 2, generator=g) * 0.6 + 0.2
    size = torch.rand(8, 3, 2, generator=g) * 0.4 + 0.1
    boxes = torch.cat((centre - size / 2, centre + size / 2), -1)
    labels = torch.randint(0, CLASSES, (8, 3), generator=g)
    targets = [{"boxes": b * 300, "labels": lab + 1} for b, lab in zip(boxes, labels)]

    def ours_step():
        ours.zero_grad()
        cls_logits, box_regression = ours(images)
        losses = multibox_loss(cls_logits, box_regression, ours.default_boxes, boxes, labels)
        (losses["cross_entropy"] + losses["smooth_l1"]).backward()

    def torchvision_step():
        tv.zero_grad()
        losses = tv(list(images), targets)
        (losses["bbox_regression"] + losses["classification"]).backward()

    times = timed({"ours": ours_step, "torchvision": torchvision_step}, repeats)
    return {
        "batch": 8, "image_shape": 300,
        "ours_s": times["ours"], "torchvision_s": times["torchvision"],
        "ratio": times["ours"] / times["torchvision"],
        "goals": {"ratio <= 1.0": times["ours"] <= times["torchvision"]},
    }


def _ssdlite_full_tail():
    """torchvision's ssdlite320_mobilenet_v3_large, but with the full MobileNetV3 tail (its
    builder picks the reduced tail when no ImageNet weights are given; ours always has the full
    one, which ImageNet weights need)."""
    norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    net = torchvision.models.mobilenet_v3_large(weights=None, norm_layer=norm_layer)
    backbone = ssdlite._mobilenet_extractor(net, 6, norm_layer)
    boxes = DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.2, max_ratio=0.95)
    channels = det_utils.retrieve_out_channels(backbone, (320, 320))
    head = ssdlite.SSDLiteHead(channels, boxes.num_anchors_per_location(), CLASSES + 1,
                               norm_layer)
    return ssdlite.SSD(backbone, boxes, (320, 320), CLASSES + 1, head=head, score_thresh=0.001,
                       nms_thresh=0.55, detections_per_img=300, topk_candidates=300,
                       image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])


def _ssdlite_into_ours(tv):
    """Our MobileNetV3/320 SSD holding the weights (and normalisation) of torchvision's."""
    ours = build_ssd("mobilenet-v3-large", CLASSES, 320)
    state = {}
    for key, value in tv.state_dict().items():
        key = re.sub(r"^backbone\.extra\.", "backbone.extras.", key)
        key = re.sub(r"^head\.classification_head\.module_list\.", "head.classification.", key)
        key = re.sub(r"^head\.regression_head\.module_list\.", "head.regression.", key)
        state[key] = value
    state["image_mean"] = torch.full((1, 3, 1, 1), 0.5)
    state["image_std"] = torch.full((1, 3, 1, 1), 0.5)
    ours.load_state_dict(state)
    return ours


def bench_inference(repeats):
    torch.manual_seed(0)
    results = {}
    image = torch.rand(1, 3, 300, 300)
    tv = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=CLASSES + 1).eval()
    ours = from_torchvision(tv.state_dict(), CLASSES).eval()
    with torch.no_grad():
        times = timed({"ours": lambda: ours.detect(image),
                       "torchvision": lambda: tv(list(image))}, repeats, warmup=2)
    results["vgg16_300"] = {"ours_ms": times["ours"] * 1e3,
                            "torchvision_ms": times["torchvision"] * 1e3,
                            "ratio": times["ours"] / times["torchvision"]}

    image = torch.rand(1, 3, 320, 320)
    lite = _ssdlite_full_tail().eval()
    ours = _ssdlite_into_ours(lite).eval()
    stock = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                          num_classes=CLASSES + 1).eval()
    settings = {"score_threshold": 0.001, "nms_threshold": 0.55, "top_k": 300,
                "max_detections": 300}  # torchvision's SSDLite post-processing
    with torch.no_grad():
        times = timed({"ours": lambda: ours.detect(image, **settings),
                       "torchvision": lambda: lite(list(image)),
                       "torchvision_reduced_tail": lambda: stock(list(image))},
                      repeats, warmup=2)
    results["mobilenet_v3_large_320"] = {
        "ours_ms": times["ours"] * 1e3,
        "torchvision_ms": times["torchvision"] * 1e3,
        "ratio": times["ours"] / times["torchvision"],
        "torchvision_reduced_tail_ms": times["torchvision_reduced_tail"] * 1e3,
        "ratio_to_reduced_tail": times["ours"] / times["torchvision_reduced_tail"],
    }
    return results


BENCHMARKS = {
    "postprocess": (bench_postprocess, 30),
    "assignment": (bench_assignment, 50),
    "training": (bench_training, 5),
    "inference": (bench_inference, 10),
}


def _table(results):
    rows = []
    if "postprocess" in results:
        r = results["postprocess"]
        rows += [
            ("1 post-processing, batch 8 (ms)", r["ours_ms"], r["torchvision_ms"],
             "{:.2f}x faster".format(r["speedup"])),
            ("  floor: NMS kernel per (image, class)", r["nms_kernel_per_class_ms"], None, ""),
            ("  floor: NMS kernel per image (offsets)", r["nms_kernel_per_image_ms"], None, ""),
            ("  ours / floor", r["ours_over_floor"], None,
             "same detections: {}".format(r["same_detections"])),
        ]
    if "assignment" in results:
        r = results["assignment"]
        rows.append(("2 match + encode, batch 32 (ms)", r["ours_ms"], r["torchvision_ms"],
                     "{:.2f}x faster".format(r["speedup"])))
    if "training" in results:
        r = results["training"]
        rows.append(("3 train step VGG-16/300, batch 8 (s)", r["ours_s"], r["torchvision_s"],
                     "ratio {:.3f}".format(r["ratio"])))
    if "inference" in results:
        for name, r in results["inference"].items():
            rows.append((f"4 inference {name}, batch 1 (ms)", r["ours_ms"],
                         r["torchvision_ms"], "ratio {:.3f}".format(r["ratio"])))
            if "torchvision_reduced_tail_ms" in r:
                rows.append(("  torchvision stock builder (reduced tail)", None,
                             r["torchvision_reduced_tail_ms"],
                             "ratio {:.3f}".format(r["ratio_to_reduced_tail"])))
    width = max(len(row[0]) for row in rows)
    print("{:<{w}}  {:>12}  {:>12}  {}".format("benchmark", "ours", "torchvision", "", w=width))
    for name, ours, theirs, note in rows:
        cells = [f"{v:>12.3f}" if v is not None else " " * 12 for v in (ours, theirs)]
        print("{:<{w}}  {}  {}  {}".format(name, cells[0], cells[1], note, w=width))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the issue's figures are one thread)")
    parser.add_argument("--repeats", type=float, default=1.0,
                        help="scale the number of timed runs")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    results, runs = {}, {}
    for name in args.only:
        function, repeats = BENCHMARKS[name]
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = function(max(1, round(repeats * args.repeats)))
        runs[name] = {"command": result_files.command(), "date": result_files.now()}
    kept = _kept(args.output, args.threads, set(args.only))
    for name, (result, run) in kept.items():
        results[name], runs[name] = result, run
        print(f"{name}: kept from {run['command']} ({run['date']})", file=sys.stderr)
    _table(results)
    order = [name for name in BENCHMARKS if name in results]
    result_files.write(args.output, {"threads": args.threads,
                                     "runs": {name: runs[name] for name in order},
                                     "results": {name: results[name] for name in order}},
                       RESULT_KEYS)
    print(f"wrote {args.output}")


def _kept(path, threads, ran):
    """The benchmarks of the last report at ``path`` not run now, with their runs, when that
    report comes from this machine with the same thread count (else none)."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if previous.get("machine") != result_files.machine() or previous.get("threads") != threads:
        return {}
    return {name: (result, previous["runs"][name])
            for name, result in previous.get("results", {}).items()
            if name not in ran and name in previous.get("runs", {})}


if __name__ == "__main__":
    main()
