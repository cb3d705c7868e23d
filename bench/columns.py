"""The row columns read by name away from the measurement that writes them (the gate, the report, the
CLI), in one place, and the one definition of a speed-up.

A row is a measurement's record (``dataclasses.asdict`` of the frozen dataclass it returns) plus the
job's own columns (``bench.jobs``). Each name below is a field of the record named beside it;
``tests/test_columns.py`` fails when a record and this module drift apart.
"""
from __future__ import annotations

import math
from typing import Union

import numpy as np

# every row (bench.jobs: the job and its settings)
JOB, MEASUREMENT, ARCH, STATUS = "job", "measurement", "arch", "status"
BACKEND, THREADS, INPUT_SIZE, WEIGHTS, REPEAT = "backend", "threads", "input_size", "weights", "repeat"

# profile (bench.measure.complexity.ComplexityRecord)
PARAMS, MACS_G = "params", "macs_g"
# accuracy (bench.measure.accuracy.EvalRecord)
MIOU = "miou"
# latency (bench.measure.latency.LatencyRecord)
LATENCY_MS_MEDIAN, LATENCY_RATIO_TO_CALIB, PARITY_OK = "latency_ms_median", "latency_ratio_to_calib", "parity_ok"
# speedup (bench.measure.latency.SpeedupRecord; interleaved rounds)
SPEEDUP, SPEEDUP_MIN, SPEEDUP_MAX = "speedup", "speedup_min", "speedup_max"
# arm_cost (the row of bench.measurements.arm_cost_job)
ARM_INSTRUCTIONS_M, PARITY_OK_ARM = "arm_instructions_m", "parity_ok_arm"

Number = Union[float, np.ndarray]


def speedup(base_ms: Number, other_ms: Number) -> Number:
    """How many times faster ``other`` runs than ``base``: base time / other time (> 1: ``other`` is
    faster). Element-wise on arrays (per round); for single values NaN when either time is not a
    positive finite number."""
    if isinstance(base_ms, np.ndarray) or isinstance(other_ms, np.ndarray):
        return np.asarray(base_ms, dtype=np.float64) / np.asarray(other_ms, dtype=np.float64)
    b, o = float(base_ms), float(other_ms)
    return b / o if math.isfinite(b) and math.isfinite(o) and o > 0 else math.nan
