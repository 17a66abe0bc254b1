"""A tiny model overfits a handful of synthetic images: the pieces work together."""

import torch
from torchvision.ops import box_iou

from algorithm.ssd import build_ssd, multibox_loss

COLOURS = torch.tensor([[1.0, 0.1, 0.1], [0.1, 1.0, 0.1], [0.1, 0.1, 1.0]])


def _synthetic(n, size):
    """Dark noise with one or two coloured rectangles per image; the colour is the class."""
    g = torch.Generator().manual_seed(1)
    images = torch.rand(n, 3, size, size, generator=g) * 0.2
    boxes = torch.zeros(n, 2, 4)
    labels = torch.full((n, 2), -1)
    for i in range(n):
        for j in range(1 + i % 2):
            w, h = (torch.rand(2, generator=g) * 0.4 + 0.25).tolist()
            x, y = (torch.rand(2, generator=g) * torch.tensor([1 - w, 1 - h])).tolist()
            label = int(torch.randint(0, 3, (1,), generator=g))
            top, left = int(y * size), int(x * size)
            images[i, :, top:int((y + h) * size), left:int((x + w) * size)] = (
                COLOURS[label].view(3, 1, 1))
            boxes[i, j] = torch.tensor([x, y, x + w, y + h])
            labels[i, j] = label
    return images, boxes, labels


def test_tiny_model_overfits_synthetic_images():
    torch.manual_seed(0)
    images, boxes, labels = _synthetic(4, 128)
    model = build_ssd("mobilenet-v3-large", 3, 128)
    for layer in model.modules():  # running statistics that follow 40 steps (0.03 needs hundreds)
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = 0.5
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(40):
        cls_logits, box_regression = model(images)
        losses = multibox_loss(cls_logits, box_regression, model.default_boxes, boxes, labels)
        loss = losses["cross_entropy"] + losses["smooth_l1"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert history[-1] < history[0] / 20

    detections = model.detect(images)
    for rows, truth, label in zip(detections, boxes, labels):
        for box, cls in zip(truth[label >= 0], label[label >= 0]):
            hit = (rows[:, 0] == cls) & (rows[:, 1] > 0.5)
            assert hit.any() and box_iou(rows[hit, 2:], box[None]).max() > 0.5
