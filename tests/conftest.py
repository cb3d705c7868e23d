"""Shared fixtures. Real data and models are read from ../shared (never copied into the repo)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.paths import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR  # noqa: E402


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DEFAULT_DATA_DIR / "hsd").is_dir():
        pytest.fail(f"shared data not found at {DEFAULT_DATA_DIR} (the suite expects ../shared/data)")
    return DEFAULT_DATA_DIR


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not DEFAULT_MODELS_DIR.is_dir():
        pytest.fail(f"shared models not found at {DEFAULT_MODELS_DIR} (the suite expects ../shared/models)")
    return DEFAULT_MODELS_DIR


@pytest.fixture(autouse=True)
def _own_handoff_history(request, tmp_path_factory, monkeypatch):
    """Every test gets an empty hand-off history: the machine's (under .cache) would make the quiet
    gate's waits depend on the runs before it. Benchmarks (real timings) share the machine's."""
    from bench.measure import handoff

    if "benchmark" in request.fixturenames:
        return
    path = tmp_path_factory.mktemp("handoff") / "history.jsonl"
    monkeypatch.setattr(handoff, "default_path", lambda: path)
