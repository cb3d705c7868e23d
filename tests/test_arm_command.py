"""`run_bench.py arm --arch NAME`: every ARM figure of one model from one command (issue 20): the
emulated aarch64 ncnn row (parity, instruction counts) and the estimated ms per calibrated device."""
from __future__ import annotations

import json

import pytest

import run_bench
from bench.arm import counts as arm_counts, runner as arm

from helpers import needs_toolchain  # noqa: E402  (a qemu test; skipped without the toolchain, never in CI)
needs_anchors = pytest.mark.skipif(not arm_counts.default_params_dir().is_dir(),
                                   reason="ncnn benchmark anchors missing in ../shared")


@needs_toolchain
@needs_anchors
def test_arm_command_gives_cost_parity_and_labelled_estimates(capsys):
    assert run_bench.main(["arm", "--arch", "esp_dense_seg", "--size", "64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    cost = out["arm_cost"][0]
    assert cost["status"] == "ok" and cost["input_size"] == 64 and cost["parity_ok_arm"] is True
    assert cost["arm_instructions_m"] > 0 and cost["cpu_model"]
    est = out["arm_estimate"]
    assert est and {r["kind"] for r in est} == {"estimate"} and {r["threads"] for r in est} == {1, 4}
    assert all(r["arm_est_ms_low"] <= r["arm_est_ms"] <= r["arm_est_ms_high"] for r in est)
    assert not any(k.startswith("latency_ms") for r in est for k in r)  # estimates, never measured columns
    # the table form prints the same two parts
    assert run_bench.main(["arm", "--arch", "esp_dense_seg", "--size", "64"]) == 0
    text = capsys.readouterr().out
    assert "arm_instructions_m" in text and "estimates, not measurements" in text


def test_arm_command_refuses_a_size_for_a_model_file(capsys):
    assert run_bench.main(["arm", "--arch", "mediapipe_selfie", "--size", "64"]) == 2
    assert "is a model file that runs at its own input 256x256; leave --size out" in capsys.readouterr().err
