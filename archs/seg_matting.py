"""seg_matting: ERD segmentation network plus a feathering matting head (design 5).

The seed's final model (fact sheet: ``shared/ARCHITECTURES.md`` section 5). The module tree is
named so that the seed checkpoint ``seed-erd-seg-matting/ckpt_lastest.pth`` loads strictly with no
renaming: ``seg_extract.*`` is the ERD segmentation network, ``convF1``/``bn``/``convF2`` the
feathering head.

Output: ``(seg_logits, alpha)``: N x 2 x H x W logits (background, foreground) and N x 1 x H x W
alpha in [0, 1]. Input: BGR, ``(pixel - (104, 112, 121)) / 255``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import SegNet, bn_act, conv, conv_bn_act, upsample
from .registry import SEG_ALPHA, ArchSpec, CheckpointInfo, Preprocess, register_arch

SEED_PREPROCESS = Preprocess(channel_order="BGR", mean=(104.0, 112.0, 121.0), scale=255.0,
                             resize="cubic")

SPEC = ArchSpec(
    name="seg_matting",
    input_multiple=32,
    output_stride=32,
    output_kind=SEG_ALPHA,
    ref_params=829_225,
    ref_macs_g=0.224,
    ref_macs_size=256,
    description="ERD segmentation (residual dense blocks, image pyramid inputs) + feathering matting head",
    checkpoints=(
        CheckpointInfo(
            name="seed",
            relpath="seed-erd-seg-matting/ckpt_lastest.pth",
            input_size=256,
            preprocess=SEED_PREPROCESS,
            reference_miou=0.860,
            state_dict_key="state_dict",
            notes="the research notes' trained checkpoint (epoch 1883); mIoU on shared/data/hsd, "
                  "all 220 pairs, 256x256 cubic resize, alpha > 0.5",
        ),
    ),
    preprocess=SEED_PREPROCESS,
)


class DenseLayer(nn.Module):
    """conv3x3 (all channels so far -> n, no bias) + BN + ReLU."""

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.conv = conv(cin, growth, 3)
        self.bn = nn.BatchNorm2d(growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class DenseStack(nn.Module):
    """``count`` dense layers; each sees the concatenation of everything before it."""

    def __init__(self, growth: int, count: int):
        super().__init__()
        self.dense_layers = nn.ModuleList(DenseLayer(growth * (i + 1), growth) for i in range(count))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        feats = [f]
        for layer in self.dense_layers:
            feats.append(layer(torch.cat(feats, 1)))  # new channels go AFTER the existing ones
        return torch.cat(feats, 1)


class RDB(nn.Module):
    """Residual dense block RDB(C, s): pw C->C/s, s-1 dense layers, PReLU(BN(concat + input))."""

    def __init__(self, channels: int, s: int):
        super().__init__()
        growth = channels // s
        self.conv = conv(channels, growth, 1)
        self.dense_block = DenseStack(growth, s - 1)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.dense_block(self.conv(x)) + x))


class ERDSegmentation(nn.Module):
    """The ERD encoder-decoder: image pyramid fed into every down step, 2-class decoder."""

    widths = (12, 24, 48, 96, 192)

    def __init__(self):
        super().__init__()
        c0, c1, c2, c3, c4 = self.widths
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.head_conv = conv_bn_act(3, c0, 3, 2, act="prelu")
        self.stage_0 = RDB(c0, 3)
        self.ba_1, self.down_1 = bn_act(3 + c0), conv_bn_act(3 + c0, c1, 3, 2, act="prelu")
        self.stage_1 = RDB(c1, 3)
        self.ba_2, self.down_2 = bn_act(3 + 2 * c1), conv_bn_act(3 + 2 * c1, c2, 3, 2, act="prelu")
        self.stage_2 = RDB(c2, 3)
        self.ba_3, self.down_3 = bn_act(3 + 2 * c2), conv_bn_act(3 + 2 * c2, c3, 3, 2, act="prelu")
        self.stage_3 = nn.Sequential(RDB(c3, 6), RDB(c3, 6))
        self.ba_4, self.down_4 = bn_act(3 + 2 * c3), conv_bn_act(3 + 2 * c3, c4, 3, 2, act="prelu")
        self.stage_4 = nn.Sequential(RDB(c4, 6), RDB(c4, 6))
        # Decoder: classifier, one PReLU shared by the four levels, per-level skip branch + refine.
        self.classifier = conv(c4, 2, 1)
        self.prelu = nn.PReLU(2)
        for level, c in zip((3, 2, 1, 0), (c3, c2, c1, c0)):
            setattr(self, f"stage{level}_down", conv_bn_act(c, 2, 3, 1, act="prelu"))
            setattr(self, f"bn{level}", nn.BatchNorm2d(2))
            setattr(self, f"conv_{level}", conv(2, 2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        img2 = self.pool(x)
        img4 = self.pool(img2)
        img8 = self.pool(img4)
        img16 = self.pool(img8)
        s0 = self.stage_0(self.head_conv(x))
        d1 = self.down_1(self.ba_1(torch.cat([img2, s0], 1)))
        s1 = self.stage_1(d1)
        d2 = self.down_2(self.ba_2(torch.cat([img4, d1, s1], 1)))
        s2 = self.stage_2(d2)
        d3 = self.down_3(self.ba_3(torch.cat([img8, d2, s2], 1)))
        s3 = self.stage_3(d3)
        d4 = self.down_4(self.ba_4(torch.cat([img16, d3, s3], 1)))
        s4 = self.stage_4(d4)
        heat = self.classifier(s4)
        for level, skip in ((3, s3), (2, s2), (1, s1), (0, s0)):
            side = getattr(self, f"bn{level}")(getattr(self, f"stage{level}_down")(skip))
            heat = getattr(self, f"conv_{level}")(upsample(heat, 2, False) + self.prelu(side))
        return upsample(heat, 2, False)


class SegMatting(SegNet):
    """ERD segmentation + feathering head: ``alpha = sigmoid(a*fg + b*bg + c)``."""

    input_multiple = 32

    def __init__(self):
        super().__init__()
        self.seg_extract = ERDSegmentation()
        self.convF1 = nn.Conv2d(11, 8, 3, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(8)
        self.convF2 = nn.Conv2d(8, 3, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_input(x)
        seg = self.seg_extract(x)
        prob = F.softmax(seg, dim=1)
        bg, fg = prob[:, 0:1], prob[:, 1:2]
        feats = torch.cat([x, prob, x * x, x * fg], 1)
        abc = self.convF2(F.relu(self.bn(self.convF1(feats))))
        a, b, c = abc[:, 0:1], abc[:, 1:2], abc[:, 2:3]
        alpha = torch.sigmoid(a * fg + b * bg + c)
        return seg, alpha


@register_arch(SPEC)
def seg_matting() -> SegMatting:
    return SegMatting()
