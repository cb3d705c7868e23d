"""Parity of a backend's outputs with PyTorch's: value tolerance, mask IoU, structural failures.

(Split by topic from the one latency test module; shared stand-ins are in helpers.py.)
"""
from __future__ import annotations


import numpy as np
import pytest

import bench.run.adapters  # noqa: F401  registers the latency measurement
from archs import LOGITS, SEG_ALPHA, list_archs
from bench.backends import (ParityRecord, Runner, check_parity, conversion_key, read_param_io, state_dict_digest)

# ----------------------------------------------------------------------------- parity

def _logits(seed=0, shape=(1, 1, 16, 16)):
    return np.random.default_rng(seed).normal(0, 3, shape).astype(np.float32)


def test_parity_identical_outputs():
    ref = [_logits()]
    p = check_parity(ref, [ref[0].copy()], LOGITS)
    assert p == ParityRecord(0.0, float(np.abs(ref[0]).max()), 1.0, True, "")


def test_parity_small_noise_passes_and_accepts_missing_batch_axis():
    ref = _logits()
    out = (ref + 1e-5)[0]  # ncnn gives C x H x W
    p = check_parity([ref], [out], LOGITS)
    assert p.ok and p.max_abs_diff == pytest.approx(1e-5, rel=1e-2)


def test_parity_large_difference_fails():
    ref = _logits()
    p = check_parity([ref], [ref + 0.5], LOGITS)
    assert not p.ok and "max_abs_diff" in p.reason and p.max_abs_diff == pytest.approx(0.5)


def test_parity_mask_iou_fails_on_a_flipped_region_even_within_value_tolerance():
    ref = np.full((1, 1, 10, 10), 0.001, np.float32)
    out = ref.copy()
    out[..., :2, :] = -0.001  # 20 of 100 pixels change side of the threshold, values barely move
    p = check_parity([ref], [out], LOGITS, atol=0.01)
    assert not p.ok and p.mask_iou == pytest.approx(0.8) and "mask_iou" in p.reason


def test_parity_seg_alpha_uses_the_alpha_mask():
    seg = _logits(1, (1, 2, 8, 8))
    alpha = np.zeros((1, 1, 8, 8), np.float32)
    alpha[..., :4, :] = 0.9
    out_alpha = alpha.copy()
    out_alpha[..., :2, :] = 0.1
    p = check_parity([seg, alpha], [seg, out_alpha], SEG_ALPHA, atol=1.0)
    assert p.mask_iou == pytest.approx(0.5) and not p.ok


@pytest.mark.parametrize("out, reason", [
    ([], "outputs"),
    ([np.zeros((1, 1, 8, 8), np.float32)], "shape"),
    ([np.full((1, 1, 16, 16), np.nan, np.float32)], "non-finite"),
])
def test_parity_structural_failures(out, reason):
    p = check_parity([_logits()], out, LOGITS)
    assert not p.ok and reason in p.reason


def test_parity_empty_masks_count_as_equal():
    ref = -np.ones((1, 1, 4, 4), np.float32)
    assert check_parity([ref], [ref], LOGITS).mask_iou == 1.0
