"""The answer at the top of the report: the summary table and what to ship.

- :func:`summary_table` - one row per model (a design per weights measured, e.g. seg_matting trained by
  the suite and with its seed weights; then the peers): input, accuracy on the headline set with its
  CI, latency per backend (undisturbed where measured so, ``disturbed_<backend>`` otherwise), the
  fastest backend and thread count, cost, ncnn speed-up, status. Missing measurements are NaN, never
  an error.
- :func:`recommendations` - per backend and overall, the model to ship: the cheapest that cannot be
  told apart from the most accurate (paired comparison where the run has per-image IoUs), from
  undisturbed timings only.
- :func:`summary_display` / :func:`cost_display` - the narrow summary and the cost details, formatted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from bench import columns as C
from bench.backends.table import backend_column as _bk
from bench.columns import speedup as speedup_of
from bench.backends.table import backend_label

from .accuracy_view import accuracy_by_model, set_label, told_apart
from .fmt import DISTURBED_MARK, NOT_MEASURED, _finite, _fmt, _fmt_cost, _fmt_miou, _fmt_speedup
from .latency_view import NOISY_CV, is_disturbed, latency_at, latency_rows, main_machine_kind
from .plots import pareto_front
from .rows import (BACKEND_LABELS, BACKEND_ORDER, _archs, _at_size, _backends, _col, _designs, _first, _rows,
                   _text, input_label, main_input_size)

ALWAYS_SHOWN_BACKENDS = ("torch", "ncnn")  # columns shown even when nothing was measured


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
    parity = rows[_text(rows, C.PARITY_OK).str.lower().isin(["false", "0", "0.0"])]
    for _, r in parity.iterrows():
        label = f"{r.get('backend', '?')} parity fails"
        if label not in problems:
            problems.append(label)
    return "ok" if not problems else "; ".join(problems)


def _model_rows(df: pd.DataFrame, size: int, dataset: Optional[str], split: Optional[str]) -> pd.DataFrame:
    """name, arch, weights, rank and the accuracy columns: one row per (arch, weights) measured on
    the set, and one (without accuracy) per arch measured otherwise."""
    acc = accuracy_by_model(df, size, dataset, split)
    keep = ["name", "arch", "weights", "rank", "dataset", "split", C.N_IMAGES, C.MIOU, C.MIOU_CI_LOW,
            C.MIOU_CI_HIGH, C.BOUNDARY_F, "stems_sha1"]
    acc = acc.reindex(columns=keep) if not acc.empty else pd.DataFrame(columns=keep)
    rest = [a for a in _archs(df) if a not in set(acc["arch"])]
    extra = pd.DataFrame({"name": rest, "arch": rest, "weights": "", "rank": 0})
    return pd.concat([acc, extra], ignore_index=True) if len(extra) else acc


def summary_table(df: pd.DataFrame, input_size: Optional[int] = None, threads: Optional[int] = None,
                  dataset: Optional[str] = None, designs: Optional[Sequence[str]] = None,
                  split: Optional[str] = None, machine_kind: Optional[str] = None) -> pd.DataFrame:
    """One row per model (designs, then peers), numbers raw (NaN = not measured).

    Columns: name, arch, kind ("design"/"peer"), weights, input ("HxW": designs at ``input_size``,
    peers at their own), params, macs_g, size_mb_fp32, size_mb_fp16, size_mb_ncnn_bin, act_peak_mb,
    dataset, split, n_images, miou, miou_ci_low, miou_ci_high, boundary_f (on ``dataset`` / ``split``,
    default the headline set), latency_ms_<backend> with _p10/_p90, threads_<backend>,
    disturbed_<backend>, load_<backend>, latency_cv_<backend>, latency_runs_<backend>,
    gmacs_per_s_<backend> for every backend measured (always torch and ncnn), latency_ms_best /
    best_backend / threads_best / disturbed_best (the fastest backend and thread count, at ``threads``
    if given, undisturbed where one is),
    arm_instructions_m, ncnn_speedup (PyTorch / ncnn x86 at the same threads, from the interleaved
    measurement where there is a quiet one, with its range over rounds, else from the medians) with
    ncnn_speedup_disturbed, status. Timings of ``machine_kind`` only (default: the kind most come from)."""
    size = int(input_size) if input_size is not None else main_input_size(df)
    out = _model_rows(df, size, dataset, split)
    if out.empty:
        return out.assign(kind=[], status=[])
    archs = list(out["arch"])
    known = _designs(_archs(df), designs)
    out["kind"] = ["design" if a in known else "peer" for a in archs]
    every = {a: df[_text(df, "arch") == a] for a in set(archs)}
    out["input"] = [f"{size}x{size}" if k == "design" else input_label(every[a]) for a, k in zip(archs, out["kind"])]

    prof = _rows(df, "profile")
    at = _at_size(prof, size)
    for c in (C.PARAMS, C.SIZE_MB_FP32, C.SIZE_MB_FP16, C.SIZE_MB_NCNN_BIN):  # do not depend on size
        out[c] = [_first(_col(prof[prof["arch"] == a], c)) for a in archs]
    for c in (C.MACS_G, C.ACT_PEAK_MB):
        out[c] = [_first(_col(at[at["arch"] == a], c)) for a in archs]

    kind = machine_kind if machine_kind is not None else main_machine_kind(df)
    lat_all = _at_size(latency_rows(df, kind), size)  # every thread count: the speed-up below needs them
    lat = latency_at(lat_all, size, threads)
    backends = list(dict.fromkeys([*ALWAYS_SHOWN_BACKENDS, *_backends(df)]))
    for b in backends:
        sel = lat[_text(lat, "backend") == b]
        grp = {a: g for a, g in sel.groupby(_text(sel, "arch"))}
        empty = sel.iloc[0:0]
        k = _bk(b)
        for col, src, how in (("latency_ms_", C.LATENCY_MS_MEDIAN, "mean"), ("threads_", "threads", "max"),
                              ("latency_cv_", C.LATENCY_CV, "max"), ("latency_runs_", "latency_runs", "max"),
                              ("load_", C.LOAD_AVG_1M, "max")):
            out[f"{col}{k}"] = [getattr(_col(grp.get(a, empty), src), how)() for a in archs]
        out[f"latency_ms_{k}_p10"] = [_col(grp.get(a, empty), C.LATENCY_MS_P10).mean() for a in archs]
        out[f"latency_ms_{k}_p90"] = [_col(grp.get(a, empty), C.LATENCY_MS_P90).mean() for a in archs]
        out[f"disturbed_{k}"] = [bool(grp[a]["disturbed"].astype(bool).any()) if a in grp else False for a in archs]
        gm = [_col(grp.get(a, empty), C.ACHIEVED_GMACS_PER_S).mean() for a in archs]
        out[f"gmacs_per_s_{k}"] = [g if _finite(g) else (m / (t / 1e3) if _finite(m) and _finite(t) and t > 0
                                                          else np.nan)
                                   for g, m, t in zip(gm, out[C.MACS_G], out[f"latency_ms_{k}"])]
    _best_timing(out, lat_all if threads is None else lat)

    arm_at = _at_size(_rows(df, "arm_cost"), size)
    out[C.ARM_INSTRUCTIONS_M] = [_first(_col(arm_at[arm_at["arch"] == a], C.ARM_INSTRUCTIONS_M)) for a in archs]
    inter = _at_size(_rows(df, "speedup"), size)
    if not inter.empty:
        inter = inter[_text(inter, "backend") == "ncnn"]
        if kind is not None and "machine_kind" in inter.columns:
            inter = inter[_text(inter, "machine_kind") == kind]
    sp = [_speedup(lat_all[lat_all["arch"] == a], inter[inter["arch"] == a] if not inter.empty else inter, threads)
          for a in archs]
    for i, c in enumerate(("ncnn_speedup", "ncnn_speedup_min", "ncnn_speedup_max", "ncnn_speedup_disturbed")):
        out[c] = [s[i] for s in sp]
    out["status"] = [_status_summary(every[a]) for a in archs]
    out = out.assign(_k=(out["kind"] != "design").astype(int))
    return out.sort_values(["_k", "arch", "rank"], kind="stable").drop(columns=["_k"]).reset_index(drop=True)


def _best_timing(out: pd.DataFrame, lat: pd.DataFrame) -> None:
    """latency_ms_best, its p10/p90, best_backend, threads_best, disturbed_best: each row's fastest
    timing in ``lat`` (every backend and thread count given) among its undisturbed ones (among all,
    marked, when every one is disturbed). On a host whose 2-thread timings were all disturbed, a
    model's best figure is then its quiet 1-thread one, not a disturbed one or none."""
    best = {c: [] for c in ("latency_ms_best", "latency_ms_best_p10", "latency_ms_best_p90", "best_backend",
                            "threads_best", "disturbed_best")}
    arch = _text(lat, "arch") if not lat.empty else pd.Series(dtype=str)
    for _, r in out.iterrows():
        rows = lat[arch == r["arch"]] if not lat.empty else lat
        cands = []  # (median, disturbed, backend, threads, p10, p90)
        if not rows.empty:
            for (b, t), g in rows.groupby([_text(rows, "backend"), _col(rows, "threads")], dropna=False, sort=True):
                med = _col(g, C.LATENCY_MS_MEDIAN).mean()
                if _finite(med):
                    cands.append((float(med), bool(g["disturbed"].astype(bool).any()), b, t,
                                  _col(g, C.LATENCY_MS_P10).mean(), _col(g, C.LATENCY_MS_P90).mean()))
        quiet = [c for c in cands if not c[1]]
        pick = min(quiet or cands, key=lambda c: c[0], default=None)
        for col, i, none in (("latency_ms_best", 0, np.nan), ("disturbed_best", 1, False), ("best_backend", 2, ""),
                             ("threads_best", 3, np.nan), ("latency_ms_best_p10", 4, np.nan),
                             ("latency_ms_best_p90", 5, np.nan)):
            best[col].append(pick[i] if pick else none)
    for c, v in best.items():
        out[c] = v


def _speedup(ra: pd.DataFrame, ia: pd.DataFrame, threads: Optional[int]) -> tuple:
    """(speed-up, min, max, disturbed) of PyTorch over ncnn for one design (rows of one machine kind):
    the interleaved measurement at the largest thread count both backends have, unless it was
    disturbed and the two medians are not; else the ratio of the medians."""
    t_torch, t_ncnn = ra[_text(ra, "backend") == "torch"], ra[_text(ra, "backend") == "ncnn"]
    common = set(_col(t_torch, "threads").dropna()) & set(_col(t_ncnn, "threads").dropna())
    if threads is not None:
        common &= {threads}
    ratio, ratio_disturbed = np.nan, False
    if common:
        t = max(common)
        a, b = t_torch[_col(t_torch, "threads") == t], t_ncnn[_col(t_ncnn, "threads") == t]
        num, den = _col(a, C.LATENCY_MS_MEDIAN).mean(), _col(b, C.LATENCY_MS_MEDIAN).mean()
        ratio = speedup_of(num, den)
        ratio_disturbed = bool(a["disturbed"].astype(bool).any() or b["disturbed"].astype(bool).any())
    elif _col(t_torch, "threads").isna().all() and _col(t_ncnn, "threads").isna().all() and len(t_torch) and len(t_ncnn):
        num, den = _col(t_torch, C.LATENCY_MS_MEDIAN).mean(), _col(t_ncnn, C.LATENCY_MS_MEDIAN).mean()
        ratio = speedup_of(num, den)
    hit = ia[_col(ia, "threads") == max(common)] if common and not ia.empty else ia.iloc[0:0]
    if not hit.empty and _finite(_first(_col(hit, C.SPEEDUP))):
        r = hit.iloc[0]
        inter_disturbed = is_disturbed(r)
        if not inter_disturbed or not _finite(ratio) or ratio_disturbed:
            return (float(r[C.SPEEDUP]), _first([r.get(C.SPEEDUP_MIN)]), _first([r.get(C.SPEEDUP_MAX)]),
                    inter_disturbed)
    return ratio, np.nan, np.nan, ratio_disturbed


# ----------------------------------------------------------------------------- comparisons

def cis_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two closed intervals ``(low, high)`` overlap."""
    return a[0] <= b[1] and b[0] <= a[1]


def _ci(r) -> tuple[float, float]:
    return float(r.get(C.MIOU_CI_LOW, np.nan)), float(r.get(C.MIOU_CI_HIGH, np.nan))


def indistinguishable(summary: pd.DataFrame) -> list[tuple[str, str]]:
    """Pairs of models (by name, sorted by mIoU, best first) whose 95% mIoU CIs overlap."""
    acc = summary[_col(summary, C.MIOU).notna()].sort_values(C.MIOU, ascending=False) if not summary.empty else summary
    rows = [(r["name"], _ci(r)) for _, r in acc.iterrows() if all(map(_finite, _ci(r)))]
    return [(a, b) for i, (a, ca) in enumerate(rows) for b, cb in rows[i + 1:] if cis_overlap(ca, cb)]


def cannot_tell_apart(best, r, paired: Optional[pd.DataFrame]) -> tuple[bool, str]:
    """Whether ``r`` cannot be told apart from ``best`` on accuracy, and how that was decided: by
    the paired comparison where there is one, else only when each mIoU lies inside the other's 95%
    CI (overlapping intervals alone let a clearly less accurate model through)."""
    if r["name"] == best["name"]:
        return True, "same"
    resolved = told_apart(paired, best["name"], r["name"]) if paired is not None else None
    if resolved is not None:
        return not resolved, "paired"
    (bl, bh), (rl, rh) = _ci(best), _ci(r)
    if not all(map(_finite, (bl, bh, rl, rh))):
        return False, "no CI"
    return bool(bl <= r[C.MIOU] <= bh and rl <= best[C.MIOU] <= rh), "CIs"


@dataclass(frozen=True)
class CostAxis:
    """A cost the models are compared on: a summary column, its label and unit."""

    column: str
    label: str  # e.g. "ncnn x86, 2 threads"
    unit: str  # e.g. "ms"
    disturbed: Optional[str] = None  # the column saying a value is disturbed


def _backend_of(k: str) -> str:
    return next((b for b in [*BACKEND_ORDER, *BACKEND_LABELS] if _bk(b) == k), k)


def cost_axes(summary: pd.DataFrame) -> list[CostAxis]:
    """Every device cost the summary has at least one value for: latency per backend, ARM
    instruction count."""
    axes = []
    for c in summary.columns:
        m = re.fullmatch(r"latency_ms_(.+)", c)
        if m and not c.endswith(("_p10", "_p90")) and m.group(1) != "best" and _col(summary, c).notna().any():
            k = m.group(1)
            th = _col(summary, f"threads_{k}").dropna()
            threads = f", {int(th.max())} thread{'s' if th.max() != 1 else ''}" if not th.empty else ""
            axes.append(CostAxis(c, backend_label(_backend_of(k)) + threads, "ms", f"disturbed_{k}"))
    if _col(summary, C.ARM_INSTRUCTIONS_M).notna().any():
        axes.append(CostAxis(C.ARM_INSTRUCTIONS_M, "ncnn ARM (instruction count)", "M instructions"))
    return axes


def _miou_text(r, set_name: str) -> str:
    return f"{set_name} mIoU {_fmt_miou(r)}".strip()


def _recommend(summary: pd.DataFrame, column: str, label: str, unit: str, disturbed: Optional[str],
               paired: Optional[pd.DataFrame], set_name: str, where=None) -> Optional[str]:
    cost = _col(summary, column)
    bad = (summary[disturbed].astype(bool) if disturbed and disturbed in summary.columns
           else pd.Series(False, index=summary.index))
    has_acc = _col(summary, C.MIOU).notna()
    ok = summary[has_acc & cost.notna() & ~bad]
    if ok.empty:
        if not cost.notna().any():
            return None
        why = "accuracy not measured" if not (has_acc & cost.notna()).any() else "every timing was disturbed"
        return f"**{label}**: nothing to recommend ({why})."

    def at(r) -> str:
        return (f"{_fmt_cost(r[column], unit)} {unit}" + (f" on {where(r)}" if where else "")
                + f", {r.get('input') or '?'} input")

    best = ok.loc[_col(ok, C.MIOU).idxmax()]
    ties = [(r, how) for _, r in ok.iterrows() for tie, how in [cannot_tell_apart(best, r, paired)] if tie]
    pick = min(ties, key=lambda t: float(t[0][column]))[0]
    verb = "ship" if len(ok) > 1 else "only candidate with both measurements:"
    text = f"**{label}**: {verb} `{pick['name']}` ({at(pick)}; {_miou_text(pick, set_name)})"
    if pick["name"] != best["name"]:
        how = dict((r["name"], h) for r, h in ties)[pick["name"]]
        ratio = best[column] / pick[column] if pick[column] > 0 else float("nan")
        basis = ("paired comparison on the same images" if how == "paired"
                 else "each mIoU inside the other's 95% CI; no paired comparison in this run")
        text += (f"; the most accurate, `{best['name']}` (mIoU {_fmt(best[C.MIOU], 3)}), cannot be told apart from it "
                 f"({basis}) and costs {_fmt(ratio, 2)}x as much")
    noisy = summary[cost.notna() & has_acc & bad]
    above = noisy[_col(noisy, C.MIOU) > pick[C.MIOU]]
    if len(above):
        # a model that would have outranked the pick, left out only because its timing was
        # disturbed: said next to the pick, not at the end of the sentence
        text += ("; **but** " + ", ".join(f"`{r['name']}` (mIoU {_fmt(r[C.MIOU], 3)})" for _, r in above.iterrows())
                 + (" is" if len(above) == 1 else " are") + " more accurate but not compared: "
                 + ("its timing" if len(above) == 1 else "their timings") + f" here had no quiet measurement"
                 f"{DISTURBED_MARK}; re-time " + ("it" if len(above) == 1 else "them") + " on a quieter machine")
        noisy = noisy.drop(above.index)
    front = ok.iloc[pareto_front(list(zip(_col(ok, column), _col(ok, C.MIOU))))]
    cheaper = front[(_col(front, column) < pick[column]) & (front["name"] != pick["name"])]
    if not cheaper.empty:
        text += "; cheaper but measurably less accurate: " + ", ".join(
            f"`{r['name']}` ({_fmt_cost(r[column], unit)} {unit}, mIoU {_fmt(r[C.MIOU], 3)})"
            for _, r in cheaper.iterrows())
    skipped = summary[cost.notna() & ~has_acc]["name"]
    if len(skipped):
        text += "; not compared (accuracy not measured): " + ", ".join(f"`{a}`" for a in skipped)
    if len(noisy):
        text += f"; not compared (timing disturbed{DISTURBED_MARK}, no quiet measurement): " + ", ".join(
            f"`{a}`" for a in noisy["name"])
    return text + "."


def recommendations(summary: pd.DataFrame, paired: Optional[pd.DataFrame] = None) -> list[str]:
    """What to ship (Markdown sentences): overall (each model at its fastest backend and thread count
    here), then per device cost. The pick is the cheapest model that cannot be told apart from the
    most accurate one (:func:`cannot_tell_apart`), from undisturbed timings only."""
    if summary.empty:
        return []
    set_name = _set_name(summary)
    out = []
    overall = _recommend(summary, "latency_ms_best", "Overall (each model at its fastest backend and threads here)", "ms",
                         "disturbed_best", paired, set_name,
                         where=lambda r: backend_label(str(r.get("best_backend") or "?"))
                         + (f" {int(r['threads_best'])}T" if _finite(r.get("threads_best")) else ""))
    if overall and _col(summary, "latency_ms_best").notna().sum() > 0:
        out.append(overall)
    for ax in cost_axes(summary):
        text = _recommend(summary, ax.column, ax.label, ax.unit, ax.disturbed, paired, set_name)
        if text:
            out.append(text)
    return out


def _set_name(summary: pd.DataFrame) -> str:
    acc = summary[_col(summary, C.MIOU).notna()]
    if acc.empty or "dataset" not in acc.columns:
        return ""
    return set_label(str(acc["dataset"].iloc[0]), str(acc["split"].iloc[0]) if "split" in acc.columns
                     and isinstance(acc["split"].iloc[0], str) else "")


def vs_best(summary: pd.DataFrame, paired: Optional[pd.DataFrame] = None) -> dict[str, str]:
    """Per model: "best", "≈ best" (cannot be told apart, see :func:`cannot_tell_apart`) or "below"."""
    acc = summary[_col(summary, C.MIOU).notna()]
    if acc.empty:
        return {}
    best = acc.loc[_col(acc, C.MIOU).idxmax()]
    out = {}
    for _, r in acc.iterrows():
        tie, how = cannot_tell_apart(best, r, paired)
        out[r["name"]] = "best" if how == "same" else ("≈ best" if tie else "below") + (
            " (paired)" if how == "paired" else "")
    return out


# ----------------------------------------------------------------------------- display

def _latency_columns(summary: pd.DataFrame) -> list[str]:
    cols = [c for c in summary.columns if re.fullmatch(r"latency_ms_(?!.*_p\d0$)(?!best$).+", c)]
    return [c for c in cols if c[len("latency_ms_"):] in {_bk(b) for b in ALWAYS_SHOWN_BACKENDS}
            or _col(summary, c).notna().any()]


def _lat_cell(r, k: str) -> str:
    text = _fmt(r.get(f"latency_ms_{k}"), 2)
    if text != NOT_MEASURED and bool(r.get(f"disturbed_{k}")):
        text += DISTURBED_MARK
    elif text != NOT_MEASURED and _finite(r.get(f"latency_cv_{k}")) and r[f"latency_cv_{k}"] > NOISY_CV:
        text += "*"
    return text


def summary_display(summary: pd.DataFrame, paired: Optional[pd.DataFrame] = None
                    ) -> tuple[list[str], list[list[str]]]:
    """The narrow summary (what the report shows first): model, weights, input, accuracy on the
    headline set, vs best, median latency per backend."""
    if summary.empty:
        return [], []
    vs = vs_best(summary, paired)
    set_name = _set_name(summary)
    heads = ["model", "weights", "input", f"mIoU {set_name} [95% CI]".replace("  ", " "), "vs best"]
    lat_cols = _latency_columns(summary)
    for c in lat_cols:
        k = c[len("latency_ms_"):]
        th = _col(summary, f"threads_{k}").dropna()
        heads.append(f"{backend_label(_backend_of(k))} ms" + (f" ({int(th.max())}T)" if not th.empty else ""))
    rows = []
    for _, r in summary.iterrows():
        name = f"`{r['name']}`" + (" (peer)" if r.get("kind") == "peer" else "")
        w = (r.get("weights") or NOT_MEASURED) if _finite(r.get(C.MIOU)) else NOT_MEASURED
        rows.append([name, w, str(r.get("input") or NOT_MEASURED), _fmt_miou(r) if _finite(r.get(C.MIOU))
                     else NOT_MEASURED, vs.get(r["name"], NOT_MEASURED)]
                    + [_lat_cell(r, c[len("latency_ms_"):]) for c in lat_cols])
    return heads, rows


def cost_display(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """The cost details of every model: parameters, MACs, sizes, memory, ARM instructions, speed-up,
    achieved GMAC/s, status."""
    if summary.empty:
        return [], []
    size = str(summary["input"].iloc[0]) if "input" in summary.columns else ""
    has = {c: _col(summary, c).notna().any() for c in summary.columns}
    gm_cols = [f"gmacs_per_s_{_bk(b)}" for b in ALWAYS_SHOWN_BACKENDS if f"gmacs_per_s_{_bk(b)}" in summary.columns]
    heads = ["model", "input", "params (M)", "GMACs", "size fp32 (MB)"] + (
        ["ncnn .bin (MB)"] if has.get(C.SIZE_MB_NCNN_BIN) else []) + ["peak act. (MB)"] + (
        ["boundary F"] if has.get(C.BOUNDARY_F) else []) + ["ARM (M instr.)", "ncnn speed-up"] + [
        f"GMAC/s {backend_label(c[len('gmacs_per_s_'):])}" for c in gm_cols] + ["status"]
    rows = []
    for _, r in summary.iterrows():
        cells = [f"`{r['name']}`", str(r.get("input") or size or NOT_MEASURED),
                 _fmt(r[C.PARAMS] / 1e6 if _finite(r.get(C.PARAMS)) else np.nan, 3), _fmt(r.get(C.MACS_G), 3),
                 _fmt(r.get(C.SIZE_MB_FP32), 2)]
        if has.get(C.SIZE_MB_NCNN_BIN):
            cells.append(_fmt(r.get(C.SIZE_MB_NCNN_BIN), 2))
        cells.append(_fmt(r.get(C.ACT_PEAK_MB), 1))
        if has.get(C.BOUNDARY_F):
            cells.append(_fmt(r.get(C.BOUNDARY_F), 3))
        sp = _fmt_speedup(r)
        cells += [_fmt(r.get(C.ARM_INSTRUCTIONS_M), 1),
                  sp + (DISTURBED_MARK if sp != NOT_MEASURED and bool(r.get("ncnn_speedup_disturbed")) else "")]
        cells += [_fmt(r.get(c), 1) for c in gm_cols]
        cells.append(str(r.get("status", "")))
        rows.append(cells)
    return heads, rows
