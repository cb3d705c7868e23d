"""Accuracy metrics: hand-checked values, edge cases, CIs, and evaluate's new fields on real data."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bench.measure import accuracy, metrics
from bench.measure.accuracy import EvalRecord, evaluate
from bench.data.samples import scan_folder
from bench.measure.metrics import (band_px_for, boundary_f, bootstrap_ci, bootstrap_ratio_ci, gradient_error,
                                   iou, mask_boundary, mean_ci, mse, sad)


def _square(h=100, w=100, y0=20, x0=20, size=50) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y0 + size, x0:x0 + size] = True
    return m


def test_iou_values_and_empty():
    a, b = _square(), _square(x0=45)  # 50x50 squares overlapping in 50x25
    assert iou(a, b) == pytest.approx(50 * 25 / (2 * 2500 - 50 * 25))
    empty = np.zeros((10, 10), bool)
    assert iou(empty, empty) == 1.0 and iou(a, np.zeros_like(a)) == 0.0


def test_accuracy_module_keeps_its_names():
    assert accuracy.iou is metrics.iou and accuracy.bootstrap_ci is metrics.bootstrap_ci


def test_boundary_is_one_pixel_ring_and_frame_is_not_boundary():
    ring = mask_boundary(_square())
    assert ring.sum() == 4 * 50 - 4
    full = np.ones((30, 40), bool)
    assert mask_boundary(full).sum() == 0  # touching the frame is not an edge


def test_boundary_f_identical_shifted_and_empty():
    a = _square()
    assert boundary_f(a, a, band_px=1) == 1.0
    shifted = _square(x0=23)  # 3 px right
    assert boundary_f(shifted, a, band_px=3) == 1.0  # every edge pixel within 3 px
    f1 = boundary_f(shifted, a, band_px=1)
    assert 0.3 < f1 < 0.8  # the horizontal edges match, the vertical ones do not
    empty = np.zeros_like(a)
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(empty, a) == 0.0 and boundary_f(a, empty) == 0.0


def test_band_is_one_percent_of_the_diagonal():
    assert band_px_for((480, 640)) == pytest.approx(8.0)
    assert band_px_for((800, 600)) == pytest.approx(10.0)
    assert band_px_for((10, 10)) == 1.0  # at least one pixel


def test_sad_mse_units():
    gt = np.zeros((100, 100), np.float32)
    pred = np.full_like(gt, 0.5)
    assert sad(pred, gt) == pytest.approx(10000 * 0.5 / 1000)  # thousands
    assert mse(pred, gt) == pytest.approx(0.25)
    assert sad(gt, gt) == 0 and mse(gt, gt) == 0


def test_gradient_error_zero_for_equal_and_flat_offsets():
    rng = np.random.default_rng(0)
    a = rng.random((64, 64)).astype(np.float32)
    assert gradient_error(a, a) == 0.0
    flat = np.full((64, 64), 0.3, np.float32)
    assert gradient_error(flat + 0.2, flat) == pytest.approx(0.0, abs=1e-12)  # no gradients at all
    edge = np.zeros((64, 64), np.float32)
    edge[:, 32:] = 1
    soft = edge.copy()
    soft[:, 30:34] = np.linspace(0, 1, 4)
    assert gradient_error(edge, flat) > gradient_error(soft, flat) > 0  # a hard edge has larger gradients


def test_gradient_kernel_is_unit_norm_and_antisymmetric():
    k = metrics._gauss_derivative_kernel(1.4)
    assert k.shape == (9, 9)
    assert np.sqrt((k ** 2).sum()) == pytest.approx(1.0)
    assert np.allclose(k, -k[:, ::-1])


def test_bootstrap_ci_brackets_mean_and_is_deterministic():
    v = np.random.default_rng(1).normal(0.8, 0.1, 50)
    lo, hi = bootstrap_ci(v)
    assert lo < v.mean() < hi
    assert (lo, hi) == bootstrap_ci(v)
    assert hi - lo == pytest.approx(2 * 1.96 * v.std() / np.sqrt(50), rel=0.25)
    assert bootstrap_ci([0.5]) == (0.5, 0.5)
    assert all(np.isnan(bootstrap_ci([])))
    m = mean_ci(v)
    assert m.mean == pytest.approx(v.mean()) and (m.ci_low, m.ci_high) == (lo, hi) and m.n == 50


def test_ratio_ci_brackets_pooled_ratio():
    rng = np.random.default_rng(2)
    den = rng.integers(100, 1000, 40).astype(float)
    num = den * rng.uniform(0.6, 0.95, 40)
    lo, hi = bootstrap_ratio_ci(num, den)
    assert lo < num.sum() / den.sum() < hi


def test_eval_record_stays_compatible():
    """Old positional construction still works; new fields have defaults."""
    rec = EvalRecord(0.9, 0.8, 0.95, 0.9, 2, 256, 0.5, (0.9, 0.9), ("a", "b"))
    assert np.isnan(rec.boundary_f) and rec.n_alpha == 0


class _Const(torch.nn.Module):
    """A 'network' predicting a fixed centred ellipse (logits), to test evaluate without training."""

    def forward(self, x):
        n, _, h, w = x.shape
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        logit = 8 * (0.5 - (xx / 0.6) ** 2 - (yy / 0.9) ** 2)
        return logit.expand(n, 1, h, w)


def test_evaluate_reports_boundary_and_matting_on_real_alpha(data_dir):
    from archs import LOGITS, Preprocess
    samples = scan_folder(data_dir / "aisegment-40")[:3]
    rec = evaluate(_Const(), samples, 64, Preprocess(), LOGITS)
    assert rec.n_images == 3 and rec.n_alpha == 3
    for name in ("miou", "boundary_f", "sad_k", "mse_x1e3", "grad_k", "iou_dataset"):
        v = getattr(rec, name)
        assert np.isfinite(v), name
        if name not in ("sad_k", "grad_k"):
            assert 0 <= v <= 1000
    assert rec.boundary_f_ci_low <= rec.boundary_f <= rec.boundary_f_ci_high
    assert rec.iou_dataset_ci_low <= rec.iou_dataset <= rec.iou_dataset_ci_high
    assert len(rec.per_image_boundary_f) == 3
    masks = evaluate(_Const(), scan_folder(data_dir / "hsd")[:2], 64, Preprocess(), LOGITS)
    assert masks.n_alpha == 0 and np.isnan(masks.sad_k)  # no matting errors on binary masks
    assert all(not isinstance(v, (list, dict)) for v in dataclasses.asdict(masks).values())
