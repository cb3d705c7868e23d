"""The regression gate through the real measurement path (``gate_jobs`` -> job adapters ->
``figures_from_rows`` -> ``check``, as ``run_bench.py check`` does): each injected regression makes
it fail, the unmodified tree passes.

- a design variant with one extra 3x3 conv (residualdense_bisenet, the smallest design): params,
  MACs and ARM instructions rise;
- a slowed backend (each call runs the inference SLOWDOWN times): its time ratios rise;
- seg_matting's seed weights with one layer zeroed: its mIoU falls below the floor;
- a baseline from another machine kind: time ratios skipped with a message, counts still checked;
  a missing or damaged baseline: a clear error and exit 1.

Small on purpose (quick latency loops, a few validation images): the whole file takes about a
minute here. The ARM part needs the cross toolchain and qemu; it is skipped only when they are
missing and CI is not set (CI installs them).
"""
from __future__ import annotations

import dataclasses
import json
import os
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch.nn as nn

import bench.backends as backends
import bench.gate.check as gate_check  # `check` runs bench.gate.check's reference to gate_jobs
import bench.gate.rules as gate
import bench.run.adapters  # noqa: F401  registers the measurements
import run_bench
from archs import create_arch, get_spec, registry
from archs.residualdense_bisenet import ResidualDenseBiSeNet
from bench.arm import runner as arm
from bench.gate.rules import (DEFAULT_RULES, GATE_REPEATS, check, compare, figures_from_rows, gate_jobs,
                              machine_mismatch, new_baseline)
from bench.run.jobs import Job, execute
from reports.gate import write_baseline

pytestmark = [pytest.mark.slow]  # gate runs with real jobs

BASE = "residualdense_bisenet"
SLOWDOWN = 4  # the slowed backend runs each inference this many times (tolerance: docs/gate.md)
N_IMAGES = 6  # eg1800 test images for the accuracy test
ARM = arm.toolchain_status() is None or bool(os.environ.get("CI"))  # in CI a missing toolchain fails


@contextmanager
def registered(name: str, like: str, builder):
    """Design ``name`` with ``like``'s spec (and checkpoints) and ``builder``, for this block only."""
    registry.register_arch(dataclasses.replace(get_spec(like), name=name))(builder)
    try:
        yield name
    finally:
        registry._REGISTRY.pop(name, None)


def _jobs(arch: str, models_dir: Path, data_dir: Path, *measurements: str) -> list[Job]:
    return [j for j in gate_jobs([arch], quick=True, models_dir=models_dir, data_dir=data_dir)
            if j.measurement in measurements]


def _rows(jobs: list[Job]) -> list[dict]:
    # in this process: the tests patch runners and register variants here
    return [r for _, rows in execute(jobs, isolate=False) for r in rows]


def _renamed(figs: dict, src: str, dst: str) -> dict:
    """The variant's figures keyed under the original design, as a baseline check would see them."""
    return {dst: figs[src]}


@pytest.fixture(scope="module")
def unmodified(models_dir, data_dir) -> list[dict]:
    """Rows of the unmodified smallest design: profile, latency torch + ncnn, ARM cost."""
    wanted = ("profile", "latency", "speedup") + (("arm_cost",) if ARM else ())
    rows = _rows(_jobs(BASE, models_dir, data_dir, *wanted))
    assert all(r["status"] == "ok" for r in rows), [r["status"] for r in rows]
    return rows


# ----------------------------------------------------------------------------- rows -> figures

def _lat(backend: str, rep: int, ms: float, calib_ms: float = 10.0, status: str = "ok", **kw) -> dict:
    return {"arch": "d", "measurement": "latency", "backend": backend, "repeat": rep, "status": status,
            "latency_ms_median": ms, "latency_ratio_to_calib": ms / calib_ms, "parity_ok": kw.get(
                "parity_ok", None if backend == "torch" else True)}


def test_figures_from_rows_medians_rounds_and_keeps_parity_failures():
    rows = [
        {"arch": "d", "measurement": "profile", "status": "ok", "params": 10, "macs_g": 0.5},
        {"arch": "d", "measurement": "accuracy", "status": "skipped: no trained checkpoint", "weights": "trained"},
        {"arch": "d", "measurement": "accuracy", "status": "ok", "weights": "seed", "miou": 0.8},
        {"arch": "d", "measurement": "arm_cost", "status": "error: parity vs x86 ncnn ...",
         "arm_instructions_m": 5.0, "parity_ok_arm": False},
        _lat("torch", 0, 10.0), _lat("ncnn", 0, 5.0),
        _lat("torch", 1, 30.0), _lat("ncnn", 1, 6.0),  # a disturbed torch round: outvoted
        _lat("torch", 2, 11.0), _lat("ncnn", 2, float("nan"), status="error: parity max_abs_diff=1 > 0.1",
                                     parity_ok=False),
        {"arch": "d", "measurement": "speedup", "backend": "ncnn", "status": "ok", "speedup": 2.5, "parity_ok": True},
        {"arch": "e", "measurement": "profile", "status": "error: RuntimeError: boom"},
        {"arch": "f", "measurement": "speedup", "backend": "ncnn", "status": "error: parity max_abs_diff=1 > 0.1",
         "speedup": float("nan"), "parity_ok": False},
    ]
    f = figures_from_rows(rows)
    assert f["e"] == {}
    d = f["d"]
    assert d["params"] == 10 and d["macs_g"] == 0.5 and d["miou_seed"] == 0.8 and "miou_trained" not in d
    assert d["parity_ok_arm"] is False and "arm_instructions_m" not in d
    assert d["parity_ok_ncnn"] is False
    assert d["torch_over_calib"] == pytest.approx(1.1)  # median of 1.0, 3.0, 1.1
    assert d["ncnn_over_calib"] == pytest.approx(0.55)  # rounds 0 and 1 (round 2 failed parity)
    assert d["ncnn_over_torch"] == pytest.approx(1 / 2.5)  # from the interleaved comparison only
    assert f["f"] == {"parity_ok_ncnn": False}


def test_gate_jobs_compare_ncnn_with_torch_interleaved_once_per_design():
    from archs import list_archs
    for quick, st in ((True, gate.QUICK_INTERLEAVED), (False, gate.INTERLEAVED)):
        pairs = [j for j in gate_jobs(list_archs(), quick=quick) if j.measurement == "speedup"]
        assert sorted(j.arch for j in pairs) == sorted(list_archs())
        assert all(j.get("backend") == "ncnn" and j.get("threads") == gate.GATE_THREADS for j in pairs)
        assert all((j.get("rounds"), j.get("loops"), j.get("warmup")) == tuple(st.values()) for j in pairs)
        assert all(j.get("attempts") == (1 if quick else None) for j in pairs)


def test_ratio_spread():
    runs = [{"d": {"torch_over_calib": 1.0, "params": 1}}, {"d": {"torch_over_calib": 1.3, "params": 2}},
            {"d": {"torch_over_calib": 1.1}}]
    assert gate.ratio_spread(runs) == {"torch_over_calib": {"d": pytest.approx(0.3)}}


# ----------------------------------------------------------------------------- one extra 3x3 conv

def _with_extra_conv() -> nn.Module:
    model = ResidualDenseBiSeNet()
    model.spatial.append(nn.Conv2d(16, 16, 3, padding=1, bias=False))  # +2,304 params, +2.4 M MACs at 256
    return model


def test_extra_conv_raises_params_macs_and_arm_instructions(unmodified, models_dir, data_dir):
    wanted = ("profile",) + (("arm_cost",) if ARM else ())
    base = figures_from_rows([r for r in unmodified if r["measurement"] in wanted])
    assert check(base, base) == []
    with registered("gate_test_extra_conv", BASE, _with_extra_conv) as name:
        variant = _renamed(figures_from_rows(_rows(_jobs(name, models_dir, data_dir, *wanted))), name, BASE)
    flagged = {v.metric for v in check(variant, base)}
    assert {"params", "macs_g"} <= flagged
    assert variant[BASE]["params"] - base[BASE]["params"] == 16 * 16 * 9
    if not ARM:
        pytest.skip(f"ARM part: {arm.toolchain_status()}")
    assert "arm_instructions_m" in flagged and "parity_ok_arm" not in flagged
    assert variant[BASE]["arm_instructions_m"] > base[BASE]["arm_instructions_m"] * (1 + DEFAULT_RULES[
        "arm_instructions_m"].limit)


# ----------------------------------------------------------------------------- slowed backend

def _slowed(bind, times: int):
    def slow_bind(self, x):
        run = bind(self, x)

        def run_n():
            for _ in range(times - 1):
                run()
            return run()
        return run_n
    return slow_bind


@pytest.mark.parametrize("backend,runner,expected", [
    ("torch", "TorchRunner", {"torch_over_calib"}),
    ("ncnn", "NcnnRunner", {"ncnn_over_calib", "ncnn_over_torch"}),
])
def test_slowed_backend_raises_its_time_ratios(backend, runner, expected, unmodified, models_dir, data_dir,
                                              monkeypatch):
    lat = [r for r in unmodified if r["measurement"] in ("latency", "speedup")]
    base = figures_from_rows(lat)
    assert check(base, base) == []
    cls = getattr(backends, runner)
    monkeypatch.setattr(cls, "bind", _slowed(cls.bind, SLOWDOWN))
    # the slowed backend's latency rounds, and for ncnn its interleaved comparison with PyTorch
    job = [j for j in _jobs(BASE, models_dir, data_dir, "latency", "speedup") if j.get("backend") == backend]
    slowed = _rows(job)
    monkeypatch.undo()
    assert [r["status"] for r in slowed] == ["ok"] * (GATE_REPEATS + (backend == "ncnn"))
    current = figures_from_rows([r for r in lat if r["backend"] != backend] + slowed)
    flagged = {v.metric for v in check(current, base)}
    assert expected <= flagged, {m: (base[BASE].get(m), current[BASE].get(m)) for m in expected}
    assert not flagged & {"params", "macs_g", "parity_ok_ncnn"}


def test_unmodified_timing_passes(unmodified, models_dir, data_dir):
    base = figures_from_rows([r for r in unmodified if r["measurement"] in ("latency", "speedup")])
    again = figures_from_rows(_rows(_jobs(BASE, models_dir, data_dir, "latency", "speedup")))
    assert "ncnn_over_torch" in again[BASE]
    assert set(again[BASE]) == set(base[BASE])
    assert check(again, base) == [], {m: (base[BASE][m], again[BASE][m]) for m in base[BASE]}


# ----------------------------------------------------------------------------- accuracy drop

def _damaged_seg_matting() -> nn.Module:
    """seg_matting whose first convolution is zeroed right after its weights are loaded."""
    model = create_arch("seg_matting")

    def zero_first_conv(module, incompatible_keys):
        conv = next(m for m in module.modules() if isinstance(m, nn.Conv2d))
        conv.weight.data.zero_()
    model.register_load_state_dict_post_hook(zero_first_conv)
    return model


@pytest.fixture
def few_test_images(tmp_path, data_dir) -> Path:
    """The first images of the gate's accuracy set (eg1800 test, splits/eg1800_test.txt) in a data
    root of their own."""
    from bench.data.datasets import split_stems
    name, split = gate.GATE_ACCURACY_SET
    src, root = data_dir / name, tmp_path / "data"
    stems = split_stems(name, split)[:N_IMAGES]
    for sub in ("images", "masks"):
        (root / name / sub).mkdir(parents=True)
        for s in stems:
            f = next((src / sub).glob(f"{s}.*"))
            (root / name / sub / f.name).symlink_to(f)
    return root


def _seed_accuracy(arch: str, models_dir: Path, root: Path) -> dict:
    # the gate's own accuracy job on the few images ("all" of the small folder: the test stems)
    jobs = [Job.make("accuracy", arch, **{**dict(j.settings), "split": "all"})
            for j in _jobs(arch, models_dir, root, "accuracy") if j.get("weights") == "seed"]
    assert len(jobs) == 1
    return figures_from_rows(_rows(jobs))


def test_accuracy_drop_is_caught(models_dir, few_test_images):
    base = _seed_accuracy("seg_matting", models_dir, few_test_images)
    assert base["seg_matting"]["miou_seed"] > 0.7
    assert check(base, base) == []
    with registered("gate_test_damaged_seg_matting", "seg_matting", _damaged_seg_matting) as name:
        variant = _renamed(_seed_accuracy(name, models_dir, few_test_images), name, "seg_matting")
    assert [v.metric for v in check(variant, base)] == ["miou_seed"]


# ----------------------------------------------------------------------------- baseline file

def test_other_machine_kind_skips_ratios_but_checks_counts(unmodified, models_dir, data_dir, tmp_path,
                                                          monkeypatch, capsys):
    from bench.run.runinfo import run_meta
    meta = run_meta()
    other = {**meta["machine"], "cpu": "Some Other CPU @ 1.0GHz"}
    note = machine_mismatch(other, meta["machine"])
    assert note and "another machine kind" in note and machine_mismatch(meta["machine"], meta["machine"]) is None

    figs = figures_from_rows(unmodified)
    bad = {BASE: {**figs[BASE], "params": figs[BASE]["params"] - 1}}  # as if this tree added one parameter
    path = write_baseline(tmp_path / "baseline.json", new_baseline(bad, other, meta["versions"], "test"))
    # the CLI with the gate's jobs for BASE minus accuracy and ncnn (kept short)
    real = gate.gate_jobs
    monkeypatch.setattr(gate_check, "gate_jobs", lambda *a, **k: [
        j for j in real(*a, **k) if j.measurement in ("profile", "arm_cost")
        or (j.measurement == "latency" and j.get("backend") == "torch")])
    code = run_bench.main(["check", "--quick", "--arch", BASE, "--baseline", str(path), "--json"])
    out = capsys.readouterr()
    assert code == 1
    assert "another machine kind" in out.err
    rec = json.loads(out.out)
    verdicts = {c["metric"]: c["verdict"] for c in rec["comparisons"]}
    assert verdicts["params"] == "FAIL" and verdicts["macs_g"] == "ok"
    assert verdicts["torch_over_calib"].startswith("skipped: baseline from another machine kind")
    if ARM:
        assert verdicts["arm_instructions_m"] == "ok" and verdicts["parity_ok_arm"] == "ok"
    # the same comparison without the CLI
    res = {c.metric: c.verdict for c in compare(figs, bad, same_machine=False)}
    assert res["params"] == "FAIL" and res["ncnn_over_torch"].startswith("skipped: baseline from another")


def test_strict_fails_a_baseline_figure_the_run_could_not_measure(tmp_path, monkeypatch, capsys):
    """Without --strict a figure whose job was skipped (say the ARM toolchain is missing) is only
    reported; CI runs the gate with --strict so that cannot pass silently."""
    from bench.run.runinfo import run_meta
    meta = run_meta()
    figs = {BASE: {"params": get_spec(BASE).ref_params, "arm_instructions_m": 29.0}}
    path = write_baseline(tmp_path / "baseline.json", new_baseline(figs, meta["machine"], meta["versions"], "t"))
    monkeypatch.setattr(gate_check, "gate_jobs", lambda archs, **k: [Job.make("profile", a, input_size=256) for a in archs])
    assert run_bench.main(["check", "--quick", "--arch", BASE, "--baseline", str(path)]) == 0
    assert "skipped: not in the current run" in capsys.readouterr().out
    assert run_bench.main(["check", "--quick", "--strict", "--arch", BASE, "--baseline", str(path)]) == 1
    out = capsys.readouterr().out
    assert "must be measured (--strict)" in out and "gate: FAIL" in out


@pytest.mark.parametrize("content", [None, "{not json", '{"metrics": {}, "machine": {}, "version": 99}',
                                     '{"metrics": {"d": 1}, "machine": {}, "version": 1}'])
def test_missing_or_damaged_baseline_is_a_clear_error(content, tmp_path, capsys):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    assert run_bench.main(["check", "--quick", "--baseline", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and any(w in err for w in ("not found", "not valid JSON", "version", "must map"))


def test_update_baseline_needs_a_reason(tmp_path, capsys):
    assert run_bench.main(["check", "--update-baseline", "--baseline", str(tmp_path / "b.json")]) == 2
    assert "--reason" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


def test_partial_rebaseline_keeps_every_other_figure():
    from bench.gate.rules import gate_jobs, merge_figures, only_jobs

    jobs = gate_jobs(["esp_dense_seg", "seg_matting"], quick=True)
    picked = only_jobs(jobs, ["arm_instructions_m"])
    assert picked and {j.measurement for j in picked} == {"arm_cost"}
    assert {j.measurement for j in only_jobs(jobs, ["miou_trained", "params"])} == {"accuracy", "profile"}
    with pytest.raises(ValueError, match="cannot re-baseline ncnn_over_torch alone"):
        only_jobs(jobs, ["ncnn_over_torch"])
    old = {"a": {"arm_instructions_m": 10.0, "ncnn_over_torch": 0.5, "params": 3}}
    new = {"a": {"arm_instructions_m": 10.2, "params": 4}}
    assert merge_figures(old, new, ["arm_instructions_m"]) == {
        "a": {"arm_instructions_m": 10.2, "ncnn_over_torch": 0.5, "params": 3}}


def test_a_second_machine_kind_keeps_its_own_time_ratios(tmp_path):
    """The committed baseline comes from one machine kind; CI may run on another, where its time
    ratios mean nothing. `check --update-baseline --this-machine` there keeps that kind's ratios in
    the same file; later checks on either kind compare with their own, every other figure is shared."""
    from bench.gate.check import CheckRequest, conclude, plan_check
    from bench.gate.rules import BaselineError, gate_settings, load_baseline
    from bench.run.runinfo import machine_kind

    def meta(cpu):
        return {"machine": {"cpu": cpu, "cores": 2, "arch": "x86_64"}, "versions": {"torch": "t"},
                "commit": "abc1234", "dirty": False}

    amd, intel = meta("AMD EPYC"), meta("Intel Xeon")

    def rows(torch_ratio, ncnn_ratio):
        return [dict(_lat(b, rep, r * 10.0), arch=BASE) for rep in range(3)
                for b, r in (("torch", torch_ratio), ("ncnn", ncnn_ratio))]

    figs = {BASE: {"params": 142_761, "torch_over_calib": 0.7, "ncnn_over_calib": 0.25}}
    path = write_baseline(tmp_path / "baseline.json", new_baseline(figs, amd["machine"], {}, "first",
                                                                   settings=gate_settings(quick=True)))
    req = CheckRequest(path, (BASE,), quick=True)
    # on the other kind, before it has an entry: ratios skipped, with how to add them
    plan = plan_check(req, intel)
    assert "another machine kind" in plan.note and "--this-machine" in plan.note
    # adding it: the time-ratio jobs only; every other figure and the machine stay the baseline's
    add = CheckRequest(path, (BASE,), quick=True, update=True, reason="CI's kind", this_machine=True)
    plan = plan_check(add, intel)
    assert {j.measurement for j in plan.jobs} == {"latency", "speedup"}
    b = conclude(plan, rows(1.5, 0.55), []).new_baseline
    assert b.metrics == figs and b.machine == amd["machine"]
    entry = b.machines[machine_kind(intel["machine"])]
    assert entry["metrics"] == {BASE: {"torch_over_calib": 1.5, "ncnn_over_calib": 0.55}}
    assert entry["reason"] == "CI's kind" and entry["commit"] == "abc1234" and entry["settings"]["quick"]
    write_baseline(path, b)
    assert load_baseline(path).machines == b.machines  # survives the file
    # checks on each kind compare with their own ratios
    plan = plan_check(req, intel)
    assert plan.note is None and "this machine kind's entry" in plan.ratio_source
    verdicts = {c.metric: c.verdict for c in conclude(plan, rows(1.6, 0.56), []).comparisons}
    assert verdicts["params"] == "skipped: not in the current run"  # shared, from the main entry
    assert (verdicts["torch_over_calib"], verdicts["ncnn_over_calib"]) == ("ok", "ok")
    slowed = {c.metric: c.verdict for c in conclude(plan, rows(1.5, 1.2), []).comparisons}
    assert slowed["ncnn_over_calib"] == "FAIL" and slowed["torch_over_calib"] == "ok"
    on_amd = {c.metric: c.verdict for c in conclude(plan_check(req, amd), rows(1.5, 0.55), []).comparisons}
    assert on_amd["torch_over_calib"] == "FAIL"  # 1.5 against AMD's 0.7: the entries are not mixed
    # adding the baseline's own kind is refused before anything is measured
    with pytest.raises(ValueError, match="baseline's own kind"):
        plan_check(CheckRequest(path, (BASE,), quick=True, update=True, reason="x", this_machine=True), amd)
    # a full re-baseline (on the main kind) and a partial one keep the other kind's entry
    full = conclude(plan_check(CheckRequest(path, (BASE,), quick=True, update=True, reason="all"), amd),
                    rows(0.8, 0.3), []).new_baseline
    assert full.machines == b.machines and full.metrics[BASE]["torch_over_calib"] == pytest.approx(0.8)
    part = conclude(plan_check(CheckRequest(path, (BASE,), quick=True, update=True, reason="p", only=("params",)),
                               amd), [], []).new_baseline
    assert part.machines == b.machines
    # usage and a damaged entry
    assert "--update-baseline" in CheckRequest(path, this_machine=True).usage_error()
    assert "--only" in CheckRequest(path, update=True, reason="r", only=("params",), this_machine=True).usage_error()
    bad = json.loads(path.read_text())
    bad["machines"]["x"] = {"metrics": {}}
    path.write_text(json.dumps(bad))
    with pytest.raises(BaselineError, match="machines\\['x'\\] needs 'machine'"):
        load_baseline(path)
