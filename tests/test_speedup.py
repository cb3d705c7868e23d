"""Interleaved speed-ups: rounds in turned order, per-round ratios, quiet redo, parity first.

(Split by topic from the one latency test module; shared stand-ins are in helpers.py.)
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import bench.backends as backends
import bench.measure.latency as latency
import bench.run.adapters  # noqa: F401  registers the latency measurement
import run_bench
from bench.run.jobs import Job, run_job
from bench.measure.latency import CalibRecord, default_thread_counts, summarize, time_callable
from helpers import HAVE_NCNN, needs_ncnn

HAVE_NCNN = backends.backend_missing("ncnn") is None

# ----------------------------------------------------------------------------- interleaved comparison

@pytest.mark.timing
def test_time_interleaved_turns_the_order_every_round_and_times_each_callable_alone():
    calls, t = [], {"now": 0}

    def clock():
        return t["now"]

    def make(name, ms):
        def fn():
            calls.append(name)
            t["now"] += int(ms * 1e6)
        return fn

    out = latency.time_interleaved({"a": make("a", 2.0), "b": make("b", 5.0), "c": make("c", 1.0)},
                                   rounds=3, loops=2, warmup=1, warmup_min_s=0.0, clock=clock)
    # each round: every callable once, 1 warm-up + 2 timed calls in a row; the first one turns
    blocks = [calls[i] for i in range(0, len(calls), 3)]
    assert blocks == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(calls[i] == calls[i + 1] == calls[i + 2] for i in range(0, len(calls), 3))
    assert [len(v) for v in out.values()] == [3, 3, 3]
    assert [s.latency_ms_median for s in out["b"]] == [5.0, 5.0, 5.0]
    assert all(s.n_loops == 2 and s.warmup == 1 for v in out.values() for s in v)


@pytest.mark.parametrize("fns, rounds", [({}, 3), ({"a": lambda: None}, 0)])
def test_time_interleaved_rejects_nothing_to_do(fns, rounds):
    with pytest.raises(ValueError):
        latency.time_interleaved(fns, rounds=rounds)


def test_compare_rounds_takes_the_median_of_per_round_ratios():
    base = [summarize([v]) for v in (10.0, 20.0, 10.0, 11.0)]  # the machine slowed in round 2 ...
    other = [summarize([v]) for v in (5.0, 10.0, 5.0, 5.0)]  # ... for both backends alike
    c = latency.compare_rounds(base, other)
    assert c.rounds == 4 and c.speedup == pytest.approx(2.0) and c.speedup_min == pytest.approx(2.0)
    assert c.speedup_max == pytest.approx(2.2) and c.round_speedups == "2.000 2.000 2.000 2.200"
    assert c.base_ms_median == pytest.approx(10.5) and c.other_ms_median == pytest.approx(5.0)
    ratios = np.array([2.0, 2.0, 2.0, 2.2])
    assert c.speedup_cv == pytest.approx(ratios.std(ddof=1) / ratios.mean())
    assert c.base_round_cv > 0.3  # the drift shows in the separate medians, not in the ratio
    # the ratio of separate medians would have been off by 5% here; separate runs in different
    # minutes (one in the slow round) would be off by 100%
    with pytest.raises(ValueError, match="same number of rounds"):
        latency.compare_rounds(base, other[:3])
    with pytest.raises(ValueError, match="not positive"):
        latency.compare_rounds(base[:1], [summarize([0.0])])


def test_speedup_record_from_interleaved_rounds(fake_backend, monkeypatch):
    rounds = {"torch": [summarize([v]) for v in (8.0, 9.0, 8.0)], "ncnn": [summarize([v]) for v in (4.0, 3.0, 4.0)]}
    seen = {}

    def interleaved(fns, rounds_, loops, warmup):
        seen.update(names=list(fns), rounds=rounds_, loops=loops, warmup=warmup)
        return rounds

    monkeypatch.setattr(latency, "time_interleaved", interleaved)
    rec = latency.measure_speedup("residualdense_bisenet", "ncnn", threads=1, input_size=64, rounds=3, loops=4,
                                  warmup=2)
    assert seen == {"names": ["torch", "ncnn"], "rounds": 3, "loops": 4, "warmup": 2}
    assert rec.status == "ok" and rec.parity_ok and rec.speedup == pytest.approx(2.0)
    assert (rec.speedup_min, rec.speedup_max) == (pytest.approx(2.0), pytest.approx(3.0))
    assert (rec.base_backend, rec.other_backend, rec.threads, rec.input_size) == ("torch", "ncnn", 1, 64)
    assert rec.quiet is True and rec.attempts == 1 and rec.cpu_busy_before == 0.0 and "rounds=3" in rec.protocol
    assert rec.converter == "fake 1" and rec.base_options.startswith("eager")


def test_speedup_redoes_a_disturbed_comparison_and_keeps_the_quiet_one(fake_backend, monkeypatch):
    busy = iter([0.5, 0.0])  # another process used half the machine during the first comparison
    monkeypatch.setattr(latency, "cpu_busy_fraction", lambda *a: next(busy))
    monkeypatch.setattr(latency, "load_avg", lambda: 0.0)  # not saturated: a redo may help
    results = iter([{"torch": [summarize([9.0])] * 3, "ncnn": [summarize([3.0])] * 3},
                    {"torch": [summarize([8.0])] * 3, "ncnn": [summarize([4.0])] * 3}])
    monkeypatch.setattr(latency, "time_interleaved", lambda *a: next(results))
    rec = latency.measure_speedup("residualdense_bisenet", "ncnn", threads=1, input_size=64, rounds=3,
                                  quiet_wait_s=0)
    assert rec.attempts == 2 and rec.quiet is True and rec.cpu_busy_before == 0.0
    assert rec.speedup == pytest.approx(2.0)  # the second (quiet) comparison's, not the first's 3.0


def test_speedup_parity_failure_is_an_error_record_without_timing(fake_backend, monkeypatch):
    fake_backend["offset"] = 1.0
    monkeypatch.setattr(latency, "time_interleaved", lambda *a, **k: pytest.fail("timed despite failed parity"))
    rec = latency.measure_speedup("residualdense_bisenet", "ncnn", threads=1, input_size=64)
    assert rec.status.startswith("error: parity") and rec.parity_ok is False
    assert math.isnan(rec.speedup) and rec.rounds == latency.DEFAULT_ROUNDS and rec.quiet is None
    assert rec.attempts == 0
    rows = run_job(Job.make("speedup", "residualdense_bisenet", backend="ncnn", threads=1, input_size=64))
    assert rows[0]["status"].startswith("error: parity") and rows[0]["backend"] == "ncnn"


@pytest.mark.parametrize("kw, message", [(dict(other="torch"), "two different backends"),
                                         (dict(other="tensorrt"), "unknown backend"),
                                         (dict(rounds=2), "at least 3 rounds"),
                                         (dict(threads=0), "threads=0")])
def test_speedup_rejects_bad_settings(kw, message):
    with pytest.raises(ValueError, match=message):
        latency.measure_speedup("residualdense_bisenet", **{"other": "ncnn", **kw})


@pytest.mark.timing
@needs_ncnn
def test_speedup_job_real_run_structure():
    """Real PyTorch and ncnn, a short comparison: the structure, not the timings, is checked."""
    rows = run_job(Job.make("speedup", "residualdense_bisenet", backend="ncnn", threads=1, input_size=64,
                            rounds=3, loops=2, warmup=1))
    row = rows[0]
    assert row["status"] == "ok", row.get("traceback", row["status"])
    assert row["parity_ok"] is True and row["rounds"] == 3 and len(row["round_speedups"].split()) == 3
    assert row["speedup_min"] <= row["speedup"] <= row["speedup_max"] and row["speedup"] > 0
    assert row["base_ms_median"] > 0 and row["other_ms_median"] > 0


def test_cli_speedup_needs_three_rounds(capsys):
    assert run_bench.main(["speedup", "--arch", "seg_matting", "--rounds", "2"]) == 2
    assert "at least 3 rounds" in capsys.readouterr().err


def test_cli_speedup_json(fake_backend, monkeypatch, capsys):
    monkeypatch.setattr(latency, "time_interleaved", lambda fns, r, l, w: {
        n: [summarize([2.0 if n == "torch" else 1.0])] * r for n in fns})
    assert run_bench.main(["speedup", "--arch", "residualdense_bisenet", "--threads", "1", "--size", "64",
                           "--rounds", "3", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["speedup"], row["rounds"], row["other_backend"], row["status"]) == (2.0, 3, "ncnn", "ok")


@pytest.mark.parametrize("name", ["sinet", "extremec3", "mediapipe_selfie", "pphumanseg_lite"])
def test_cli_latency_takes_any_registered_name(name, fake_backend, capsys):
    """Designs and peers alike, on the model's reference backend by default (timing faked here)."""
    from bench.models.sources import get_source
    source = get_source(name)
    assert run_bench.main(["latency", "--arch", name, "--threads", "1", "--loops", "5", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["arch"] == name and row["status"] == "ok" and row["backend"] == source.spec.backends[0]
    assert row["latency_ms_median"] == 4.0


def test_cli_latency_of_a_file_peer_on_ncnn_checks_parity_first(fake_backend, capsys):
    assert run_bench.main(["latency", "--arch", "pphumanseg_lite", "--backend", "ncnn", "--threads", "1",
                           "--loops", "5", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["backend"] == "ncnn" and row["parity_ok"] is True and row["parity_reference"] == "onnxruntime"


@pytest.mark.parametrize("name", ["sinet", "extremec3"])
def test_cli_speedup_of_a_torch_peer(name, fake_backend, monkeypatch, capsys):
    monkeypatch.setattr(latency, "time_interleaved", lambda fns, r, l, w: {
        n: [summarize([2.0 if n == "torch" else 1.0])] * r for n in fns})
    assert run_bench.main(["speedup", "--arch", name, "--threads", "1", "--rounds", "3", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["arch"] == name and row["speedup"] == pytest.approx(2.0)


def test_speedup_of_a_model_file_without_pytorch_is_a_usage_error_and_a_skipped_job(capsys):
    assert run_bench.main(["speedup", "--arch", "mediapipe_selfie", "--threads", "1"]) == 2  # before measuring
    assert "speedup needs a model in PyTorch; mediapipe_selfie is a published model file" in capsys.readouterr().err
    from bench.run.jobs import Job, run_job
    [row] = run_job(Job.make("speedup", "mediapipe_selfie", threads=1))  # a sweep's job: a stated skip
    assert row["status"].startswith("skipped: mediapipe_selfie is a published litert file with no PyTorch model")
