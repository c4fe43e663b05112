"""GradCAM and Guided GradCAM for convolutional models (images and DNA)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from captum.attr import GuidedGradCam, LayerGradCam
from torch import nn

from xai_core.models.architectures import Exp

from .base import register_explainer
from .context import ExplainContext

_ACTS = (nn.ReLU, Exp)


def cam_layer(model: nn.Module) -> nn.Module:
    """The activation right after the last convolution (or the convolution itself if none follows)."""
    mods = list(model.modules())
    last = max(i for i, m in enumerate(mods) if isinstance(m, (nn.Conv1d, nn.Conv2d)))
    for m in mods[last + 1:]:
        if isinstance(m, _ACTS):
            return m
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear, nn.Flatten)):
            break
    return mods[last]


def _upsample(cam: torch.Tensor, ctx: ExplainContext) -> torch.Tensor:
    size = ctx.input_shape[1:]
    mode = "bilinear" if len(size) == 2 else "linear"
    return F.interpolate(cam, size=size, mode=mode, align_corners=False)


@register_explainer("gradcam", label="GradCAM", family="cam", modalities=("image", "sequence"), needs_conv=True,
                    needs_eager=True,
                    cost=lambda p, c: (1.0, 1.0), wraps="captum.attr.LayerGradCam + interpolate",
                    defaults={"*": {"relu": True}},
                    description="Gradient-weighted activations of the last conv layer, upsampled to the input")
def gradcam(ctx, x, target, relu):
    cam = LayerGradCam(ctx.forward, cam_layer(ctx.model)).attribute(x, target=target, relu_attributions=relu)
    return _upsample(cam, ctx).expand_as(x).contiguous()


@register_explainer("guided_gradcam", label="Guided GradCAM", family="cam", modalities=("image", "sequence"),
                    needs_conv=True, needs_eager=True, cost=lambda p, c: (2.0, 2.0),
                    wraps="captum.attr.GuidedGradCam",
                    description="Guided Backprop multiplied by the upsampled GradCAM")
def guided_gradcam(ctx, x, target):
    mode = "bilinear" if ctx.modality == "image" else "linear"
    return GuidedGradCam(ctx.forward, cam_layer(ctx.model)).attribute(x, target=target, interpolate_mode=mode)
