"""What changed between two runs (``run_bench.py compare``), per model and metric."""
from __future__ import annotations

import re
from typing import Optional

import numpy as np
import pandas as pd

from bench import columns as C

from .fmt import _finite, _fmt, _fmt_pct, _fmt_signed
from .rows import main_input_size
from .summary import cis_overlap, summary_table

# direction of each summary metric: +1 higher is better, -1 lower is better, 0 neither
_HIGHER_BETTER = ("miou", "boundary_f", "ncnn_speedup", "gmacs_per_s")  # name prefixes
_LOWER_BETTER = ("latency_ms", "params", "macs_g", "size_mb", "act_peak_mb", "arm_instructions_m")


def _metric_direction(metric: str) -> int:
    if metric.startswith(_HIGHER_BETTER):
        return 1
    if metric.startswith(_LOWER_BETTER) and not metric.endswith(("_p10", "_p90")):
        return -1
    return 0


COMPARED_METRICS = (C.PARAMS, C.MACS_G, C.SIZE_MB_FP32, C.SIZE_MB_FP16, C.SIZE_MB_NCNN_BIN, C.ACT_PEAK_MB,
                    C.MIOU, C.BOUNDARY_F, C.N_IMAGES, C.ARM_INSTRUCTIONS_M, "ncnn_speedup")


def compare_runs(df_a: pd.DataFrame, df_b: pd.DataFrame, input_size: Optional[int] = None,
                 rel_tol: float = 0.0) -> pd.DataFrame:
    """What changed from run A to run B, per design and metric (long format).

    Columns: arch (the model's name in the summary), metric, a, b, change (b - a), rel_change ((b - a) / |a|), verdict ("better",
    "worse", "changed", "new", "gone"; for mIoU "within CI" when the two CIs overlap, for a latency
    "within noise" when the two p10-p90 spreads overlap). Metrics equal
    in both runs, or changed by less than ``rel_tol`` (relative), are left out.
    """
    size = input_size if input_size is not None else main_input_size(df_a if not df_a.empty else df_b)
    sa, sb = summary_table(df_a, size), summary_table(df_b, size)
    # keyed by model name: a design measured with two weights (seg_matting trained and seed) is two models
    sa, sb = sa.set_index("name") if not sa.empty else sa, sb.set_index("name") if not sb.empty else sb
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
                if m == C.MIOU and all(_finite(x) for x in (sa.at[a, C.MIOU_CI_LOW], sb.at[a, C.MIOU_CI_LOW])) \
                        and cis_overlap((sa.at[a, C.MIOU_CI_LOW], sa.at[a, C.MIOU_CI_HIGH]),
                                        (sb.at[a, C.MIOU_CI_LOW], sb.at[a, C.MIOU_CI_HIGH])):
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

