"""pytest-benchmark view of the latency protocol: one benchmark per design and backend, grouped per
design, plus the calibration GEMM. Skipped unless requested (see conftest.py).

The same protocol as ``run_bench.py latency`` (bench/measure/latency.py): batch 1, fp32, the fixed real
input, glibc malloc in its steady state, on several threads a wait for threads that share a cache
within the machine's hand-off budget (``bench.measure.handoff``; the ratio is in ``extra_info``),
``BENCH_WARMUP`` untimed then ``BENCH_LOOPS`` timed rounds of one inference each; a backend whose
outputs do not match PyTorch's fails its benchmark instead of being timed. (No quiet wait or redone attempts: pytest-benchmark owns the timing loop.)
"""
from __future__ import annotations

import os

import pytest
import torch

from archs import get_spec, list_archs
from bench.backends import BACKENDS, backend_missing, check_parity, open_runner, torch_threads
from bench.measure.latency import (CALIB_N, design_macs_g, fixed_input, steady_malloc,
                                   wait_for_handoff_in_budget)
from bench.paths import DEFAULT_MODELS_DIR
from bench.models.weights import load_model

pytestmark = [pytest.mark.timing]  # real timings (opt-in: --benchmark-enable)

THREADS = int(os.environ.get("BENCH_THREADS") or os.cpu_count() or 1)
SIZE = int(os.environ.get("BENCH_SIZE", 256))
LOOPS = int(os.environ.get("BENCH_LOOPS", 30))
WARMUP = int(os.environ.get("BENCH_WARMUP", 10))


def _weights(arch: str) -> str:
    spec = get_spec(arch)
    if spec.checkpoints and (DEFAULT_MODELS_DIR / spec.checkpoints[0].relpath).is_file():
        return spec.checkpoints[0].name
    return "random"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", list_archs())
def test_latency(benchmark, arch, backend):
    why = backend_missing(backend)
    if why:
        pytest.skip(why)
    spec = get_spec(arch)
    if SIZE % spec.input_multiple:
        pytest.skip(f"{arch} needs a multiple of {spec.input_multiple}")
    lm = load_model(arch, _weights(arch))
    x, _ = fixed_input(SIZE, lm.preprocess)
    with open_runner("torch", lm.model, arch, SIZE, THREADS) as ref_runner:
        ref = ref_runner.infer(x)
    with open_runner(backend, lm.model, arch, SIZE, THREADS) as runner:
        if backend != "torch":
            parity = check_parity(ref, runner.infer(x), spec.output_kind)
            assert parity.ok, f"parity: {parity.reason}"
        benchmark.group = f"{arch} {SIZE}px {THREADS} threads"
        benchmark.extra_info.update(backend=backend, threads=THREADS, input_size=SIZE,
                                    macs_g=design_macs_g(arch, SIZE), options=runner.options,
                                    malloc=steady_malloc(),
                                    handoff_ratio_before=wait_for_handoff_in_budget(THREADS))
        benchmark.pedantic(runner.bind(x), rounds=LOOPS, warmup_rounds=WARMUP, iterations=1)


def test_calibration_gemm(benchmark):
    a, b, c = torch.randn(CALIB_N, CALIB_N), torch.randn(CALIB_N, CALIB_N), torch.empty(CALIB_N, CALIB_N)
    benchmark.group = f"calibration {THREADS} threads"
    benchmark.extra_info.update(threads=THREADS, macs_g=CALIB_N ** 3 / 1e9)
    with torch_threads(THREADS), torch.inference_mode():
        benchmark.pedantic(lambda: torch.mm(a, b, out=c), rounds=LOOPS, warmup_rounds=WARMUP, iterations=1)
