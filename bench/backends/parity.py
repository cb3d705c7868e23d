"""Parity: a backend's outputs against PyTorch's on the same input."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from archs import LOGITS

PARITY_ATOL = 1e-4  # max |backend - torch| <= PARITY_ATOL + PARITY_RTOL * max |torch| (all outputs)
PARITY_RTOL = 1e-2
PARITY_MIN_IOU = 0.99  # IoU of the foreground masks (logit > 0, or alpha > 0.5)


@dataclass(frozen=True)
class ParityRecord:
    max_abs_diff: float  # over all outputs
    max_abs_ref: float  # largest |value| of the reference outputs
    mask_iou: float  # IoU of the thresholded foreground masks (1.0 when both are empty)
    ok: bool
    reason: str  # "" when ok


def check_parity(ref: Sequence[np.ndarray], out: Sequence[np.ndarray], output_kind: str = LOGITS,
                 atol: float = PARITY_ATOL, rtol: float = PARITY_RTOL,
                 min_iou: float = PARITY_MIN_IOU) -> ParityRecord:
    """Compare a backend's outputs ``out`` with the PyTorch reference ``ref`` (same order).

    Fails when the outputs differ in number or shape, are not finite, when the max abs difference
    exceeds ``atol + rtol * max|ref|`` or when the foreground-mask IoU is below ``min_iou``.
    The mask is ``logits > 0`` for LOGITS and ``alpha > 0.5`` (the last output) for SEG_ALPHA."""
    if len(ref) != len(out):
        return ParityRecord(float("nan"), float("nan"), float("nan"), False,
                            f"{len(out)} outputs, expected {len(ref)}")
    ref = [np.asarray(r, dtype=np.float32) for r in ref]
    out = [np.asarray(o, dtype=np.float32) for o in out]
    for i, (r, o) in enumerate(zip(ref, out)):
        if r.size != o.size:
            return ParityRecord(float("nan"), float("nan"), float("nan"), False,
                                f"output {i} has shape {o.shape}, expected {r.shape}")
    out = [o.reshape(r.shape) for r, o in zip(ref, out)]
    if not all(np.isfinite(o).all() for o in out):
        return ParityRecord(float("nan"), float("nan"), float("nan"), False,
                            "non-finite values in the output")
    max_diff = max(float(np.abs(r - o).max()) if r.size else 0.0 for r, o in zip(ref, out))
    max_ref = max(float(np.abs(r).max()) if r.size else 0.0 for r in ref)
    if output_kind == LOGITS:
        m_ref, m_out = ref[0] > 0, out[0] > 0
    else:
        m_ref, m_out = ref[-1] > 0.5, out[-1] > 0.5
    union = int(np.logical_or(m_ref, m_out).sum())
    mask_iou = 1.0 if union == 0 else float(np.logical_and(m_ref, m_out).sum() / union)
    tol = atol + rtol * max_ref
    reasons = []
    if max_diff > tol:
        reasons.append(f"max_abs_diff={max_diff:.3g} > {tol:.3g}")
    if mask_iou < min_iou:
        reasons.append(f"mask_iou={mask_iou:.4f} < {min_iou}")
    return ParityRecord(max_diff, max_ref, mask_iou, not reasons, "; ".join(reasons))


