"""Typed settings of the measurements: one frozen dataclass per measurement holds its
settings and their defaults (in one place); :meth:`TimingSettings.of` reads a job's settings into it
(an unknown setting is an error naming it, not silently ignored) and :meth:`TimingSettings.job`
makes the job, whose key follows from the fields set.

``profile``, ``accuracy``, ``latency`` and ``speedup`` are typed so far; the others (``arm_cost``,
``device_latency``, ``arm_estimate``, ``latency_repeat``, ``train``) still read ``job.get``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Optional

from .jobs import Job
from .measure.latency import (DEFAULT_LOOPS, DEFAULT_ROUND_LOOPS, DEFAULT_ROUND_WARMUP, DEFAULT_ROUNDS,
                              DEFAULT_WARMUP)
from .paths import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR

_INTS = {"threads", "input_size", "loops", "warmup", "attempts", "repeat", "rounds"}
_FLOATS = {"quiet_wait_s"}


@dataclass(frozen=True)
class Settings:
    """A measurement's settings; subclasses declare the fields and their defaults."""

    measurement: ClassVar[str] = ""

    @classmethod
    def of(cls, job: Job) -> "Settings":
        """The job's settings; ValueError naming any setting this measurement does not have."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(k for k, _ in job.settings if k not in names)
        if unknown:
            raise ValueError(f"{job.measurement}: unknown setting(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(names))}")
        return cls(**{k: _typed(k, v) for k, v in job.settings})

    def job(self, arch: str) -> Job:
        """The job measuring ``arch`` with these settings (the fields set, ``None`` left out)."""
        return Job.make(self.measurement, arch, **{k: v for k, v in asdict(self).items() if v is not None})

    @property
    def models_path(self) -> Path:
        return Path(getattr(self, "models_dir"))


@dataclass(frozen=True)
class ProfileSettings(Settings):
    """``profile``: the cost at ``input_size`` (torch models; a model file has its own size)."""

    measurement: ClassVar[str] = "profile"
    input_size: int = 256
    models_dir: str = str(DEFAULT_MODELS_DIR)  # model files
    ncnn_bin: Optional[str] = None  # the design's ncnn .bin, to fill size_mb_ncnn_bin


@dataclass(frozen=True)
class AccuracySettings(Settings):
    """``accuracy``: ``weights`` on the ``split`` of a data folder, at ``input_size``."""

    measurement: ClassVar[str] = "accuracy"
    weights: str = "random"
    input_size: int = 256  # torch models; a model file runs at its native size
    data_dir: str = str(DEFAULT_DATA_DIR / "hsd")
    dataset: Optional[str] = None  # the data folder's name, for the job key (``*_dir`` settings are not in it)
    layout: str = "auto"  # see bench.data.datasets
    split: Optional[str] = None  # None: the layout's default (the whole folder for the shared format)
    models_dir: str = str(DEFAULT_MODELS_DIR)
    threads: Optional[int] = None  # model files; None: 2
    backend: Optional[str] = None  # model files; None: its own runtime


@dataclass(frozen=True)
class TimingSettings(Settings):
    """What every timing shares. ``None`` means "the model's or the protocol's own default"."""

    backend: Optional[str] = None  # None: the model's reference backend (latency); speedup: ncnn
    threads: Optional[int] = None  # None: 1 for a torch model, 2 for a model file (its published setting)
    input_size: int = 256  # torch models; a model file runs at its native size
    weights: str = "random"
    models_dir: str = str(DEFAULT_MODELS_DIR)
    data_dir: Optional[str] = None  # the fixed input's folder (None: shared/data/hsd)
    attempts: Optional[int] = None  # None: the quiet gate's default (bench.measure.latency)
    quiet_wait_s: Optional[float] = None
    repeat: Optional[int] = None  # the gate's round number: only tells otherwise equal jobs apart

    def threads_for(self, form: str) -> int:
        return int(self.threads) if self.threads is not None else (2 if form == "file" else 1)

    @property
    def data_path(self) -> Optional[Path]:
        return Path(self.data_dir) if self.data_dir else None

    def quiet_gate(self) -> dict[str, Any]:
        """``attempts`` / ``quiet_wait_s`` when set (else the timing functions' defaults apply)."""
        return {k: getattr(self, k) for k in ("attempts", "quiet_wait_s") if getattr(self, k) is not None}


@dataclass(frozen=True)
class LatencySettings(TimingSettings):
    """``latency``: ``warmup`` untimed then ``loops`` timed iterations (docs/latency.md)."""

    measurement: ClassVar[str] = "latency"
    loops: int = DEFAULT_LOOPS
    warmup: int = DEFAULT_WARMUP


@dataclass(frozen=True)
class SpeedupSettings(TimingSettings):
    """``speedup``: ``rounds`` interleaved rounds of ``warmup`` + ``loops`` per backend (docs/latency.md)."""

    measurement: ClassVar[str] = "speedup"
    rounds: int = DEFAULT_ROUNDS
    loops: int = DEFAULT_ROUND_LOOPS
    warmup: int = DEFAULT_ROUND_WARMUP


def _typed(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _INTS:
        return int(value)
    if name in _FLOATS:
        return float(value)
    return str(value) if name.endswith("_dir") else value
