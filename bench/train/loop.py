"""One training recipe for every design: :class:`Recipe` (frozen) and :func:`train`.

(Just over 600 lines because the recipe, its augmentation and the resumable loop are one unit: the
recipe's fields are read in the loop and nowhere else; data, checkpoints and the session around a
run already live in their own modules of bench/train/.)

The recipe (docs/training.md says how it was chosen): random-resized square crops of 35-100 % of the
image area (aspect 3/4..4/3) at ``train_size``, horizontal flip, colour jitter (brightness,
contrast, saturation), and, with probability ``composite_prob``, an AISegment cut-out (an image
with a soft alpha label) pasted onto another training image (label = alpha over the background's
label); loss BCE + Dice on the mask (label > 0.5), plus L1 on the alpha for seg_matting's matting
head; AdamW (no weight decay on biases / norms / PReLU), linear warm-up then cosine decay over the
run's step count; batch 16; validation at ``eval_size`` with :func:`bench.measure.accuracy.evaluate`, per
validation set. Recipe v2 (``portrait-v2``, the defaults) trains on the training splits of eg1800,
ccp-person, hsd and aisegment-40 for a number of epochs; v1 trained on hsd + aisegment-40 for a time.

Data pipeline: the training images are decoded and downscaled once (optionally cached on disk,
content-keyed); each step's batch is :func:`make_batch` of that step, made in DataLoader worker
processes when ``workers`` > 0 (:func:`batch_loader`).

Determinism: the weights are initialised after ``torch.manual_seed(seed)``, the epoch order and
each step's augmentations come from ``numpy.random.default_rng([seed, ...])`` keyed by epoch / step,
so a run is reproducible from (design, recipe, data, step count), and a resumed run continues
exactly where the interrupted one stopped. A time budget (``minutes``) is turned into a step count
after timing steps 5..25 (all inside the warm-up, whose learning rate does not depend on the total),
and the record keeps that count: re-running with ``steps=`` reproduces the run.

:func:`train` writes no files: it reports progress and resumable :class:`TrainState` snapshots
through callbacks and returns the trained model with a :class:`TrainRecord`. Writing checkpoints and
provenance is ``bench/train/checkpoints.py``.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from archs import LOGITS, Preprocess, get_spec

from ..columns import record_row
from ..measure.accuracy import EvalRecord, evaluate
from ..measure.metrics import bootstrap_ci
from ..data.samples import Sample, load_pair

CALIB_STEPS = (5, 25)  # steps timed to turn a time budget into a step count
DEFAULT_STATE_EVERY_S = 600.0  # resumable state between validations, at most this many seconds apart


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a training run except the design, the data folders and the length."""

    name: str = "portrait-v2"
    train_sets: tuple[str, ...] = ("eg1800", "ccp-person", "hsd", "aisegment-40")  # folders of the data dir
    train_splits: tuple[str, ...] = ("train", "train", "train", "train-v2")  # split of each set trained on
    val_split: str = "val"  # split of every set validated on (never a test split)
    train_size: int = 192  # square training crop side
    eval_size: int = 256  # validation input side
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-2  # AdamW, on conv / linear weights only
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 30  # linear warm-up; must cover CALIB_STEPS
    min_lr_frac: float = 0.01  # cosine ends at lr * min_lr_frac
    crop_area: tuple[float, float] = (0.35, 1.0)  # random-resized crop, fraction of the image area
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # crop aspect (w / h) range
    hflip: float = 0.5
    jitter: float = 0.3  # brightness, contrast and saturation factors in [1 - j, 1 + j]
    composite_prob: float = 0.3  # paste an alpha cut-out onto another training image
    composite_height: tuple[float, float] = (0.6, 1.0)  # cut-out height / background height
    bce_weight: float = 1.0
    dice_weight: float = 1.0
    alpha_l1_weight: float = 1.0  # seg_matting's alpha head only
    cache_short_side: int = 384  # training images are kept in memory at most this short side
    evals: int = 4  # validations during the run, evenly spaced (the last at the end)
    val_at_start: bool = False  # also validate the untrained model at step 0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Recipe":
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name in d:
                v = d[f.name]
                kw[f.name] = tuple(v) if isinstance(v, list) else v
        return cls(**kw)


@dataclass(frozen=True)
class TrainProgress:
    step: int  # steps done
    total_steps: Optional[int]  # None while a time budget is being calibrated
    epoch: float
    loss: float  # running mean of the last steps' loss
    lr: float
    seconds: float
    img_per_s: float  # training throughput (validation time excluded)
    val_miou: float  # last validation mIoU (NaN before the first)
    phase: str  # "train" or "val"


@dataclass(frozen=True)
class TrainState:
    """Everything needed to resume: a plain dict of tensors and numbers (``to_dict``)."""

    arch: str
    recipe: dict
    init: str
    step: int
    total_steps: int
    model_state: dict
    optim_state: dict
    curve: tuple
    train_seconds: float
    val_seconds: float
    wall_seconds: float = 0.0  # start-up (data loading) + training + validation, over all resumes

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "curve": list(self.curve)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainState":
        return cls(**{**d, "curve": tuple(d["curve"])})


@dataclass(frozen=True)
class TrainRecord:
    arch: str
    recipe: dict
    init: str  # "scratch", a checkpoint name (e.g. "seed") or a path
    steps: int
    epochs: float
    images_seen: int
    train_seconds: float  # optimisation steps only
    val_seconds: float  # validations during the run
    img_per_s: float
    threads: int
    train_stems: dict  # set -> stems trained on
    val_stems: dict  # set -> stems validated on
    val: dict  # final validation summary (all sets together), see summarize_eval
    val_by_set: dict  # set -> summary
    curve: tuple  # (step, epoch, seconds, train_loss, lr, val_miou, val_miou_by_set, ...) dicts
    wall_seconds: float = 0.0  # data loading + training + validation (all resumes), seconds
    load_seconds: float = 0.0  # reading and downscaling the training images (this process)
    workers: int = 0  # DataLoader worker processes that made the batches (0: in the training process)
    device: str = "cpu"


# ----------------------------------------------------------------------------- data

@dataclass
class _Item:
    image: np.ndarray  # H x W x 3 uint8 RGB
    label: np.ndarray  # H x W uint8, 0..255 (mask or alpha)
    soft: bool  # label is an alpha matte (a cut-out source for compositing)


def _decode_item(sample: Sample, short_side: int) -> tuple[np.ndarray, np.ndarray]:
    img, lab = load_pair(sample)
    h, w = img.shape[:2]
    s = short_side / min(h, w)
    if s < 1:
        size = (max(1, round(w * s)), max(1, round(h * s)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        lab = cv2.resize(lab, size, interpolation=cv2.INTER_AREA)
    return img, np.clip(np.rint(lab * 255), 0, 255).astype(np.uint8)


def item_cache_key(sample: Sample, short_side: int) -> str:
    """Content key of a decoded, downscaled training pair: SHA-256 of both files' bytes, the label
    kind and the short side (a changed file or setting is a new key, never a stale hit)."""
    h = hashlib.sha256()
    for part in (Path(sample.image_path).read_bytes(), Path(sample.label_path).read_bytes(),
                 f"{sample.label_kind}:{short_side}:v1".encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def _cache_item(sample: Sample, short_side: int, cache_dir: Optional[Path] = None) -> _Item:
    """The pair decoded and downscaled to ``short_side``; with ``cache_dir``, read from / written to
    ``<cache_dir>/<content key>.npz`` (uncompressed; about 5x faster than decoding a 600x800 JPEG)."""
    soft = sample.label_kind == "alpha"
    if cache_dir is None:
        return _Item(*_decode_item(sample, short_side), soft)
    path = Path(cache_dir) / f"{item_cache_key(sample, short_side)}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return _Item(z["image"], z["label"], soft)
        except (OSError, ValueError, KeyError):
            pass  # a torn or foreign file: decode again and overwrite it
    img, lab = _decode_item(sample, short_side)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{id(img)}.tmp.npz")
    np.savez(tmp, image=img, label=lab)
    tmp.replace(path)
    return _Item(img, lab, soft)


def _composite(bg: _Item, fg: _Item, rng: np.random.Generator, height: tuple[float, float]
               ) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``fg`` (photo + alpha) onto ``bg`` at the bottom edge; label = alpha over bg label."""
    H, W = bg.image.shape[:2]
    fh, fw = fg.image.shape[:2]
    h = max(8, int(H * rng.uniform(*height)))
    w = max(8, round(fw * h / fh))
    if w > W:
        h, w = max(8, round(h * W / w)), W
    h = min(h, H)
    x0 = int(rng.integers(0, W - w + 1))
    y0 = H - h
    f_img = cv2.resize(fg.image, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    a = cv2.resize(fg.label, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255.0
    img = bg.image.astype(np.float32)
    lab = bg.label.astype(np.float32) / 255.0
    region = img[y0:y0 + h, x0:x0 + w]
    img[y0:y0 + h, x0:x0 + w] = a * f_img + (1 - a) * region
    lab[y0:y0 + h, x0:x0 + w] = a[..., 0] + (1 - a[..., 0]) * lab[y0:y0 + h, x0:x0 + w]
    return img, lab


def _random_crop_box(h: int, w: int, rng: np.random.Generator, area: tuple[float, float],
                     ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """(y, x, ch, cw) of a random-resized crop (torchvision's rule, 10 tries then the whole image)."""
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = h * w * rng.uniform(*area)
        r = math.exp(rng.uniform(*log_r))
        cw, ch = int(round(math.sqrt(target * r))), int(round(math.sqrt(target / r)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    return 0, 0, h, w


def _jitter(img: np.ndarray, rng: np.random.Generator, j: float) -> np.ndarray:
    if j <= 0:
        return img
    b, c, s = rng.uniform(1 - j, 1 + j, size=3)
    img = img * np.float32(b)
    mean = img.mean()
    img = (img - mean) * np.float32(c) + mean
    gray = img @ np.asarray([0.299, 0.587, 0.114], np.float32)
    img = (img - gray[..., None]) * np.float32(s) + gray[..., None]
    return np.clip(img, 0, 255)


def _normalise(img_rgb: np.ndarray, pre: Preprocess) -> np.ndarray:
    """3 x H x W float32 as the network expects (same normalisation as bench.measure.accuracy.to_input)."""
    img = img_rgb[:, :, ::-1] if pre.channel_order == "BGR" else img_rgb
    img = img - np.asarray(pre.mean, np.float32)
    if getattr(pre, "std", None) is not None:
        img = img / np.asarray(pre.std, np.float32)
    img = img / np.float32(pre.scale)
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


def make_example(items: Sequence[_Item], idx: int, rng: np.random.Generator, r: Recipe,
                 pre: Preprocess) -> tuple[np.ndarray, np.ndarray]:
    """One augmented (3 x S x S input, S x S label in [0, 1]) training example of ``items[idx]``."""
    item = items[idx]
    sources = [i for i, it in enumerate(items) if it.soft and i != idx]
    if sources and rng.random() < r.composite_prob:
        fg = items[sources[int(rng.integers(0, len(sources)))]]
        img, lab = _composite(item, fg, rng, r.composite_height)
    else:
        img, lab = item.image.astype(np.float32), item.label.astype(np.float32) / 255.0
    y, x, ch, cw = _random_crop_box(img.shape[0], img.shape[1], rng, r.crop_area, r.crop_ratio)
    S = r.train_size
    img = cv2.resize(img[y:y + ch, x:x + cw], (S, S), interpolation=cv2.INTER_LINEAR)
    lab = cv2.resize(lab[y:y + ch, x:x + cw], (S, S), interpolation=cv2.INTER_LINEAR)
    if rng.random() < r.hflip:
        img, lab = img[:, ::-1], lab[:, ::-1]
    img = _jitter(img, rng, r.jitter)
    return _normalise(img, pre), np.ascontiguousarray(lab, dtype=np.float32)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, 1, epoch]).permutation(n)


class StepBatches(torch.utils.data.Dataset):
    """Map-style dataset whose item ``step`` is :func:`make_batch` of that step, so DataLoader
    worker processes can make the batches (decoding is done once, before; the augmentation runs in
    the workers) and the result does not depend on the number of workers."""

    def __init__(self, items: Sequence[_Item], r: Recipe, pre: Preprocess):
        self.items, self.r, self.pre = items, r, pre

    def __len__(self) -> int:
        return 2 ** 62

    def __getitem__(self, step: int):
        return make_batch(self.items, int(step), self.r, self.pre)


def _worker_init(_worker_id: int) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def batch_loader(items: Sequence[_Item], r: Recipe, pre: Preprocess, start: int, stop: int, workers: int):
    """Batches ``start .. stop - 1`` in order; ``workers`` > 0 makes them in that many processes."""
    kw = dict(num_workers=workers, worker_init_fn=_worker_init, prefetch_factor=4) if workers else {}
    return torch.utils.data.DataLoader(StepBatches(items, r, pre), batch_size=None,
                                       sampler=range(start, stop), **kw)


def make_batch(items: Sequence[_Item], step: int, r: Recipe, pre: Preprocess
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``step`` of the run: epoch order and augmentations depend only on (seed, step)."""
    n = len(items)
    per_epoch = max(1, n // r.batch_size)
    epoch, k = divmod(step, per_epoch)
    order = epoch_order(n, r.seed, epoch)
    idx = [int(order[(k * r.batch_size + i) % n]) for i in range(r.batch_size)]
    rng = np.random.default_rng([r.seed, 2, step])
    xs, ys = zip(*(make_example(items, i, rng, r, pre) for i in idx))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))[:, None]


# ----------------------------------------------------------------------------- loss and schedule

def dice_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice, per image, averaged."""
    dims = (1, 2, 3)
    inter = (prob * target).sum(dims)
    return (1 - (2 * inter + eps) / (prob.sum(dims) + target.sum(dims) + eps)).mean()


def compute_loss(output, label: torch.Tensor, output_kind: str, r: Recipe) -> torch.Tensor:
    """BCE + Dice on the mask (label > 0.5); plus alpha L1 against the soft label for seg_matting."""
    mask = (label > 0.5).float()
    if output_kind == LOGITS:
        logit, alpha = output, None
    else:
        seg, alpha = output
        logit = seg[:, 1:2] - seg[:, 0:1]  # 2-class softmax == sigmoid of the logit difference
    loss = (r.bce_weight * F.binary_cross_entropy_with_logits(logit, mask)
            + r.dice_weight * dice_loss(torch.sigmoid(logit), mask))
    if alpha is not None:
        loss = loss + r.alpha_l1_weight * (alpha - label).abs().mean()
    return loss


def lr_at(r: Recipe, step: int, total: int) -> float:
    """Learning rate of step ``step`` (0-based): linear warm-up, then cosine to lr * min_lr_frac."""
    if step < r.warmup_steps:
        return r.lr * (step + 1) / r.warmup_steps
    span = max(1, total - r.warmup_steps)
    t = min(1.0, (step - r.warmup_steps) / span)
    return r.lr * (r.min_lr_frac + (1 - r.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def make_optimizer(model: nn.Module, r: Recipe) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": r.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=r.lr, betas=r.betas)


FP16_MAX = float(torch.finfo(torch.float16).max)  # 65504


def fits_fp16(t: torch.Tensor) -> bool:
    """Whether a floating tensor survives a round trip through fp16 without becoming inf: all finite
    and at most 65504 in magnitude. A BatchNorm running variance can exceed that (esp_dense_seg's
    did); such a tensor is kept in fp32 by the checkpoint writer."""
    return bool(torch.isfinite(t).all()) and (t.numel() == 0 or float(t.abs().max()) <= FP16_MAX)


def round_to_fp16(model: nn.Module) -> nn.Module:
    """Round every floating parameter and buffer that fits fp16 (:func:`fits_fp16`) to fp16
    precision (kept as fp32), in place, so the model is exactly what the checkpoint of it
    (``bench.train.checkpoints.fp16_state_dict``) loads back to. Tensors outside fp16's range are left as
    they are instead of becoming inf."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point() and fits_fp16(t):
                t.copy_(t.half().float())
    return model


def summarize_eval(rec: EvalRecord) -> dict:
    """Scalar fields of an EvalRecord (no per-image tuples), for records and JSON."""
    return record_row(rec)


# ----------------------------------------------------------------------------- the loop

def _samples_by_set(sets: Mapping[str, Sequence[Sample]]) -> list[Sample]:
    return [s for name in sets for s in sets[name]]


def resolve_device(device: str) -> torch.device:
    """``cpu`` or ``cuda[:N]``; asking for cuda where torch sees no GPU is a clear error."""
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA GPU is available to this torch "
                             f"({torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise ValueError(f"--device {device}: only cpu and cuda are supported")
    return dev


def train(arch: str, recipe: Recipe, train_sets: Mapping[str, Sequence[Sample]],
          val_sets: Mapping[str, Sequence[Sample]], *, steps: Optional[int] = None,
          epochs: Optional[float] = None, minutes: Optional[float] = None,
          init_model: Optional[nn.Module] = None, init: str = "scratch",
          threads: Optional[int] = None, resume: Optional[TrainState] = None,
          workers: int = 0, device: str = "cpu", cache_dir: Optional[Path] = None,
          on_progress: Optional[Callable[[TrainProgress], None]] = None,
          on_state: Optional[Callable[[TrainState], None]] = None,
          state_every_s: float = DEFAULT_STATE_EVERY_S,
          ) -> tuple[nn.Module, TrainRecord]:
    """Train ``arch`` with ``recipe`` for ``steps``, ``epochs`` or ``minutes`` (exactly one, or a
    ``resume`` state). ``init_model`` (e.g. the seed checkpoint, named by ``init``) replaces the
    seeded random initialisation. ``workers`` DataLoader processes make the augmented batches (the
    batches are the same for any number); ``device`` "cuda" trains on a GPU (validation runs on a
    CPU copy); ``cache_dir`` keeps decoded, downscaled training images between runs. Returns the
    final model (on the CPU), rounded to fp16 precision (what its fp16 checkpoint holds) and
    validated, with its record. No early stopping: the last step's weights are the result, so the
    validation images never choose the model. ``on_state`` receives the resumable state at every
    validation and, between them, every ``state_every_s`` seconds of training (a long run that is
    stopped loses at most that much; resuming from any step ends with the same weights)."""
    if resume is None and sum(x is not None for x in (steps, epochs, minutes)) != 1:
        raise ValueError("give exactly one of steps, epochs or minutes")
    if recipe.warmup_steps < CALIB_STEPS[1]:
        raise ValueError(f"warmup_steps must be >= {CALIB_STEPS[1]} (time-budget calibration)")
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    dev = resolve_device(device)
    spec = get_spec(arch)
    pre = spec.preprocess
    if spec.input_multiple and (recipe.train_size % spec.input_multiple or recipe.eval_size % spec.input_multiple):
        raise ValueError(f"{arch}: train_size and eval_size must be multiples of {spec.input_multiple}")
    old_threads, old_cv = torch.get_num_threads(), cv2.getNumThreads()
    if threads:
        torch.set_num_threads(threads)
    cv2.setNumThreads(1)
    try:
        return _train(arch, spec, pre, recipe, train_sets, val_sets, steps, epochs, minutes,
                      init_model, init, resume, on_progress, on_state, workers, dev, cache_dir, state_every_s)
    finally:
        torch.set_num_threads(old_threads)
        cv2.setNumThreads(old_cv)


def _pooled_summary(recs: Mapping[str, EvalRecord]) -> dict:
    """Mean per-image IoU over the images of all validation sets together, with its bootstrap CI
    (a summary for the progress line; the per-set figures are the results)."""
    ious = [v for rec in recs.values() for v in rec.per_image_iou]
    bfs = [v for rec in recs.values() for v in rec.per_image_boundary_f]
    lo, hi = bootstrap_ci(ious)
    return {"miou": float(np.mean(ious)) if ious else float("nan"), "miou_ci_low": lo, "miou_ci_high": hi,
            "boundary_f": float(np.mean(bfs)) if bfs else float("nan"), "n_images": len(ious),
            "sets": list(recs), "pooled": "mean over the images of all sets"}


def _train(arch, spec, pre, r: Recipe, train_sets, val_sets, steps, epochs, minutes, init_model, init,
           resume, on_progress, on_state, workers, dev, cache_dir, state_every_s=DEFAULT_STATE_EVERY_S):
    from ..models.weights import load_model

    wall0 = time.perf_counter()
    if resume is not None:
        if resume.arch != arch or Recipe.from_dict(resume.recipe) != r:
            raise ValueError("resume state was made with another design or recipe")
        init = resume.init
    items = [_cache_item(s, r.cache_short_side, cache_dir) for s in _samples_by_set(train_sets)]
    if not items:
        raise ValueError("no training images")
    load_s = time.perf_counter() - wall0
    val_by_name = {k: list(v) for k, v in val_sets.items() if v}
    per_epoch = max(1, len(items) // r.batch_size)
    if init_model is not None:
        model = init_model
    else:
        model = load_model(arch, "random", seed=r.seed).model
    model.to(dev)
    optim = make_optimizer(model, r)
    curve: list[dict] = []
    start, train_s, val_s, wall_before = 0, 0.0, 0.0, 0.0
    total: Optional[int] = None
    if resume is not None:
        model.load_state_dict(resume.model_state)
        optim.load_state_dict(resume.optim_state)
        start, total = resume.step, resume.total_steps
        curve, train_s, val_s = list(resume.curve), resume.train_seconds, resume.val_seconds
        wall_before = resume.wall_seconds
        if start >= total and curve and curve[-1]["step"] == start:
            curve.pop()  # a finished run: its final validation is done again below
    elif steps is not None:
        total = int(steps)
    elif epochs is not None:
        total = max(1, int(round(epochs * per_epoch)))
    torch.manual_seed(r.seed)

    def wall() -> float:
        return wall_before + time.perf_counter() - wall0

    def report(step, loss, lr, phase):
        if on_progress:
            last = curve[-1]["val_miou"] if curve else float("nan")
            on_progress(TrainProgress(step, total, step / per_epoch, loss, lr, train_s + val_s,
                                      step * r.batch_size / train_s if train_s else 0.0, last, phase))

    def evaluate_sets() -> dict[str, EvalRecord]:
        m = model if dev.type == "cpu" else copy.deepcopy(model).cpu()
        recs = {k: evaluate(m, v, r.eval_size, pre, spec.output_kind) for k, v in val_by_name.items()}
        model.train()
        return recs

    def validate(step, loss_mean, lr):
        nonlocal val_s
        report(step, loss_mean, lr, "val")
        t0 = time.perf_counter()
        recs = evaluate_sets()
        val_s += time.perf_counter() - t0
        pooled = _pooled_summary(recs)
        curve.append({"step": step, "epoch": round(step / per_epoch, 3), "seconds": round(train_s + val_s, 1),
                      "train_loss": loss_mean, "lr": lr, "val_miou": pooled["miou"],
                      "val_miou_ci_low": pooled["miou_ci_low"], "val_miou_ci_high": pooled["miou_ci_high"],
                      "val_boundary_f": pooled["boundary_f"],
                      "val_miou_by_set": {k: rec.miou for k, rec in recs.items()}})
        return recs

    last_state = time.perf_counter()

    def snapshot(step):
        nonlocal last_state
        last_state = time.perf_counter()
        if on_state and total is not None:
            sd = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            on_state(TrainState(arch, r.to_dict(), init, step, total, sd,
                                copy.deepcopy(optim.state_dict()), tuple(curve), train_s, val_s, wall()))

    if start == 0 and val_by_name and r.evals > 0 and r.val_at_start:
        validate(0, float("nan"), 0.0)
    model.train()
    recent: list[float] = []
    since_eval: list[float] = []
    step = start
    calib_t0 = None
    lr = lr_at(r, step, total or 10 ** 9)
    loader = iter(batch_loader(items, r, pre, start, total if total is not None else 10 ** 12, workers))
    while total is None or step < total:
        if total is None and step == CALIB_STEPS[0]:
            calib_t0 = train_s
        if total is None and step == CALIB_STEPS[1]:
            per_step = (train_s - calib_t0) / (CALIB_STEPS[1] - CALIB_STEPS[0])
            first_val = curve[0]["seconds"] if curve else 0.0  # seconds of the step-0 validation
            left = minutes * 60 - (train_s + val_s) - (r.evals + 1) * first_val  # + final per-set
            total = max(step, step + int(left / per_step))
            if step >= total:
                break
        lr = lr_at(r, step, total or 10 ** 9)
        for g in optim.param_groups:
            g["lr"] = lr
        t0 = time.perf_counter()
        x, y = next(loader)
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        loss = compute_loss(model(x), y, spec.output_kind, r)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        lv = float(loss.detach())  # synchronises a GPU step, so train_s is its real time
        train_s += time.perf_counter() - t0
        if not math.isfinite(lv):
            raise FloatingPointError(f"{arch}: loss became {lv} at step {step}")
        recent = (recent + [lv])[-20:]
        since_eval.append(lv)
        step += 1
        report(step, float(np.mean(recent)), lr, "train")
        if total is not None and step < total and r.evals > 0 and val_by_name:
            every = max(1, math.ceil(total / r.evals))
            if step % every == 0:
                validate(step, float(np.mean(since_eval)), lr)
                since_eval = []
                snapshot(step)
        if total is not None and step < total and time.perf_counter() - last_state >= state_every_s:
            snapshot(step)
    del loader  # stops the worker processes
    device_used, dev = str(dev), torch.device("cpu")
    model.cpu()
    round_to_fp16(model)
    final = validate(step, float(np.mean(since_eval)) if since_eval else float("nan"), lr) if val_by_name else {}
    snapshot(step)
    model.eval()
    record = TrainRecord(
        arch=arch, recipe=r.to_dict(), init=init, steps=step, epochs=round(step / per_epoch, 3),
        images_seen=step * r.batch_size, train_seconds=round(train_s, 1), val_seconds=round(val_s, 1),
        img_per_s=round(step * r.batch_size / train_s, 2) if train_s else 0.0,
        threads=torch.get_num_threads(),
        train_stems={k: [s.stem for s in v] for k, v in train_sets.items()},
        val_stems={k: [s.stem for s in v] for k, v in val_sets.items()},
        val=_pooled_summary(final) if final else {},
        val_by_set={k: summarize_eval(rec) for k, rec in final.items()}, curve=tuple(curve),
        wall_seconds=round(wall(), 1), load_seconds=round(load_s, 1), workers=workers, device=device_used)
    return model, record


__all__ = ["Recipe", "TrainProgress", "TrainState", "TrainRecord", "train", "compute_loss", "lr_at",
           "make_batch", "batch_loader", "StepBatches", "item_cache_key", "resolve_device", "round_to_fp16",
           "fits_fp16", "summarize_eval", "CALIB_STEPS"]
