"""The gate's comparison rules on hand-made figures (pure, deterministic)."""
from __future__ import annotations

import json

import pytest

from bench.gate.rules import (DEFAULT_RULES, BaselineError, check, compare, load_baseline, make_strict,
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


def test_accuracy_floors_are_not_compared_with_a_baseline_measured_on_other_images():
    """A baseline from before the floors moved to eg1800 test (no ``accuracy_set``: hsd val) must not
    have its hsd figures compared with eg1800-test ones, in either direction."""
    from bench.gate.rules import accuracy_mismatch, gate_settings
    now = gate_settings(quick=True)
    assert now["accuracy_set"] == "eg1800/test"
    assert accuracy_mismatch(now, now) is None
    note = accuracy_mismatch({"input_size": 256}, now)
    assert note and "hsd/val" in note and "eg1800/test" in note
    res = {c.metric: c.verdict for c in compare(_with(miou_trained=0.5), BASE, accuracy_note=note)}
    assert res["miou_trained"].startswith("skipped: baseline accuracy measured on hsd/val")
    assert res["params"] == "ok"
    assert [c.metric for c in make_strict(compare(_with(miou_trained=0.5), BASE))
            if c.failed] == ["miou_trained"]  # same images: the drop fails


def test_partial_rebaseline_of_accuracy_replaces_every_floor_and_records_the_images(tmp_path):
    """``--update-baseline --only miou_trained`` re-measures the floors together: a design's old
    figure from the other images is dropped, not kept beside the new ones."""
    from bench.gate.check import CheckPlan, CheckRequest, conclude
    from bench.gate.rules import Baseline, gate_settings
    old = Baseline({"a": {"params": 3, "miou_trained": 0.70, "miou_seed": 0.86}, "b": {"miou_trained": 0.72}},
                   {"cpu": "x"}, settings={"input_size": 256})
    req = CheckRequest(tmp_path / "b.json", update=True, reason="floors on eg1800 test", only=("miou_trained",))
    plan = CheckPlan(req, old, ["a", "b"], gate_settings(quick=True), [], {"commit": "c", "machine": {}}, None)
    rows = [{"arch": "a", "measurement": "accuracy", "status": "ok", "weights": "trained", "miou": 0.9}]
    new = conclude(plan, rows, []).new_baseline
    assert new.metrics == {"a": {"params": 3, "miou_trained": 0.9}, "b": {}}
    assert new.settings == {"input_size": 256, "accuracy_set": "eg1800/test"}
    assert "miou_trained, miou_seed re-measured" in new.reason
