"""Latency records and rows: the record's arithmetic with stand-in runners and fixed timing,
parity failures, skipped and error rows.

(Split by topic from the one latency test module; shared stand-ins are in helpers.py.)
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

import bench.backends as backends
import bench.measure.latency as latency
import bench.run.adapters  # noqa: F401  registers the latency measurement
from bench.run.jobs import Job, run_job
from helpers import FIXED_STATS  # shared stand-ins (and the fake_backend fixture)

# ----------------------------------------------------------------------------- records and rows


def test_record_arithmetic_with_fixed_timing(fake_backend):
    rec = latency.measure_latency("residualdense_bisenet", "ncnn", threads=1, input_size=64, loops=5)
    assert rec.status == "ok" and rec.parity_ok and rec.parity_max_abs_diff == 0.0
    assert rec.latency_ms_median == 4.0 and rec.latency_ms_p10 == FIXED_STATS.latency_ms_p10
    assert rec.latency_ratio_to_calib == pytest.approx(0.5)
    macs = latency.design_macs_g("residualdense_bisenet", 64)
    assert rec.macs_g == pytest.approx(macs)
    assert rec.achieved_gmacs_per_s == pytest.approx(macs / 4.0 * 1e3)
    assert rec.fraction_of_peak == pytest.approx(macs / 4.0 * 1e3 / 125.0)
    assert rec.parity_input.startswith("hsd/") and "threads=1" in rec.protocol
    assert rec.quiet is True and rec.attempts == 1 and rec.cpu_busy_before == 0.0
    assert rec.cpu_count == os.cpu_count() and rec.torch_version == torch.__version__


def test_parity_failure_is_an_error_record_without_latency(fake_backend):
    fake_backend["offset"] = 1.0
    rec = latency.measure_latency("residualdense_bisenet", "ncnn", threads=1, input_size=64, loops=5)
    assert rec.status.startswith("error: parity") and "max_abs_diff" in rec.status
    assert rec.parity_ok is False and math.isnan(rec.latency_ms_median) and math.isnan(rec.latency_cv)
    assert math.isnan(rec.latency_ratio_to_calib) and fake_backend["timed"] == 0


def test_parity_failure_row_through_the_job_runner(fake_backend):
    fake_backend["offset"] = 1.0
    rows = run_job(Job.make("latency", "residualdense_bisenet", backend="ncnn", threads=1, input_size=64,
                            loops=5, warmup=1))
    assert len(rows) == 1 and rows[0]["status"].startswith("error: parity")
    assert math.isnan(rows[0]["latency_ms_median"]) and rows[0]["arch"] == "residualdense_bisenet"


def test_missing_backend_is_a_skipped_row(monkeypatch):
    monkeypatch.setattr(backends, "backend_missing", lambda b: f"{b} backend needs the ncnn package(s)")
    rows = run_job(Job.make("latency", "seg_matting", backend="ncnn", threads=1))
    assert rows[0]["status"] == "skipped: ncnn backend needs the ncnn package(s)"


def test_missing_package_reported(monkeypatch):
    monkeypatch.setattr(backends.table, "package_version", lambda name: None if name == "pnnx" else "1")
    assert "pnnx" in backends.backend_missing("ncnn")
    assert backends.backend_missing("torch") is None


@pytest.mark.parametrize("settings, message", [
    (dict(backend="tensorrt"), "unknown backend"),
    (dict(backend="torch", loops=2), "at least 5"),
])
def test_bad_settings_are_error_rows(settings, message):
    rows = run_job(Job.make("latency", "residualdense_bisenet", input_size=64, **settings))
    assert rows[0]["status"].startswith("error") and message in rows[0]["status"]


def test_size_not_accepted_by_the_design_is_skipped():
    rows = run_job(Job.make("latency", "seg_matting", backend="torch", input_size=100))
    assert rows[0]["status"].startswith("skipped") and "multiple of 32" in rows[0]["status"]


def test_fixed_input_real_and_synthetic(tmp_path):
    from archs import get_spec
    pre = get_spec("seg_matting").preprocess
    x, name = latency.fixed_input(64, pre)
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32 and name.startswith("hsd/")
    y, name2 = latency.fixed_input(64, pre, tmp_path / "missing")
    assert y.shape == x.shape and name2.startswith("synthetic")
    assert np.array_equal(y, latency.fixed_input(64, pre, tmp_path / "missing")[0])


def test_speedups_pairs_ok_rows_only():
    rows = [
        dict(arch="a", backend="torch", threads=2, input_size=256, status="ok", latency_ms_median=10.0),
        dict(arch="a", backend="ncnn", threads=2, input_size=256, status="ok", latency_ms_median=4.0),
        dict(arch="a", backend="ncnn", threads=1, input_size=256, status="ok", latency_ms_median=8.0),
        dict(arch="b", backend="torch", threads=2, input_size=256, status="ok", latency_ms_median=10.0),
        dict(arch="b", backend="ncnn", threads=2, input_size=256, status="error: parity x",
             latency_ms_median=float("nan")),
    ]
    assert latency.speedups(rows) == [{"arch": "a", "threads": 2, "input_size": 256, "torch_ms_median": 10.0,
                                       "ncnn_ms_median": 4.0, "speedup": 2.5}]
