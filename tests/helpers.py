"""Helpers the test modules share (``from helpers import ...``; a module of its own because
``from conftest import`` is ambiguous beside tests/benchmarks/conftest.py): the ARM toolchain and
ncnn skips, and the latency stand-ins that conftest's ``fake_backend`` fixture uses."""
from __future__ import annotations

import os

import pytest
import torch

from bench import backends
from bench.arm import runner as arm
from bench.backends import Runner
from bench.measure.latency import CalibRecord, summarize

IN_CI = bool(os.environ.get("CI"))

TOOLCHAIN_STATUS = arm.toolchain_status("gnu")  # "" when the cross compiler and qemu are there
# the tests that build the aarch64 runner or run qemu: marked ``qemu``; skipped without the toolchain
# except in CI (CI installs the Debian packages of .ci/apt-packages.txt, so there they must run)
_NO_TOOLCHAIN = pytest.mark.skipif(bool(TOOLCHAIN_STATUS) and not IN_CI,
                                   reason=f"ARM toolchain or qemu missing ({TOOLCHAIN_STATUS})")


HAVE_NCNN = backends.backend_missing("ncnn") is None
needs_ncnn = pytest.mark.skipif(not HAVE_NCNN, reason="ncnn / pnnx not installed")


def needs_toolchain(test):
    """Decorator: a ``qemu`` test, skipped where the toolchain is missing (never in CI)."""
    return pytest.mark.qemu(_NO_TOOLCHAIN(test))


# ----------------------------------------------------------------------------- latency stand-ins

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
