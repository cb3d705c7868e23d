"""Inference backends for latency: PyTorch eager, ncnn (converted with pnnx), onnxruntime.

- Conversion. :func:`convert_to_ncnn` traces a design (``torch.jit.trace``) and converts it with the
  ``pnnx`` package into ncnn's ``.param`` / ``.bin``; :func:`export_onnx` writes an ONNX file with
  ``torch.onnx.export`` (TorchScript exporter). Both are cached under ``<cache>/ncnn/<key>/`` and
  ``<cache>/onnx/<key>/``, the key being the SHA-256 of the state dict (names, dtypes, shapes,
  bytes), the design, the input size, the converter and torch versions and the conversion options
  (:func:`conversion_key`). A folder is filled under a temporary name and renamed when complete, so
  an interrupted or concurrent conversion never leaves a half-written model behind. pnnx's side files
  (TorchScript file, pnnx graph, generated Python) stay inside that folder, never in the cwd.
  These files and their ``meta.json`` are the only files this module writes.
- Runners. :func:`open_runner` gives a :class:`Runner` for a backend at a thread count: ``infer(x)``
  returns the outputs as numpy arrays and ``bind(x)`` a zero-argument callable doing one inference
  on ``x`` (the thing the latency protocol times). Use runners as context managers: the torch runner
  restores torch's thread count on exit.
- Parity. :func:`check_parity` compares a backend's outputs with PyTorch's on the same input: max
  absolute difference (against a tolerance that grows with the reference's magnitude) and IoU of
  the thresholded foreground masks.

Input and output blob names: pnnx names them ``in0`` and ``out0, out1, ...`` in the order of the
traced model's inputs and outputs; they are read back from the ``.param`` file
(:func:`read_param_io`). The ONNX file uses the same names.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import subprocess
import warnings
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from archs import LOGITS

from bench.cache import cache_folder, fill_once

BACKENDS = ("torch", "ncnn", "onnxruntime")
MB = 1e6  # bytes in a megabyte, as in every *_mb field of the suite
CACHE_FORMAT = 1  # bump when the conversion recipe changes, so old cache folders are not reused
ONNX_OPSET = 17
CONVERT_TIMEOUT_S = 900
# pnnx stores fp16 weights by default; ncnn on x86 widens them to fp32 at load, so they buy no speed
# here and move seg_matting's logits by up to 0.04 (fp32 weights: 1.5e-5). The suite keeps fp32.
DEFAULT_PNNX_FP16 = False


class BackendUnavailable(RuntimeError):
    """The backend's package is not installed (the measurement becomes a ``skipped`` row)."""


class ConversionError(RuntimeError):
    """A converter failed or produced no model."""


def package_version(name: str) -> Optional[str]:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def backend_versions() -> dict[str, Optional[str]]:
    """Versions of the libraries a latency row depends on (None = not installed)."""
    return {"torch": torch.__version__, "ncnn": package_version("ncnn"), "pnnx": package_version("pnnx"),
            "onnxruntime": package_version("onnxruntime"), "onnx": package_version("onnx"),
            "numpy": np.__version__}


def backend_missing(backend: str) -> Optional[str]:
    """Why ``backend`` cannot run here (a missing package), or None when it can."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    needed = {"torch": (), "ncnn": ("ncnn", "pnnx"), "onnxruntime": ("onnxruntime", "onnx")}[backend]
    missing = [p for p in needed if package_version(p) is None]
    return f"{backend} backend needs the {', '.join(missing)} package(s)" if missing else None


# ----------------------------------------------------------------------------- cache keys

def state_dict_digest(model: nn.Module) -> str:
    """SHA-256 over the state dict: every entry's name, dtype, shape and raw bytes, sorted by name."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def conversion_key(weights_digest: str, arch: str, input_size: int, converter: str,
                   converter_version: Optional[str], options: dict[str, Any]) -> str:
    """Cache key of one converted model (hex SHA-256). Changes with any of its inputs."""
    payload = {"format": CACHE_FORMAT, "weights": weights_digest, "arch": arch, "input_size": int(input_size),
               "converter": converter, "converter_version": converter_version, "torch": torch.__version__,
               "options": options}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _example_input(input_size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 3, input_size, input_size, generator=g)


def _load(arch: str, weights: str, models_dir: Optional[Path]) -> nn.Module:
    from bench.paths import DEFAULT_MODELS_DIR
    from bench.weights import load_model
    return load_model(arch, weights, Path(models_dir) if models_dir else DEFAULT_MODELS_DIR).model


# ----------------------------------------------------------------------------- ncnn conversion

@dataclass(frozen=True)
class NcnnModel:
    """A design converted to ncnn (what an ncnn runner on any platform needs)."""

    param_path: str
    bin_path: str
    in_names: tuple[str, ...]
    out_names: tuple[str, ...]
    pnnx_version: str
    bin_size_mb: float
    cache_key: str
    arch: str
    input_size: int
    fp16_weights: bool  # pnnx stored the weights as fp16 in the .bin


def read_param_io(param_path: str | Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input blob names, output blob names) of an ncnn ``.param`` file.

    Inputs are the blobs of ``Input`` layers; outputs are blobs produced and never consumed, in
    natural order (``out0, out1, ..., out10``)."""
    lines = [ln.split() for ln in Path(param_path).read_text().splitlines()]
    if not lines or lines[0] != ["7767517"]:
        raise ConversionError(f"{param_path}: not an ncnn param file (magic 7767517 missing)")
    ins, produced, consumed = [], [], set()
    for parts in lines[2:]:
        if len(parts) < 4:
            continue
        ltype, n_in, n_out = parts[0], int(parts[2]), int(parts[3])
        bottoms, tops = parts[4:4 + n_in], parts[4 + n_in:4 + n_in + n_out]
        consumed.update(bottoms)
        produced.extend(tops)
        if ltype == "Input":
            ins.extend(tops)

    def natural(name: str):
        return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]

    outs = sorted((b for b in produced if b not in consumed and b not in ins), key=natural)
    return tuple(ins), tuple(outs)


def convert_module_to_ncnn(model: nn.Module, arch: str, input_size: int = 256, *,
                           fp16: bool = DEFAULT_PNNX_FP16, cache_dir: Optional[Path] = None,
                           optlevel: int = 2) -> NcnnModel:
    """Convert ``model`` (eval mode, one N x 3 x S x S input) with pnnx, cached by content.

    ``fp16``: pnnx stores the weights as fp16 (halves the ``.bin``; ncnn on x86 computes in fp32
    either way; see :data:`DEFAULT_PNNX_FP16`). ``arch`` is only a label in the key and meta."""
    if package_version("pnnx") is None:
        raise BackendUnavailable("converting to ncnn needs the pnnx package")
    import pnnx

    pnnx_version = package_version("pnnx")
    options = {"fp16": bool(fp16), "optlevel": int(optlevel)}
    model = model.eval()
    key = conversion_key(state_dict_digest(model), arch, input_size, "pnnx", pnnx_version, options)
    folder = cache_folder("ncnn", cache_dir) / key[:24]

    def build(tmp: Path) -> dict:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, _example_input(input_size), check_trace=False)
        traced.save(str(tmp / "model.pt"))
        cmd = [pnnx.EXEC_PATH, "model.pt", f"inputshape=[1,3,{input_size},{input_size}]f32",
               "device=cpu", f"optlevel={optlevel}", f"fp16={int(bool(fp16))}",
               "ncnnparam=model.ncnn.param", "ncnnbin=model.ncnn.bin"]
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise ConversionError(f"pnnx did not finish within {CONVERT_TIMEOUT_S} s") from exc
        param, binf = tmp / "model.ncnn.param", tmp / "model.ncnn.bin"
        if proc.returncode != 0 or not param.is_file() or not binf.is_file():
            tail = " | ".join((proc.stderr or proc.stdout or "").strip().splitlines()[-5:])
            raise ConversionError(f"pnnx failed for {arch} at {input_size} (exit {proc.returncode}): {tail}")
        (tmp / "pnnx.log").write_text(proc.stdout + proc.stderr)
        ins, outs = read_param_io(param)
        return {"in_names": list(ins), "out_names": list(outs), "pnnx_version": pnnx_version,
                "bin_size_mb": round(binf.stat().st_size / MB, 4), "cache_key": key, "arch": arch,
                "input_size": int(input_size), "fp16_weights": bool(fp16), "options": options,
                "torch_version": torch.__version__}

    meta = fill_once(folder, build)
    return NcnnModel(param_path=str(folder / "model.ncnn.param"), bin_path=str(folder / "model.ncnn.bin"),
                     in_names=tuple(meta["in_names"]), out_names=tuple(meta["out_names"]),
                     pnnx_version=meta["pnnx_version"],
                     bin_size_mb=round((folder / "model.ncnn.bin").stat().st_size / MB, 4),
                     cache_key=meta["cache_key"], arch=meta["arch"], input_size=meta["input_size"],
                     fp16_weights=meta["fp16_weights"])


def convert_to_ncnn(arch: str, weights: str = "random", input_size: int = 256, *,
                    fp16: bool = DEFAULT_PNNX_FP16, cache_dir: Optional[Path] = None,
                    models_dir: Optional[Path] = None) -> NcnnModel:
    """Design ``arch`` with ``weights`` (see :func:`bench.weights.load_model`) as an ncnn model for
    ``input_size`` x ``input_size`` inputs; converted once, then read from the cache."""
    return convert_module_to_ncnn(_load(arch, weights, models_dir), arch, input_size, fp16=fp16,
                                  cache_dir=cache_dir)


# ----------------------------------------------------------------------------- ONNX export

@dataclass(frozen=True)
class OnnxModel:
    path: str
    in_names: tuple[str, ...]
    out_names: tuple[str, ...]
    opset: int
    size_mb: float
    cache_key: str
    arch: str
    input_size: int


def export_module_to_onnx(model: nn.Module, arch: str, input_size: int = 256, *,
                          cache_dir: Optional[Path] = None, opset: int = ONNX_OPSET) -> OnnxModel:
    """ONNX file of ``model`` (TorchScript-based ``torch.onnx.export``, static shape), cached by content."""
    model = model.eval()
    options = {"opset": int(opset), "exporter": "torchscript"}
    key = conversion_key(state_dict_digest(model), arch, input_size, "torch.onnx", torch.__version__, options)
    folder = cache_folder("onnx", cache_dir) / key[:24]

    def build(tmp: Path) -> dict:
        x = _example_input(input_size)
        with torch.no_grad():
            out = model(x)
        n_out = len(out) if isinstance(out, (tuple, list)) else 1
        outs = [f"out{i}" for i in range(n_out)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(tmp / "model.onnx"), dynamo=False, opset_version=opset,
                              input_names=["in0"], output_names=outs, do_constant_folding=True)
        return {"in_names": ["in0"], "out_names": outs, "opset": int(opset), "cache_key": key, "arch": arch,
                "input_size": int(input_size),
                "size_mb": round((tmp / "model.onnx").stat().st_size / MB, 4),
                "torch_version": torch.__version__}

    meta = fill_once(folder, build)
    return OnnxModel(path=str(folder / "model.onnx"), in_names=tuple(meta["in_names"]),
                     out_names=tuple(meta["out_names"]), opset=meta["opset"],
                     size_mb=round((folder / "model.onnx").stat().st_size / MB, 4),
                     cache_key=meta["cache_key"], arch=meta["arch"], input_size=meta["input_size"])


def export_onnx(arch: str, weights: str = "random", input_size: int = 256, *,
                cache_dir: Optional[Path] = None, models_dir: Optional[Path] = None) -> OnnxModel:
    return export_module_to_onnx(_load(arch, weights, models_dir), arch, input_size, cache_dir=cache_dir)


# ----------------------------------------------------------------------------- runners

@dataclass(frozen=True)
class NcnnOptions:
    """ncnn ``Option`` fields the suite sets (``num_threads`` comes from the runner).

    Defaults: ncnn's own (the option study in docs/latency.md found nothing faster that keeps
    parity on this CPU)."""

    lightmode: bool = True
    use_packing_layout: bool = True
    use_fp16_packed: bool = True
    use_fp16_storage: bool = True
    use_fp16_arithmetic: bool = True
    use_winograd_convolution: bool = True
    use_sgemm_convolution: bool = True
    openmp_blocktime: int = 20

    def describe(self) -> str:
        return ",".join(f"{k}={int(v) if isinstance(v, bool) else v}"
                        for k, v in dataclasses.asdict(self).items())


DEFAULT_NCNN_OPTIONS = NcnnOptions()


class Runner:
    """One loaded model on one backend at a fixed thread count."""

    backend: str = ""
    threads: int = 1
    options: str = ""  # backend settings, for the result row
    converter: str = ""  # how the model was produced ("" for torch eager)
    model_size_mb: Optional[float] = None

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        """A zero-argument callable running one inference on ``x`` (1 x 3 x H x W float32)."""
        raise NotImplementedError

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """Outputs for ``x`` as numpy arrays with a batch axis (N x C x H x W)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def torch_threads(n: int):
    """Set torch's intra-op thread count for the block and restore it afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


class TorchRunner(Runner):
    """PyTorch eager, CPU, fp32, ``torch.inference_mode``; sets torch's thread count until closed."""

    backend = "torch"

    def __init__(self, model: nn.Module, threads: int):
        self.model, self.threads = model.eval(), int(threads)
        self.options = "eager,inference_mode,fp32"
        self._old_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        xt, model = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), self.model

        def run():
            with torch.inference_mode():
                return model(xt)
        return run

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(o.numpy().copy() for o in _as_tuple(self.bind(x)()))

    def close(self) -> None:
        torch.set_num_threads(self._old_threads)


class NcnnRunner(Runner):
    """ncnn's ``Net`` + ``Extractor`` (one extractor per inference, as in ncnn's examples)."""

    backend = "ncnn"

    def __init__(self, nm: NcnnModel, threads: int, options: NcnnOptions = DEFAULT_NCNN_OPTIONS):
        import ncnn
        self._ncnn, self.nm, self.threads = ncnn, nm, int(threads)
        self.net = ncnn.Net()
        for k, v in dataclasses.asdict(options).items():
            setattr(self.net.opt, k, v)
        self.net.opt.num_threads = self.threads
        if self.net.load_param(nm.param_path) != 0 or self.net.load_model(nm.bin_path) != 0:
            raise ConversionError(f"ncnn could not load {nm.param_path}")
        self.options = options.describe()
        self.converter = f"pnnx {nm.pnnx_version} (fp16 weights={int(nm.fp16_weights)})"
        self.model_size_mb = nm.bin_size_mb

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        if x.ndim != 4 or x.shape[0] != 1:
            raise ValueError(f"ncnn runner takes one 1 x C x H x W input, got {x.shape}")
        arr = np.ascontiguousarray(x[0], dtype=np.float32)
        mat = self._ncnn.Mat(arr)  # points into arr's memory, does not own it
        net, in_name, outs = self.net, self.nm.in_names[0], self.nm.out_names

        def run():
            ex = net.create_extractor()
            ex.input(in_name, mat)
            return [ex.extract(o) for o in outs]
        run.keep = (arr, mat)  # keep the input alive with the callable (a freed arr crashes ncnn)
        return run

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        res = []
        for name, (ret, mat) in zip(self.nm.out_names, self.bind(x)()):
            if ret != 0:
                raise RuntimeError(f"ncnn extract({name!r}) failed with code {ret}")
            res.append(np.array(mat)[None])
        return tuple(res)

    def close(self) -> None:
        self.net.clear()


class OnnxRuntimeRunner(Runner):
    """onnxruntime CPU execution provider, all graph optimisations, sequential execution."""

    backend = "onnxruntime"

    def __init__(self, om: OnnxModel, threads: int):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.om, self.threads = om, int(threads)
        self.sess = ort.InferenceSession(om.path, so, providers=["CPUExecutionProvider"])
        self.options = "CPUExecutionProvider,ORT_ENABLE_ALL,sequential,inter_op=1"
        self.converter = f"torch.onnx {torch.__version__} (TorchScript exporter, opset {om.opset})"
        self.model_size_mb = om.size_mb

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        feed = {self.om.in_names[0]: np.ascontiguousarray(x, dtype=np.float32)}
        sess, outs = self.sess, list(self.om.out_names)
        return lambda: sess.run(outs, feed)

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(np.asarray(o) for o in self.bind(x)())

    def close(self) -> None:
        self.sess = None  # frees the session and its (spinning) thread pool now


def open_runner(backend: str, model: nn.Module, arch: str, input_size: int, threads: int, *,
                ncnn_options: NcnnOptions = DEFAULT_NCNN_OPTIONS, pnnx_fp16: bool = DEFAULT_PNNX_FP16,
                cache_dir: Optional[Path] = None) -> Runner:
    """Runner for ``model`` on ``backend``; converts (or reuses the cached conversion) as needed.

    Raises :class:`BackendUnavailable` when the backend's package is missing."""
    why = backend_missing(backend)
    if why:
        raise BackendUnavailable(why)
    if backend == "torch":
        return TorchRunner(model, threads)
    if backend == "ncnn":
        nm = convert_module_to_ncnn(model, arch, input_size, fp16=pnnx_fp16, cache_dir=cache_dir)
        return NcnnRunner(nm, threads, ncnn_options)
    om = export_module_to_onnx(model, arch, input_size, cache_dir=cache_dir)
    return OnnxRuntimeRunner(om, threads)


# ----------------------------------------------------------------------------- parity

PARITY_ATOL = 1e-4  # max |backend - torch| <= PARITY_ATOL + PARITY_RTOL * max |torch| (all outputs)
PARITY_RTOL = 1e-2
PARITY_MIN_IOU = 0.99  # IoU of the foreground masks (logit > 0, or alpha > 0.5)


@dataclass(frozen=True)
class ParityRecord:
    max_abs_diff: float  # over all outputs
    max_abs_ref: float  # largest |value| of the reference outputs
    mask_iou: float  # IoU of the thresholded foreground masks (1.0 when both are empty)
    ok: bool
    reason: str  # "" when ok


def check_parity(ref: Sequence[np.ndarray], out: Sequence[np.ndarray], output_kind: str = LOGITS,
                 atol: float = PARITY_ATOL, rtol: float = PARITY_RTOL,
                 min_iou: float = PARITY_MIN_IOU) -> ParityRecord:
    """Compare a backend's outputs ``out`` with the PyTorch reference ``ref`` (same order).

    Fails when the outputs differ in number or shape, are not finite, when the max abs difference
    exceeds ``atol + rtol * max|ref|`` or when the foreground-mask IoU is below ``min_iou``.
    The mask is ``logits > 0`` for LOGITS and ``alpha > 0.5`` (the last output) for SEG_ALPHA."""
    if len(ref) != len(out):
        return ParityRecord(float("nan"), float("nan"), float("nan"), False,
                            f"{len(out)} outputs, expected {len(ref)}")
    ref = [np.asarray(r, dtype=np.float32) for r in ref]
    out = [np.asarray(o, dtype=np.float32) for o in out]
    for i, (r, o) in enumerate(zip(ref, out)):
        if r.size != o.size:
            return ParityRecord(float("nan"), float("nan"), float("nan"), False,
                                f"output {i} has shape {o.shape}, expected {r.shape}")
    out = [o.reshape(r.shape) for r, o in zip(ref, out)]
    if not all(np.isfinite(o).all() for o in out):
        return ParityRecord(float("nan"), float("nan"), float("nan"), False,
                            "non-finite values in the output")
    max_diff = max(float(np.abs(r - o).max()) if r.size else 0.0 for r, o in zip(ref, out))
    max_ref = max(float(np.abs(r).max()) if r.size else 0.0 for r in ref)
    if output_kind == LOGITS:
        m_ref, m_out = ref[0] > 0, out[0] > 0
    else:
        m_ref, m_out = ref[-1] > 0.5, out[-1] > 0.5
    union = int(np.logical_or(m_ref, m_out).sum())
    mask_iou = 1.0 if union == 0 else float(np.logical_and(m_ref, m_out).sum() / union)
    tol = atol + rtol * max_ref
    reasons = []
    if max_diff > tol:
        reasons.append(f"max_abs_diff={max_diff:.3g} > {tol:.3g}")
    if mask_iou < min_iou:
        reasons.append(f"mask_iou={mask_iou:.4f} < {min_iou}")
    return ParityRecord(max_diff, max_ref, mask_iou, not reasons, "; ".join(reasons))


# ----------------------------------------------------------------------------- per-layer view

@dataclass(frozen=True)
class LayerTime:
    index: int  # position in the .param file (torch: rank by time)
    name: str
    type: str  # ncnn layer type / torch operator
    ms: float  # median time of the layer over the repeats
    out_shape: str = ""


def _param_layers(param_path: str | Path) -> list[tuple[str, str, list[str]]]:
    out = []
    for parts in (ln.split() for ln in Path(param_path).read_text().splitlines()[2:]):
        if len(parts) >= 4:
            n_in, n_out = int(parts[2]), int(parts[3])
            out.append((parts[0], parts[1], parts[4 + n_in:4 + n_in + n_out]))
    return out


def ncnn_layer_times(nm: NcnnModel, x: np.ndarray, threads: int, options: NcnnOptions = DEFAULT_NCNN_OPTIONS,
                     repeats: int = 10) -> list[LayerTime]:
    """Approximate time of every ncnn layer: on one extractor (light mode off, so every blob is
    kept) the layers' outputs are extracted in file order, so each ``extract`` runs just that layer;
    the cost of handing the blob out (a second ``extract`` of the same blob: unpacking to fp32,
    elempack 1) is subtracted. Median over ``repeats`` runs. The sum is close to, not equal to, the
    end-to-end latency."""
    import time

    import ncnn
    net = ncnn.Net()
    for k, v in dataclasses.asdict(options).items():
        setattr(net.opt, k, v)
    net.opt.lightmode = False
    net.opt.num_threads = int(threads)
    net.load_param(nm.param_path)
    net.load_model(nm.bin_path)
    arr = np.ascontiguousarray(x[0], dtype=np.float32)
    mat = ncnn.Mat(arr)  # points into arr, which stays alive until the end
    layers = [(i, t, n, tops) for i, (t, n, tops) in enumerate(_param_layers(nm.param_path)) if t != "Input"]
    samples: dict[int, list[float]] = {i: [] for i, *_ in layers}
    shapes: dict[int, str] = {}
    for _ in range(repeats + 1):  # the first pass warms up
        ex = net.create_extractor()
        ex.input(nm.in_names[0], mat)
        for i, _t, _n, tops in layers:
            t0 = time.perf_counter_ns()
            _, m = ex.extract(tops[0])
            t1 = time.perf_counter_ns()
            ex.extract(tops[0])
            t2 = time.perf_counter_ns()
            samples[i].append(max(0.0, ((t1 - t0) - (t2 - t1)) / 1e6))
            shapes[i] = f"{m.c}x{m.h}x{m.w}"
        del ex, m  # blobs go back to the net's allocators before the next pass / clear()
    net.clear()
    return [LayerTime(i, n, t, float(np.median(samples[i][1:])), shapes[i]) for i, t, n, _ in layers]


def torch_op_times(model: nn.Module, x: np.ndarray, threads: int, repeats: int = 10) -> list[LayerTime]:
    """Self CPU time per PyTorch operator (``torch.profiler``), mean per inference, largest first."""
    from torch.profiler import ProfilerActivity, profile

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch_threads(threads), torch.inference_mode():
        for _ in range(3):
            model(xt)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                model(xt)
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    return [LayerTime(i, e.key, e.key, e.self_cpu_time_total / 1e3 / repeats)
            for i, e in enumerate(rows) if e.self_cpu_time_total > 0]


def time_by_type(layers: Sequence[LayerTime]) -> list[tuple[str, float, int]]:
    """(type, total ms, count) per layer type, largest first."""
    acc: dict[str, list] = {}
    for lt in layers:
        a = acc.setdefault(lt.type, [0.0, 0])
        a[0] += lt.ms
        a[1] += 1
    return sorted(((t, ms, n) for t, (ms, n) in acc.items()), key=lambda r: -r[1])
