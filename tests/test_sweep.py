"""Sweep matrices: checked before anything runs, expanded into unique jobs, training seeds summarised."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.run.sweep import SweepError, expand, load_matrix, seed_spread
from reports.sweep import sweep_doc

TINY_RECIPE = """
[recipes.tiny]
train_size = 64
eval_size = 64
batch_size = 4
cache_short_side = 96
evals = 1
"""


def write(tmp_path, text: str):
    path = tmp_path / "m.toml"
    path.write_text(text)
    return path


def test_example_matrix_expands_to_unique_jobs():
    m = load_matrix("bench/sweeps/example.toml")
    jobs = expand(m)
    assert len({j.key for j in jobs}) == len(jobs)
    n_latency = len(m.archs) * len(m.sizes) * len(m.threads) * len(m.backends)
    n_train = len(m.archs) * len(m.seeds) * len(m.recipes)
    assert sum(j.measurement == "latency" for j in jobs) == n_latency
    assert sum(j.measurement == "train" for j in jobs) == n_train
    assert sum(j.measurement == "profile" for j in jobs) == len(m.archs) * len(m.sizes)


@pytest.mark.parametrize("text, message", [
    ('archs = ["nope"]', "unknown design 'nope'"),
    ('archs = ["esp_dense_seg"]\nsizes = [250]', "size 250 is not a positive multiple of 16"),
    ('archs = ["esp_dense_seg"]\nthreads = [0]', "threads must be whole numbers >= 1"),
    ('archs = ["esp_dense_seg"]\nbackends = ["tensorrt"]', "unknown backend 'tensorrt'"),
    ('archs = ["esp_dense_seg"]\nmeasurements = ["accuracy"]', "measurement 'accuracy' cannot be swept"),
    ('archs = ["esp_dense_seg"]\nsize = [256]', "unknown field(s) size"),
    ('sizes = [256]', "'archs' is required"),
    ('archs = ["esp_dense_seg"]\n[recipes.x]\nlearning_rate = 1', "unknown Recipe field(s) learning_rate"),
    ('archs = [', "cannot read the sweep matrix"),
])
def test_bad_matrix_is_an_error_naming_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SweepError) as err:
        load_matrix(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_seed_spread_against_hand_computed_figures():
    rows = pd.DataFrame([
        {"measurement": "train", "status": "ok", "arch": "a", "recipe": "r", "seed": s, "val_miou": v,
         "val_miou_ci_low": v - h, "val_miou_ci_high": v + h}
        for s, v, h in ((0, 0.80, 0.04), (1, 0.84, 0.02), (2, 0.82, 0.03))] + [
        {"measurement": "train", "status": "error: x", "arch": "a", "recipe": "r", "seed": 3, "val_miou": 0.1},
        {"measurement": "profile", "status": "ok", "arch": "a"}])
    s = seed_spread(rows).iloc[0]
    assert s.seeds == 3 and s.val_miou_mean == pytest.approx(0.82)
    assert s.val_miou_sd_seeds == pytest.approx(0.02) and s.ci_half_width_mean == pytest.approx(0.03)
    assert (s.val_miou_min, s.val_miou_max) == (0.80, 0.84)
    one = seed_spread(rows[rows["seed"].isin([0])])
    assert math.isnan(one.iloc[0].val_miou_sd_seeds)


@pytest.mark.slow
def test_sweep_cli_trains_two_seeds_and_reports_the_spread(tmp_path, data_dir):
    from run_bench import main

    matrix = write(tmp_path, f'archs = ["residualdense_bisenet"]\nmeasurements = ["train"]\nseeds = [0, 1]\n'
                             f'train_steps = 3\ndata_dir = "{data_dir}"\n' + TINY_RECIPE)
    out = tmp_path / "run"
    assert main(["sweep", str(matrix), "--out", str(out)]) == 0
    df = pd.read_csv(out / "results.csv")
    assert sorted(df["seed"]) == [0, 1] and (df["status"] == "ok").all()
    assert (df["train_steps"] == 3).all() and df["val_miou"].between(0, 1).all()
    report = (out / "report.md").read_text()
    assert "seed-to-seed spread" in report and "| residualdense_bisenet | tiny | 2 |" in report
    # resume: nothing left to do, the rows stay
    assert main(["sweep", str(matrix), "--resume", str(out)]) == 0
    assert len(pd.read_csv(out / "results.csv")) == 2


def test_sweep_cli_usage_errors(tmp_path, capsys):
    from run_bench import main

    assert main(["sweep", str(write(tmp_path, 'archs = ["nope"]'))]) == 2
    assert "unknown design 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "x.toml", "--executor", "dask"])
    assert exc.value.code == 2
    assert "expected local, ray or ray:ADDRESS" in capsys.readouterr().err


def test_sweep_doc_groups_timings_by_machine():
    rows = pd.DataFrame([
        {"job": "l1", "measurement": "latency", "status": "ok", "arch": "a", "input_size": 256, "threads": 1,
         "backend": "torch", "latency_ms_median": 5.0, "node_machine": {"cpu": "X", "cores": 2}},
        {"job": "l2", "measurement": "latency", "status": "ok", "arch": "a", "input_size": 256, "threads": 1,
         "backend": "torch", "latency_ms_median": 9.0, "node_machine": {"cpu": "Y", "cores": 8}}])
    md = sweep_doc(rows).to_markdown(__import__("pathlib").Path("."))
    assert "Latency on X / 2 cores" in md and "Latency on Y / 8 cores" in md


def test_cluster_simulation_against_hand_computed_schedules():
    from bench.run.cluster import simulate

    jobs = [(10.0, True), (10.0, True), (4.0, False), (4.0, False), (4.0, False), (4.0, False)]
    # one node of 2 CPUs: the timing jobs in turn (20 s), then the others two at a time (8 s)
    assert simulate(jobs, 1, 2).wall_s == 28.0
    # two nodes: one timing job each (10 s), then four other jobs on four CPUs (4 s)
    assert simulate(jobs, 2, 2).wall_s == 14.0
    # 16 nodes: every job at once, the longest one sets the time
    assert simulate(jobs, 16, 2).wall_s == 10.0
    assert simulate([(3.0, False)] * 5, 1, 1).wall_s == 15.0
    r = simulate(jobs, 1, 2)
    assert (r.timing_s, r.other_s, r.jobs) == (20.0, 16.0, 6)
    with pytest.raises(ValueError):
        simulate(jobs, 0, 2)
