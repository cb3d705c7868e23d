"""esp_dense_seg: ESPNet-style encoder with dilated dense residual blocks.

Design 3 of ``shared/ARCHITECTURES.md`` ("3. esp_dense_seg"). A full-resolution stem feeds four
stride-2 stages (output stride 16). Each stage is a bare stride-2 conv, an ESP block (reduce, then
six parallel branches, pointwise and dilations 1-16, with hierarchical sums) and dilated dense
residual blocks; the stage returns concat(dense output, ESP output) after BN + PReLU. The decoder
starts from a 1-channel score at 1/16 and adds 1-channel projections of the stage-3, -2 and -1
outputs on the way up, FCN style.

Output: N x 1 x H x W foreground logits; H and W must be multiples of 16.
The seed built a BN in every dense layer and never used it (30 layers, 540 parameters); those dead
layers are not built here, so the count is the sheet's 240,237.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .blocks import SegNet, SharedBatchNorm, bn_act, conv, conv_bn_act, upsample
from .registry import LOGITS, ArchSpec, register_arch

SPEC = ArchSpec(
    name="esp_dense_seg",
    input_multiple=16,
    output_stride=16,
    output_kind=LOGITS,
    ref_params=240_237,
    ref_macs_g=0.194,
    ref_macs_size=256,
    description="ESPNet-style encoder with dilated dense residual blocks, 1-channel FCN decoder",
)

BN_EPS = 1e-3  # every BN of the encoder
STAGE_WIDTHS = (12, 24, 48, 96)  # base width C of stages 1-4; a stage outputs 2C channels
STAGE_DENSE_BLOCKS = (1, 1, 2, 2)  # dilated dense residual blocks per stage
ESP_DILATIONS = (1, 2, 4, 8, 16)
DENSE_DILATIONS = (1, 2, 4, 6, 8)


class ESPBlock(nn.Module):
    """ESP block on C channels: conv3x3 C->n (n = C/6), six parallel n->n branches (pw and
    conv3x3 with dilations 1, 2, 4, 8, 16), hierarchical sums over the dilated branches from 2 up,
    concat (C channels) + input, BN, PReLU."""

    def __init__(self, channels: int):
        super().__init__()
        n = channels // 6
        assert n * 6 == channels, "ESP block width must be divisible by 6"
        self.reduce = conv(channels, n, 3)
        self.pw = conv(n, n, 1)
        self.dilated = nn.ModuleList(conv(n, n, 3, d=d) for d in ESP_DILATIONS)
        self.bn_act = bn_act(channels, "prelu", eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.reduce(x)
        d1, *wider = [branch(r) for branch in self.dilated]
        outs = [self.pw(r), d1]
        acc = wider[0]  # a1 = d2, then a_k = a_{k-1} + d_{2^(k+1)}
        outs.append(acc)
        for d in wider[1:]:
            acc = acc + d
            outs.append(acc)
        return self.bn_act(torch.cat(outs, 1) + x)


class DilatedDenseResidualBlock(nn.Module):
    """Dilated dense residual block on C channels: pw C->n (n = C/6), five dense layers (conv3x3
    with dilations 1, 2, 4, 6, 8 from all channels so far to n, ReLU; outputs appended), concat
    (C channels) + input, BN, ReLU. Dense layers carry no BN (the seed's were dead)."""

    def __init__(self, channels: int):
        super().__init__()
        n = channels // 6
        assert n * 6 == channels, "dense block width must be divisible by 6"
        self.reduce = conv(channels, n, 1)
        self.dense_layers = nn.ModuleList(
            nn.Sequential(conv(n * (i + 1), n, 3, d=d), nn.ReLU(inplace=True))
            for i, d in enumerate(DENSE_DILATIONS)
        )
        self.bn_act = bn_act(channels, "relu", eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.reduce(x)
        for layer in self.dense_layers:
            y = torch.cat([y, layer(y)], 1)
        return self.bn_act(y + x)


class EncoderStage(nn.Module):
    """Bare conv3x3 s2 (no BN / activation) cin->C, ESP block, dense blocks; BN + PReLU over
    concat(dense output, ESP output) = 2C channels."""

    def __init__(self, cin: int, width: int, num_dense: int):
        super().__init__()
        self.down = conv(cin, width, 3, s=2)
        self.esp = ESPBlock(width)
        self.dense = nn.Sequential(*(DilatedDenseResidualBlock(width) for _ in range(num_dense)))
        self.bn_act = bn_act(2 * width, "prelu", eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.esp(self.down(x))
        return self.bn_act(torch.cat([self.dense(e), e], 1))


class EspDenseSeg(SegNet):
    """Design 3: stem at full resolution, four stages (24 @1/2, 48 @1/4, 96 @1/8, 192 @1/16),
    1-channel decoder with additive skips from stages 3, 2, 1."""

    input_multiple = 16

    def __init__(self):
        super().__init__()
        stem_width = STAGE_WIDTHS[0]
        self.stem = conv_bn_act(3, stem_width, 3, act="prelu", eps=BN_EPS)
        stages, cin = [], stem_width
        for width, num_dense in zip(STAGE_WIDTHS, STAGE_DENSE_BLOCKS):
            stages.append(EncoderStage(cin, width, num_dense))
            cin = 2 * width
        self.stages = nn.ModuleList(stages)
        self.classifier = conv(cin, 1, 1)
        # Decoder, coarse to fine: skips from stages 3, 2, 1.
        skip_channels = [2 * w for w in reversed(STAGE_WIDTHS[:-1])]
        self.skip_proj = nn.ModuleList(conv(c, 1, 1) for c in skip_channels)
        # one BN shared by the three projections, as in the seed (statistics per projection)
        self.skip_bn = SharedBatchNorm(sites=len(skip_channels))
        self.refine = nn.ModuleList(conv(1, 1, 3) for _ in skip_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        feats = []
        y = self.stem(x)
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        y = self.classifier(feats[-1])
        for i, (skip, proj, refine) in enumerate(zip(reversed(feats[:-1]), self.skip_proj, self.refine)):
            y = upsample(y, 2, align_corners=True) + self.skip_bn(proj(skip), i)
            y = refine(y)
        return upsample(y, 2, align_corners=True)


@register_arch(SPEC)
def esp_dense_seg() -> EspDenseSeg:
    return EspDenseSeg()
