"""Building blocks shared by the designs (written once, reused)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_act(kind: Optional[str], channels: int) -> nn.Module:
    """Activation by name: ``relu``, ``relu6``, ``prelu`` (per channel) or ``None`` (identity)."""
    if kind is None:
        return nn.Identity()
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "relu6":
        return nn.ReLU6(inplace=True)
    if kind == "prelu":
        return nn.PReLU(channels)
    raise ValueError(f"unknown activation {kind!r}")


def conv(cin: int, cout: int, k: int = 3, s: int = 1, d: int = 1, groups: int = 1,
         bias: bool = False) -> nn.Conv2d:
    """2-D convolution with "same" padding (pad = d*(k-1)/2)."""
    return nn.Conv2d(cin, cout, k, stride=s, padding=d * (k - 1) // 2, dilation=d,
                     groups=groups, bias=bias)


def conv_bn_act(cin: int, cout: int, k: int = 3, s: int = 1, d: int = 1, act: Optional[str] = "relu",
                groups: int = 1, bias: bool = False, eps: float = 1e-5) -> nn.Sequential:
    """conv -> BN -> activation as ``Sequential`` (indices 0, 1, 2; no index 2 when act is None)."""
    layers = [conv(cin, cout, k, s, d, groups, bias), nn.BatchNorm2d(cout, eps=eps)]
    if act is not None:
        layers.append(make_act(act, cout))
    return nn.Sequential(*layers)


def bn_act(channels: int, act: str = "prelu", eps: float = 1e-5) -> nn.Sequential:
    """BN -> activation (indices 0, 1)."""
    return nn.Sequential(nn.BatchNorm2d(channels, eps=eps), make_act(act, channels))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: pw expand + BN + act -> dw3x3 + BN + act -> pw project + BN.

    The expand stage is always present (also for expansion 1); identity shortcut when
    stride is 1 and ``cin == cout``.
    """

    def __init__(self, cin: int, cout: int, stride: int, expansion: int, act: str = "relu6"):
        super().__init__()
        hidden = cin * expansion
        self.use_res = stride == 1 and cin == cout
        self.block = nn.Sequential(
            conv_bn_act(cin, hidden, 1, act=act),
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=act),
            conv_bn_act(hidden, cout, 1, act=None),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_res else y


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def upsample(x: torch.Tensor, scale: int, align_corners: bool) -> torch.Tensor:
    """Bilinear resize by an integer factor."""
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=align_corners)


def upsample_to(x: torch.Tensor, ref: torch.Tensor, align_corners: bool) -> torch.Tensor:
    """Bilinear resize of ``x`` to the spatial size of ``ref``."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=align_corners)


class SegNet(nn.Module):
    """Base of every design: checks that the input side is a multiple of ``input_multiple``."""

    input_multiple: int = 32

    def check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_tracing() or torch.jit.is_scripting():
            return
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{type(self).__name__} expects an N x 3 x H x W tensor, got shape "
                             f"{tuple(x.shape)}")
        h, w = int(x.shape[-2]), int(x.shape[-1])
        m = self.input_multiple
        if h % m or w % m:
            raise ValueError(f"{type(self).__name__}: input {h}x{w} is not valid; height and width "
                             f"must be multiples of {m} (e.g. {max(m, (h // m) * m)}x"
                             f"{max(m, (w // m) * m)})")


class SharedBatchNorm(nn.Module):
    """One BatchNorm applied at several places (shuffle_seg_skipnet's and esp_dense_seg's decoders):
    one affine (``weight``, ``bias``: 2 parameters for 1 channel, as the designs count them) and
    running statistics per place (``running_mean_<i>`` / ``running_var_<i>``: buffers, not
    parameters). ``forward(x, site)``.

    The places see very different statistics; one running mean/variance averaged over all of them
    made shuffle_seg_skipnet's eval-mode network predict nothing (validation mIoU 0.0 while the
    training loss fell). In training mode the batch statistics are used, as by ``nn.BatchNorm2d``,
    so training itself is the same either way."""

    def __init__(self, sites: int, channels: int = 1, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.sites, self.eps, self.momentum = sites, eps, momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        for i in range(sites):
            self.register_buffer(f"running_mean_{i}", torch.zeros(channels))
            self.register_buffer(f"running_var_{i}", torch.ones(channels))

    def forward(self, x: torch.Tensor, site: int) -> torch.Tensor:
        return F.batch_norm(x, getattr(self, f"running_mean_{site}"), getattr(self, f"running_var_{site}"),
                            self.weight, self.bias, self.training, self.momentum, self.eps)
