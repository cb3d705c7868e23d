"""Converting a torch design for the other backends, cached by content (:mod:`bench.cache`).

:func:`convert_to_ncnn` traces a design (``torch.jit.trace``) and converts it with the ``pnnx``
package into ncnn's ``.param`` / ``.bin``; :func:`export_onnx` writes an ONNX file with
``torch.onnx.export`` (TorchScript exporter). Both are cached under ``<cache>/ncnn/<key>/`` and
``<cache>/onnx/<key>/``, the key being the SHA-256 of the state dict (names, dtypes, shapes,
bytes), the design, the input size, the converter and torch versions and the conversion options
(:func:`conversion_key`). An entry is filled under a temporary name and renamed when complete
(:func:`bench.cache.fill_once`). pnnx's side files (TorchScript file, pnnx graph, generated
Python) stay inside that folder, never in the cwd.

Input and output blob names: pnnx names them ``in0`` and ``out0, out1, ...`` in the order of the
traced model's inputs and outputs; they are read back from the ``.param`` file
(:func:`read_param_io`). The ONNX file uses the same names.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn as nn

from ..cache import cache_folder, fill_once

from .base import MB, BackendUnavailable, ConversionError
from .table import package_version

CACHE_FORMAT = 1  # bump when the conversion recipe changes, so old cache folders are not reused
ONNX_OPSET = 17
CONVERT_TIMEOUT_S = 900
# pnnx stores fp16 weights by default; ncnn on x86 widens them to fp32 at load, so they buy no speed
# here and move seg_matting's logits by up to 0.04 (fp32 weights: 1.5e-5). The suite keeps fp32.
DEFAULT_PNNX_FP16 = False


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
    from ..paths import DEFAULT_MODELS_DIR
    from ..models.weights import load_model
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
    """Design ``arch`` with ``weights`` (see :func:`bench.models.weights.load_model`) as an ncnn model for
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


