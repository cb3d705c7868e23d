"""Per-layer guest instruction counts of ncnn models under qemu, the way benchncnn runs them.

The calibration set for ARM latency estimates (``bench.arm.estimate``) is ncnn's own benchncnn
model set (``../shared/anchors/ncnn-benchmark/params``) with the device timings ncnn published for
it. To put our counts on the same footing as those timings, ``count_layers`` runs the suite's
aarch64 runner (``bench/arm/runner.cpp``) like benchncnn: weights all zero (``--bin zeros``), input
filled with 0.01, benchncnn's options and pool allocators (``--profile benchncnn``), ncnn's first
input and output blob, one thread, the layer-by-layer inference below as warm-up.

One run per model and CPU model does two inferences and gives two kinds of figures, from marker
syscalls the QEMU plugin (``bench/arm/insn_count.c``) records with the running instruction total:

* per-layer counts from a first inference run layer by layer in file order (each layer's tops
  extracted raw and released at once; the extract calls' own cost measured by extracting again
  and subtracted). It also serves as the warm-up: ncnn's pools are filled after it.
* ``insns_inference``: the second, whole-net inference (extractor creation, input, extraction of
  the output: benchncnn's timed region), counted between the markers around it, as
  ``bench.arm.count_instructions`` counts the designs' ``arm_instructions_m``. The per-layer
  figures add up to it within about 0.1%.

The guest runs with ``OMP_THREAD_LIMIT=1``: under ``-cpu cortex-a76`` ncnn otherwise starts an
OpenMP worker even at one thread, whose spinning makes counts vary. Results are cached by content
(param file, runner and plugin binaries, QEMU version, CPU model, input shape, protocol) under
``<repo>/.cache/arm/counts``. Functions return records; nothing else is written.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import pandas as pd

from ..paths import SHARED_DIR
from . import runner as arm

PROTOCOL = "benchncnn-v1"  # bump when the runner arguments or the guest environment change
CPU_MODELS = ("cortex-a72", "cortex-a76")
FILL = 0.01
_GUEST_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "OMP_THREAD_LIMIT": "1"}
_MARK_BEGIN, _MARK_END = arm.MARK_BEGIN, arm.MARK_END
_MARK_LAYER, _MARK_PASS_BEGIN, _MARK_PASS_END, _MARK_LAYER_OVERHEAD = 3, 4, 5, 6

# benchncnn's input sizes (width = height; 3 channels). Source: ncnn's benchmark/benchncnn.cpp,
# as listed in reference_counts_cortex-a72.csv; vision_transformer (not in that table) runs at 384.
BENCHNCNN_SIZES = {
    "squeezenet": 227, "alexnet": 227, "blazeface": 128, "squeezenet_ssd": 300, "mobilenet_ssd": 300,
    "mobilenet_yolo": 416, "yolov4-tiny": 416, "mobilenetv2_yolov3": 352, "yolo-fastestv2": 352,
    "FastestDet": 352, "nanodet_m": 320, "yolo-fastest-1.1": 320, "vision_transformer": 384,
}
DEFAULT_SIZE = 224


def default_params_dir() -> Path:
    """``<repo>/../shared/anchors/ncnn-benchmark/params`` (read-only shared data)."""
    return SHARED_DIR / "anchors" / "ncnn-benchmark" / "params"


# Left out of the calibration set, with the reason.
EXCLUDED = {
    "vision_transformer": "ViT-B/16 at 384 x 384 (6.6 s on a Raspberry Pi 4, about 9 G instructions at its rate): "
                          "well over half an hour of emulation per CPU model here; its attention/GEMM mix is also "
                          "far from any design's",
}


def benchncnn_models(params_dir: Optional[Path] = None, include_int8: bool = False,
                     include_excluded: bool = False) -> dict[str, Path]:
    """benchncnn model name -> .param path. int8 models are left out by default (they need int8
    layers), and so are the ``EXCLUDED`` ones."""
    params_dir = Path(params_dir or default_params_dir())
    if not params_dir.is_dir():
        raise FileNotFoundError(f"benchncnn params not found: {params_dir}")
    return {p.stem: p for p in sorted(params_dir.glob("*.param"))
            if (include_int8 or not p.stem.endswith("_int8")) and (include_excluded or p.stem not in EXCLUDED)}


def benchncnn_shape(model: str) -> tuple[int, int, int]:
    s = BENCHNCNN_SIZES.get(model, DEFAULT_SIZE)
    return (3, s, s)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LayerCount:
    """One layer of the layer-by-layer inference."""

    index: int  # position in the .param file (ncnn layer index)
    type: str
    name: str
    insns: int  # guest instructions from the previous layer's marker to this one's
    tops: tuple[tuple[int, ...], ...]  # (w, h, d, c, elempack, elemsize) of each output blob as ncnn holds it


@dataclasses.dataclass(frozen=True)
class ModelCounts:
    """Instruction counts of one model under one QEMU CPU model (1 thread, benchncnn protocol)."""

    model: str
    cpu_model: str
    input_shape: tuple[int, ...]
    insns_inference: int  # one whole-net inference after a warm-up
    insns_layer_pass: int  # the layer-by-layer inference, start to end
    insns_output: int  # part of the layer pass after the last layer (output extraction, extractor teardown)
    layers: tuple[LayerCount, ...]
    arm_features: tuple[str, ...]
    qemu_version: str
    ncnn_version: str
    cache_key: str

    @property
    def insn_m(self) -> float:
        return self.insns_inference / 1e6


# --------------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------------


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cache_key(param: Path, runner: Path, plugin: Path, qemu_ver: str, cpu_model: str, shape: Sequence[int],
              outs: str = "-") -> str:
    h = hashlib.sha256()
    for part in (PROTOCOL, _sha(param), _sha(runner), _sha(plugin), qemu_ver, cpu_model, ",".join(map(str, shape)), outs,
                 json.dumps(_GUEST_ENV, sort_keys=True), repr(FILL)):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    return arm.default_cache_dir() / "counts"


parse_plugin_output = arm.parse_plugin_output  # (total, [(kind, value, insns), ...]) from the plugin's outfile


def counts_from_marks(marks: Sequence[tuple[int, int, int]], layers_json: Sequence[dict]) -> tuple[int, int, int, list[int]]:
    """(whole inference, layer pass, output tail, per-layer counts) from the runner's markers.

    Per layer: instructions from the previous layer's last marker to this layer's first (its
    compute plus one round of extract calls) minus those of the second round of extract calls (the
    calls alone), so the per-layer figures add up to the layer pass without the runner's overhead.
    """
    def one(kind: int) -> int:
        got = [n for k, _, n in marks if k == kind]
        if len(got) != 1:
            raise RuntimeError(f"expected one marker of kind {kind}, got {len(got)}")
        return got[0]

    begin, end, pass_begin, pass_end = one(_MARK_BEGIN), one(_MARK_END), one(_MARK_PASS_BEGIN), one(_MARK_PASS_END)
    layer_marks = [(k, v, n) for k, v, n in marks if k in (_MARK_LAYER, _MARK_LAYER_OVERHEAD)]
    want = [int(l["i"]) for l in layers_json]
    if [v for k, v, _ in layer_marks] != [i for i in want for _ in (0, 1)] or \
            [k for k, _, _ in layer_marks] != [_MARK_LAYER, _MARK_LAYER_OVERHEAD] * len(want):
        raise RuntimeError("layer markers do not match the runner's layer list")
    prev, per_layer = pass_begin, []
    for j in range(len(want)):
        at_layer, at_overhead = layer_marks[2 * j][2], layer_marks[2 * j + 1][2]
        per_layer.append((at_layer - prev) - (at_overhead - at_layer))
        prev = at_overhead
    return end - begin, pass_end - pass_begin, pass_end - prev, per_layer


def count_layers(param: Union[str, Path], input_shape: Sequence[int], cpu_model: str = "cortex-a72",
                 runner: Optional[Path] = None, plugin: Optional[Path] = None, cache_dir: Optional[Path] = None,
                 out_names: Optional[Sequence[str]] = None, timeout_s: float = 3600.0) -> ModelCounts:
    """Count one model (zero weights, input 0.01, benchncnn options, 1 thread) under ``qemu -cpu cpu_model``.

    ``out_names`` None = ncnn's first output, as benchncnn (a design with several outputs passes
    them all). Cached by content (see ``cache_key``); ``runner``/``plugin`` None = build or reuse
    the default ones.
    """
    param = Path(param)
    missing = arm.missing_layers(param)
    if missing:
        raise ValueError(f"{param}: layer types not built into the ARM runner: {', '.join(missing)}")
    runner = Path(runner) if runner else arm.build_runner()
    plugin = Path(plugin) if plugin else arm.build_plugin()
    qver = arm.qemu_version()
    shape = tuple(int(d) for d in input_shape)
    outs = ",".join(out_names) if out_names else "-"
    key = cache_key(param, runner, plugin, qver, cpu_model, shape, outs)
    cache_file = Path(cache_dir or default_cache_dir()) / f"{param.stem}-{cpu_model}-{key}.json"
    if cache_file.exists():
        return _from_json(json.loads(cache_file.read_text()))
    with tempfile.TemporaryDirectory(prefix="arm_counts_") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "ncnn_arm_bench").symlink_to(runner.resolve())
        (tmp / "m.param").symlink_to(param.resolve())
        outfile = tmp / "insns.txt"
        args = ["--param", "m.param", "--bin", "zeros", "--shape", ",".join(map(str, shape)), "--in", "-",
                "--out", outs, "--threads", "1", "--warmup", "0", "--loops", "1", "--profile", "benchncnn",
                "--fill", repr(FILL), "--marks", "1", "--layer-pass", "1"]
        cmd = arm._qemu_cmd(cpu_model, plugin, outfile) + ["./ncnn_arm_bench"] + args
        proc = subprocess.run(cmd, cwd=tmp, env=dict(_GUEST_ENV), capture_output=True, text=True, timeout=timeout_s)
        try:
            result = arm._parse_runner_json(proc.stdout)
        except (RuntimeError, json.JSONDecodeError):
            result = {"status": "error", "error": "no JSON output"}
        if proc.returncode != 0 or result.get("status") != "ok":
            raise RuntimeError(f"{param.name} under qemu -cpu {cpu_model} failed (exit {proc.returncode}): "
                               f"{result.get('error')}\n{proc.stderr[-2000:]}")
        _, marks = parse_plugin_output(outfile.read_text() if outfile.exists() else "")
    whole, layer_pass, tail, per_layer = counts_from_marks(marks, result["layers"])
    rec = ModelCounts(
        model=param.stem.removesuffix(".ncnn"), cpu_model=cpu_model, input_shape=shape, insns_inference=whole,
        insns_layer_pass=layer_pass, insns_output=tail,
        layers=tuple(LayerCount(index=int(l["i"]), type=l["type"], name=l["name"], insns=n,
                                tops=tuple(tuple(int(x) for x in t) for t in l["tops"]))
                     for l, n in zip(result["layers"], per_layer)),
        arm_features=arm._features(result), qemu_version=qver, ncnn_version=result["ncnn_version"], cache_key=key)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = cache_file.with_suffix(".tmp")
    tmp_file.write_text(json.dumps(dataclasses.asdict(rec)))
    tmp_file.replace(cache_file)
    return rec


def _from_json(d: dict) -> ModelCounts:
    layers = tuple(LayerCount(index=l["index"], type=l["type"], name=l["name"], insns=l["insns"],
                              tops=tuple(tuple(t) for t in l["tops"])) for l in d["layers"])
    return ModelCounts(**{**d, "layers": layers, "input_shape": tuple(d["input_shape"]),
                          "arm_features": tuple(d["arm_features"])})


# --------------------------------------------------------------------------------------------
# Layer classes and per-model features
# --------------------------------------------------------------------------------------------


def param_layers(param: Union[str, Path]) -> dict[str, dict]:
    """Layer name -> {"type", "bottoms", "tops", "params": {key: value string}} of a text .param."""
    lines = Path(param).read_text().splitlines()
    if not lines or lines[0].strip() != "7767517":
        raise ValueError(f"{param} is not a text ncnn .param file (magic 7767517)")
    out = {}
    for ln in lines[2:]:
        tok = ln.split()
        if len(tok) < 4:
            continue
        n_in, n_out = int(tok[2]), int(tok[3])
        kv = {}
        for item in tok[4 + n_in + n_out:]:
            k, _, v = item.partition("=")
            kv[k] = v
        out[tok[1]] = {"type": tok[0], "bottoms": tok[4:4 + n_in], "tops": tok[4 + n_in:4 + n_in + n_out], "params": kv}
    return out


def _int(kv: dict, key: str, default: int) -> int:
    v = kv.get(key)
    if v is None:
        return default
    return int(float(v.split(",")[-1]))  # array params ("-23303=2,1,1") are not used here


LAYER_CLASSES = ("conv1x1", "conv3x3s1", "conv_other", "dw3x3", "dw5x5", "dw_large", "gconv", "deconv", "fc",
                 "pool", "other")


def layer_class(type_: str, kv: dict) -> str:
    """Kernel family a layer lands in (what ncnn's ARM code specialises on), from .param values."""
    if type_ == "Convolution":
        k, s, d = _int(kv, "1", 0), _int(kv, "3", 1), _int(kv, "2", 1)
        kh = _int(kv, "11", k)
        if k == 1 and kh == 1:
            return "conv1x1"
        if k == 3 and kh == 3 and s == 1 and d == 1:
            return "conv3x3s1"
        return "conv_other"
    if type_ == "ConvolutionDepthWise":
        k, cout, group, ws = _int(kv, "1", 0), _int(kv, "0", 0), _int(kv, "7", 1), _int(kv, "6", 0)
        kh = _int(kv, "11", k)
        depthwise = group == cout and ws == cout * k * kh
        if not depthwise:
            return "gconv"
        return "dw3x3" if k == 3 == kh else "dw5x5" if k == 5 == kh else "dw_large"
    if type_ in ("Deconvolution", "DeconvolutionDepthWise"):
        return "deconv"
    if type_ in ("InnerProduct", "Gemm", "MatMul", "MultiHeadAttention"):
        return "fc"
    if type_ == "Pooling":
        return "pool"
    return "other"


def _top_bytes(t: Sequence[int]) -> int:
    w, h, d, c, _pack, elemsize = t
    return w * h * d * c * elemsize


def _top_elems(t: Sequence[int]) -> int:
    w, h, d, c, pack, _ = t
    return w * h * d * c * pack


_WEIGHT_SIZE_6 = ("Convolution", "ConvolutionDepthWise", "Deconvolution", "DeconvolutionDepthWise")


def layer_table(counts: ModelCounts, param: Union[str, Path]) -> pd.DataFrame:
    """One row per executed layer: class, instructions, MACs, bytes read and written."""
    spec = param_layers(param)
    blob_bytes: dict[str, int] = {}
    blob_hw: dict[str, int] = {}
    rows = []
    for lc in counts.layers:
        s = spec.get(lc.name)
        if s is None:
            raise ValueError(f"{param}: layer {lc.name} of the count is not in the .param file")
        kv, kind = s["params"], s["type"]
        in_bytes = sum(blob_bytes.get(b, 0) for b in s["bottoms"])
        ws = _int(kv, "6", 0)  # weight_data_size: MACs per output (conv) or input (deconv) position
        if kind in ("Convolution", "ConvolutionDepthWise") and lc.tops:
            macs = ws * lc.tops[0][0] * lc.tops[0][1]
        elif kind in ("Deconvolution", "DeconvolutionDepthWise") and s["bottoms"]:
            macs = ws * blob_hw.get(s["bottoms"][0], 0)
        elif kind == "InnerProduct":
            macs = _int(kv, "2", 0)  # its weight_data_size is param 2
        else:
            macs = 0
        for name, t in zip(s["tops"], lc.tops):
            blob_bytes[name], blob_hw[name] = _top_bytes(t), t[0] * t[1]
        weights = _int(kv, "2", 0) if kind == "InnerProduct" else ws if kind in _WEIGHT_SIZE_6 else 0
        rows.append({"model": counts.model, "cpu_model": counts.cpu_model, "index": lc.index, "type": lc.type,
                     "name": lc.name, "layer_class": layer_class(kind, kv), "insns": lc.insns, "macs": macs,
                     "weights": weights,
                     "in_bytes": in_bytes, "out_bytes": sum(_top_bytes(t) for t in lc.tops),
                     "out_elems": _top_elems(lc.tops[0]) if lc.tops else 0,
                     "out_channels": lc.tops[0][3] * lc.tops[0][4] if lc.tops else 0,
                     "out_elempack": lc.tops[0][4] if lc.tops else 0, "out_elemsize": lc.tops[0][5] if lc.tops else 0})
    return pd.DataFrame(rows)


def model_row(counts: ModelCounts, param: Union[str, Path]) -> dict:
    """Per-model figures for the calibration table: totals, MACs, traffic, instructions per class."""
    lt = layer_table(counts, param)
    row = {"model": counts.model, "cpu_model": counts.cpu_model,
           "input_whc": "x".join(str(d) for d in (counts.input_shape[2], counts.input_shape[1], counts.input_shape[0])),
           "insn_m": counts.insns_inference / 1e6, "insn_m_layer_pass": counts.insns_layer_pass / 1e6,
           "macs_m": lt.macs.sum() / 1e6, "traffic_mb": (lt.in_bytes.sum() + lt.out_bytes.sum()) / 1e6,
           "act_elems_m": lt.out_elems.sum() / 1e6, "weights_m": lt.weights.sum() / 1e6, "layers": len(lt)}
    by_class = lt.groupby("layer_class").insns.sum()
    for c in LAYER_CLASSES:
        row[f"insn_m_{c}"] = float(by_class.get(c, 0)) / 1e6
    macs_class = lt.groupby("layer_class").macs.sum()
    for c in LAYER_CLASSES:
        row[f"macs_m_{c}"] = float(macs_class.get(c, 0)) / 1e6
    row["qemu_version"], row["ncnn_version"] = counts.qemu_version, counts.ncnn_version
    return row


def calibration_counts(models: Optional[Iterable[str]] = None, cpu_models: Sequence[str] = CPU_MODELS,
                       params_dir: Optional[Path] = None, runner: Optional[Path] = None,
                       plugin: Optional[Path] = None, cache_dir: Optional[Path] = None) -> pd.DataFrame:
    """The calibration table: one row per (benchncnn model, CPU model); a failure is a row with its status."""
    available = benchncnn_models(params_dir, include_excluded=models is not None)
    names = list(models) if models is not None else list(available)
    runner = Path(runner) if runner else arm.build_runner()
    plugin = Path(plugin) if plugin else arm.build_plugin()
    rows = []
    for name in names:
        if name not in available:
            raise ValueError(f"unknown benchncnn model {name!r}; have {', '.join(available)}")
        for cpu in cpu_models:
            try:
                c = count_layers(available[name], benchncnn_shape(name), cpu, runner, plugin, cache_dir)
                rows.append({**model_row(c, available[name]), "status": "ok"})
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                rows.append({"model": name, "cpu_model": cpu, "status": f"error: {e}"[:500]})
    return pd.DataFrame(rows)
