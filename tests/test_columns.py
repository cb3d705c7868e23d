"""bench.columns: the names the gate and the report read are fields of the records that write them,
and the speed-up has one definition."""
from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest

from bench import columns as C
from bench.run.jobs import Job, run_job
from bench.measure.accuracy import EvalRecord
from bench.measure.complexity import ComplexityRecord
from bench.measure.latency import LatencyRecord, SpeedupRecord, compare_rounds, speedups, summarize

WRITTEN_BY = {
    ComplexityRecord: (C.PARAMS, C.MACS_G, C.ACT_PEAK_MB, C.SIZE_MB_FP32, C.SIZE_MB_FP16, C.SIZE_MB_NCNN_BIN),
    EvalRecord: (C.MIOU, C.MIOU_CI_LOW, C.MIOU_CI_HIGH, C.N_IMAGES, C.BOUNDARY_F),
    LatencyRecord: (C.LATENCY_MS_MEDIAN, C.LATENCY_RATIO_TO_CALIB, C.PARITY_OK, C.BACKEND, C.THREADS, C.INPUT_SIZE,
                    C.LATENCY_MS_P10, C.LATENCY_MS_P90, C.LATENCY_CV, C.ACHIEVED_GMACS_PER_S, C.QUIET),
    SpeedupRecord: (C.SPEEDUP, C.SPEEDUP_MIN, C.SPEEDUP_MAX, C.PARITY_OK, C.OTHER_BACKEND, C.QUIET),
}


@pytest.mark.parametrize("record", list(WRITTEN_BY), ids=lambda r: r.__name__)
def test_column_names_are_fields_of_their_records(record):
    names = {f.name for f in fields(record)}
    missing = [c for c in WRITTEN_BY[record] if c not in names]
    assert not missing, f"{record.__name__} has no field {missing}"


def test_every_row_has_the_job_columns_and_its_load():
    row = run_job(Job("no_such_measurement", "x"))[0]
    assert {C.JOB, C.MEASUREMENT, C.ARCH, C.STATUS, C.LOAD_AVG_1M} <= set(row)


def test_speedup_is_base_over_other_and_nan_when_undefined():
    assert C.speedup(10.0, 4.0) == 2.5
    for base, other in ((10.0, 0.0), (10.0, -1.0), (math.nan, 1.0), (1.0, math.inf)):
        assert math.isnan(C.speedup(base, other))
    assert np.allclose(C.speedup(np.array([4.0, 9.0]), np.array([2.0, 3.0])), [2.0, 3.0])


def test_both_speedup_paths_use_the_one_definition():
    rows = [{"status": "ok", "arch": "a", "threads": 1, "input_size": 64, "backend": b, "latency_ms_median": m}
            for b, m in (("torch", 9.0), ("ncnn", 3.0))]
    assert speedups(rows)[0]["speedup"] == C.speedup(9.0, 3.0) == 3.0

    def stats(ms):
        return summarize([ms] * 5)
    cmp = compare_rounds([stats(8.0), stats(6.0), stats(9.0)], [stats(2.0), stats(3.0), stats(3.0)])
    assert (cmp.speedup, cmp.speedup_min, cmp.speedup_max) == (3.0, 2.0, 4.0)
