"""Accuracy on real portraits: foreground IoU at a stated network input size.

Protocol (the same for every design, see README "Accuracy protocol"):
- the RGB image is resized to ``input_size`` x ``input_size`` (cubic) and normalised with the
  design's / checkpoint's :class:`~archs.Preprocess` (channel order, mean, scale);
- the foreground probability (sigmoid of the logit map, or the alpha of seg_matting) is resized
  back to the image's own size with bilinear interpolation and thresholded at 0.5;
- the label is resized to its image with nearest-neighbour (masks) and thresholded at 0.5
  (alpha > 127 of 255);
- IoU = |pred & gt| / |pred | gt| per image (1.0 when both are empty); ``miou`` is the mean over
  images, with a 95% percentile-bootstrap confidence interval over images;
- boundary F-score with a band of ``boundary_band_frac`` (1 %) of each image's diagonal, and, for
  alpha labels (``label_kind == "alpha"``), the matting errors SAD (thousands), MSE (x 1e3) and
  gradient error (thousands) of the foreground probability against the soft matte, whole image;
  definitions in :mod:`bench.metrics`. Every metric has a 95 % bootstrap CI over images.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import cv2
import numpy as np
import torch

from archs import LOGITS, Preprocess

from ..columns import PER_IMAGE
from ..data.samples import Sample, iter_pairs
from .metrics import (BOUNDARY_BAND_FRAC, band_px_for, boundary_f, bootstrap_ci, bootstrap_ratio_ci,
                      gradient_error, iou, mean_ci, mse, sad)

__all__ = ["EvalRecord", "evaluate", "evaluate_fn", "predict_prob", "to_input", "foreground_prob", "iou", "bootstrap_ci",
           "evaluate_sets", "PairedDiffRecord", "paired_bootstrap", "IoUConventionsRecord", "iou_conventions",
           "model_input_predictor", "encode_per_image", "decode_per_image", "stems_digest", "paired_bootstrap_iou"]

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
    img = img - np.asarray(pre.mean, np.float32)
    if pre.std is not None:  # per-channel std (e.g. SINet): (pixel - mean) / std / scale
        img = img / np.asarray(pre.std, np.float32)
    img = img / np.float32(pre.scale)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


def foreground_prob(output, output_kind: str) -> torch.Tensor:
    """N x 1 x H x W foreground probability from a design's raw output."""
    if output_kind == LOGITS:
        return torch.sigmoid(output)
    _, alpha = output
    return alpha


@dataclass(frozen=True)
class EvalRecord:
    miou: float
    miou_ci_low: float
    miou_ci_high: float
    iou_dataset: float  # IoU over all pixels of the set (sum of intersections / sum of unions)
    n_images: int
    input_size: int
    threshold: float
    per_image_iou: tuple[float, ...] = field(metadata=PER_IMAGE)
    stems: tuple[str, ...] = field(metadata=PER_IMAGE)
    # added with boundary and matting metrics (defaults keep older constructors working)
    iou_dataset_ci_low: float = float("nan")
    iou_dataset_ci_high: float = float("nan")
    boundary_f: float = float("nan")  # mean per-image boundary F-score
    boundary_f_ci_low: float = float("nan")
    boundary_f_ci_high: float = float("nan")
    boundary_band_frac: float = BOUNDARY_BAND_FRAC  # band = this fraction of each image's diagonal
    n_alpha: int = 0  # images with a soft alpha label (the matting errors are over these)
    sad_k: float = float("nan")  # mean per-image SAD, thousands of alpha units
    sad_k_ci_low: float = float("nan")
    sad_k_ci_high: float = float("nan")
    mse_x1e3: float = float("nan")  # mean per-image MSE x 1000 (alpha in [0, 1])
    mse_x1e3_ci_low: float = float("nan")
    mse_x1e3_ci_high: float = float("nan")
    grad_k: float = float("nan")  # mean per-image gradient error, thousands
    grad_k_ci_low: float = float("nan")
    grad_k_ci_high: float = float("nan")
    per_image_boundary_f: tuple[float, ...] = field(default=(), metadata=PER_IMAGE)
    # the per-image IoUs in a form that survives a result row (rows drop tuples): see encode_per_image;
    # with stems_sha1 they let the report compare two models on the same images (paired bootstrap)
    per_image_iou_u16: str = ""
    stems_sha1: str = ""
    # what the labels hold: mean share of person pixels, how many labels are empty, and a warning when
    # that is implausible for photos of people (a mask encoding read as background, a wrong folder)
    label_fg_share: float = float("nan")
    n_empty_labels: int = 0
    label_warning: str = ""


# ----------------------------------------------------------------------------- compact per-image values

def encode_per_image(values: Sequence[float]) -> str:
    """Values in [0, 1] as base64 of little-endian uint16 (value x 65535, rounded): 2.7 characters
    per image, error below 8e-6 per value."""
    v = np.clip(np.nan_to_num(np.asarray(values, np.float64), nan=1.0), 0.0, 1.0)
    return base64.b64encode(np.round(v * 65535).astype("<u2").tobytes()).decode("ascii")


def decode_per_image(text: str) -> np.ndarray:
    """The values written by :func:`encode_per_image` (float64); ValueError on text that is not one."""
    try:
        raw = base64.b64decode(str(text), validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an encoded per-image list: {exc}") from None
    if len(raw) % 2:
        raise ValueError("not an encoded per-image list: odd byte count")
    return np.frombuffer(raw, "<u2").astype(np.float64) / 65535


def stems_digest(stems: Sequence[str]) -> str:
    """SHA-1 (first 16 hex digits) of the ordered stems: two rows with the same digest scored the same
    images in the same order."""
    return hashlib.sha1("\n".join(stems).encode()).hexdigest()[:16]


@torch.inference_mode()
def predict_prob(model: torch.nn.Module, image_rgb: np.ndarray, input_size: int, pre: Preprocess,
                 output_kind: str) -> np.ndarray:
    """Foreground probability at the image's own size (bilinear resize back), float32 H x W."""
    prob = foreground_prob(model(to_input(image_rgb, input_size, pre)), output_kind)[0, 0].numpy()
    h, w = image_rgb.shape[:2]
    return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)


def evaluate(model: torch.nn.Module, samples: Sequence[Sample], input_size: int, pre: Preprocess,
             output_kind: str, threshold: float = 0.5,
             on_image: Optional[Callable[[int], None]] = None,
             band_frac: float = BOUNDARY_BAND_FRAC) -> EvalRecord:
    """Accuracy of ``model`` on ``samples`` (protocol in the module doc)."""
    model.eval()
    return evaluate_fn(lambda img: predict_prob(model, img, input_size, pre, output_kind), samples,
                       input_size, threshold, on_image, band_frac)


def evaluate_fn(predict: Callable[[np.ndarray], np.ndarray], samples: Sequence[Sample],
                input_size: int | tuple[int, int], threshold: float = 0.5,
                on_image: Optional[Callable[[int], None]] = None,
                band_frac: float = BOUNDARY_BAND_FRAC) -> EvalRecord:
    """Accuracy of any predictor ``predict(image_rgb) -> H x W float32 foreground probability at
    the image's own size`` (e.g. a runtime peer of :mod:`bench.models.peers`): the same metrics and CIs
    as :func:`evaluate`. ``input_size`` is only recorded (the predictor does its own resizing)."""
    ious, bfs, inters, unions = [], [], [], []
    sads, mses, grads, shares = [], [], [], []
    for i, (s, img, lab) in enumerate(iter_pairs(samples)):
        prob = predict(img)
        pred = prob > threshold
        gt = lab > 0.5
        shares.append(float(gt.mean()))
        inters.append(int(np.logical_and(pred, gt).sum()))
        unions.append(int(np.logical_or(pred, gt).sum()))
        ious.append(iou(pred, gt))
        bfs.append(boundary_f(pred, gt, band_px_for(gt.shape, band_frac)))
        if s.label_kind == "alpha":
            sads.append(sad(prob, lab))
            mses.append(mse(prob, lab) * 1e3)
            grads.append(gradient_error(prob, lab))
        if on_image:
            on_image(i + 1)
    lo, hi = bootstrap_ci(ious)
    d_lo, d_hi = bootstrap_ratio_ci(inters, unions)
    bf, sd, ms, gr = mean_ci(bfs), mean_ci(sads), mean_ci(mses), mean_ci(grads)
    return EvalRecord(
        miou=float(np.mean(ious)) if ious else float("nan"), miou_ci_low=lo, miou_ci_high=hi,
        iou_dataset=sum(inters) / sum(unions) if sum(unions) else 1.0, n_images=len(ious),
        input_size=input_size, threshold=threshold, per_image_iou=tuple(ious),
        stems=tuple(s.stem for s in samples),
        iou_dataset_ci_low=d_lo, iou_dataset_ci_high=d_hi,
        boundary_f=bf.mean, boundary_f_ci_low=bf.ci_low, boundary_f_ci_high=bf.ci_high,
        boundary_band_frac=band_frac, n_alpha=len(sads),
        sad_k=sd.mean, sad_k_ci_low=sd.ci_low, sad_k_ci_high=sd.ci_high,
        mse_x1e3=ms.mean, mse_x1e3_ci_low=ms.ci_low, mse_x1e3_ci_high=ms.ci_high,
        grad_k=gr.mean, grad_k_ci_low=gr.ci_low, grad_k_ci_high=gr.ci_high,
        per_image_boundary_f=tuple(bfs),
        per_image_iou_u16=encode_per_image(ious), stems_sha1=stems_digest([s.stem for s in samples]),
        label_fg_share=float(np.mean(shares)) if shares else float("nan"),
        n_empty_labels=sum(x == 0 for x in shares), label_warning=label_warning(shares))


# The mean share of person pixels over a set's labels that is plausible for photos of people: the
# shared sets lie between 0.23 (ccp-person, full body) and 0.62 (eg1800, head and shoulders).
PLAUSIBLE_FG_SHARE = (0.02, 0.90)


def label_warning(shares: Sequence[float]) -> str:
    """"" when the labels' person shares look like labels of people; else what is wrong with them."""
    if not shares:
        return ""
    lo, hi = PLAUSIBLE_FG_SHARE
    mean = float(np.mean(shares))
    if all(x == 0 for x in shares):
        return (f"every label is empty (no person pixel in any of {len(shares)} labels): a mask encoding read as "
                "background, or the wrong folder")
    if not lo <= mean <= hi:
        return (f"the labels' person share is {mean:.1%} on average, outside the {lo:.0%}-{hi:.0%} of photos of "
                "people: check the mask encoding (inverted? another class?)")
    return ""


# ----------------------------------------------------------------------------- per data set, paired

def evaluate_sets(model: torch.nn.Module, sets: "dict[str, Sequence[Sample]]", input_size: int, pre: Preprocess,
                  output_kind: str, threshold: float = 0.5) -> "dict[str, EvalRecord]":
    """One :class:`EvalRecord` per named data set (e.g. ``{"eg1800/test": ..., "hsd/val": ...}``):
    each set keeps its own mIoU and CI; nothing is pooled across sets."""
    return {name: evaluate(model, samples, input_size, pre, output_kind, threshold)
            for name, samples in sets.items()}


@dataclass(frozen=True)
class PairedDiffRecord:
    """Difference of two models' mIoU on the same images, with a paired bootstrap CI.

    The bootstrap resamples images (the same draw for both models), so the CI is of the difference
    itself, much narrower than the two separate CIs when the models err on the same images."""

    n_images: int
    miou_a: float
    miou_b: float
    diff_miou: float  # miou_a - miou_b
    diff_ci_low: float
    diff_ci_high: float
    p_two_sided: float  # bootstrap: 2 x the smaller share of resampled differences on either side of 0
    significant: bool  # the CI excludes 0
    level: float
    n_boot: int


def paired_bootstrap(a: EvalRecord, b: EvalRecord, n_boot: int = 10000, level: float = 0.95,
                     seed: int = 0) -> PairedDiffRecord:
    """Paired percentile bootstrap of ``a.miou - b.miou``; ``a`` and ``b`` must be evaluations of
    the same images (same stems, same order), else ValueError naming the first difference."""
    if a.stems != b.stems:
        diff = next((i for i, (x, y) in enumerate(zip(a.stems, b.stems)) if x != y), min(len(a.stems), len(b.stems)))
        raise ValueError(f"paired bootstrap needs the same images in the same order: {len(a.stems)} vs "
                         f"{len(b.stems)} images, first difference at position {diff}")
    rec = paired_bootstrap_iou(a.per_image_iou, b.per_image_iou, n_boot, level, seed)
    return dataclasses.replace(rec, miou_a=a.miou, miou_b=b.miou)


def paired_bootstrap_iou(iou_a: Sequence[float], iou_b: Sequence[float], n_boot: int = 10000,
                         level: float = 0.95, seed: int = 0) -> PairedDiffRecord:
    """:func:`paired_bootstrap` on two per-image IoU lists of the same images in the same order
    (e.g. decoded from two rows' ``per_image_iou_u16`` whose ``stems_sha1`` are equal)."""
    ia, ib = np.asarray(iou_a, np.float64), np.asarray(iou_b, np.float64)
    if ia.shape != ib.shape:
        raise ValueError(f"paired bootstrap needs the same images: {ia.size} vs {ib.size} values")
    d = ia - ib
    if d.size == 0:
        raise ValueError("paired bootstrap of no images")
    means = d[np.random.default_rng(seed).integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    p = min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean())))
    return PairedDiffRecord(n_images=int(d.size), miou_a=float(ia.mean()), miou_b=float(ib.mean()),
                            diff_miou=float(d.mean()), diff_ci_low=float(lo), diff_ci_high=float(hi),
                            p_two_sided=p, significant=bool(lo > 0 or hi < 0), level=level, n_boot=n_boot)


# ----------------------------------------------------------------------------- IoU conventions

@dataclass(frozen=True)
class IoUConventionsRecord:
    """The same predictions scored under the IoU conventions papers use (threshold 0.5).

    ``*_at_image``: prediction resized back to the image's own size (bilinear), label as stored
    (resized to the image, nearest); ``*_at_input``: prediction at the network input, label resized
    to the input (nearest). ``per_image``: mean over images of each image's IoU; ``pooled``: over all
    pixels of the set (one confusion matrix). ``fg``: the person class; ``2class``: mean of the
    person and background IoUs (the semantic-segmentation mIoU of a confusion matrix)."""

    n_images: int
    input_hw: tuple[int, int]
    fg_per_image_at_image: float  # the suite's protocol (bench.accuracy.evaluate's miou)
    fg_pooled_at_image: float
    fg_per_image_at_input: float
    fg_pooled_at_input: float
    twoclass_per_image_at_image: float
    twoclass_pooled_at_image: float
    twoclass_per_image_at_input: float
    twoclass_pooled_at_input: float


def _fg_bg_counts(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(fg intersection, fg union, bg intersection, bg union) pixel counts."""
    return np.array([np.logical_and(pred, gt).sum(), np.logical_or(pred, gt).sum(),
                     np.logical_and(~pred, ~gt).sum(), np.logical_or(~pred, ~gt).sum()], np.int64)


def iou_conventions(predict_input: Callable[[np.ndarray], np.ndarray], samples: Sequence[Sample],
                    input_hw: tuple[int, int], threshold: float = 0.5) -> IoUConventionsRecord:
    """Score ``predict_input(image_rgb) -> foreground probability at the network input`` (H x W as
    ``input_hw``) under every convention of :class:`IoUConventionsRecord` in one pass."""
    h_in, w_in = input_hw
    rows = {"image": [], "input": []}
    for s, img, lab in iter_pairs(samples):
        prob_in = predict_input(img)
        if prob_in.shape != (h_in, w_in):
            raise ValueError(f"{s.image_path}: predictor returned {prob_in.shape}, expected {(h_in, w_in)}")
        h, w = img.shape[:2]
        prob_img = cv2.resize(prob_in, (w, h), interpolation=cv2.INTER_LINEAR)
        gt_in = cv2.resize((lab > 0.5).astype(np.uint8), (w_in, h_in), interpolation=cv2.INTER_NEAREST) > 0
        rows["image"].append(_fg_bg_counts(prob_img > threshold, lab > 0.5))
        rows["input"].append(_fg_bg_counts(prob_in > threshold, gt_in))

    def per_image(c: np.ndarray, k: int) -> float:
        return float(np.mean(np.where(c[:, k + 1] > 0, c[:, k] / np.maximum(c[:, k + 1], 1), 1.0)))

    def pooled(c: np.ndarray, k: int) -> float:
        return float(c[:, k].sum() / c[:, k + 1].sum()) if c[:, k + 1].sum() else 1.0

    out = {}
    for at, lst in rows.items():
        c = np.stack(lst) if lst else np.zeros((0, 4), np.int64)
        out[f"fg_per_image_at_{at}"] = per_image(c, 0)
        out[f"fg_pooled_at_{at}"] = pooled(c, 0)
        out[f"twoclass_per_image_at_{at}"] = (per_image(c, 0) + per_image(c, 2)) / 2
        out[f"twoclass_pooled_at_{at}"] = (pooled(c, 0) + pooled(c, 2)) / 2
    return IoUConventionsRecord(n_images=len(rows["image"]), input_hw=(h_in, w_in), **out)


def model_input_predictor(model: torch.nn.Module, input_size: int | tuple[int, int], pre: Preprocess,
                          output_kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """``image_rgb -> foreground probability at the network input`` for :func:`iou_conventions`."""
    model.eval()

    @torch.inference_mode()
    def predict(image_rgb: np.ndarray) -> np.ndarray:
        return foreground_prob(model(to_input(image_rgb, input_size, pre)), output_kind)[0, 0].numpy()

    return predict
