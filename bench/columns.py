"""The row columns read by name away from the measurement that writes them (the gate, the report, the
CLI), in one place, and the one definition of a speed-up.

A row is a measurement's record (:func:`record_row` of the frozen dataclass it returns) plus the
job's own columns (``bench.run.jobs``). Each name below is a field of the record named beside it;
``tests/test_columns.py`` fails when a record and this module drift apart.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Union

import numpy as np

# every row (bench.run.jobs: the job and its settings, and when and under what load it ran)
JOB, MEASUREMENT, ARCH, STATUS = "job", "measurement", "arch", "status"
BACKEND, THREADS, INPUT_SIZE, WEIGHTS, REPEAT = "backend", "threads", "input_size", "weights", "repeat"
LOAD_AVG_1M = "load_avg_1m"

# profile (bench.measure.complexity.ComplexityRecord)
PARAMS, MACS_G, ACT_PEAK_MB = "params", "macs_g", "act_peak_mb"
SIZE_MB_FP32, SIZE_MB_FP16, SIZE_MB_NCNN_BIN = "size_mb_fp32", "size_mb_fp16", "size_mb_ncnn_bin"
# accuracy (bench.measure.accuracy.EvalRecord)
MIOU, MIOU_CI_LOW, MIOU_CI_HIGH = "miou", "miou_ci_low", "miou_ci_high"
N_IMAGES, BOUNDARY_F = "n_images", "boundary_f"
# latency (bench.measure.latency.LatencyRecord)
LATENCY_MS_MEDIAN, LATENCY_RATIO_TO_CALIB, PARITY_OK = "latency_ms_median", "latency_ratio_to_calib", "parity_ok"
LATENCY_MS_P10, LATENCY_MS_P90, LATENCY_CV = "latency_ms_p10", "latency_ms_p90", "latency_cv"
ACHIEVED_GMACS_PER_S, QUIET = "achieved_gmacs_per_s", "quiet"
# speedup (bench.measure.latency.SpeedupRecord; interleaved rounds)
SPEEDUP, SPEEDUP_MIN, SPEEDUP_MAX = "speedup", "speedup_min", "speedup_max"
OTHER_BACKEND = "other_backend"  # the backend timed against PyTorch (the row's backend too)
# arm_cost (the row of bench.run.adapters.arm_cost_job)
ARM_INSTRUCTIONS_M, PARITY_OK_ARM = "arm_instructions_m", "parity_ok_arm"
# arm_estimate (the rows of bench.arm.estimate.estimate_model: estimates, never measured latency)
ARM_EST_MS, ARM_EST_MS_LOW, ARM_EST_MS_HIGH = "arm_est_ms", "arm_est_ms_low", "arm_est_ms_high"
DEVICE_MODEL = "device_model"
# train (the row of bench.run.sweep.train_job)
VAL_MIOU, VAL_MIOU_CI_LOW, VAL_MIOU_CI_HIGH = "val_miou", "val_miou_ci_low", "val_miou_ci_high"
TRAIN_STEPS, TRAIN_SECONDS = "train_steps", "train_seconds"

Number = Union[float, np.ndarray]


def speedup(base_ms: Number, other_ms: Number) -> Number:
    """How many times faster ``other`` runs than ``base``: base time / other time (> 1: ``other`` is
    faster). Element-wise on arrays (per round); for single values NaN when either time is not a
    positive finite number."""
    if isinstance(base_ms, np.ndarray) or isinstance(other_ms, np.ndarray):
        return np.asarray(base_ms, dtype=np.float64) / np.asarray(other_ms, dtype=np.float64)
    b, o = float(base_ms), float(other_ms)
    return b / o if math.isfinite(b) and math.isfinite(o) and o > 0 else math.nan


PER_IMAGE: dict[str, Any] = {"per_image": True}  # metadata of a record field that holds one value per image


def record_row(rec: Any) -> dict[str, Any]:
    """A measurement record (a dataclass) as a result row: its fields, less those declared
    ``field(metadata=PER_IMAGE)`` (per-image sequences; a row carries them encoded, if at all). The one
    converter from records to rows."""
    per_image = {f.name for f in dataclasses.fields(rec) if f.metadata.get("per_image")}
    return {k: v for k, v in dataclasses.asdict(rec).items() if k not in per_image}
