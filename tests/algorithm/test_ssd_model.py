"""The detector: shapes, gradients, checkpoints, backbone weights, torchvision parity."""

import pytest
import torch
from torchvision.models import mobilenet_v3_large, vgg16
from torchvision.models.detection import ssd300_vgg16

from algorithm.ssd import build_ssd, from_torchvision, multibox_loss
from algorithm.ssd.boxes import cxcywh_to_xyxy
from algorithm.ssd.layout import layout
from algorithm.ssd.vgg import reduce_fc
from algorithm.ssd.weights import CAFFE, IMAGENET, vgg_classifier, vgg_normalization

SIZES = [
    ("vgg-16", 300), ("vgg-16", 512), ("vgg-16", 333),
    ("resnet-50", 300), ("resnet-50", 512), ("resnet-50", 421),
    ("mobilenet-v3-large", 128), ("mobilenet-v3-large", 300), ("mobilenet-v3-large", 512),
    ("mobilenet-v3-large", 131),
]


@pytest.mark.parametrize("network, size", SIZES)
def test_output_shapes(network, size):
    torch.manual_seed(0)
    model = build_ssd(network, 3, size).eval()
    with torch.no_grad():
        cls_logits, box_regression = model(torch.rand(1, 3, size, size))
    boxes = layout(network, size).num_boxes
    assert cls_logits.shape == (1, boxes, 4) and box_regression.shape == (1, boxes, 4)
    assert model.anchors.shape == (boxes, 4) and model.default_boxes.boxes is model.anchors


def _a_box_on_every_map(model, n):
    """Ground truth equal to one default box of each feature map: positives on every map."""
    first, offset = [], 0
    for size, per in model.default_boxes.grid:
        first.append(offset + (size // 2 * size + size // 2) * per)  # a central box
        offset += size * size * per
    boxes = cxcywh_to_xyxy(model.anchors[first]).clamp(0, 1)
    return boxes.expand(n, -1, -1), (torch.arange(len(first)) % 3).expand(n, -1)


@pytest.mark.parametrize("network, size", [("vgg-16", 300), ("resnet-50", 300),
                                           ("mobilenet-v3-large", 160)])
def test_gradients_reach_every_layer(network, size):
    torch.manual_seed(0)
    model = build_ssd(network, 3, size).train()
    boxes, labels = _a_box_on_every_map(model, 2)
    cls_logits, box_regression = model(torch.rand(2, 3, size, size))
    losses = multibox_loss(cls_logits, box_regression, model.default_boxes, boxes, labels)
    (losses["cross_entropy"] + losses["smooth_l1"]).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_detect_returns_rows_and_keeps_the_mode():
    torch.manual_seed(0)
    model = build_ssd("mobilenet-v3-large", 5, 128).train()
    detections = model.detect(torch.rand(2, 3, 128, 128), nms_threshold=0.5)
    assert model.training
    assert len(detections) == 2 and all(d.dim() == 2 and d.shape[1] == 6 for d in detections)
    assert all((d[:, 0] < 5).all() and (d[:, 2:] >= 0).all() for d in detections)


def test_checkpoint_round_trip_keeps_the_normalisation(tmp_path):
    model = build_ssd("mobilenet-v3-large", 2, 128)
    model.image_mean.fill_(0.25)
    state = model.state_dict()
    assert not any("anchors" in key for key in state)
    fresh = build_ssd("mobilenet-v3-large", 2, 128)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.image_mean, model.image_mean)


@pytest.mark.parametrize("arguments, message", [
    (("vgg-19", 2, 300), "vgg-19"),
    (("vgg-16", 2, 256), "image_shape=256"),
    (("mobilenet-v3-large", 2, 100), "image_shape=100"),
    (("vgg-16", 0, 300), "num_classes=0"),
    (("resnet-50", 2, 300.5), "300.5"),
])
def test_bad_arguments_name_the_value(arguments, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        build_ssd(*arguments)


def test_wrong_input_shape_names_it():
    model = build_ssd("mobilenet-v3-large", 2, 128)
    with pytest.raises(ValueError, match=r"\(1, 3, 127, 127\)"):
        model(torch.rand(1, 3, 127, 127))


def test_missing_backbone_weights_say_how_to_provide_them(tmp_path):
    with pytest.raises(ValueError, match="pretrained` channel") as error:
        build_ssd("resnet-50", 2, 300, backbone_weights=str(tmp_path / "nope.pth"))
    assert "resnet50" in str(error.value) and "nope.pth" in str(error.value)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"bad\.pth"):
        build_ssd("resnet-50", 2, 300, backbone_weights=str(bad))


def test_mobilenet_imagenet_weights_load(tmp_path):
    torch.manual_seed(0)
    imagenet = mobilenet_v3_large(weights=None)
    path = tmp_path / "mobilenet.pth"
    torch.save(imagenet.state_dict(), path)
    model = build_ssd("mobilenet-v3-large", 2, 128, backbone_weights=str(path))
    torch.testing.assert_close(model.backbone.features[0][0][0].weight,
                               imagenet.features[0][0].weight)
    assert tuple(model.image_std.flatten().tolist()) == pytest.approx(IMAGENET[1])
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="does not fit"):
        build_ssd("mobilenet-v3-large", 2, 128, backbone_weights=str(wrong))


def test_vgg_features_only_weights_use_caffe_normalisation(tmp_path):
    torch.manual_seed(0)
    features = {k: v for k, v in vgg16(weights=None).state_dict().items()
                if k.startswith("features.")}
    path = tmp_path / "vgg16_features.pth"
    torch.save(features, path)
    model = build_ssd("vgg-16", 2, 300, backbone_weights=str(path))
    assert torch.equal(model.backbone.features[0].weight, features["features.0.weight"])
    assert tuple(model.image_mean.flatten().tolist()) == pytest.approx(CAFFE[0])


def test_vgg_classifier_is_subsampled_into_fc6_and_fc7():
    state = {"classifier.0.weight": torch.randn(4096, 25088),
             "classifier.0.bias": torch.randn(4096),
             "classifier.3.weight": torch.randn(4096, 4096),
             "classifier.3.bias": torch.randn(4096)}
    assert vgg_normalization(vgg_classifier(state)) == IMAGENET
    reduced = reduce_fc(state)
    assert reduced["fc6.weight"].shape == (1024, 512, 3, 3)
    assert reduced["fc7.weight"].shape == (1024, 1024, 1, 1)
    assert torch.equal(reduced["fc6.weight"][1, 2, 1, 2],
                       state["classifier.0.weight"].view(4096, 512, 7, 7)[4, 2, 3, 6])
    state["classifier.0.weight"][0, 0] = float("nan")  # IMAGENET1K_FEATURES stores NaN here
    assert vgg_normalization(vgg_classifier(state)) == CAFFE


def test_from_torchvision_equals_torchvision():
    torch.manual_seed(0)
    tv = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=8).eval()
    with torch.no_grad():  # untrained scores saturate at 1.0 and tie; scale them into range
        for parameter in tv.head.parameters():
            parameter.mul_(0.05)
    ours = from_torchvision(tv.state_dict(), num_classes=7).eval()
    images = torch.rand(2, 3, 300, 300)
    with torch.no_grad():
        resized, _ = tv.transform(list(images))
        head = tv.head(list(tv.backbone(resized.tensors).values()))
        cls_logits, box_regression = ours(images)
        theirs = tv(list(images))
    torch.testing.assert_close(cls_logits, head["cls_logits"], rtol=0, atol=1e-4)
    torch.testing.assert_close(box_regression, head["bbox_regression"], rtol=0, atol=1e-4)
    for mine, their in zip(ours.detect(images), theirs):
        assert mine.shape[0] == their["scores"].shape[0] > 0
        assert torch.equal(mine[:, 0].long(), their["labels"] - 1)
        torch.testing.assert_close(mine[:, 1], their["scores"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(mine[:, 2:] * 300, their["boxes"], rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="num_classes=7"):
        from_torchvision(tv.state_dict(), num_classes=20)
