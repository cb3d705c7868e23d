"""Latency on this CPU: the timing protocol, a calibration workload and per-design measurements.

Longer than 600 lines because the protocol (quiet wait, calibration, hand-off check, steady malloc,
interleaving) and the records it fills are one piece; splitting the records out, and measuring a file
model through the same function instead of ``bench.models.peers.measure_peer_latency``, is what issue 18 left.

Protocol (the ``protocol`` field of every row, printed first by the command line as benchncnn does):

- batch 1, fp32, one fixed real input (the first image of ``shared/data/hsd`` resized to the input
  size with the design's preprocessing), the model loaded and converted before timing starts;
- untimed warm-up: ``warmup`` iterations (default 10) and at least ``DEFAULT_WARMUP_MIN_S`` (0.5 s),
  then ``loops`` timed iterations (default 30), each timed on its own with ``time.perf_counter_ns``,
  Python's garbage collector off while timing;
- statistics over the timed iterations: min, p10, median, p90, max, mean, coefficient of variation
  (std / mean, ``latency_cv``) and a robust one (1.4826 MAD / median, ``latency_cv_robust``);
- threads set explicitly (torch ``set_num_threads``, restored afterwards; ncnn ``opt.num_threads``;
  onnxruntime ``intra_op_num_threads``, one inter-op thread);
- before a non-torch backend is timed its outputs are compared with PyTorch's on the same input
  (:func:`bench.backends.check_parity`); a failure gives ``status = "error: parity ..."`` and no
  latency (the latency fields are NaN);
- a calibration workload (fp32 GEMM 1024 x 1024 x 1024 with ``torch.mm``, 1.07 GMAC) is timed in the
  same job at the same thread count right before the design, giving ``calib_ms_median``, the
  machine's ``peak_gmacs_per_s`` and ``latency_ratio_to_calib = latency_ms_median / calib_ms_median``
  (comparable across machines and across loads that slow both alike); ``achieved_gmacs_per_s`` is
  the design's MACs over its median latency, ``fraction_of_peak`` their ratio.
  The design's MACs at input size S are the spec's reference MACs scaled by (S / ref size)^2 (every
  design is fully convolutional, so its cost is proportional to the pixel count).
- quiet wait (a shared machine): before an attempt, the share of the machine's CPU time used by
  other processes is probed in 0.5 s windows until it is at most 5% (``MAX_OTHER_CPU``) or 10 s
  have passed (one probe only when the 1-minute load average already reaches the CPU count: the
  machine has been saturated for a minute and waiting would only make the run last); the same
  share is measured over the warm-up and timed loop (busy time from ``/proc/stat`` minus this
  process's own CPU time). A disturbed attempt (either share above 5%) is redone, up to 3 attempts,
  and the least disturbed one is reported -- but only when the machine was quiet before it (a
  passing disturbance): after a wait that ended with the machine still busy there is one attempt.
  So a timing job on a busy machine costs at most one wait and one attempt, and the run ends.
  ``cpu_busy_before``, ``cpu_other_during``, ``quiet`` and ``attempts`` say how it went; what the
  quiet wait is waiting for is on the progress line (:mod:`bench.run.progress`). A row with ``quiet = False`` is
  not a quiet-machine number (on 2 cores, one busy core makes 2-thread timings meaningless).
- hand-off check (threads > 1): a virtual machine's vCPUs can be placed by the host on cores that
  share no cache, for tens of seconds at a time; then every layer's hand-over of data between
  threads goes through memory and a network runs 2-3x slower on 2 threads than on 1, with nothing
  visible inside the guest. :func:`handoff_ratio` times a kernel whose every step reads what the
  other threads wrote in the step before, at N threads over 1 thread (about 1.1 when the threads
  share a cache, 2.2-2.4 when they do not, on the 2-vCPU machine this was built on). Before a
  multi-thread attempt the suite waits up to 30 s for a ratio of at most 1.6 and probes again after
  the timed loop; an attempt where either probe is above 1.6 is disturbed like a busy one
  (``handoff_ratio_before``, ``handoff_ratio_after``), and one whose wait ended with the threads
  still not cooperating is not redone (as after a busy wait: on a host that keeps the vCPUs apart,
  three attempts of 30 s waits each would only make the run last). The wait has a budget across
  jobs (:mod:`bench.measure.handoff`; every timing job is a fresh process): once 60 s of hand-off
  waiting in the last 10 minutes on this machine ended in attempts whose hand-off check failed,
  the wait stops (one probe, and a probe above the limit means one attempt) until those
  waits age out; waits that were followed by cooperating threads do not count.
- allocator: glibc's malloc is put into its long-running steady state first (:func:`steady_malloc`,
  the ``malloc`` field), so that a PyTorch latency does not depend on what the process did before.

Everything here returns frozen records; nothing is printed and no file is written except the
conversion cache of :mod:`bench.backends` and the hand-off history of :mod:`bench.measure.handoff`.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np
import torch

from archs import get_spec

from ..run import progress
from ..run.status import OK, Status
from ..columns import speedup as speedup_of
from ..backends import (BACKENDS, DEFAULT_NCNN_OPTIONS, DEFAULT_PNNX_FP16, NcnnOptions, ParityRecord,
                        backend_versions, check_parity, open_runner, torch_threads)
from . import handoff
from .handoff import HandoffHistory

DEFAULT_WARMUP = 10
DEFAULT_LOOPS = 30
DEFAULT_WARMUP_MIN_S = 0.5  # warm-up also lasts at least this long (caches, allocator, CPU clock)
MIN_LOOPS = 5  # fewer timed iterations make percentiles meaningless
CALIB_N = 1024  # calibration GEMM side
CALIB_WARMUP = 3
CALIB_LOOPS = 20
PROTOCOL_VERSION = 2
MAX_OTHER_CPU = 0.05  # a timed attempt is quiet when other processes used at most 5% of the machine
DEFAULT_QUIET_WAIT_S = 10.0  # before an attempt, wait up to this long for the machine to be quiet
HANDOFF_ELEMS = 1 << 16  # hand-off probe: float32 elements per step (256 KB, fits a core's L2)
HANDOFF_STEPS = 200  # steps per timed round of the hand-off probe (3 rounds per thread count)
MAX_HANDOFF_RATIO = 1.6  # threads cooperate when the probe at N threads is at most 1.6x its 1-thread time
DEFAULT_HANDOFF_WAIT_S = 30.0  # before a multi-thread attempt, wait up to this long for cooperating threads
DEFAULT_ATTEMPTS = 3  # a disturbed attempt is redone up to this many attempts in all
NAN = float("nan")
# glibc malloc's steady state (see steady_malloc): the ceiling of its dynamic mmap threshold on 64-bit
# systems (4 * 1024 * 1024 * sizeof(long)) and the trim threshold it sets with it (twice that)
GLIBC_MMAP_THRESHOLD = 32 << 20
GLIBC_TRIM_THRESHOLD = 64 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)


# ----------------------------------------------------------------------------- statistics

@dataclass(frozen=True)
class LatencyStats:
    """Statistics of timed iterations, in milliseconds: the fields every latency row carries."""

    latency_ms_min: float
    latency_ms_p10: float
    latency_ms_median: float
    latency_ms_p90: float
    latency_ms_max: float
    latency_ms_mean: float
    latency_cv: float  # std / mean
    latency_cv_robust: float  # 1.4826 * median absolute deviation / median


_STAT_FIELDS = tuple(f.name for f in fields(LatencyStats))


@dataclass(frozen=True)
class TimingStats(LatencyStats):
    n_loops: int
    warmup: int
    latency_ms_std: float  # sample standard deviation (ddof=1)
    samples_ms: tuple[float, ...]  # the timed iterations, in order


def summarize(samples_ms: Sequence[float], warmup: int = 0) -> TimingStats:
    """Statistics of timed iterations (milliseconds). Percentiles interpolate linearly."""
    s = np.asarray(list(samples_ms), dtype=np.float64)
    if s.size == 0:
        raise ValueError("no timed iterations")
    if not np.isfinite(s).all() or (s < 0).any():
        raise ValueError("timings must be finite and non-negative")
    mean = float(s.mean())
    std = float(s.std(ddof=1)) if s.size > 1 else 0.0
    med = float(np.median(s))
    mad = float(np.median(np.abs(s - med)))
    p10, p90 = (float(v) for v in np.percentile(s, [10, 90]))
    return TimingStats(
        n_loops=int(s.size), warmup=int(warmup), latency_ms_min=float(s.min()), latency_ms_p10=p10,
        latency_ms_median=med, latency_ms_p90=p90, latency_ms_max=float(s.max()), latency_ms_mean=mean,
        latency_ms_std=std, latency_cv=std / mean if mean > 0 else 0.0,
        latency_cv_robust=1.4826 * mad / med if med > 0 else 0.0, samples_ms=tuple(float(v) for v in s))


def time_callable(fn: Callable[[], Any], warmup: int = DEFAULT_WARMUP, loops: int = DEFAULT_LOOPS,
                  clock: Callable[[], int] = time.perf_counter_ns,
                  warmup_min_s: float = DEFAULT_WARMUP_MIN_S) -> TimingStats:
    """Run ``fn`` untimed at least ``warmup`` times and for at least ``warmup_min_s`` seconds, then
    ``loops`` times each timed alone (``clock`` in ns). ``TimingStats.warmup`` is the number of
    warm-up iterations run. The garbage collector is off while timing (restored afterwards)."""
    if loops < 1 or warmup < 0 or warmup_min_s < 0:
        raise ValueError(f"need loops >= 1, warmup >= 0 and warmup_min_s >= 0 "
                         f"(got loops={loops}, warmup={warmup}, warmup_min_s={warmup_min_s})")
    for _ in range(warmup):
        fn()
    if warmup_min_s > 0:
        start = clock()
        while clock() - start < warmup_min_s * 1e9:
            fn()
            warmup += 1
    samples = []
    gc_was_on = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(loops):
            t0 = clock()
            fn()
            samples.append((clock() - t0) / 1e6)
    finally:
        if gc_was_on:
            gc.enable()
    return summarize(samples, warmup)


# ----------------------------------------------------------------------------- machine, calibration

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_times() -> Optional[tuple[float, float, float]]:
    """(all cores' time, their busy time, this process's CPU time) in seconds; None off Linux."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return total / hz, (total - idle) / hz, time.process_time()


def cpu_other_share(start: Optional[tuple[float, float, float]],
                    end: Optional[tuple[float, float, float]]) -> Optional[float]:
    """Share of the machine's CPU time between two :func:`_cpu_times` readings that other processes
    used (busy time minus this process's own CPU time, over all cores' time)."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    other = (end[1] - start[1]) - (end[2] - start[2])
    return round(min(1.0, max(0.0, other / (end[0] - start[0]))), 3)


def cpu_busy_fraction(interval_s: float = 0.5) -> Optional[float]:
    """Share of all cores' time used by other processes during ``interval_s`` while this one sleeps
    (Linux ``/proc/stat``; None elsewhere): the noise check before timing."""
    a = _cpu_times()
    time.sleep(interval_s)
    return cpu_other_share(a, _cpu_times())


def default_thread_counts(cpu_count: Optional[int] = None) -> tuple[int, ...]:
    """Thread counts for a scaling sweep: powers of two below the core count, and the core count."""
    n = max(1, int(cpu_count or os.cpu_count() or 1))
    counts = {n}
    t = 1
    while t < n:
        counts.add(t)
        t *= 2
    return tuple(sorted(counts))


@dataclass(frozen=True)
class CalibRecord:
    calib_kernel: str
    calib_macs_g: float
    calib_threads: int
    calib_ms_median: float
    calib_ms_min: float
    calib_cv: float
    peak_gmacs_per_s: float  # calib_macs_g / median time: what this machine sustains on dense fp32 GEMM


def measure_calibration(threads: int, n: int = CALIB_N, warmup: int = CALIB_WARMUP,
                        loops: int = CALIB_LOOPS) -> CalibRecord:
    """Time the calibration kernel: fp32 ``torch.mm`` of two n x n matrices into a preallocated output."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g)
    b = torch.randn(n, n, generator=g)
    c = torch.empty(n, n)
    with torch_threads(threads), torch.inference_mode():
        st = time_callable(lambda: torch.mm(a, b, out=c), warmup, loops, warmup_min_s=0.2)
    macs_g = n ** 3 / 1e9
    return CalibRecord(calib_kernel=f"gemm fp32 {n}x{n}x{n} torch.mm", calib_macs_g=macs_g,
                       calib_threads=int(threads), calib_ms_median=st.latency_ms_median,
                       calib_ms_min=st.latency_ms_min, calib_cv=st.latency_cv,
                       peak_gmacs_per_s=macs_g / st.latency_ms_median * 1e3)


def steady_malloc() -> str:
    """Put glibc's malloc into the state a long-running process reaches, and say so ("" elsewhere).

    glibc raises its mmap and trim thresholds as a process frees large blocks, so the same PyTorch
    inference can page-fault thousands of times per call in a fresh process (buffers mmapped or
    trimmed, then faulted in again) and not at all after earlier jobs freed bigger blocks:
    seg_matting at 256 x 256 on 1 thread ran 20-22 ms with about 2,700 minor faults per inference
    in a fresh process and 16 ms with none after 48 MB had been allocated and freed. Fixing both
    thresholds at the ceiling glibc itself would reach (``mallopt``; this also stops the dynamic
    adjustment) makes a latency independent of what the process did before. ncnn and onnxruntime
    keep their own memory pools and are not affected."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return ""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = (libc.mallopt(_M_MMAP_THRESHOLD, GLIBC_MMAP_THRESHOLD) == 1
              and libc.mallopt(_M_TRIM_THRESHOLD, GLIBC_TRIM_THRESHOLD) == 1)
    except (OSError, AttributeError):
        return ""
    return (f"glibc mmap_threshold={GLIBC_MMAP_THRESHOLD >> 20}MiB trim_threshold={GLIBC_TRIM_THRESHOLD >> 20}MiB"
            if ok else "")


def design_macs_g(arch: str, input_size: int) -> float:
    """GMACs of one inference at ``input_size`` (reference MACs scaled by the pixel count)."""
    spec = get_spec(arch)
    return spec.ref_macs_g * (input_size / spec.ref_macs_size) ** 2


# ----------------------------------------------------------------------------- the measurement

def protocol_string(warmup: int, loops: int, threads: int, input_size: int | tuple[int, int], calib: bool = True,
                    attempts: int = DEFAULT_ATTEMPTS, quiet_wait_s: float = DEFAULT_QUIET_WAIT_S,
                    max_other_cpu: float = MAX_OTHER_CPU) -> str:
    """The protocol in one line (every row carries it); ``input_size``: a side or (height, width)."""
    h, w = input_size if isinstance(input_size, tuple) else (input_size, input_size)
    return (f"latency-protocol v{PROTOCOL_VERSION}: batch=1 fp32 input={h}x{w} "
            f"threads={threads} warmup={warmup}+{DEFAULT_WARMUP_MIN_S:g}s loops={loops} "
            f"clock=perf_counter_ns gc=off stats=min/p10/median/p90/mean/cv "
            f"quiet=other_cpu<={max_other_cpu:g},wait<={quiet_wait_s:g}s,attempts<={attempts}"
            + (f" handoff<={MAX_HANDOFF_RATIO:g},wait<={DEFAULT_HANDOFF_WAIT_S:g}s,"
               f"wasted<={handoff.BUDGET_S:g}s/{handoff.WINDOW_S:g}s" if threads > 1 else "")
            + " malloc=steady"
            + (f" calib=gemm{CALIB_N}" if calib else ""))


@dataclass(frozen=True)
class Attempt:
    """One timed attempt: the design's timings, the calibration next to them, the share of the
    machine other processes used before (``busy_before``) and during (``other_during``) it, and the
    hand-off ratios before and after it (None at 1 thread), with the limits they are judged by."""

    stats: Any  # what was timed: TimingStats (one callable) or the rounds of time_interleaved
    calib: Optional[CalibRecord]
    busy_before: Optional[float]
    other_during: Optional[float]
    handoff_before: Optional[float] = None
    handoff_after: Optional[float] = None
    max_other_cpu: float = MAX_OTHER_CPU
    max_handoff_ratio: float = MAX_HANDOFF_RATIO
    waited_out: bool = False  # the machine stayed busy (or the threads apart) through the whole wait before it

    def _checks(self) -> list[float]:
        """Each measured figure over its limit (> 1: that check failed)."""
        return ([v / self.max_other_cpu for v in (self.busy_before, self.other_during) if v is not None]
                + [v / self.max_handoff_ratio for v in (self.handoff_before, self.handoff_after) if v is not None])

    def disturbance(self) -> float:
        """The worst check relative to its limit (0 when nothing could be measured)."""
        return max(self._checks(), default=0.0)

    def quiet(self) -> Optional[bool]:
        """Every check within its limit; None when nothing could be measured."""
        checks = self._checks()
        return None if not checks else max(checks) <= 1.0


def _wait_until(probe: Callable[[], Optional[float]], ok: Callable[[float], bool], max_wait_s: float,
                pause_s: float = 0.0, on_wait: Optional[Callable[[float, float], None]] = None,
                ) -> Optional[float]:
    """Call ``probe`` until its value is None or ``ok``, or ``max_wait_s`` have passed (at least one
    call; ``pause_s`` of sleep between calls); the last value. ``on_wait(value, seconds_left)`` is
    told each value that makes it wait on."""
    deadline = time.monotonic() + max_wait_s
    while True:
        v = probe()
        left = deadline - time.monotonic()
        if v is None or ok(v) or left <= 0:
            return v
        if on_wait:
            on_wait(v, left)
        time.sleep(pause_s)


def wait_for_quiet(max_wait_s: float, max_other_cpu: float = MAX_OTHER_CPU, probe_s: float = 0.5,
                   probe: Optional[Callable[[float], Optional[float]]] = None) -> Optional[float]:
    """Probe the other processes' CPU share in ``probe_s`` windows until it is at most
    ``max_other_cpu`` or ``max_wait_s`` have passed (at least one probe); the last share measured.
    Says on the progress line (:mod:`bench.run.progress`) what it waits for."""
    probe = probe or cpu_busy_fraction

    def waiting(v: float, left: float) -> None:
        progress.say(f"waiting for a quiet CPU: other processes use {v:.0%} (at most {max_other_cpu:.0%}), "
                   f"{left:.0f} s left, then measuring anyway")

    return _wait_until(lambda: probe(probe_s), lambda v: v <= max_other_cpu, max_wait_s, on_wait=waiting)


def handoff_ratio(threads: int, elems: int = HANDOFF_ELEMS, steps: int = HANDOFF_STEPS) -> Optional[float]:
    """How well ``threads`` threads cooperate right now: the time per step of a kernel whose every
    step reads what the other threads wrote in the step before (``torch.add`` into a buffer, then
    ``torch.index_select`` of it in reverse order, both split over the threads) at ``threads``
    threads, over the same at 1 thread (median of 3 rounds of ``steps`` steps each). None for 1
    thread. Near 1 when the threads share a cache; about 2x higher when their cores share none."""
    if threads < 2:
        return None
    a = torch.randn(elems, generator=torch.Generator().manual_seed(0))
    c, d = torch.empty(elems), torch.empty(elems)
    rev = torch.arange(elems - 1, -1, -1)

    def per_step(n: int) -> float:
        with torch_threads(n), torch.inference_mode():
            def step() -> None:
                torch.add(a, 1.0, out=c)
                torch.index_select(c, 0, rev, out=d)
            for _ in range(steps // 10):
                step()
            rounds = []
            for _ in range(3):
                t0 = time.perf_counter_ns()
                for _ in range(steps):
                    step()
                rounds.append((time.perf_counter_ns() - t0) / steps)
        return float(np.median(rounds))

    return round(per_step(threads) / per_step(1), 3)


def wait_for_handoff(threads: int, max_wait_s: float = DEFAULT_HANDOFF_WAIT_S,
                     max_ratio: float = MAX_HANDOFF_RATIO, pause_s: float = 1.0,
                     probe: Optional[Callable[[int], Optional[float]]] = None) -> Optional[float]:
    """Probe :func:`handoff_ratio` (or ``probe``) every ``pause_s`` until it is at most ``max_ratio`` or
    ``max_wait_s`` have passed (at least one probe); the last ratio (None at 1 thread)."""
    probe = probe or handoff_ratio

    def waiting(v: float, left: float) -> None:
        progress.say(f"waiting for {threads} threads that share a cache: hand-off {v:.2f}x (at most "
                   f"{max_ratio:g}x), {left:.0f} s left")

    return _wait_until(lambda: probe(threads), lambda v: v <= max_ratio, max_wait_s, pause_s, on_wait=waiting)


def _budgeted_wait(threads: int, history: HandoffHistory, max_wait_s: float,
                   max_ratio: float) -> tuple[Optional[float], float, float]:
    """:func:`wait_for_handoff` for at most what is left of the machine's budget: (the last ratio,
    seconds waited, the wait allowed)."""
    wait_s = history.wait_s(threads, max_wait_s) if threads > 1 else 0.0
    t0 = time.monotonic()
    ratio = wait_for_handoff(threads, wait_s, max_ratio)
    return ratio, (time.monotonic() - t0 if wait_s > 0 else 0.0), wait_s


def wait_for_handoff_in_budget(threads: int, history: Optional[HandoffHistory] = None,
                               max_wait_s: float = DEFAULT_HANDOFF_WAIT_S,
                               max_ratio: float = MAX_HANDOFF_RATIO) -> Optional[float]:
    """For a timing loop the suite does not own (pytest-benchmark's): wait for cooperating threads
    within the machine's budget (``history``, default the machine's) and record the outcome (apart:
    the last probe above ``max_ratio``; no probe after the loop). The last ratio (None at 1 thread)."""
    if threads < 2:
        return None
    history = history or HandoffHistory()
    ratio, waited, _ = _budgeted_wait(threads, history, max_wait_s, max_ratio)
    history.record(threads, waited, ratio is not None and ratio > max_ratio)
    return ratio


def quiet_attempts(measure: Callable[[], Any], threads: int, attempts: int, *, calibrate: bool = False,
                   quiet_wait_s: float = DEFAULT_QUIET_WAIT_S, max_other_cpu: float = MAX_OTHER_CPU,
                   handoff_wait_s: float = DEFAULT_HANDOFF_WAIT_S,
                   max_handoff_ratio: float = MAX_HANDOFF_RATIO,
                   history: Optional[HandoffHistory] = None) -> tuple[Attempt, int]:
    """Run ``measure()`` under the quiet wait: wait for a quiet machine and (threads > 1) for
    cooperating threads, time the calibration kernel if ``calibrate``, measure the other processes'
    CPU share during ``measure`` and the hand-off ratio after it; redo a disturbed attempt (up to
    ``attempts``). Returns (the least disturbed attempt, attempts made); its ``stats`` is what
    ``measure`` returned. The hand-off wait is cut to what is left of the machine's budget for
    waiting that did not pay off (``history``, default :class:`HandoffHistory` under ``.cache``),
    and every multi-thread attempt is added to that history."""
    history = history or HandoffHistory()

    def once() -> Attempt:
        load, cores = load_avg(), os.cpu_count() or 1
        # saturated for the last minute (e.g. a build, a training beside the run): waiting would
        # not bring a quiet machine, only make the run last; one probe, then measure
        saturated = load is not None and load >= cores
        busy = wait_for_quiet(0.0 if saturated else quiet_wait_s, max_other_cpu)
        # (with quiet_wait_s=0 nothing was waited for, so a busy probe says nothing about how long it lasts)
        waited_out = busy is not None and busy > max_other_cpu and (saturated or quiet_wait_s > 0)
        # busy throughout: the threads' hand-off is slowed by the load too; probe it once, do not wait
        if waited_out:
            before, waited, wait_s = handoff_ratio(threads), 0.0, 0.0
        else:
            before, waited, wait_s = _budgeted_wait(threads, history, handoff_wait_s, max_handoff_ratio)
        if waited_out:
            why = f"load {load:.1f} on {cores} CPUs for the last minute" if saturated else f"after {quiet_wait_s:g} s"
            progress.say(f"machine busy (other processes use {busy:.0%}; {why}): measuring anyway, the row "
                       "is marked not quiet")
        elif before is not None and before > max_handoff_ratio and handoff_wait_s > 0:
            # the threads stayed apart through the whole wait, or waiting has stopped paying off on
            # this machine: a redo would wait (or find them apart) again
            waited_out = True
            why = (f"after {wait_s:g} s" if wait_s >= handoff_wait_s else
                   f"not waiting longer than {wait_s:.0f} s: in the last {history.window_s / 60:g} min, "
                   f"{history.wasted_s(threads):.0f} s of hand-off waits on this machine ended with the "
                   "threads apart")
            progress.say(f"{threads} threads do not share a cache ({why}; hand-off {before:.2f}x): measuring "
                       "once, the row is marked not quiet")
        calib = measure_calibration(threads) if calibrate else None
        t0 = _cpu_times()
        result = measure()
        during = cpu_other_share(t0, _cpu_times())
        after = handoff_ratio(threads)
        if threads > 1:
            history.record(threads, waited, any(r is not None and r > max_handoff_ratio for r in (before, after)))
        return Attempt(result, calib, busy, during, before, after, max_other_cpu, max_handoff_ratio, waited_out)

    return least_disturbed(once, attempts)


def least_disturbed(run_once: Callable[[], Attempt], attempts: int) -> tuple[Attempt, int]:
    """Run attempts until one is quiet (or ``attempts`` were made); (the least disturbed, count).
    A disturbed attempt is redone only when the disturbance looked passing: after an attempt that
    the machine stayed busy for through the whole wait (``waited_out``), a redo would wait and be
    disturbed again, so the run goes on. This bounds a timing job on a busy machine to one wait and
    one attempt."""
    if attempts < 1:
        raise ValueError(f"attempts={attempts}: need at least 1")
    best, n = None, 0
    for n in range(1, attempts + 1):
        if n > 1:
            progress.say(f"attempt {n} of {attempts}: the last one was disturbed "
                       f"(worst check {best.disturbance():.1f}x its limit)")
        a = run_once()
        if best is None or a.disturbance() < best.disturbance():
            best = a
        if a.quiet() is not False or a.waited_out:
            break
    return best, n


def fixed_input(input_size: int, preprocess, data_dir: Optional[Path] = None) -> tuple[np.ndarray, str]:
    """(1 x 3 x S x S float32 input, its name): the first image (by stem) of ``data_dir`` (default
    ``shared/data/hsd``) with the design's preprocessing; a seeded synthetic image if the folder is
    missing (the name then says so)."""
    from .accuracy import to_input
    from ..data.samples import read_image, scan_folder
    from ..paths import DEFAULT_DATA_DIR

    folder = Path(data_dir) if data_dir else DEFAULT_DATA_DIR / "hsd"
    if folder.is_dir():
        sample = scan_folder(folder)[0]
        img, name = read_image(sample.image_path), f"{folder.name}/{sample.image_path.name}"
    else:
        rng = np.random.default_rng(0)
        img = np.clip(rng.normal(128, 40, (input_size, input_size, 3)), 0, 255).astype(np.uint8)
        name = "synthetic (no data folder)"
    return to_input(img, input_size, preprocess).numpy(), name


@dataclass(frozen=True)
class TimedRun(LatencyStats):
    """What every latency row carries besides what was timed (designs: :class:`LatencyRecord`,
    peers: ``bench.models.peers.PeerLatencyRecord``): statistics, protocol counts, calibration,
    efficiency, the machine and how quiet it was. Built by :func:`timed_run`."""

    warmup: int
    loops: int
    calib_kernel: str
    calib_ms_median: float
    calib_cv: float
    peak_gmacs_per_s: float
    latency_ratio_to_calib: float
    macs_g: float
    achieved_gmacs_per_s: float
    fraction_of_peak: float
    cpu_model: str
    cpu_count: int
    load_avg_1m: Optional[float]  # system load when the job started
    cpu_busy_before: Optional[float]  # share of CPU time used by other work just before timing
    cpu_other_during: Optional[float]  # share of CPU time used by other work during the timed loop
    quiet: Optional[bool]  # both shares <= max_other_cpu and hand-off ratios <= their limit (None: not measurable)
    attempts: int  # timed attempts made (a disturbed one is redone, the least disturbed is kept)
    handoff_ratio_before: Optional[float]  # hand-off probe at these threads over 1 thread (None at 1 thread)
    handoff_ratio_after: Optional[float]
    malloc: str  # the allocator setting timed with (:func:`steady_malloc`; "" = the platform's default)


def load_avg() -> Optional[float]:
    """The 1-minute load average (None where the OS has none)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def timed_run(fn: Optional[Callable[[], Any]], threads: int, macs_g: float, warmup: int = DEFAULT_WARMUP,
              loops: int = DEFAULT_LOOPS, *, calibrate: bool = True, attempts: int = DEFAULT_ATTEMPTS,
              quiet_wait_s: float = DEFAULT_QUIET_WAIT_S, max_other_cpu: float = MAX_OTHER_CPU,
              load_avg_1m: Optional[float] = None, handoff_wait_s: float = DEFAULT_HANDOFF_WAIT_S,
              max_handoff_ratio: float = MAX_HANDOFF_RATIO) -> dict[str, Any]:
    """Time ``fn`` under the protocol (quiet wait, hand-off check, calibration, warm-up, ``loops``
    timed iterations, least disturbed of up to ``attempts``) and return the :class:`TimedRun` fields
    as a dict. ``fn = None`` (nothing may be timed, e.g. parity failed): NaN timings, 0 attempts."""
    best, n_attempts, malloc = None, 0, ""
    if fn is not None:
        malloc = steady_malloc()
        best, n_attempts = quiet_attempts(lambda: time_callable(fn, warmup, loops), threads, attempts,
                                          calibrate=calibrate, quiet_wait_s=quiet_wait_s,
                                          max_other_cpu=max_other_cpu, handoff_wait_s=handoff_wait_s,
                                          max_handoff_ratio=max_handoff_ratio)
    stats, calib = (best.stats, best.calib) if best else (None, None)
    med = stats.latency_ms_median if stats else NAN
    achieved = macs_g / med * 1e3 if stats else NAN
    return dict(
        {k: (getattr(stats, k) if stats else NAN) for k in _STAT_FIELDS},
        warmup=int(warmup), loops=int(loops),
        calib_kernel=calib.calib_kernel if calib else "",
        calib_ms_median=calib.calib_ms_median if calib else NAN,
        calib_cv=calib.calib_cv if calib else NAN,
        peak_gmacs_per_s=calib.peak_gmacs_per_s if calib else NAN,
        latency_ratio_to_calib=med / calib.calib_ms_median if calib else NAN,
        macs_g=macs_g, achieved_gmacs_per_s=achieved,
        fraction_of_peak=achieved / calib.peak_gmacs_per_s if calib else NAN,
        cpu_model=cpu_model(), cpu_count=os.cpu_count() or 1, load_avg_1m=load_avg_1m,
        cpu_busy_before=best.busy_before if best else None,
        cpu_other_during=best.other_during if best else None,
        quiet=best.quiet() if best else None, attempts=n_attempts,
        handoff_ratio_before=best.handoff_before if best else None,
        handoff_ratio_after=best.handoff_after if best else None, malloc=malloc)


@dataclass(frozen=True)
class LatencyRecord(TimedRun):
    arch: str
    backend: str
    weights: str
    threads: int
    input_size: int
    status: str  # "ok" or "error: parity ..."
    protocol: str
    # parity with PyTorch on the fixed input (None for the torch backend, the reference itself)
    parity_ok: Optional[bool]
    parity_max_abs_diff: Optional[float]
    parity_max_abs_ref: Optional[float]
    parity_mask_iou: Optional[float]
    parity_input: str
    # how it ran
    backend_options: str
    converter: str
    model_size_mb: Optional[float]
    torch_version: str
    ncnn_version: Optional[str]
    pnnx_version: Optional[str]
    onnxruntime_version: Optional[str]


def _checked_spec(arch: str, threads: int, input_size: int):
    """The design's spec, after the checks every timing of it makes (ValueError saying what is wrong)."""
    if threads < 1:
        raise ValueError(f"threads={threads}: need at least 1")
    spec = get_spec(arch)
    if input_size % spec.input_multiple:
        raise ValueError(f"{arch} needs an input side that is a multiple of {spec.input_multiple}, "
                         f"got {input_size}")
    return spec


def measure_latency(arch: str, backend: str = "torch", threads: int = 1, input_size: int = 256,
                    loops: int = DEFAULT_LOOPS, warmup: int = DEFAULT_WARMUP, weights: str = "random", *,
                    calibrate: bool = True, ncnn_options: NcnnOptions = DEFAULT_NCNN_OPTIONS,
                    pnnx_fp16: bool = DEFAULT_PNNX_FP16, cache_dir: Optional[Path] = None,
                    models_dir: Optional[Path] = None, data_dir: Optional[Path] = None,
                    attempts: int = DEFAULT_ATTEMPTS, quiet_wait_s: float = DEFAULT_QUIET_WAIT_S,
                    max_other_cpu: float = MAX_OTHER_CPU) -> LatencyRecord:
    """Latency of design ``arch`` on ``backend`` under the module's protocol.

    Raises :class:`bench.backends.BackendUnavailable` when the backend's package is missing and
    ``ValueError`` for settings the protocol rejects; a parity failure is a record with an error
    status and NaN latencies."""
    from ..paths import DEFAULT_MODELS_DIR
    from ..models.weights import load_model

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if loops < MIN_LOOPS:
        raise ValueError(f"loops={loops}: the protocol needs at least {MIN_LOOPS} timed iterations")
    spec = _checked_spec(arch, threads, input_size)
    load = load_avg()
    lm = load_model(arch, weights, Path(models_dir) if models_dir else DEFAULT_MODELS_DIR)
    x, input_name = fixed_input(input_size, lm.preprocess, data_dir)

    parity: Optional[ParityRecord] = None
    if backend != "torch":
        with open_runner("torch", lm.model, arch, input_size, threads) as ref_runner:
            ref = ref_runner.infer(x)
    with open_runner(backend, lm.model, arch, input_size, threads, ncnn_options=ncnn_options,
                     pnnx_fp16=pnnx_fp16, cache_dir=cache_dir) as runner:
        if backend != "torch":
            parity = check_parity(ref, runner.infer(x), spec.output_kind)
        fn = runner.bind(x) if parity is None or parity.ok else None
        timed = timed_run(fn, threads, design_macs_g(arch, input_size), warmup, loops, calibrate=calibrate,
                          attempts=attempts, quiet_wait_s=quiet_wait_s, max_other_cpu=max_other_cpu,
                          load_avg_1m=load)
        options, converter, size_mb = runner.options, runner.converter, runner.model_size_mb

    v = backend_versions()
    status = str(OK if parity is None or parity.ok else Status.fail(parity.reason, "parity"))
    return LatencyRecord(
        **timed, arch=arch, backend=backend, weights=weights, threads=int(threads), input_size=int(input_size),
        status=status, protocol=protocol_string(warmup, loops, threads, input_size, calibrate, attempts,
                                                 quiet_wait_s, max_other_cpu),
        parity_ok=None if parity is None else parity.ok,
        parity_max_abs_diff=None if parity is None else parity.max_abs_diff,
        parity_max_abs_ref=None if parity is None else parity.max_abs_ref,
        parity_mask_iou=None if parity is None else parity.mask_iou, parity_input=input_name,
        backend_options=options, converter=converter, model_size_mb=size_mb,
        torch_version=v["torch"], ncnn_version=v["ncnn"], pnnx_version=v["pnnx"],
        onnxruntime_version=v["onnxruntime"])


# ----------------------------------------------------------------------------- comparisons

def speedups(rows: Iterable[Mapping[str, Any]], base: str = "torch", other: str = "ncnn") -> list[dict]:
    """Per (arch, threads, input_size) with ok rows on both backends: their medians and
    ``speedup = base median / other median`` (> 1: ``other`` is faster). Sorted by arch, threads, size."""
    med: dict[tuple, dict[str, float]] = {}
    for r in rows:
        if r.get("status") != "ok" or r.get("backend") not in (base, other):
            continue
        m = r.get("latency_ms_median")
        if m is None or not math.isfinite(float(m)):
            continue
        key = (r["arch"], int(r["threads"]), int(r["input_size"]))
        med.setdefault(key, {})[r["backend"]] = float(m)
    out = []
    for (arch, threads, size), m in sorted(med.items()):
        if base in m and other in m:
            out.append({"arch": arch, "threads": threads, "input_size": size,
                        f"{base}_ms_median": m[base], f"{other}_ms_median": m[other],
                        "speedup": speedup_of(m[base], m[other])})
    return out


# ----------------------------------------------------------------------------- repeatability

DEFAULT_REPEATS = 5  # fresh processes per repeatability measurement
MAX_BETWEEN_RUN_CV = 0.05  # a median that repeats within 5% (CV over fresh processes) is "repeatable"


@dataclass(frozen=True)
class RepeatabilityRecord:
    """How well the median of one latency measurement repeats: the same job run ``runs`` times,
    each in a fresh process (new memory layout, thread pools, allocator and ncnn/oneDNN state), as
    pyperf does for the same reason. ``between_run_cv`` is the coefficient of variation of the runs'
    medians (the figure the protocol is judged by); ``within_run_cv_*`` summarise the runs' own
    frame-to-frame CVs."""

    runs: int  # runs attempted
    runs_ok: int  # runs that gave a latency
    runs_quiet: int  # ok runs whose quiet wait held
    run_medians_ms: str  # the ok runs' medians, in run order, space-separated
    latency_ms_median_of_runs: float
    latency_ms_min_of_runs: float
    latency_ms_max_of_runs: float
    between_run_cv: float  # std (ddof=1) / mean of the runs' medians
    between_run_spread: float  # (max - min) / median of the runs' medians
    within_run_cv_median: float
    within_run_cv_max: float
    repeatable: Optional[bool]  # between_run_cv <= max_between_run_cv (None: fewer than 2 ok runs)
    max_between_run_cv: float  # the threshold used
    status: str  # "ok", or the first failed run's status


def summarize_repeats(rows: Sequence[Mapping[str, Any]],
                      max_between_run_cv: float = MAX_BETWEEN_RUN_CV) -> RepeatabilityRecord:
    """Summarise the rows of repeated latency runs (one row per run, in run order). Failed runs are
    counted and the first failure becomes the status; the statistics use the ok runs."""
    if not rows:
        raise ValueError("no runs to summarise")
    def gave_latency(r: Mapping[str, Any]) -> bool:
        return r.get("status") == "ok" and _finite_number(r.get("latency_ms_median"))

    ok = [r for r in rows if gave_latency(r)]
    bad = [str(r.get("status")) for r in rows if not gave_latency(r)]
    med = np.array([float(r["latency_ms_median"]) for r in ok], dtype=np.float64)
    cvs = np.array([float(r["latency_cv"]) for r in ok if _finite_number(r.get("latency_cv"))])
    if med.size:
        mid = float(np.median(med))
        cv = _cv(med)
        stats = dict(latency_ms_median_of_runs=mid, latency_ms_min_of_runs=float(med.min()),
                     latency_ms_max_of_runs=float(med.max()), between_run_cv=cv,
                     between_run_spread=float((med.max() - med.min()) / mid) if mid > 0 else NAN)
    else:
        stats = dict.fromkeys(("latency_ms_median_of_runs", "latency_ms_min_of_runs", "latency_ms_max_of_runs",
                               "between_run_cv", "between_run_spread"), NAN)
    cv = stats["between_run_cv"]
    return RepeatabilityRecord(
        runs=len(rows), runs_ok=len(ok), runs_quiet=sum(1 for r in ok if r.get("quiet") is True),
        run_medians_ms=" ".join(f"{v:.3f}" for v in med), **stats,
        within_run_cv_median=float(np.median(cvs)) if cvs.size else NAN,
        within_run_cv_max=float(cvs.max()) if cvs.size else NAN,
        repeatable=None if not math.isfinite(cv) else bool(cv <= max_between_run_cv),
        max_between_run_cv=float(max_between_run_cv), status=bad[0] if bad else "ok")


def _cv(v: np.ndarray) -> float:
    """Coefficient of variation (sample std / mean) of positive values; NaN for fewer than 2."""
    return float(v.std(ddof=1) / v.mean()) if v.size > 1 and v.mean() > 0 else NAN


def _finite_number(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


# ----------------------------------------------------------------------------- interleaved comparison

DEFAULT_ROUNDS = 10  # rounds of an interleaved comparison
DEFAULT_ROUND_LOOPS = 10  # timed iterations per backend and round
DEFAULT_ROUND_WARMUP = 3  # untimed iterations per backend and round ...
DEFAULT_ROUND_WARMUP_MIN_S = 0.05  # ... lasting at least this long (the other library's threads go idle)


def time_interleaved(fns: Mapping[str, Callable[[], Any]], rounds: int = DEFAULT_ROUNDS,
                     loops: int = DEFAULT_ROUND_LOOPS, warmup: int = DEFAULT_ROUND_WARMUP,
                     warmup_min_s: float = DEFAULT_ROUND_WARMUP_MIN_S,
                     clock: Callable[[], int] = time.perf_counter_ns) -> dict[str, list[TimingStats]]:
    """Time several callables round-robin: in every round each one gets ``warmup`` untimed
    iterations (at least ``warmup_min_s``) and ``loops`` timed ones (:func:`time_callable`). The
    order turns by one every round, so no callable always runs first or right after the same other
    one. Whatever slows the machine for longer than a round hits all of them alike, which is why a
    ratio of their round medians repeats where medians taken minutes apart do not. Returns each
    name's per-round statistics, in round order."""
    if rounds < 1 or not fns:
        raise ValueError(f"need rounds >= 1 and something to time (got rounds={rounds}, {len(fns)} callables)")
    names = list(fns)
    out: dict[str, list[TimingStats]] = {n: [] for n in names}
    for r in range(rounds):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            out[name].append(time_callable(fns[name], warmup, loops, clock=clock, warmup_min_s=warmup_min_s))
    return out


@dataclass(frozen=True)
class ComparisonStats:
    """A base backend against another, from interleaved rounds: ``speedup`` is the median over
    rounds of (base round median / other round median), > 1 when the other backend is faster."""

    rounds: int
    base_ms_median: float  # median of the base's round medians
    other_ms_median: float
    speedup: float
    speedup_min: float  # over rounds
    speedup_max: float
    speedup_cv: float  # std (ddof=1) / mean of the per-round ratios
    base_round_cv: float  # CV of the base's round medians: how much the machine drifted meanwhile
    other_round_cv: float
    round_speedups: str  # the per-round ratios, space-separated, in round order


def compare_rounds(base: Sequence[TimingStats], other: Sequence[TimingStats]) -> ComparisonStats:
    """Statistics of an interleaved comparison (the two lists from :func:`time_interleaved`)."""
    if len(base) != len(other) or not base:
        raise ValueError(f"need the same number of rounds (at least 1) for both, got {len(base)} and {len(other)}")
    b = np.array([s.latency_ms_median for s in base], dtype=np.float64)
    o = np.array([s.latency_ms_median for s in other], dtype=np.float64)
    if (o <= 0).any():
        raise ValueError("a round median of the other backend is not positive")
    ratio = speedup_of(b, o)
    return ComparisonStats(
        rounds=int(b.size), base_ms_median=float(np.median(b)), other_ms_median=float(np.median(o)),
        speedup=float(np.median(ratio)), speedup_min=float(ratio.min()), speedup_max=float(ratio.max()),
        speedup_cv=_cv(ratio), base_round_cv=_cv(b), other_round_cv=_cv(o),
        round_speedups=" ".join(f"{v:.3f}" for v in ratio))


@dataclass(frozen=True)
class SpeedupRecord(ComparisonStats):
    arch: str
    base_backend: str
    other_backend: str
    weights: str
    threads: int
    input_size: int
    loops_per_round: int
    warmup_per_round: int
    status: str  # "ok", or "error: parity ..." (then no timing: NaN figures)
    protocol: str
    parity_ok: Optional[bool]
    parity_max_abs_diff: Optional[float]
    parity_mask_iou: Optional[float]
    parity_input: str
    cpu_model: str
    cpu_count: int
    cpu_busy_before: Optional[float]
    cpu_other_during: Optional[float]
    handoff_ratio_before: Optional[float]
    handoff_ratio_after: Optional[float]
    quiet: Optional[bool]  # the quiet wait's checks over the whole comparison
    attempts: int  # comparisons made (a disturbed one is redone, the least disturbed is kept)
    malloc: str
    base_options: str
    other_options: str
    converter: str
    torch_version: str
    ncnn_version: Optional[str]
    pnnx_version: Optional[str]
    onnxruntime_version: Optional[str]


def measure_speedup(arch: str, other: str = "ncnn", threads: int = 1, input_size: int = 256, *,
                    base: str = "torch", rounds: int = DEFAULT_ROUNDS, loops: int = DEFAULT_ROUND_LOOPS,
                    warmup: int = DEFAULT_ROUND_WARMUP, weights: str = "random",
                    ncnn_options: NcnnOptions = DEFAULT_NCNN_OPTIONS, pnnx_fp16: bool = DEFAULT_PNNX_FP16,
                    cache_dir: Optional[Path] = None, models_dir: Optional[Path] = None,
                    data_dir: Optional[Path] = None, attempts: int = DEFAULT_ATTEMPTS,
                    quiet_wait_s: float = DEFAULT_QUIET_WAIT_S, max_other_cpu: float = MAX_OTHER_CPU) -> SpeedupRecord:
    """How much faster ``other`` runs design ``arch`` than ``base`` (PyTorch), both loaded in this
    process and timed interleaved (:func:`time_interleaved`) at the same thread count on the same
    fixed input, after a parity check of ``other`` against ``base``. The quiet wait, hand-off check,
    attempts and steady malloc of :func:`timed_run` apply to the comparison as a whole (a comparison
    during which the threads stopped sharing a cache is redone). Raises like :func:`measure_latency`."""
    from ..paths import DEFAULT_MODELS_DIR
    from ..models.weights import load_model

    for b in (base, other):
        if b not in BACKENDS:
            raise ValueError(f"unknown backend {b!r}; known: {', '.join(BACKENDS)}")
    if base == other:
        raise ValueError(f"compare two different backends, got {base!r} twice")
    if rounds < 3 or loops < 1:
        raise ValueError(f"rounds={rounds}, loops={loops}: an interleaved comparison needs at least 3 rounds "
                         "of at least 1 timed iteration")
    spec = _checked_spec(arch, threads, input_size)
    lm = load_model(arch, weights, Path(models_dir) if models_dir else DEFAULT_MODELS_DIR)
    x, input_name = fixed_input(input_size, lm.preprocess, data_dir)
    runner_kw = dict(ncnn_options=ncnn_options, pnnx_fp16=pnnx_fp16, cache_dir=cache_dir)
    with open_runner(base, lm.model, arch, input_size, threads, **runner_kw) as rb, \
            open_runner(other, lm.model, arch, input_size, threads, **runner_kw) as ro:
        parity = check_parity(rb.infer(x), ro.infer(x), spec.output_kind)
        cmp, waited, n_attempts, malloc = None, None, 0, ""
        if parity.ok:
            malloc = steady_malloc()
            fns = {base: rb.bind(x), other: ro.bind(x)}
            for fn in fns.values():  # the first warm-up (allocator, caches, JIT) out of the rounds
                time_callable(fn, DEFAULT_WARMUP, 1, warmup_min_s=DEFAULT_WARMUP_MIN_S)
            waited, n_attempts = quiet_attempts(lambda: time_interleaved(fns, rounds, loops, warmup), threads,
                                              attempts, quiet_wait_s=quiet_wait_s, max_other_cpu=max_other_cpu)
            cmp = compare_rounds(waited.stats[base], waited.stats[other])
        opts = (rb.options, ro.options, ro.converter)
    stats = _comparison_fields(cmp, rounds)
    v = backend_versions()
    return SpeedupRecord(
        **stats, arch=arch, base_backend=base, other_backend=other, weights=weights, threads=int(threads),
        input_size=int(input_size), loops_per_round=int(loops), warmup_per_round=int(warmup),
        status=str(OK if parity.ok else Status.fail(parity.reason, "parity")),
        protocol=(f"interleaved v{PROTOCOL_VERSION}: batch=1 fp32 input={input_size}x{input_size} threads={threads} "
                  f"rounds={rounds} per round and backend warmup={warmup}+{DEFAULT_ROUND_WARMUP_MIN_S:g}s "
                  f"loops={loops}, order turning each round; speedup=median over rounds of the round-median "
                  f"ratio; quiet=other_cpu<={max_other_cpu:g},wait<={quiet_wait_s:g}s,attempts<={attempts}"
                  + (f" handoff<={MAX_HANDOFF_RATIO:g}" if threads > 1 else "") + " malloc=steady"),
        parity_ok=parity.ok, parity_max_abs_diff=parity.max_abs_diff, parity_mask_iou=parity.mask_iou,
        parity_input=input_name, cpu_model=cpu_model(), cpu_count=os.cpu_count() or 1,
        cpu_busy_before=waited.busy_before if waited else None, cpu_other_during=waited.other_during if waited else None,
        handoff_ratio_before=waited.handoff_before if waited else None,
        handoff_ratio_after=waited.handoff_after if waited else None, quiet=waited.quiet() if waited else None,
        attempts=n_attempts, malloc=malloc,
        base_options=opts[0], other_options=opts[1], converter=opts[2], torch_version=v["torch"],
        ncnn_version=v["ncnn"], pnnx_version=v["pnnx"], onnxruntime_version=v["onnxruntime"])


def _comparison_fields(cmp: Optional[ComparisonStats], rounds: int) -> dict[str, Any]:
    """The comparison's fields, or NaN figures (and the planned round count) when nothing was timed."""
    if cmp is not None:
        return asdict(cmp)
    nan = {f.name: NAN for f in fields(ComparisonStats)}
    return {**nan, "rounds": int(rounds), "round_speedups": ""}
