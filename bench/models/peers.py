"""Runtime peers: published portrait segmenters that ship as files (.tflite, .onnx), not torch modules.

Longer than 600 lines: the table of file models, their runners, graph statistics and ONNX -> ncnn
conversion. The runners are to move into ``bench/backends`` and the accuracy / latency functions to
merge with the designs' (issue 18, not done yet); ``bench.models.sources.FileSource`` is their one entry.

SINet and ExtremeC3Net are rebuilt in PyTorch (``archs/sinet.py``, ``archs/extremec3.py``) and get
every measurement the designs get. The peers here cannot be rebuilt, so they run on their own
runtime and are measured through it:

- :data:`PEERS`: one :class:`PeerModel` per peer (file under ``shared/models``, runtime, input
  size, preprocessing, how to read the foreground probability, source and license).
- :func:`load_peer` gives a :class:`PeerRunner`: ``predict_prob(image_rgb)`` (foreground probability
  at the image's own size, the accuracy protocol of :mod:`bench.measure.accuracy`), ``prepare`` /
  ``run`` / ``bind`` (the network input and one inference, for timing). The file's SHA-256 is
  checked against ``SHA256SUMS`` first. A missing runtime package or file raises
  :class:`bench.run.jobs.Skip` (a ``skipped: ...`` row); a damaged file raises
  :class:`bench.models.weights.WeightsError`.
- :func:`evaluate_peer`: :func:`bench.measure.accuracy.evaluate_fn` over a peer (same metrics and CIs).
- :func:`measure_peer_latency`: the timing protocol of :mod:`bench.measure.latency` (``time_callable``,
  calibration GEMM) on the peer's runtime, threads set explicitly.
- :func:`graph_stats`: parameters and MACs read from the graph, marked ``source="graph"`` (the
  torch counters cannot run these files). Parameters = elements of the stored weight tensors (so
  BatchNorms are already folded into the convolutions); MACs = convolution, depthwise, transposed
  convolution and fully-connected layers from their weight and output shapes (1 MAC = one
  multiply-add); every other op is listed in ``uncounted_ops``.
- :func:`convert_peer_to_ncnn` / :func:`ncnn_parity`: an ONNX peer converted with the ``pnnx``
  CLI to ncnn (under ``<cache>/peers/``), and its parity with onnxruntime. The graph is first
  rewritten without changing what it computes (:func:`prepare_onnx_for_pnnx`, checked with
  onnxruntime); ``load_peer(name, runtime="ncnn")`` runs the converted model.

Runtimes: ``litert`` is the ``ai-edge-litert`` interpreter (CPU; its default op resolver applies the
XNNPACK delegate, which also provides MediaPipe's custom ``Convolution2DTransposeBias``; the model
does not run without it); ``onnxruntime`` the CPU execution provider with the same session options
as :mod:`bench.backends`; ``ncnn`` the ``ncnn`` package with :data:`bench.backends.DEFAULT_NCNN_OPTIONS`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import cv2
import numpy as np

from archs import Preprocess

from ..run.jobs import Skip
from ..backends.base import MB, Runner
from ..backends.table import backend_missing, package_version
from ..cache import cache_folder, fill_once
from ..measure.latency import TimedRun
from ..paths import DEFAULT_MODELS_DIR
from .weights import verify_checkpoint

RUNTIMES = ("litert", "onnxruntime", "ncnn")  # the backends (bench.backends.table) a file peer runs on
PNNX_PREP_VERSION = 1  # bump when prepare_onnx_for_pnnx changes, so old conversions are not reused
# 2: meta.json without bin_size_mb (read from the file, in MB of 1e6). Older checkouts sharing .cache
# read bin_size_mb from their entries, so entries of the two formats must never share a folder.
CACHE_META_VERSION = 2
PARITY_PROB_ATOL = 1e-2  # max |ncnn - onnxruntime| of the foreground probability
PARITY_MIN_IOU = 0.99  # IoU of the two foreground masks (probability > 0.5), every image


@dataclass(frozen=True)
class PeerModel:
    """A published peer that runs from a file on its own runtime."""

    name: str
    relpath: str  # under the shared models folder (and listed in its SHA256SUMS)
    runtime: str  # "litert" or "onnxruntime" (the runtime the file was published for)
    input_hw: tuple[int, int]  # network input (height, width); images are resized to it (no padding)
    preprocess: Preprocess  # channel order, mean, scale, resize interpolation (see bench.measure.accuracy.to_input)
    input_layout: str  # "NHWC" or "NCHW"
    output_layout: str  # "NHWC" or "NCHW"
    fg_channel: int  # channel of the output holding the foreground probability
    output_desc: str  # what the output is
    source: str
    license: str
    notes: str = ""


MEDIAPIPE_PRE = Preprocess(channel_order="RGB", mean=(0.0, 0.0, 0.0), scale=255.0, resize="linear")
PPSEG_PRE = Preprocess(channel_order="RGB", mean=(127.5, 127.5, 127.5), scale=127.5, resize="linear")

PEERS: dict[str, PeerModel] = {p.name: p for p in (
    PeerModel(
        name="mediapipe_selfie",
        relpath="mediapipe/selfie_segmentation.tflite",
        runtime="litert", input_hw=(256, 256), preprocess=MEDIAPIPE_PRE,
        input_layout="NHWC", output_layout="NHWC", fg_channel=0,
        output_desc="1 x 256 x 256 x 1 person probability (sigmoid inside the model)",
        source="MediaPipe selfie segmentation, general (square) model",
        license="Apache-2.0",
        notes="RGB in [0, 1], whole image stretched to 256 x 256 (bilinear), as MediaPipe's "
              "ImageToTensorCalculator does with keep_aspect_ratio false; fp16 weights dequantised at load"),
    PeerModel(
        name="mediapipe_selfie_landscape",
        relpath="mediapipe/selfie_segmentation_landscape.tflite",
        runtime="litert", input_hw=(144, 256), preprocess=MEDIAPIPE_PRE,
        input_layout="NHWC", output_layout="NHWC", fg_channel=0,
        output_desc="1 x 144 x 256 x 1 person probability (output tensor named 'segment_back', but "
                    "measured to be the person: reading 1 - p scores near 0)",
        source="MediaPipe selfie segmentation, landscape model",
        license="Apache-2.0",
        notes="RGB in [0, 1], whole image stretched to 144 x 256 (H x W, bilinear)"),
    PeerModel(
        name="pphumanseg_lite",
        relpath="pphumanseg/ppseg_lite_portrait_398x224_with_softmax_fixed.onnx",
        runtime="onnxruntime", input_hw=(224, 398), preprocess=PPSEG_PRE,
        input_layout="NCHW", output_layout="NCHW", fg_channel=1,
        output_desc="1 x 2 x 224 x 398 softmax (channel 1 = person)",
        source="PaddleSeg PP-HumanSeg v2 lite portrait (398 x 224, softmax included), ONNX export",
        license="Apache-2.0 (upstream PaddleSeg)",
        notes="RGB, (x / 255 - 0.5) / 0.5, whole image stretched to 224 x 398 (H x W, bilinear), as "
              "PaddleSeg's deploy config (Resize target_size [398, 224], Normalize 0.5 / 0.5)"),
)}


def list_peers() -> list[str]:
    return sorted(PEERS)


def get_peer(name: str) -> PeerModel:
    try:
        return PEERS[name]
    except KeyError:
        raise KeyError(f"unknown peer {name!r}; known peers: {', '.join(list_peers())}") from None


def runtime_missing(runtime: str) -> Optional[str]:
    """Why ``runtime`` cannot run here (its package is not installed), or None."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    return backend_missing(runtime)


def peer_file(name: str, models_dir: Path = DEFAULT_MODELS_DIR) -> Path:
    """The peer's file after the SHA-256 check; Skip when it is absent, WeightsError when damaged."""
    spec = get_peer(name)
    path = Path(models_dir) / spec.relpath
    if not path.is_file():
        raise Skip(f"peer file {spec.relpath} not found under {models_dir} (the suite never downloads models)")
    return verify_checkpoint(Path(models_dir), spec.relpath)


# ----------------------------------------------------------------------------- runners

class PeerRunner(Runner):
    """One peer loaded on one runtime at a fixed thread count: a :class:`bench.backends.base.Runner`
    (``backend`` is its runtime; ``infer`` gives the raw output) that also prepares images and reads
    the foreground channel of the peer's own output layout."""

    runtime: str = ""  # the backend name (bench.backends.table)
    runtime_version: Optional[str] = None

    @property
    def backend(self) -> str:
        return self.runtime

    def __init__(self, spec: PeerModel, threads: int):
        self.spec, self.threads = spec, int(threads)

    def prepare(self, image_rgb: np.ndarray) -> np.ndarray:
        """The network input (batch 1, the peer's layout, float32) for an H x W x 3 uint8 RGB image."""
        from ..measure.accuracy import to_input
        x = to_input(image_rgb, self.spec.input_hw, self.spec.preprocess).numpy()
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1) if self.spec.input_layout == "NHWC" else x)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Raw output of one inference on a prepared input."""
        return self.bind(x)()

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return (self.run(x),)

    def bind(self, x: np.ndarray) -> Callable[[], np.ndarray]:
        """A zero-argument callable doing one inference on ``x`` (input copy, run, output copy)."""
        raise NotImplementedError

    def foreground(self, out: np.ndarray) -> np.ndarray:
        """Foreground probability at the network's input resolution (H x W float32)."""
        c = self.spec.fg_channel
        fg = out[0, :, :, c] if self.spec.output_layout == "NHWC" else out[0, c]
        return np.ascontiguousarray(fg, dtype=np.float32)

    def predict_prob(self, image_rgb: np.ndarray) -> np.ndarray:
        """Foreground probability at the image's own size (bilinear resize back), H x W float32."""
        prob = self.foreground(self.run(self.prepare(image_rgb)))
        h, w = image_rgb.shape[:2]
        return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)


class LiteRTRunner(PeerRunner):
    """``ai_edge_litert`` interpreter, CPU, default op resolver (XNNPACK delegate), ``num_threads`` set."""

    runtime = "litert"

    def __init__(self, spec: PeerModel, path: Path, threads: int):
        super().__init__(spec, threads)
        from ..backends import litert_cpu
        self.interp = litert_cpu.open_interpreter(path, self.threads)
        self._in = self.interp.get_input_details()[0]
        self._out = self.interp.get_output_details()[0]
        self.options = litert_cpu.options(self.threads)
        self.runtime_version = package_version("ai-edge-litert")
        self.model_size_mb = round(path.stat().st_size / MB, 4)

    def bind(self, x: np.ndarray) -> Callable[[], np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if tuple(x.shape) != tuple(self._in["shape"]):
            raise ValueError(f"{self.spec.name} takes a {tuple(self._in['shape'])} input, got {x.shape}")
        it, i_in, i_out = self.interp, self._in["index"], self._out["index"]

        def run() -> np.ndarray:
            it.set_tensor(i_in, x)
            it.invoke()
            return it.get_tensor(i_out)
        return run


class OnnxRuntimePeerRunner(PeerRunner):
    """onnxruntime CPU execution provider, all graph optimisations, sequential, one inter-op thread."""

    runtime = "onnxruntime"

    def __init__(self, spec: PeerModel, path: Path, threads: int):
        super().__init__(spec, threads)
        from ..backends.onnxruntime_cpu import open_session
        self.sess = open_session(str(path), self.threads)
        self._in_name = self.sess.get_inputs()[0].name
        self._out_name = self.sess.get_outputs()[0].name
        self.options = f"CPUExecutionProvider,ORT_ENABLE_ALL,sequential,intra_op={self.threads},inter_op=1"
        self.runtime_version = package_version("onnxruntime")
        self.model_size_mb = round(path.stat().st_size / MB, 4)

    def bind(self, x: np.ndarray) -> Callable[[], np.ndarray]:
        feed = {self._in_name: np.ascontiguousarray(x, dtype=np.float32)}
        sess, outs = self.sess, [self._out_name]
        return lambda: sess.run(outs, feed)[0]


class NcnnPeerRunner(PeerRunner):
    """An ONNX peer converted with pnnx (:func:`convert_peer_to_ncnn`), on :class:`bench.backends.NcnnRunner`."""

    runtime = "ncnn"

    def __init__(self, spec: PeerModel, nm, threads: int):
        super().__init__(spec, threads)
        from ..backends import DEFAULT_NCNN_OPTIONS, NcnnRunner
        self._runner = NcnnRunner(nm, self.threads, DEFAULT_NCNN_OPTIONS)
        self.options = self._runner.options
        self.converter = self._runner.converter
        self.runtime_version = package_version("ncnn")
        self.model_size_mb = self._runner.model_size_mb

    def bind(self, x: np.ndarray) -> Callable[[], np.ndarray]:
        if self.spec.input_layout != "NCHW":
            raise ValueError(f"{self.spec.name}: the ncnn path is for NCHW (ONNX) peers")
        run, out_name = self._runner.bind(x), self._runner.nm.out_names[0]

        def go() -> np.ndarray:
            ret, mat = run()[0]
            if ret != 0:
                raise RuntimeError(f"ncnn extract({out_name!r}) failed with code {ret}")
            return np.array(mat)[None]
        return go

    def close(self) -> None:
        self._runner.close()


def load_peer(name: str, models_dir: Path = DEFAULT_MODELS_DIR, threads: int = 1,
              runtime: Optional[str] = None, cache_dir: Optional[Path] = None) -> PeerRunner:
    """Runner for peer ``name`` on ``runtime`` (default: the one it was published for; ``"ncnn"``
    converts an ONNX peer with pnnx first). Raises :class:`bench.run.jobs.Skip` when the runtime
    package or the file is missing."""
    spec = get_peer(name)
    runtime = runtime or spec.runtime
    if threads < 1:
        raise ValueError(f"threads={threads}: need at least 1")
    why = runtime_missing(runtime)
    if why:
        raise Skip(why)
    path = peer_file(name, models_dir)
    if runtime == "litert":
        if spec.runtime != "litert":
            raise ValueError(f"{name} is a {spec.runtime} model, not a .tflite file")
        return LiteRTRunner(spec, path, threads)
    if runtime == "onnxruntime":
        if spec.runtime != "onnxruntime":
            raise ValueError(f"{name} is a {spec.runtime} model, not an ONNX file")
        return OnnxRuntimePeerRunner(spec, path, threads)
    return NcnnPeerRunner(spec, convert_peer_to_ncnn(name, models_dir, cache_dir), threads)


# ----------------------------------------------------------------------------- accuracy

def evaluate_peer(name: str, samples: Sequence, models_dir: Path = DEFAULT_MODELS_DIR, threads: int = 1,
                  runtime: Optional[str] = None, on_image: Optional[Callable[[int], None]] = None,
                  cache_dir: Optional[Path] = None):
    """:class:`bench.measure.accuracy.EvalRecord` of peer ``name`` on ``samples`` (the protocol of
    :mod:`bench.measure.accuracy`; the image is stretched to the peer's input size, see :data:`PEERS`).
    ``input_size`` of the record is the (height, width) tuple."""
    from ..measure.accuracy import evaluate_fn
    with load_peer(name, models_dir, threads, runtime, cache_dir) as runner:
        return evaluate_fn(runner.predict_prob, samples, tuple(runner.spec.input_hw), on_image=on_image)


# ----------------------------------------------------------------------------- latency

@dataclass(frozen=True)
class PeerLatencyRecord(TimedRun):
    """A peer's latency row: the fields every latency row has (:class:`bench.measure.latency.TimedRun`)
    and the peer's own."""

    peer: str
    runtime: str
    threads: int
    input_h: int
    input_w: int
    status: str
    protocol: str
    timing_input: str
    backend_options: str
    runtime_version: Optional[str]
    model_size_mb: Optional[float]


def _timing_image(data_dir: Optional[Path]) -> tuple[np.ndarray, str]:
    """The first image (by stem) of ``data_dir`` (default shared/data/hsd), as bench.measure.latency uses."""
    from ..data.samples import read_image, scan_folder
    from ..paths import DEFAULT_DATA_DIR
    folder = Path(data_dir) if data_dir else DEFAULT_DATA_DIR / "hsd"
    if folder.is_dir():
        s = scan_folder(folder)[0]
        return read_image(s.image_path), f"{folder.name}/{s.image_path.name}"
    rng = np.random.default_rng(0)
    return np.clip(rng.normal(128, 40, (480, 640, 3)), 0, 255).astype(np.uint8), "synthetic (no data folder)"


def measure_peer_latency(name: str, threads: int = 1, runtime: Optional[str] = None, loops: Optional[int] = None,
                         warmup: Optional[int] = None, models_dir: Path = DEFAULT_MODELS_DIR,
                         data_dir: Optional[Path] = None, calibrate: bool = True,
                         cache_dir: Optional[Path] = None, attempts: Optional[int] = None,
                         quiet_wait_s: Optional[float] = None) -> PeerLatencyRecord:
    """Latency of one inference of peer ``name`` (input copy + run + output copy) under the
    protocol of :mod:`bench.measure.latency`, as for the designs: batch 1, fp32, one fixed real input,
    quiet wait, untimed warm-up, ``loops`` timed iterations, calibration GEMM at the same thread
    count."""
    from ..measure import latency as lat

    loops = lat.DEFAULT_LOOPS if loops is None else int(loops)
    warmup = lat.DEFAULT_WARMUP if warmup is None else int(warmup)
    attempts = lat.DEFAULT_ATTEMPTS if attempts is None else int(attempts)
    quiet_wait_s = lat.DEFAULT_QUIET_WAIT_S if quiet_wait_s is None else float(quiet_wait_s)
    if loops < lat.MIN_LOOPS:
        raise ValueError(f"loops={loops}: the protocol needs at least {lat.MIN_LOOPS} timed iterations")
    load = lat.load_avg()
    spec = get_peer(name)
    macs_g = graph_stats(name, models_dir).macs_g
    img, img_name = _timing_image(data_dir)
    with load_peer(name, models_dir, threads, runtime, cache_dir) as runner:
        timed = lat.timed_run(runner.bind(runner.prepare(img)), threads, macs_g, warmup, loops,
                              calibrate=calibrate, attempts=attempts, quiet_wait_s=quiet_wait_s,
                              load_avg_1m=load)
        options, rt_version, size_mb, rt = runner.options, runner.runtime_version, runner.model_size_mb, runner.runtime
    h, w = spec.input_hw
    protocol = lat.protocol_string(warmup, loops, threads, (h, w), calibrate, attempts, quiet_wait_s) + f" runtime={rt}"
    return PeerLatencyRecord(
        **timed, peer=name, runtime=rt, threads=int(threads), input_h=h, input_w=w, status="ok",
        protocol=protocol, timing_input=img_name, backend_options=options, runtime_version=rt_version,
        model_size_mb=size_mb)


# ----------------------------------------------------------------------------- graph statistics

@dataclass(frozen=True)
class GraphStats:
    peer: str
    file: str
    runtime: str
    input_h: int
    input_w: int
    params: int  # elements of the stored float weight tensors (BN folded; fp16 weights counted once)
    weight_tensors: int
    weight_mb: float  # bytes of those tensors as stored (fp16 stays 2 bytes), 1 MB = 1e6 bytes
    macs: int  # conv + depthwise + transposed conv + fully connected, from the shapes
    macs_g: float
    macs_by_op: dict[str, int]
    op_counts: dict[str, int]
    uncounted_ops: tuple[str, ...]  # op types present whose arithmetic is not in ``macs``
    params_source: str = "graph"
    macs_source: str = "graph"


_MAC_OPS_TFLITE = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED",
                   "Convolution2DTransposeBias")
_NO_ARITH_TFLITE = {"DEQUANTIZE", "RESHAPE", "CONCATENATION", "PAD", "SQUEEZE", "TRANSPOSE"}
_MAC_OPS_ONNX = ("Conv", "ConvTranspose", "Gemm", "MatMul")
_NO_ARITH_ONNX = {"Reshape", "Transpose", "Concat", "Split", "Slice", "Squeeze", "Unsqueeze", "Shape",
                  "Gather", "Identity", "Constant", "Flatten", "Cast"}


def _tflite_stats(spec: PeerModel, path: Path) -> GraphStats:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=str(path), num_threads=1,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    ops = it._get_ops_details()  # op name, input / output tensor indices (no delegate applied)
    produced = {int(i) for op in ops for i in op["outputs"]}
    graph_inputs = {int(d["index"]) for d in it.get_input_details()}
    consts = {int(i) for op in ops for i in op["inputs"] if i >= 0} - produced - graph_inputs
    floats = {np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.float64)}
    weights = [tensors[i] for i in consts if np.dtype(tensors[i]["dtype"]) in floats]
    params = int(sum(int(np.prod(t["shape"])) for t in weights))
    nbytes = int(sum(int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize for t in weights))
    counts, macs_by = Counter(), Counter()
    for op in ops:
        kind = op["op_name"]
        counts[kind] += 1
        if kind not in _MAC_OPS_TFLITE:
            continue
        shape = lambda i: [int(v) for v in tensors[int(i)]["shape"]]  # noqa: E731
        out = shape(op["outputs"][0])
        if kind == "CONV_2D":  # filter [O, kh, kw, I]
            o, kh, kw, i = shape(op["inputs"][1])
            macs = int(np.prod(out)) * kh * kw * i
        elif kind == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, O]
            _, kh, kw, _ = shape(op["inputs"][1])
            macs = int(np.prod(out)) * kh * kw
        elif kind == "FULLY_CONNECTED":  # weights [O, I]
            macs = int(np.prod(out)) * shape(op["inputs"][1])[-1]
        elif kind == "TRANSPOSE_CONV":  # inputs (output_shape, filter [O, kh, kw, I], input)
            o, kh, kw, i = shape(op["inputs"][1])
            macs = int(np.prod(shape(op["inputs"][2]))) * kh * kw * o
        else:  # MediaPipe Convolution2DTransposeBias: inputs (input, filter [O, kh, kw, I], bias)
            o, kh, kw, i = shape(op["inputs"][1])
            macs = int(np.prod(shape(op["inputs"][0]))) * kh * kw * o
        macs_by[kind] += macs
    h, w = spec.input_hw
    uncounted = tuple(sorted(k for k in counts if k not in _MAC_OPS_TFLITE and k not in _NO_ARITH_TFLITE))
    total = int(sum(macs_by.values()))
    return GraphStats(peer=spec.name, file=spec.relpath, runtime=spec.runtime, input_h=h, input_w=w,
                      params=params, weight_tensors=len(weights), weight_mb=round(nbytes / 1e6, 4), macs=total,
                      macs_g=total / 1e9, macs_by_op=dict(macs_by), op_counts=dict(counts), uncounted_ops=uncounted)


def _onnx_stats(spec: PeerModel, path: Path) -> GraphStats:
    import onnx
    from onnx import numpy_helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(path)))
    g = model.graph
    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE}
    used = {i for n in g.node for i in n.input}
    weights = [t for t in g.initializer if t.data_type in float_types and t.name in used]
    params = int(sum(int(np.prod(t.dims)) for t in weights))
    nbytes = int(sum(numpy_helper.to_array(t).nbytes for t in weights))
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(g.value_info) + list(g.input) + list(g.output)}
    shapes.update({t.name: list(t.dims) for t in g.initializer})
    counts, macs_by = Counter(), Counter()
    for n in g.node:
        counts[n.op_type] += 1
        if n.op_type not in _MAC_OPS_ONNX:
            continue
        out = shapes.get(n.output[0])
        wshape = shapes.get(n.input[1])
        if not out or not wshape or 0 in out:
            raise ValueError(f"{path}: no static shape for {n.op_type} {n.name}")
        if n.op_type == "Conv":  # W [O, I/g, kh, kw]
            macs = int(np.prod(out)) * int(np.prod(wshape[1:]))
        elif n.op_type == "ConvTranspose":  # W [I, O/g, kh, kw]: every input element feeds O/g*kh*kw
            macs = int(np.prod(shapes[n.input[0]])) * int(np.prod(wshape[1:]))
        else:  # Gemm / MatMul: K multiply-adds per output element
            trans_b = any(a.name == "transB" and a.i for a in n.attribute)
            k = wshape[-1] if trans_b else wshape[0] if len(wshape) == 2 else wshape[-2]
            macs = int(np.prod(out)) * int(k)
        macs_by[n.op_type] += macs
    h, w = spec.input_hw
    uncounted = tuple(sorted(k for k in counts if k not in _MAC_OPS_ONNX and k not in _NO_ARITH_ONNX))
    total = int(sum(macs_by.values()))
    return GraphStats(peer=spec.name, file=spec.relpath, runtime=spec.runtime, input_h=h, input_w=w,
                      params=params, weight_tensors=len(weights), weight_mb=round(nbytes / 1e6, 4), macs=total,
                      macs_g=total / 1e9, macs_by_op=dict(macs_by), op_counts=dict(counts), uncounted_ops=uncounted)


def graph_stats(name: str, models_dir: Path = DEFAULT_MODELS_DIR) -> GraphStats:
    """Parameters and MACs of peer ``name`` read from its graph (see the module doc)."""
    spec = get_peer(name)
    if spec.runtime == "litert":
        why = runtime_missing("litert")
    else:
        why = None if importlib.util.find_spec("onnx") else "reading an ONNX graph needs the onnx package (pip install onnx)"
    if why:
        raise Skip(why)
    path = peer_file(name, models_dir)
    return _tflite_stats(spec, path) if spec.runtime == "litert" else _onnx_stats(spec, path)


# ----------------------------------------------------------------------------- ONNX -> ncnn (pnnx)

def prepare_onnx_for_pnnx(model) -> tuple[Any, tuple[str, ...]]:
    """A copy of ``model`` (onnx.ModelProto) that pnnx converts correctly, and what was changed.

    Both rewrites keep the computation identical (opset-11 semantics):
    - ``Resize`` with a placeholder ``roi`` (unused unless coordinate mode is tf_crop_and_resize)
      gets an empty ``roi``: pnnx otherwise leaves the op unconverted (no such ncnn layer).
    - ``Split`` without a ``split`` attribute (equal parts) gets the explicit equal sizes: pnnx
      otherwise writes an ncnn ``Slice`` without slice sizes, which crashes ncnn at run time."""
    import onnx
    from onnx import helper, numpy_helper, shape_inference

    m = onnx.ModelProto()
    m.CopyFrom(model)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(shape_inference.infer_shapes(model).graph.value_info) + list(model.graph.input)}
    changes: list[str] = []
    roi_name = "pnnx_prep_empty_roi"
    for n in m.graph.node:
        if n.op_type == "Resize" and len(n.input) > 1 and n.input[1]:
            mode = next((a.s.decode() for a in n.attribute if a.name == "coordinate_transformation_mode"),
                        "half_pixel")
            if mode != "tf_crop_and_resize":
                n.input[1] = roi_name
                changes.append(f"{n.name}: empty roi")
        if n.op_type == "Split" and not any(a.name == "split" for a in n.attribute) and len(n.input) == 1:
            axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
            dims = shapes.get(n.input[0])
            if not dims or not dims[axis] or dims[axis] % len(n.output):
                raise ValueError(f"Split {n.name}: cannot infer equal split sizes from shape {dims}")
            n.attribute.append(helper.make_attribute("split", [dims[axis] // len(n.output)] * len(n.output)))
            changes.append(f"{n.name}: explicit split sizes")
    if any(c.endswith("empty roi") for c in changes):
        m.graph.initializer.append(numpy_helper.from_array(np.zeros((0,), np.float32), roi_name))
    onnx.checker.check_model(m)
    return m, tuple(changes)


def convert_peer_to_ncnn(name: str, models_dir: Path = DEFAULT_MODELS_DIR, cache_dir: Optional[Path] = None,
                         fp16: Optional[bool] = None):
    """ONNX peer ``name`` converted to ncnn with the pnnx CLI (``inputshape=[1,3,H,W]``), cached under
    ``<cache>/peers/<name>-<key>/`` (key: file hash, pnnx version, options); returns a
    :class:`bench.backends.NcnnModel`. ``fp16``: pnnx stores fp16 weights (default: the suite's
    :data:`bench.backends.DEFAULT_PNNX_FP16`)."""
    spec = get_peer(name)
    if spec.runtime != "onnxruntime":
        raise ValueError(f"{name}: only ONNX peers are converted to ncnn (this one is {spec.runtime})")
    why = runtime_missing("ncnn")
    if why:
        raise Skip(why)
    if importlib.util.find_spec("pnnx") is None or importlib.util.find_spec("onnx") is None:
        raise Skip("converting an ONNX peer to ncnn needs the pnnx and onnx packages (pip install pnnx onnx)")
    import onnx
    import pnnx

    from ..backends import DEFAULT_PNNX_FP16, NcnnModel, read_param_io
    from .weights import sha256_file

    fp16 = DEFAULT_PNNX_FP16 if fp16 is None else bool(fp16)
    path = peer_file(name, models_dir)
    h, w = spec.input_hw
    pnnx_version = package_version("pnnx") or "?"
    key_src = json.dumps({"file": sha256_file(path), "pnnx": pnnx_version, "fp16": fp16, "hw": [h, w],
                          "prep": PNNX_PREP_VERSION,
                          "meta": CACHE_META_VERSION}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()
    folder = cache_folder("peers", cache_dir) / f"{name}-{key[:16]}"

    def build(tmp: Path) -> dict:
        prepared, changes = prepare_onnx_for_pnnx(onnx.load(str(path)))
        onnx.save(prepared, str(tmp / "model.onnx"))
        cmd = [pnnx.EXEC_PATH, "model.onnx", f"inputshape=[1,3,{h},{w}]f32", f"fp16={int(fp16)}",
               "ncnnparam=model.ncnn.param", "ncnnbin=model.ncnn.bin"]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=900)
        (tmp / "pnnx.log").write_text(proc.stdout + proc.stderr)
        param, binf = tmp / "model.ncnn.param", tmp / "model.ncnn.bin"
        if proc.returncode != 0 or not param.is_file() or not binf.is_file():
            tail = " | ".join((proc.stderr or proc.stdout or "").strip().splitlines()[-5:])
            raise RuntimeError(f"pnnx failed for {name} (exit {proc.returncode}): {tail}")
        ins, outs = read_param_io(param)
        return {"in_names": list(ins), "out_names": list(outs), "pnnx_version": pnnx_version,
                "cache_key": key, "peer": name, "input_hw": [h, w], "fp16_weights": fp16,
                "graph_changes": list(changes)}

    meta = fill_once(folder, build)
    return NcnnModel(param_path=str(folder / "model.ncnn.param"), bin_path=str(folder / "model.ncnn.bin"),
                     in_names=tuple(meta["in_names"]), out_names=tuple(meta["out_names"]),
                     pnnx_version=meta["pnnx_version"],
                     bin_size_mb=round((folder / "model.ncnn.bin").stat().st_size / MB, 4), cache_key=meta["cache_key"],
                     arch=name, input_size=h, fp16_weights=meta["fp16_weights"])


@dataclass(frozen=True)
class PeerParityRecord:
    peer: str
    runtime: str  # the converted runtime ("ncnn")
    reference: str  # the published runtime ("onnxruntime")
    n_images: int
    max_abs_diff: float  # largest |difference| of the foreground probability over all images
    min_mask_iou: float  # smallest IoU of the two foreground masks (probability > 0.5)
    ok: bool
    reason: str
    converter: str


def ncnn_parity(name: str, samples: Sequence, models_dir: Path = DEFAULT_MODELS_DIR, threads: int = 1,
                cache_dir: Optional[Path] = None, atol: float = PARITY_PROB_ATOL,
                min_iou: float = PARITY_MIN_IOU) -> PeerParityRecord:
    """Does the pnnx-converted ncnn model of ONNX peer ``name`` reproduce onnxruntime on ``samples``
    (real images with the peer's preprocessing)? Compares the foreground probability maps."""
    from ..data.samples import read_image
    spec = get_peer(name)
    diffs, ious = [], []
    with load_peer(name, models_dir, threads, "onnxruntime") as ref, \
            load_peer(name, models_dir, threads, "ncnn", cache_dir) as conv:
        for s in samples:
            x = ref.prepare(read_image(s.image_path))
            a, b = ref.foreground(ref.run(x)), conv.foreground(conv.run(x))
            diffs.append(float(np.abs(a - b).max()))
            ma, mb = a > 0.5, b > 0.5
            union = int(np.logical_or(ma, mb).sum())
            ious.append(1.0 if union == 0 else float(np.logical_and(ma, mb).sum() / union))
        converter = conv.converter
    max_diff, worst = max(diffs), min(ious)
    reasons = ([f"max_abs_diff={max_diff:.3g} > {atol:g}"] if max_diff > atol else []) + \
              ([f"min_mask_iou={worst:.4f} < {min_iou}"] if worst < min_iou else [])
    return PeerParityRecord(peer=spec.name, runtime="ncnn", reference=spec.runtime, n_images=len(diffs),
                            max_abs_diff=max_diff, min_mask_iou=worst, ok=not reasons, reason="; ".join(reasons),
                            converter=converter)


__all__ = ["PeerModel", "PEERS", "list_peers", "get_peer", "runtime_missing", "load_peer", "PeerRunner",
           "evaluate_peer", "measure_peer_latency", "PeerLatencyRecord", "graph_stats", "GraphStats",
           "prepare_onnx_for_pnnx", "convert_peer_to_ncnn", "ncnn_parity", "PeerParityRecord"]
