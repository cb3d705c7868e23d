"""Selecting rows of a run's results table (one row per measurement, see ``bench/run/jobs.py``): the
helpers every part of the report shares. Missing columns read as NaN / "" (never an error)."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from bench.backends.table import TABLE as BACKEND_TABLE
from bench.run.runinfo import machine_kind

from .fmt import _finite

BACKEND_LABELS = {name: b.label for name, b in BACKEND_TABLE.items()}
BACKEND_ORDER = tuple(BACKEND_TABLE)


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



def _archs(df: pd.DataFrame) -> list[str]:
    if df is None or df.empty or "arch" not in df.columns:
        return []
    return list(dict.fromkeys(str(a) for a in df["arch"].dropna()))


def _backends(df: pd.DataFrame) -> list[str]:
    lat = _rows(df, "latency")
    found = set(_text(lat, "backend")) - {""}
    ordered = [b for b in BACKEND_ORDER if b in found]
    return ordered + sorted(found - set(ordered))



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



def _designs(archs: Sequence[str], designs: Optional[Sequence[str]]) -> set[str]:
    if designs is not None:
        return set(designs)
    try:
        from archs import list_archs
        return set(list_archs())
    except Exception:  # registry unavailable: call everything a design
        return set(archs)


def input_label(frame: pd.DataFrame, default: Optional[int] = None) -> str:
    """The input a model was measured at, as "HxW": a file peer's ``native_input``, else the side
    most of its rows carry (a torch peer's own size), else ``default``; "" when unknown."""
    native = [t for t in _text(frame, "native_input") if t]
    if native:
        return max(set(native), key=native.count)
    sizes = _col(frame, "input_size").dropna()
    if not sizes.empty:
        s = int(sizes.mode().max())
        return f"{s}x{s}"
    return f"{default}x{default}" if default else ""


def with_machine_kind(df: pd.DataFrame, meta: Optional[Mapping] = None) -> pd.DataFrame:
    """``df`` with a ``machine_kind`` column: from the row's ``node_machine`` (rows of the Ray
    executor, bench/run/cluster.py), else the run's machine (``meta["machine"]``)."""
    if df is None or df.empty:
        return df
    own = machine_kind((meta or {}).get("machine"))
    nodes = df["node_machine"] if "node_machine" in df.columns else pd.Series(None, index=df.index, dtype=object)
    kinds = [machine_kind(n) if isinstance(n, (Mapping, str)) and n else own for n in nodes]
    return df.assign(machine_kind=kinds)
