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
    """Paper cost (bench.complexity.profile_model) at ``input_size``, next to the reference numbers
    of ARCHITECTURES.md. Settings: input_size (default 256); ncnn_bin (optional path of the design's
    ncnn .bin, fills size_mb_ncnn_bin). ``macs_rel_diff`` is only given at the reference size."""
    from .complexity import profile_model

    spec = get_spec(job.arch)
    size = int(job.get("input_size", 256))
    if size % spec.input_multiple:
        raise Skip(f"input side {size} is not a multiple of {spec.input_multiple}")
    lm = load_model(job.arch, "random")
    rec = profile_model(lm.model, size, ncnn_bin=job.get("ncnn_bin"))
    row = dataclasses.asdict(rec)
    row.update(
        input_size=size, ref_params=spec.ref_params, params_rel_diff=rec.params / spec.ref_params - 1,
        ref_macs_g=spec.ref_macs_g, ref_macs_size=spec.ref_macs_size,
        macs_rel_diff=rec.macs_g / spec.ref_macs_g - 1 if size == spec.ref_macs_size else None,
    )
    return [row]


@measurement("accuracy")
def accuracy_job(job: Job) -> list[dict]:
    """Settings: weights, input_size, data_dir, models_dir, and optionally layout ("auto", see
    bench.datasets) and split (e.g. "val": only the validation stems listed in splits/; default:
    the layout's default, the whole folder for the shared format)."""
    from .accuracy import evaluate
    from .datasets import detect_layout, layout_splits, open_dataset

    weights = job.get("weights", "random")
    if weights == "trained" and not trained_checkpoint_path(job.arch).is_file():
        raise Skip(f"no trained checkpoint checkpoints/{job.arch}.pt")
    data_dir = Path(job.get("data_dir", DEFAULT_DATA_DIR / "hsd"))
    layout = job.get("layout", "auto")
    layout = detect_layout(data_dir) if layout == "auto" else layout
    split = job.get("split") or layout_splits(layout)[0]
    samples = open_dataset(data_dir, layout, split)
    lm = load_model(job.arch, weights, Path(job.get("models_dir", DEFAULT_MODELS_DIR)))
    size = int(job.get("input_size", 256))
    rec = evaluate(lm.model, samples, size, lm.preprocess, lm.spec.output_kind)
    row = {k: v for k, v in dataclasses.asdict(rec).items() if not isinstance(v, tuple)}
    row.update(weights=weights, dataset=data_dir.name, layout=layout, split=split)
    return [row]


@measurement("latency")
def latency_job(job: Job) -> list[dict]:
    """Latency of one design on one backend (protocol in ``bench/latency.py``). Settings: backend
    (torch, ncnn, onnxruntime), threads, input_size, loops, warmup, weights, models_dir, data_dir
    (the folder of the fixed parity input), attempts and quiet_wait_s (quiet gate). A missing backend package is a ``skipped`` row; a
    parity failure an ``error: parity ...`` row with NaN latencies."""
    from .backends import BackendUnavailable, backend_missing
    from .latency import DEFAULT_LOOPS, DEFAULT_WARMUP, measure_latency, record_row

    backend = job.get("backend", "torch")
    why = backend_missing(backend)  # ValueError for an unknown backend: an error row
    if why:
        raise Skip(why)
    spec = get_spec(job.arch)
    size = int(job.get("input_size", 256))
    if size % spec.input_multiple:
        raise Skip(f"input side {size} is not a multiple of {spec.input_multiple}")
    data_dir = job.get("data_dir")
    try:
        rec = measure_latency(job.arch, backend, threads=int(job.get("threads", 1)), input_size=size,
                              loops=int(job.get("loops", DEFAULT_LOOPS)),
                              warmup=int(job.get("warmup", DEFAULT_WARMUP)),
                              weights=job.get("weights", "random"),
                              models_dir=Path(job.get("models_dir", DEFAULT_MODELS_DIR)),
                              data_dir=Path(data_dir) if data_dir else None,
                              **{k: job.get(k) for k in ("attempts", "quiet_wait_s") if job.get(k) is not None})
    except BackendUnavailable as exc:
        raise Skip(str(exc)) from None
    return [record_row(rec)]


__all__ = ["profile_job", "accuracy_job", "latency_job", "WeightsError"]
