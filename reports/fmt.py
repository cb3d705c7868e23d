"""How the report writes numbers and flags (one place, so every table reads alike)."""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import numpy as np

from bench import columns as C

NOT_MEASURED = "—"
DISTURBED_MARK = "†"  # a timing measured while other work used the CPU (see reports.latency_view)


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


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
    if not _finite(r.get(C.MIOU)):
        return "not measured"
    ci = (f" [{_fmt(r[C.MIOU_CI_LOW], 3)}, {_fmt(r[C.MIOU_CI_HIGH], 3)}]"
          if _finite(r.get(C.MIOU_CI_LOW)) and _finite(r.get(C.MIOU_CI_HIGH)) else "")
    return f"{_fmt(r[C.MIOU], 3)}{ci}"



def _fmt_speedup(r) -> str:
    """"2.31x", with the range over interleaved rounds where there is one: "2.31x (2.12-2.48)"."""
    if not _finite(r.get("ncnn_speedup")):
        return NOT_MEASURED
    text = f"{_fmt(r.get('ncnn_speedup'), 2)}x"
    if _finite(r.get("ncnn_speedup_min")) and _finite(r.get("ncnn_speedup_max")):
        text += f" ({_fmt(r.get('ncnn_speedup_min'), 2)}-{_fmt(r.get('ncnn_speedup_max'), 2)})"
    return text

