"""Job adapters: each turns a :class:`~bench.jobs.Job` into result rows by calling the pure
measurement functions of ``bench/``. Importing this module registers them."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from archs import get_spec

from .jobs import Job, Skip, measurement
from .weights import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR, WeightsError, load_model, trained_checkpoint_path


def count_params(model) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


@measurement("profile")
def profile_job(job: Job) -> list[dict]:
    spec = get_spec(job.arch)
    size = int(job.get("input_size", 256))
    lm = load_model(job.arch, "random")
    total, trainable = count_params(lm.model)
    return [{"params": total, "params_trainable": trainable, "ref_params": spec.ref_params,
             "input_size": size}]


@measurement("accuracy")
def accuracy_job(job: Job) -> list[dict]:
    from .accuracy import evaluate
    from .data import scan_folder

    weights = job.get("weights", "random")
    if weights == "trained" and not trained_checkpoint_path(job.arch).is_file():
        raise Skip(f"no trained checkpoint checkpoints/{job.arch}.pt")
    data_dir = Path(job.get("data_dir", DEFAULT_DATA_DIR / "hsd"))
    lm = load_model(job.arch, weights, Path(job.get("models_dir", DEFAULT_MODELS_DIR)))
    size = int(job.get("input_size", 256))
    rec = evaluate(lm.model, scan_folder(data_dir), size, lm.preprocess, lm.spec.output_kind)
    row = {k: v for k, v in dataclasses.asdict(rec).items() if k not in ("per_image_iou", "stems")}
    row.update(weights=weights, dataset=data_dir.name)
    return [row]


__all__ = ["profile_job", "accuracy_job", "WeightsError"]
