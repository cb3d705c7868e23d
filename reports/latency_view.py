"""Which latency figures the report shows, and how it marks the doubtful ones.

- A timing is **disturbed** when its quiet wait saw other work on the CPU (``quiet`` is False, or the
  row says ``disturbed``; ``bench/latency.py``). Where an undisturbed measurement of the same thing
  exists (same design, backend, threads, input and machine kind: another row, or a repeat study whose
  fresh processes were all quiet), the disturbed one is dropped; where none exists it is kept with
  ``disturbed = True`` and shown marked (``reports.fmt.DISTURBED_MARK``) with the load it saw. The
  summary's recommendations never use a disturbed figure.
- Timings are grouped by **machine kind** (``reports.rows.with_machine_kind``: a Ray node's machine
  header, else the run's machine): a ratio (speed-up, thread scaling) never mixes two kinds, and the
  summary is given for the kind most timings come from.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import pandas as pd

from bench import columns as C
from bench.backends.table import backend_label

from .doc import Doc
from .fmt import DISTURBED_MARK, NOT_MEASURED, _finite, _flag, _fmt, _fmt_flag, _fmt_share
from .rows import _at_size, _backends, _col, _first, _rows, _text

NOISY_CV = 0.15  # a latency whose frame-to-frame coefficient of variation is above this is flagged
KEY = ("arch", "backend", "threads", "input_size", "native_input", "machine_kind")


def is_disturbed(row: Any) -> bool:
    """Whether a timing row was measured while other work used the CPU: its ``disturbed`` flag where
    it has one, else ``quiet is False`` (a row without either is not known to be disturbed)."""
    flag = _flag(row.get("disturbed"))
    if flag is not None:
        return flag
    return _flag(row.get(C.QUIET)) is False


def _norm(v: Any) -> Any:
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def measurement_key(row: Any) -> tuple:
    """What a timing measures: design, backend, threads, input (side or native HxW), machine kind."""
    return tuple(_norm(row.get(k)) for k in KEY)


def _repeat_disturbed(rep: Any) -> bool:
    """A repeat study is disturbed when some of its ok runs were not quiet (unknown: not disturbed)."""
    quiet, ok = rep.get("runs_quiet"), rep.get("runs_ok")
    return _finite(quiet) and _finite(ok) and float(quiet) < float(ok)


def latency_rows(df: pd.DataFrame, machine_kind: Optional[str] = None) -> pd.DataFrame:
    """The ok latency rows the report uses, one per measured thing, each with its most robust median.

    Where a ``latency_repeat`` row of the same thing has a median over fresh processes, that median
    replaces the single run's (p10 / p90 / mean scaled by the same factor, so the frame-to-frame spread
    is kept) and ``latency_runs`` says how many processes it comes from (1 otherwise); a repeat with
    disturbed runs does not replace an undisturbed single run. ``disturbed`` says whether the figure
    kept is disturbed; a disturbed row is dropped when an undisturbed row of the same thing exists.
    ``machine_kind``: only the rows of that kind (column from ``reports.rows.with_machine_kind``)."""
    lat = _rows(df, "latency").copy()
    if lat.empty:
        return lat.assign(latency_runs=[], disturbed=[])
    if machine_kind is not None:
        lat = lat[_text(lat, "machine_kind") == machine_kind].copy()
    lat["latency_runs"] = 1
    lat["disturbed"] = [is_disturbed(r) for _, r in lat.iterrows()]
    reps = {}
    for _, r in _rows(df, "latency_repeat", ok_only=False).iterrows():
        if _finite(r.get("latency_ms_median_of_runs")) and _finite(r.get("runs_ok")) and r["runs_ok"] >= 2:
            reps[measurement_key(r)] = r
    for i, r in lat.iterrows():
        hit = reps.get(measurement_key(r))
        single = r.get(C.LATENCY_MS_MEDIAN)
        if hit is None or not _finite(single) or single <= 0:
            continue
        rep_disturbed = _repeat_disturbed(hit)
        if rep_disturbed and not r["disturbed"]:
            continue
        f = float(hit["latency_ms_median_of_runs"]) / float(single)
        for c in (C.LATENCY_MS_MEDIAN, C.LATENCY_MS_P10, C.LATENCY_MS_P90, "latency_ms_mean"):
            if c in lat.columns and _finite(r.get(c)):
                lat.at[i, c] = float(r[c]) * f
        if C.ACHIEVED_GMACS_PER_S in lat.columns and _finite(r.get(C.ACHIEVED_GMACS_PER_S)):
            lat.at[i, C.ACHIEVED_GMACS_PER_S] = float(r[C.ACHIEVED_GMACS_PER_S]) / f
        lat.at[i, "latency_runs"] = int(hit["runs_ok"])
        lat.at[i, "disturbed"] = rep_disturbed
    if lat.empty:
        return lat
    keys = [measurement_key(r) for _, r in lat.iterrows()]
    bad = [bool(d) for d in lat["disturbed"]]
    quiet_keys = {k for k, d in zip(keys, bad) if not d}
    return lat[[not (d and k in quiet_keys) for k, d in zip(keys, bad)]]


def main_machine_kind(df: pd.DataFrame) -> Optional[str]:
    """The machine kind most ok latency rows come from (None: no ``machine_kind`` column)."""
    lat = _rows(df, "latency")
    if lat.empty or "machine_kind" not in lat.columns:
        return None
    kinds = _text(lat, "machine_kind")
    return str(kinds.mode().iloc[0]) if not kinds.empty else None


def machine_kinds(df: pd.DataFrame) -> list[str]:
    lat = _rows(df, "latency")
    return sorted(set(_text(lat, "machine_kind")) - {""}) if "machine_kind" in lat.columns else []


def latency_at(lat: pd.DataFrame, size: int, threads: Optional[int]) -> pd.DataFrame:
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


def disturbed_footnote(rows: pd.DataFrame) -> Optional[str]:
    """The footnote of the disturbed figures shown (no quiet measurement of the same thing exists)."""
    bad = rows[rows["disturbed"].astype(bool)] if "disturbed" in rows.columns and not rows.empty else rows.iloc[0:0]
    if bad.empty:
        return None
    load = _col(bad, C.LOAD_AVG_1M).dropna()
    seen = (f"1-minute load average {load.min():.1f}" + (f" to {load.max():.1f}" if load.max() > load.min() else "")
            + " at the end of those jobs") if not load.empty else "load not recorded"
    return (f"{DISTURBED_MARK} disturbed: other work used the CPU while timing ({seen}) and no quiet measurement "
            "of the same design, backend, threads and input exists; shown for completeness, never used for a "
            "recommendation.")


def timing_quality(df: pd.DataFrame) -> Optional[str]:
    """A warning (Markdown) when latency rows were disturbed by other load, else None."""
    lat = _rows(df, "latency")
    if lat.empty:
        return None
    disturbed = sum(is_disturbed(r) for _, r in lat.iterrows())
    cv = _col(lat, C.LATENCY_CV).dropna()
    noisy = int((cv > NOISY_CV).sum())
    if not disturbed and not noisy:
        return None
    kept = latency_rows(df)
    shown = int(kept["disturbed"].astype(bool).sum()) if not kept.empty else 0
    load = _col(lat, C.LOAD_AVG_1M).dropna()
    cores = _col(lat, "cpu_count").dropna()
    busy = ""
    if not load.empty:
        busy = f"; 1-minute load average up to {load.max():.1f}" + (
            f" on {int(cores.max())} cores" if not cores.empty else "")
    parts = []
    if disturbed:
        parts.append(f"{disturbed} of {len(lat)} latency measurements were disturbed (the quiet wait saw other "
                     f"work on the CPU); {disturbed - shown} of them are replaced by a quiet measurement of the same "
                     f"thing, {shown} have none and are marked {DISTURBED_MARK}")
    if noisy:
        parts.append(f"{noisy} of {len(cv)} vary by more than {100 * NOISY_CV:.0f}% from frame to frame "
                     f"(coefficient of variation; median {cv.median():.2f})")
    return ("**Timing was disturbed**: " + "; ".join(parts) + busy
            + ". Re-run on an idle machine before trusting the marked figures.")


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


def _input_cell(r: Any, size: int) -> str:
    native = r.get("native_input")
    if isinstance(native, str) and native:
        return native
    return f"{int(r['input_size'])}x{int(r['input_size'])}" if _finite(r.get("input_size")) else f"{size}x{size}"


def _sort(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values([c for c in ("machine_kind", "arch", "backend", "threads") if c in frame.columns])


def latency_tables(doc: Doc, df: pd.DataFrame, size: int) -> None:
    """Details: every latency row (quiet or not, with the load seen), the repeatability study and
    the interleaved speed-ups, at the summary's size (peers at their own input)."""
    kinds = machine_kinds(df)
    many = len(kinds) > 1
    lat = _at_size(_rows(df, "latency"), size)
    if not lat.empty:
        doc.h(3, f"Latency (every backend and thread count; designs at {size}x{size}, peers at their own input)")
        rows = []
        for _, r in _sort(lat).iterrows():
            parity = r.get(C.PARITY_OK)
            cells = [f"`{r['arch']}`", _input_cell(r, size), backend_label(str(r.get("backend", ""))),
                     _fmt(r.get("threads")), _fmt(r.get(C.LATENCY_MS_MEDIAN), 2)
                     + (DISTURBED_MARK if is_disturbed(r) else ""),
                     _fmt(r.get(C.LATENCY_MS_P10), 2), _fmt(r.get(C.LATENCY_MS_P90), 2), _fmt(r.get(C.LATENCY_CV), 3),
                     "no" if is_disturbed(r) else ("yes" if _flag(r.get(C.QUIET)) else NOT_MEASURED),
                     _fmt(r.get(C.LOAD_AVG_1M), 1), _fmt(r.get(C.ACHIEVED_GMACS_PER_S), 1),
                     NOT_MEASURED if parity is None or (isinstance(parity, float) and math.isnan(parity))
                     else str(parity), _fmt(r.get("parity_max_abs_diff"))]
            rows.append(([str(r.get("machine_kind", ""))] if many else []) + cells)
        doc.table((["machine"] if many else []) + ["model", "input", "backend", "threads", "median ms", "p10 ms",
                                                   "p90 ms", "CV", "quiet", "load (1 min)", "GMAC/s", "parity ok",
                                                   "max abs diff"], rows)
        doc.p(f"Every row as measured (a repeat study's median is not substituted here); {DISTURBED_MARK} = "
              "disturbed (the quiet wait saw other work on the CPU); load = 1-minute load average at the end of "
              "the job.")
    rep = _at_size(_rows(df, "latency_repeat", ok_only=False), size)
    if not rep.empty:
        doc.h(3, f"Latency repeatability at {size}x{size} (the same measurement in fresh processes)")
        rows = []
        for _, r in _sort(rep).iterrows():
            rows.append([f"`{r['arch']}`", backend_label(str(r.get("backend", ""))), _fmt(r.get("threads")),
                         f"{_fmt(r.get('runs_ok'))} / {_fmt(r.get('runs'))} ({_fmt(r.get('runs_quiet'))} quiet)",
                         str(r.get("run_medians_ms") or NOT_MEASURED), _fmt(r.get("latency_ms_median_of_runs"), 2),
                         _fmt_share(r.get("between_run_cv")), _fmt_share(r.get("within_run_cv_median")),
                         _fmt_flag(r.get("repeatable")), str(r.get("status", ""))[:80]])
        doc.table(["design", "backend", "threads", "runs ok / made", "run medians (ms)", "median of runs ms",
                   "between-run CV", "within-run CV (median)", "repeatable", "status"], rows)
        doc.p("Each run is a fresh process with the full protocol (quiet wait, calibration, warm-up, timed "
              "loop). \"Repeatable\": the coefficient of variation of the runs' medians is at most "
              f"{_fmt_share(_first(_col(rep, 'max_between_run_cv')))}.")
    inter = _at_size(_rows(df, "speedup", ok_only=False), size)
    if not inter.empty:
        doc.h(3, f"Interleaved speed-ups at {size}x{size} (PyTorch and the other backend in one process, "
                 "round by round)")
        rows = []
        for _, r in _sort(inter).iterrows():
            rows.append([f"`{r['arch']}`", backend_label(str(r.get("backend", ""))), _fmt(r.get("threads")),
                         _fmt(r.get("base_ms_median"), 2), _fmt(r.get("other_ms_median"), 2),
                         f"{_fmt(r.get(C.SPEEDUP), 2)}x" if _finite(r.get(C.SPEEDUP)) else NOT_MEASURED,
                         f"{_fmt(r.get(C.SPEEDUP_MIN), 2)}-{_fmt(r.get(C.SPEEDUP_MAX), 2)}",
                         _fmt_share(r.get("speedup_cv")),
                         f"{_fmt_share(r.get('base_round_cv'))} / {_fmt_share(r.get('other_round_cv'))}",
                         _fmt_flag(r.get(C.QUIET)), str(r.get("status", ""))[:80]])
        doc.table(["design", "backend", "threads", "PyTorch ms", "backend ms", "speed-up", "range over rounds",
                   "CV of round ratios", "drift (CV of round medians, PyTorch / backend)", "quiet", "status"], rows)
        doc.p("Both backends are loaded in one process and timed in turns (each round: warm-up, then the timed "
              "iterations of one, then of the other; the order turns each round). A slowdown of the machine that "
              "lasts longer than a round hits both alike, so the median of the per-round ratios holds when the "
              "separate medians above drift between processes. A comparison that was not quiet is not used in "
              "the summary when quiet medians of both backends exist.")


def curve_panels(df: pd.DataFrame, x_col: str, size: int, threads_fixed: bool) -> list[dict]:
    """Per backend and machine kind, per design: latency as a function of input size (at the largest
    thread count) or of the thread count (at ``size``); series frames x, y, lo, hi, disturbed (a
    point with no quiet measurement of the same thing, drawn hollow). A curve never mixes machine kinds."""
    from archs import list_archs
    peer_names = set(_text(df, "arch")) - set(list_archs())
    kinds = machine_kinds(df) or [None]
    panels = []
    for kind in kinds:
        lat = latency_rows(df, kind)
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
                peers = ", peers at their own input" if _text(sel, "arch").isin(peer_names).any() else ""
                note = f", designs at {size}x{size}{peers}"
            series = {}
            for a, g in sel.groupby(_text(sel, "arch")):
                d = pd.DataFrame({"x": _col(g, x_col), "y": _col(g, C.LATENCY_MS_MEDIAN),
                                  "lo": _col(g, C.LATENCY_MS_P10), "hi": _col(g, C.LATENCY_MS_P90),
                                  "disturbed": g["disturbed"].astype(float)}).dropna(subset=["x", "y"])
                d = d.groupby("x", as_index=False).mean().sort_values("x")
                d["disturbed"] = d["disturbed"] > 0
                if len(d) >= 2:
                    series[a] = d
            if series:
                where = f" ({kind})" if kind and len(kinds) > 1 else ""
                panels.append({"title": backend_label(b) + note + where, "series": series})
    return panels
