"""The plan's latency jobs and the `latency` command with stand-in timing.

(Split by topic from the one latency test module; shared stand-ins are in helpers.py.)
"""
from __future__ import annotations

import json

import pytest
import torch

import bench.backends as backends
import bench.measure.latency as latency
import bench.run.adapters  # noqa: F401  registers the latency measurement
import run_bench
from archs import LOGITS, SEG_ALPHA, list_archs
from bench.measure.latency import CalibRecord, default_thread_counts, summarize, time_callable
from bench.run.plan import PlanOptions, latency_jobs

# ----------------------------------------------------------------------------- plan and CLI

def test_plan_latency_jobs_cover_designs_backends_threads_and_sizes():
    archs = list_archs()
    full = latency_jobs(archs, PlanOptions(thorough=True))
    default = latency_jobs(archs, PlanOptions())
    quick = latency_jobs(archs, PlanOptions(quick=True))
    # the default plan: every backend at every thread count, at the run's size, nothing thorough
    assert {(j.measurement, j.get("input_size")) for j in default} == {("latency", 256)}
    assert {(j.arch, j.get("backend"), j.get("threads")) for j in default} == {
        (a, b, t) for a in archs for b in backends.BACKENDS for t in default_thread_counts()}
    keys = [j.key for j in full]
    assert len(keys) == len(set(keys))
    threads = default_thread_counts()
    for arch in archs:
        for backend in backends.BACKENDS:
            got = {j.get("threads") for j in full if j.arch == arch and j.get("backend") == backend
                   and j.get("input_size") == 256}
            assert got == set(threads)
        sweep = {j.get("input_size") for j in full if j.arch == arch and j.get("backend") == "ncnn"}
        assert len(sweep) > 1
    assert len(quick) == len(archs) * len(backends.BACKENDS)
    assert all(j.get("threads") == min(2, threads[-1]) and j.get("loops") == 10 for j in quick)
    assert all(j.measurement == "latency" for j in quick)  # no repeats in the quick plan
    repeats = [j for j in full if j.measurement == "latency_repeat"]
    assert {(j.arch, j.get("backend"), j.get("threads")) for j in repeats} == {
        (a, b, t) for a in archs for b in ("torch", "ncnn") for t in threads}
    assert all(j.get("runs") == latency.DEFAULT_REPEATS and j.get("input_size") == 256 for j in repeats)
    pairs = [j for j in full if j.measurement == "speedup"]
    assert {(j.arch, j.get("backend"), j.get("threads")) for j in pairs} == {
        (a, "ncnn", t) for a in archs for t in threads}


def test_cli_latency_json_keys(monkeypatch, capsys, fake_backend):
    assert run_bench.main(["latency", "--arch", "residualdense_bisenet", "--backend", "onnxruntime",
                           "--threads", "1", "--size", "64", "--loops", "5", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    for key in ("latency_ms_median", "latency_ms_p10", "latency_ms_p90", "latency_cv", "backend", "threads",
                "input_size", "status", "protocol", "parity_ok", "latency_ratio_to_calib"):
        assert key in row
    assert (row["backend"], row["threads"], row["input_size"], row["status"]) == ("onnxruntime", 1, 64, "ok")


def test_cli_latency_parity_failure_exits_1(monkeypatch, capsys, fake_backend):
    fake_backend["offset"] = 1.0
    assert run_bench.main(["latency", "--arch", "residualdense_bisenet", "--backend", "ncnn",
                           "--threads", "1", "--size", "64", "--loops", "5"]) == 1
    assert "error: parity" in capsys.readouterr().err


def test_cli_latency_rejects_unknown_backend(capsys):
    with pytest.raises(SystemExit) as exc:
        run_bench.main(["latency", "--arch", "seg_matting", "--backend", "tensorrt"])
    assert exc.value.code == 2


def test_peer_latency_follows_the_same_protocol(fake_backend, models_dir):
    """A peer's row (its own runtime) goes through the same quiet wait, calibration and statistics
    as a design's, so the two can share one table."""
    from bench.models import peers
    spec = peers.get_peer("mediapipe_selfie")
    if peers.runtime_missing(spec.runtime) or not (models_dir / spec.relpath).is_file():
        pytest.skip("MediaPipe model or its runtime not available")
    rec = peers.measure_peer_latency("mediapipe_selfie", threads=1, loops=5, warmup=1, models_dir=models_dir)
    assert rec.status == "ok" and rec.latency_ms_median == 4.0 and rec.latency_ratio_to_calib == pytest.approx(0.5)
    assert rec.achieved_gmacs_per_s == pytest.approx(rec.macs_g / 4.0 * 1e3)
    assert rec.quiet is True and rec.attempts == 1 and rec.cpu_busy_before == 0.0
    assert "quiet=other_cpu<=0.05" in rec.protocol and "input=256x256" in rec.protocol
    assert set(fields_of(latency.TimedRun)) <= set(fields_of(peers.PeerLatencyRecord))
    assert set(fields_of(latency.TimedRun)) <= set(fields_of(latency.LatencyRecord))


def fields_of(cls) -> list[str]:
    import dataclasses
    return [f.name for f in dataclasses.fields(cls)]
