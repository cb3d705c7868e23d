"""Per-layer MAC shares and the strip of example predictions, drawn from the run's ``layers`` and
``examples`` rows (measured by jobs, :mod:`bench.measure.complexity` / :mod:`bench.measure.examples`;
the report loads no model)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from .rows import _col, _rows, _text

# the per-layer fields of a ``layers`` row, in the order of the written tables
LAYER_FIELDS = ("layer_type", "layer_macs", "layer_macs_pct", "layer_params", "layer_elementwise_ops",
                "layer_calls", "layer_output_shape", "layer_ops")

EXAMPLES_PNG, EXAMPLES_JSON = "examples.png", "examples.json"


def layer_csv(run_dir: Path, arch: str, size: int) -> Path:
    return Path(run_dir) / "layers" / f"{arch}_{size}.csv"


def layer_shares(df: pd.DataFrame, archs: Sequence[str], size: int, run_dir: Optional[Path] = None
                 ) -> tuple[dict[str, pd.DataFrame], str]:
    """Per design, its per-layer MACs from the run's ``layers`` rows (columns layer, type, macs, share,
    then the rest) and a note naming the designs without such rows ('' when none lacks them). With
    ``run_dir``, each table is also written to ``layers/<design>_<size>.csv``."""
    rows = _rows(df, "layers")
    out, missing = {}, []
    for a in archs:
        t = rows[(_text(rows, "arch") == a) & (_col(rows, "input_size") == size)]
        if t.empty or "layer_macs" not in t.columns:
            missing.append(a)
            continue
        t = t[["layer", *[c for c in LAYER_FIELDS if c in t.columns]]]  # (a profile row's "macs" is the model's)
        t = t.rename(columns={c: c[len("layer_"):] for c in LAYER_FIELDS})
        out[a] = normalise_layer_table(t.reset_index(drop=True))
        if run_dir is not None:
            layer_csv(run_dir, a, size).parent.mkdir(parents=True, exist_ok=True)
            out[a].to_csv(layer_csv(run_dir, a, size), index=False)
    note = f"no per-layer rows (`layers` jobs) for {', '.join(missing)} at {size}" if missing else ""
    return out, note


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

def write_examples(run_dir: Path, df: pd.DataFrame, archs: Optional[Sequence[str]] = None,
                   data_dir: Optional[Path] = None) -> dict:
    """Strip of example predictions (photo, label, each design's mask) -> ``examples.png``, drawn from
    the run's ``examples`` rows (probability maps measured by the jobs; the photos and labels are read
    from the folder the rows name, or ``data_dir``). A design without rows gets an "untrained" cell.
    Writes ``examples.json`` (stems, weights per design, note) and returns it."""
    from archs import list_archs
    from bench.data.samples import load_pair, scan_folder
    from bench.measure.examples import decode_prob

    run_dir = Path(run_dir)
    info: dict[str, Any] = {"image": None, "stems": [], "weights": {}, "note": "", "input_size": None}
    rows = _rows(df, "examples")
    archs = [a for a in (archs or list_archs()) if a in list_archs()]  # the designs (peers: no strip column)
    try:
        if rows.empty:
            raise LookupError("no example rows in this run (`examples` jobs)")
        stems = list(dict.fromkeys(_text(rows, "stem")))
        folder = Path(data_dir) if data_dir else Path(str(rows["example_data"].iloc[0]))
        samples = scan_folder(folder, stems)
        preds: dict[str, dict[str, np.ndarray]] = {}
        for a in archs:
            mine = rows[_text(rows, "arch") == a]
            info["weights"][a] = str(mine["weights"].iloc[0]) if len(mine) else "untrained"
            preds[a] = {str(r["stem"]): r for _, r in mine.iterrows()}
        grid = []
        for s in samples:
            img, lab = load_pair(s)
            grid.append({"stem": s.stem, "image": img, "label": lab,
                         "preds": {a: (decode_prob(preds[a][s.stem]["prob_png_b64"], lab.shape[:2])
                                       if s.stem in preds[a] else None) for a in archs}})
        size = int(pd.to_numeric(rows["input_size"], errors="coerce").dropna().iloc[0])
        from .plots import plot_examples
        path = plot_examples(grid, archs, info["weights"], run_dir / EXAMPLES_PNG, size)
        info.update(image=path.name if path else None, stems=stems, data=str(folder), input_size=size,
                    split=str(rows["example_split"].iloc[0]))
    except Exception as exc:  # the strip is optional: say why it is missing
        info["note"] = f"example predictions skipped: {type(exc).__name__}: {exc}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / EXAMPLES_JSON).write_text(json.dumps(info, indent=2) + "\n")
    return info
