"""ExtremeC3Net: advanced C3 modules, coarse + fine branches (published peer).

Park, Sjosund, Yoo, Kwak, "ExtremeC3Net: Extreme Lightweight Portrait Segmentation Networks using
Advanced C3-modules" (arXiv 1908.03093), compared against in the SINet paper (arXiv 1911.09099).
The module tree is named so that the official EG1800 weights ``sinet/ExtremeC3.pth`` (MIT) load
strictly.

Published hyper-parameters (p = 1, q = 5, one output channel trained with the Lovasz hinge loss,
224 x 224):
- BN + PReLU pairs (CBR, BR, module outputs) use BN eps 1e-3; the BNs inside the C3 blocks and in
  the coarse up-projection use PyTorch's default eps 1e-5. Bilinear resizes use align_corners=True.
- C3 block (n_in -> n_out, dilation d): d = 1: dw 3x3 + pw. d > 1: dw (2d-1)x1 + BN + PReLU,
  dw 1x(2d-1) + BN, dw 3x3 dilation d, pw.
- advanced C3 module (ratios r1, r2, r3): reduce (n_out // 3 channels; 1x1, or 3x3 stride 2 in the
  down-sampling variant), three C3 blocks on the same tensor (the first one also takes the
  remainder channels), concat, (+ input), BN + PReLU.
- coarse branch: level1 CBR 3x3 s2 3->24 (1/2); b1 = BR(concat(level1, avgpool2(img))) (27);
  level2_0 = down module 27->48 (1, 2, 3) (1/4); level2 = 1 module 48->48 (1, 3, 4);
  b2 = BR(concat(level2, level2_0, avgpool4(img))) (99); level3_0 = module 99->56 (1, 3, 5), no
  residual (stays at 1/4); level3 = 5 modules 56->56 (2, 4, 8); b3 = BR(concat(level3_0, level3)) (112).
- decoder: coarse = up2(BN(pw 112->24)) (1/2); fine = module 24->24 (2, 4, 8) on conv3x3 s2 3->24 of
  the image (1/2); out = pw 24->1 (up2(BR(coarse + fine))) (1/1).

Input convention of the checkpoint: the same as SINet's (BGR, ``(pixel - mean) / (255 * std)``,
bilinear resize to 224). Output: the N x 1 x H x W foreground logit (person where > 0).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import SegNet
from .sinet import BR, CBR, PlainConv  # the same module layout as SINet
from .registry import LOGITS, ArchSpec, CheckpointInfo, Preprocess, register_arch

BN_EPS = 1e-3  # BN of the BN + PReLU pairs; the C3 blocks' inner BNs use the default 1e-5

EXTREMEC3_PREPROCESS = Preprocess(channel_order="BGR", mean=(107.304565, 115.69884, 132.35703), scale=255.0,
                                  std=(63.97182, 65.1337, 68.29726), resize="linear")

SPEC = ArchSpec(
    name="extremec3",
    input_multiple=4,
    output_stride=4,
    output_kind=LOGITS,
    ref_params=37_738,
    ref_macs_g=0.1463,
    ref_macs_size=224,
    description="peer: ExtremeC3Net (Park et al. 2019), advanced C3 modules, coarse + fine branches, EG1800 weights",
    checkpoints=(
        CheckpointInfo(
            name="official",
            relpath="sinet/ExtremeC3.pth",
            input_size=224,
            preprocess=EXTREMEC3_PREPROCESS,
            reference_miou=0.7155,
            state_dict_key=None,
            notes="official EG1800 weights (MIT); mIoU on shared/data/hsd, all 220 pairs, 224x224 "
                  "bilinear resize, BGR (p - mean) / (255 std)",
        ),
    ),
    preprocess=EXTREMEC3_PREPROCESS,
    peer=True,
)


class C3Block(nn.Module):
    """Depthwise-separable dilated conv; for d > 1 preceded by a factorised dw (2d-1) x (2d-1)."""

    def __init__(self, cin: int, cout: int, d: int):
        super().__init__()
        if d == 1:
            self.conv = nn.Sequential(nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False),
                                      nn.Conv2d(cin, cout, 1, bias=False))
        else:
            k = 2 * d - 1
            self.conv = nn.Sequential(
                nn.Conv2d(cin, cin, (k, 1), 1, (d - 1, 0), groups=cin, bias=False),
                nn.BatchNorm2d(cin),
                nn.PReLU(cin),
                nn.Conv2d(cin, cin, (1, k), 1, (0, d - 1), groups=cin, bias=False),
                nn.BatchNorm2d(cin),
                nn.Conv2d(cin, cin, 3, 1, d, dilation=d, groups=cin, bias=False),
                nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class AdvancedC3(nn.Module):
    """Reduce -> three C3 blocks (dilations ``ratios``) -> concat -> (+x) -> BN + PReLU.

    ``down=True`` is the down-sampling variant: 3x3 stride-2 reduction, no residual, and its
    BN / PReLU sit directly on the module (``bn``, ``act``) instead of in a ``BR``."""

    def __init__(self, cin: int, cout: int, ratios: Sequence[int] = (2, 4, 8), residual: bool = True,
                 down: bool = False):
        super().__init__()
        n = cout // 3
        extra = cout - 3 * n
        self.residual, self.down = residual and not down, down
        self.c1 = PlainConv(cin, n, 3, 2) if down else PlainConv(cin, n, 1)
        self.d1 = C3Block(n, n + extra, ratios[0])
        self.d2 = C3Block(n, n, ratios[1])
        self.d3 = C3Block(n, n, ratios[2])
        if down:
            self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
            self.act = nn.PReLU(cout)
        else:
            self.bn = BR(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c1(x)
        out = torch.cat([self.d1(y), self.d2(y), self.d3(y)], 1)
        if self.residual:
            out = out + x
        return self.act(self.bn(out)) if self.down else self.bn(out)


class ExtremeC3Encoder(nn.Module):
    """The coarse branch's layers (checkpoint prefix ``encoder.``); run by :class:`ExtremeC3Net`."""

    def __init__(self, p: int = 1, q: int = 5):
        super().__init__()
        c0, c1, c2 = 24, 48, 56
        self.level1 = CBR(3, c0, 3, 2)
        self.b1 = BR(c0 + 3)
        self.level2_0 = AdvancedC3(c0 + 3, c1, (1, 2, 3), down=True)
        self.level2 = nn.ModuleList(AdvancedC3(c1, c1, (1, 3, 4)) for _ in range(p))
        self.b2 = BR(2 * c1 + 3)
        self.level3_0 = AdvancedC3(2 * c1 + 3, c2, (1, 3, 5), residual=False)
        self.level3 = nn.ModuleList(AdvancedC3(c2, c2, (2, 4, 8)) for _ in range(q))
        self.b3 = BR(2 * c2)


class ExtremeC3Net(SegNet):
    """ExtremeC3Net; returns the N x 1 x H x W foreground logit."""

    input_multiple = 4

    def __init__(self, classes: int = 1, p: int = 1, q: int = 5):
        super().__init__()
        c2, c3 = 56, 24
        self.encoder = ExtremeC3Encoder(p, q)
        self.upsample = nn.Sequential(nn.Conv2d(2 * c2, c3, 1, bias=False), nn.BatchNorm2d(c3),
                                      nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True))
        self.Fine = nn.Sequential(PlainConv(3, c3, 3, 2), AdvancedC3(c3, c3, (2, 4, 8)))
        self.classifier = nn.Sequential(BR(c3),
                                        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                        nn.Conv2d(c3, classes, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        enc = self.encoder
        img2 = F.avg_pool2d(x, 2, 2)
        img4 = F.avg_pool2d(img2, 2, 2)
        x1 = enc.b1(torch.cat([enc.level1(x), img2], 1))  # 1/2
        x2_0 = enc.level2_0(x1)  # 1/4
        x2 = x2_0
        for layer in enc.level2:
            x2 = layer(x2)
        x3_0 = enc.level3_0(enc.b2(torch.cat([x2, x2_0, img4], 1)))  # 1/4
        x3 = x3_0
        for layer in enc.level3:
            x3 = layer(x3)
        coarse = self.upsample(enc.b3(torch.cat([x3_0, x3], 1)))  # 1/2
        return self.classifier(coarse + self.Fine(x))


@register_arch(SPEC)
def extremec3(**kw) -> ExtremeC3Net:
    return ExtremeC3Net(**kw)
