"""Files and tables for the ARM latency estimates (bench.arm.counts, bench.arm.estimate).

The calibration counts are a committed table (``bench/arm/calibration_counts.csv``) written here;
the rest renders markdown tables from the records ``bench.arm.estimate`` returns.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from bench import columns as C

COUNT_COLUMNS_FIRST = ("model", "cpu_model", "input_whc", "status", "insn_m", "insn_m_layer_pass", "macs_m",
                       "traffic_mb", "act_elems_m", "weights_m", "layers")


def write_calibration_table(df: pd.DataFrame, path: Path) -> Path:
    """The calibration counts as CSV, rows sorted by model and CPU model, figures to 4 decimals."""
    cols = [c for c in COUNT_COLUMNS_FIRST if c in df.columns] + [c for c in df.columns if c not in COUNT_COLUMNS_FIRST]
    out = df[cols].sort_values(["model", "cpu_model"], key=lambda s: s.str.lower()).reset_index(drop=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, float_format="%.4f")
    return path


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def loo_markdown(fits: pd.DataFrame, forms: Sequence[str]) -> str:
    """Per device and thread count: LOO median / p90 / max |error| of each form, chosen one marked."""
    lines = ["| device | ISA (counts) | threads | models | " + " | ".join(f"`{f}` med / p90 / max" for f in forms)
             + " | worst (chosen form) |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in forms) + " | --- |"]
    for (device, threads), g in fits.groupby(["device", "threads"], sort=False):
        g = g.set_index("form")
        first = g.iloc[0]
        cells = [f"{_pct(g.at[f, 'loo_err_median'])} / {_pct(g.at[f, 'loo_err_p90'])} / {_pct(g.at[f, 'loo_err_max'])}"
                 if f in g.index else "" for f in forms]
        chosen = g[g.chosen] if "chosen" in g else g.iloc[:0]
        worst = chosen.worst.iloc[0] if len(chosen) else ""
        lines.append(f"| {device} | {first.isa} ({first.cpu_model}) | {threads} | {first.n_models} | "
                     + " | ".join(cells) + f" | {worst} |")
    return "\n".join(lines)


def estimates_markdown(est: pd.DataFrame, threads: int = 1) -> str:
    """Designs x devices: ``arm_est_ms`` [80% band] (all estimates)."""
    e = est[est.threads == threads]
    devices = list(dict.fromkeys(e[C.DEVICE_MODEL]))
    lines = ["| model | " + " | ".join(devices) + " | outside calibration range |",
             "| --- | " + " | ".join("---" for _ in devices) + " | --- |"]
    for model, g in e.groupby("model", sort=False):
        g = g.set_index(C.DEVICE_MODEL)
        cells = [f"{g.at[d, C.ARM_EST_MS]:.1f} [{g.at[d, C.ARM_EST_MS_LOW]:.0f}-{g.at[d, C.ARM_EST_MS_HIGH]:.0f}]"
                 if d in g.index else "" for d in devices]
        why = g.out_of_range_why.iloc[0] if g.out_of_range.any() else ""
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {why} |")
    return "\n".join(lines)


def _ok_estimates(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty or "measurement" not in df.columns:
        return df.iloc[0:0]
    est = df[(df["measurement"] == "arm_estimate") & (df["status"].astype(str) == "ok")]
    return est[est.get("kind", "estimate") == "estimate"] if not est.empty else est


def arm_section(doc, df: pd.DataFrame, summary: pd.DataFrame, run_dir: Path, colors, device_model: str = "rpi4"
                ) -> tuple[Optional[Path], str]:
    """The report's "On ARM devices (estimated)" table (every calibrated device, 1 thread; the chosen
    device also at 4 threads) and the accuracy-vs-estimated-ms plot for ``device_model``.
    Returns (plot path or None, why not plotted)."""
    from . import plots

    est = _ok_estimates(df)
    if est.empty:
        return None, "accuracy vs estimated ARM ms: no arm_estimate rows"
    doc.h(2, "On ARM devices (estimated)")
    one = est[est["threads"] == 1]
    devices = list(dict.fromkeys(one[C.DEVICE_MODEL]))
    rows = []
    for arch, g in one.groupby("arch", sort=True):
        g = g.set_index(C.DEVICE_MODEL)
        four = est[(est["arch"] == arch) & (est["threads"] == 4) & (est[C.DEVICE_MODEL] == device_model)]
        cells = [f"{g.at[d, C.ARM_EST_MS]:.0f} ({g.at[d, C.ARM_EST_MS_LOW]:.0f}-{g.at[d, C.ARM_EST_MS_HIGH]:.0f})"
                 if d in g.index else "" for d in devices]
        at4 = four.iloc[0] if len(four) else None
        cells.append(f"{at4[C.ARM_EST_MS]:.0f} ({at4[C.ARM_EST_MS_LOW]:.0f}-{at4[C.ARM_EST_MS_HIGH]:.0f})"
                     if at4 is not None else "")
        flags = "; ".join(sorted({w for w in g["out_of_range_why"].astype(str) if w and w != "nan"}))
        rows.append([f"`{arch}`", str(g["input_whc"].iloc[0])] + cells + [flags or "no"])
    doc.table(["model", "input"] + [f"{d} 1T" for d in devices] + [f"{device_model} 4T", "outside calibration range"],
              rows)
    fits = est.drop_duplicates([C.DEVICE_MODEL, "threads"]).set_index([C.DEVICE_MODEL, "threads"])
    err = ", ".join(f"{d} {_pct(fits.at[(d, 1), 'est_loo_err_median'])} / {_pct(fits.at[(d, 1), 'est_loo_err_p90'])}"
                    for d in devices if (d, 1) in fits.index)
    doc.p("Estimates, not measurements: ms = per-device rates x guest instructions of the model's ncnn "
          "conversion under qemu (cortex-a72 counts for ARMv8.0 cores, cortex-a76 for ARMv8.2), fitted on the "
          "timings ncnn's benchncnn published for its benchmark models (docs/arm.md). In brackets the 80% band "
          "from the fit's leave-one-out errors; leave-one-out median / p90 error at 1 thread: " + err + ". "
          "4-thread figures have their own, larger errors. A model outside the calibration range (instructions "
          "per MAC, bytes per instruction, or a layer class the benchmark models hardly use) is less certain "
          "than its band says. Measured device rows (--device) never enter this table: see below.")
    claim = seed_claim(est)
    if claim:
        doc.p(claim)
    calibration_figure(doc, est, Path(run_dir))
    device_comparison(doc, df, device_model)
    sel = one[one[C.DEVICE_MODEL] == device_model].set_index("arch")
    ok = summary[summary["arch"].isin(sel.index) & summary[C.MIOU].notna()] if C.MIOU in summary else summary.iloc[0:0]
    if ok.empty:
        return None, "accuracy vs estimated ARM ms: needs accuracy rows and estimates"
    pts = pd.DataFrame({"arch": ok["arch"], "kind": ok.get("kind", "design"),
                        "x": sel.loc[ok["arch"], C.ARM_EST_MS].to_numpy(float),
                        "x_lo": sel.loc[ok["arch"], C.ARM_EST_MS_LOW].to_numpy(float),
                        "x_hi": sel.loc[ok["arch"], C.ARM_EST_MS_HIGH].to_numpy(float),
                        "y": ok[C.MIOU].to_numpy(float), "y_lo": ok[C.MIOU_CI_LOW].to_numpy(float),
                        "y_hi": ok[C.MIOU_CI_HIGH].to_numpy(float)}).reset_index(drop=True)
    front = plots.pareto_front(list(zip(pts["x"], pts["y"])))
    pts["on_front"] = [i in front for i in range(len(pts))]
    panel = {"title": f"{device_model}, 1 thread (ESTIMATED)", "points": pts,
             "xlabel": "estimated ms per frame (log scale; bars: 80% band)"}
    path = plots.plot_accuracy_vs_cost([panel], Path(run_dir) / "plot_accuracy_vs_arm_estimate.png", colors)
    return path, "accuracy vs estimated ARM ms: nothing to plot"


def seed_claim(est: pd.DataFrame) -> Optional[str]:
    """The seed's headline (seg_matting at about 40 ms on a Galaxy S8+ CPU with ncnn) beside
    seg_matting's sd835 estimates at 1 and 4 threads, or None when the run has neither."""
    e = est[(est["arch"] == "seg_matting") & (est[C.DEVICE_MODEL] == "sd835")].drop_duplicates("threads")
    e = e.set_index("threads")
    if e.empty:
        return None
    parts = [f"{e.at[t, C.ARM_EST_MS]:.0f} ms ({e.at[t, C.ARM_EST_MS_LOW]:.0f}-{e.at[t, C.ARM_EST_MS_HIGH]:.0f}) "
             f"at {t} thread{'s' if t > 1 else ''}" for t in (1, 4) if t in e.index]
    return ("The seed's claim as a check: seg_matting at about 40 ms on a Galaxy S8+ (ncnn, CPU). ESTIMATED for "
            f"sd835 (Snapdragon 835, the Galaxy S8 generation, big cores) at {e['input_whc'].iloc[0]}: "
            + ", ".join(parts) + ". Unknown about the 40 ms: thread count, input size, ncnn version, whether pre- "
            "and post-processing were timed, and which S8+ (Snapdragon 835 or Exynos 8895); docs/arm.md.")


def calibration_figure(doc, est: pd.DataFrame, run_dir: Path) -> Optional[Path]:
    """The calibration-quality plot (leave-one-out predicted vs published ms of the benchmark models)
    of the device fits behind the run's 1-thread estimates (their ``form``), refitted from the
    committed counts and the published tables; a line saying why when that is not possible."""
    from bench.arm import estimate as ae

    one = est[est["threads"] == 1]
    if "form" not in one.columns or one.empty:
        return None
    try:
        counts, tables = ae.load_calibration(), ae.load_device_tables()
        fits = [ae.fit_device(counts, tables, ae.DEVICES[d], 1, str(form))
                for d, form in one.drop_duplicates(C.DEVICE_MODEL)[[C.DEVICE_MODEL, "form"]].itertuples(index=False)]
    except (FileNotFoundError, ValueError, KeyError) as exc:
        doc.p(f"Calibration-quality plot not drawn: {exc}")
        return None
    # not named plot_*: the main report deletes the plot_*.png files it did not list itself
    path = plot_calibration(fits, run_dir / "arm_calibration_1t.png", 1)
    if path is not None:
        doc.img(path, "Calibration quality, 1 thread: each benchmark model's ms predicted by its device's fit "
                      "without it (leave-one-out) against the ms ncnn published; dotted +-20%")
    return path


def plot_calibration(fits: Sequence, path: Path, threads: int = 1) -> Optional[Path]:
    """Calibration quality: leave-one-out predicted vs published ms of the benchmark models, one
    panel per device (``fits``: the chosen ``bench.arm.estimate.DeviceFit`` per device)."""
    import numpy as np

    from .plots import _figure, _save

    fits = [f for f in fits if f.threads == threads]
    if not fits:
        return None
    fig, axes = _figure(len(fits), width=4.2, height=4.0, ncols=4)
    for ax in axes[len(fits):]:
        ax.set_visible(False)
    for ax, f in zip(axes, fits):
        y = np.asarray(f.published_ms)
        pred = y * (1 + np.asarray(f.loo_errors))
        lo, hi = min(y.min(), pred.min()) / 1.3, max(y.max(), pred.max()) * 1.3
        ax.loglog([lo, hi], [lo, hi], color="0.3", lw=1)
        for k, style in ((1.2, ":"), (1 / 1.2, ":")):
            ax.loglog([lo, hi], [lo * k, hi * k], color="0.6", lw=1, ls=style)
        ax.scatter(y, pred, s=18, color="tab:blue", zorder=3)
        for m, a, b, e in zip(f.models, y, pred, f.loo_errors):
            if abs(e) > 0.2:
                ax.annotate(m, (a, b), textcoords="offset points", xytext=(4, 3), fontsize=7)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(f"{f.device} ({f.cpu_model} counts), {threads} thread(s)\n{f.form}: LOO median "
                     f"{_pct(f.loo_err_median)}, p90 {_pct(f.loo_err_p90)}", fontsize=9)
        ax.set_xlabel("published ms (benchncnn)")
        ax.set_ylabel("predicted ms (model left out)")
    return _save(fig, path)


def fp16_markdown(layers: pd.DataFrame) -> str:
    """Per model: cortex-a76 / cortex-a72 instructions overall and for layers whose output channels
    are / are not a multiple of 8 (rows of ``bench.arm.estimate.fp16_layer_table``)."""
    lines = ["| model | a76 / a72 total | channels % 8 == 0: share of a72 instr., ratio | other layers: share, ratio |",
             "| --- | --- | --- | --- |"]
    for model, g in layers.groupby("model", sort=False):
        total = g.insns_a72.sum()
        cells = []
        for mult8 in (True, False):
            part = g[g.channels_mult8 == mult8]
            cells.append(f"{_pct(part.insns_a72.sum() / total)}, {part.insns_a76.sum() / part.insns_a72.sum():.2f}"
                         if len(part) and part.insns_a72.sum() > 0 else "-")
        lines.append(f"| {model} | {g.insns_a76.sum() / total:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + fp16_class_markdown(layers)


def fp16_class_markdown(layers: pd.DataFrame) -> str:
    """Per layer class (``bench.arm.counts.layer_class``) over the given models: cortex-a76 /
    cortex-a72 instructions for layers whose output channels are / are not a multiple of 8, with
    each group's share of the models' cortex-a72 instructions (who gains from fp16, who loses)."""
    total = layers.insns_a72.sum()
    lines = ["| layer class | channels % 8 == 0: layers, share of a72 instr., a76 / a72 | "
             "other channels: layers, share, a76 / a72 |", "| --- | --- | --- |"]
    for cls, g in layers.groupby("layer_class", sort=True):
        cells = []
        for mult8 in (True, False):
            part = g[g.channels_mult8 == mult8]
            a72 = part.insns_a72.sum()
            cells.append(f"{len(part)}, {_pct(a72 / total)}, {part.insns_a76.sum() / a72:.2f}" if a72 > 0 else "-")
        lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def device_comparison(doc, df: pd.DataFrame, device_model: str) -> pd.DataFrame:
    """"Measured on the device against the estimate": a run's ``device_latency`` rows (``--device``)
    beside the estimate for the calibrated device ``device_model`` names (``--device-model``), with
    the estimate's error per design and thread count (``bench.arm.estimate.measured_vs_estimated``).
    Measured and estimated ms stay in separate, labelled columns. Nothing is written when the run
    has no measured device rows. Returns the comparison rows."""
    from bench.arm.estimate import DEVICES, measured_vs_estimated

    if device_model not in DEVICES:
        doc.p(f"Measured device rows are not compared with an estimate: `{device_model}` is not a calibrated "
              f"device ({', '.join(DEVICES)}).")
        return pd.DataFrame()
    cmp = measured_vs_estimated(df, device_model)
    if cmp.empty:
        return cmp
    doc.h(3, f"Measured on the device against the {device_model} estimate")
    rows = []
    for _, r in cmp.sort_values(["arch", "threads"]).iterrows():
        has_est = pd.notna(r[C.ARM_EST_MS])
        rows.append([f"`{r['arch']}`", str(r["threads"]), f"{r[C.LATENCY_MS_MEDIAN]:.1f}",
                     (f"{r[C.ARM_EST_MS]:.1f} ({r[C.ARM_EST_MS_LOW]:.0f}-{r[C.ARM_EST_MS_HIGH]:.0f})"
                      if has_est else "-"),
                     f"{100 * r['est_err_vs_measured']:+.1f}%" if has_est else "-",
                     ("yes" if r["in_band"] else "no") if has_est else "-",
                     f"{_pct(r['est_loo_err_median'])} / {_pct(r['est_loo_err_p90'])}" if has_est else "-",
                     f"{r['device']} {r['device_reported']}".strip(), r["note"] or ""])
    doc.table(["model", "threads", "MEASURED ms (device, median)", f"ESTIMATED ms, {device_model} (80% band)",
               "estimate error", "measured in band", "expected error (LOO median / p90)", "device", "note"], rows)
    doc.p(f"The device of `--device` is taken to be the calibrated device `--device-model {device_model}` names "
          "(docs/arm.md). Estimate error = estimated / measured - 1 (+ = the estimate is too slow), to hold against "
          "the leave-one-out error the fit expects. Rows run through an emulator on the board are not device time "
          "and are left out.")
    return cmp
