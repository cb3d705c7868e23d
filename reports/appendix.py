"""The report's appendix: where and when the run was measured, the protocol strings and the plan's
keys (moved out of the way of the answer at the top), and the one line the top says about the run."""
from __future__ import annotations

import re
from typing import Mapping

import pandas as pd

from bench import columns as C

from .doc import Doc
from .fmt import NOT_MEASURED, _fmt
from .rows import _col, _rows, _text

_RUN_KEYS = ("date", "commit", "dirty", "machine", "versions", "plan_options", "resumed", "partial")


def run_line(meta: Mapping, df: pd.DataFrame) -> str:
    """One line for the top of the report: machine, date, commit, and where the details are."""
    m = meta.get("machine") or {}
    commit = str(meta.get("commit") or NOT_MEASURED) + (" + uncommitted changes" if meta.get("dirty") else "")
    load, what = _timing_load(df)
    busy = f"; load average (1 min) {what} median {load.median():.1f}, max {load.max():.1f}" if not load.empty else ""
    return (f"Measured on {m.get('cpu', NOT_MEASURED)} ({m.get('cores', '?')} cores), {meta.get('date', NOT_MEASURED)}, "
            f"commit `{commit}`{busy}. Protocol, libraries and plan: Appendix.")


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
    load, what = _timing_load(df)
    if not load.empty:
        out.append(f"**Load average (1 min) {what}**: median {load.median():.1f}, max {load.max():.1f} on "
                   f"{(meta.get('machine') or {}).get('cores', '?')} cores (the jobs that time nothing run side "
                   "by side on the cores, so the load at their end is mostly the run's own)")
    return out


def _timing_load(df: pd.DataFrame) -> tuple[pd.Series, str]:
    """The 1-minute load averages of the timing rows (those the quiet wait judged) and the words for
    them; of every row when the run timed nothing."""
    if df is None or df.empty or C.LOAD_AVG_1M not in df.columns:
        return pd.Series(dtype=float), ""
    timed = df[_col(df, C.QUIET).notna()] if C.QUIET in df.columns else df.iloc[:0]
    if timed.empty:
        return pd.to_numeric(df[C.LOAD_AVG_1M], errors="coerce").dropna(), "at the end of each job"
    return pd.to_numeric(timed[C.LOAD_AVG_1M], errors="coerce").dropna(), "while timing"


def appendix(doc: Doc, meta: Mapping, df: pd.DataFrame, size: int) -> None:
    """The run (date, commit, machine, libraries, when and under what load), then the protocol: every
    latency protocol string, the CPU peak, the plan's keys."""
    doc.h(2, "Appendix: run and protocol")
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
        if key in _RUN_KEYS:
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
    proto.append(f"summary: designs at {size}x{size} input, peers at their own (column \"input\"); latency = median "
                 "per frame at the largest thread count measured; 1 MAC = 1 multiply-add (fvcore)")
    doc.p("**Protocol**")
    doc.ul(proto)

