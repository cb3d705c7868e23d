"""The report of a sweep run (``run_bench.py sweep``): one table per measurement of the matrix and
the seed-to-seed spread of training beside one run's bootstrap CI. Timings are grouped by the
machine that measured them (``node_machine`` on rows from a Ray cluster), never mixed in one ratio."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from bench import columns as C
from bench.run.status import kinds
from bench.run.sweep import seed_spread

from .report import Doc

SWEEP_MD = "report.md"


INT_COLUMNS = {"input_size", C.PARAMS, "threads", "seed", C.TRAIN_STEPS, "seeds"}


def _fmt(v: Any, digits: int = 3, column: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if column in INT_COLUMNS and isinstance(v, (int, float)):
        return f"{int(v):,}"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _machine(row: pd.Series) -> str:
    m = row.get("node_machine")
    if isinstance(m, dict):
        return f"{m.get('cpu', '?')} / {m.get('cores', '?')} cores"
    return "this machine"


def _table(doc: Doc, df: pd.DataFrame, cols: Sequence[str], digits: int = 3) -> None:
    have = [c for c in cols if c in df.columns]
    doc.table(have, [[_fmt(r[c], digits, c) for c in have] for _, r in df.iterrows()])


def sweep_doc(df: pd.DataFrame) -> Doc:
    doc = Doc()
    doc.h(1, "Sweep")
    if df.empty:
        doc.p("No rows.")
        return doc
    status = kinds(df["status"])
    doc.p(f"{df['job'].nunique()} jobs: {int((status == 'ok').sum())} ok, "
          f"{int((status == 'skipped').sum())} skipped, {int((status == 'error').sum())} failed.")
    by = {m: g for m, g in df.groupby("measurement")}
    if "profile" in by:
        doc.h(2, "Cost")
        _table(doc, by["profile"].sort_values(["arch", "input_size"]),
               ["arch", "input_size", C.PARAMS, C.MACS_G, C.SIZE_MB_FP32, C.ACT_PEAK_MB, "status"])
    for name, title in (("latency", "Latency"), ("speedup", "Speed-ups (timed interleaved)")):
        if name not in by:
            continue
        g = by[name].copy()
        g["machine"] = [_machine(r) for _, r in g.iterrows()]
        for machine, part in g.groupby("machine"):
            doc.h(2, f"{title} on {machine}")
            if name == "latency":
                _table(doc, part.sort_values(["arch", "input_size", "threads", "backend"]),
                       ["arch", "input_size", "threads", "backend", C.LATENCY_MS_MEDIAN, C.LATENCY_CV, C.QUIET,
                        "status"])
            else:
                _table(doc, part.sort_values(["arch", "input_size", "threads"]),
                       ["arch", "input_size", "threads", C.OTHER_BACKEND, C.SPEEDUP, C.SPEEDUP_MIN, C.SPEEDUP_MAX,
                        C.QUIET, "status"])
    if "arm_cost" in by:
        doc.h(2, "ARM instructions (qemu, deterministic)")
        _table(doc, by["arm_cost"].sort_values(["arch", "input_size"]),
               ["arch", "input_size", C.ARM_INSTRUCTIONS_M, "status"], 1)
    if "train" in by:
        doc.h(2, "Training: seed-to-seed spread")
        doc.p("Validation mIoU of the same design and recipe trained with different seeds. `sd over seeds` "
              "is the run-to-run spread of training; `CI half-width` the mean half-width of one run's "
              "95% bootstrap CI over the validation images. A difference between designs smaller than "
              "either cannot be told apart.")
        spread = seed_spread(df)
        doc.table(["design", "recipe", "seeds", "mean val mIoU", "sd over seeds", "min", "max", "CI half-width"],
                  [[r.arch, r.recipe, _fmt(r.seeds, column="seeds"), _fmt(r.val_miou_mean), _fmt(r.val_miou_sd_seeds),
                    _fmt(r.val_miou_min), _fmt(r.val_miou_max), _fmt(r.ci_half_width_mean)]
                   for r in spread.itertuples()])
        _table(doc, by["train"].sort_values(["arch", "recipe", "seed"]),
               ["arch", "recipe", "seed", C.TRAIN_STEPS, C.TRAIN_SECONDS, C.VAL_MIOU, C.VAL_MIOU_CI_LOW,
                C.VAL_MIOU_CI_HIGH, "status"])
    failed = df[status == "error"]
    if not failed.empty:
        doc.h(2, "Failed jobs")
        _table(doc, failed, ["job", "status"])
    return doc


def write_sweep_report(run_dir: Path, df: pd.DataFrame) -> Path:
    """Write ``report.md`` of a sweep into ``run_dir``; returns its path."""
    path = Path(run_dir) / SWEEP_MD
    path.write_text(sweep_doc(df).to_markdown(Path(run_dir)))
    return path


__all__ = ["sweep_doc", "write_sweep_report"]
