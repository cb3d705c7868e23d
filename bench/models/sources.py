"""Model sources: every name the suite measures, behind one protocol.

A name is either a **torch design** (registered in ``archs/``: the five designs and the peers rebuilt
in PyTorch, SINet and ExtremeC3Net) or a **file model** (a published ``.tflite`` / ``.onnx`` peer
that runs on its own runtime, :data:`bench.models.peers.PEERS`). Both implement :class:`ModelSource`:

- ``spec``: a :class:`SourceSpec` (kind ``design`` or ``peer``, form ``torch`` or ``file``, the
  backends it runs on, its input sizes);
- ``preprocess(weights)``: how an image becomes its input (the weights' convention, from the spec);
- ``cost(input_size)``: the profile row (parameters, MACs, sizes);
- ``open_runner(backend, threads, ...)``: one loaded model on one backend (``bench.backends``);
- ``accuracy``, ``latency``, ``speedup``: the measurements' rows, so that the job adapters
  (``bench/run/adapters.py``) and every command take any registered name.

:func:`get_source` finds one by name (a ``KeyError`` listing the known names), :func:`list_sources`
lists them, optionally by shell pattern and kind.
"""
from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from archs import Preprocess, get_spec, list_archs

from ..columns import record_row
from ..run.jobs import Skip
from ..run.status import Status
from ..paths import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR

if TYPE_CHECKING:
    from ..run.settings import AccuracySettings, LatencySettings, SpeedupSettings, TimingSettings

KINDS = ("design", "peer")


class RequestError(ValueError):
    """A request that does not fit the model (an input side, weights or backend it does not take):
    a usage error, found by :meth:`ModelSource.check_request` before anything is measured."""


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str  # "design" (one of the five) or "peer" (a published network shown beside them)
    form: str  # "torch" (a module in archs/) or "file" (a published model file on its runtime)
    backends: tuple[str, ...]  # backends it runs on here; the first is its reference
    input_multiple: Optional[int]  # torch: any input side that is a multiple of this
    native_input: Optional[tuple[int, int]]  # file: the one (height, width) it takes
    default_size: Optional[int]  # torch: the side it is measured at unless told otherwise
    description: str
    # what ``eval`` scores unless told otherwise: a design's committed checkpoint, a peer's published one
    default_weights: str = "random"


class ModelSource(ABC):
    spec: SourceSpec

    @abstractmethod
    def preprocess(self, weights: str = "random") -> Preprocess:
        """How an image becomes this model's input with these weights."""

    @abstractmethod
    def cost(self, input_size: Optional[int] = None, models_dir: Path = DEFAULT_MODELS_DIR,
             ncnn_bin: Optional[str] = None) -> dict[str, Any]:
        """The profile row: parameters, MACs, sizes (and the reference numbers where known)."""

    @abstractmethod
    def open_runner(self, backend: str, threads: int, input_size: Optional[int] = None, weights: str = "random",
                    models_dir: Path = DEFAULT_MODELS_DIR):
        """One loaded model on ``backend`` at ``threads`` threads (a context manager)."""

    def check_weights(self, weights: str) -> None:
        """Skip when ``weights`` are absent in a way that is not an error (checked before the data)."""

    def check_accuracy(self, settings: AccuracySettings) -> None:
        """What an accuracy job checks before it reads the data: the weights (and a file's backend)."""
        self.check_weights(settings.weights)

    @abstractmethod
    def accuracy(self, samples: Sequence, settings: AccuracySettings) -> dict[str, Any]:
        """The accuracy row on ``samples`` (the protocol of :mod:`bench.measure.accuracy`)."""

    @abstractmethod
    def latency(self, backend: str, settings: LatencySettings) -> dict[str, Any]:
        """The latency row on ``backend`` (the protocol of :mod:`bench.measure.latency`)."""

    @abstractmethod
    def speedup(self, other: str, settings: SpeedupSettings) -> dict[str, Any]:
        """``other`` against the reference backend, timed interleaved in one process."""

    def check_request(self, input_size: Optional[int] = None, weights: Optional[str] = None,
                      backend: Optional[str] = None) -> None:
        """:class:`RequestError` saying what does not fit this model, for each argument given (None:
        the model's own default): an input side, weights, a backend it never runs on."""
        if backend is not None:
            from ..backends.table import TABLE
            if backend not in TABLE:
                raise RequestError(f"--backend {backend}: unknown backend; known: {', '.join(TABLE)}")
            if backend not in self.spec.backends:
                raise RequestError(f"--backend {backend}: {self.spec.name} does not run on {backend} (it runs on "
                                   f"{', '.join(self.spec.backends)})")

    def check_backend(self, backend: str) -> None:
        """Skip (a ``skipped`` row) when this model does not run on ``backend`` here."""
        from ..backends import backend_missing
        from ..backends.table import get_backend
        get_backend(backend)  # an unknown name is an error, not a skip
        if backend not in self.spec.backends:
            raise Skip(f"{self.spec.name} does not run on {backend} (it runs on {', '.join(self.spec.backends)})")
        why = backend_missing(backend)
        if why:
            raise Skip(why)


class TorchSource(ModelSource):
    """A design (or peer) registered in ``archs/``; converted for ncnn and onnxruntime as needed."""

    def __init__(self, name: str):
        a = get_spec(name)
        from ..backends.table import BACKENDS
        size = a.checkpoints[0].input_size if a.peer and a.checkpoints else 256
        weights = "trained" if not a.peer else a.checkpoints[0].name if a.checkpoints else "random"
        self.arch = a
        self.spec = SourceSpec(name=name, kind="peer" if a.peer else "design", form="torch", backends=BACKENDS,
                               input_multiple=a.input_multiple, native_input=None, default_size=size,
                               description=a.description, default_weights=weights)

    def weights_names(self) -> list[str]:
        from .weights import weights_names
        return weights_names(self.arch)

    def check_request(self, input_size: Optional[int] = None, weights: Optional[str] = None,
                      backend: Optional[str] = None) -> None:
        super().check_request(backend=backend)
        m = self.arch.input_multiple
        if input_size is not None and (input_size <= 0 or input_size % m):
            near = max(m, round(input_size / m) * m)
            raise RequestError(f"--size {input_size}: {self.spec.name} takes an input side that is a multiple of "
                               f"{m} (e.g. --size {near})")
        if weights is None or weights in self.weights_names():
            return  # a named checkpoint that is not there is a skipped row, said by the measurement
        from .weights import WeightsError, load_model
        if not Path(weights).exists():
            raise RequestError(f"--weights {weights}: not a weights name of {self.spec.name} "
                               f"({', '.join(self.weights_names())}) and no such file")
        try:
            load_model(self.spec.name, weights)
        except WeightsError as exc:
            raise RequestError(f"--weights {exc}") from None

    def _size(self, input_size: Optional[int]) -> int:
        size = int(input_size or self.spec.default_size)
        if size % self.arch.input_multiple:
            raise Skip(f"input side {size} is not a multiple of {self.arch.input_multiple}")
        return size

    def preprocess(self, weights: str = "random") -> Preprocess:
        from .weights import weights_catalog
        w = weights_catalog(self.arch).get(weights)
        return w.preprocess if w is not None and w.preprocess is not None else self.arch.preprocess

    def cost(self, input_size: Optional[int] = None, models_dir: Path = DEFAULT_MODELS_DIR,
             ncnn_bin: Optional[str] = None) -> dict[str, Any]:
        """Paper cost (bench.measure.complexity.profile_model) next to the reference numbers of
        ARCHITECTURES.md; ``macs_rel_diff`` only at the reference size."""
        from ..measure.complexity import profile_model
        from .weights import load_model

        spec, size = self.arch, self._size(input_size)
        rec = profile_model(load_model(spec.name, "random").model, size, ncnn_bin=ncnn_bin)
        row = record_row(rec)
        row.update(
            input_size=size, ref_params=spec.ref_params, params_rel_diff=rec.params / spec.ref_params - 1,
            ref_macs_g=spec.ref_macs_g, ref_macs_size=spec.ref_macs_size,
            macs_rel_diff=rec.macs_g / spec.ref_macs_g - 1 if size == spec.ref_macs_size else None,
        )
        return row

    def open_runner(self, backend: str, threads: int, input_size: Optional[int] = None, weights: str = "random",
                    models_dir: Path = DEFAULT_MODELS_DIR):
        from ..backends import open_runner
        from .weights import load_model
        size = self._size(input_size)
        return open_runner(backend, load_model(self.spec.name, weights, models_dir).model, self.spec.name, size,
                           threads)

    def accuracy(self, samples: Sequence, settings: AccuracySettings) -> dict[str, Any]:
        """In PyTorch, one thread, at ``settings.input_size`` with ``settings.weights``."""
        from ..measure.accuracy import evaluate
        from .weights import load_model
        lm = load_model(self.spec.name, settings.weights, settings.models_path)
        rec = evaluate(lm.model, samples, int(settings.input_size or self.spec.default_size), lm.preprocess,
                       lm.spec.output_kind)
        return {**record_row(rec), "weights": settings.weights}

    def check_weights(self, weights: str) -> None:
        from .weights import weights_catalog
        w = weights_catalog(self.arch).get(weights)
        if w is not None and w.origin == "own" and not w.path().is_file():
            raise Skip(f"no {weights} checkpoint checkpoints/{w.file}")

    def _timing(self, backend: str, s: TimingSettings) -> dict[str, Any]:
        """The settings a timing passes on, after the checks every timing makes first."""
        self.check_backend(backend)
        return dict(threads=s.threads_for(self.spec.form), input_size=self._size(s.input_size), weights=s.weights,
                    models_dir=s.models_path, data_dir=s.data_path, **s.quiet_wait())

    def latency(self, backend: str, settings: LatencySettings) -> dict[str, Any]:
        from ..measure.latency import measure_latency
        rec = measure_latency(self.spec.name, backend, loops=settings.loops, warmup=settings.warmup,
                              **self._timing(backend, settings))
        return record_row(rec)

    def speedup(self, other: str, settings: SpeedupSettings) -> dict[str, Any]:
        from ..measure.latency import measure_speedup
        rec = measure_speedup(self.spec.name, other, rounds=settings.rounds, loops=settings.loops,
                              warmup=settings.warmup, **self._timing(other, settings))
        return record_row(rec)


class FileSource(ModelSource):
    """A published model file on its own runtime (and, for ONNX files, on ncnn after conversion)."""

    def __init__(self, name: str):
        from .peers import get_peer
        p = get_peer(name)
        self.peer = p
        self.spec = SourceSpec(name=name, kind="peer", form="file",
                               backends=(p.runtime, *(("ncnn",) if p.runtime == "onnxruntime" else ())),
                               input_multiple=None, native_input=tuple(p.input_hw), default_size=None,
                               description=p.source, default_weights="official")

    def _native(self) -> str:
        h, w = self.peer.input_hw
        return f"{h}x{w}"

    def check_request(self, input_size: Optional[int] = None, weights: Optional[str] = None,
                      backend: Optional[str] = None) -> None:
        super().check_request(backend=backend)
        if input_size is not None:
            raise RequestError(f"--size {input_size}: {self.spec.name} is a model file that runs at its own input "
                               f"{self._native()}; leave --size out")
        if weights not in (None, "official"):
            raise RequestError(f"--weights {weights}: {self.spec.name} is a published model file with its own "
                               "weights; it takes no --weights (official, the default)")

    def preprocess(self, weights: str = "random") -> Preprocess:
        return self.peer.preprocess

    def cost(self, input_size: Optional[int] = None, models_dir: Path = DEFAULT_MODELS_DIR,
             ncnn_bin: Optional[str] = None) -> dict[str, Any]:
        """Parameters and MACs read from the graph (``macs_source`` = "graph": the torch counters
        cannot run these files)."""
        from .peers import graph_stats
        self.check_backend(self.peer.runtime)
        st = graph_stats(self.spec.name, models_dir)
        row = record_row(st)
        row.pop("peer", None)
        row.update(input_size=None, native_input=self._native(), size_mb_fp32=st.weight_mb,
                   macs_source="graph", params_source="graph")
        return row

    def open_runner(self, backend: str, threads: int, input_size: Optional[int] = None, weights: str = "random",
                    models_dir: Path = DEFAULT_MODELS_DIR):
        from .peers import load_peer
        return load_peer(self.spec.name, models_dir, threads, backend)

    def check_accuracy(self, settings: AccuracySettings) -> None:
        super().check_accuracy(settings)
        if settings.backend:
            self.check_backend(settings.backend)

    def accuracy(self, samples: Sequence, settings: AccuracySettings) -> dict[str, Any]:
        """At its native input size, with its official weights, on ``settings.backend`` (default its
        own runtime) at ``settings.threads`` (default 2, its published setting)."""
        from .peers import evaluate_peer
        backend = settings.backend or self.peer.runtime
        self.check_backend(backend)
        rec = evaluate_peer(self.spec.name, samples, settings.models_path, threads=settings.threads or 2,
                            runtime=backend)
        row = record_row(rec)
        row.update(input_size=None, native_input=self._native(), weights="official")
        return row

    def latency(self, backend: str, settings: LatencySettings) -> dict[str, Any]:
        """On its own runtime, or on ``ncnn`` after conversion with a parity check against the
        original runtime on a few validation images first."""
        from .peers import measure_peer_latency, ncnn_parity
        self.check_backend(backend)
        models_dir = settings.models_path
        parity = {}
        if backend == "ncnn":
            from ..data.samples import scan_folder
            samples = scan_folder(settings.data_path or DEFAULT_DATA_DIR / "hsd")[:4]
            pr = ncnn_parity(self.spec.name, samples, models_dir)
            parity = {"parity_max_abs_diff": pr.max_abs_diff, "parity_mask_iou": pr.min_mask_iou,
                      "parity_ok": pr.ok, "parity_reference": pr.reference}
            if not pr.ok:
                return {"status": str(Status.fail(pr.reason, "parity")), "backend": backend, **parity}
        rec = measure_peer_latency(self.spec.name, threads=settings.threads_for(self.spec.form), runtime=backend,
                                   loops=settings.loops, warmup=settings.warmup, models_dir=models_dir,
                                   attempts=settings.attempts, quiet_wait_s=settings.quiet_wait_s)
        row = record_row(rec)
        row.pop("peer", None)
        row.update(backend=backend, input_size=None, native_input=self._native(), weights="official", **parity)
        return row

    def speedup(self, other: str, settings: SpeedupSettings) -> dict[str, Any]:
        raise Skip(f"{self.spec.name} is a published {self.peer.runtime} file with no PyTorch model: the "
                   "interleaved speed-up compares a backend with PyTorch (see `latency` for each of its "
                   f"backends: {', '.join(self.spec.backends)})")


def list_sources(pattern: Optional[str] = None, kind: Optional[str] = None) -> list[str]:
    """Every registered name (designs, then peers, each sorted), by shell pattern and kind."""
    from .peers import list_peers
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    designs = list_archs()
    peers = sorted({*(a for a in list_archs(peers=True) if a not in designs), *list_peers()})
    names = (designs if kind != "peer" else []) + (peers if kind != "design" else [])
    return [n for n in names if not pattern or fnmatch.fnmatch(n, pattern)]


def get_source(name: str) -> ModelSource:
    from .peers import PEERS
    if name in PEERS:
        return FileSource(name)
    if name in list_archs(peers=True):
        return TorchSource(name)
    raise KeyError(f"unknown model {name!r}; known designs: {', '.join(list_sources(kind='design'))}; "
                   f"known peers: {', '.join(list_sources(kind='peer'))}")
