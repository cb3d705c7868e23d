"""Latency benchmarks (pytest-benchmark) run only when asked for, never in the unit-test run:

    pytest tests/benchmarks --benchmark-enable          (or --benchmark-only, or RUN_BENCHMARKS=1)

Settings from the environment: BENCH_THREADS (default: all cores), BENCH_SIZE (256),
BENCH_LOOPS (30), BENCH_WARMUP (10). See docs/latency.md.
"""
from __future__ import annotations

import os

import pytest


def benchmarks_requested(config: pytest.Config) -> bool:
    opt = config.getoption
    return bool(opt("benchmark_enable", default=False) or opt("benchmark_only", default=False)
                or os.environ.get("RUN_BENCHMARKS", "") not in ("", "0"))


@pytest.fixture(autouse=True)
def _only_when_requested(request):
    if not benchmarks_requested(request.config):
        pytest.skip("latency benchmark: run with --benchmark-enable, --benchmark-only or RUN_BENCHMARKS=1")
