"""Default boxes and feature-map layouts."""

import pytest
import torch
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator

from algorithm.ssd.anchors import generate_default_boxes, linear_scales, ssd_scales
from algorithm.ssd.layout import FINAL4, STRIDE2, VALID3, extra_layers, layout


def test_box_counts_of_the_paper():
    assert layout("vgg-16", 300).num_boxes == 8732
    assert layout("vgg-16", 512).num_boxes == 24564
    assert generate_default_boxes(layout("vgg-16", 300).maps).shape == (8732, 4)


def test_paper_layouts_at_300_and_512():
    ssd300 = layout("vgg-16", 300)
    assert ssd300.sizes == (38, 19, 10, 5, 3, 1)
    assert ssd300.extras == (STRIDE2, STRIDE2, VALID3, VALID3)
    assert [300 / m.cells for m in ssd300.maps] == [8, 16, 32, 64, 100, 300]
    ssd512 = layout("vgg-16", 512)
    assert ssd512.sizes == (64, 32, 16, 8, 4, 2, 1)
    assert ssd512.extras == (STRIDE2,) * 4 + (FINAL4,)
    assert [512 / m.cells for m in ssd512.maps] == [8, 16, 32, 64, 128, 256, 512]
    assert layout("resnet-50", 512).sizes == (32, 16, 8, 4, 2, 1)
    assert layout("mobilenet-v3-large", 320).sizes == (20, 10, 5, 3, 2, 1)


def test_scales_follow_the_paper_rule():
    assert ssd_scales(6) == [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
    assert ssd_scales(7) == [0.07, 0.15, 0.30, 0.45, 0.60, 0.75, 0.90, 1.05]
    assert linear_scales(6)[0] == 0.2 and linear_scales(6)[-2:] == [0.95, 1.0]
    with pytest.raises(ValueError, match="2"):
        ssd_scales(2)


def test_vgg16_300_boxes_equal_torchvision_box_for_box():
    ssd300 = layout("vgg-16", 300)
    generator = DefaultBoxGenerator(
        [[2], [2, 3], [2, 3], [2, 3], [2], [2]],
        scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
        steps=[8, 16, 32, 64, 100, 300],
    )
    theirs = generator._grid_default_boxes([[s, s] for s in ssd300.sizes], [300, 300])
    assert torch.equal(generate_default_boxes(ssd300.maps), theirs)


def test_ssdlite_320_boxes_equal_torchvision():
    lite = layout("mobilenet-v3-large", 320)
    generator = DefaultBoxGenerator([[2, 3]] * 6, min_ratio=0.2, max_ratio=0.95)
    theirs = generator._grid_default_boxes([[s, s] for s in lite.sizes], [320, 320])
    assert torch.equal(generate_default_boxes(lite.maps), theirs)


@pytest.mark.parametrize("network", ["vgg-16", "resnet-50", "mobilenet-v3-large"])
@pytest.mark.parametrize("size", [300, 301, 333, 400, 448, 512, 600, 777, 1024])
def test_any_size_ends_at_one_cell_with_centres_on_the_image(network, size):
    plan = layout(network, size)
    boxes = generate_default_boxes(plan.maps)
    assert plan.num_boxes == boxes.shape[0]
    if network != "mobilenet-v3-large":
        assert plan.sizes[-1] == 1
        assert all(a > b for a, b in zip(plan.sizes, plan.sizes[1:]))
    for fmap in plan.maps:  # the last centre lies within a quarter step of the image
        last = (fmap.size - 0.5) / fmap.cells
        assert last <= 1 + 0.25 / fmap.cells + 1e-9
    assert (boxes[:, 2:] > 0).all() and (boxes[:, 2:] <= 1).all()


def test_extra_layers_rule():
    assert extra_layers(19) == (STRIDE2, STRIDE2, VALID3, VALID3)
    assert extra_layers(32) == (STRIDE2,) * 4 + (FINAL4,)
    assert extra_layers(7) == (STRIDE2, STRIDE2, FINAL4)
    assert extra_layers(1) == ()


@pytest.mark.parametrize("network, size", [("vgg-16", 299), ("resnet-50", 128),
                                           ("mobilenet-v3-large", 127), ("vgg-19", 300)])
def test_unsupported_layouts_name_the_value(network, size):
    with pytest.raises(ValueError, match=str(size) if network != "vgg-19" else "vgg-19"):
        layout(network, size)
