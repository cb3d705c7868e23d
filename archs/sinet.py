"""SINet: spatial-squeeze modules + information-blocking decoder (published peer).

Park, Sjosund, Yoo, Monet, Kwak, "SINet: Extreme Lightweight Portrait Segmentation Networks with
Spatial Squeeze Modules and Information Blocking Decoder", WACV 2020 (arXiv 1911.09099). The module
tree is named so that the official EG1800 weights ``sinet/SINet.pth`` (MIT) load strictly.

Published hyper-parameters (``Test_SINet.json``: p = 2, q = 8, chnn = 1, 2 classes, 224 x 224):
- every BatchNorm uses eps 1e-3; every activation is a per-channel PReLU; every bilinear resize
  uses align_corners=True.
- level1: conv3x3 3->12 s2 + BN + PReLU (1/2).
- level2_0 / level3_0: depthwise 3x3 s2, squeeze-excite (global mean -> Linear + PReLU [-> Linear +
  PReLU]; the excitation multiplies the input directly, no sigmoid), pw, BN, PReLU (1/4, 1/8).
- S2 module (n_in -> n_out, two S2 blocks): grouped pw (2 groups) n_in -> n_out/2, channel shuffle
  (2 groups), both S2 blocks on the same tensor, concat, (+ input when shapes match), BN + PReLU.
  S2 block (k, a): [avg-pool a x a], dw k x k + BN, PReLU, pw, [bilinear x a], BN.
- (k, a) per module, level2: (3,1)(5,1) | (3,1)(3,1);
  level3: (3,1)(5,1) | (3,1)(3,1) | (5,1)(3,2) | (5,2)(3,4) | (3,1)(3,1) | (5,1)(5,1) | (3,2)(3,4) |
  (3,1)(5,2). The kernel sizes are visible in the checkpoint, the pooling sizes are not.
- encoder head: BR2 on concat(level2_0, level2) (64), BR3 on concat(level3_0, level3) (144),
  classifier pw 144->2 (1/8).
- decoder: s1 = BN(up2(enc)) (1/4); gate = 1 - max_c softmax(s1); s2 = BN(up2(CBR1x1(level2 out,
  48->2) * gate + s1)) (1/2); out = conv3x3 2->2 (up2(s2)) (1/1).

Input convention of the checkpoint (official demo): BGR, ``(pixel - mean) / (255 * std)`` with
per-channel mean (107.304565, 115.69884, 132.35703) and std (63.97182, 65.1337, 68.29726), bilinear
resize to 224 x 224. Output here: one foreground logit map, ``out[:, 1] - out[:, 0]`` of the
2-class output (identical decision to softmax > 0.5).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import SegNet, channel_shuffle
from .registry import LOGITS, ArchSpec, CheckpointInfo, Preprocess, register_arch

BN_EPS = 1e-3

# Mean / std of the official training set, in BGR order; the official demo computes
# (pixel - mean) / std / 255.
SINET_PREPROCESS = Preprocess(channel_order="BGR", mean=(107.304565, 115.69884, 132.35703), scale=255.0,
                              std=(63.97182, 65.1337, 68.29726), resize="linear")

# (kernel, pooling) of the two S2 blocks of each S2 module: 2 modules at 1/4, 8 at 1/8.
S2_CONFIG = (((3, 1), (5, 1)), ((3, 1), (3, 1)),
             ((3, 1), (5, 1)), ((3, 1), (3, 1)), ((5, 1), (3, 2)), ((5, 2), (3, 4)),
             ((3, 1), (3, 1)), ((5, 1), (5, 1)), ((3, 2), (3, 4)), ((3, 1), (5, 2)))

SPEC = ArchSpec(
    name="sinet",
    input_multiple=32,
    output_stride=32,  # the (3, 4) S2 blocks pool 1/8 features by 4
    output_kind=LOGITS,
    ref_params=86_910,
    ref_macs_g=0.0715,
    ref_macs_size=224,
    description="peer: SINet (Park et al. 2020), S2 modules + information-blocking decoder, EG1800 weights",
    checkpoints=(
        CheckpointInfo(
            name="official",
            relpath="sinet/SINet.pth",
            input_size=224,
            preprocess=SINET_PREPROCESS,
            reference_miou=0.644,
            state_dict_key=None,
            notes="official EG1800 weights (MIT); mIoU on shared/data/hsd, all 220 pairs, 224x224 "
                  "bilinear resize, BGR (p - mean) / (255 std)",
        ),
    ),
    preprocess=SINET_PREPROCESS,
    peer=True,
)


class BR(nn.Module):
    """BN (eps 1e-3) + PReLU (shared with archs/extremec3.py: same authors' module layout)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class CBR(nn.Module):
    """conv k x k (no bias) + BN + PReLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class PlainConv(nn.Module):
    """A bias-free convolution kept under the attribute name ``conv`` (checkpoint layout)."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Squeeze(nn.Module):
    """Channel re-weighting: global mean -> Linear + PReLU (twice when ``reduction > 1``), times x.

    As published, the excitation is not squashed by a sigmoid."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        if reduction > 1:
            mid = channels // reduction
            self.dense = nn.Sequential(nn.Linear(channels, mid), nn.PReLU(mid),
                                       nn.Linear(mid, channels), nn.PReLU(channels))
        else:
            self.dense = nn.Sequential(nn.Linear(channels, channels), nn.PReLU(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.dense(x.mean(dim=(2, 3)))
        return x * w[:, :, None, None]


class SqueezeDownsample(nn.Module):
    """dw 3x3 stride 2 -> squeeze-excite -> pw, then BN + PReLU."""

    def __init__(self, cin: int, cout: int, reduction: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, cin, 3, 2, 1, groups=cin, bias=False),
                                  Squeeze(cin, reduction),
                                  nn.Conv2d(cin, cout, 1, bias=False))
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class S2Block(nn.Module):
    """[avg-pool a] -> dw k x k + BN -> PReLU + pw -> [bilinear x a] -> BN."""

    def __init__(self, cin: int, cout: int, kernel: int, pool: int):
        super().__init__()
        self.pool = pool
        self.conv = nn.Sequential(nn.Conv2d(cin, cin, kernel, 1, (kernel - 1) // 2, groups=cin, bias=False),
                                  nn.BatchNorm2d(cin, eps=BN_EPS))
        self.act_conv1x1 = nn.Sequential(nn.PReLU(cin), nn.Conv2d(cin, cout, 1, bias=False))
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool, self.pool)
        y = self.act_conv1x1(self.conv(x))
        if self.pool > 1:
            y = F.interpolate(y, scale_factor=self.pool, mode="bilinear", align_corners=True)
        return self.bn(y)


class S2Module(nn.Module):
    """Grouped pw reduce + channel shuffle, two S2 blocks side by side, concat, (+x), BN + PReLU."""

    def __init__(self, cin: int, cout: int, config: Sequence[tuple[int, int]], residual: bool):
        super().__init__()
        groups = len(config)
        n = cout // groups
        extra = cout - groups * n  # the first block takes the remainder
        self.groups, self.residual = groups, residual
        self.c1 = PlainConv(cin, n, 1, groups=groups)
        for i, (k, a) in enumerate(config):
            self.add_module(f"d{i + 1}", S2Block(n, n + (extra if i == 0 else 0), k, a))
        self.BR = BR(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = channel_shuffle(self.c1(x), self.groups)
        out = torch.cat([getattr(self, f"d{i + 1}")(y) for i in range(self.groups)], 1)
        if self.residual:
            out = out + x
        return self.BR(out)


class SINetEncoder(nn.Module):
    """The encoder's layers (checkpoint prefix ``encoder.``); run by :class:`SINet`, whose decoder
    also taps the level-2 output."""

    def __init__(self, classes: int = 2, p: int = 2, q: int = 8, config=S2_CONFIG):
        super().__init__()
        d1, d2, d3 = 16, 48, 96
        self.level1 = CBR(3, 12, 3, 2)
        self.level2_0 = SqueezeDownsample(12, d1, reduction=1)
        self.level2 = nn.ModuleList(S2Module(d1 if i == 0 else d2, d2, config[i], residual=i > 0)
                                    for i in range(p))
        self.BR2 = BR(d1 + d2)
        self.level3_0 = SqueezeDownsample(d1 + d2, d2, reduction=2)
        self.level3 = nn.ModuleList(S2Module(d2 if i == 0 else d3, d3, config[p + i], residual=i > 0)
                                    for i in range(q))
        self.BR3 = BR(d2 + d3)
        self.classifier = PlainConv(d2 + d3, classes, 1)


class SINet(SegNet):
    """SINet; returns the N x 1 x H x W foreground logit (class 1 minus class 0)."""

    input_multiple = 32

    def __init__(self, classes: int = 2, p: int = 2, q: int = 8):
        super().__init__()
        self.classes = classes
        self.encoder = SINetEncoder(classes, p, q)
        self.bn_3 = nn.BatchNorm2d(classes, eps=BN_EPS)
        self.level2_C = CBR(48, classes, 1, 1)
        self.bn_2 = nn.BatchNorm2d(classes, eps=BN_EPS)
        self.classifier = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                        nn.Conv2d(classes, classes, 3, 1, 1, bias=False))

    @staticmethod
    def _up2(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)

    def _confidence(self, logits: torch.Tensor) -> torch.Tensor:
        """max over classes of softmax(logits), N x 1 x H x W. For two classes this is
        sigmoid(|l1 - l0|) exactly, written so (ops every counter and converter handles)."""
        if self.classes == 2:
            return torch.sigmoid((logits[:, 1:2] - logits[:, 0:1]).abs())
        return torch.softmax(logits, dim=1).amax(dim=1, keepdim=True)

    def forward_classes(self, x: torch.Tensor) -> torch.Tensor:
        """The published 2-class output (N x 2 x H x W, background then person)."""
        self.check_input(x)
        enc = self.encoder
        x2_0 = enc.level2_0(enc.level1(x))
        x2 = x2_0
        for layer in enc.level2:
            x2 = layer(x2)
        x3_0 = enc.level3_0(enc.BR2(torch.cat([x2_0, x2], 1)))
        x3 = x3_0
        for layer in enc.level3:
            x3 = layer(x3)
        coarse = enc.classifier(enc.BR3(torch.cat([x3_0, x3], 1)))  # 1/8
        stage1 = self.bn_3(self._up2(coarse))  # 1/4
        gate = 1.0 - self._confidence(stage1)  # information blocking
        stage2 = self.bn_2(self._up2(self.level2_C(x2) * gate + stage1))  # 1/2
        return self.classifier(stage2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward_classes(x)
        return out[:, 1:2] - out[:, 0:1]


@register_arch(SPEC)
def sinet(**kw) -> SINet:
    return SINet(**kw)
