"""The SSD detector: a base network with extra layers, a head, and its default boxes."""

from __future__ import annotations

from functools import partial
from typing import List, Optional, Sequence, Tuple

import torch
import torchvision
from torch import Tensor, nn

from .anchors import DefaultBoxes, generate_default_boxes, grid_of
from .heads import SSDHead, SSDLiteHead
from .layout import RESNET50, VGG16, Layout, layout
from .mobilenet import MobileNetV3Features
from .postprocess import postprocess_detections
from .resnet import ResNet50Features
from .vgg import VGG16Features, reduce_fc
from .weights import (
    IMAGENET,
    check_normalization,
    load_into,
    read_state_dict,
    vgg_classifier,
    vgg_normalization,
)

# BatchNorm momentum of the SSDLite (mobilenet-v3-large) layers. torchvision's 0.03 suits its
# 600-epoch schedule; at 0.03 the running statistics that evaluation uses average the last ~30
# batches and trail weights that change fast, which in the short trainings this network is for
# (minutes on a CPU) costs most of the early validation mAP. Training itself is unaffected:
# BatchNorm normalises with the batch's statistics in training mode.
MOBILENET_BN_MOMENTUM = 0.1


class SSD(nn.Module):
    """Single Shot MultiBox Detector.

    Input: ``images (Tensor[N, 3, S, S])``, RGB in ``[0, 1]``, resized to ``S = image_shape``;
    the model normalises them itself (``image_mean``, ``image_std``, saved in the state dict).
    Default boxes: :attr:`anchors`. Training: ``forward`` then
    :func:`~algorithm.ssd.loss.multibox_loss`. Inference: :meth:`detect`.

    Args:
        backbone: module mapping images to the list of feature maps.
        head: module mapping the feature maps to ``(cls_logits, box_regression)``.
        boxes: the :class:`~algorithm.ssd.layout.Layout` the backbone and head were built for.
        num_classes: object classes, background not counted.
        image_mean, image_std: input normalisation (see :mod:`algorithm.ssd.weights`).
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        boxes: Layout,
        num_classes: int,
        image_mean: Sequence[float] = IMAGENET[0],
        image_std: Sequence[float] = IMAGENET[1],
    ):
        super().__init__()
        check_normalization(tuple(image_mean), tuple(image_std))
        self.backbone = backbone
        self.head = head
        self.base_network = boxes.base_network
        self.image_shape = boxes.image_shape
        self.num_classes = num_classes
        self.register_buffer("image_mean", torch.tensor(image_mean).view(1, 3, 1, 1))
        self.register_buffer("image_std", torch.tensor(image_std).view(1, 3, 1, 1))
        # Derived from the layout, so not saved: a checkpoint holds weights only.
        self.register_buffer("_anchors", generate_default_boxes(boxes.maps), persistent=False)
        self._grid = grid_of(boxes.maps)

    @property
    def anchors(self) -> Tensor:
        """Default boxes, Tensor[A, 4]: ``(cx, cy, w, h)`` normalized to [0, 1]."""
        return self._anchors

    @property
    def default_boxes(self) -> DefaultBoxes:
        """:attr:`anchors` with their grid layout: pass it to
        :func:`~algorithm.ssd.loss.multibox_loss` for the fast matcher."""
        return DefaultBoxes(self._anchors, self._grid)

    def forward(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        """Head outputs for every default box.

        Args:
            images (Tensor[N, 3, S, S]): RGB in [0, 1], ``S = image_shape``.

        Returns:
            cls_logits (Tensor[N, A, num_classes + 1]): index 0 is background.
            box_regression (Tensor[N, A, 4]): ``(tx, ty, tw, th)``, see
                :func:`~algorithm.ssd.boxes.decode`.
        """
        s = self.image_shape
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, s, s):
            raise ValueError(f"images must be Tensor[N, 3, {s}, {s}] (image_shape={s}), got shape "
                             f"{tuple(images.shape)}")
        x = (images - self.image_mean) / self.image_std
        cls_logits, box_regression = self.head(self.backbone(x))
        if cls_logits.shape[1] != self._anchors.shape[0]:
            raise ValueError(f"the head gives {cls_logits.shape[1]} boxes per image but there are "
                             f"{self._anchors.shape[0]} default boxes")
        return cls_logits, box_regression

    def detect(
        self,
        images: Tensor,
        nms_threshold: float = 0.45,
        score_threshold: float = 0.01,
        top_k: int = 400,
        max_detections: int = 200,
    ) -> List[Tensor]:
        """Detections of each image: Tensor[K, 6] rows ``(class_id, score, x1, y1, x2, y2)``,
        ``class_id`` from 0, coordinates normalized, best first (the built-in algorithm's
        response format). Runs in eval mode without gradients, and restores the mode.
        See :func:`~algorithm.ssd.postprocess.postprocess_detections` for the arguments."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                cls_logits, box_regression = self(images)
        finally:
            self.train(was_training)
        return postprocess_detections(cls_logits, box_regression, self._anchors,
                                      score_threshold, nms_threshold, top_k, max_detections)


def build_ssd(
    base_network: str,
    num_classes: int,
    image_shape: int,
    backbone_weights: Optional[str] = None,
) -> SSD:
    """An SSD for ``base_network`` ("vgg-16", "resnet-50", "mobilenet-v3-large") at
    ``image_shape``, with ``num_classes`` object classes (background not counted).

    ``backbone_weights``: local path of torchvision's ImageNet weights for the base network
    (see :mod:`algorithm.ssd.weights`); ``None`` trains from scratch. The input normalisation
    follows the weights and is saved with the model. The architecture does not depend on
    ``backbone_weights``: any checkpoint of the same three arguments loads into it.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} must be an integer >= 1")
    boxes = layout(base_network, image_shape)
    state = read_state_dict(backbone_weights, base_network) if backbone_weights else None
    normalization = IMAGENET
    if base_network == VGG16:
        vgg = torchvision.models.vgg16(weights=None)
        classifier = None
        if state is not None:
            load_into(vgg, state, backbone_weights, "classifier.")
            classifier = vgg_classifier(state)
            normalization = vgg_normalization(classifier)
        backbone: nn.Module = VGG16Features(vgg, boxes.extras)
        if classifier is not None:
            backbone.load_state_dict(reduce_fc(classifier), strict=False)
        head: nn.Module = SSDHead(backbone.out_channels, boxes.boxes_per_location,
                                  num_classes + 1)
    elif base_network == RESNET50:
        resnet = torchvision.models.resnet50(weights=None)
        if state is not None:
            load_into(resnet, state, backbone_weights, "fc.")
        backbone = ResNet50Features(resnet, boxes.extras)
        head = SSDHead(backbone.out_channels, boxes.boxes_per_location, num_classes + 1)
    else:  # MOBILENET_V3_LARGE
        norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=MOBILENET_BN_MOMENTUM)
        mobilenet = torchvision.models.mobilenet_v3_large(weights=None, norm_layer=norm_layer)
        if state is not None:
            load_into(mobilenet, state, backbone_weights, "classifier.")
        else:
            # From scratch, torchvision's SSDLite initialises the base network like its head.
            for layer in mobilenet.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.normal_(layer.weight, mean=0.0, std=0.03)
        backbone = MobileNetV3Features(mobilenet)
        head = SSDLiteHead(backbone.out_channels, boxes.boxes_per_location, num_classes + 1)
        for layer in list(backbone.extras.modules()) + list(head.modules()):
            if isinstance(layer, nn.BatchNorm2d):  # conv_bn_act's blocks come with 0.03
                layer.momentum = MOBILENET_BN_MOMENTUM
    return SSD(backbone, head, boxes, num_classes, normalization[0], normalization[1])
