"""A declared matrix of measurements (designs x input sizes x threads x backends, and training seeds
x recipe variants) expanded into independent jobs, and the ``train`` measurement it needs.

A matrix is a TOML file (``run_bench.py sweep MATRIX.toml``; example: ``bench/sweeps/example.toml``)::

    archs = ["esp_dense_seg", "residualdense_bisenet"]
    measurements = ["profile", "latency", "train"]
    sizes = [224, 256]
    threads = [1, 2]
    backends = ["torch", "ncnn"]
    seeds = [0, 1, 2]          # train: one job per seed (and recipe variant)
    train_steps = 300

    [recipes.default]          # train: recipe variants, each a set of bench.train.Recipe fields
    [recipes.crop160]          # (without a [recipes] table: the default recipe alone)
    train_size = 160

Training several seeds of one design and recipe gives the seed-to-seed spread of its validation
accuracy (:func:`seed_spread`), which the sweep report shows beside the bootstrap CI of one run.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .. import columns as C
from .jobs import Job, measurement
from ..paths import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR
from .settings import (DEFAULT_RECIPE, ArmCostSettings, LatencySettings, ProfileSettings, SpeedupSettings,
                       TrainSettings)
from ..models.sources import get_source, list_sources

SWEEP_MEASUREMENTS = ("profile", "latency", "speedup", "arm_cost", "train")


class SweepError(ValueError):
    """A matrix that cannot be expanded; the message names the file and the field."""


@dataclass(frozen=True)
class SweepMatrix:
    archs: tuple[str, ...]
    measurements: tuple[str, ...] = ("profile", "latency")
    sizes: tuple[int, ...] = (256,)
    threads: tuple[int, ...] = (1,)
    backends: tuple[str, ...] = ("torch", "ncnn")
    seeds: tuple[int, ...] = (0,)
    train_steps: int = 300
    train_threads: int = 1  # per training job: bit-identical results need the same count
    recipes: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {DEFAULT_RECIPE: {}})
    loops: int = 30
    warmup: int = 10
    data_dir: str = str(DEFAULT_DATA_DIR)
    models_dir: str = str(DEFAULT_MODELS_DIR)


def load_matrix(path: Path) -> SweepMatrix:
    """Read and check a matrix file; every problem is a :class:`SweepError` naming the file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SweepError(f"{path}: cannot read the sweep matrix ({exc})") from exc
    known = {f.name for f in fields(SweepMatrix)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SweepError(f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if "archs" not in raw:
        raise SweepError(f"{path}: 'archs' is required (the designs to sweep)")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    if "recipes" in raw and not raw["recipes"]:
        raise SweepError(f"{path}: 'recipes' is empty; leave it out to train with the default recipe")
    try:
        matrix = SweepMatrix(**kw)
        check_matrix(matrix)
    except (TypeError, ValueError) as exc:
        raise SweepError(f"{path}: {exc}") from exc
    return matrix


def check_matrix(m: SweepMatrix) -> None:
    """Raise ValueError for a matrix that would give failing jobs for a reason known now."""
    from ..backends.table import TABLE
    from ..train.loop import Recipe

    known = list_sources()
    for a in m.archs:
        if a not in known:
            raise ValueError(f"unknown design {a!r}; known: {', '.join(known)}")
    for name in m.measurements:
        if name not in SWEEP_MEASUREMENTS:
            raise ValueError(f"measurement {name!r} cannot be swept; choose from {', '.join(SWEEP_MEASUREMENTS)}")
    for b in m.backends:
        if b not in TABLE:
            raise ValueError(f"unknown backend {b!r}; known: {', '.join(TABLE)}")
    for t in (*m.threads, m.train_threads):
        if not isinstance(t, int) or t < 1:
            raise ValueError(f"threads must be whole numbers >= 1, got {t!r}")
    for a in m.archs:
        multiple = get_source(a).spec.input_multiple  # None: a model file at its one native size
        for s in m.sizes:
            if not isinstance(s, int) or s <= 0 or (multiple and s % multiple):
                raise ValueError(f"size {s!r} is not a positive multiple of {multiple} ({a})")
    if "train" in m.measurements:
        files = [a for a in m.archs if get_source(a).spec.form != "torch"]
        if files:
            raise ValueError(f"train needs a network defined in archs/; {', '.join(files)} is a model file")
    if m.loops < 2 or m.warmup < 0 or m.train_steps < 1:
        raise ValueError("loops must be >= 2, warmup >= 0 and train_steps >= 1")
    recipe_fields = {f.name for f in fields(Recipe)} - {"seed"}
    for name, over in m.recipes.items():
        bad = sorted(set(over) - recipe_fields)
        if bad:
            raise ValueError(f"recipe variant {name!r}: unknown Recipe field(s) {', '.join(bad)}")


def expand(m: SweepMatrix) -> list[Job]:
    """The jobs of a matrix, in a stable order (designs outermost)."""
    jobs: list[Job] = []
    models = dict(models_dir=m.models_dir)
    for arch in m.archs:
        for size in m.sizes:
            if "profile" in m.measurements:
                jobs.append(ProfileSettings.given(input_size=size).job(arch))
            if "arm_cost" in m.measurements:
                jobs.append(ArmCostSettings(input_size=size, weights="random", **models).job(arch))
            for t in m.threads:
                if "latency" in m.measurements:
                    for b in m.backends:
                        jobs.append(LatencySettings.given(backend=b, threads=t, input_size=size, weights="random",
                                                          loops=m.loops, warmup=m.warmup, **models).job(arch))
                if "speedup" in m.measurements:
                    for b in (b for b in m.backends if b != "torch"):
                        jobs.append(SpeedupSettings.given(backend=b, threads=t, input_size=size,
                                                          weights="random", **models).job(arch))
        if "train" in m.measurements:
            for recipe, over in m.recipes.items():
                for seed in m.seeds:
                    jobs.append(TrainSettings(seed=seed, steps=m.train_steps, recipe=recipe,
                                              recipe_overrides=tuple(sorted(over.items())),
                                              threads=m.train_threads, data_dir=m.data_dir).job(arch))
    return jobs


@measurement("train")
def train_job(job: Job) -> list[dict]:
    """Train a design from scratch with the suite's recipe (plus the job's overrides and seed) for
    ``steps`` and validate it: one row with the validation mIoU, its bootstrap CI, and the cost.
    The weights are not kept (a sweep measures the recipe; ``run_bench.py train`` makes checkpoints).
    Settings: seed, steps, recipe (variant name), recipe_overrides, threads, data_dir."""
    from ..train.loop import Recipe, train
    from ..train.session import open_recipe_sets

    s = TrainSettings.of(job)
    recipe = Recipe(**{**s.overrides, "seed": s.seed})
    # the recipe's own split of each set, as `run_bench.py train` reads them
    train_sets, val_sets, _ = open_recipe_sets(recipe, Path(s.data_dir))
    _, rec = train(job.arch, recipe, train_sets, val_sets, steps=s.steps, threads=s.threads)
    v = rec.val
    losses = [c["train_loss"] for c in rec.curve if c.get("train_loss") is not None]
    return [{"recipe_name": recipe.name, C.TRAIN_STEPS: rec.steps, "train_epochs": rec.epochs,
             "train_loss_final": losses[-1] if losses else None,
             C.TRAIN_SECONDS: rec.train_seconds, "train_img_per_s": rec.img_per_s,
             C.VAL_MIOU: v.get(C.MIOU), C.VAL_MIOU_CI_LOW: v.get(C.MIOU_CI_LOW),
             C.VAL_MIOU_CI_HIGH: v.get(C.MIOU_CI_HIGH), "val_images": v.get(C.N_IMAGES)}]


def seed_spread(rows: pd.DataFrame) -> pd.DataFrame:
    """Per design and recipe variant over the ok ``train`` rows: how many seeds, the mean, standard
    deviation and range of the validation mIoU across seeds, and the mean half-width of one run's
    bootstrap CI, so the two kinds of uncertainty stand side by side."""
    cols = ["arch", "recipe", "seeds", "val_miou_mean", "val_miou_sd_seeds", "val_miou_min", "val_miou_max",
            "ci_half_width_mean"]
    if rows.empty or "measurement" not in rows:
        return pd.DataFrame(columns=cols)
    t = rows[(rows["measurement"] == "train") & (rows["status"] == "ok")]
    out = []
    for (arch, recipe), g in t.groupby(["arch", "recipe"], sort=True):
        m = g[C.VAL_MIOU].astype(float)
        half = ((g[C.VAL_MIOU_CI_HIGH].astype(float) - g[C.VAL_MIOU_CI_LOW].astype(float)) / 2).mean()
        out.append({"arch": arch, "recipe": recipe, "seeds": int(m.count()), "val_miou_mean": m.mean(),
                    "val_miou_sd_seeds": m.std(ddof=1) if m.count() > 1 else math.nan,
                    "val_miou_min": m.min(), "val_miou_max": m.max(), "ci_half_width_mean": half})
    return pd.DataFrame(out, columns=cols)


__all__ = ["SweepMatrix", "SweepError", "load_matrix", "check_matrix", "expand", "seed_spread", "train_job"]
