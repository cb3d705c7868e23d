"""What ``run_bench.py --all`` measures: the list of jobs for a run."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from archs import list_archs

from .jobs import Job
from .weights import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR


@dataclass(frozen=True)
class PlanOptions:
    archs: Optional[Sequence[str]] = None  # None = every registered design
    input_size: int = 256
    data_dir: Path = DEFAULT_DATA_DIR
    models_dir: Path = DEFAULT_MODELS_DIR
    quick: bool = False  # fewer sizes / loops, for CI


def plan_all(opt: PlanOptions) -> list[Job]:
    archs = list(opt.archs) if opt.archs else list_archs()
    jobs: list[Job] = []
    for arch in archs:
        jobs.append(Job.make("profile", arch, input_size=opt.input_size))
    hsd = str(Path(opt.data_dir) / "hsd")
    for arch in archs:
        if arch == "seg_matting":
            jobs.append(Job.make("accuracy", arch, weights="seed", input_size=opt.input_size,
                                 data_dir=hsd, models_dir=str(opt.models_dir)))
        jobs.append(Job.make("accuracy", arch, weights="trained", input_size=opt.input_size,
                             data_dir=hsd, models_dir=str(opt.models_dir)))
    return jobs
