"""Repeatability: the same latency job in fresh processes, between-run CV and its flags.

(Split by topic from the one latency test module; shared stand-ins are in helpers.py.)
"""
from __future__ import annotations

import math

import pytest
import torch

import bench.measure.latency as latency
import bench.run.adapters  # noqa: F401  registers the latency measurement
import run_bench
from bench.run.jobs import Job, run_job

# ----------------------------------------------------------------------------- repeatability

def _run(median, cv=0.02, status="ok", quiet=True):
    return dict(status=status, latency_ms_median=median, latency_cv=cv, quiet=quiet)


def test_summarize_repeats_between_run_cv_and_flags():
    rec = latency.summarize_repeats([_run(10.0, 0.01), _run(11.0, 0.04), _run(12.0, 0.02, quiet=False)])
    assert (rec.runs, rec.runs_ok, rec.runs_quiet, rec.status) == (3, 3, 2, "ok")
    assert rec.run_medians_ms == "10.000 11.000 12.000"
    assert rec.latency_ms_median_of_runs == 11.0
    assert (rec.latency_ms_min_of_runs, rec.latency_ms_max_of_runs) == (10.0, 12.0)
    assert rec.between_run_cv == pytest.approx(1.0 / 11.0)  # std (ddof=1) = 1 over mean 11
    assert rec.between_run_spread == pytest.approx(2.0 / 11.0)
    assert (rec.within_run_cv_median, rec.within_run_cv_max) == (0.02, 0.04)
    assert rec.repeatable is False and rec.max_between_run_cv == latency.MAX_BETWEEN_RUN_CV
    steady = latency.summarize_repeats([_run(10.0), _run(10.1), _run(9.9)])
    assert steady.repeatable is True and steady.between_run_cv == pytest.approx(0.01)


def test_summarize_repeats_one_slow_mode_run_is_not_repeatable():
    # the 2-thread pattern of this VM: four runs at 4.8 ms, one at 12.6 ms
    rec = latency.summarize_repeats([_run(4.8), _run(4.9), _run(12.6), _run(4.8), _run(4.7)])
    assert rec.latency_ms_median_of_runs == 4.8 and rec.repeatable is False


def test_summarize_repeats_failed_runs_count_and_set_the_status():
    rows = [_run(10.0), _run(float("nan"), status="error: parity x"), _run(10.2)]
    rec = latency.summarize_repeats(rows)
    assert (rec.runs, rec.runs_ok, rec.status) == (3, 2, "error: parity x")
    assert rec.run_medians_ms == "10.000 10.200" and rec.repeatable is True
    one = latency.summarize_repeats([_run(10.0), _run(float("nan"), status="error: x")])
    assert math.isnan(one.between_run_cv) and one.repeatable is None
    none = latency.summarize_repeats([_run(float("nan"), status="error: y")])
    assert none.runs_ok == 0 and math.isnan(none.latency_ms_median_of_runs) and none.status == "error: y"
    with pytest.raises(ValueError, match="no runs"):
        latency.summarize_repeats([])


@pytest.mark.timing
def test_latency_repeat_job_runs_fresh_processes():
    """Real runs (torch, small input, short protocol): the structure, not the timings, is checked."""
    rows = run_job(Job.make("latency_repeat", "residualdense_bisenet", backend="torch", threads=1, input_size=64,
                            loops=5, warmup=1, runs=2, attempts=1, quiet_wait_s=0))
    row = rows[0]
    assert row["status"] == "ok", row.get("traceback", row["status"])
    assert (row["runs"], row["runs_ok"], row["backend"], row["threads"]) == (2, 2, "torch", 1)
    medians = [float(v) for v in row["run_medians_ms"].split()]
    assert len(medians) == 2 and all(v > 0 for v in medians)
    assert min(medians) <= row["latency_ms_median_of_runs"] <= max(medians)
    assert row["between_run_cv"] >= 0 and isinstance(row["repeatable"], bool)
    assert row["protocol"].startswith("latency-protocol")


def test_latency_repeat_job_needs_two_runs_and_skips_a_missing_backend(monkeypatch):
    rows = run_job(Job.make("latency_repeat", "residualdense_bisenet", backend="torch", runs=1))
    assert rows[0]["status"].startswith("error") and "at least 2 runs" in rows[0]["status"]
    import bench.run.jobs as jobs
    monkeypatch.setattr(jobs, "run_in_fresh_process",
                        lambda job: [{"status": "skipped: ncnn backend needs the ncnn package(s)"}])
    rows = run_job(Job.make("latency_repeat", "residualdense_bisenet", backend="ncnn", runs=3))
    assert rows[0]["status"] == "skipped: ncnn backend needs the ncnn package(s)"


def test_fresh_process_returns_the_jobs_rows():
    from bench.run.jobs import run_in_fresh_process
    rows = run_in_fresh_process(Job.make("no_such_measurement", "x"))
    assert rows[0]["status"].startswith("error") and "unknown measurement" in rows[0]["status"]


def test_cli_latency_repeat_needs_two_runs(capsys):
    assert run_bench.main(["latency", "--arch", "seg_matting", "--repeat", "1"]) == 2
    assert "at least 2 runs" in capsys.readouterr().err
