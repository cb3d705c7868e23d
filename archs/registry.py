"""Registry of segmentation designs: ``create_arch(name)``, ``list_archs(pattern)``.

Each design registers a builder together with an :class:`ArchSpec` that says what the
network expects (input side multiple), what it returns (output kind) and what it should
cost (reference parameter count and MACs from ``shared/ARCHITECTURES.md``).
This module needs only the standard library and torch, so a design can be copied out.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

import torch.nn as nn

# Output kinds.
LOGITS = "logits"  # one tensor N x 1 x H x W of foreground logits
SEG_ALPHA = "seg_alpha"  # tuple (N x 2 x H x W seg logits [bg, fg], N x 1 x H x W alpha in [0,1])


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes the network input: ``(pixel[channel_order] - mean) / scale``, or
    ``(pixel[channel_order] - mean) / (scale * std)`` when a per-channel ``std`` is given."""

    channel_order: str = "BGR"  # order of the channels fed to the network
    mean: Tuple[float, float, float] = (104.0, 112.0, 121.0)  # in channel_order
    scale: float = 255.0
    resize: str = "cubic"  # interpolation used to bring an image to the input size
    std: Optional[Tuple[float, float, float]] = None  # per-channel divisor (in channel_order), or None


@dataclass(frozen=True)
class CheckpointInfo:
    """Metadata of a published checkpoint for a design (torchvision-style weights meta)."""

    name: str  # short name used on the command line, e.g. "seed"
    relpath: str  # path relative to the shared models folder
    input_size: int  # side the checkpoint was trained / evaluated at
    preprocess: Preprocess
    reference_miou: Optional[float] = None  # mean per-image IoU on shared/data/hsd at input_size
    state_dict_key: Optional[str] = "state_dict"  # key holding the state dict in the pickle
    notes: str = ""


@dataclass(frozen=True)
class ArchSpec:
    name: str
    input_multiple: int  # input height and width must be divisible by this
    output_stride: int  # coarsest feature map = input side / output_stride
    output_kind: str  # LOGITS or SEG_ALPHA
    ref_params: int  # reference parameter count (ARCHITECTURES.md)
    ref_macs_g: float  # reference fvcore GMACs at ref_macs_size
    ref_macs_size: int = 256
    description: str = ""
    checkpoints: Tuple[CheckpointInfo, ...] = field(default_factory=tuple)
    preprocess: Preprocess = Preprocess()  # used when training / evaluating our own weights
    peer: bool = False  # True for published peers (SINet, ...) shown beside the five designs

    def checkpoint(self, name: str) -> CheckpointInfo:
        for ck in self.checkpoints:
            if ck.name == name:
                return ck
        known = ", ".join(c.name for c in self.checkpoints) or "none"
        raise KeyError(f"design {self.name!r} has no checkpoint {name!r} (known: {known})")


_REGISTRY: dict[str, tuple[ArchSpec, Callable[..., nn.Module]]] = {}


def register_arch(spec: ArchSpec) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``builder(**kw) -> nn.Module`` under ``spec.name``."""

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if spec.name in _REGISTRY:
            raise ValueError(f"design {spec.name!r} is registered twice")
        _REGISTRY[spec.name] = (spec, builder)
        return builder

    return deco


def _lookup(name: str) -> tuple[ArchSpec, Callable[..., nn.Module]]:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown design {name!r}; known designs: {known}") from None


def list_archs(pattern: Optional[str] = None, peers: bool = False) -> list[str]:
    """Registered design names (sorted), optionally filtered by a shell-style pattern.

    Peers (published networks benchmarked beside the five designs) are listed only with
    ``peers=True``."""
    names = sorted(n for n, (spec, _) in _REGISTRY.items() if peers or not spec.peer)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def get_spec(name: str) -> ArchSpec:
    return _lookup(name)[0]


def create_arch(name: str, **kw) -> nn.Module:
    """Build design ``name``; keyword arguments go to its builder. The model gets ``.spec``."""
    spec, builder = _lookup(name)
    model = builder(**kw)
    model.spec = spec
    return model
