"""What ``run_bench.py --all`` measures: the list of jobs for a run."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from archs import get_spec, list_archs

from ..measure.complexity import sweep_sizes
from .jobs import Job
from ..paths import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR
from .settings import (AccuracySettings, ArmCostSettings, ArmEstimateSettings, DeviceLatencySettings,
                       ExamplesSettings, LatencyRepeatSettings, LatencySettings, LayersSettings, ProfileSettings,
                       SpeedupSettings)
from ..models.weights import planned_weights, trained_checkpoint_path

# the data sets every design and peer is evaluated on, each on its own (never pooled): (folder of the
# data dir, split). eg1800 test (the authors' 264 test images) is the headline; the others are the
# validation sides of the suite's splits (splits/), never trained on.
ACCURACY_SETS = (("eg1800", "test"), ("hsd", "val"), ("ccp-person", "val"), ("aisegment-40", "val"))
HEADLINE_SET = ACCURACY_SETS[0]


@dataclass(frozen=True)
class PlanOptions:
    archs: Optional[Sequence[str]] = None  # None = every registered design
    input_size: int = 256
    data_dir: Path = DEFAULT_DATA_DIR
    models_dir: Path = DEFAULT_MODELS_DIR
    quick: bool = False  # fewer sizes / loops, for CI
    thorough: bool = False  # also the repeatability study, interleaved speed-ups and the latency size sweep
    device: Optional[str] = None  # real ARM device for ncnn latency: adb[:SERIAL] or ssh:user@host[:port]
    peers: bool = True  # also measure the peers (skipped when specific designs are chosen)
    arm: bool = True  # ncnn on aarch64 (emulated parity + instruction counts, device latency)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for the run folder's meta.json (``--resume`` reads the plan back from there)."""
        d = dataclasses.asdict(self)
        d.update(archs=list(self.archs) if self.archs else None, data_dir=str(self.data_dir),
                 models_dir=str(self.models_dir))
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PlanOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("data_dir", "models_dir"):
            if k in kw:
                kw[k] = Path(kw[k])
        if kw.get("archs"):
            kw["archs"] = tuple(kw["archs"])
        return cls(**kw)


def check_plan_options(opt: PlanOptions) -> None:
    """ValueError saying what is wrong with a plan, before anything runs: an unknown design or an
    input side that is not a multiple of a chosen design's (every job of that design would fail)."""
    known = list_archs()
    archs = list(opt.archs) if opt.archs else known
    unknown = [a for a in archs if a not in known]
    if unknown:
        raise ValueError(f"unknown design {unknown[0]!r}; known designs: {', '.join(known)}")
    if opt.input_size <= 0:
        raise ValueError(f"--size {opt.input_size}: the input side must be positive")
    bad = [f"{a} (multiple of {get_spec(a).input_multiple})" for a in archs
           if opt.input_size % get_spec(a).input_multiple]
    if bad:
        raise ValueError(f"--size {opt.input_size} does not fit {', '.join(bad)}; "
                         f"e.g. --size {_common_multiple_near(archs, opt.input_size)} fits every chosen design")


def _common_multiple_near(archs: Sequence[str], size: int) -> int:
    import math

    m = 1
    for a in archs:
        m = math.lcm(m, get_spec(a).input_multiple)
    return max(m, round(size / m) * m)


def resume_conflicts(saved: PlanOptions, archs: Optional[Sequence[str]], size: Optional[int],
                     quick: bool, thorough: bool = False) -> list[str]:
    """What the flags given with ``--resume`` would change in the run's saved plan (each a usage
    error: a resumed run measures the plan it started with)."""
    out = []
    if archs and sorted(archs) != sorted(saved.archs or list_archs()):
        out.append(f"--arch {' '.join(archs)} (the run measures {', '.join(saved.archs or ['every design'])})")
    if size is not None and size != saved.input_size:
        out.append(f"--size {size} (the run measures at {saved.input_size})")
    if quick and not saved.quick:
        out.append("--quick (the run is a full one)")
    if thorough and not saved.thorough:
        out.append("--thorough (the run is a default one)")
    return out


def plan_all(opt: PlanOptions) -> list[Job]:
    archs = list(opt.archs) if opt.archs else list_archs()
    jobs: list[Job] = []
    # profile: paper cost over the resolution sweep (one size, the run's, with --quick)
    for arch in archs:
        multiple = get_spec(arch).input_multiple
        sizes = [opt.input_size] if opt.quick else sorted({*sweep_sizes(multiple), opt.input_size})
        for size in sizes:
            jobs.append(ProfileSettings.given(input_size=size).job(arch))
    # accuracy: eg1800 test (headline) and the validation sides of hsd, ccp-person and aisegment-40, each its own set
    for arch in archs:
        for w in planned_weights(arch):  # published ones, ours (the seed fine-tuned when there)
            jobs.extend(accuracy_jobs(arch, opt, weights=w, input_size=opt.input_size))
    jobs.extend(latency_jobs(archs, opt))
    # a published checkpoint with a reference mIoU on all of HSD (seg_matting's seed: 0.860) is
    # measured the same way, to reproduce it
    for arch in archs if not opt.quick else []:
        for ck in get_spec(arch).checkpoints:
            if ck.reference_miou is not None:
                jobs.append(AccuracySettings.given(weights=ck.name, input_size=opt.input_size,
                                                   dataset="hsd", data_dir=hsd_dir(opt), split="all",
                                                   models_dir=str(opt.models_dir)).job(arch))
    if opt.arm:
        jobs.extend(arm_jobs(archs, opt, {a: opt.input_size for a in archs}))
    jobs.extend(report_jobs(archs, opt))
    if opt.peers and not opt.archs:
        jobs.extend(peer_jobs(opt))
    return jobs


def report_jobs(archs: Sequence[str], opt: PlanOptions) -> list[Job]:
    """What the report draws besides the tables, measured as jobs (the report loads no model): per
    design its per-layer MACs at the run's size, and its predictions on a few HSD validation photos
    with the weights the summary shows (ours where trained, else its first published checkpoint; a
    design with neither gets no example job and an "untrained" cell)."""
    jobs = []
    for arch in archs:
        jobs.append(LayersSettings(input_size=opt.input_size).job(arch))
        weights = _example_weights(arch, opt.models_dir)
        if weights:
            jobs.append(ExamplesSettings(weights=weights, input_size=opt.input_size, data_dir=hsd_dir(opt),
                                         models_dir=str(opt.models_dir)).job(arch))
    return jobs


def _example_weights(arch: str, models_dir: Path) -> Optional[str]:
    if trained_checkpoint_path(arch).is_file():
        return "trained"
    published = _latency_weights(arch, models_dir)
    return None if published == "random" else published


def accuracy_jobs(arch: str, opt: PlanOptions, **settings: Any) -> list[Job]:
    """One accuracy job per set of :data:`ACCURACY_SETS` (``dataset`` is in the job key, the
    ``*_dir`` settings are not)."""
    # the small validation sets run first and the 264-image headline set last, so a run's first rows
    # come as quickly as before (the interrupt test waits for two finished jobs)
    return [AccuracySettings.given(dataset=name, data_dir=str(Path(opt.data_dir) / name), split=split,
                                   models_dir=str(opt.models_dir), **settings).job(arch)
            for name, split in [*ACCURACY_SETS[1:], ACCURACY_SETS[0]]]


def hsd_dir(opt: PlanOptions) -> str:
    return str(Path(opt.data_dir) / "hsd")


def arm_jobs(archs: Sequence[str], opt: PlanOptions, sizes: dict[str, int]) -> list[Job]:
    """Per design: emulated aarch64 parity + instruction count, and latency on the real device
    (a ``skipped: no device`` row without ``--device``)."""
    jobs = []
    for arch in archs:
        w = _latency_weights(arch, opt.models_dir)
        model = dict(input_size=sizes[arch], weights=w, models_dir=str(opt.models_dir))
        jobs.append(ArmCostSettings(**model).job(arch))
        for t in ((1,) if opt.quick else (1, 4)):
            jobs.append(DeviceLatencySettings(device=opt.device or "", threads=t, **model).job(arch))
        jobs.append(arm_estimate_job(arch, sizes[arch]))
    return jobs


def arm_estimate_job(arch: str, size: Optional[int] = None) -> Job:
    """Estimated ms on the calibrated ARM devices (bench.arm.estimate; labelled estimates)."""
    return ArmEstimateSettings(input_size=size or None).job(arch)


def model_arm_jobs(name: str, size: Optional[int] = None, models_dir: Path = DEFAULT_MODELS_DIR,
                   data_dir: Path = DEFAULT_DATA_DIR / "hsd") -> list[Job]:
    """The ARM figures of one model (``run_bench.py arm``), as ``--all`` measures them: a torch model's
    emulated aarch64 ncnn (parity and guest instructions, ``arm_cost``) and its estimated ms; a
    model file converted to ncnn, its estimated ms (parity checked first; native size). ``size``
    defaults to 256 for a design and to a peer's checkpoint size."""
    from ..models.sources import get_source

    if get_source(name).spec.form == "file":
        return [ArmEstimateSettings(models_dir=str(models_dir), data_dir=str(data_dir)).job(name)]
    spec = get_spec(name)
    if size is None:
        size = spec.checkpoints[0].input_size if spec.peer and spec.checkpoints else 256
    opt = PlanOptions(archs=(name,), input_size=size, models_dir=Path(models_dir))
    return [j for j in arm_jobs([name], opt, {name: size}) if j.measurement != "device_latency"]


def peer_jobs(opt: PlanOptions) -> list[Job]:
    """The peers at their native input sizes: SINet / ExtremeC3Net (torch modules: every measurement
    the designs get) and the file peers (MediaPipe selfie on LiteRT, PP-HumanSeg lite on
    onnxruntime and, converted, on ncnn). ``thorough`` adds their accuracy on all of HSD (about a
    minute of a default run's time for figures the report does not show)."""
    from ..backends import BACKENDS
    from ..models.peers import PEERS

    jobs: list[Job] = []
    models = str(opt.models_dir)
    threads = (2,) if opt.quick else (1, 2)
    loops = dict(loops=10, warmup=3) if opt.quick else {}
    torch_peers = [a for a in list_archs(peers=True) if a not in list_archs()]
    for arch in torch_peers:
        spec = get_spec(arch)
        size = spec.checkpoints[0].input_size if spec.checkpoints else opt.input_size
        weights = _latency_weights(arch, opt.models_dir)
        jobs.append(ProfileSettings.given(input_size=size).job(arch))
        jobs.extend(accuracy_jobs(arch, opt, weights=weights, input_size=size))
        if opt.thorough:  # the peers never saw HSD: all 220 photos, beside the validation side's 44
            jobs.append(AccuracySettings.given(weights=weights, input_size=size, dataset="hsd",
                                               data_dir=hsd_dir(opt), split="all", models_dir=models).job(arch))
        for backend in BACKENDS:
            for t in threads:
                jobs.append(LatencySettings(backend=backend, threads=t, input_size=size, weights=weights,
                                            models_dir=models, **loops).job(arch))
        if opt.arm:
            jobs.extend(arm_jobs([arch], opt, {arch: size})[:1])  # cost + parity; no device rows
            jobs.append(arm_estimate_job(arch, size))
    for name, peer in sorted(PEERS.items()):
        jobs.append(ProfileSettings.given(models_dir=models).job(name))
        jobs.extend(accuracy_jobs(name, opt))
        if opt.thorough:
            jobs.append(AccuracySettings.given(dataset="hsd", data_dir=hsd_dir(opt), split="all",
                                               models_dir=models).job(name))
        backends = [peer.runtime] + (["ncnn"] if peer.runtime == "onnxruntime" else [])
        if opt.arm and peer.runtime == "onnxruntime":  # converted to ncnn (parity checked first)
            jobs.append(ArmEstimateSettings(models_dir=models, data_dir=hsd_dir(opt)).job(name))
        for backend in backends:
            for t in threads:
                jobs.append(LatencySettings.given(backend=backend, threads=t, models_dir=models,
                                                  **loops).job(name))
    return jobs


def _latency_weights(arch: str, models_dir: Path) -> str:
    """The design's first published checkpoint when its file is there (parity on real weights),
    else random weights (latency does not depend on the values)."""
    spec = get_spec(arch)
    if spec.checkpoints and (Path(models_dir) / spec.checkpoints[0].relpath).is_file():
        return spec.checkpoints[0].name
    return "random"


def latency_jobs(archs: Sequence[str], opt: PlanOptions) -> list[Job]:
    """Every design on every backend at 1..cores threads (powers of two) at the run's size.
    ``thorough`` adds the repeatability of torch and ncnn at those thread counts (each measurement
    redone in ``DEFAULT_REPEATS`` fresh processes), the ncnn speed-up over PyTorch timed interleaved
    at those thread counts, and the size sweep at 2 threads on torch and ncnn (together about two
    thirds of a thorough run's time). ``quick``: 2 threads, 10 loops, nothing of the thorough part."""
    from ..backends import BACKENDS
    from ..measure.latency import DEFAULT_LOOPS, DEFAULT_REPEATS, DEFAULT_WARMUP, default_thread_counts

    if opt.quick:
        thread_counts, loops, warmup = (min(2, default_thread_counts()[-1]),), 10, 3
    else:
        thread_counts, loops, warmup = default_thread_counts(), DEFAULT_LOOPS, DEFAULT_WARMUP
    sweep_threads = min(2, default_thread_counts()[-1])
    jobs = []
    for arch in archs:
        common = dict(weights=_latency_weights(arch, opt.models_dir), loops=loops, warmup=warmup,
                      models_dir=str(opt.models_dir))
        for backend in BACKENDS:
            for t in thread_counts:
                jobs.append(LatencySettings(backend=backend, threads=t, input_size=opt.input_size, **common).job(arch))
        if opt.quick or not opt.thorough:
            continue
        for backend in ("torch", "ncnn"):
            for t in thread_counts:
                jobs.append(LatencyRepeatSettings(backend=backend, threads=t, input_size=opt.input_size,
                                                  runs=DEFAULT_REPEATS, **common).job(arch))
        for t in thread_counts:  # the ncnn speed-up, timed interleaved with PyTorch (drift cancels)
            jobs.append(SpeedupSettings.given(backend="ncnn", threads=t, input_size=opt.input_size,
                                              weights=common["weights"], models_dir=common["models_dir"]).job(arch))
        for size in sweep_sizes(get_spec(arch).input_multiple):
            if size == opt.input_size:
                continue
            for backend in ("torch", "ncnn"):
                jobs.append(LatencySettings(backend=backend, threads=sweep_threads, input_size=size, **common).job(arch))
    return jobs
