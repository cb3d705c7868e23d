"""The gate's comparison rules on hand-made figures (pure, deterministic)."""
from __future__ import annotations

import json

import pytest

from bench.gate import (DEFAULT_RULES, BaselineError, check, compare, load_baseline, make_strict,
                        new_baseline, parse_baseline)

BASE = {"d": {"params": 1000, "macs_g": 0.5, "arm_instructions_m": 100.0, "miou_trained": 0.85,
              "parity_ok_ncnn": True, "ncnn_over_torch": 0.5, "torch_over_calib": 10.0}}


def _above_limit(metric: str) -> float:
    """A value of ``metric`` just beyond its ratio limit (the limits follow the measured spread)."""
    return BASE["d"][metric] * (1 + DEFAULT_RULES[metric].limit + 0.01)


def _with(**changes):
    cur = {"d": dict(BASE["d"])}
    cur["d"].update(changes)
    return cur


def test_identical_figures_pass():
    assert check(BASE, BASE) == []
    assert all(c.verdict == "ok" for c in compare(BASE, BASE))


@pytest.mark.parametrize("metric,value", [
    ("params", 1001), ("macs_g", 0.5000001), ("arm_instructions_m", 100.6), ("arm_instructions_m", 99.4),
    ("miou_trained", 0.84), ("parity_ok_ncnn", False), ("ncnn_over_torch", _above_limit("ncnn_over_torch")),
    ("torch_over_calib", _above_limit("torch_over_calib"))])
def test_each_rule_catches_its_regression(metric, value):
    bad = check(_with(**{metric: value}), BASE)
    assert [v.metric for v in bad] == [metric]


@pytest.mark.parametrize("metric,value", [
    ("arm_instructions_m", 100.4), ("miou_trained", 0.846), ("miou_trained", 0.95), ("ncnn_over_torch", 0.6),
    ("torch_over_calib", 7.0)])
def test_within_tolerance_passes(metric, value):
    assert check(_with(**{metric: value}), BASE) == []


def test_time_ratios_skipped_on_another_machine_but_counts_still_checked():
    cur = _with(ncnn_over_torch=5.0, params=999)
    res = {c.metric: c for c in compare(cur, BASE, same_machine=False)}
    assert res["ncnn_over_torch"].verdict.startswith("skipped: baseline from another machine")
    assert res["params"].verdict == "FAIL"


def test_missing_metric_is_reported_not_passed():
    cur = {"d": {k: v for k, v in BASE["d"].items() if k != "arm_instructions_m"}}
    res = {c.metric: c for c in compare(cur, BASE)}
    assert res["arm_instructions_m"].verdict == "skipped: not in the current run"


def test_strict_fails_a_figure_the_run_did_not_measure_but_not_a_new_one_or_another_machine():
    cur = {"d": {**{k: v for k, v in BASE["d"].items() if k != "arm_instructions_m"}, "miou_seed": 0.9}}
    res = {c.metric: c for c in make_strict(compare(cur, BASE, same_machine=False))}
    assert res["arm_instructions_m"].failed and "--strict" in res["arm_instructions_m"].limit
    assert res["miou_seed"].verdict == "skipped: not in the baseline"
    assert res["ncnn_over_torch"].verdict.startswith("skipped: baseline from another machine")
    assert [c.metric for c in make_strict(compare(BASE, BASE)) if c.failed] == []


def test_baseline_roundtrip_and_errors(tmp_path):
    b = new_baseline(BASE, {"cpu": "x", "cores": 2, "arch": "x86_64"}, {"torch": "2.13"}, "first")
    p = tmp_path / "baseline.json"
    p.write_text(b.to_json())
    again = load_baseline(p)
    assert again.metrics == BASE and again.reason == "first"
    with pytest.raises(BaselineError, match="not found"):
        load_baseline(tmp_path / "none.json")
    p.write_text("{broken")
    with pytest.raises(BaselineError, match="not valid JSON"):
        load_baseline(p)
    with pytest.raises(BaselineError, match="version"):
        parse_baseline(json.dumps({"metrics": {}, "machine": {}, "version": 99}))
    with pytest.raises(ValueError, match="reason"):
        new_baseline(BASE, {}, {}, " ")
