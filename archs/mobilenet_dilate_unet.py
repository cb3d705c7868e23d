"""mobilenet_dilate_unet: MobileNetV2 encoder with a UNet decoder built from dilated convs.

Design 1 of ``shared/ARCHITECTURES.md`` ("1. mobilenet_dilate_unet"). The encoder is MobileNetV2
(ReLU6, output stride 32, without the final 1280-channel conv) returning five feature maps at
1/2 .. 1/32 of the input side. The decoder climbs back with four "up-concat-dilate" steps
(transposed conv x2, concatenation with the encoder map of the same scale, dilated 3x3 conv + BN)
and a small head whose 1-channel logits are bilinearly upsampled x2 to full resolution.

Reference cost: 2,378,217 parameters, 0.946 GMACs (fvcore) at 1x3x256x256.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn as nn

from .blocks import InvertedResidual, SegNet, conv, conv_bn_act, upsample
from .registry import LOGITS, ArchSpec, register_arch

SPEC = ArchSpec(
    name="mobilenet_dilate_unet",
    input_multiple=32,
    output_stride=32,
    output_kind=LOGITS,
    ref_params=2_378_217,
    ref_macs_g=0.946,
    ref_macs_size=256,
    description="MobileNetV2 encoder (ReLU6, OS 32) + UNet decoder of transposed convs and dilated 3x3 convs",
)

# Encoder stages e1..e5: one row per run of inverted residuals, (cin, cout, first stride,
# expansion, repeats). Only the first block of a run has the stride and the channel change.
_STAGES: Tuple[Tuple[Tuple[int, int, int, int, int], ...], ...] = (
    ((32, 16, 1, 1, 1),),                                            # e1, 1/2
    ((16, 24, 2, 6, 2),),                                            # e2, 1/4
    ((24, 32, 2, 6, 3),),                                            # e3, 1/8
    ((32, 64, 2, 6, 4), (64, 96, 1, 6, 3)),                          # e4, 1/16
    ((96, 160, 2, 6, 3), (160, 320, 1, 6, 1)),                       # e5, 1/32
)

# Decoder steps: (channels of the running map, P = channels of the matching encoder map, dilation).
_DECODER: Tuple[Tuple[int, int, int], ...] = ((320, 96, 2), (192, 32, 6), (64, 24, 12), (48, 16, 18))


def _stage(runs: Sequence[Tuple[int, int, int, int, int]]) -> nn.Sequential:
    blocks: List[nn.Module] = []
    for cin, cout, stride, expansion, repeats in runs:
        for i in range(repeats):
            blocks.append(InvertedResidual(cin if i == 0 else cout, cout, stride if i == 0 else 1,
                                           expansion, act="relu6"))
    return nn.Sequential(*blocks)


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 at output stride 32 returning ``[e1, e2, e3, e4, e5]``.

    Every inverted residual keeps its pw-expand stage, including e1 (expansion 1).
    """

    out_channels: Tuple[int, ...] = (16, 24, 32, 96, 320)
    strides: Tuple[int, ...] = (2, 4, 8, 16, 32)

    def __init__(self):
        super().__init__()
        self.head = conv_bn_act(3, 32, 3, s=2, act="relu6")
        self.stages = nn.ModuleList(_stage(runs) for runs in _STAGES)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats = []
        x = self.head(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class UpConcatDilate(nn.Module):
    """ConvTranspose2d x2 (with bias) to P channels, concat with the skip (P channels), then a
    dilated conv3x3 2P -> 2P (no bias) and BN, no activation."""

    def __init__(self, cin: int, skip_channels: int, dilation: int):
        super().__init__()
        p = skip_channels
        self.up = nn.ConvTranspose2d(cin, p, kernel_size=2, stride=2, padding=0, bias=True)
        self.fuse = conv_bn_act(2 * p, 2 * p, 3, d=dilation, act=None)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.up(x), skip], dim=1))


class MobileNetDilateUNet(SegNet):
    """Design 1: returns N x 1 x H x W foreground logits for an N x 3 x H x W input (H, W % 32 == 0)."""

    input_multiple = 32

    def __init__(self):
        super().__init__()
        self.encoder = MobileNetV2Encoder()
        self.decoder = nn.ModuleList(UpConcatDilate(cin, p, d) for cin, p, d in _DECODER)
        self.head = nn.Sequential(
            conv_bn_act(32, 32, 3, act=None),
            conv(32, 1, 1, bias=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        e1, e2, e3, e4, e5 = self.encoder(x)
        y = e5
        for step, skip in zip(self.decoder, (e4, e3, e2, e1)):
            y = step(y, skip)
        return upsample(self.head(y), 2, align_corners=True)


@register_arch(SPEC)
def mobilenet_dilate_unet() -> MobileNetDilateUNet:
    """Build design 1 (randomly initialised; PyTorch default init)."""
    return MobileNetDilateUNet()
