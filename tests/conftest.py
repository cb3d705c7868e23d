"""Shared fixtures and helpers of the test suite.

Real data and models are read from ../shared (never copied into the repo): without it the tests that
need it skip with that message (in CI, where ../shared is always laid out, they fail instead).
Markers (pytest.ini): ``slow`` (real processes of run_bench.py, training, whole-set evaluations),
``qemu`` (the aarch64 cross toolchain and qemu), ``ray`` (a loopback Ray cluster), ``browser``
(headless Chromium), ``timing`` (real timings); every other test is marked ``quick``
(``tox -- -m quick`` runs them).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import bench.backends as backends  # noqa: E402
import bench.measure.latency as latency  # noqa: E402
from bench.paths import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR  # noqa: E402
from helpers import FIXED_CALIB, FIXED_STATS, IN_CI, FakeRunner  # noqa: E402


def _missing(what: str) -> None:
    """A test that needs ../shared: fail in CI (it must be there), else skip saying what is missing."""
    message = f"{what} (the suite reads ../shared beside the project folder; see README, What it needs)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DEFAULT_DATA_DIR / "hsd").is_dir():
        _missing(f"shared data not found at {DEFAULT_DATA_DIR}")
    return DEFAULT_DATA_DIR


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not DEFAULT_MODELS_DIR.is_dir():
        _missing(f"shared models not found at {DEFAULT_MODELS_DIR}")
    return DEFAULT_MODELS_DIR


HEAVY = ("slow", "qemu", "ray", "browser", "timing")


def pytest_collection_modifyitems(config, items):
    """Mark ``quick`` every test that carries none of :data:`HEAVY`: ``pytest -m quick`` (``tox -- -m
    quick``) is the subset for a change in progress, under two minutes on 2 cores."""
    for item in items:
        if not any(item.get_closest_marker(m) for m in HEAVY):
            item.add_marker(pytest.mark.quick)


@pytest.fixture(autouse=True)
def _own_handoff_history(request, tmp_path_factory, monkeypatch):
    """Every test gets an empty hand-off history: the machine's (under .cache) would make the quiet
    gate's waits depend on the runs before it. Benchmarks (real timings) share the machine's."""
    from bench.measure import handoff

    if "benchmark" in request.fixturenames:
        return
    path = tmp_path_factory.mktemp("handoff") / "history.jsonl"
    monkeypatch.setattr(handoff, "default_path", lambda: path)


# ----------------------------------------------------------------------------- latency stand-ins

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
