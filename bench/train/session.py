"""One training run from the command line's choices: :class:`TrainRequest` (what the user asked for)
-> :func:`prepare` (recipe, data sets, split files, initial weights, resumable state, budget) ->
:func:`run` (trains, writes the checkpoint and its provenance, returns where they went).

Progress goes to a callback (``on_progress``); nothing is printed here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import torch.nn as nn

from ..cache import cache_folder
from ..data.datasets import open_dataset, split_path
from ..data.samples import Sample
from ..paths import SPLITS_DIR
from ..models.weights import OWN_WEIGHTS, load_model
from .checkpoints import load_state, save_state, state_path, write_trained_checkpoint
from .loop import Recipe, TrainProgress, TrainRecord, TrainState, resolve_device, train

DEFAULT_MINUTES = 30.0  # the budget when neither steps, epochs nor minutes are given


@dataclass(frozen=True)
class TrainRequest:
    """The choices of ``run_bench.py train`` (defaults: the recipe's)."""

    arch: str
    data_dir: Path  # holds the recipe's sets (eg1800/, ccp-person/, hsd/, aisegment-40/)
    splits_dir: Path
    models_dir: Path
    state_dir: Path
    out_dir: Path
    init: str = "scratch"  # scratch, seed, or a state-dict path
    seed: int = 0
    train_size: Optional[int] = None  # None: the recipe's
    name: Optional[str] = None  # None: the design, or <design>-finetuned
    steps: Optional[int] = None
    epochs: Optional[float] = None
    minutes: Optional[float] = None
    resume: bool = False
    threads: Optional[int] = None
    workers: int = 1
    device: str = "cpu"
    cache: bool = True  # keep decoded training images in .cache/train-items

    @property
    def checkpoint_name(self) -> str:
        return self.name or self.arch + OWN_WEIGHTS["trained" if self.init == "scratch" else "finetuned"]

    def recipe(self) -> Recipe:
        return Recipe(seed=self.seed, **({"train_size": self.train_size} if self.train_size else {}))

    def budget(self) -> dict:
        """The run's length as :func:`bench.train.loop.train` takes it (one of steps, epochs, minutes)."""
        if self.steps:
            return {"steps": self.steps}
        if self.epochs:
            return {"epochs": self.epochs}
        return {"minutes": self.minutes or DEFAULT_MINUTES}


@dataclass
class TrainSetup:
    """Everything :func:`run` needs, ready before the first step (so its summary can be shown first)."""

    request: TrainRequest
    recipe: Recipe
    train_sets: Mapping[str, Sequence[Sample]]
    val_sets: Mapping[str, Sequence[Sample]]
    split_files: list[Path]
    init_model: Optional[nn.Module]
    state_file: Path
    resume: Optional[TrainState]
    budget: dict  # empty when resuming: the saved state knows its length

    @property
    def n_train(self) -> int:
        return sum(len(v) for v in self.train_sets.values())

    @property
    def n_val(self) -> int:
        return sum(len(v) for v in self.val_sets.values())


def open_recipe_sets(recipe: Recipe, data_dir: Path, splits_dir: Path = SPLITS_DIR
                     ) -> tuple[dict[str, list[Sample]], dict[str, list[Sample]], list[Path]]:
    """The recipe's data: (training samples per set, read through the recipe's split of each set;
    validation samples per set, its ``val_split``; the split files read). Raises
    :class:`bench.data.samples.DataError` naming a missing folder or split file."""
    data_dir = Path(data_dir)
    sets = list(zip(recipe.train_sets, recipe.train_splits))
    train_sets = {n: open_dataset(data_dir / n, "folder", sp, splits_dir) for n, sp in sets}
    val_sets = {n: open_dataset(data_dir / n, "folder", recipe.val_split, splits_dir) for n, _ in sets}
    split_files = [split_path(n, sp, splits_dir) for n, tr in sets for sp in (tr, recipe.val_split)]
    return train_sets, val_sets, split_files


def prepare(req: TrainRequest) -> TrainSetup:
    """Open the data, the initial weights and (with ``resume``) the saved state. Raises ValueError for
    a device that does not exist, :class:`bench.data.samples.DataError` / FileNotFoundError naming a
    missing file."""
    resolve_device(req.device)
    recipe = req.recipe()
    train_sets, val_sets, split_files = open_recipe_sets(recipe, req.data_dir, req.splits_dir)
    init_model = None if req.init == "scratch" else load_model(req.arch, req.init, req.models_dir).model
    spath = state_path(req.state_dir, req.checkpoint_name)
    resume = load_state(spath) if req.resume else None
    return TrainSetup(req, recipe, train_sets, val_sets, split_files, init_model, spath, resume,
                      {} if resume is not None else req.budget())


def run(setup: TrainSetup, on_progress: Optional[Callable[[TrainProgress], None]] = None
        ) -> tuple[TrainRecord, Path, Path]:
    """Train, save resumable state at every validation, write ``<name>.pt`` and ``<name>.json``.
    Returns the record and the two paths."""
    req = setup.request
    model, rec = train(req.arch, setup.recipe, setup.train_sets, setup.val_sets, init_model=setup.init_model,
                       init=req.init, threads=req.threads, resume=setup.resume, on_progress=on_progress,
                       workers=req.workers, device=req.device,
                       cache_dir=cache_folder("train_items") if req.cache else None,
                       on_state=lambda st: save_state(st, setup.state_file), **setup.budget)
    pt, js = write_trained_checkpoint(model, rec, Path(req.out_dir), req.checkpoint_name, setup.split_files,
                                      Path(req.data_dir))
    return rec, pt, js
