"""Files and tables for the ARM latency estimates (bench.arm_counts, bench.arm_estimate).

The calibration counts are a committed table (``bench/arm/calibration_counts.csv``) written here;
the rest renders markdown tables from the records ``bench.arm_estimate`` returns.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

COUNT_COLUMNS_FIRST = ("model", "cpu_model", "input_whc", "status", "insn_m", "insn_m_layer_pass", "macs_m",
                       "traffic_mb", "act_elems_m", "layers")


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
    devices = list(dict.fromkeys(e.device_model))
    lines = ["| model | " + " | ".join(devices) + " | outside calibration range |",
             "| --- | " + " | ".join("---" for _ in devices) + " | --- |"]
    for model, g in e.groupby("model", sort=False):
        g = g.set_index("device_model")
        cells = [f"{g.at[d, 'arm_est_ms']:.1f} [{g.at[d, 'arm_est_ms_low']:.0f}-{g.at[d, 'arm_est_ms_high']:.0f}]"
                 if d in g.index else "" for d in devices]
        why = g.out_of_range_why.iloc[0] if g.out_of_range.any() else ""
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {why} |")
    return "\n".join(lines)
