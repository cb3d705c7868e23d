"""shuffle_seg_skipnet: ShuffleNet v1 (g = 3) encoder with an FCN-style decoder of additive skips.

Design 2 of ``shared/ARCHITECTURES.md`` ("2. shuffle_seg_skipnet"). The encoder is ShuffleNet v1
with 3 groups (stage channels 24, 240, 480, 960; repeats 3, 7, 3) at output stride 32. The decoder
scores the 1/32 map to one channel, then four times doubles it with a learnable 1-channel transposed
conv (bilinear-initialised, FCN convention) and adds a 1-channel projection of the encoder map at
that scale; a fifth transposed conv restores full resolution. One 1-channel BN is shared by the
score, every upsample of the four skip steps and every skip projection, as in the seed.

Reference cost: 918,731 parameters, 0.187 GMACs (fvcore) at 1x3x256x256.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import SegNet, SharedBatchNorm, channel_shuffle, conv, conv_bn_act
from .registry import LOGITS, ArchSpec, register_arch

SPEC = ArchSpec(
    name="shuffle_seg_skipnet",
    input_multiple=32,
    output_stride=32,
    output_kind=LOGITS,
    ref_params=918_731,
    ref_macs_g=0.187,
    ref_macs_size=256,
    description="ShuffleNet v1 encoder (g=3, OS 32) + FCN-style decoder of bilinear-initialised "
                "transposed convs and additive 1-channel skips",
)

GROUPS = 3
STAGE_CHANNELS: Tuple[int, ...] = (24, 240, 480, 960)  # stem, stage2, stage3, stage4
STAGE_REPEATS: Tuple[int, ...] = (3, 7, 3)  # stride-1 "add" units after each stage's concat unit


class ShuffleUnit(nn.Module):
    """ShuffleNet v1 unit; every conv carries a bias.

    Branch: grouped pw (cin -> out/4) + BN + ReLU -> channel shuffle -> dw3x3 + BN -> grouped pw
    + BN. ``concat`` unit (stride 2): the branch makes ``cout - cin`` channels and is concatenated
    after avgpool3x3/s2 of the input. ``add`` unit (stride 1, ``cin == cout``): input + branch.
    ReLU after combining. ``first_groups`` is the group count of the compressing pw (1 for the very
    first unit of stage 2, whose input has only 24 channels).
    """

    def __init__(self, cin: int, cout: int, concat: bool, groups: int = GROUPS,
                 first_groups: int = GROUPS):
        super().__init__()
        if not concat and cin != cout:
            raise ValueError(f"an add unit needs cin == cout, got {cin} -> {cout}")
        self.concat = concat
        self.groups = groups
        bottleneck = cout // 4
        branch_out = cout - cin if concat else cout
        self.compress = conv_bn_act(cin, bottleneck, 1, groups=first_groups, bias=True, act="relu")
        self.dw = conv_bn_act(bottleneck, bottleneck, 3, s=2 if concat else 1, groups=bottleneck,
                              bias=True, act=None)
        self.expand = conv_bn_act(bottleneck, branch_out, 1, groups=groups, bias=True, act=None)
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if concat else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = channel_shuffle(self.compress(x), self.groups)
        y = self.expand(self.dw(y))
        if self.concat:
            out = torch.cat([self.shortcut(x), y], dim=1)
        else:
            out = x + y
        return F.relu(out, inplace=True)


def _stage(cin: int, cout: int, repeats: int, first_groups: int) -> nn.Sequential:
    units = [ShuffleUnit(cin, cout, concat=True, first_groups=first_groups)]
    units += [ShuffleUnit(cout, cout, concat=False) for _ in range(repeats)]
    return nn.Sequential(*units)


class ShuffleNetV1Encoder(nn.Module):
    """ShuffleNet v1, g = 3, returning ``[s0, s1, s2, s3, s4]`` at 1/2 .. 1/32.

    s0 = conv3x3/s2 (bias, no BN or activation), s1 = maxpool3x3/s2 of s0, s2..s4 = stages 2..4.
    """

    out_channels: Tuple[int, ...] = (24, 24, 240, 480, 960)
    strides: Tuple[int, ...] = (2, 4, 8, 16, 32)

    def __init__(self):
        super().__init__()
        c0 = STAGE_CHANNELS[0]
        self.conv1 = conv(3, c0, 3, s=2, bias=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stages = nn.ModuleList(
            _stage(cin, cout, reps, first_groups=1 if i == 0 else GROUPS)
            for i, (cin, cout, reps) in enumerate(zip(STAGE_CHANNELS[:-1], STAGE_CHANNELS[1:],
                                                      STAGE_REPEATS)))

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        s0 = self.conv1(x)
        feats = [s0, self.maxpool(s0)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats


def bilinear_upsample_weight(channels: int, kernel_size: int) -> torch.Tensor:
    """FCN's bilinear interpolation kernel for a channel-wise ConvTranspose2d weight
    (``channels x channels x k x k``, identity across channels)."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float32)
    filt1d = 1 - (og - center).abs() / factor
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    for c in range(channels):
        weight[c, c] = filt1d[:, None] * filt1d[None, :]
    return weight


def _bilinear_up2() -> nn.ConvTranspose2d:
    """Learnable 1-channel x2 upsample, ConvTranspose2d(1, 1, 4, 2, 1, bias=False), bilinear init."""
    up = nn.ConvTranspose2d(1, 1, kernel_size=4, stride=2, padding=1, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_upsample_weight(1, 4))
    return up


class ShuffleSegSkipNet(SegNet):
    """Design 2: returns N x 1 x H x W foreground logits for an N x 3 x H x W input (H, W % 32 == 0)."""

    input_multiple = 32

    def __init__(self):
        super().__init__()
        self.encoder = ShuffleNetV1Encoder()
        skip_channels = self.encoder.out_channels[:-1][::-1]  # s3, s2, s1, s0
        self.score = conv(self.encoder.out_channels[-1], 1, 1, bias=True)
        self.bn = SharedBatchNorm(sites=1 + 2 * len(skip_channels))  # score, then (up, proj) per skip
        self.ups = nn.ModuleList(_bilinear_up2() for _ in skip_channels)
        self.projs = nn.ModuleList(conv(c, 1, 1) for c in skip_channels)
        self.final_up = _bilinear_up2()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        s0, s1, s2, s3, s4 = self.encoder(x)
        y = self.bn(self.score(s4), 0)
        for i, (up, proj, skip) in enumerate(zip(self.ups, self.projs, (s3, s2, s1, s0))):
            y = self.bn(up(y), 1 + 2 * i) + self.bn(proj(skip), 2 + 2 * i)
        return self.final_up(y)


@register_arch(SPEC)
def shuffle_seg_skipnet() -> ShuffleSegSkipNet:
    """Build design 2 (transposed convs bilinear-initialised, the rest PyTorch default init)."""
    return ShuffleSegSkipNet()
