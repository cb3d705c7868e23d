"""Per-layer MAC shares and the strip of example predictions: the two parts of the report that load
models (they compute while rendering; the per-layer tables are saved in the run folder and reused)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

EXAMPLES_PNG, EXAMPLES_JSON = "examples.png", "examples.json"


def layer_csv(run_dir: Path, arch: str, size: int) -> Path:
    return Path(run_dir) / "layers" / f"{arch}_{size}.csv"


def layer_shares(archs: Sequence[str], size: int, run_dir: Optional[Path] = None,
                 progress: Optional[Callable[[str], None]] = None) -> tuple[dict[str, pd.DataFrame], str]:
    """Per design, its per-layer MACs (columns layer, type, macs, share, then the rest of
    ``bench.measure.complexity.layer_table``) and a note ('' when all went well). Tables already saved in
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

