"""Typed settings of the measurements: one frozen dataclass per measurement holds its
settings and their defaults (in one place); :meth:`Settings.of` reads a job's settings into it
(an unknown setting is an error naming it, not silently ignored) and :meth:`Settings.job`
makes the job, whose key follows from the fields set (those equal to ``None`` are left out).
Settings read from a job make that same job back (the fields the job did not set stay out of its key).
:meth:`Settings.given` makes settings with just the chosen fields; every job of the plan, a sweep and
the gate is made from typed settings. A job's values are read back as the fields' declared types.

Every measurement is typed: ``profile``, ``accuracy``, ``latency``, ``speedup``, ``latency_repeat``,
``arm_cost``, ``device_latency``, ``arm_estimate``, ``train``, ``layers`` and ``examples`` (:data:`SETTINGS`). A default that
would change the key of the jobs made without it is ``None`` here, with what it stands for beside it.
"""
from __future__ import annotations

import functools
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Optional

from .jobs import Job
from ..measure.latency import (DEFAULT_LOOPS, DEFAULT_REPEATS, DEFAULT_ROUND_LOOPS, DEFAULT_ROUND_WARMUP,
                               DEFAULT_ROUNDS, DEFAULT_WARMUP)
from ..paths import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR


@dataclass(frozen=True)
class Settings:
    """A measurement's settings; subclasses declare the fields and their defaults."""

    measurement: ClassVar[str] = ""
    _given: ClassVar[Optional[frozenset[str]]] = None  # read from a job: the settings it has

    @classmethod
    def of(cls, job: Job) -> "Settings":
        """The job's settings; ValueError naming any setting this measurement does not have."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(k for k, _ in job.settings if k not in names)
        if unknown:
            raise ValueError(f"{job.measurement}: unknown setting(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(names))}")
        settings = cls(**{k: _typed(cls, k, v) for k, v in job.settings})
        object.__setattr__(settings, "_given", frozenset(k for k, _ in job.settings))
        return settings

    @classmethod
    def given(cls, **settings: Any) -> "Settings":
        """Settings with just ``settings`` chosen (checked: a name the measurement does not have is a
        TypeError); their job carries only those, the others being the measurement's defaults, so a
        planned job's key names what the plan chose and nothing more."""
        made = cls(**settings)
        object.__setattr__(made, "_given", frozenset(settings))
        return made

    def job(self, arch: str) -> Job:
        """The job measuring ``arch`` with these settings: the fields not ``None`` (read from a job:
        those of its settings, so that the job comes back with the same key)."""
        return Job.make(self.measurement, arch, **{k: v for k, v in asdict(self).items()
                                                   if v is not None and (self._given is None or k in self._given)})

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
    attempts: Optional[int] = None  # None: the quiet wait's default (bench.measure.latency)
    quiet_wait_s: Optional[float] = None
    repeat: Optional[int] = None  # the gate's round number: only tells otherwise equal jobs apart

    def threads_for(self, form: str) -> int:
        return int(self.threads) if self.threads is not None else (2 if form == "file" else 1)

    @property
    def data_path(self) -> Optional[Path]:
        return Path(self.data_dir) if self.data_dir else None

    def quiet_wait(self) -> dict[str, Any]:
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


@dataclass(frozen=True)
class LatencyRepeatSettings(LatencySettings):
    """``latency_repeat``: the ``latency`` job of the same settings run ``runs`` times, each in a fresh
    process (its repeatability; docs/latency.md)."""

    measurement: ClassVar[str] = "latency_repeat"
    runs: int = DEFAULT_REPEATS

    def one_run(self) -> LatencySettings:
        return LatencySettings(**{f.name: getattr(self, f.name) for f in fields(LatencySettings)})


@dataclass(frozen=True)
class ArmSettings(Settings):
    """What the ARM measurements share: ncnn of a torch model at ``input_size`` with ``weights``."""

    input_size: int = 256
    weights: str = "random"
    models_dir: str = str(DEFAULT_MODELS_DIR)
    toolchain: Optional[str] = None  # of the aarch64 runner: gnu | zig (None: gnu)

    @property
    def toolchain_name(self) -> str:
        return self.toolchain or "gnu"


@dataclass(frozen=True)
class ArmCostSettings(ArmSettings):
    """``arm_cost``: emulated aarch64 ncnn (parity and guest instructions; threads=1)."""

    measurement: ClassVar[str] = "arm_cost"
    data_dir: Optional[str] = None  # the fixed input's folder (None: shared/data/hsd)


@dataclass(frozen=True)
class DeviceLatencySettings(ArmSettings):
    """``device_latency``: ncnn on a real ARM device (``""``: none, a ``skipped`` row)."""

    measurement: ClassVar[str] = "device_latency"
    device: str = ""  # adb[:SERIAL] or ssh:user@host[:port]
    threads: int = 1
    loops: Optional[int] = None  # None: 20
    warmup: Optional[int] = None  # None: 3
    powersave: Optional[int] = None  # None: 0 (see bench.arm.runner.run_on_device)
    exec_prefix: Optional[tuple[str, ...]] = None  # a command the runner is started under

    def timing(self) -> dict[str, Any]:
        """The arguments of :func:`bench.arm.runner.run_on_device` these settings give."""
        return dict(threads=self.threads, loops=20 if self.loops is None else self.loops,
                    warmup=3 if self.warmup is None else self.warmup, powersave=self.powersave or 0,
                    exec_prefix=tuple(self.exec_prefix or ()))


@dataclass(frozen=True)
class ArmEstimateSettings(Settings):
    """``arm_estimate``: estimated ms on the calibrated ARM devices (bench.arm.estimate)."""

    measurement: ClassVar[str] = "arm_estimate"
    input_size: Optional[int] = None  # torch models; None: 256 for a design, a peer's checkpoint size
    device_models: Optional[str] = None  # comma list; None: every calibrated device
    thread_counts: Optional[str] = None  # comma list; None: 1,4
    models_dir: str = str(DEFAULT_MODELS_DIR)  # model files
    data_dir: str = str(DEFAULT_DATA_DIR / "hsd")  # model files: the images of the conversion's parity check

    @property
    def threads(self) -> tuple[int, ...]:
        return tuple(int(t) for t in str(self.thread_counts or "1,4").split(","))


@dataclass(frozen=True)
class LayersSettings(Settings):
    """``layers``: the per-layer MACs and parameters of a torch model at ``input_size`` (one row per layer)."""

    measurement: ClassVar[str] = "layers"
    input_size: int = 256


@dataclass(frozen=True)
class ExamplesSettings(Settings):
    """``examples``: a model's predictions on ``n_images`` fixed photos of ``data_dir`` (one row each)."""

    measurement: ClassVar[str] = "examples"
    weights: str = "random"
    input_size: int = 256
    data_dir: str = str(DEFAULT_DATA_DIR / "hsd")
    models_dir: str = str(DEFAULT_MODELS_DIR)
    n_images: Optional[int] = None  # None: bench.measure.examples.EXAMPLE_IMAGES (4)


DEFAULT_RECIPE = "default"  # the name of bench.train.Recipe as it is, without overrides


@dataclass(frozen=True)
class TrainSettings(Settings):
    """``train`` (a sweep's): the suite's recipe with ``recipe_overrides`` and ``seed``, ``steps`` long."""

    measurement: ClassVar[str] = "train"
    seed: int = 0
    steps: int = 300
    recipe: str = DEFAULT_RECIPE  # the variant's name
    recipe_overrides: tuple[tuple[str, Any], ...] = ()  # (bench.train.Recipe field, value) pairs
    threads: int = 1  # bit-identical results need the same count
    data_dir: str = str(DEFAULT_DATA_DIR)

    @property
    def overrides(self) -> dict[str, Any]:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in self.recipe_overrides}


SETTINGS: dict[str, type[Settings]] = {cls.measurement: cls for cls in (
    ProfileSettings, AccuracySettings, LatencySettings, SpeedupSettings, LatencyRepeatSettings, ArmCostSettings,
    DeviceLatencySettings, ArmEstimateSettings, TrainSettings, LayersSettings, ExamplesSettings)}


@functools.lru_cache(maxsize=None)
def _field_types(cls: type) -> dict[str, Any]:
    """The declared type of each field of a settings class, ``Optional[X]`` read as ``X`` (resolved
    once per class: every job read back goes through here)."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        out[name] = args[0] if typing.get_origin(hint) is typing.Union and len(args) == 1 else hint
    return out



def _typed(cls: type, name: str, value: Any) -> Any:
    """A job's setting as its field's declared type (a job read back from JSON holds what JSON
    keeps: e.g. an int written as a float by pandas)."""
    if value is None:
        return None
    kind = _field_types(cls)[name]
    if kind is int and not isinstance(value, bool):
        return int(value)
    if kind is float:
        return float(value)
    return str(value) if name.endswith("_dir") else value
