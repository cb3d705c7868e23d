"""Per-image accuracy metrics and bootstrap confidence intervals (pure numpy / OpenCV functions).

All functions take arrays at the image's own resolution (the prediction already resized back).

- :func:`iou`: foreground intersection over union of two boolean masks (1.0 when both are empty).
- :func:`boundary_f`: boundary F-score. The boundary of a mask is its set of foreground pixels with a
  background 4-neighbour (the image frame is not a boundary). A predicted boundary pixel counts as
  correct when it lies within ``band_px`` pixels (Euclidean) of a true boundary pixel, and a true one
  as recalled when it lies within ``band_px`` of a predicted one; F = 2PR / (P + R). The band is
  stated per image by :func:`band_px_for`: ``BOUNDARY_BAND_FRAC`` (1 %) of the image diagonal,
  at least 1 px, i.e. 8 px at 640x480 and 10 px at 600x800. Both boundaries empty: 1.0; one empty: 0.0.
- Matting errors (alpha mattes in [0, 1], whole image, no trimap), the usual definitions of the
  matting benchmarks (Rhemann et al. 2009; DIM / P3M evaluation code):
  :func:`sad` sum of absolute differences, in thousands (``sad_k``);
  :func:`mse` mean squared error (reported x 1e3 as ``mse_x1e3``);
  :func:`gradient_error` sum over pixels of (|grad pred| - |grad gt|)^2 with first-order Gaussian
  derivative filters (sigma 1.4), in thousands (``grad_k``).
- :func:`bootstrap_ci` (mean over items) and :func:`bootstrap_ratio_ci` (sum of numerators over sum of
  denominators, e.g. IoU over the whole set): 95 % percentile bootstrap over images, seeded.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np

BOUNDARY_BAND_FRAC = 0.01  # boundary-F tolerance as a fraction of the image diagonal
GRAD_SIGMA = 1.4  # Gaussian derivative filter of the gradient error


# ----------------------------------------------------------------------------- segmentation

def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Foreground IoU of two boolean masks; 1.0 when both are empty."""
    union = np.logical_or(pred, gt).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(pred, gt).sum() / union)


def band_px_for(shape_hw: tuple[int, int], frac: float = BOUNDARY_BAND_FRAC) -> float:
    """Boundary tolerance in pixels for an image of ``shape_hw``: ``frac`` x diagonal, at least 1."""
    h, w = shape_hw[:2]
    return max(1.0, frac * float(np.hypot(h, w)))


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Boolean map of the foreground pixels that have a background 4-neighbour (frame excluded)."""
    m = mask.astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    # erosion pads with the maximum value, so the image frame does not create a boundary
    eroded = cv2.erode(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=1)
    return (m > 0) & (eroded == 0)


def _distance_to(boundary: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel to the nearest ``True`` pixel of ``boundary``."""
    return cv2.distanceTransform((~boundary).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def boundary_precision_recall(pred: np.ndarray, gt: np.ndarray, band_px: float) -> tuple[int, int, int, int]:
    """(matched predicted, predicted, matched true, true) boundary pixel counts."""
    pb, gb = mask_boundary(pred), mask_boundary(gt)
    n_p, n_g = int(pb.sum()), int(gb.sum())
    hit_p = int((_distance_to(gb)[pb] <= band_px).sum()) if n_p and n_g else 0
    hit_g = int((_distance_to(pb)[gb] <= band_px).sum()) if n_p and n_g else 0
    return hit_p, n_p, hit_g, n_g


def boundary_f(pred: np.ndarray, gt: np.ndarray, band_px: float | None = None) -> float:
    """Boundary F-score of two boolean masks (module doc); ``band_px`` defaults to :func:`band_px_for`."""
    if band_px is None:
        band_px = band_px_for(gt.shape)
    hit_p, n_p, hit_g, n_g = boundary_precision_recall(pred, gt, band_px)
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    p, r = hit_p / n_p, hit_g / n_g
    return 0.0 if p + r == 0 else float(2 * p * r / (p + r))


# ----------------------------------------------------------------------------- matting

def sad(pred_alpha: np.ndarray, gt_alpha: np.ndarray) -> float:
    """Sum of absolute differences of two mattes in [0, 1], in thousands."""
    return float(np.abs(pred_alpha.astype(np.float64) - gt_alpha).sum() / 1000.0)


def mse(pred_alpha: np.ndarray, gt_alpha: np.ndarray) -> float:
    """Mean squared error of two mattes in [0, 1] (alpha units squared)."""
    return float(np.mean((pred_alpha.astype(np.float64) - gt_alpha) ** 2))


@lru_cache(maxsize=4)
def _gauss_derivative_kernel(sigma: float) -> np.ndarray:
    """x-derivative-of-Gaussian kernel (rows: Gaussian in y, columns: derivative in x), unit L2 norm.

    Half size as in the reference gradient-error code: ceil(sigma * sqrt(-2 ln(sqrt(2 pi) sigma eps)))
    with eps = 0.01 (4 px for sigma 1.4, a 9 x 9 kernel)."""
    eps = 1e-2
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2 * np.pi) * sigma * eps))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-u ** 2 / (2 * sigma ** 2)) / (sigma * np.sqrt(2 * np.pi))
    dg = -u * g / sigma ** 2
    k = np.outer(g, dg)
    return k / np.sqrt((k ** 2).sum())


def _gradient_magnitude(alpha: np.ndarray, sigma: float) -> np.ndarray:
    kx = _gauss_derivative_kernel(sigma)
    a = alpha.astype(np.float64)
    gx = cv2.filter2D(a, cv2.CV_64F, kx, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(a, cv2.CV_64F, np.ascontiguousarray(kx.T), borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx ** 2 + gy ** 2)


def gradient_error(pred_alpha: np.ndarray, gt_alpha: np.ndarray, sigma: float = GRAD_SIGMA) -> float:
    """Sum of squared differences of the Gaussian-gradient magnitudes (mattes in [0, 1]), in thousands."""
    d = _gradient_magnitude(pred_alpha, sigma) - _gradient_magnitude(gt_alpha, sigma)
    return float((d ** 2).sum() / 1000.0)


# ----------------------------------------------------------------------------- confidence intervals

def _bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean over items (deterministic for a given seed)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float(v[0])
    means = v[_bootstrap_indices(v.size, n_boot, seed)].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def bootstrap_ratio_ci(num: Sequence[float], den: Sequence[float], n_boot: int = 2000,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of ``sum(num) / sum(den)`` resampling items (images) together."""
    a, b = np.asarray(num, np.float64), np.asarray(den, np.float64)
    if a.size == 0:
        return float("nan"), float("nan")
    idx = _bootstrap_indices(a.size, n_boot, seed)
    sa, sb = a[idx].sum(axis=1), b[idx].sum(axis=1)
    ratios = np.where(sb > 0, sa / np.where(sb > 0, sb, 1), 1.0)
    lo, hi = np.quantile(ratios, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class MeanCI:
    """Mean of per-image values with its 95 % bootstrap CI (NaN for no values)."""

    mean: float
    ci_low: float
    ci_high: float
    n: int


def mean_ci(values: Sequence[float], n_boot: int = 2000, seed: int = 0) -> MeanCI:
    v = [float(x) for x in values]
    lo, hi = bootstrap_ci(v, n_boot=n_boot, seed=seed)
    return MeanCI(float(np.mean(v)) if v else float("nan"), lo, hi, len(v))
