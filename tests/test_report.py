"""The comparison report: summary table, Pareto front, run comparison, files, HTML in a browser."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports.report import (compare_runs, indistinguishable, latency_rows, normalise_layer_table, pareto_front,
                            recommendations, summary_table, write_examples, write_report)

DESIGNS = ["esp_dense_seg", "mobilenet_dilate_unet", "residualdense_bisenet", "seg_matting",
           "shuffle_seg_skipnet"]
# arch: (params, GMACs at 256, mIoU or None, torch ms, ncnn ms at 2 threads, ARM M instructions)
FAKE = {
    "esp_dense_seg": (240_237, 0.194, 0.79, 10.3, 8.9, 410.0),
    "mobilenet_dilate_unet": (2_378_217, 0.946, 0.81, 20.1, 7.9, 900.0),
    "residualdense_bisenet": (142_761, 0.059, None, 5.1, 3.0, 150.0),
    "seg_matting": (829_225, 0.224, 0.86, 9.4, 7.2, 380.0),
    "shuffle_seg_skipnet": (918_731, 0.187, 0.70, 11.8, 3.0, 170.0),
}


def _row(measurement, arch, status="ok", **kw):
    opts = ",".join(f"{k}={v}" for k, v in sorted(kw.items()) if k in ("input_size", "threads", "backend", "weights"))
    return {"job": f"{measurement}/{arch}/{opts}", "measurement": measurement, "arch": arch, "status": status,
            "job_seconds": 0.1, **kw}


def fake_rows(peer: bool = True) -> pd.DataFrame:
    """A small but complete results table, in the row format of bench/jobs.py."""
    rows = []
    for arch, (params, macs, miou, t_torch, t_ncnn, arm) in FAKE.items():
        for size in (128, 256, 512):
            f = (size / 256) ** 2
            rows.append(_row("profile", arch, input_size=size, params=params, params_trainable=params,
                             ref_params=params, macs_g=macs * f, macs_g_thop=macs * f, size_mb_fp32=params * 4 / 2**20,
                             size_mb_fp16=params * 2 / 2**20, act_peak_mb=12.0 * f))
        if miou is None:
            rows.append(_row("accuracy", arch, "skipped: no trained checkpoint checkpoints/x.pt", weights="trained",
                             input_size=256))
        else:
            rows.append(_row("accuracy", arch, weights="seed" if arch == "seg_matting" else "trained",
                             dataset="val48", input_size=256, miou=miou, miou_ci_low=miou - 0.045,
                             miou_ci_high=miou + 0.04, n_images=48))
        for backend, t2 in (("torch", t_torch), ("ncnn", t_ncnn)):
            for threads in (1, 2):
                for size in ((128, 256, 512) if threads == 2 else (256,)):
                    t = t2 * (size / 256) ** 2 * (1.8 if threads == 1 else 1.0)
                    rows.append(_row("latency", arch, backend=backend, threads=threads, input_size=size,
                                     latency_ms_median=t, latency_ms_p10=t * 0.95, latency_ms_p90=t * 1.1,
                                     latency_cv=0.04, achieved_gmacs_per_s=macs * (size / 256) ** 2 / (t / 1e3),
                                     peak_gmacs_per_s=95.0 if threads == 2 else 50.0,
                                     parity_max_abs_diff=2e-4 if backend == "ncnn" else None,
                                     parity_ok=True if backend == "ncnn" else None))
        rows.append(_row("arm_cost", arch, input_size=256, arm_instructions_m=arm))
    rows.append(_row("latency", "seg_matting", "error: RuntimeError: onnx export failed", backend="onnxruntime",
                     threads=2, input_size=256))
    if peer:
        rows.append(_row("accuracy", "mediapipe_selfie", weights="published", dataset="val48", input_size=256,
                         miou=0.83, miou_ci_low=0.79, miou_ci_high=0.87, n_images=48))
        rows.append(_row("latency", "mediapipe_selfie", backend="litert", threads=2, input_size=256,
                         latency_ms_median=2.2, latency_ms_p10=2.1, latency_ms_p90=2.4))
    return pd.DataFrame(rows)


META = {"date": "2026-11-25T15:13:12+00:00", "commit": "abc1234", "dirty": False,
        "machine": {"cpu": "AMD EPYC", "cores": 2, "os": "Linux-x86_64", "arch": "x86_64"},
        "versions": {"python": "3.11.7", "torch": "2.13.0+cpu"}, "plan": {"jobs": 80, "input_size": 256}}


# ----------------------------------------------------------------------------- pure functions

def test_pareto_front_hand_made():
    # (cost, accuracy): the front is A (cheapest), C, E (most accurate); B and D are dominated,
    # F has no cost, G ties with C exactly (both on the front)
    pts = [(1.0, 0.70), (2.0, 0.69), (3.0, 0.80), (4.0, 0.79), (6.0, 0.85), (float("nan"), 0.99), (3.0, 0.80)]
    assert pareto_front(pts) == [0, 2, 6, 4]
    assert pareto_front([]) == []
    assert pareto_front([(5.0, 0.5)]) == [0]
    # equal cost: only the more accurate is on the front; equal accuracy: only the cheaper
    assert pareto_front([(1.0, 0.5), (1.0, 0.6), (2.0, 0.6)]) == [1]


def test_summary_table_one_row_per_design_and_peer():
    s = summary_table(fake_rows(), designs=DESIGNS)
    assert list(s["arch"]) == [*DESIGNS, "mediapipe_selfie"]
    assert list(s["kind"]) == ["design"] * 5 + ["peer"]
    r = s.set_index("arch")
    assert r.at["seg_matting", "miou"] == pytest.approx(0.86)
    assert r.at["seg_matting", "weights"] == "seed"
    assert r.at["mobilenet_dilate_unet", "macs_g"] == pytest.approx(0.946)  # at 256, not 128 or 512
    assert r.at["mobilenet_dilate_unet", "latency_ms_torch"] == pytest.approx(20.1)  # 2 threads, 256
    assert r.at["mobilenet_dilate_unet", "ncnn_speedup"] == pytest.approx(20.1 / 7.9)
    assert r.at["shuffle_seg_skipnet", "arm_instructions_m"] == 170.0
    assert np.isnan(r.at["residualdense_bisenet", "miou"])
    assert "accuracy/trained: skipped" in r.at["residualdense_bisenet", "status"]
    assert r.at["esp_dense_seg", "status"] == "ok"
    assert "latency/onnxruntime: error" in r.at["seg_matting", "status"]
    assert r.at["mediapipe_selfie", "latency_ms_litert"] == pytest.approx(2.2)
    assert np.isnan(r.at["mediapipe_selfie", "params"])
    # at one thread
    s1 = summary_table(fake_rows(), threads=1, designs=DESIGNS).set_index("arch")
    assert s1.at["seg_matting", "latency_ms_torch"] == pytest.approx(9.4 * 1.8)


def test_summary_table_survives_missing_columns():
    df = pd.DataFrame([{"job": "profile/a", "measurement": "profile", "arch": "a", "status": "ok", "params": 10},
                       {"job": "latency/a", "measurement": "latency", "arch": "a", "status": "error: boom"}])
    s = summary_table(df, designs=["a"])
    assert s.at[0, "params"] == 10 and np.isnan(s.at[0, "miou"]) and np.isnan(s.at[0, "latency_ms_ncnn"])
    assert s.at[0, "status"] == "latency: error"
    assert summary_table(pd.DataFrame()).empty
    assert recommendations(s) == []


def test_overlapping_cis_are_reported():
    s = summary_table(fake_rows(peer=False), designs=DESIGNS)
    pairs = set(indistinguishable(s))
    # 0.79 [0.745, 0.83] and 0.81 [0.765, 0.85] overlap; 0.70 [0.655, 0.74] and 0.86 [0.815, 0.90] do not
    assert ("mobilenet_dilate_unet", "esp_dense_seg") in pairs
    assert not any("shuffle_seg_skipnet" in p and "seg_matting" in p for p in pairs)
    recs = recommendations(s)
    ncnn = next(r for r in recs if r.startswith("**ncnn x86"))
    # seg_matting is the most accurate; mobilenet overlaps it but is slower in ncnn, so seg_matting ships,
    # and shuffle_seg_skipnet is the cheaper Pareto point with a resolved accuracy cost
    assert "ship `seg_matting`" in ncnn and "`shuffle_seg_skipnet`" in ncnn
    torch_rec = next(r for r in recs if r.startswith("**PyTorch"))
    assert "ship `seg_matting`" in torch_rec
    assert "not compared (accuracy not measured): `residualdense_bisenet`" in torch_rec


def test_accuracy_pooled_over_validation_sets():
    rows = [_row("accuracy", "a", weights="trained", dataset="hsd", input_size=256, miou=0.80,
                 miou_ci_low=0.75, miou_ci_high=0.85, n_images=40),
            _row("accuracy", "a", weights="trained", dataset="aisegment-40", input_size=256, miou=0.90,
                 miou_ci_low=0.85, miou_ci_high=0.95, n_images=8),
            _row("accuracy", "a", weights="random", dataset="hsd", input_size=256, miou=0.1,
                 miou_ci_low=0.05, miou_ci_high=0.15, n_images=40)]
    r = summary_table(pd.DataFrame(rows), designs=["a"]).iloc[0]
    assert r["weights"] == "trained" and r["n_images"] == 48
    assert r["miou"] == pytest.approx((40 * 0.80 + 8 * 0.90) / 48)
    half = 0.05 * np.sqrt((40 / 48) ** 2 + (8 / 48) ** 2)
    assert r["miou_ci_high"] - r["miou"] == pytest.approx(half)
    assert r["dataset"] == "aisegment-40+hsd (pooled)"
    random_only = summary_table(pd.DataFrame(rows[2:]), designs=["a"]).iloc[0]
    assert np.isnan(random_only["miou"])  # random weights are not an accuracy of the design
    only_hsd = summary_table(pd.DataFrame(rows), dataset="hsd", designs=["a"]).iloc[0]
    assert only_hsd["miou"] == pytest.approx(0.80) and only_hsd["n_images"] == 40


def test_compare_runs_relative_change():
    a = fake_rows(peer=False)
    b = a.copy()
    sel = (b["measurement"] == "latency") & (b["arch"] == "esp_dense_seg") & (b["backend"] == "ncnn")
    lat_cols = ["latency_ms_median", "latency_ms_p10", "latency_ms_p90"]
    b.loc[sel, lat_cols] = b.loc[sel, lat_cols] / 2
    b.loc[b["arch"] == "seg_matting", "miou"] = 0.87
    cmp = compare_runs(a, b).set_index(["arch", "metric"])
    row = cmp.loc[("esp_dense_seg", "latency_ms_ncnn")]
    assert row["rel_change"] == pytest.approx(-0.5) and row["verdict"] == "better"
    assert cmp.loc[("seg_matting", "miou"), "verdict"] == "within CI"
    assert ("esp_dense_seg", "params") not in cmp.index  # unchanged metrics are left out
    c = a.copy()
    c.loc[c["measurement"] == "latency", "latency_ms_median"] *= 1.02  # inside p10..p90 of run a
    assert set(compare_runs(a, c).query("metric.str.startswith('latency_ms')")["verdict"]) == {"within noise"}
    assert compare_runs(a, a).empty


def test_layer_table_normalisation():
    t = normalise_layer_table([{"name": "enc.conv1", "type": "Conv2d", "macs_g": 0.3},
                               {"name": "dec.up", "type": "ConvTranspose2d", "macs_g": 0.1}])
    assert list(t["layer"]) == ["enc.conv1", "dec.up"] and t["share"].sum() == pytest.approx(1.0)
    assert t["share"].iloc[0] == pytest.approx(0.75)


# ----------------------------------------------------------------------------- files

def _write(tmp_path: Path, df: pd.DataFrame) -> Path:
    run = tmp_path / "run"
    return write_report(run, df, META, layer_tables=False)


def test_write_report_files_and_embedded_images(tmp_path):
    html_path = _write(tmp_path, fake_rows())
    run = html_path.parent
    for name in ("report.md", "report.html", "summary.csv", "results.csv", "results.json",
                 "plot_accuracy_vs_latency.png", "plot_accuracy_vs_macs.png", "plot_latency_by_backend.png",
                 "plot_latency_vs_size.png", "plot_thread_scaling.png"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    md = (run / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md)
    assert len(linked) == 5 and all((run / p).is_file() for p in linked)
    assert "Which design to ship" in md and "Cannot be told apart" in md and "abc1234" in md
    assert "| `residualdense_bisenet` |" in md and "—" in md
    page = html_path.read_text()
    embedded = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(linked)
    import base64
    assert all(base64.b64decode(e)[:8] == b"\x89PNG\r\n\x1a\n" for e in embedded)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched from a network
    assert len(pd.read_csv(run / "results.csv")) == len(fake_rows())


def test_noisy_timing_is_flagged(tmp_path):
    df = fake_rows(peer=False)
    sel = (df["measurement"] == "latency") & (df["arch"] == "esp_dense_seg") & (df["backend"] == "ncnn")
    df.loc[sel, "latency_cv"] = 0.9
    df.loc[df["measurement"] == "latency", "load_avg_1m"] = 5.5
    md = (_write(tmp_path, df).parent / "report.md").read_text()
    assert "Timing was disturbed" in md and "load average up to 5.5" in md
    assert "| 8.90† |" in md and "| 10.30 |" in md  # only the noisy cell is marked
    assert "Timing was disturbed" not in (_write(tmp_path / "clean", fake_rows()).parent / "report.md").read_text()


def test_repeatability_table_and_warning(tmp_path):
    df = fake_rows(peer=False)
    rep = [_row("latency_repeat", "esp_dense_seg", backend="ncnn", threads=1, input_size=256, runs=5, runs_ok=5,
                runs_quiet=5, run_medians_ms="12.100 12.300 12.000 12.200 12.400", latency_ms_median_of_runs=12.2,
                between_run_cv=0.013, within_run_cv_median=0.02, repeatable=True, max_between_run_cv=0.05),
           _row("latency_repeat", "shuffle_seg_skipnet", backend="ncnn", threads=2, input_size=256, runs=5,
                runs_ok=5, runs_quiet=5, run_medians_ms="4.800 12.600 4.900 4.800 4.700",
                latency_ms_median_of_runs=4.8, between_run_cv=0.62, within_run_cv_median=0.03, repeatable=False,
                max_between_run_cv=0.05)]
    md = (_write(tmp_path, pd.concat([df, pd.DataFrame(rep)], ignore_index=True)).parent / "report.md").read_text()
    assert "Latency repeatability at 256x256" in md
    assert "| 5 / 5 (5 quiet) | 12.100 12.300 12.000 12.200 12.400 | 12.20 | 1.3% | 2.0% | yes |" in md
    assert "| **no** |" in md
    assert "Medians that did not repeat" in md and "1 of 2" in md and "62.0%" in md
    clean = (_write(tmp_path / "clean", fake_rows()).parent / "report.md").read_text()
    assert "Medians that did not repeat" not in clean and "Latency repeatability at" not in clean


def test_summary_uses_the_median_over_fresh_processes_where_there_is_one():
    df = fake_rows(peer=False)
    base = summary_table(df, 256).set_index("arch")
    t = base.loc["seg_matting", "latency_ms_torch"]  # 2 threads, one process
    rep = _row("latency_repeat", "seg_matting", backend="torch", threads=2, input_size=256, runs=5, runs_ok=5,
               latency_ms_median_of_runs=t / 2, repeatable=True)
    got = summary_table(pd.concat([df, pd.DataFrame([rep])], ignore_index=True), 256).set_index("arch")
    assert got.loc["seg_matting", "latency_ms_torch"] == pytest.approx(t / 2)
    assert got.loc["seg_matting", "latency_ms_torch_p90"] == pytest.approx(base.loc["seg_matting", "latency_ms_torch_p90"] / 2)
    assert got.loc["seg_matting", "latency_runs_torch"] == 5 and base.loc["seg_matting", "latency_runs_torch"] == 1
    assert got.loc["seg_matting", "ncnn_speedup"] == pytest.approx(base.loc["seg_matting", "ncnn_speedup"] / 2)
    assert got.loc["esp_dense_seg", "latency_ms_torch"] == base.loc["esp_dense_seg", "latency_ms_torch"]
    # the raw rows are untouched
    assert ((df["measurement"] == "latency") & (df["status"] == "ok")).sum() == (latency_rows(df)["latency_runs"] == 1).sum()


def test_write_report_with_almost_nothing(tmp_path):
    df = pd.DataFrame([{"job": "profile/a", "measurement": "profile", "arch": "a", "status": "ok", "params": 10}])
    html_path = _write(tmp_path, df)
    md = (html_path.parent / "report.md").read_text()
    assert "Accuracy was not measured" in md and "Not plotted" in md
    assert html_path.read_text().count("<img") == 0


def test_examples_strip_without_data_says_why(tmp_path):
    run = tmp_path / "run"
    info = write_examples(run, tmp_path / "nope", archs=["esp_dense_seg"])
    assert info["image"] is None and "not found" in info["note"]
    _write(tmp_path, fake_rows())  # the report picks the note up
    assert "example predictions skipped" in (run / "report.md").read_text()


def test_examples_strip_with_untrained_design(tmp_path):
    import cv2
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(data / "images" / f"s{i}.jpg"), rng.integers(0, 255, (48, 40, 3), dtype=np.uint8))
        cv2.imwrite(str(data / "masks" / f"s{i}.png"), (rng.random((48, 40)) > 0.5).astype(np.uint8) * 255)
    run = tmp_path / "run"
    info = write_examples(run, data, archs=["esp_dense_seg"], input_size=64, n_images=2,
                          checkpoints_dir=tmp_path / "no_checkpoints")
    assert info["weights"] == {"esp_dense_seg": "untrained"} and info["stems"] == ["s0", "s1"]
    assert (run / "examples.png").is_file()
    write_report(run, fake_rows(), META, layer_tables=False)
    assert "examples.png" in (run / "report.md").read_text()


# ----------------------------------------------------------------------------- command line

def test_cli_report_and_compare(tmp_path, capsys):
    import run_bench
    from reports.results import RunWriter

    dirs = []
    for name, scale in (("a", 1.0), ("b", 0.8)):
        df = fake_rows(peer=False)
        for col in ("latency_ms_median", "latency_ms_p10", "latency_ms_p90"):
            df.loc[df["measurement"] == "latency", col] *= scale
        w = RunWriter(tmp_path / name)
        w.append(df.to_dict("records"))
        w.write_meta(META)
        w.finish()
        dirs.append(str(tmp_path / name))
    assert run_bench.main(["report", dirs[0], "--no-layers"]) == 0
    out = capsys.readouterr().out
    assert "report.html" in out and (tmp_path / "a" / "report.html").is_file()
    assert run_bench.main(["compare", *dirs]) == 0
    out = capsys.readouterr().out
    assert "latency_ms_ncnn" in out and "-20.0%" in out and "better" in out


# ----------------------------------------------------------------------------- browser

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_html_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (Debian package `chromium`, listed in .ci/apt-packages.txt)")
        pytest.skip("chromium not installed (apt-get install chromium); required when CI is set")
    html_path = _write(tmp_path, fake_rows())
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
           "--window-size=1200,1600", html_path.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    from PIL import Image
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert img.shape[:2] == (1600, 1200)
    # not blank: text and plots give many non-white pixels and real contrast
    non_white = (img.min(axis=2) < 200).mean()
    assert non_white > 0.02 and img.std() > 20, (non_white, img.std())
    # the embedded plots were decoded: some saturated colour (the design colours) is on the page
    sat = img.max(axis=2) - img.min(axis=2)
    assert (sat > 80).mean() > 0.001


def test_summary_prefers_the_validation_split():
    """A whole-set row (e.g. the full-HSD reproduction of a checkpoint) must not replace the
    validation row that every design is compared on."""
    rows = [
        {"job": "a1", "measurement": "accuracy", "arch": "seg_matting", "status": "ok", "weights": "seed",
         "dataset": "hsd", "split": "val", "input_size": 256, "miou": 0.80, "miou_ci_low": 0.75,
         "miou_ci_high": 0.85, "n_images": 44},
        {"job": "a2", "measurement": "accuracy", "arch": "seg_matting", "status": "ok", "weights": "seed",
         "dataset": "hsd", "split": "all", "input_size": 256, "miou": 0.90, "miou_ci_low": 0.88,
         "miou_ci_high": 0.92, "n_images": 220},
    ]
    summary = summary_table(pd.DataFrame(rows), input_size=256)
    row = summary[summary["arch"] == "seg_matting"].iloc[0]
    assert row["miou"] == pytest.approx(0.80)


def test_summary_prefers_the_suites_own_training_over_a_published_checkpoint():
    """Every design is compared as trained by the same recipe; seg_matting's seed checkpoint (trained
    elsewhere, on unknown data) is used only when no trained checkpoint was measured."""
    base = {"measurement": "accuracy", "arch": "seg_matting", "status": "ok", "dataset": "hsd",
            "split": "val", "input_size": 256, "n_images": 44}
    seed = {**base, "job": "s", "weights": "seed", "miou": 0.88, "miou_ci_low": 0.84, "miou_ci_high": 0.91}
    trained = {**base, "job": "t", "weights": "trained", "miou": 0.81, "miou_ci_low": 0.77, "miou_ci_high": 0.85}
    row = summary_table(pd.DataFrame([seed, trained]), input_size=256).iloc[0]
    assert (row["weights"], row["miou"]) == ("trained", pytest.approx(0.81))
    row = summary_table(pd.DataFrame([seed]), input_size=256).iloc[0]
    assert (row["weights"], row["miou"]) == ("seed", pytest.approx(0.88))


def test_summary_takes_the_interleaved_speedup_where_there_is_one(tmp_path):
    df = fake_rows(peer=False)
    base = summary_table(df, 256).set_index("arch")
    pair = _row("speedup", "seg_matting", backend="ncnn", threads=2, input_size=256, rounds=10, speedup=1.5,
                speedup_min=1.4, speedup_max=1.6, speedup_cv=0.02, base_ms_median=15.0, other_ms_median=10.0,
                base_round_cv=0.03, other_round_cv=0.02, quiet=True)
    other_threads = dict(pair, threads=1, speedup=9.0, job="speedup/seg_matting/t1")
    both = pd.concat([df, pd.DataFrame([pair, other_threads])], ignore_index=True)
    got = summary_table(both, 256).set_index("arch")
    assert got.loc["seg_matting", "ncnn_speedup"] == 1.5  # at the summary's thread count (2), not 1
    assert (got.loc["seg_matting", "ncnn_speedup_min"], got.loc["seg_matting", "ncnn_speedup_max"]) == (1.4, 1.6)
    # designs without one keep the ratio of the separate medians, without a range
    assert got.loc["esp_dense_seg", "ncnn_speedup"] == pytest.approx(base.loc["esp_dense_seg", "ncnn_speedup"])
    assert np.isnan(got.loc["esp_dense_seg", "ncnn_speedup_min"])
    md = (_write(tmp_path, both).parent / "report.md").read_text()
    assert "1.50x (1.40-1.60)" in md and "Interleaved speed-ups at 256x256" in md
    assert "| `seg_matting` | ncnn x86 | 2 | 15.00 | 10.00 | 1.50x | 1.40-1.60 | 2.0% | 3.0% / 2.0% | yes | ok |" in md
    clean = (_write(tmp_path / "clean", df).parent / "report.md").read_text()
    assert "Interleaved speed-ups" not in clean
