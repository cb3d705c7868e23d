"""Files of a training run: the trained checkpoint with its provenance, and resumable state (written
here, in bench/, because they are model files, not rendered results; like bench.cache they are
written complete or not at all).

- ``<out>/<name>.pt``: fp16 state dict (``torch.save`` of a plain dict; ``bench.models.weights`` loads it
  with ``weights_only=True`` and converts floating tensors to fp32); a tensor beyond fp16's range
  (a BatchNorm running variance above 65504) is stored fp32 and named in the provenance. ``train`` already rounded the
  model to fp16, so the validation metrics in the provenance are those of exactly these weights.
- ``<out>/<name>.json``: provenance: recipe, init, step count, split files and their SHA-256, data
  folder, commit, machine and library versions, training time, throughput, the validation metrics
  measured right after training (all sets together and per set), the learning curve, the stems
  trained and validated on, and the command that reproduces the run.
- ``<state_dir>/<name>.state.pt``: :class:`bench.train.loop.TrainState` for ``--resume`` (written
  atomically at every validation; not meant for the repository).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn as nn

from ..data.datasets import split_files_sha256
from ..run.runinfo import run_meta
from .loop import TrainRecord, TrainState, fits_fp16
from ..models.weights import OWN_WEIGHTS, own_checkpoint_path, sha256_file


def _clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def fp16_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict in fp16, except floating tensors outside fp16's range (see
    :func:`bench.train.loop.fits_fp16`, e.g. a BatchNorm running variance above 65504), kept fp32."""
    return {k: (v.detach().half() if v.is_floating_point() and fits_fp16(v) else v.detach()).clone()
            for k, v in model.state_dict().items()}


def reproduce_command(rec: TrainRecord, name: str) -> str:
    cmd = f"python run_bench.py train --arch {rec.arch} --steps {rec.steps} --seed {rec.recipe['seed']}"
    if rec.recipe.get("train_size") != 192:
        cmd += f" --train-size {rec.recipe['train_size']}"
    if rec.init != "scratch":
        cmd += f" --init {rec.init}"
    if name != rec.arch:
        cmd += f" --name {name}"
    return cmd + f" --threads {rec.threads}"  # bit-identical results need the same thread count


def write_trained_checkpoint(model: nn.Module, rec: TrainRecord, out_dir: Path, name: str,
                             split_files: Sequence[Path], data_dir: Optional[Path] = None) -> tuple[Path, Path]:
    """Write ``<name>.pt`` (fp16 state dict) and ``<name>.json`` (provenance); returns both paths."""
    out_dir = Path(out_dir)
    pt, js = out_dir / f"{name}.pt", out_dir / f"{name}.json"
    _atomic_save(fp16_state_dict(model), pt)
    meta = run_meta()
    prov = {
        "arch": rec.arch,
        "checkpoint": {"file": pt.name, "sha256": sha256_file(pt), "format": "fp16 state dict",
                       "fp32_tensors": [k for k, v in model.state_dict().items()
                                        if v.is_floating_point() and not fits_fp16(v)],
                       "bytes": pt.stat().st_size},
        "init": rec.init,
        "recipe": rec.recipe,
        "steps": rec.steps, "epochs": rec.epochs, "images_seen": rec.images_seen,
        "train_seconds": rec.train_seconds, "val_seconds": rec.val_seconds,
        "img_per_s": rec.img_per_s, "threads": rec.threads,
        "wall_seconds": rec.wall_seconds, "load_seconds": rec.load_seconds,
        "workers": rec.workers, "device": rec.device,
        "splits": {"sha256": split_files_sha256(split_files),
                   "files": {Path(p).name: sha256_file(Path(p)) for p in split_files}},
        "data_dir": str(data_dir) if data_dir else None,
        "validation": {"input_size": rec.recipe["eval_size"], "all": rec.val, "by_set": rec.val_by_set},
        "curve": list(rec.curve),
        "train_stems": rec.train_stems, "val_stems": rec.val_stems,
        "reproduce": reproduce_command(rec, name),
        "date": meta["date"], "commit": meta["commit"], "dirty": meta["dirty"],
        "machine": meta["machine"], "versions": {k: meta["versions"].get(k) for k in ("python", "torch", "numpy")},
    }
    js.write_text(json.dumps(_clean(prov), indent=1) + "\n")
    return pt, js


def state_path(state_dir: Path, name: str) -> Path:
    return Path(state_dir) / f"{name}.state.pt"


def save_state(state: TrainState, path: Path) -> None:
    _atomic_save(state.to_dict(), Path(path))


def load_state(path: Path) -> TrainState:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training state to resume")
    return TrainState.from_dict(torch.load(path, map_location="cpu", weights_only=True))


def provenance_of(arch: str, weights: str) -> Optional[Path]:
    """The provenance JSON of trained weights: ``checkpoints/<arch>.json`` for ``trained`` (and
    ``<arch>-finetuned.json`` for ``finetuned``), the .json beside a .pt path; None for other weights
    (random, a published checkpoint)."""
    if weights in OWN_WEIGHTS:
        return own_checkpoint_path(arch, weights).with_suffix(".json")
    if weights.endswith(".pt"):
        return Path(weights).with_suffix(".json")
    return None


def add_test_result(js: Path, key: str, row: dict) -> None:
    """Record an evaluation of the finished checkpoint on a test split (e.g. ``"eg1800/test"``) in its
    provenance under ``"test"``: measured after training, never used by it. ``row`` is the
    accuracy row (``eval --json``) without per-image data."""
    js = Path(js)
    prov = json.loads(js.read_text())
    keep = {k: v for k, v in row.items() if not isinstance(v, (list, tuple)) or k == "input_size"}
    prov.setdefault("test", {})[key] = keep
    js.write_text(json.dumps(_clean(prov), indent=1) + "\n")


SEED_SPREAD_FILE = "seed_spread.json"  # in checkpoints/: measured training-seed spreads (docs/training.md)


@dataclass(frozen=True)
class SeedSpread:
    """How much one design's mIoU moves between training seeds at one budget, on one set."""

    arch: str
    epochs: int
    dataset: str
    split: str
    sd: float  # standard deviation over the seeds
    n_seeds: int


def seed_spreads(checkpoints_dir: Optional[Path] = None, epochs: int = 64) -> dict[str, SeedSpread]:
    """The measured training-seed spreads at ``epochs`` (recipe v2's budget by default) from
    ``checkpoints/seed_spread.json``, by design; {} when none are recorded."""
    from ..paths import CHECKPOINTS_DIR
    path = Path(checkpoints_dir or CHECKPOINTS_DIR) / SEED_SPREAD_FILE
    if not path.is_file():
        return {}
    d = json.loads(path.read_text())
    designs = d.get("budgets", {}).get(str(epochs), {}).get("designs", {})
    return {a: SeedSpread(a, epochs, d["dataset"], d["split"], float(v["sd"]), len(v["miou_by_seed"]))
            for a, v in designs.items() if len(v.get("miou_by_seed", {})) >= 2}
