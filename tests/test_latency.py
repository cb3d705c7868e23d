"""Latency protocol logic: statistics, timing loop, parity check, conversion cache, error rows.

Deterministic: nothing here asserts on a measured time. The timing loop is driven by a fake clock;
measure_latency is run with stand-in runners, calibration and timing where the point is the
record's arithmetic. Real pnnx / ncnn conversions use tiny modules (a few seconds in all).
Latency itself is measured by ``run_bench.py latency`` and tests/benchmarks (docs/latency.md).
(Over 600 lines: one test module per measurement module, and bench/measure/latency.py holds the
whole protocol; its sections follow that module's.)
"""
from __future__ import annotations

import gc
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import bench.backends as backends
import bench.measure.latency as latency
import bench.measurements  # noqa: F401  registers the latency measurement
import run_bench
from archs import LOGITS, SEG_ALPHA, list_archs
from bench.backends import (ParityRecord, Runner, check_parity, conversion_key, read_param_io,
                            state_dict_digest)
from bench.cache import fill_once
from bench.jobs import Job, run_job
from bench.measure.latency import CalibRecord, default_thread_counts, summarize, time_callable
from bench.plan import PlanOptions, latency_jobs

HAVE_NCNN = backends.backend_missing("ncnn") is None
needs_ncnn = pytest.mark.skipif(not HAVE_NCNN, reason="ncnn / pnnx not installed")


# ----------------------------------------------------------------------------- statistics

def test_summarize_known_values():
    st = summarize([float(v) for v in range(1, 11)], warmup=3)
    assert (st.n_loops, st.warmup) == (10, 3)
    assert st.latency_ms_min == 1.0 and st.latency_ms_max == 10.0
    assert st.latency_ms_median == 5.5 and st.latency_ms_mean == 5.5
    assert st.latency_ms_p10 == pytest.approx(1.9) and st.latency_ms_p90 == pytest.approx(9.1)
    assert st.latency_ms_std == pytest.approx(3.0276503540974917)
    assert st.latency_cv == pytest.approx(3.0276503540974917 / 5.5)
    assert st.latency_cv_robust == pytest.approx(1.4826 * 2.5 / 5.5)


def test_summarize_constant_and_single_samples_have_zero_cv():
    assert summarize([4.0] * 30).latency_cv == 0.0
    one = summarize([2.0])
    assert one.latency_ms_median == 2.0 and one.latency_cv == 0.0 and one.latency_ms_std == 0.0


def test_summarize_robust_cv_ignores_one_outlier():
    st = summarize([10.0] * 29 + [100.0])
    assert st.latency_ms_median == 10.0
    assert st.latency_cv > 0.5 and st.latency_cv_robust == 0.0


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [1.0, -1.0], [float("inf")]])
def test_summarize_rejects_bad_samples(bad):
    with pytest.raises(ValueError):
        summarize(bad)


class FakeClock:
    """perf_counter_ns stand-in: iteration i (0-based) lasts (i + 1) ms."""

    def __init__(self):
        self.t, self.calls = 0, 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls % 2 == 0:  # end of an iteration
            self.t += (self.calls // 2) * 1_000_000
        return self.t


def test_time_callable_warmup_loops_and_samples():
    calls = []
    clock = FakeClock()
    st = time_callable(lambda: calls.append(1), warmup=4, loops=6, clock=clock, warmup_min_s=0)
    assert len(calls) == 10 and clock.calls == 12  # warm-up untimed, two clock reads per timed loop
    assert st.samples_ms == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    assert st.n_loops == 6 and st.warmup == 4 and st.latency_ms_median == 3.5


def test_time_callable_disables_gc_while_timing_and_restores_it():
    seen = []
    assert gc.isenabled()
    time_callable(lambda: seen.append(gc.isenabled()), warmup=2, loops=3, warmup_min_s=0)
    assert seen == [True, True, False, False, False]
    assert gc.isenabled()


def test_time_callable_warmup_lasts_at_least_the_minimum_time():
    ticks = iter(range(0, 10**9, 1_000_000))  # every clock read is 1 ms after the previous one
    calls = []
    st = time_callable(lambda: calls.append(1), warmup=1, loops=2, clock=lambda: next(ticks),
                       warmup_min_s=0.004)
    # 1 counted warm-up run, then runs while the clock shows < 4 ms since the start: 3 more
    assert st.warmup == 4 and len(calls) == 6 and st.samples_ms == (1.0, 1.0)


@pytest.mark.parametrize("warmup, loops, min_s", [(0, 0, 0.0), (-1, 5, 0.0), (1, 5, -1.0)])
def test_time_callable_rejects_bad_counts(warmup, loops, min_s):
    with pytest.raises(ValueError):
        time_callable(lambda: None, warmup, loops, warmup_min_s=min_s)


@pytest.mark.parametrize("cores, expected", [(1, (1,)), (2, (1, 2)), (6, (1, 2, 4, 6)), (8, (1, 2, 4, 8))])
def test_default_thread_counts(cores, expected):
    assert default_thread_counts(cores) == expected


def test_cpu_busy_fraction_is_a_share_or_unknown():
    busy = latency.cpu_busy_fraction(0.05)
    assert busy is None or 0.0 <= busy <= 1.0


def test_cpu_other_share_subtracts_own_cpu_time():
    # 2 cores x 1 s = 2 s of CPU time; 1.5 s busy, of which 1.2 s were this process's
    assert latency.cpu_other_share((10.0, 4.0, 1.0), (12.0, 5.5, 2.2)) == pytest.approx(0.15)
    assert latency.cpu_other_share((10.0, 4.0, 1.0), (12.0, 5.0, 3.0)) == 0.0  # clamped
    assert latency.cpu_other_share(None, (12.0, 5.0, 3.0)) is None
    assert latency.cpu_other_share((10.0, 4.0, 1.0), (10.0, 4.0, 1.0)) is None


def _attempt(busy, during, median=1.0):
    return latency.Attempt(summarize([median] * 5), None, busy, during)


def test_least_disturbed_stops_at_the_first_quiet_attempt():
    seq = iter([_attempt(0.5, 0.0, 9.0), _attempt(0.0, 0.01, 2.0), _attempt(0.0, 0.0, 3.0)])
    best, n = latency.least_disturbed(lambda: next(seq), attempts=3)
    assert n == 2 and best.stats.latency_ms_median == 2.0 and best.quiet() is True


def test_least_disturbed_keeps_the_least_disturbed_when_none_is_quiet():
    seq = iter([_attempt(0.3, 0.2, 9.0), _attempt(0.0, 0.1, 4.0), _attempt(0.6, 0.0, 7.0)])
    best, n = latency.least_disturbed(lambda: next(seq), attempts=3)
    assert n == 3 and best.stats.latency_ms_median == 4.0 and best.quiet() is False
    with pytest.raises(ValueError):
        latency.least_disturbed(lambda: _attempt(0, 0), attempts=0)


def test_a_disturbed_attempt_after_a_wait_that_found_no_quiet_is_not_redone():
    # busy through the whole wait: a redo would wait and be disturbed again; the run goes on
    busy = latency.Attempt(summarize([5.0] * 5), None, 0.8, 0.7, waited_out=True)
    calls = []
    best, n = latency.least_disturbed(lambda: calls.append(1) or busy, attempts=3)
    assert (n, len(calls), best.quiet()) == (1, 1, False)


def test_gate_on_a_saturated_machine_probes_once_measures_once_and_says_so(monkeypatch):
    from bench import status

    probes, said = [], []
    monkeypatch.setattr(latency, "load_avg", lambda: 2.0 * (os.cpu_count() or 1))  # saturated a minute
    monkeypatch.setattr(latency, "cpu_busy_fraction", lambda s: probes.append(s) or 0.9)
    monkeypatch.setattr(latency, "cpu_other_share", lambda a, b: 0.9)
    t0 = time.monotonic()
    with status.listening(said.append):
        best, n = latency.gated_attempts(lambda: "timed", threads=1, attempts=3, quiet_wait_s=30.0)
    assert time.monotonic() - t0 < 5.0  # not 3 x 30 s of waiting
    assert (n, len(probes), best.stats, best.quiet(), best.waited_out) == (1, 1, "timed", False, True)
    assert any("machine busy" in m and "measuring anyway" in m for m in said)


def test_quiet_wait_says_what_it_waits_for(monkeypatch):
    from bench import status

    shares, said = iter([0.4, 0.3, 0.01]), []
    with status.listening(said.append):
        got = latency.wait_for_quiet(60.0, probe=lambda s: next(shares))
    assert got == 0.01
    assert len(said) == 2 and "other processes use 40%" in said[0] and "at most 5%" in said[0]


def test_a_fresh_process_job_reaches_the_parents_progress_line():
    from bench import status
    from bench.jobs import Job, execute
    import tests.cluster_jobs  # noqa: F401  registers _status_talker

    said = []
    with status.listening(said.append):
        [(job, rows)] = list(execute([Job.make("_status_talker", "esp_dense_seg")]))
        deadline = time.monotonic() + 5
        while not said and time.monotonic() < deadline:
            time.sleep(0.05)
    assert rows[0]["status"] == "ok" and rows[0]["pid"] != os.getpid()
    assert said == [f"talking from {rows[0]['pid']}"]


def test_unknown_disturbance_counts_as_quiet_enough():
    calls = []
    best, n = latency.least_disturbed(lambda: calls.append(1) or _attempt(None, None), attempts=3)
    assert n == 1 and best.quiet() is None


def test_handoff_ratio_above_its_limit_disturbs_an_otherwise_quiet_attempt():
    def attempt(before, after, median, busy=0.0):
        return latency.Attempt(summarize([median] * 5), None, busy, 0.0, before, after)
    split = attempt(2.3, 2.2, 12.6)
    assert split.quiet() is False and split.disturbance() == pytest.approx(2.3 / latency.MAX_HANDOFF_RATIO)
    assert attempt(1.1, 2.2, 12.0).quiet() is False  # the placement changed during the timed loop
    assert attempt(1.1, 1.2, 4.8).quiet() is True
    assert attempt(1.1, 1.2, 4.8, busy=0.5).quiet() is False  # the CPU-share check still applies
    assert attempt(None, None, 4.8).quiet() is True  # 1 thread: no hand-off probe
    seq = iter([split, attempt(1.8, 1.7, 9.0), attempt(1.1, 1.2, 4.8)])
    best, n = latency.least_disturbed(lambda: next(seq), attempts=3)
    assert n == 3 and best.stats.latency_ms_median == 4.8
    seq = iter([split, attempt(1.8, 1.7, 9.0)])
    best, n = latency.least_disturbed(lambda: next(seq), attempts=2)
    assert n == 2 and best.stats.latency_ms_median == 9.0 and best.quiet() is False


def test_gate_measures_once_when_the_threads_stay_apart_through_the_wait(monkeypatch):
    """A host that keeps the two vCPUs apart for longer than the hand-off wait: one wait, one
    attempt, marked not quiet (not three attempts of a full wait each); a quiet CPU otherwise."""
    from bench import status

    probes, said = [], []
    monkeypatch.setattr(latency, "load_avg", lambda: 0.1)
    monkeypatch.setattr(latency, "cpu_busy_fraction", lambda s: 0.0)
    monkeypatch.setattr(latency, "cpu_other_share", lambda a, b: 0.0)
    monkeypatch.setattr(latency, "handoff_ratio", lambda t: probes.append(t) or 2.3)
    with status.listening(said.append):
        best, n = latency.gated_attempts(lambda: "timed", threads=2, attempts=3, handoff_wait_s=0.01)
    assert (n, best.stats, best.quiet(), best.waited_out, best.handoff_before) == (1, "timed", False, True, 2.3)
    assert any("do not share a cache" in m and "measuring once" in m for m in said)
    assert 2 <= len(probes) <= 3  # one wait (one or two probes) and the probe after; three attempts make 6+
    # a hand-off that recovers within the wait is a quiet attempt, measured once as before
    ratios = iter([2.3, 1.1, 1.2])
    monkeypatch.setattr(latency, "handoff_ratio", lambda t: next(ratios))
    monkeypatch.setattr(latency.time, "sleep", lambda s: None)
    best, n = latency.gated_attempts(lambda: "timed", threads=2, attempts=3, handoff_wait_s=60.0)
    assert (n, best.quiet(), best.waited_out) == (1, True, False)


def test_wait_for_handoff_waits_for_cooperating_threads_or_gives_up():
    ratios = iter([2.3, 2.2, 1.1, 2.4])
    asked = []
    assert latency.wait_for_handoff(2, 60, pause_s=0, probe=lambda t: asked.append(t) or next(ratios)) == 1.1
    assert asked == [2, 2, 2]
    assert latency.wait_for_handoff(2, 0, probe=lambda t: 2.3) == 2.3  # at least one probe, then gives up
    assert latency.wait_for_handoff(1, 60, probe=latency.handoff_ratio) is None


def test_handoff_ratio_is_a_positive_ratio_above_one_thread():
    assert latency.handoff_ratio(1) is None
    before = torch.get_num_threads()
    r = latency.handoff_ratio(2, elems=1 << 12, steps=20)
    assert isinstance(r, float) and r > 0
    assert torch.get_num_threads() == before  # the thread count is restored


def test_steady_malloc_stops_page_faults_from_repeated_large_buffers():
    """After steady_malloc, a 16 MiB buffer allocated, written and freed again and again is served
    from memory malloc keeps (no fresh pages per iteration)."""
    import platform
    import resource
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    assert latency.steady_malloc() == "glibc mmap_threshold=32MiB trim_threshold=64MiB"
    faults = []
    for _ in range(8):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.empty(4 << 20).fill_(1.0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    # the first iterations may fault pages in while the heap grows; then 16 MiB (4,096 pages) are reused
    assert np.median(faults[3:]) < 256, faults


def test_protocol_string_names_the_handoff_check_only_for_several_threads():
    assert "handoff<=" not in latency.protocol_string(10, 30, 1, 256)
    assert f"handoff<={latency.MAX_HANDOFF_RATIO:g}" in latency.protocol_string(10, 30, 2, 256)
    assert "wasted<=60s/600s" in latency.protocol_string(10, 30, 2, 256)  # the wait budget across jobs


def test_wait_for_quiet_returns_at_the_first_quiet_probe_or_times_out():
    shares = iter([0.9, 0.5, 0.02, 0.9])
    assert latency.wait_for_quiet(60, probe=lambda s: next(shares)) == 0.02
    assert latency.wait_for_quiet(0, probe=lambda s: 0.9) == 0.9  # at least one probe, then gives up
    assert latency.wait_for_quiet(60, probe=lambda s: None) is None


def test_torch_threads_restored():
    before = torch.get_num_threads()
    with backends.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


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


# ----------------------------------------------------------------------------- cache keys and cache

class Tiny(nn.Module):
    def __init__(self, two_outputs: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Conv2d(4, 1, 1)
        self.two_outputs = two_outputs

    def forward(self, x):
        y = self.head(torch.relu(self.bn(self.conv(x))))
        return (y, torch.sigmoid(y)) if self.two_outputs else y


def _tiny(seed=0, two_outputs=False) -> nn.Module:
    torch.manual_seed(seed)
    m = Tiny(two_outputs).eval()
    with torch.no_grad():  # non-trivial BN statistics
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
    return m


def test_state_dict_digest_sees_parameters_and_buffers():
    a, b = _tiny(), _tiny()
    assert state_dict_digest(a) == state_dict_digest(b)
    with torch.no_grad():
        b.conv.weight[0, 0, 0, 0] += 1e-6
    assert state_dict_digest(a) != state_dict_digest(b)
    c = _tiny()
    with torch.no_grad():
        c.bn.running_var[0] += 1e-3
    assert state_dict_digest(a) != state_dict_digest(c)


def test_conversion_key_changes_with_each_input():
    base = dict(weights_digest="ab", arch="x", input_size=256, converter="pnnx", converter_version="1",
                options={"fp16": False})
    k = conversion_key(**base)
    assert k == conversion_key(**base) and len(k) == 64
    for change in [dict(weights_digest="ac"), dict(arch="y"), dict(input_size=128),
                   dict(converter_version="2"), dict(options={"fp16": True}), dict(converter="torch.onnx")]:
        assert conversion_key(**{**base, **change}) != k, change


def test_cache_builds_once_and_leaves_nothing_on_failure(tmp_path):
    calls = []

    def build(tmp: Path) -> dict:
        calls.append(tmp)
        (tmp / "model.bin").write_bytes(b"x")
        return {"n": len(calls)}

    folder = tmp_path / "ncnn" / "key1"
    assert fill_once(folder, build) == {"n": 1}
    assert fill_once(folder, build) == {"n": 1} and len(calls) == 1
    assert (folder / "model.bin").is_file() and not calls[0].exists()  # built in a temp folder

    def broken(tmp: Path) -> dict:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("converter crashed")

    with pytest.raises(RuntimeError):
        fill_once(tmp_path / "ncnn" / "key2", broken)
    assert sorted(p.name for p in (tmp_path / "ncnn").iterdir()) == ["key1"]


def test_read_param_io(tmp_path):
    param = tmp_path / "m.param"
    param.write_text("7767517\n5 6\nInput in0 0 1 in0\nSplit s 1 2 in0 a b\n"
                     "Convolution c1 1 1 a out10 0=1\nConvolution c2 1 1 b c 0=1\nSigmoid s2 1 1 c out2\n")
    assert read_param_io(param) == (("in0",), ("out2", "out10"))
    bad = tmp_path / "bad.param"
    bad.write_text("hello\n")
    with pytest.raises(backends.ConversionError):
        read_param_io(bad)


@needs_ncnn
@pytest.mark.parametrize("two_outputs", [False, True])
def test_ncnn_conversion_is_cached_runs_and_matches_torch(tmp_path, monkeypatch, two_outputs):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    model = _tiny(two_outputs=two_outputs)
    nm = backends.convert_module_to_ncnn(model, "tiny", 32, cache_dir=tmp_path / "cache")
    folder = Path(nm.param_path).parent
    assert folder.parent == tmp_path / "cache" / "ncnn" and Path(nm.bin_path).is_file()
    assert list(cwd.iterdir()) == []  # pnnx's side files stay in the cache folder
    assert nm.in_names == ("in0",) and nm.out_names == (("out0", "out1") if two_outputs else ("out0",))
    assert nm.pnnx_version == backends.package_version("pnnx") and nm.bin_size_mb > 0
    assert json.loads((folder / "meta.json").read_text())["cache_key"] == nm.cache_key

    def no_converter(*a, **k):
        raise AssertionError("pnnx ran again although the conversion is cached")
    monkeypatch.setattr(backends.convert.subprocess, "run", no_converter)
    assert backends.convert_module_to_ncnn(model, "tiny", 32, cache_dir=tmp_path / "cache") == nm

    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)).numpy()
    with backends.TorchRunner(model, 1) as tr, backends.NcnnRunner(nm, 1) as nr:
        p = check_parity(tr.infer(x), nr.infer(x), SEG_ALPHA if two_outputs else LOGITS)
        # a float64 input is converted to a float32 copy that ncnn's Mat points into without owning
        # it: the bound callable must keep that copy alive (else ncnn reads freed memory)
        run = nr.bind(x.astype(np.float64))
        gc.collect()
        _ = [np.full((3, 32, 32), 1e6, np.float32) for _ in range(64)]  # reuse freed memory if any
        got, want = np.array(run()[0][1]), nr.infer(x)[0][0]
    assert p.ok, p.reason
    np.testing.assert_allclose(got, want, atol=1e-5)


@needs_ncnn
def test_ncnn_conversion_key_depends_on_weights_and_size(tmp_path):
    a = backends.convert_module_to_ncnn(_tiny(0), "tiny", 32, cache_dir=tmp_path)
    b = backends.convert_module_to_ncnn(_tiny(1), "tiny", 32, cache_dir=tmp_path)
    c = backends.convert_module_to_ncnn(_tiny(0), "tiny", 64, cache_dir=tmp_path)
    assert len({a.cache_key, b.cache_key, c.cache_key}) == 3


def test_time_by_type_groups_and_sorts():
    lts = [backends.LayerTime(0, "a", "Convolution", 2.0), backends.LayerTime(1, "b", "ReLU", 0.5),
           backends.LayerTime(2, "c", "Convolution", 1.0)]
    assert backends.time_by_type(lts) == [("Convolution", 3.0, 2), ("ReLU", 0.5, 1)]


@needs_ncnn
def test_ncnn_layer_times_cover_every_layer(tmp_path):
    nm = backends.convert_module_to_ncnn(_tiny(), "tiny", 32, cache_dir=tmp_path)
    x = np.zeros((1, 3, 32, 32), np.float32)
    lts = backends.ncnn_layer_times(nm, x, threads=1, repeats=2)
    names = [parts[1] for parts in (ln.split() for ln in Path(nm.param_path).read_text().splitlines()[2:])
             if parts and parts[0] != "Input"]
    assert [lt.name for lt in lts] == names and all(lt.ms >= 0 for lt in lts)
    assert lts[-1].out_shape == "1x32x32"


# ----------------------------------------------------------------------------- records and rows

class FakeRunner(Runner):
    """Stand-in backend: returns the reference outputs plus ``offset``."""

    def __init__(self, backend, model, offset):
        self.backend, self.model, self.offset, self.threads = backend, model, offset, 1
        self.options, self.converter, self.model_size_mb = "fake", "fake 1", 0.5

    def infer(self, x):
        with torch.inference_mode():
            out = self.model(torch.from_numpy(x))
        out = out if isinstance(out, tuple) else (out,)
        return tuple(o.numpy() + self.offset for o in out)

    def bind(self, x):
        return lambda: None


FIXED_STATS = summarize([2.0, 4.0, 4.0, 4.0, 6.0])
FIXED_CALIB = CalibRecord("gemm fake", 1.0, 1, 8.0, 7.5, 0.01, 125.0)


@pytest.fixture
def fake_backend(monkeypatch):
    """measure_latency with the real torch reference, a fake other backend, fixed timing/calibration."""
    real_open = latency.open_runner
    state = {"offset": 0.0, "timed": 0}

    def open_runner(backend, model, arch, input_size, threads, **kw):
        if backend == "torch":
            return real_open(backend, model, arch, input_size, threads)
        return FakeRunner(backend, model, state["offset"])

    def timed(fn, warmup, loops, **kw):
        state["timed"] += 1
        return FIXED_STATS

    monkeypatch.setattr(latency, "open_runner", open_runner)
    monkeypatch.setattr(latency, "time_callable", timed)
    monkeypatch.setattr(latency, "measure_calibration", lambda threads: FIXED_CALIB)
    monkeypatch.setattr(latency, "cpu_busy_fraction", lambda *a: 0.0)  # a quiet machine
    monkeypatch.setattr(latency, "_cpu_times", lambda: None)
    monkeypatch.setattr(backends, "backend_missing", lambda b: None)
    return state


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
    import bench.jobs as jobs
    monkeypatch.setattr(jobs, "run_in_fresh_process",
                        lambda job: [{"status": "skipped: ncnn backend needs the ncnn package(s)"}])
    rows = run_job(Job.make("latency_repeat", "residualdense_bisenet", backend="ncnn", runs=3))
    assert rows[0]["status"] == "skipped: ncnn backend needs the ncnn package(s)"


def test_fresh_process_returns_the_jobs_rows():
    from bench.jobs import run_in_fresh_process
    rows = run_in_fresh_process(Job.make("no_such_measurement", "x"))
    assert rows[0]["status"].startswith("error") and "unknown measurement" in rows[0]["status"]


def test_cli_latency_repeat_needs_two_runs(capsys):
    assert run_bench.main(["latency", "--arch", "seg_matting", "--repeat", "1"]) == 2
    assert "at least 2 runs" in capsys.readouterr().err


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
    """A peer's row (its own runtime) goes through the same quiet gate, calibration and statistics
    as a design's, so the two can share one table."""
    from bench import peers
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


# ----------------------------------------------------------------------------- interleaved comparison

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
    from bench.sources import get_source
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
    from bench.jobs import Job, run_job
    [row] = run_job(Job.make("speedup", "mediapipe_selfie", threads=1))  # a sweep's job: a stated skip
    assert row["status"].startswith("skipped: mediapipe_selfie is a published litert file with no PyTorch model")
