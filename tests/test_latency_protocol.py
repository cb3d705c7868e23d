"""Latency protocol: statistics, the timing loop (a fake clock), the quiet wait and the thread
hand-off check. Nothing here asserts on a measured time.

(Split by topic from the one latency test module; shared stand-ins are in helpers.py.)
"""
from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest
import torch

import bench.backends as backends
import bench.measure.latency as latency
import bench.run.adapters  # noqa: F401  registers the latency measurement
from bench.run.jobs import Job, run_job
from bench.measure.latency import CalibRecord, default_thread_counts, summarize, time_callable

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
    from bench.run import progress

    probes, said = [], []
    monkeypatch.setattr(latency, "load_avg", lambda: 2.0 * (os.cpu_count() or 1))  # saturated a minute
    monkeypatch.setattr(latency, "cpu_busy_fraction", lambda s: probes.append(s) or 0.9)
    monkeypatch.setattr(latency, "cpu_other_share", lambda a, b: 0.9)
    t0 = time.monotonic()
    with progress.listening(said.append):
        best, n = latency.quiet_attempts(lambda: "timed", threads=1, attempts=3, quiet_wait_s=30.0)
    assert time.monotonic() - t0 < 5.0  # not 3 x 30 s of waiting
    assert (n, len(probes), best.stats, best.quiet(), best.waited_out) == (1, 1, "timed", False, True)
    assert any("machine busy" in m and "measuring anyway" in m for m in said)


def test_quiet_wait_says_what_it_waits_for(monkeypatch):
    from bench.run import progress

    shares, said = iter([0.4, 0.3, 0.01]), []
    with progress.listening(said.append):
        got = latency.wait_for_quiet(60.0, probe=lambda s: next(shares))
    assert got == 0.01
    assert len(said) == 2 and "other processes use 40%" in said[0] and "at most 5%" in said[0]


def test_a_fresh_process_job_reaches_the_parents_progress_line():
    from bench.run import progress
    from bench.run.jobs import Job, execute
    import tests.cluster_jobs  # noqa: F401  registers _status_talker

    said = []
    with progress.listening(said.append):
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
    from bench.run import progress

    probes, said = [], []
    monkeypatch.setattr(latency, "load_avg", lambda: 0.1)
    monkeypatch.setattr(latency, "cpu_busy_fraction", lambda s: 0.0)
    monkeypatch.setattr(latency, "cpu_other_share", lambda a, b: 0.0)
    monkeypatch.setattr(latency, "handoff_ratio", lambda t: probes.append(t) or 2.3)
    with progress.listening(said.append):
        best, n = latency.quiet_attempts(lambda: "timed", threads=2, attempts=3, handoff_wait_s=0.01)
    assert (n, best.stats, best.quiet(), best.waited_out, best.handoff_before) == (1, "timed", False, True, 2.3)
    assert any("do not share a cache" in m and "measuring once" in m for m in said)
    assert 2 <= len(probes) <= 3  # one wait (one or two probes) and the probe after; three attempts make 6+
    # a hand-off that recovers within the wait is a quiet attempt, measured once as before
    ratios = iter([2.3, 1.1, 1.2])
    monkeypatch.setattr(latency, "handoff_ratio", lambda t: next(ratios))
    monkeypatch.setattr(latency.time, "sleep", lambda s: None)
    best, n = latency.quiet_attempts(lambda: "timed", threads=2, attempts=3, handoff_wait_s=60.0)
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
