"""Accuracy on real portraits: foreground IoU at a stated network input size.

Protocol (the same for every design, see README "Accuracy protocol"):
- the RGB image is resized to ``input_size`` x ``input_size`` (cubic) and normalised with the
  design's / checkpoint's :class:`~archs.Preprocess` (channel order, mean, scale);
- the foreground probability (sigmoid of the logit map, or the alpha of seg_matting) is resized
  back to the image's own size with bilinear interpolation and thresholded at 0.5;
- the label is resized to its image with nearest-neighbour (masks) and thresholded at 0.5
  (alpha > 127 of 255);
- IoU = |pred & gt| / |pred | gt| per image (1.0 when both are empty); ``miou`` is the mean over
  images, with a 95% percentile-bootstrap confidence interval over images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import cv2
import numpy as np
import torch

from archs import LOGITS, Preprocess

from .data import Sample, iter_pairs

RESIZE = {"cubic": cv2.INTER_CUBIC, "linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA,
          "nearest": cv2.INTER_NEAREST}


def to_input(image_rgb: np.ndarray, size: int | tuple[int, int], pre: Preprocess) -> torch.Tensor:
    """1 x 3 x H x W float tensor for the network from an H x W x 3 uint8 RGB image."""
    h, w = (size, size) if isinstance(size, int) else size
    img = cv2.resize(image_rgb, (w, h), interpolation=RESIZE[pre.resize]).astype(np.float32)
    if pre.channel_order == "BGR":
        img = img[:, :, ::-1]
    elif pre.channel_order != "RGB":
        raise ValueError(f"unknown channel order {pre.channel_order!r}")
    img = (img - np.asarray(pre.mean, np.float32)) / np.float32(pre.scale)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


def foreground_prob(output, output_kind: str) -> torch.Tensor:
    """N x 1 x H x W foreground probability from a design's raw output."""
    if output_kind == LOGITS:
        return torch.sigmoid(output)
    _, alpha = output
    return alpha


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Foreground IoU of two boolean masks; 1.0 when both are empty."""
    union = np.logical_or(pred, gt).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(pred, gt).sum() / union)


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean over items (deterministic for a given seed)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float(v[0])
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class EvalRecord:
    miou: float
    miou_ci_low: float
    miou_ci_high: float
    iou_dataset: float  # IoU over all pixels of the set (sum of intersections / sum of unions)
    n_images: int
    input_size: int
    threshold: float
    per_image_iou: tuple[float, ...]
    stems: tuple[str, ...]


@torch.inference_mode()
def predict_prob(model: torch.nn.Module, image_rgb: np.ndarray, input_size: int, pre: Preprocess,
                 output_kind: str) -> np.ndarray:
    """Foreground probability at the image's own size (bilinear resize back), float32 H x W."""
    prob = foreground_prob(model(to_input(image_rgb, input_size, pre)), output_kind)[0, 0].numpy()
    h, w = image_rgb.shape[:2]
    return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)


def evaluate(model: torch.nn.Module, samples: Sequence[Sample], input_size: int, pre: Preprocess,
             output_kind: str, threshold: float = 0.5,
             on_image: Optional[Callable[[int], None]] = None) -> EvalRecord:
    """Mean per-image foreground IoU of ``model`` on ``samples`` (protocol in the module doc)."""
    model.eval()
    ious, inter_sum, union_sum = [], 0, 0
    for i, (_, img, lab) in enumerate(iter_pairs(samples)):
        pred = predict_prob(model, img, input_size, pre, output_kind) > threshold
        gt = lab > 0.5
        inter_sum += int(np.logical_and(pred, gt).sum())
        union_sum += int(np.logical_or(pred, gt).sum())
        ious.append(iou(pred, gt))
        if on_image:
            on_image(i + 1)
    lo, hi = bootstrap_ci(ious)
    return EvalRecord(
        miou=float(np.mean(ious)) if ious else float("nan"), miou_ci_low=lo, miou_ci_high=hi,
        iou_dataset=inter_sum / union_sum if union_sum else 1.0, n_images=len(ious),
        input_size=input_size, threshold=threshold, per_image_iou=tuple(ious),
        stems=tuple(s.stem for s in samples))
