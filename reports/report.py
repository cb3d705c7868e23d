"""The comparison report of a run: which design to ship, for which device.

Longer than 600 lines: tables, plot wiring and the markdown / HTML document are one module, and
``write_examples`` / the per-layer shares still measure here; splitting it (tables, document, and
those two as measurements with rows) is the part of issue 18 not done yet.

Pure functions on the results table (one row per measurement, see ``bench/jobs.py``):

- :func:`summary_table` - one row per design (and per peer): cost, accuracy with its CI, latency per
  backend, ncnn speed-up, achieved GMAC/s, status. Missing measurements are NaN, never an error.
- :func:`pareto_front` - indices of the points no other point beats on both cost and accuracy.
- :func:`indistinguishable` - pairs of designs whose mIoU confidence intervals overlap.
- :func:`recommendations` - per backend, the design to ship and why.
- :func:`compare_runs` - per design and metric, what changed between two runs.

File writing (the report layer is the only code that writes files):

- :func:`write_examples` - a strip of example predictions (needs models and data).
- :func:`write_report` - ``report.md`` with linked PNGs and a self-contained ``report.html``.
"""
from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from .plots import pareto_front  # noqa: F401  (part of this module's API: the report's front)

from bench import columns as C
from bench.backends.table import TABLE as BACKEND_TABLE
from bench.columns import speedup as speedup_of
from bench.backends.table import backend_column as _bk
from bench.backends.table import backend_label

NOT_MEASURED = "—"
NOISY_CV = 0.15  # a latency whose frame-to-frame coefficient of variation is above this is flagged
NOISY_MARK = "†"
BACKEND_LABELS = {name: b.label for name, b in BACKEND_TABLE.items()}
BACKEND_ORDER = tuple(BACKEND_TABLE)
ALWAYS_SHOWN_BACKENDS = ("torch", "ncnn")  # columns shown even when nothing was measured
# the accuracy shown per design: the suite's own recipe first (held out, the same for every design),
# then a published checkpoint (seg_matting's seed, trained on unknown data); others next, random last
WEIGHTS_PREFERENCE = ("trained", "seed")
REPORT_MD, REPORT_HTML = "report.md", "report.html"
EXAMPLES_PNG, EXAMPLES_JSON = "examples.png", "examples.json"

# direction of each summary metric: +1 higher is better, -1 lower is better, 0 neither
_HIGHER_BETTER = ("miou", "boundary_f", "ncnn_speedup", "gmacs_per_s")
_LOWER_BETTER = ("latency_ms", "params", "macs_g", "size_mb", "act_peak_mb", "arm_instructions_m")


# ----------------------------------------------------------------------------- row selection

def _col(df: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name`` as numbers (NaN where missing or not a number)."""
    if name in df.columns:
        return pd.to_numeric(df[name], errors="coerce")
    return pd.Series(np.nan, index=df.index, dtype=float)


def _text(df: pd.DataFrame, name: str, default: str = "") -> pd.Series:
    if name in df.columns:
        return df[name].astype(object).where(df[name].notna(), default).astype(str)
    return pd.Series(default, index=df.index, dtype=object)


def _at_size(frame: pd.DataFrame, size: int) -> pd.DataFrame:
    """Rows measured at input side ``size``, rows without a size, and every peer row (peers are
    measured at their own native input size, named in ``native_input``)."""
    if frame.empty:
        return frame
    from archs import list_archs
    peer = ~_text(frame, "arch").isin(list_archs())
    sizes = _col(frame, "input_size")
    return frame[sizes.isin([size]) | sizes.isna() | peer]


def _rows(df: pd.DataFrame, measurement: str, ok_only: bool = True) -> pd.DataFrame:
    """Rows of one measurement (only the ``ok`` ones by default)."""
    if df is None or df.empty or "measurement" not in df.columns:
        return pd.DataFrame(columns=["arch"])
    sel = df[_text(df, "measurement") == measurement]
    if ok_only:
        sel = sel[_text(sel, "status", "ok") == "ok"]
    return sel


def latency_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The ok latency rows, each with its most robust median: where a ``latency_repeat`` row of the
    same design, backend, threads and size has a median over fresh processes, that median replaces
    the single run's (p10 / p90 / mean scaled by the same factor, so the frame-to-frame spread is
    kept) and ``latency_runs`` says how many processes it comes from (1 otherwise)."""
    lat = _rows(df, "latency").copy()
    if lat.empty:
        return lat.assign(latency_runs=[])
    lat["latency_runs"] = 1
    rep = _rows(df, "latency_repeat", ok_only=False)
    if rep.empty or "latency_ms_median_of_runs" not in rep.columns:
        return lat
    key = ["arch", "backend", "threads", "input_size"]
    if any(k not in lat.columns or k not in rep.columns for k in key):
        return lat
    best = {tuple(r[k] for k in key): r for _, r in rep.iterrows()
            if _finite(r.get("latency_ms_median_of_runs")) and (r.get("runs_ok") or 0) >= 2}
    for i, r in lat.iterrows():
        hit = best.get(tuple(r[k] for k in key))
        single = r.get("latency_ms_median")
        if hit is None or not _finite(single) or single <= 0:
            continue
        f = float(hit["latency_ms_median_of_runs"]) / float(single)
        for c in ("latency_ms_median", "latency_ms_p10", "latency_ms_p90", "latency_ms_mean"):
            if c in lat.columns and _finite(r.get(c)):
                lat.at[i, c] = float(r[c]) * f
        if "achieved_gmacs_per_s" in lat.columns and _finite(r.get("achieved_gmacs_per_s")):
            lat.at[i, "achieved_gmacs_per_s"] = float(r["achieved_gmacs_per_s"]) / f
        lat.at[i, "latency_runs"] = int(hit["runs_ok"])
    return lat


def _archs(df: pd.DataFrame) -> list[str]:
    if df is None or df.empty or "arch" not in df.columns:
        return []
    return list(dict.fromkeys(str(a) for a in df["arch"].dropna()))


def _backends(df: pd.DataFrame) -> list[str]:
    lat = _rows(df, "latency")
    found = set(_text(lat, "backend")) - {""}
    ordered = [b for b in BACKEND_ORDER if b in found]
    return ordered + sorted(found - set(ordered))


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _first(values: Iterable[Any]) -> float:
    for v in values:
        if _finite(v):
            return float(v)
    return float("nan")


def main_input_size(df: pd.DataFrame, meta: Optional[Mapping] = None) -> int:
    """The input side the summary is given at: the run's planned size, else the size most
    accuracy/latency rows were measured at, else 256 (or the middle of a profile sweep)."""
    plan = (meta or {}).get("plan") or {}
    if _finite(plan.get("input_size")):
        return int(plan["input_size"])
    sizes = pd.concat([_col(_rows(df, m), "input_size") for m in ("accuracy", "latency")]).dropna()
    if not sizes.empty:
        return int(sizes.mode().max())
    prof = sorted(set(_col(_rows(df, "profile"), "input_size").dropna().astype(int)))
    if not prof or 256 in prof:
        return 256
    return prof[len(prof) // 2]


def _latency_at(lat: pd.DataFrame, size: int, threads: Optional[int]) -> pd.DataFrame:
    """Latency rows at ``size``; at ``threads`` if given, else each (arch, backend) at its largest
    thread count (all cores: the number a user of the device sees)."""
    sel = _at_size(lat, size)
    if sel.empty:
        return sel
    th = _col(sel, "threads")
    if threads is not None:
        return sel[th.isin([threads]) | th.isna()]
    top = th.groupby([_text(sel, "arch"), _text(sel, "backend")]).transform("max")
    return sel[(th == top) | top.isna()]


# ----------------------------------------------------------------------------- summary

def _status_summary(rows: pd.DataFrame) -> str:
    """'ok', or the short problems of a design: errors always, skips only for a measurement
    (and backend) that has no ok row at all."""
    if rows.empty:
        return "not measured"
    problems = []
    status = _text(rows, "status", "ok")
    what = _text(rows, "measurement") + np.where(_text(rows, "backend") != "", "/" + _text(rows, "backend"), "")
    ok_what = set(what[status == "ok"])
    for w, s, wt in zip(what, status, _text(rows, "weights")):
        kind = s.split(":", 1)[0].strip()
        if kind == "ok":
            continue
        if kind == "skipped" and w in ok_what:
            continue
        label = f"{w}: {kind}" if not (w.startswith("accuracy") and wt) else f"{w}/{wt}: {kind}"
        if label not in problems:
            problems.append(label)
    parity = rows[_text(rows, "parity_ok").str.lower().isin(["false", "0", "0.0"])]
    for _, r in parity.iterrows():
        label = f"{r.get('backend', '?')} parity fails"
        if label not in problems:
            problems.append(label)
    return "ok" if not problems else "; ".join(problems)


def _weights_rank(w: str) -> int:
    if w in WEIGHTS_PREFERENCE:
        return WEIGHTS_PREFERENCE.index(w)
    return len(WEIGHTS_PREFERENCE) + 1 if w == "random" else len(WEIGHTS_PREFERENCE)


def pool_accuracy(rows: pd.DataFrame) -> dict[str, Any]:
    """One accuracy over several data sets (rows of one design and weights, one per data set).

    The mean is exact (per-image IoUs weighted by each set's image count); the 95% CI is the normal
    approximation of a stratified bootstrap: each set's standard error from its CI half-width
    (/1.96), combined with weights n_i / N. A single row is returned unchanged.
    """
    n = _col(rows, "n_images").fillna(0)
    if len(rows) == 1 or n.sum() <= 0:
        r = rows.iloc[0]
        return {c: r.get(c) for c in ("miou", "miou_ci_low", "miou_ci_high", "boundary_f", "n_images",
                                      "dataset", "weights")}
    w = n / n.sum()
    out: dict[str, Any] = {"n_images": float(n.sum()),
                           "weights": str(rows["weights"].iloc[0]) if "weights" in rows else "",
                           "dataset": "+".join(sorted(set(_text(rows, "dataset")))) + " (pooled)"}
    miou = _col(rows, "miou")
    out["miou"] = float((w * miou).sum())
    se = (_col(rows, "miou_ci_high") - _col(rows, "miou_ci_low")) / (2 * 1.959964)
    if se.notna().all():
        half = 1.959964 * math.sqrt(float((w ** 2 * se ** 2).sum()))
        out["miou_ci_low"], out["miou_ci_high"] = out["miou"] - half, out["miou"] + half
    else:
        out["miou_ci_low"] = out["miou_ci_high"] = float("nan")
    bf = _col(rows, "boundary_f")
    out["boundary_f"] = float((w * bf).sum()) if bf.notna().all() else float("nan")
    return out


def _pick_accuracy(acc: pd.DataFrame, size: int, dataset: Optional[str]) -> pd.DataFrame:
    """One accuracy per design (index arch): at the main size, with the preferred weights (never
    random), over ``dataset`` if given, else over every data set measured (pooled, see
    :func:`pool_accuracy`)."""
    if acc.empty:
        return pd.DataFrame()
    # random weights say nothing about a design: they stay in the detail table only
    acc = acc[_col(acc, "miou").notna() & (_text(acc, "weights") != "random")]
    if acc.empty:
        return pd.DataFrame()
    if dataset is not None and (_text(acc, "dataset") == dataset).any():
        acc = acc[_text(acc, "dataset") == dataset]
    if (_col(acc, "input_size") == size).any():
        acc = _at_size(acc, size)
    out = {}
    for arch, g in acc.groupby(_text(acc, "arch"), sort=False):
        w = _text(g, "weights")
        best = min(set(w), key=lambda x: (_weights_rank(x), x))
        g = g[w == best]
        # one row per data set; the validation split wins over a whole-set row (e.g. the full-HSD
        # reproduction of a published checkpoint), so every design is compared on the same images
        g = g.assign(_val=(_text(g, "split") == "val").astype(int)).sort_values("_val", kind="stable")
        g = g.drop_duplicates(subset=["dataset"] if "dataset" in g.columns else None, keep="last")
        g = g.drop(columns="_val")
        out[arch] = pool_accuracy(g)
    return pd.DataFrame.from_dict(out, orient="index")


def _designs(archs: Sequence[str], designs: Optional[Sequence[str]]) -> set[str]:
    if designs is not None:
        return set(designs)
    try:
        from archs import list_archs
        return set(list_archs())
    except Exception:  # registry unavailable: call everything a design
        return set(archs)


def summary_table(df: pd.DataFrame, input_size: Optional[int] = None, threads: Optional[int] = None,
                  dataset: Optional[str] = None, designs: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """One row per design (then per peer), numbers raw (NaN = not measured).

    Columns: arch, kind ("design"/"peer"), input_size, params, macs_g, size_mb_fp32, size_mb_fp16,
    size_mb_ncnn_bin, act_peak_mb, weights, dataset, n_images, miou, miou_ci_low, miou_ci_high,
    boundary_f, latency_ms_<backend> and threads_<backend> and gmacs_per_s_<backend> for every
    backend measured (always torch and ncnn), latency_ms_<backend>_p10/_p90, arm_instructions_m,
    ncnn_speedup (PyTorch / ncnn x86 at the same threads: from the interleaved ``speedup``
    measurement where there is one, with ncnn_speedup_min/_max its range over rounds, else the ratio
    of the two backends' medians, min/max NaN), status.
    Cost and latency are at ``input_size`` (default :func:`main_input_size`); latency at ``threads``
    (default: the largest thread count measured).
    """
    size = int(input_size) if input_size is not None else main_input_size(df)
    archs = _archs(df)
    known = _designs(archs, designs)
    out = pd.DataFrame({"arch": archs})
    if out.empty:
        return out.assign(kind=[], status=[])
    out["kind"] = ["design" if a in known else "peer" for a in archs]
    out["input_size"] = size

    prof = _rows(df, "profile")
    at = _at_size(prof, size)
    for c in ("params", "size_mb_fp32", "size_mb_fp16", "size_mb_ncnn_bin"):  # do not depend on size
        out[c] = [_first(_col(prof[prof["arch"] == a], c)) for a in archs]
    for c in ("macs_g", "act_peak_mb"):
        out[c] = [_first(_col(at[at["arch"] == a], c)) for a in archs]

    acc = _pick_accuracy(_rows(df, "accuracy"), size, dataset)
    for c in ("miou", "miou_ci_low", "miou_ci_high", "boundary_f", "n_images"):
        out[c] = [float(_col(acc, c).get(a, np.nan)) if not acc.empty else np.nan for a in archs]
    for c in ("weights", "dataset"):
        out[c] = [str(acc[c].get(a, "")) if c in acc.columns and a in acc.index else "" for a in archs]

    lat_all = _at_size(latency_rows(df), size)  # every thread count: the speed-up below needs them
    lat = _latency_at(lat_all, size, threads)
    backends = list(dict.fromkeys([*ALWAYS_SHOWN_BACKENDS, *_backends(df)]))
    for b in backends:
        sel = lat[_text(lat, "backend") == b]
        grp = {a: g for a, g in sel.groupby(_text(sel, "arch"))}
        empty = sel.iloc[0:0]
        k = _bk(b)
        out[f"latency_ms_{k}"] = [_col(grp.get(a, empty), "latency_ms_median").mean() for a in archs]
        out[f"latency_ms_{k}_p10"] = [_col(grp.get(a, empty), "latency_ms_p10").mean() for a in archs]
        out[f"latency_ms_{k}_p90"] = [_col(grp.get(a, empty), "latency_ms_p90").mean() for a in archs]
        out[f"threads_{k}"] = [_col(grp.get(a, empty), "threads").max() for a in archs]
        out[f"latency_cv_{k}"] = [_col(grp.get(a, empty), "latency_cv").max() for a in archs]
        out[f"latency_runs_{k}"] = [_col(grp.get(a, empty), "latency_runs").max() for a in archs]
        gm = [_col(grp.get(a, empty), "achieved_gmacs_per_s").mean() for a in archs]
        # fall back to MACs / latency when the row does not carry it
        out[f"gmacs_per_s_{k}"] = [g if _finite(g) else (m / (t / 1e3) if _finite(m) and _finite(t) and t > 0
                                                          else np.nan)
                                   for g, m, t in zip(gm, out["macs_g"], out[f"latency_ms_{k}"])]

    arm = _rows(df, "arm_cost")
    arm_at = _at_size(arm, size)
    out["arm_instructions_m"] = [_first(_col(arm_at[arm_at["arch"] == a], "arm_instructions_m")) for a in archs]

    # ncnn speed-up: PyTorch / ncnn at the same thread count (the largest both have); where the two
    # were timed interleaved (``speedup`` rows) that ratio, with its range over rounds
    full = lat_all
    inter = _at_size(_rows(df, "speedup"), size)
    inter = inter[_text(inter, "backend") == "ncnn"] if not inter.empty else inter
    speed, low, high = [], [], []
    for a in archs:
        ra = full[full["arch"] == a]
        t_torch = ra[_text(ra, "backend") == "torch"]
        t_ncnn = ra[_text(ra, "backend") == "ncnn"]
        ia = inter[inter["arch"] == a] if not inter.empty else inter
        common = set(_col(t_torch, "threads").dropna()) & set(_col(t_ncnn, "threads").dropna())
        if threads is not None:
            common &= {threads}
        hit = ia[_col(ia, "threads") == max(common)] if common and not ia.empty else ia.iloc[0:0]
        if not hit.empty and _finite(_first(_col(hit, C.SPEEDUP))):
            speed.append(float(_first(_col(hit, C.SPEEDUP))))
            low.append(float(_first(_col(hit, C.SPEEDUP_MIN))))
            high.append(float(_first(_col(hit, C.SPEEDUP_MAX))))
            continue
        if common:
            t = max(common)
            num = _col(t_torch[_col(t_torch, C.THREADS) == t], C.LATENCY_MS_MEDIAN).mean()
            den = _col(t_ncnn[_col(t_ncnn, C.THREADS) == t], C.LATENCY_MS_MEDIAN).mean()
        else:
            num = _col(t_torch, "latency_ms_median").mean() if _col(t_torch, "threads").isna().all() else np.nan
            den = _col(t_ncnn, "latency_ms_median").mean() if _col(t_ncnn, "threads").isna().all() else np.nan
        speed.append(speedup_of(num, den))
        low.append(np.nan)
        high.append(np.nan)
    out["ncnn_speedup"] = speed
    out["ncnn_speedup_min"] = low
    out["ncnn_speedup_max"] = high
    out["status"] = [_status_summary(df[df["arch"] == a]) for a in archs]
    order = {a: i for i, a in enumerate(sorted(archs))}
    out = out.assign(_k=(out["kind"] != "design").astype(int), _o=out["arch"].map(order))
    return out.sort_values(["_k", "_o"]).drop(columns=["_k", "_o"]).reset_index(drop=True)


# ----------------------------------------------------------------------------- comparisons

def cis_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two closed intervals ``(low, high)`` overlap."""
    return a[0] <= b[1] and b[0] <= a[1]


def indistinguishable(summary: pd.DataFrame) -> list[tuple[str, str]]:
    """Pairs of designs (sorted by mIoU, best first) whose 95% mIoU CIs overlap."""
    acc = summary[_col(summary, "miou").notna()].sort_values("miou", ascending=False) if not summary.empty else summary
    rows = [(r["arch"], (r["miou_ci_low"], r["miou_ci_high"])) for _, r in acc.iterrows()
            if _finite(r.get("miou_ci_low")) and _finite(r.get("miou_ci_high"))]
    return [(a, b) for i, (a, ca) in enumerate(rows) for b, cb in rows[i + 1:] if cis_overlap(ca, cb)]


@dataclass(frozen=True)
class CostAxis:
    """A cost the designs are compared on: a summary column, its label and unit."""

    column: str
    label: str  # e.g. "ncnn x86, 2 threads"
    unit: str  # e.g. "ms"


def cost_axes(summary: pd.DataFrame) -> list[CostAxis]:
    """Every device cost the summary has at least one value for: latency per backend, ARM
    instruction count."""
    axes = []
    for c in summary.columns:
        m = re.fullmatch(r"latency_ms_(.+)", c)
        if m and not c.endswith(("_p10", "_p90")) and _col(summary, c).notna().any():
            k = m.group(1)
            b = next((b for b in [*BACKEND_ORDER, *BACKEND_LABELS] if _bk(b) == k), k)
            th = _col(summary, f"threads_{k}").dropna()
            threads = f", {int(th.max())} thread{'s' if th.max() != 1 else ''}" if not th.empty else ""
            axes.append(CostAxis(c, backend_label(b) + threads, "ms"))
    if _col(summary, "arm_instructions_m").notna().any():
        axes.append(CostAxis("arm_instructions_m", "ncnn ARM (instruction count)", "M instructions"))
    return axes


def recommendations(summary: pd.DataFrame) -> list[str]:
    """Per device cost, which design to ship (Markdown sentences).

    The pick is the cheapest design whose mIoU cannot be told apart from the most accurate one
    (overlapping 95% CIs); cheaper designs on the Pareto front are named with their accuracy cost.
    """
    out = []
    has_acc = _col(summary, "miou").notna()
    for ax in cost_axes(summary):
        cost = _col(summary, ax.column)
        ok = summary[has_acc & cost.notna()]
        if ok.empty:
            fastest = summary.loc[cost.idxmin()] if cost.notna().any() else None
            if fastest is not None:
                out.append(f"**{ax.label}**: accuracy not measured; the cheapest is `{fastest['arch']}` "
                           f"({_fmt_cost(fastest[ax.column], ax.unit)} {ax.unit}).")
            continue
        best = ok.loc[_col(ok, "miou").idxmax()]
        best_ci = (best.get("miou_ci_low", np.nan), best.get("miou_ci_high", np.nan))
        tied = ok[[a == best["arch"] or (_finite(r.get("miou_ci_low")) and _finite(best_ci[0])
                                          and cis_overlap((r["miou_ci_low"], r["miou_ci_high"]), best_ci))
                   for a, (_, r) in zip(ok["arch"], ok.iterrows())]]
        pick = tied.loc[_col(tied, ax.column).idxmin()]
        verb = "ship" if len(ok) > 1 else "only candidate with both measurements:"
        text = (f"**{ax.label}**: {verb} `{pick['arch']}` ({_fmt_cost(pick[ax.column], ax.unit)} {ax.unit}, "
                f"mIoU {_fmt_miou(pick)})")
        if pick["arch"] != best["arch"]:
            ratio = best[ax.column] / pick[ax.column] if pick[ax.column] > 0 else float("nan")
            text += (f"; the most accurate, `{best['arch']}` (mIoU {_fmt(best['miou'], 3)}), cannot be told "
                     f"apart from it and costs {_fmt(ratio, 2)}x as much")
        front_idx = pareto_front(list(zip(cost[ok.index], _col(ok, "miou"))))
        front = ok.iloc[front_idx]
        cheaper = front[_col(front, ax.column) < pick[ax.column]]
        if not cheaper.empty:
            text += "; cheaper on the Pareto front but measurably less accurate than the best: " + ", ".join(
                f"`{r['arch']}` ({_fmt_cost(r[ax.column], ax.unit)} {ax.unit}, mIoU {_fmt(r['miou'], 3)})"
                for _, r in cheaper.iterrows())
        unknown = summary[cost.notna() & ~has_acc]["arch"]
        if len(unknown):
            text += "; not compared (accuracy not measured): " + ", ".join(f"`{a}`" for a in unknown)
        out.append(text + ".")
    return out


def _metric_direction(metric: str) -> int:
    if metric.startswith(_HIGHER_BETTER):
        return 1
    if metric.startswith(_LOWER_BETTER) and not metric.endswith(("_p10", "_p90")):
        return -1
    return 0


COMPARED_METRICS = ("params", "macs_g", "size_mb_fp32", "size_mb_fp16", "size_mb_ncnn_bin", "act_peak_mb",
                    "miou", "boundary_f", "n_images", "arm_instructions_m", "ncnn_speedup")


def compare_runs(df_a: pd.DataFrame, df_b: pd.DataFrame, input_size: Optional[int] = None,
                 rel_tol: float = 0.0) -> pd.DataFrame:
    """What changed from run A to run B, per design and metric (long format).

    Columns: arch, metric, a, b, change (b - a), rel_change ((b - a) / |a|), verdict ("better",
    "worse", "changed", "new", "gone"; for mIoU "within CI" when the two CIs overlap, for a latency
    "within noise" when the two p10-p90 spreads overlap). Metrics equal
    in both runs, or changed by less than ``rel_tol`` (relative), are left out.
    """
    size = input_size if input_size is not None else main_input_size(df_a if not df_a.empty else df_b)
    sa, sb = summary_table(df_a, size), summary_table(df_b, size)
    sa, sb = sa.set_index("arch") if not sa.empty else sa, sb.set_index("arch") if not sb.empty else sb
    metrics = [m for m in COMPARED_METRICS if m in sa.columns or m in sb.columns]
    for s in (sa, sb):
        metrics += [c for c in s.columns if re.fullmatch(r"(latency_ms_[a-z0-9_]+?|gmacs_per_s_.+)", c)
                    and not c.endswith(("_p10", "_p90")) and c not in metrics]
    archs = list(dict.fromkeys([*sa.index, *sb.index]))
    rows = []
    for a in archs:
        for m in metrics:
            va = float(sa[m].get(a, np.nan)) if m in sa.columns and a in sa.index else np.nan
            vb = float(sb[m].get(a, np.nan)) if m in sb.columns and a in sb.index else np.nan
            if not _finite(va) and not _finite(vb):
                continue
            change = vb - va
            rel = change / abs(va) if _finite(va) and va != 0 and _finite(vb) else np.nan
            if _finite(va) and _finite(vb):
                if change == 0 or (_finite(rel) and abs(rel) < rel_tol):
                    continue
                d = _metric_direction(m)
                verdict = "changed" if d == 0 else ("better" if change * d > 0 else "worse")
                if m == "miou" and all(_finite(x) for x in (sa.at[a, "miou_ci_low"], sb.at[a, "miou_ci_low"])) \
                        and cis_overlap((sa.at[a, "miou_ci_low"], sa.at[a, "miou_ci_high"]),
                                        (sb.at[a, "miou_ci_low"], sb.at[a, "miou_ci_high"])):
                    verdict = "within CI"
                lo, hi = f"{m}_p10", f"{m}_p90"
                if m.startswith("latency_ms_") and all(
                        c in t.columns and _finite(t.at[a, c]) for t in (sa, sb) for c in (lo, hi)) \
                        and cis_overlap((sa.at[a, lo], sa.at[a, hi]), (sb.at[a, lo], sb.at[a, hi])):
                    verdict = "within noise"  # the p10-p90 spreads of the two runs overlap
            else:
                verdict = "new" if _finite(vb) else "gone"
            rows.append({"arch": a, "metric": m, "a": va, "b": vb, "change": change, "rel_change": rel,
                         "verdict": verdict})
        sta = str(sa["status"].get(a, "")) if "status" in sa.columns and a in sa.index else "not measured"
        stb = str(sb["status"].get(a, "")) if "status" in sb.columns and a in sb.index else "not measured"
        if sta != stb:
            rows.append({"arch": a, "metric": "status", "a": sta, "b": stb, "change": np.nan,
                         "rel_change": np.nan, "verdict": "changed"})
    return pd.DataFrame(rows, columns=["arch", "metric", "a", "b", "change", "rel_change", "verdict"])


def format_comparison(cmp: pd.DataFrame) -> str:
    """Plain-text table of :func:`compare_runs` for a terminal."""
    if cmp.empty:
        return "no differences"
    head = ["design", "metric", "A", "B", "change", "rel.", "verdict"]
    body = [[r["arch"], r["metric"], _fmt(r["a"]), _fmt(r["b"]), _fmt_signed(r["change"]),
             _fmt_pct(r["rel_change"]), r["verdict"]] for _, r in cmp.iterrows()]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [head, *body]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


# ----------------------------------------------------------------------------- formatting

def _fmt(v: Any, digits: Optional[int] = None) -> str:
    """A number for a table: 3 significant digits by default, "—" when not measured."""
    if isinstance(v, str):
        return v or NOT_MEASURED
    if not _finite(v):
        return NOT_MEASURED
    v = float(v)
    if digits is not None:
        return f"{v:.{digits}f}"
    if v == int(v) and abs(v) >= 1:
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _fmt_cost(v: Any, unit: str) -> str:
    return _fmt(v, 2 if unit == "ms" and _finite(v) and float(v) < 100 else 0 if unit == "ms" else None)


def _fmt_signed(v: Any) -> str:
    return NOT_MEASURED if not _finite(v) else ("+" if float(v) > 0 else "") + _fmt(v)


def _fmt_pct(v: Any) -> str:
    return NOT_MEASURED if not _finite(v) else f"{100 * float(v):+.1f}%"


def _fmt_share(v: Any) -> str:
    return NOT_MEASURED if not _finite(v) else f"{100 * float(v):.1f}%"


def _flag(v: Any) -> Optional[bool]:
    """A yes/no field as read back from JSON or CSV (True, "True", np.True_...); None when unset."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    return None


def _fmt_flag(v: Any) -> str:
    """A yes/no field for a table: "yes", "**no**", or not measured."""
    flag = _flag(v)
    return NOT_MEASURED if flag is None else ("yes" if flag else "**no**")


def _fmt_miou(r: Mapping) -> str:
    if not _finite(r.get("miou")):
        return "not measured"
    ci = (f" [{_fmt(r['miou_ci_low'], 3)}, {_fmt(r['miou_ci_high'], 3)}]"
          if _finite(r.get("miou_ci_low")) and _finite(r.get("miou_ci_high")) else "")
    return f"{_fmt(r['miou'], 3)}{ci}"


def _vs_best(summary: pd.DataFrame) -> dict[str, str]:
    """Per design: "best", "≈ best" (CI overlaps the best's) or "below" (for the at-a-glance column)."""
    acc = summary[_col(summary, "miou").notna()]
    if acc.empty:
        return {}
    best = acc.loc[_col(acc, "miou").idxmax()]
    out = {}
    for _, r in acc.iterrows():
        if r["arch"] == best["arch"]:
            out[r["arch"]] = "best"
        elif all(_finite(x) for x in (r.get("miou_ci_low"), best.get("miou_ci_low"))) and cis_overlap(
                (r["miou_ci_low"], r["miou_ci_high"]), (best["miou_ci_low"], best["miou_ci_high"])):
            out[r["arch"]] = "≈ best"
        else:
            out[r["arch"]] = "below"
    return out


def summary_display(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of the summary table (what the report shows)."""
    if summary.empty:
        return [], []
    size = int(summary["input_size"].iloc[0])
    vs = _vs_best(summary)
    lat_cols = [c for c in summary.columns if re.fullmatch(r"latency_ms_(?!.*_p\d0$).+", c)]
    shown_lat = [c for c in lat_cols if c[len("latency_ms_"):] in {_bk(b) for b in ALWAYS_SHOWN_BACKENDS}
                 or _col(summary, c).notna().any()]
    has = {c: _col(summary, c).notna().any() for c in summary.columns}
    heads = ["design", "params (M)", f"GMACs @{size}", "size fp32 (MB)"]
    if has.get("size_mb_ncnn_bin"):
        heads.append("ncnn .bin (MB)")
    heads += [f"peak act. @{size} (MB)", "mIoU [95% CI]", "weights", "vs best"]
    if has.get("boundary_f"):
        heads.append("boundary F")
    for c in shown_lat:
        k = c[len("latency_ms_"):]
        b = next((b for b in [*BACKEND_ORDER, *BACKEND_LABELS] if _bk(b) == k), k)
        th = _col(summary, f"threads_{k}").dropna()
        heads.append(f"{backend_label(b)} (ms{', ' + str(int(th.max())) + 't' if not th.empty else ''})")
    heads += ["ARM (M instr.)", "ncnn speed-up"]
    gm_cols = [f"gmacs_per_s_{_bk(b)}" for b in ALWAYS_SHOWN_BACKENDS if f"gmacs_per_s_{_bk(b)}" in summary.columns]
    heads += [f"GMAC/s {backend_label(c[len('gmacs_per_s_'):])}" for c in gm_cols]
    heads.append("status")
    rows = []
    for _, r in summary.iterrows():
        name = f"`{r['arch']}`" + (" (peer)" if r.get("kind") == "peer" else "")
        w = (r.get("weights") or NOT_MEASURED) if _finite(r.get("miou")) else NOT_MEASURED
        miou = _fmt_miou(r)
        cells = [name, _fmt(r["params"] / 1e6 if _finite(r.get("params")) else np.nan, 3), _fmt(r.get("macs_g"), 3),
                 _fmt(r.get("size_mb_fp32"), 2)]
        if has.get("size_mb_ncnn_bin"):
            cells.append(_fmt(r.get("size_mb_ncnn_bin"), 2))
        cells += [_fmt(r.get("act_peak_mb"), 1), miou, w, vs.get(r["arch"], NOT_MEASURED)]
        if has.get("boundary_f"):
            cells.append(_fmt(r.get("boundary_f"), 3))
        cells += [_fmt(r.get(c), 2) + (NOISY_MARK if _finite(r.get("latency_cv_" + c[len("latency_ms_"):]))
                                       and r["latency_cv_" + c[len("latency_ms_"):]] > NOISY_CV else "")
                  for c in shown_lat]
        cells += [_fmt(r.get("arm_instructions_m"), 1),
                  _fmt_speedup(r)]
        cells += [_fmt(r.get(c), 1) for c in gm_cols]
        cells.append(str(r.get("status", "")))
        rows.append(cells)
    return heads, rows


def _fmt_speedup(r) -> str:
    """"2.31x", with the range over interleaved rounds where there is one: "2.31x (2.12-2.48)"."""
    if not _finite(r.get("ncnn_speedup")):
        return NOT_MEASURED
    text = f"{_fmt(r.get('ncnn_speedup'), 2)}x"
    if _finite(r.get("ncnn_speedup_min")) and _finite(r.get("ncnn_speedup_max")):
        text += f" ({_fmt(r.get('ncnn_speedup_min'), 2)}-{_fmt(r.get('ncnn_speedup_max'), 2)})"
    return text


# ----------------------------------------------------------------------------- document model

_INLINE = [(re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
           (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
           (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>')]


def _inline_html(text: str) -> str:
    out = html.escape(str(text), quote=False)
    for pat, rep in _INLINE:
        out = pat.sub(rep, out)
    return out


@dataclass
class Doc:
    """A tiny document model rendered both as Markdown and as self-contained HTML, so the two
    formats cannot drift apart. Text may use `code`, **bold** and [links](file)."""

    blocks: list[tuple] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: Sequence[str]) -> None:
        if items:
            self.blocks.append(("ul", list(items)))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if headers and rows:
            self.blocks.append(("table", list(headers), [[str(c) for c in r] for r in rows]))

    def img(self, path: Path, caption: str) -> None:
        self.blocks.append(("img", Path(path), caption))

    def to_markdown(self, base: Path) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "ul":
                out.append("\n".join(f"- {x}" for x in b[1]))
            elif b[0] == "table":
                esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
                lines = ["| " + " | ".join(esc(h) for h in b[1]) + " |",
                         "|" + "|".join("---" for _ in b[1]) + "|"]
                lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in b[2]]
                out.append("\n".join(lines))
            elif b[0] == "img":
                rel = b[1].relative_to(base) if b[1].is_relative_to(base) else b[1]
                out.append(f"![{b[2]}]({rel.as_posix()})\n\n*{b[2]}*")
        return "\n\n".join(out) + "\n"

    def to_html(self, title: str) -> str:
        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{_inline_html(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{_inline_html(b[1])}</p>")
            elif b[0] == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline_html(x)}</li>" for x in b[1]) + "</ul>")
            elif b[0] == "table":
                head = "".join(f"<th>{_inline_html(h)}</th>" for h in b[1])
                rows = "".join("<tr>" + "".join(
                    f'<td class="{"num" if _looks_numeric(c) else "txt"}">{_inline_html(c)}</td>' for c in r) + "</tr>"
                    for r in b[2])
                body.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
                            "</table></div>")
            elif b[0] == "img":
                data = base64.b64encode(b[1].read_bytes()).decode("ascii")
                body.append(f'<figure><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{_inline_html(b[2])}</figcaption></figure>")
        return _HTML_PAGE.format(title=html.escape(title), css=_CSS, body="\n".join(body))


def _looks_numeric(cell: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,.]+(%|x)?|—", cell.strip()))


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1400px;
padding:0 16px;color:#1b1b1b;background:#fff;line-height:1.45}
h1{font-size:1.7em;border-bottom:2px solid #ddd;padding-bottom:4px}h2{margin-top:1.6em;font-size:1.3em}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#f0f3f7;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
td{white-space:nowrap}td:last-child{white-space:normal;min-width:12em}
tr:nth-child(even) td{background:#fafafa}.scroll{overflow-x:auto}
code{background:#f3f3f3;padding:0 3px;border-radius:3px;font-size:.95em}
figure{margin:12px 0}figure img{max-width:100%;border:1px solid #e3e3e3}
figcaption{font-size:.9em;color:#555}
"""
_HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body>
{body}
</body></html>
"""


# ----------------------------------------------------------------------------- plot data

def _point_frame(summary: pd.DataFrame, cost_col: str, lo_col: Optional[str] = None,
                 hi_col: Optional[str] = None) -> pd.DataFrame:
    """arch, kind, x, x_lo, x_hi, y, y_lo, y_hi, on_front for designs with both cost and mIoU."""
    ok = summary[_col(summary, cost_col).notna() & _col(summary, "miou").notna()]
    pts = pd.DataFrame({"arch": ok["arch"], "kind": ok.get("kind", "design"),
                        "x": _col(ok, cost_col),
                        "x_lo": _col(ok, lo_col) if lo_col else np.nan,
                        "x_hi": _col(ok, hi_col) if hi_col else np.nan,
                        "y": _col(ok, "miou"), "y_lo": _col(ok, "miou_ci_low"), "y_hi": _col(ok, "miou_ci_high")})
    pts = pts.reset_index(drop=True)
    front = pareto_front(list(zip(pts["x"], pts["y"])))
    pts["on_front"] = [i in front for i in range(len(pts))]
    return pts


def _curve_panels(df: pd.DataFrame, x_col: str, size: int, threads_fixed: bool) -> list[dict]:
    """Per backend, per design: latency as a function of input size (at the largest thread count)
    or of the thread count (at ``size``)."""
    lat = latency_rows(df)
    panels = []
    for b in _backends(df):
        sel = lat[_text(lat, "backend") == b]
        if threads_fixed:
            th = _col(sel, "threads")
            top = th.groupby(_text(sel, "arch")).transform("max")
            sel = sel[(th == top) | top.isna()]
            threads = sorted(set(_col(sel, "threads").dropna().astype(int)))
            note = f", {'/'.join(map(str, threads))} thread(s)" if threads else ""
        else:
            sel = _at_size(sel, size)
            note = f", {size}x{size} input"
        series = {}
        for a, g in sel.groupby(_text(sel, "arch")):
            x = _col(g, x_col)
            d = pd.DataFrame({"x": x, "y": _col(g, "latency_ms_median"), "lo": _col(g, "latency_ms_p10"),
                              "hi": _col(g, "latency_ms_p90")}).dropna(subset=["x", "y"])
            d = d.groupby("x", as_index=False).mean().sort_values("x")
            if len(d) >= 2:
                series[a] = d
        if series:
            panels.append({"title": backend_label(b) + note, "series": series})
    return panels


def layer_csv(run_dir: Path, arch: str, size: int) -> Path:
    return Path(run_dir) / "layers" / f"{arch}_{size}.csv"


def layer_shares(archs: Sequence[str], size: int, run_dir: Optional[Path] = None,
                 progress: Optional[Callable[[str], None]] = None) -> tuple[dict[str, pd.DataFrame], str]:
    """Per design, its per-layer MACs (columns layer, type, macs, share, then the rest of
    ``bench.complexity.layer_table``) and a note ('' when all went well). Tables already saved in
    ``run_dir/layers/`` are reused; new ones are saved there."""
    out, problems, todo = {}, [], []
    for a in archs:
        cached = layer_csv(run_dir, a, size) if run_dir else None
        if cached is not None and cached.is_file():
            try:
                out[a] = pd.read_csv(cached, keep_default_na=False).pipe(
                    lambda t: t.assign(macs=pd.to_numeric(t["macs"]), share=pd.to_numeric(t["share"])))
                continue
            except (OSError, KeyError, ValueError, pd.errors.ParserError):
                pass
        todo.append(a)
    if todo:
        try:
            from bench.measure.complexity import layer_table
            from bench.weights import load_model
        except ImportError as exc:
            return out, f"per-layer tables not available ({exc})"
    for a in todo:
        if progress:
            progress(f"per-layer MACs of {a}")
        try:
            out[a] = normalise_layer_table(layer_table(load_model(a, "random").model, size))
        except Exception as exc:  # one design failing must not lose the others
            problems.append(f"{a}: {type(exc).__name__}: {exc}")
            continue
        if run_dir is not None:
            layer_csv(run_dir, a, size).parent.mkdir(parents=True, exist_ok=True)
            out[a].to_csv(layer_csv(run_dir, a, size), index=False)
    return out, "; ".join(problems)


def normalise_layer_table(table: Any) -> pd.DataFrame:
    """Any per-layer table (DataFrame, list of dicts or of records) -> layer, type, macs, share."""
    t = table if isinstance(table, pd.DataFrame) else pd.DataFrame(
        [r if isinstance(r, Mapping) else getattr(r, "__dict__", {}) or r._asdict() for r in table])
    mac_cols = [c for c in ("macs_g", "macs_m", "macs", "mac", "macs_k") if c in t.columns] or \
               [c for c in t.columns if "mac" in c.lower() and "share" not in c.lower()]
    if not mac_cols:
        raise ValueError(f"layer table has no MAC column (columns: {', '.join(map(str, t.columns))})")
    name_col = next((c for c in ("layer", "name", "module", "path") if c in t.columns), None)
    type_col = next((c for c in ("type", "op", "kind", "module_type") if c in t.columns), None)
    macs = pd.to_numeric(t[mac_cols[0]], errors="coerce").fillna(0.0)
    names = t[name_col].astype(str).replace("", "(model)") if name_col else [str(i) for i in range(len(t))]
    out = pd.DataFrame({"layer": list(names), "type": list(t[type_col].astype(str)) if type_col else "",
                        "macs": macs.values})
    total = out["macs"].sum()
    out["share"] = out["macs"] / total if total > 0 else 0.0
    extra = t.drop(columns=[c for c in (name_col, type_col) if c]).reset_index(drop=True)
    extra = extra.drop(columns=[c for c in extra.columns if c in out.columns])
    return pd.concat([out, extra], axis=1)


# ----------------------------------------------------------------------------- examples

def _pick_stems(data_dir: Path, n: int) -> tuple[list[str], str]:
    """``n`` evenly spaced stems of the validation split (``splits/<name>_val.txt``) if there is
    one, else of the whole folder; and which of the two ("val" / "all")."""
    stems: list[str] = []
    split = "val"
    try:
        from bench.data.datasets import split_stems
        stems = split_stems(Path(data_dir).name, "val")
    except Exception:
        pass
    if not stems:
        from bench.data.samples import scan_folder
        stems, split = [s.stem for s in scan_folder(data_dir)], "all"
    if len(stems) > n:
        idx = np.linspace(0, len(stems) - 1, n).round().astype(int)
        stems = [stems[i] for i in idx]
    return list(stems), split


def write_examples(run_dir: Path, data_dir: Optional[Path], archs: Optional[Sequence[str]] = None,
                   input_size: int = 256, n_images: int = 4, models_dir: Optional[Path] = None,
                   checkpoints_dir: Optional[Path] = None, stems: Optional[Sequence[str]] = None) -> dict:
    """Strip of example predictions (image, label, each design's mask) -> ``examples.png``.

    Weights: ``trained`` where ``checkpoints/<arch>.pt`` exists, else a published checkpoint
    (seg_matting's ``seed``), as in the summary; other designs are shown as "untrained" (no prediction). Writes ``examples.json`` (stems, weights per
    design, note) and returns it; without data the note says why and no image is written.
    """
    run_dir = Path(run_dir)
    info: dict[str, Any] = {"image": None, "stems": [], "weights": {}, "note": "", "input_size": input_size}
    try:
        if data_dir is None or not Path(data_dir).is_dir():
            raise FileNotFoundError(f"data folder {data_dir} not found")
        from archs import get_spec, list_archs
        from bench.measure.accuracy import predict_prob
        from bench.data.samples import scan_folder, load_pair
        from bench.paths import CHECKPOINTS_DIR, DEFAULT_MODELS_DIR
        from bench.weights import load_model, trained_checkpoint_path

        archs = [a for a in archs if a in list_archs()] if archs else list_archs()  # peers have no model here
        stems, info["split"] = (list(stems), "given") if stems else _pick_stems(Path(data_dir), n_images)
        samples = scan_folder(data_dir, stems)
        models = {}
        for a in archs:
            names = {c.name for c in get_spec(a).checkpoints}
            ck_dir = Path(checkpoints_dir) if checkpoints_dir else CHECKPOINTS_DIR
            if trained_checkpoint_path(a, ck_dir).is_file():
                w = "trained"
            elif "seed" in names:
                w = "seed"
            else:
                info["weights"][a] = "untrained"
                continue
            try:
                models[a] = load_model(a, w, Path(models_dir) if models_dir else DEFAULT_MODELS_DIR, ck_dir)
                info["weights"][a] = w
            except Exception as exc:
                info["weights"][a] = f"not loaded ({type(exc).__name__})"
        grid = []
        for s in samples:
            img, lab = load_pair(s)
            preds = {}
            for a in archs:
                lm = models.get(a)
                preds[a] = (predict_prob(lm.model, img, input_size, lm.preprocess, lm.spec.output_kind)
                            if lm is not None else None)
            grid.append({"stem": s.stem, "image": img, "label": lab, "preds": preds})
        from .plots import plot_examples
        path = plot_examples(grid, archs, info["weights"], run_dir / EXAMPLES_PNG, input_size)
        info.update(image=path.name, stems=[s.stem for s in samples],
                    data=str(data_dir))
    except Exception as exc:  # the strip is optional: say why it is missing
        info["note"] = f"example predictions skipped: {type(exc).__name__}: {exc}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / EXAMPLES_JSON).write_text(json.dumps(info, indent=2) + "\n")
    return info


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


def _when_measured(meta: Mapping, df: pd.DataFrame) -> list[str]:
    """When the rows were measured (a resumed run's parts may be hours apart) and under what load."""
    out = []
    stamps = sorted(t for t in _text(df, "finished_utc") if t)
    if stamps:
        text = f"**Measured**: {stamps[0]} to {stamps[-1]}"
        resumed = meta.get("resumed") or []
        if resumed:
            text += "; resumed " + ", ".join(str(r.get("date")) for r in resumed)
        out.append(text)
    if "load_avg_1m" in df.columns:
        load = pd.to_numeric(df["load_avg_1m"], errors="coerce").dropna()
        if not load.empty:
            out.append(f"**Load average (1 min) at the end of each job**: median {load.median():.1f}, "
                       f"max {load.max():.1f} on {(meta.get('machine') or {}).get('cores', '?')} cores")
    return out


def _header(doc: Doc, meta: Mapping, df: pd.DataFrame, size: int) -> None:
    m = meta.get("machine") or {}
    commit = str(meta.get("commit") or NOT_MEASURED) + (" (uncommitted changes)" if meta.get("dirty") else "")
    doc.ul([f"**Date**: {meta.get('date', NOT_MEASURED)}",
            f"**Commit**: `{commit}`",
            f"**Machine**: {m.get('cpu', NOT_MEASURED)}, {m.get('cores', NOT_MEASURED)} cores, "
            f"{m.get('os', NOT_MEASURED)}",
            "**Libraries**: " + (", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items() if v)
                                 or NOT_MEASURED)] + _when_measured(meta, df))
    proto = []
    for key, val in meta.items():
        if key in ("date", "commit", "dirty", "machine", "versions", "plan_options", "resumed", "partial"):
            continue
        if isinstance(val, Mapping):
            proto += [f"{key}.{k}: `{v}`" for k, v in val.items()]
        else:
            proto.append(f"{key}: `{val}`")
    peak = _rows(df, "latency")
    peak = peak[_col(peak, "peak_gmacs_per_s").notna()]
    if not peak.empty:
        by_t = peak.groupby(_col(peak, "threads").fillna(0).astype(int))["peak_gmacs_per_s"].apply(
            lambda s: pd.to_numeric(s, errors="coerce").median())
        proto.append("CPU peak (fp32 GEMM): " + ", ".join(
            f"{_fmt(v, 0)} GMAC/s at {t} thread(s)" if t else f"{_fmt(v, 0)} GMAC/s" for t, v in by_t.items()))
    # the protocol string of every latency row, less what varies per row (input size, threads)
    protocols = [p for p in dict.fromkeys(re.sub(r"\s*\b(input|threads)=\S+", "", p).strip()
                                          for p in _text(_rows(df, "latency"), "protocol")) if p]
    if protocols:
        proto.append("latency protocol (input size and threads per row): "
                     + "; ".join(f"`{p}`" for p in protocols))
    proto.append(f"summary at input {size}x{size}; latency = median per frame at the largest thread count "
                 "measured; 1 MAC = 1 multiply-add (fvcore)")
    doc.p("**Protocol**")
    doc.ul(proto)


def _accuracy_notes(summary: pd.DataFrame) -> list[str]:
    notes = []
    acc = summary[_col(summary, "miou").notna()]
    if acc.empty:
        return ["Accuracy was not measured in this run (no trained weights or no data): designs can only be "
                "compared on cost."]
    half = ((_col(acc, "miou_ci_high") - _col(acc, "miou_ci_low")) / 2).dropna()
    n = _col(acc, "n_images").dropna()
    if not half.empty:
        notes.append(f"mIoU 95% CIs (bootstrap over images) are about ±{half.median():.3f}"
                     + (f" with {int(n.median())} images" if not n.empty else "")
                     + ": differences smaller than that are not resolved.")
    pairs = indistinguishable(summary)
    if pairs:
        by: dict[str, list[str]] = {}
        for a, b in pairs:
            by.setdefault(a, []).append(b)
        notes.append("**Cannot be told apart** (overlapping 95% CIs): " + "; ".join(
            f"`{a}` vs " + ", ".join(f"`{b}`" for b in bs) for a, bs in by.items()) + ".")
    elif len(acc) > 1:
        notes.append("Every pair of designs is resolved: no two mIoU CIs overlap.")
    return notes


def repeatability_warning(df: pd.DataFrame) -> Optional[str]:
    """A warning (Markdown) naming the latency measurements whose median did not repeat across fresh
    processes (``latency_repeat`` rows), else None."""
    rep = _rows(df, "latency_repeat", ok_only=False)
    if rep.empty or "repeatable" not in rep.columns:
        return None
    bad = rep[rep["repeatable"].map(_flag).eq(False)]
    if bad.empty:
        return None
    names = ", ".join(f"`{r['arch']}` {backend_label(str(r.get('backend', '')))} at {_fmt(r.get('threads'))} "
                      f"thread(s) (between-run CV {_fmt_share(r.get('between_run_cv'))}, medians "
                      f"{r.get('run_medians_ms')} ms)" for _, r in bad.iterrows())
    return (f"**Medians that did not repeat**: {len(bad)} of {len(rep)} repeated latency measurements gave "
            f"medians that vary by more than {_fmt_share(_first(_col(bad, 'max_between_run_cv')))} (CV) between "
            f"fresh processes: {names}. Read those latencies as a range, not as one number.")


def timing_quality(df: pd.DataFrame) -> Optional[str]:
    """A warning (Markdown) when the latency rows look disturbed by other load, else None."""
    lat = _rows(df, "latency")
    cv = _col(lat, "latency_cv").dropna()
    if cv.empty:
        return None
    noisy = int((cv > NOISY_CV).sum())
    if noisy == 0:
        return None
    load = _col(lat, "load_avg_1m").dropna()
    cores = _col(lat, "cpu_count").dropna()
    busy = ""
    if not load.empty:
        busy = f"; 1-minute load average up to {load.max():.1f}" + (
            f" on {int(cores.max())} cores" if not cores.empty else "")
    return (f"**Timing was disturbed**: {noisy} of {len(cv)} latency measurements vary by more than "
            f"{100 * NOISY_CV:.0f}% from frame to frame (coefficient of variation; median {cv.median():.2f}{busy}), "
            f"those in the summary are marked {NOISY_MARK}. Something else used the CPU: re-run on an idle machine "
            "before trusting the latency columns and the choices based on them.")


def _detail_tables(doc: Doc, df: pd.DataFrame, size: int) -> None:
    acc = _rows(df, "accuracy", ok_only=False)
    if not acc.empty:
        doc.h(3, "Accuracy (every weights / data set)")
        cols = ["weights", "dataset", "input_size", "n_images"]
        rows = []
        for _, r in acc.sort_values(["arch"]).iterrows():
            rows.append([f"`{r['arch']}`", *[_fmt(r.get(c)) if not isinstance(r.get(c), str) else r.get(c)
                                             for c in cols],
                         _fmt_miou(r) if str(r.get("status")) == "ok" else NOT_MEASURED,
                         _fmt(r.get("boundary_f"), 3), str(r.get("status", ""))[:80]])
        doc.table(["design", *cols, "mIoU [95% CI]", "boundary F", "status"], rows)
    lat = _rows(df, "latency")
    if not lat.empty:
        doc.h(3, f"Latency at {size}x{size} (every backend and thread count)")
        sel = _at_size(lat, size)
        rows = []
        for _, r in sel.sort_values([c for c in ("arch", "backend", "threads") if c in sel.columns]).iterrows():
            parity = r.get("parity_ok")
            rows.append([f"`{r['arch']}`", backend_label(str(r.get("backend", ""))), _fmt(r.get("threads")),
                         _fmt(r.get("latency_ms_median"), 2), _fmt(r.get("latency_ms_p10"), 2),
                         _fmt(r.get("latency_ms_p90"), 2), _fmt(r.get("latency_cv"), 3),
                         _fmt(r.get("latency_ratio_to_calib"), 2), _fmt(r.get("achieved_gmacs_per_s"), 1),
                         NOT_MEASURED if parity is None or (isinstance(parity, float) and math.isnan(parity))
                         else str(parity), _fmt(r.get("parity_max_abs_diff"))])
        doc.table(["design", "backend", "threads", "median ms", "p10 ms", "p90 ms", "CV", "ratio to calib.",
                   "GMAC/s", "parity ok", "max abs diff"], rows)
    rep = _at_size(_rows(df, "latency_repeat", ok_only=False), size)
    if not rep.empty:
        doc.h(3, f"Latency repeatability at {size}x{size} (the same measurement in fresh processes)")
        rows = []
        for _, r in rep.sort_values([c for c in ("arch", "backend", "threads") if c in rep.columns]).iterrows():
            rows.append([f"`{r['arch']}`", backend_label(str(r.get("backend", ""))), _fmt(r.get("threads")),
                         f"{_fmt(r.get('runs_ok'))} / {_fmt(r.get('runs'))} ({_fmt(r.get('runs_quiet'))} quiet)",
                         str(r.get("run_medians_ms") or NOT_MEASURED), _fmt(r.get("latency_ms_median_of_runs"), 2),
                         _fmt_share(r.get("between_run_cv")), _fmt_share(r.get("within_run_cv_median")),
                         _fmt_flag(r.get("repeatable")), str(r.get("status", ""))[:80]])
        doc.table(["design", "backend", "threads", "runs ok / made", "run medians (ms)", "median of runs ms",
                   "between-run CV", "within-run CV (median)", "repeatable", "status"], rows)
        doc.p("Each run is a fresh process with the full protocol (quiet gate, calibration, warm-up, timed "
              "loop). \"Repeatable\": the coefficient of variation of the runs' medians is at most "
              f"{_fmt_share(_first(_col(rep, 'max_between_run_cv')))}.")
    inter = _at_size(_rows(df, "speedup", ok_only=False), size)
    if not inter.empty:
        doc.h(3, f"Interleaved speed-ups at {size}x{size} (PyTorch and the other backend in one process, "
                 "round by round)")
        rows = []
        for _, r in inter.sort_values([c for c in ("arch", "backend", "threads") if c in inter.columns]).iterrows():
            rows.append([f"`{r['arch']}`", backend_label(str(r.get("backend", ""))), _fmt(r.get("threads")),
                         _fmt(r.get("base_ms_median"), 2), _fmt(r.get("other_ms_median"), 2),
                         f"{_fmt(r.get('speedup'), 2)}x" if _finite(r.get("speedup")) else NOT_MEASURED,
                         f"{_fmt(r.get('speedup_min'), 2)}-{_fmt(r.get('speedup_max'), 2)}",
                         _fmt_share(r.get("speedup_cv")),
                         f"{_fmt_share(r.get('base_round_cv'))} / {_fmt_share(r.get('other_round_cv'))}",
                         _fmt_flag(r.get("quiet")), str(r.get("status", ""))[:80]])
        doc.table(["design", "backend", "threads", "PyTorch ms", "backend ms", "speed-up", "range over rounds",
                   "CV of round ratios", "drift (CV of round medians, PyTorch / backend)", "quiet", "status"], rows)
        doc.p("Both backends are loaded in one process and timed in turns (each round: warm-up, then the timed "
              "iterations of one, then of the other; the order turns each round). A slowdown of the machine that "
              "lasts longer than a round hits both alike, so the median of the per-round ratios holds when the "
              "separate medians above drift between processes.")
    prof = _rows(df, "profile")
    if not prof.empty and _col(prof, "input_size").nunique() > 1:
        doc.h(3, "Cost by input size")
        sizes = sorted(set(_col(prof, "input_size").dropna().astype(int)))
        rows = []
        for a, g in prof.groupby(_text(prof, "arch")):
            by = {int(s): r for s, (_, r) in zip(_col(g, "input_size"), g.iterrows()) if _finite(s)}
            rows.append([f"`{a}`"] + [f"{_fmt(by[s].get('macs_g'), 3)} / {_fmt(by[s].get('act_peak_mb'), 1)}"
                                      if s in by else NOT_MEASURED for s in sizes])
        doc.table(["design"] + [f"{s}: GMACs / peak act. MB" for s in sizes], rows)


def write_report(run_dir: Path, df: pd.DataFrame, meta: Optional[Mapping] = None,
                 layer_tables: bool = True, progress: Optional[Callable[[str], None]] = None) -> Path:
    """Write the report of a run into ``run_dir`` and return the path of ``report.html``.

    Files: ``report.md`` (tables, linked PNGs), ``report.html`` (self-contained, PNGs embedded),
    ``summary.csv``, the plots (``plot_*.png``; a plot without data is listed as not plotted),
    ``layers/<arch>_<size>.csv`` when per-layer tables are available (kept and reused when the
    report is rendered again), and ``results.csv`` / ``results.json`` (every row) if the run folder
    lacks them. The example strip is whatever :func:`write_examples` left in the folder.
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
    size = main_input_size(df, meta)
    summary = summary_table(df, size)
    summary.to_csv(run_dir / "summary.csv", index=False)
    archs = list(summary["arch"]) if not summary.empty else []
    colors = plots.arch_colors(archs)

    doc = Doc()
    doc.h(1, "Portrait segmentation benchmark: " + run_dir.name)
    partial = meta.get("partial")
    if partial:
        doc.p(f"**Partial run**: {partial.get('jobs_finished')} of {partial.get('jobs_planned')} jobs finished "
              f"before it was interrupted; what is missing shows as {NOT_MEASURED}. Complete it with "
              f"`python run_bench.py --all --resume {run_dir}`.")
    _header(doc, meta, df, size)

    doc.h(2, "Which design to ship")
    recs = recommendations(summary)
    doc.ul(recs or ["Nothing to recommend yet: no latency or instruction-count measurement in this run."])
    warns = [w for w in (timing_quality(df), repeatability_warning(df)) if w]
    doc.ul(_accuracy_notes(summary) + warns)

    doc.h(2, "Summary")
    heads, cells = summary_display(summary)
    doc.table(heads, cells)
    doc.p(f"Cost and latency at {size}x{size} input; {NOT_MEASURED} = not measured; \"vs best\" compares "
          "mIoU CIs with the most accurate design; the ncnn speed-up is PyTorch / ncnn x86 latency at the same "
          "thread count, where measured from the two timed interleaved in one process (range over the rounds "
          "in brackets; Details: interleaved speed-ups), else from their separate medians. A latency that was "
          "also measured in fresh processes (Details: repeatability) is the median over those processes. Every "
          "row is in [results.csv](results.csv) / [results.json](results.json); this table in "
          "[summary.csv](summary.csv).")

    from .arm_estimate import arm_section  # estimated ARM ms (labelled estimates, never in the columns above)
    device_model = str(meta.get("device_model") or "rpi4")
    arm_plot, arm_why = arm_section(doc, df, summary, run_dir, colors, device_model)

    doc.h(2, "Plots")
    figures: list[tuple[Optional[Path], str, str]] = []  # (path, caption, why missing)
    say("plots: accuracy vs cost")
    panels = []
    for ax in cost_axes(summary):
        k = ax.column[len("latency_ms_"):] if ax.column.startswith("latency_ms_") else None
        pts = _point_frame(summary, ax.column, f"latency_ms_{k}_p10" if k else None,
                           f"latency_ms_{k}_p90" if k else None)
        if not pts.empty:
            panels.append({"title": ax.label, "points": pts,
                           "xlabel": f"{'latency' if k else 'cost'} per frame ({ax.unit}, log scale)"})
    figures.append((plots.plot_accuracy_vs_cost(panels, run_dir / "plot_accuracy_vs_latency.png", colors),
                    "Accuracy vs latency per backend: mIoU with 95% CI (vertical bars), p10-p90 latency "
                    "(horizontal bars), Pareto front dashed",
                    "accuracy vs latency: needs both accuracy and latency rows"))
    pts = _point_frame(summary, "macs_g")
    macs_panel = {"title": f"{size}x{size} input", "xlabel": "GMACs per frame (log scale)", "points": pts}
    figures.append((plots.plot_accuracy_vs_cost([macs_panel] if not pts.empty else [],
                                                run_dir / "plot_accuracy_vs_macs.png", colors),
        "Accuracy vs multiply-adds (fvcore), Pareto front dashed", "accuracy vs MACs: needs accuracy and profile rows"))
    figures.append((arm_plot, f"Accuracy vs ESTIMATED latency on {device_model} (1 thread, ncnn): estimates from "
                              "qemu instruction counts calibrated on ncnn's published timings, 80% bands", arm_why))
    say("plots: latency")
    figures.append((plots.plot_latency_bars(summary, run_dir / "plot_latency_by_backend.png", colors,
                                           {_bk(b): lbl for b, lbl in BACKEND_LABELS.items()}),
                    f"Median latency per backend at {size}x{size} (p10-p90 bars)", "latency: not measured"))
    figures.append((plots.plot_curves(_curve_panels(df, "input_size", size, True), run_dir / "plot_latency_vs_size.png",
                                      colors, "input side (px)", "median latency (ms, log scale)", log_y=True),
                    "Latency vs input size (shaded: p10-p90)", "latency vs input size: needs latency at 2+ sizes"))
    figures.append((plots.plot_curves(_curve_panels(df, "threads", size, False), run_dir / "plot_thread_scaling.png",
                                      colors, "threads", "speed-up over {x0} thread(s) (x)", speedup=True),
                    f"Thread scaling at {size}x{size}: speed-up over the fewest threads measured (dotted: ideal)",
                    "thread scaling: needs latency at 2+ thread counts"))
    if layer_tables and archs:
        say("plots: per-layer MAC share")
        designs = [a for a, k in zip(summary["arch"], summary["kind"]) if k == "design"]
        shares, note = layer_shares(designs, size, run_dir, say)
        figures.append((plots.plot_layer_shares(shares, run_dir / "plot_layer_mac_share.png", colors),
                        f"Share of MACs per layer at {size}x{size} (largest layers; full tables in "
                        f"layers/<design>_{size}.csv)"
                        + (f"; {note}" if note and shares else ""),
                        f"per-layer MAC share: {note or 'no layer tables'}"))
    ex = {}
    try:
        ex = json.loads((run_dir / EXAMPLES_JSON).read_text())
    except (OSError, json.JSONDecodeError):
        pass
    ex_img = run_dir / EXAMPLES_PNG
    where = {"val": "validation images", "all": "images (no validation split found)"}.get(ex.get("split"), "images")
    ex_caption = (f"Example predictions (threshold 0.5) on {where} of {Path(str(ex.get('data', ''))).name}: "
                  + ", ".join(map(str, ex.get("stems", [])))
                  + "; weights: " + ", ".join(f"{a} {w}" for a, w in (ex.get("weights") or {}).items()))
    figures.append((ex_img if ex.get("image") and ex_img.is_file() else None, ex_caption,
                    ex.get("note") or "example predictions: not made (run with a data folder)"))
    made = {p.name for p, _, _ in figures if p is not None}
    for stale in run_dir.glob("plot_*.png"):  # from an earlier rendering with other rows
        if stale.name not in made:
            stale.unlink()
    missing = []
    for path, caption, why in figures:
        if path is not None:
            doc.img(path, caption)
        else:
            missing.append(why)
    if missing:
        doc.p("Not plotted:")
        doc.ul(missing)

    doc.h(2, "Details")
    _detail_tables(doc, df, size)
    bad = df[~_text(df, "status", "ok").eq("ok")] if not df.empty else df
    if not bad.empty:
        doc.h(3, "Skipped and failed jobs")
        doc.table(["job", "status"], [[f"`{r.get('job', '')}`", str(r["status"])[:300]] for _, r in bad.iterrows()])

    say("writing report.md / report.html")
    (run_dir / REPORT_MD).write_text(doc.to_markdown(run_dir))
    out = run_dir / REPORT_HTML
    out.write_text(doc.to_html(f"Portrait segmentation benchmark {run_dir.name}"))
    return out
