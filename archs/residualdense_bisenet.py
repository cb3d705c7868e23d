"""residualdense_bisenet: BiSeNet with a residual-dense context path.

Design 4 of ``shared/ARCHITECTURES.md`` ("4. residualdense_bisenet"). A three-conv spatial path
(16 channels at 1/8) runs beside a context path of stride-2 convs and dense residual blocks (DRB)
that yields c16 (48 @1/16) and c32 (64 @1/32). Attention refinement modules (ARM) and the global
context of c32 are fused at 1/8, concatenated with the spatial path and passed through a feature
fusion module (FFM) and a 1-channel classifier.

Output: N x 1 x H x W foreground logits; H and W must be multiples of 32.
The seed hard-coded its global pools as AvgPool2d(32 / 16 / 64) and broadcast the global context
with an x16 upsample, so it only ran at 512x512. Here every global pool is AdaptiveAvgPool2d(1) and
the pooled N x C x 1 x 1 maps broadcast in the element-wise add / multiply, so any valid side works;
parameters and MACs at 512 are unchanged.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .blocks import SegNet, bn_act, conv, conv_bn_act, upsample
from .registry import LOGITS, ArchSpec, register_arch

SPEC = ArchSpec(
    name="residualdense_bisenet",
    input_multiple=32,
    output_stride=32,
    output_kind=LOGITS,
    ref_params=142_761,
    ref_macs_g=0.235,
    ref_macs_size=512,
    description="BiSeNet (spatial path, ARM, FFM) with a residual-dense context path",
)


def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1) -> nn.Sequential:
    """The design's ``conv_bn``: conv (no bias), BN, per-channel PReLU."""
    return conv_bn_act(cin, cout, k, s, act="prelu")


class DenseResidualBlock(nn.Module):
    """DRB(C, s): conv3x3 C->n (n = C/s) + BN + PReLU, then s-1 pre-activation dense layers
    (BN + PReLU over the k*n channels so far, conv3x3 k*n -> n, appended), concat (C) + input."""

    def __init__(self, channels: int, splits: int):
        super().__init__()
        n = channels // splits
        assert n * splits == channels, "DRB width must be divisible by its split count"
        self.head = conv_bn(channels, n, 3)
        self.dense_layers = nn.ModuleList(
            nn.Sequential(bn_act(k * n, "prelu"), conv(k * n, n, 3)) for k in range(1, splits)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(x)
        for layer in self.dense_layers:
            y = torch.cat([y, layer(y)], 1)
        return y + x


class AttentionRefinement(nn.Module):
    """ARM(C): global average pool, pw C->C (no bias), sigmoid, multiply the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.attn = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv(channels, channels, 1),
                                  nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attn(x)


class FeatureFusion(nn.Module):
    """FFM(C): x = conv_bn 1x1 C->C; attn = global pool, pw, ReLU, pw, sigmoid (no bias);
    out = x + x * attn."""

    def __init__(self, channels: int):
        super().__init__()
        self.fuse = conv_bn(channels, channels, 1)
        self.attn = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            conv(channels, channels, 1),
            nn.ReLU(inplace=True),
            conv(channels, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fuse(x)
        return x + x * self.attn(x)


class ResidualDenseBiSeNet(SegNet):
    """Design 4: spatial path (16 @1/8) + residual-dense context path (c16 48 @1/16, c32 64 @1/32),
    ARM + global-context fusion to 48 @1/8, FFM on the 64-channel concat, classifier, x8."""

    input_multiple = 32

    def __init__(self):
        super().__init__()
        self.spatial = nn.Sequential(
            conv_bn(3, 8, 3, 2), conv_bn(8, 12, 3, 2), conv_bn(12, 16, 3, 2),  # 1/8
        )
        self.context16 = nn.Sequential(
            conv_bn(3, 8, 3, 2), DenseResidualBlock(8, 2),  # 1/2
            conv_bn(8, 12, 3, 2), DenseResidualBlock(12, 3),  # 1/4
            conv_bn(12, 24, 3, 2), DenseResidualBlock(24, 6), DenseResidualBlock(24, 6),  # 1/8
            conv_bn(24, 48, 3, 2), DenseResidualBlock(48, 6), DenseResidualBlock(48, 6),  # 1/16
        )
        self.context32 = nn.Sequential(
            conv_bn(48, 64, 3, 2), DenseResidualBlock(64, 8), DenseResidualBlock(64, 8),  # 1/32
        )
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.arm16 = AttentionRefinement(48)
        self.arm32 = AttentionRefinement(64)
        self.proj32 = conv(64, 48, 1, bias=True)
        self.ffm = FeatureFusion(64)
        self.classifier = conv(64, 1, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        spatial = self.spatial(x)
        c16 = self.context16(x)
        c32 = self.context32(c16)
        # The pooled global context (N x 64 x 1 x 1) broadcasts back to c32's size in the add.
        a32 = self.arm32(c32) + self.global_pool(c32)
        a32 = self.proj32(upsample(a32, 4, align_corners=True))
        a16 = upsample(self.arm16(c16), 2, align_corners=True)
        y = self.ffm(torch.cat([spatial, a16 + a32], 1))
        return upsample(self.classifier(y), 8, align_corners=True)


@register_arch(SPEC)
def residualdense_bisenet() -> ResidualDenseBiSeNet:
    return ResidualDenseBiSeNet()
