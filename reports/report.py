"""The comparison report of a run: which model to ship, for which backend, and the evidence below it.

:func:`write_report` lays the document out; the parts live in focused modules (imports flow one way,
no cycles):

- ``reports.rows`` (selecting rows, machine kinds), ``reports.fmt`` (numbers), ``reports.doc``
  (Markdown + self-contained HTML);
- ``reports.latency_view`` - which timing is shown (disturbed ones only where no quiet one exists,
  marked; one machine kind per ratio), the latency detail tables;
- ``reports.accuracy_view`` - one data set at a time, paired comparisons, literature check, learning
  curves;
- ``reports.summary`` - the summary table and the recommendations;
- ``reports.compare`` (two runs), ``reports.examples`` (per-layer shares, example strip),
  ``reports.appendix`` (run header, protocol, plan).

The names other code imports from here (``summary_table``, ``recommendations``, ``compare_runs``,
``write_examples``, ...) are re-exported below.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Mapping, Optional

import numpy as np
import pandas as pd

from bench import columns as C
from bench.backends.table import backend_column as _bk
from bench.backends.table import backend_label
from bench.train.checkpoints import seed_spreads

from .accuracy_view import (CONVENTION, accuracy_by_model, headline_set, learning_curves, literature_table,
                            label_notes, paired_comparisons, paired_section, per_set_table, set_label)
from .appendix import appendix, run_line
from .compare import compare_runs, format_comparison  # noqa: F401  (API of this module)
from .doc import Doc
from .examples import (EXAMPLES_JSON, EXAMPLES_PNG, layer_csv, layer_shares,  # noqa: F401
                       normalise_layer_table, write_examples)
from .fmt import DISTURBED_MARK, NOT_MEASURED, _finite, _fmt, _fmt_miou
from .latency_view import (curve_panels, disturbed_footnote, latency_rows, latency_tables,  # noqa: F401
                           machine_kinds, main_machine_kind, repeatability_warning, timing_quality)
from .plots import BACKEND_MARKERS, pareto_front
from .rows import BACKEND_LABELS, BACKEND_ORDER, _at_size, _col, _rows, _text, main_input_size, with_machine_kind
from .summary import (cannot_tell_apart, cost_axes, cost_display, indistinguishable,  # noqa: F401
                      recommendations, summary_display, summary_table)

REPORT_MD, REPORT_HTML = "report.md", "report.html"


# ----------------------------------------------------------------------------- plot data

def point_frame(summary: pd.DataFrame, cost_col: str, lo_col: Optional[str] = None,
                hi_col: Optional[str] = None, disturbed_col: Optional[str] = None) -> pd.DataFrame:
    """arch (the model's name), kind, x, x_lo, x_hi, y, y_lo, y_hi, disturbed, on_front for the
    models with both cost and mIoU; the Pareto front is over the undisturbed points only."""
    ok = summary[_col(summary, cost_col).notna() & _col(summary, C.MIOU).notna()]
    names = ok["name"] if "name" in ok.columns else ok["arch"]
    pts = pd.DataFrame({"arch": names, "kind": ok.get("kind", "design"), "x": _col(ok, cost_col),
                        "x_lo": _col(ok, lo_col) if lo_col else np.nan, "x_hi": _col(ok, hi_col) if hi_col else np.nan,
                        "y": _col(ok, C.MIOU), "y_lo": _col(ok, C.MIOU_CI_LOW), "y_hi": _col(ok, C.MIOU_CI_HIGH),
                        "disturbed": ok[disturbed_col].astype(bool) if disturbed_col in ok.columns else False})
    pts = pts.reset_index(drop=True)
    quiet = pts[~pts["disturbed"]]
    front = {quiet.index[i] for i in pareto_front(list(zip(quiet["x"], quiet["y"])))}
    pts["on_front"] = [i in front for i in range(len(pts))]
    return pts


def plot_points(summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The points of the accuracy plots, by panel: ``"headline"`` (every model at its fastest backend
    and thread count here, undisturbed where it has such a timing; ``marker`` per backend) and one per
    cost axis."""
    out = {}
    pts = point_frame(summary, "latency_ms_best", "latency_ms_best_p10", "latency_ms_best_p90", "disturbed_best")
    if not pts.empty:
        rows = summary.set_index(summary["name"] if "name" in summary.columns else summary["arch"])
        backend = [str(rows.at[n, "best_backend"]) for n in pts["arch"]]
        threads = [rows.at[n, "threads_best"] for n in pts["arch"]]
        order = list(BACKEND_ORDER)
        pts["marker"] = [BACKEND_MARKERS[order.index(b) % len(BACKEND_MARKERS)] if b in order else "o"
                         for b in backend]
        pts["legend"] = [f"{n} ({backend_label(b)}" + (f" {int(t)}T)" if _finite(t) else ")")
                         for n, b, t in zip(pts["arch"], backend, threads)]
    out["headline"] = pts
    for ax in cost_axes(summary):
        k = ax.column[len("latency_ms_"):] if ax.column.startswith("latency_ms_") else None
        out[ax.label] = point_frame(summary, ax.column, f"latency_ms_{k}_p10" if k else None,
                                    f"latency_ms_{k}_p90" if k else None, ax.disturbed)
    return out


# ----------------------------------------------------------------------------- sections

def _jobs_line(run_dir: Path, df: pd.DataFrame) -> str:
    """The run's job counts (last attempts, as results.csv holds them: the same count as the run's last
    line) and any row lines torn by an interrupted write."""
    from .results import job_counts, torn_lines
    torn = torn_lines(run_dir)
    return (f"**Jobs**: {job_counts(df).line()}"
            + (f"; {torn} row line(s) torn by an interrupted write were set aside in `rows.jsonl.torn` "
               "(their jobs ran again)" if torn else "") + ".")


def _accuracy_notes(summary: pd.DataFrame, paired: pd.DataFrame) -> list[str]:
    acc = summary[_col(summary, C.MIOU).notna()]
    if acc.empty:
        return ["Accuracy was not measured in this run (no trained weights or no data): models can only be "
                "compared on cost."]
    notes = []
    half = ((_col(acc, C.MIOU_CI_HIGH) - _col(acc, C.MIOU_CI_LOW)) / 2).dropna()
    n = _col(acc, C.N_IMAGES).dropna()
    if not half.empty:
        notes.append(f"mIoU 95% CIs (bootstrap over images) are about ±{half.median():.3f}"
                     + (f" with {int(n.median())} images" if not n.empty else "")
                     + "; models are told apart by a paired comparison on the same images where the run has one.")
    best = acc.loc[_col(acc, C.MIOU).idxmax()]
    ties = [r["name"] for _, r in acc.iterrows()
            if r["name"] != best["name"] and cannot_tell_apart(best, r, paired)[0]]
    if ties:
        basis = ("paired comparison on the same images, 95% CI of the difference includes 0" if not paired.empty
                 else "no paired comparison in this run: each mIoU inside the other's 95% CI")
        notes.append(f"**Cannot be told apart** from the most accurate, `{best['name']}` ({basis}): "
                     + ", ".join(f"`{n}`" for n in ties) + "; every other pair: Accuracy, paired comparisons.")
    else:
        basis = ("paired comparison on the same images: every 95% CI of the difference excludes 0"
                 if not paired.empty else "no paired comparison in this run: separate 95% CIs")
        notes.append(f"`{best['name']}` is measurably more accurate than every other model measured ({basis}).")
    return notes


def _accuracy_rows_table(doc: Doc, df: pd.DataFrame) -> None:
    acc = _rows(df, "accuracy", ok_only=False)
    if acc.empty:
        return
    doc.h(3, "Accuracy (every weights and data set)")
    cols = ["weights", "dataset", "split", C.N_IMAGES]
    rows = []
    for _, r in acc.sort_values(["arch"]).iterrows():
        inp = r.get("native_input") if isinstance(r.get("native_input"), str) else (
            f"{int(r['input_size'])}x{int(r['input_size'])}" if _finite(r.get("input_size")) else NOT_MEASURED)
        rows.append([f"`{r['arch']}`", inp, *[_fmt(r.get(c)) if not isinstance(r.get(c), str) else r.get(c)
                                              for c in cols],
                     _fmt_miou(r) if str(r.get("status")) == "ok" else NOT_MEASURED,
                     _fmt(r.get(C.BOUNDARY_F), 3), str(r.get("status", ""))[:80]])
    doc.table(["model", "input", *cols, "mIoU [95% CI]", "boundary F", "status"], rows)


def _cost_by_size(doc: Doc, df: pd.DataFrame) -> None:
    prof = _rows(df, "profile")
    if prof.empty or _col(prof, "input_size").nunique() <= 1:
        return
    doc.h(3, "Cost by input size")
    sizes = sorted(set(_col(prof, "input_size").dropna().astype(int)))
    rows = []
    for a, g in prof.groupby(_text(prof, "arch")):
        by = {int(s): r for s, (_, r) in zip(_col(g, "input_size"), g.iterrows()) if _finite(s)}
        rows.append([f"`{a}`"] + [f"{_fmt(by[s].get(C.MACS_G), 3)} / {_fmt(by[s].get(C.ACT_PEAK_MB), 1)}"
                                  if s in by else NOT_MEASURED for s in sizes])
    doc.table(["design"] + [f"{s}x{s}: GMACs / peak act. MB" for s in sizes], rows)


def _examples_figure(run_dir: Path) -> tuple[Optional[Path], str, str]:
    ex = {}
    try:
        ex = json.loads((run_dir / EXAMPLES_JSON).read_text())
    except (OSError, json.JSONDecodeError):
        pass
    ex_img = run_dir / EXAMPLES_PNG
    where = {"val": "validation images", "all": "images (no validation split found)"}.get(ex.get("split"), "images")
    caption = (f"Example predictions (threshold 0.5) on {where} of {Path(str(ex.get('data', ''))).name}: "
               + ", ".join(map(str, ex.get("stems", [])))
               + "; weights: " + ", ".join(f"{a} {w}" for a, w in (ex.get("weights") or {}).items()))
    return (ex_img if ex.get("image") and ex_img.is_file() else None, caption,
            ex.get("note") or "example predictions: not made (run with a data folder)")


# ----------------------------------------------------------------------------- the report

def load_results(run_dir: Path) -> pd.DataFrame:
    """The rows of a saved run: ``rows.jsonl`` (last attempt per job), else results.json/.csv."""
    run_dir = Path(run_dir)
    from .results import load_rows
    try:
        return load_rows(run_dir)
    except FileNotFoundError:
        pass
    if (run_dir / "results.json").is_file():
        return pd.read_json(run_dir / "results.json", orient="records")
    if (run_dir / "results.csv").is_file():
        return pd.read_csv(run_dir / "results.csv")
    raise FileNotFoundError(f"{run_dir}: not a run folder (no rows.jsonl, results.json or results.csv)")


def load_meta(run_dir: Path) -> dict:
    path = Path(run_dir) / "meta.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def write_report(run_dir: Path, df: pd.DataFrame, meta: Optional[Mapping] = None,
                 layer_tables: bool = True, progress: Optional[Callable[[str], None]] = None,
                 checkpoints_dir: Optional[Path] = None) -> Path:
    """Write the report of a run into ``run_dir`` and return the path of ``report.html``.

    Files: ``report.md`` (tables, linked PNGs), ``report.html`` (self-contained, PNGs embedded),
    ``summary.csv``, ``paired.csv`` (paired comparisons, when the rows allow them), the plots
    (``plot_*.png``; a plot without data is listed as not plotted), ``layers/<arch>_<size>.csv`` when
    per-layer tables are available (kept and reused when the report is rendered again), and
    ``results.csv`` / ``results.json`` (every row) if the run folder lacks them. The example strip is
    whatever :func:`write_examples` left in the folder; the learning curves come from the provenance
    JSON of the checkpoints in ``checkpoints_dir`` (default ``checkpoints/``).
    """
    from . import plots

    say = progress or (lambda msg: None)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    df = df if df is not None else pd.DataFrame()
    if not (run_dir / "results.csv").is_file():
        df.to_csv(run_dir / "results.csv", index=False)
    if not (run_dir / "results.json").is_file():
        df.to_json(run_dir / "results.json", orient="records", indent=1)
    df = with_machine_kind(df, meta)
    size = main_input_size(df, meta)
    head = headline_set(df)
    set_name = set_label(*head) if head else ""
    summary = summary_table(df, size)
    summary.to_csv(run_dir / "summary.csv", index=False)
    say("accuracy: paired comparisons")
    paired = paired_comparisons(accuracy_by_model(df, size))
    if not paired.empty:
        paired.to_csv(run_dir / "paired.csv", index=False)
    names = list(summary["name"]) if not summary.empty else []
    colors = plots.arch_colors(names)

    doc = Doc()
    doc.h(1, "Portrait segmentation benchmark: " + run_dir.name)
    partial = meta.get("partial")
    if partial:
        doc.p(f"**Partial run**: {partial.get('jobs_finished')} of {partial.get('jobs_planned')} jobs finished "
              f"before it was interrupted; what is missing shows as {NOT_MEASURED}. Complete it with "
              f"`python run_bench.py --all --resume {run_dir}`.")
    doc.p(run_line(meta, df))
    doc.p(_jobs_line(run_dir, df))

    doc.h(2, "What to ship")
    doc.ul(recommendations(summary, paired)
           or ["Nothing to recommend yet: no latency or instruction-count measurement in this run."])
    kinds = machine_kinds(df)
    notes = (label_notes(df) + _accuracy_notes(summary, paired)
             + [w for w in (timing_quality(df), repeatability_warning(df)) if w])
    if len(kinds) > 1:
        notes.append(f"Timings come from {len(kinds)} machine kinds ({'; '.join(kinds)}): the summary, speed-ups "
                     f"and recommendations use {main_machine_kind(df)} only (no ratio mixes two kinds); the others "
                     "are in Details.")
    doc.ul(notes)

    doc.h(2, "Summary")
    heads, cells = summary_display(summary, paired)
    doc.table(heads, cells)
    shown = latency_rows(df, main_machine_kind(df))
    foot = disturbed_footnote(_at_size(shown, size))
    doc.p(f"mIoU on {set_name or 'the headline set'}: {CONVENTION}. \"vs best\": whether the model can be told "
          "apart from the most accurate (paired comparison on the same images where marked, else their CIs). "
          f"Latency: median per frame at the largest thread count measured (T = threads); designs at {size}x{size}, "
          "peers at their own input (column \"input\"); a figure also measured in fresh processes is the median "
          "over them; * = frame-to-frame variation above 15%. Cost, sizes and speed-ups: Details. "
          "This table: [summary.csv](summary.csv); every row: [results.csv](results.csv)."
          + (f" {foot}" if foot else ""))

    figures: list[tuple[Optional[Path], str, str]] = []  # (path, caption, why missing)
    say("plots: accuracy vs latency")
    points = plot_points(summary)
    head_panel = {"title": f"Every model at its fastest backend and threads here ({set_name})", "points": points["headline"],
                  "xlabel": "median latency per frame (ms, log scale; bars p10-p90)",
                  "ylabel": f"mIoU on {set_name} (95% CI)", "legend_outside": True}
    figures.append((plots.plot_accuracy_vs_cost([head_panel], run_dir / "plot_headline.png", colors, ncols=1),
                    f"Accuracy on {set_name} against latency on each model's fastest backend and thread count here "
                    f"(marker = backend; "
                    f"hollow{DISTURBED_MARK} = disturbed timing with no quiet one); Pareto front dashed",
                    "headline plot: needs accuracy and latency rows"))
    panels = [{"title": ax.label, "points": points[ax.label], "ylabel": f"mIoU on {set_name} (95% CI)",
               "xlabel": f"{'latency' if ax.unit == 'ms' else 'cost'} per frame ({ax.unit}, log scale)"}
              for ax in cost_axes(summary)]
    figures.append((plots.plot_accuracy_vs_cost(panels, run_dir / "plot_accuracy_vs_latency.png", colors),
                    f"Per backend: mIoU on {set_name} with 95% CI (vertical bars), p10-p90 latency (horizontal bars), "
                    "Pareto front dashed", "accuracy vs latency per backend: needs both accuracy and latency rows"))
    _place(doc, "Accuracy against latency", figures)

    doc.h(2, "Accuracy")
    per_set_table(doc, df, size, names)
    literature_table(doc, df, size)
    spreads = {a: s for a, s in seed_spreads(checkpoints_dir).items() if head and (s.dataset, s.split) == tuple(head)}
    paired_section(doc, accuracy_by_model(df, size), paired, set_name, indistinguishable(summary), spreads)
    designs = [a for a, k in zip(summary.get("arch", []), summary.get("kind", [])) if k == "design"]
    curves, curve_note = learning_curves(list(dict.fromkeys(designs)), checkpoints_dir)
    figures = [(plots.plot_learning_curves(curves, run_dir / "plot_learning_curves.png", colors,
                                           "Learning curves of the committed checkpoints"),
                f"Validation mIoU during training against images seen ({curve_note}); not {set_name}",
                f"learning curves: {curve_note or 'no checkpoint provenance with a curve'}")]
    _place(doc, None, figures)

    from .arm_estimate import arm_section  # estimated ARM ms (labelled estimates, never in the columns above)
    device_model = str(meta.get("device_model") or "rpi4")
    main = summary[summary["rank"] == 0] if "rank" in summary.columns else summary
    arm_plot, arm_why = arm_section(doc, df, main, run_dir, colors, device_model)

    say("plots: cost and latency")
    pts = point_frame(summary, C.MACS_G)
    macs_panel = {"title": f"designs at {size}x{size}, peers at their own input", "points": pts,
                  "xlabel": "GMACs per frame (log scale)", "ylabel": f"mIoU on {set_name} (95% CI)"}
    figures = [(plots.plot_accuracy_vs_cost([macs_panel] if not pts.empty else [],
                                            run_dir / "plot_accuracy_vs_macs.png", colors),
                "Accuracy vs multiply-adds (fvcore), Pareto front dashed",
                "accuracy vs MACs: needs accuracy and profile rows")]
    figures.append((arm_plot, f"Accuracy vs ESTIMATED latency on {device_model} (1 thread, ncnn): estimates from "
                              "qemu instruction counts calibrated on ncnn's published timings, 80% bands", arm_why))
    figures.append((plots.plot_latency_bars(summary, run_dir / "plot_latency_by_backend.png", colors,
                                            {_bk(b): lbl for b, lbl in BACKEND_LABELS.items()}),
                    f"Median latency per backend (designs at {size}x{size}, peers at their own input; p10-p90 bars; "
                    f"{DISTURBED_MARK} disturbed)", "latency: not measured"))
    figures.append((plots.plot_curves(curve_panels(df, "input_size", size, True), run_dir / "plot_latency_vs_size.png",
                                      colors, "input side (px)", "median latency (ms, log scale)", log_y=True),
                    "Latency vs input size (shaded: p10-p90; hollow: disturbed)",
                    "latency vs input size: needs latency at 2+ sizes"))
    figures.append((plots.plot_curves(curve_panels(df, "threads", size, False), run_dir / "plot_thread_scaling.png",
                                      colors, "threads", "speed-up over {x0} thread(s) (x)", speedup=True),
                    f"Thread scaling (designs at {size}x{size}, peers at their own input): speed-up over the fewest "
                    "threads measured (dotted: ideal; "
                    "hollow: disturbed, no quiet measurement)", "thread scaling: needs latency at 2+ thread counts"))
    if layer_tables and designs:
        say("plots: per-layer MAC share")
        shares, note = layer_shares(df, list(dict.fromkeys(designs)), size, run_dir)
        figures.append((plots.plot_layer_shares(shares, run_dir / "plot_layer_mac_share.png", colors),
                        f"Share of MACs per layer at {size}x{size} (largest layers; full tables in "
                        f"layers/<design>_{size}.csv)" + (f"; {note}" if note and shares else ""),
                        f"per-layer MAC share: {note or 'no layer tables'}"))
    figures.append(_examples_figure(run_dir))
    _place(doc, "More plots", figures)
    made = {p.name for p in doc.images()}
    for stale in run_dir.glob("plot_*.png"):  # from an earlier rendering with other rows
        if stale.name not in made:
            stale.unlink()

    doc.h(2, "Details")
    doc.h(3, "Cost of every model")
    doc.table(*cost_display(summary))
    doc.p("Parameters, MACs (fvcore) and activation memory at each row's input; the ncnn speed-up is PyTorch / "
          "ncnn x86 at the same thread count and machine kind, from the two timed interleaved in one process where "
          f"that comparison was quiet, else from their medians ({DISTURBED_MARK}: from disturbed timings only).")
    latency_tables(doc, df, size)
    _accuracy_rows_table(doc, df)
    _cost_by_size(doc, df)
    bad = df[~_text(df, "status", "ok").eq("ok")] if not df.empty else df
    if not bad.empty:
        doc.h(3, "Skipped and failed jobs")
        doc.table(["job", "status"], [[f"`{r.get('job', '')}`", str(r["status"])[:300]] for _, r in bad.iterrows()])
    appendix(doc, meta, df, size)

    say("writing report.md / report.html")
    (run_dir / REPORT_MD).write_text(doc.to_markdown(run_dir))
    out = run_dir / REPORT_HTML
    out.write_text(doc.to_html(f"Portrait segmentation benchmark {run_dir.name}"))
    return out


def _place(doc: Doc, heading: Optional[str], figures: list[tuple[Optional[Path], str, str]]) -> None:
    """The figures that were made, then a list of those that were not, with why."""
    if heading:
        doc.h(2, heading)
    missing = []
    for path, caption, why in figures:
        if path is not None:
            doc.img(path, caption)
        else:
            missing.append(why)
    if missing:
        doc.p("Not plotted:")
        doc.ul(missing)
