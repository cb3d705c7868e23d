"""ARM latency estimates: the fit, its leave-one-out errors, the out-of-range flag, and the
instruction counts behind them (two small benchncnn models end to end under qemu, both CPU models).

The qemu tests need the cross toolchain and qemu (skipped without them, except in CI, like
tests/test_arm.py); the first runner build takes minutes and is cached in .cache/arm.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.arm import counts as arm_counts, estimate as ae, runner as arm  # noqa: E402

from helpers import needs_toolchain  # noqa: E402  (a qemu test; skipped without the toolchain, never in CI)
REFERENCE = arm_counts.default_params_dir().parent / "reference_counts_cortex-a72.csv"
needs_anchors = pytest.mark.skipif(not REFERENCE.is_file(), reason=f"shared anchors missing: {REFERENCE}")


# ---------------------------------------------------------------- the fit (no toolchain)


def test_fit_relative_one_factor_exact():
    # minimise sum((a x / y - 1)^2): a = sum(x/y) / sum((x/y)^2) = 2.8 / 2.64
    X, y = np.array([[1.0], [2.0], [4.0]]), np.array([1.0, 2.0, 5.0])
    assert ae.fit_relative(X, y) == pytest.approx([1.0606060606060606], rel=1e-12)
    # leaving out model 0 or 1 gives a = 1.8 / 1.64; leaving out model 2 gives a = 1 (4 vs 5)
    np.testing.assert_allclose(ae.loo_errors(X, y), [0.0975609756097561, 0.0975609756097561, -0.2], rtol=1e-12)


def test_fit_relative_two_terms_recovers_exact_law_and_stays_non_negative():
    X = np.array([[10.0, 1.0], [20.0, 5.0], [5.0, 8.0], [40.0, 2.0], [15.0, 15.0]])
    y = X @ np.array([2.0, 0.5])
    np.testing.assert_allclose(ae.fit_relative(X, y), [2.0, 0.5], rtol=1e-10)
    np.testing.assert_allclose(ae.loo_errors(X, y), 0.0, atol=1e-10)
    # a law that would need a negative rate gets 0 for that term, not a negative one
    coef = ae.fit_relative(X, X @ np.array([2.0, -0.5]))
    assert coef[1] == 0.0 and coef[0] > 0
    with pytest.raises(ValueError):
        ae.fit_relative(X, -y)


def _counts_table(insn: dict[str, float], cpu="cortex-a72") -> pd.DataFrame:
    rows = []
    for m, v in insn.items():
        row = {"model": m, "cpu_model": cpu, "input_whc": "224x224x3", "status": "ok", "insn_m": v,
               "macs_m": 3 * v, "traffic_mb": 0.2 * v}
        for c in arm_counts.LAYER_CLASSES:
            row[f"insn_m_{c}"] = v if c == "conv1x1" else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def test_fit_device_on_fixed_table():
    counts = _counts_table({"a": 10.0, "b": 20.0, "c": 40.0, "d": 80.0, "e": 50.0, "vgg": 100.0})
    ms = {"a": 8.0, "b": 16.0, "c": 32.0, "d": 64.0, "e": 50.0, "vgg_int8": 1.0, "unknown": 3.0}
    tables = pd.DataFrame([{"device": "rpi4", "threads": 1, "powersave": 0, "model": m, "avg_ms": v,
                            "date": "2023-06-15"} for m, v in ms.items()])
    f = ae.fit_device(counts, tables, ae.DEVICES["rpi4"], 1, "insn")
    assert f.models == ("a", "b", "c", "d", "e") and f.n_models == 5  # int8 and uncounted rows left out
    # r = x/y = 1.25 (x4) and 1.0: a = 6 / 7.25
    assert f.coef[0] == pytest.approx(6 / 7.25, rel=1e-12)
    # leaving out a 1.25 model: a = 4.75 / 5.6875 -> error 1.25 * a - 1; leaving out e: a = 0.8
    err_a = 1.25 * 4.75 / 5.6875 - 1
    np.testing.assert_allclose(f.loo_errors, [err_a] * 4 + [-0.2], rtol=1e-12)
    assert f.loo_err_median == pytest.approx(err_a) and f.loo_err_max == pytest.approx(0.2)
    assert f.worst[0] == ("e", pytest.approx(-0.2))


def test_out_of_range_design_is_flagged():
    counts = _counts_table({"a": 10.0, "b": 20.0, "c": 40.0})
    counts.loc[0, "macs_m"] = 20.0  # insn per MAC over the set: 0.33 .. 0.5
    ranges = ae.calibration_ranges(counts, "cortex-a72")
    assert ranges["insn_per_mac"] == pytest.approx((1 / 3, 0.5))
    inside = {**counts.iloc[1].to_dict()}
    assert ae.out_of_range(inside, ranges) == []
    many_insns = {**inside, "insn_m": 30.0, "insn_m_conv1x1": 30.0, "macs_m": 40.0}  # 0.75 per MAC
    assert any("insn_per_mac" in w for w in ae.out_of_range(many_insns, ranges))
    deconv = {**inside, "insn_m_conv1x1": 10.0, "insn_m_deconv": 10.0}  # half the work in a class never seen
    assert any(w.startswith("deconv") for w in ae.out_of_range(deconv, ranges))


def test_estimates_are_labelled_with_a_band():
    counts = _counts_table({"a": 10.0, "b": 20.0, "c": 40.0, "d": 80.0, "e": 50.0})
    tables = pd.DataFrame([{"device": "rpi4", "threads": 1, "powersave": 0, "model": m, "avg_ms": v,
                            "date": "2023-06-15"} for m, v in dict(a=8.0, b=16.0, c=32.0, d=64.0, e=50.0).items()])
    f = ae.fit_device(counts, tables, ae.DEVICES["rpi4"], 1, "insn")
    design = counts.iloc[[2]].assign(model="design")
    est = ae.estimate_rows(design, counts, [f], {("armv8.0", 1): "insn"})
    assert len(est) == 1
    r = est.iloc[0]
    assert r.kind == "estimate" and r.device_model == "rpi4" and r.threads == 1
    assert r.arm_est_ms == pytest.approx(40.0 * 6 / 7.25)
    assert r.arm_est_ms_low < r.arm_est_ms < r.arm_est_ms_high
    assert not any(c.startswith("latency_ms") for c in est.columns)  # never a measured column


# ---------------------------------------------------------------- the committed calibration table


@needs_anchors
def test_committed_counts_cover_the_benchmark_models_and_agree_with_the_reference():
    counts = ae.load_calibration()
    models = set(arm_counts.benchncnn_models())
    for cpu in arm_counts.CPU_MODELS:
        got = counts[(counts.cpu_model == cpu) & (counts.status == "ok")]
        assert set(got.model) == models, (cpu, models ^ set(got.model))
        assert (abs(got.insn_m_layer_pass / got.insn_m - 1) < 0.05).all()
    ref = pd.read_csv(REFERENCE).set_index("model")
    a72 = counts[counts.cpu_model == "cortex-a72"].set_index("model")
    common = [m for m in a72.index if m in ref.index]
    rel = (a72.loc[common, "insn_m"] / ref.loc[common, "insn_m_a72"] - 1).abs()
    assert len(common) >= 25 and rel.median() < 0.01, rel.sort_values().tail()
    same = rel.index[rel < 0.01]  # nanodet_m runs one output head here (ncnn's first output), the reference more
    np.testing.assert_allclose(a72.loc[same, "macs_m"], ref.loc[same, "macs_m"], rtol=1e-3)


@needs_anchors
def test_chosen_form_is_picked_by_loo_on_benchmark_models_only():
    fits, forms, _ = ae.calibrated(("rpi4", "rpi5"), (1,))
    assert set(forms) == {("armv8.0", 1), ("armv8.2", 1)} and "macs" not in forms.values()
    t = ae.fits_table(fits)
    # the one-factor instruction model beats MACs on a real device table
    g = t[t.device == "rpi4"].set_index("form")
    assert g.at["insn", "loo_err_median"] < g.at["macs", "loo_err_median"]


@needs_anchors
def test_two_thread_fits_only_where_a_table_has_them():
    fits, forms, _ = ae.calibrated(("rpi4", "rk3399"), (2,))
    assert {f.device for f in fits} == {"rk3399"} and set(forms) == {("armv8.0", 2)}
    assert all(f.powersave == 2 and f.n_models >= 20 for f in fits)  # its two A72s


# ---------------------------------------------------------------- counts under qemu


@needs_toolchain
@pytest.mark.parametrize("cpu", arm_counts.CPU_MODELS)
def test_counts_are_deterministic_end_to_end(cpu, tmp_path):
    models = arm_counts.benchncnn_models()
    ref = pd.read_csv(REFERENCE).set_index("model") if REFERENCE.is_file() else None
    for name in ("blazeface", "yolo-fastestv2"):  # the two smallest benchmark models (15 M, 43 M)
        a = arm_counts.count_layers(models[name], arm_counts.benchncnn_shape(name), cpu, cache_dir=tmp_path / "a")
        b = arm_counts.count_layers(models[name], arm_counts.benchncnn_shape(name), cpu, cache_dir=tmp_path / "b")
        assert a.insns_inference == b.insns_inference, (name, cpu)
        assert [l.insns for l in a.layers] == [l.insns for l in b.layers]
        # the per-layer counts add up to the whole inference (extract calls subtracted)
        assert abs(sum(l.insns for l in a.layers) / a.insns_inference - 1) < 0.005
        assert ("asimdhp" in a.arm_features) == (cpu == "cortex-a76")
        if ref is not None and cpu == "cortex-a72":
            assert a.insn_m == pytest.approx(ref.at[name, "insn_m_a72"], rel=0.01)


# ---------------------------------------------------------------- a real device against the estimates
# Rows built here stand for a run with --device: a unit test of the pairing and the error, not a
# measurement (there is no device on this machine).


def _estimate_rows(devices=("rpi4", "rpi5"), threads=(1, 4)) -> list[dict]:
    rows = []
    for arch, ms in (("a", 40.0), ("b", 80.0)):
        for dev in devices:
            for t in threads:
                rows.append({"measurement": "arm_estimate", "arch": arch, "status": "ok", "kind": "estimate",
                             "device_model": dev, "threads": t, "powersave": 0, "input_whc": "256x256x3",
                             "arm_est_ms": ms / t * (1 if dev == "rpi4" else 0.25),
                             "arm_est_ms_low": 0.8 * ms / t, "arm_est_ms_high": 1.3 * ms / t,
                             "est_loo_err_median": 0.07, "est_loo_err_p90": 0.2,
                             "out_of_range_why": "insn_per_mac 0.74 outside [0.085, 0.53]" if arch == "b" else ""})
    return rows


def _device_row(arch, threads, ms, status="ok", prefix=(), powersave=0, reported="Raspberry Pi 4 Model B Rev 1.4"):
    return {"measurement": "device_latency", "arch": arch, "status": status, "backend": "ncnn-arm",
            "device": "ssh:pi@board", "transport": "ssh", "device_model": reported, "threads": threads,
            "powersave": powersave, "input_size": 256, "exec_prefix": list(prefix),
            "latency_ms_median": ms if status == "ok" else None}


def _run_rows() -> pd.DataFrame:
    return pd.DataFrame(_estimate_rows() + [
        _device_row("a", 1, 50.0), _device_row("a", 4, 10.0), _device_row("b", 1, 125.0),
        _device_row("b", 2, 60.0),  # no estimate at 2 threads
        _device_row("b", 4, 900.0, prefix=("qemu-aarch64", "-cpu", "cortex-a72")),  # emulated: not device time
        _device_row("a", 1, None, status="skipped: no device (ssh failed)"),
    ])


def test_unknown_device_model_is_an_error_listing_the_known_ones():
    assert ae.check_device_model("sd835").cpu_model == "cortex-a72"
    with pytest.raises(ValueError, match=r"unknown device model 'pixel9'.*rpi4, rpi3bplus, sd835, rk3399, rpi5"):
        ae.check_device_model("pixel9")
    with pytest.raises(ValueError, match="calibrated devices"):
        ae.measured_vs_estimated(_run_rows(), "pixel9")


def test_all_rejects_an_unknown_device_model_before_running(capsys, tmp_path):
    import run_bench
    assert run_bench.main(["all", "--device-model", "pixel9", "--out", str(tmp_path / "run")]) == run_bench.EXIT_USAGE
    err = capsys.readouterr().err
    assert "pixel9" in err and "sd855plus" in err
    assert not (tmp_path / "run").exists()


def test_measured_device_rows_meet_the_estimate_of_the_named_device():
    cmp = ae.measured_vs_estimated(_run_rows(), "rpi4").set_index(["arch", "threads"])
    assert sorted(cmp.index) == [("a", 1), ("a", 4), ("b", 1), ("b", 2)]  # emulated and skipped rows left out
    # estimate / measured - 1: a 1T 40 vs 50, a 4T 10 vs 10, b 1T 80 vs 125
    assert cmp.at[("a", 1), "est_err_vs_measured"] == pytest.approx(-0.2)
    assert cmp.at[("a", 4), "est_err_vs_measured"] == pytest.approx(0.0)
    assert cmp.at[("b", 1), "est_err_vs_measured"] == pytest.approx(-0.36)
    assert cmp.at[("a", 1), "latency_ms_median"] == 50.0 and cmp.at[("a", 1), "arm_est_ms"] == 40.0
    assert cmp.at[("a", 1), "in_band"] and not cmp.at[("b", 1), "in_band"]  # bands 32-52 and 64-104
    assert np.isnan(cmp.at[("b", 2), "arm_est_ms"]) and "no rpi4 estimate at 2 thread(s)" in cmp.at[("b", 2), "note"]
    assert (cmp.device_model == "rpi4").all() and cmp.at[("a", 1), "note"] == ""
    # the same measurements held against rpi5: its estimates, and the probe says it is an rpi4
    five = ae.measured_vs_estimated(_run_rows(), "rpi5").set_index(["arch", "threads"])
    assert five.at[("a", 1), "arm_est_ms"] == 10.0 and five.at[("a", 1), "est_err_vs_measured"] == pytest.approx(-0.8)
    assert "looks like rpi4, not rpi5" in five.at[("a", 1), "note"]
    # another powersave mode than the calibration rows is said
    other = pd.DataFrame(_estimate_rows() + [_device_row("a", 1, 50.0, powersave=2)])
    assert "powersave 2" in ae.measured_vs_estimated(other, "rpi4").note.iloc[0]
    unknown_board = pd.DataFrame(_estimate_rows() + [_device_row("a", 1, 50.0, reported="Pine64 Quartz64 Model A")])
    assert "not recognisably rpi4" in ae.measured_vs_estimated(unknown_board, "rpi4").note.iloc[0]
    assert ae.measured_vs_estimated(pd.DataFrame(_estimate_rows()), "rpi4").empty  # no device rows


def test_probe_strings_map_to_calibrated_devices():
    assert ae.probed_device_model("Raspberry Pi 4 Model B Rev 1.4") == "rpi4"
    assert ae.probed_device_model("Raspberry Pi 5 Model B Rev 1.0") == "rpi5"
    assert ae.probed_device_model("Raspberry Pi 3 Model B Plus Rev 1.3") == "rpi3bplus"
    assert ae.probed_device_model("SM-G955F msm8998") == "sd835"
    assert ae.probed_device_model("Radxa ROCK 5B rk3588") == "rk3588"
    assert ae.probed_device_model("aarch64") is None and ae.probed_device_model("") is None


def test_report_section_shows_estimates_as_estimates(tmp_path):
    from reports.arm_estimate import arm_section
    from reports.plots import arch_colors
    from reports.report import Doc

    df = pd.DataFrame(_estimate_rows())
    summary = pd.DataFrame({"arch": ["a", "b"], "kind": "design", "miou": [0.8, 0.85],
                            "miou_ci_low": [0.78, 0.83], "miou_ci_high": [0.82, 0.87]})
    doc = Doc()
    path, _ = arm_section(doc, df, summary, tmp_path, arch_colors(["a", "b"]), "rpi4")
    md = doc.to_markdown(tmp_path)
    assert "On ARM devices (estimated)" in md and "Estimates, not measurements" in md
    assert "40 (32-52)" in md and "insn_per_mac 0.74" in md
    assert "MEASURED" not in md  # no device rows: no comparison table
    assert path is not None and path.is_file()
    empty = Doc()
    assert arm_section(empty, df.assign(measurement="latency"), summary, tmp_path, {}, "rpi4")[0] is None


def test_report_section_puts_measured_ms_beside_the_estimate(tmp_path):
    from reports.arm_estimate import arm_section
    from reports.plots import arch_colors
    from reports.report import Doc

    summary = pd.DataFrame({"arch": ["a", "b"], "kind": "design", "miou": [0.8, 0.85],
                            "miou_ci_low": [0.78, 0.83], "miou_ci_high": [0.82, 0.87]})
    doc = Doc()
    arm_section(doc, _run_rows(), summary, tmp_path, arch_colors(["a", "b"]), "rpi4")
    md = doc.to_markdown(tmp_path)
    assert "Measured on the device against the rpi4 estimate" in md
    assert "MEASURED ms (device, median)" in md and "ESTIMATED ms, rpi4 (80% band)" in md
    # a, 1 thread: measured 50.0 in its own column, the estimate 40.0 (32-52) in its own, error -20.0%
    assert "| `a` | 1 | 50.0 | 40.0 (32-52) | -20.0% | yes | 7.0% / 20.0% |" in md
    assert "| `b` | 1 | 125.0 | 80.0 (64-104) | -36.0% | no |" in md
    assert "900.0" not in md  # the emulated row is not device time
    unknown = Doc()
    arm_section(unknown, _run_rows(), summary, tmp_path, arch_colors(["a", "b"]), "pixel9")
    assert "`pixel9` is not a calibrated device" in unknown.to_markdown(tmp_path)


@needs_anchors
def test_report_section_has_the_seed_claim_and_the_calibration_plot(tmp_path):
    from reports.arm_estimate import arm_section
    from reports.report import Doc

    rows = [{"measurement": "arm_estimate", "arch": "seg_matting", "status": "ok", "kind": "estimate",
             "device_model": dev, "threads": t, "powersave": 2, "input_whc": "256x256x3", "form": "insn",
             "arm_est_ms": 60.0 / t, "arm_est_ms_low": 54.0 / t, "arm_est_ms_high": 75.0 / t,
             "est_loo_err_median": 0.07, "est_loo_err_p90": 0.25, "out_of_range_why": ""}
            for dev in ("sd835", "rpi4") for t in (1, 4)]
    doc = Doc()
    arm_section(doc, pd.DataFrame(rows), pd.DataFrame({"arch": []}), tmp_path, {}, "rpi4")
    md = doc.to_markdown(tmp_path)
    assert "seg_matting at about 40 ms on a Galaxy S8+" in md
    assert "60 ms (54-75) at 1 thread, 15 ms (14-19) at 4 threads" in md
    assert (tmp_path / "arm_calibration_1t.png").is_file() and "Calibration quality, 1 thread" in md


def test_fp16_tables_per_model_and_per_layer_class():
    from reports.arm_estimate import fp16_markdown

    layers = pd.DataFrame([
        {"model": "m", "layer_class": "conv3x3s1", "channels_mult8": True, "insns_a72": 600, "insns_a76": 300},
        {"model": "m", "layer_class": "conv3x3s1", "channels_mult8": False, "insns_a72": 200, "insns_a76": 340},
        {"model": "m", "layer_class": "pool", "channels_mult8": False, "insns_a72": 200, "insns_a76": 300},
    ])
    md = fp16_markdown(layers)
    assert "| m | 0.94 | 60.0%, 0.50 | 40.0%, 1.60 |" in md  # 940 / 1000; 300 / 600; 640 / 400
    assert "| conv3x3s1 | 1, 60.0%, 0.50 | 1, 20.0%, 1.70 |" in md
    assert "| pool | - | 1, 20.0%, 1.50 |" in md


@needs_anchors
def test_write_report_keeps_the_arm_calibration_plot(tmp_path):
    from reports.report import write_report

    rows = [{**r, "form": "insn"} for r in _estimate_rows()] + [_device_row("a", 1, 50.0)]
    html = write_report(tmp_path, pd.DataFrame(rows), {"device_model": "rpi4"}, layer_tables=False)
    assert (tmp_path / "arm_calibration_1t.png").is_file()  # not pruned with the unlisted plot_*.png
    text = html.read_text()
    assert "Calibration quality, 1 thread" in text and "data:image/png;base64" in text
    assert "Measured on the device against the rpi4 estimate" in text
