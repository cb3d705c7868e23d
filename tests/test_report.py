"""The comparison report: summary table, Pareto front, run comparison, files, HTML in a browser.

(Over 600 lines: the report's views share one set of constructed rows, ``fake_rows``; the tests of
each view stay beside them.)"""
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
                            plot_points, recommendations, summary_display, summary_table, write_examples,
                            write_report)

pytestmark = [pytest.mark.slow]  # full reports with plots

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
    """A small but complete results table, in the row format of bench/run/jobs.py."""
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
        rows.append(_row("accuracy", "mediapipe_selfie", weights="published", dataset="val48", native_input="144x256",
                         miou=0.83, miou_ci_low=0.79, miou_ci_high=0.87, n_images=48))
        rows.append(_row("latency", "mediapipe_selfie", backend="litert", threads=2, native_input="144x256",
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
    # every row states its input: designs at the run's size, a peer at its own
    assert r.at["mediapipe_selfie", "input"] == "144x256" and r.at["esp_dense_seg", "input"] == "256x256"
    heads, cells = summary_display(s)
    assert "input" in heads and not any("256x256" in h for h in heads)
    assert cells[-1][:3] == ["`mediapipe_selfie` (peer)", "published", "144x256"]
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


def test_accuracy_sets_are_never_pooled():
    """Each data set on its own: the summary takes the headline set (eg1800 test when measured, else the
    first of the plan's sets measured), never a mix of sets."""
    def acc(dataset, split, miou, n, weights="trained"):
        return _row("accuracy", "a", weights=weights, dataset=dataset, split=split, input_size=256, miou=miou,
                    miou_ci_low=miou - 0.05, miou_ci_high=miou + 0.05, n_images=n)
    rows = [acc("hsd", "val", 0.80, 40), acc("aisegment-40", "val", 0.90, 8), acc("hsd", "val", 0.1, 40, "random")]
    r = summary_table(pd.DataFrame(rows), designs=["a"]).iloc[0]
    assert (r["dataset"], r["split"], r["n_images"], r["miou"]) == ("hsd", "val", 40, pytest.approx(0.80))
    with_test = summary_table(pd.DataFrame(rows + [acc("eg1800", "test", 0.93, 264)]), designs=["a"]).iloc[0]
    assert (with_test["dataset"], with_test["miou"]) == ("eg1800", pytest.approx(0.93))
    only_ais = summary_table(pd.DataFrame(rows), dataset="aisegment-40", designs=["a"]).iloc[0]
    assert only_ais["miou"] == pytest.approx(0.90) and only_ais["n_images"] == 8
    random_only = summary_table(pd.DataFrame(rows[2:]), designs=["a"]).iloc[0]
    assert np.isnan(random_only["miou"])  # random weights are not an accuracy of the design


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
    for name in ("report.md", "report.html", "summary.csv", "results.csv", "results.json", "plot_headline.png",
                 "plot_accuracy_vs_latency.png", "plot_accuracy_vs_macs.png", "plot_latency_by_backend.png",
                 "plot_latency_vs_size.png", "plot_thread_scaling.png"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    md = (run / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md)
    assert len(linked) == 7 and all((run / p).is_file() for p in linked)
    assert linked[0] == "plot_headline.png"  # the headline plot comes first
    assert "What to ship" in md and "Cannot be told apart" in md and "abc1234" in md
    # the answer comes before the protocol: the run's header and protocol strings are in the appendix
    assert md.index("What to ship") < md.index("## Appendix") and md.index("**Protocol**") > md.index("## Details")
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
    assert "| 8.90* |" in md and "| 10.30 |" in md  # only the noisy cell is marked (* = frame-to-frame CV)
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


def test_examples_strip_without_rows_says_why(tmp_path):
    run = tmp_path / "run"
    info = write_examples(run, fake_rows(), archs=["esp_dense_seg"])
    assert info["image"] is None and "no example rows" in info["note"]
    _write(tmp_path, fake_rows())  # the report picks the note up
    assert "example predictions skipped" in (run / "report.md").read_text()


def test_examples_and_layer_shares_come_from_job_rows(tmp_path):
    """The strip and the per-layer plot are drawn from rows that jobs measured (the report loads no
    model): a design with example rows gets its masks, one without an "untrained" cell; the per-layer
    table is written from the `layers` rows and sums to the profile's MACs."""
    import cv2

    import bench.run.adapters  # noqa: F401  registers the measurements
    from bench.run.jobs import run_job
    from bench.run.settings import ExamplesSettings, LayersSettings, ProfileSettings
    from reports.report import layer_shares

    data = tmp_path / "data" / "photos"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(data / "images" / f"s{i}.jpg"), rng.integers(0, 255, (48, 40, 3), dtype=np.uint8))
        cv2.imwrite(str(data / "masks" / f"s{i}.png"), (rng.random((48, 40)) > 0.5).astype(np.uint8) * 255)
    jobs = [ExamplesSettings(weights="seed", input_size=64, data_dir=str(data), n_images=2).job("seg_matting"),
            LayersSettings(input_size=64).job("esp_dense_seg"), ProfileSettings(input_size=64).job("esp_dense_seg")]
    df = pd.DataFrame([r for j in jobs for r in run_job(j)])
    assert set(df["status"]) == {"ok"}
    run = tmp_path / "run"
    info = write_examples(run, df, archs=["esp_dense_seg", "seg_matting"])
    assert info["weights"] == {"esp_dense_seg": "untrained", "seg_matting": "seed"}
    assert info["stems"] == ["s0", "s1"] and (run / "examples.png").is_file() and not info["note"]
    shares, note = layer_shares(df, ["esp_dense_seg", "seg_matting"], 64, run)
    assert list(shares) == ["esp_dense_seg"] and "seg_matting" in note
    profile = df[df["measurement"] == "profile"].iloc[0]
    assert shares["esp_dense_seg"]["macs"].sum() == profile["macs"]
    assert shares["esp_dense_seg"]["share"].sum() == pytest.approx(1.0)
    assert (run / "layers" / "esp_dense_seg_64.csv").is_file()
    write_report(run, pd.concat([fake_rows(), df], ignore_index=True), META)
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


@pytest.mark.browser
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
    both = summary_table(pd.DataFrame([seed, trained]), input_size=256)
    row = both.iloc[0]
    assert (row["name"], row["weights"], row["miou"]) == ("seg_matting", "trained", pytest.approx(0.81))
    # the seed weights are a row of their own (summary, plots, recommendations), named as such
    assert list(both["name"]) == ["seg_matting", "seg_matting (seed weights)"]
    assert both.iloc[1]["miou"] == pytest.approx(0.88) and both.iloc[1]["input"] == "256x256"
    heads, cells = summary_display(both)
    assert [c[0] for c in cells] == ["`seg_matting`", "`seg_matting (seed weights)`"]
    row = summary_table(pd.DataFrame([seed]), input_size=256).iloc[0]
    assert (row["name"], row["weights"], row["miou"]) == ("seg_matting", "seed", pytest.approx(0.88))


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


# ----------------------------------------------------------------------------- disturbed timings (#20)

def _set_latency(df, arch, backend, threads, **values):
    sel = ((df["measurement"] == "latency") & (df["arch"] == arch) & (df["backend"] == backend)
           & (df["threads"] == threads) & (df["input_size"] == 256))
    assert sel.sum() == 1
    for k, v in values.items():
        df.loc[sel, k] = v
    return df


def disturbed_run() -> pd.DataFrame:
    """fake_rows with disturbed timings: esp_dense_seg PyTorch 2T at 1,734 ms (quiet repeat median 10.3
    exists), mobilenet_dilate_unet ncnn 2T also measured once disturbed at 0.5 ms (the quiet 7.9 exists),
    shuffle_seg_skipnet ncnn 2T at 183 ms with no quiet measurement, and an interleaved speed-up of
    seg_matting "35.57x" not quiet while quiet medians of both backends exist."""
    df = fake_rows(peer=False)
    df["quiet"] = True
    df = _set_latency(df, "esp_dense_seg", "torch", 2, latency_ms_median=1734.0, latency_ms_p10=1500.0,
                      latency_ms_p90=2100.0, quiet=False, load_avg_1m=9.5)
    df = _set_latency(df, "shuffle_seg_skipnet", "ncnn", 2, latency_ms_median=183.0, latency_ms_p10=150.0,
                      latency_ms_p90=240.0, quiet=False, load_avg_1m=7.25)
    extra = [
        _row("latency_repeat", "esp_dense_seg", backend="torch", threads=2, input_size=256, runs=5, runs_ok=5,
             runs_quiet=5, latency_ms_median_of_runs=10.3, repeatable=True),
        dict(_row("latency", "mobilenet_dilate_unet", backend="ncnn", threads=2, input_size=256,
                  latency_ms_median=0.5, latency_ms_p10=0.45, latency_ms_p90=0.6, latency_cv=0.04, quiet=False,
                  load_avg_1m=8.0), job="latency/mobilenet_dilate_unet/again"),
        _row("speedup", "seg_matting", backend="ncnn", threads=2, input_size=256, speedup=35.57, speedup_min=0.06,
             speedup_max=35.57, base_ms_median=40.0, other_ms_median=1.1, quiet=False),
    ]
    return pd.concat([df, pd.DataFrame(extra)], ignore_index=True)


BAD_FIGURES = ("1734", "1,734", "0.50", "35.57", "35.6")


def test_disturbed_figures_never_reach_summary_plots_or_recommendations(tmp_path):
    df = disturbed_run()
    s = summary_table(df, 256).set_index("name")
    # replaced by the quiet measurement of the same thing
    assert s.at["esp_dense_seg", "latency_ms_torch"] == pytest.approx(10.3)
    assert not s.at["esp_dense_seg", "disturbed_torch"]
    assert s.at["mobilenet_dilate_unet", "latency_ms_ncnn"] == pytest.approx(7.9)
    assert s.at["seg_matting", "ncnn_speedup"] == pytest.approx(9.4 / 7.2)  # the quiet medians, not 35.57
    assert not s.at["seg_matting", "ncnn_speedup_disturbed"]
    # no quiet measurement of it: kept, marked
    assert s.at["shuffle_seg_skipnet", "latency_ms_ncnn"] == pytest.approx(183.0)
    assert s.at["shuffle_seg_skipnet", "disturbed_ncnn"]
    # its fastest undisturbed timing at any backend and thread count: ncnn at 1 thread (3.0 x 1.8 ms),
    # not the disturbed ncnn 2-thread one, nor PyTorch at 2 threads (11.8 ms)
    assert (s.at["shuffle_seg_skipnet", "best_backend"], s.at["shuffle_seg_skipnet", "threads_best"]) == ("ncnn", 1)
    assert s.at["shuffle_seg_skipnet", "latency_ms_best"] == pytest.approx(5.4)
    assert not s.at["shuffle_seg_skipnet", "disturbed_best"]
    assert s.at["seg_matting", "threads_best"] == 2  # a quiet 2-thread timing is faster than 1 thread
    summary = summary_table(df, 256)
    heads, cells = summary_display(summary)
    flat = " ".join(" ".join(r) for r in cells)
    assert not any(bad in flat for bad in BAD_FIGURES)
    shuffle = next(r for r in cells if r[0] == "`shuffle_seg_skipnet`")
    assert "183.00†" in shuffle
    # plots: no disturbed value where a quiet one exists; the one without is flagged
    points = plot_points(summary)
    for panel, pts in points.items():
        assert not pts["x"].isin([1734.0, 0.5]).any(), panel
    ncnn = next(p for k, p in points.items() if k.startswith("ncnn x86")).set_index("arch")
    assert bool(ncnn.at["shuffle_seg_skipnet", "disturbed"]) and not ncnn.at["shuffle_seg_skipnet", "on_front"]
    head = points["headline"].set_index("arch")
    assert not head["disturbed"].any() and head.at["shuffle_seg_skipnet", "x"] == pytest.approx(5.4)
    from reports.latency_view import curve_panels
    for panel in curve_panels(df, "threads", 256, False):
        for arch, d in panel["series"].items():
            assert not d["y"].isin([1734.0, 0.5]).any(), (panel["title"], arch)
            if arch == "shuffle_seg_skipnet" and panel["title"].startswith("ncnn"):
                assert list(d["disturbed"]) == [False, True]
    # recommendations: never a disturbed figure, and never the model whose only figure is disturbed
    recs = recommendations(summary)
    text = " ".join(recs)
    assert not any(bad in text for bad in BAD_FIGURES)
    ncnn_rec = next(r for r in recs if r.startswith("**ncnn x86"))
    assert "ship `seg_matting`" in ncnn_rec and "timing disturbed†" in ncnn_rec
    assert "`shuffle_seg_skipnet`" in ncnn_rec.split("timing disturbed")[1]
    # the rendered report: nothing of it above the details; the details show every row, marked
    md = (write_report(tmp_path / "run", df, META, layer_tables=False).parent / "report.md").read_text()
    top, details = md.split("## Details")
    assert not any(bad in top for bad in BAD_FIGURES)
    assert "183.00†" in top and "load average 7.2" in top  # the footnote says what load it saw
    assert "1,734.00†" in details or "1734.00†" in details


def test_a_more_accurate_model_left_out_for_a_disturbed_timing_is_named_next_to_the_pick():
    """Session 14's --all: MediaPipe's timings were all disturbed, so the pick was the next most
    accurate model; a reader of that one sentence must learn that a better model was not compared."""
    df = disturbed_run()
    acc = (df["measurement"] == "accuracy") & (df["arch"] == "shuffle_seg_skipnet")
    df.loc[acc, ["miou", "miou_ci_low", "miou_ci_high"]] = (0.99, 0.985, 0.995)
    ncnn_rec = next(r for r in recommendations(summary_table(df, 256)) if r.startswith("**ncnn x86"))
    pick, caveat = ncnn_rec.split("; **but** ")
    assert "ship `" in pick and "shuffle_seg_skipnet" not in pick
    assert caveat.startswith("`shuffle_seg_skipnet` (mIoU 0.990) is more accurate but not compared")
    assert "no quiet measurement†" in caveat and "183" not in ncnn_rec  # named, its disturbed figure never shown
    assert ncnn_rec.count("shuffle_seg_skipnet") == 1  # not listed again at the end


def test_timings_of_two_machine_kinds_are_never_mixed(tmp_path):
    """Ray rows carry node_machine: the summary uses one machine kind, and no ratio mixes two."""
    a = {"cpu": "Intel Xeon", "cores": 2, "arch": "x86_64"}
    b = {"cpu": "AMD EPYC 9654", "cores": 16, "arch": "x86_64"}
    df = fake_rows(peer=False)
    df["node_machine"] = [a] * len(df)
    fast = [dict(_row("latency", "esp_dense_seg", backend=bk, threads=t, input_size=256, latency_ms_median=ms,
                      latency_ms_p10=ms, latency_ms_p90=ms), node_machine=b, job=f"b/{bk}/{t}")
            for bk, t, ms in (("ncnn", 1, 0.7), ("ncnn", 2, 0.4))]
    fast.append(dict(_row("speedup", "esp_dense_seg", backend="ncnn", threads=2, input_size=256, speedup=20.0,
                          speedup_min=19.0, speedup_max=21.0, quiet=True), node_machine=b, job="b/speedup"))
    df = pd.concat([df, pd.DataFrame(fast)], ignore_index=True)
    from bench.run.runinfo import machine_kind
    from reports.rows import with_machine_kind
    kinds = with_machine_kind(df)
    s = summary_table(kinds, 256).set_index("name")
    assert s.at["esp_dense_seg", "latency_ms_ncnn"] == pytest.approx(8.9)  # machine a's, not b's 0.4
    assert s.at["esp_dense_seg", "ncnn_speedup"] == pytest.approx(10.3 / 8.9)  # not b's 20x, nor 10.3 / 0.4
    from reports.latency_view import curve_panels
    panels = curve_panels(kinds, "threads", 256, False)
    assert {p["title"].split("(")[-1].rstrip(")") for p in panels} == {machine_kind(a), machine_kind(b)}
    for p in panels:
        d = p["series"].get("esp_dense_seg")
        if d is not None and p["title"].startswith("ncnn"):
            # one machine's points per curve: b's two, or a's two (8.9 * 1.8 and 8.9)
            assert sorted(d["y"]) in ([0.4, 0.7], [pytest.approx(8.9), pytest.approx(8.9 * 1.8)])
    md = (write_report(tmp_path / "run", df, META, layer_tables=False).parent / "report.md").read_text()
    assert "2 machine kinds" in md and machine_kind(b) in md


# ----------------------------------------------------------------------------- accuracy (#16)

def _acc_row(arch, values, dataset="eg1800", split="test", weights="trained", **kw):
    from bench.measure.accuracy import encode_per_image, stems_digest
    v = np.asarray(values, float)
    half = 1.96 * v.std(ddof=1) / np.sqrt(v.size)
    return _row("accuracy", arch, weights=weights, dataset=dataset, split=split, miou=float(v.mean()),
                miou_ci_low=float(v.mean() - half), miou_ci_high=float(v.mean() + half), n_images=v.size,
                per_image_iou_u16=encode_per_image(v), stems_sha1=stems_digest([f"s{i}" for i in range(v.size)]),
                **kw)


def test_per_image_ious_survive_a_row():
    from bench.measure.accuracy import decode_per_image, encode_per_image, stems_digest
    v = np.random.default_rng(1).random(264)
    text = encode_per_image(v)
    assert len(text) < 3 * v.size and np.abs(decode_per_image(text) - v).max() < 1e-5
    assert stems_digest(["a", "b"]) != stems_digest(["b", "a"])
    with pytest.raises(ValueError):
        decode_per_image("not base64!")


def paired_run(n: int = 40) -> pd.DataFrame:
    """Three designs on the same eg1800 test images: esp_dense_seg is the most accurate, shuffle differs
    from it by noise only, mobilenet is 0.02 below on every image (inside esp's separate CI, but
    resolved by the paired comparison) and the fastest; SINet official for the literature check."""
    base = np.random.default_rng(0).uniform(0.6, 0.98, n)
    sign = np.where(np.arange(n) % 2, 1.0, -1.0)
    rows = [_acc_row("esp_dense_seg", base, input_size=256),
            _acc_row("shuffle_seg_skipnet", base - 0.0002 + 0.004 * sign, input_size=256),
            _acc_row("mobilenet_dilate_unet", base - 0.02 + 0.002 * sign, input_size=256),
            _acc_row("sinet", np.clip(base + 0.1, 0, 0.999), weights="official", input_size=224),
            _acc_row("esp_dense_seg", base - 0.1, dataset="hsd", split="val", input_size=256)]
    for arch, ms in (("esp_dense_seg", 20.0), ("shuffle_seg_skipnet", 12.0), ("mobilenet_dilate_unet", 5.0),
                     ("sinet", 30.0)):
        rows.append(_row("latency", arch, backend="torch", threads=2, input_size=224 if arch == "sinet" else 256,
                         latency_ms_median=ms, latency_ms_p10=ms * 0.95, latency_ms_p90=ms * 1.05, quiet=True))
    return pd.DataFrame(rows)


def test_paired_comparison_decides_what_cannot_be_told_apart(tmp_path):
    df = paired_run()
    designs = ["esp_dense_seg", "shuffle_seg_skipnet", "mobilenet_dilate_unet"]
    from reports.accuracy_view import accuracy_by_model, paired_comparisons
    only = df[df["arch"] != "sinet"]
    paired = paired_comparisons(accuracy_by_model(only, 256))
    assert len(paired) == 3
    pair = paired.set_index(["a", "b"])
    assert pair.loc[("esp_dense_seg", "mobilenet_dilate_unet"), "significant"]
    assert pair.loc[("esp_dense_seg", "mobilenet_dilate_unet"), "diff_miou"] == pytest.approx(0.02, abs=0.002)
    summary = summary_table(only, 256, designs=designs)
    lo, hi = summary.set_index("name").loc["esp_dense_seg", ["miou_ci_low", "miou_ci_high"]]
    assert lo < summary.set_index("name").at["mobilenet_dilate_unet", "miou"] < hi  # separate CIs would tie them
    rec = next(r for r in recommendations(summary, paired) if r.startswith("**PyTorch"))
    # shuffle cannot be told apart from the best and is cheaper; mobilenet is faster but measurably worse
    assert "ship `shuffle_seg_skipnet`" in rec and "paired comparison" in rec
    assert "measurably less accurate: `mobilenet_dilate_unet`" in rec
    # without per-image data the separate CIs decide, stated as such
    bare = only.drop(columns=["per_image_iou_u16"])
    rec_bare = next(r for r in recommendations(summary_table(bare, 256, designs=designs), paired_comparisons(
        accuracy_by_model(bare, 256))) if r.startswith("**PyTorch"))
    assert "ship `mobilenet_dilate_unet`" in rec_bare and "no paired comparison" in rec_bare
    md = (write_report(tmp_path / "run", df, META, layer_tables=False, checkpoints_dir=tmp_path).parent
          / "report.md").read_text()
    assert "Paired comparisons on eg1800 test" in md and "significantly more accurate than" in md
    assert "| eg1800 test (40 img.) | hsd val (40 img.) |" in md
    assert "Literature check" in md and "| 95.20 |" in md and "`extremec3` | — | not measured in this run" in md
    assert (tmp_path / "run" / "paired.csv").is_file()


def test_learning_curves_from_checkpoint_provenance(tmp_path):
    from reports.accuracy_view import learning_curves
    prov = {"steps": 100, "images_seen": 1600, "recipe": {"name": "portrait-v2", "train_sets": ["eg1800", "hsd"]},
            "validation": {"input_size": 224, "all": {"n_images": 52}},
            "curve": [{"step": 0, "val_miou": 0.1, "val_miou_ci_low": 0.05, "val_miou_ci_high": 0.15},
                      {"step": 50, "val_miou": 0.7, "val_miou_ci_low": 0.65, "val_miou_ci_high": 0.75},
                      {"step": 100, "val_miou": 0.8, "val_miou_ci_low": None, "val_miou_ci_high": None}]}
    (tmp_path / "esp_dense_seg.json").write_text(__import__("json").dumps(prov))
    (tmp_path / "seg_matting.json").write_text(__import__("json").dumps({**prov, "curve": []}))
    curves, note = learning_curves(["esp_dense_seg", "seg_matting", "shuffle_seg_skipnet"], tmp_path)
    assert list(curves) == ["esp_dense_seg"]
    assert list(curves["esp_dense_seg"]["x"]) == [0.0, 800.0, 1600.0]
    assert "portrait-v2" in note and "52 images" in note and "no curve in the provenance of seg_matting" in note
    assert list(curves["esp_dense_seg"]["recipe"]) == ["portrait-v2"] * 3


def test_learning_curve_labels_name_the_recipe_when_designs_differ(tmp_path):
    """While the designs are retrained one by one, the plot holds v1 and v2 curves (other validation
    images): each line then says its recipe; with one recipe the legend stays the design names."""
    import pandas as pd
    from reports.plots import curve_labels, plot_learning_curves
    d = pd.DataFrame({"x": [1.0, 2.0], "y": [0.5, 0.6], "lo": [0.4, 0.5], "hi": [0.6, 0.7]})
    mixed = {"esp_dense_seg": d.assign(recipe="portrait-v1"), "seg_matting": d.assign(recipe="portrait-v2")}
    assert curve_labels(mixed) == {"esp_dense_seg": "esp_dense_seg (portrait-v1)",
                                   "seg_matting": "seg_matting (portrait-v2)"}
    same = {a: d.assign(recipe="portrait-v2") for a in ("esp_dense_seg", "seg_matting")}
    assert curve_labels(same) == {"esp_dense_seg": "esp_dense_seg", "seg_matting": "seg_matting"}
    assert plot_learning_curves(mixed, tmp_path / "curves.png", {}, "t").is_file()


def test_plan_evaluates_every_model_on_each_set_separately():
    from archs import list_archs
    from bench.run.plan import ACCURACY_SETS, PlanOptions, plan_all
    acc = [j for j in plan_all(PlanOptions()) if j.measurement == "accuracy"]
    sets = {}
    for j in acc:
        sets.setdefault(j.arch, set()).add((j.get("dataset"), j.get("split")))
    peers = [a for a in list_archs(peers=True) if a not in list_archs()] + ["mediapipe_selfie", "pphumanseg_lite"]
    for name in [*list_archs(), *peers]:
        assert set(ACCURACY_SETS) <= sets[name], name
    assert ACCURACY_SETS[0] == ("eg1800", "test")
    assert all(Path(j.get("data_dir")).name == j.get("dataset") for j in acc)


def test_run_line_gives_the_load_while_timing_not_the_runs_own_workers():
    """The jobs that time nothing run side by side, so the load at their end is the run's own work;
    the top line reports the load the timing rows were measured under."""
    from reports.appendix import run_line

    df = pd.DataFrame([
        {"measurement": "accuracy", "load_avg_1m": 3.4},
        {"measurement": "accuracy", "load_avg_1m": 3.8},
        {"measurement": "latency", "load_avg_1m": 0.5, "quiet": True},
        {"measurement": "latency", "load_avg_1m": 0.7, "quiet": False},
    ])
    line = run_line({"machine": {"cpu": "x", "cores": 2}}, df)
    assert "while timing median 0.6, max 0.7" in line and "3.8" not in line
    untimed = run_line({"machine": {"cpu": "x", "cores": 2}}, df[df.measurement == "accuracy"])
    assert "at the end of each job median 3.6, max 3.8" in untimed


def test_point_labels_of_close_models_do_not_print_over_each_other():
    """Two models at almost the same accuracy and speed (mediapipe_selfie and its landscape variant,
    residualdense_bisenet and shuffle_seg_skipnet in the headline plot): after placement their labels'
    boxes are disjoint and neither covers a marker's centre."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from reports.plots import _place_labels
    fig = Figure(figsize=(6.4, 4.6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x, y = np.array([5.0, 5.2, 20.0]), np.array([0.891, 0.893, 0.95])
    ax.plot(x, y, "o")
    ax.set_xscale("log")
    ax.set_xlim(2, 100)
    ax.set_ylim(0.85, 0.97)
    labels = [ax.text(a, b, name, fontsize=8) for a, b, name in
              zip(x, y, ["shuffle_seg_skipnet", "residualdense_bisenet", "sinet"])]
    renderer = fig.canvas.get_renderer()
    before = [t.get_window_extent(renderer) for t in labels]
    assert before[0].overlaps(before[1])  # the case: as first drawn they collide
    _place_labels(ax, labels, x, y)
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(boxes[i].overlaps(boxes[j]) for i in range(3) for j in range(i + 1, 3))
    centres = ax.transData.transform(np.c_[x, y])
    assert not any(b.contains(*c) for b in boxes for c in centres)


def test_paired_differences_of_own_weights_are_marked_against_the_training_seed_spread():
    """Issue 38: each committed checkpoint is one training run; the report says which paired
    differences of two of them exceed the measured seed-to-seed sd (and never for published weights)."""
    import pandas as pd

    from bench.train.checkpoints import seed_spreads
    from reports.accuracy_view import seed_verdict

    spreads = seed_spreads()  # the committed record: residualdense_bisenet at recipe v2's budget
    assert spreads["residualdense_bisenet"].n_seeds >= 3 and 0 < spreads["residualdense_bisenet"].sd < 0.02
    sd = spreads["residualdense_bisenet"].sd
    models = pd.DataFrame([
        {"name": "mobilenet_dilate_unet", "arch": "mobilenet_dilate_unet", "weights": "trained"},
        {"name": "residualdense_bisenet", "arch": "residualdense_bisenet", "weights": "trained"},
        {"name": "seg_matting (seed weights)", "arch": "seg_matting", "weights": "seed"}])
    assert seed_verdict(models, "mobilenet_dilate_unet", "residualdense_bisenet", 2 * sd, spreads) == "yes"
    assert seed_verdict(models, "mobilenet_dilate_unet", "residualdense_bisenet", sd / 2, spreads) == f"no (sd {sd:.3f})"
    assert "another design" in seed_verdict(
        pd.DataFrame([{**models.iloc[0]}, {"name": "shuffle_seg_skipnet", "arch": "shuffle_seg_skipnet",
                                           "weights": "trained"}]),
        "mobilenet_dilate_unet", "shuffle_seg_skipnet", sd / 2, spreads)
    assert seed_verdict(models, "seg_matting (seed weights)", "residualdense_bisenet", 0.0, spreads) == "—"
    assert seed_verdict(models, "mobilenet_dilate_unet", "residualdense_bisenet", 0.0, {}) == "—"
