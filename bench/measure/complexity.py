"""Cost of a design on paper: parameters, weight size, MACs (fvcore and thop), activation memory and
a per-layer table.

Just over 600 lines: the counting conventions (handle table, fvcore / thop rules, their comparison)
explain each other and stay in one file.

Conventions (``docs/complexity.md`` explains them with the measured numbers):

* **1 MAC = 1 multiply-add.** ``macs`` / ``macs_g`` are fvcore's count with its *built-in* handles
  only (convolutions incl. transposed, linear/matmul, normalisation, bilinear/nearest upsampling,
  adaptive average pooling), exactly what ``fvcore.nn.FlopCountAnalysis(model, x).total()`` returns
  and what the reference numbers in ``shared/ARCHITECTURES.md`` are. fvcore calls them "flops"
  but counts one fused multiply-add as one.
* Ops fvcore has no handle for (activations, element-wise arithmetic, pooling, softmax) get the
  handles of :data:`ELEMENTWISE_HANDLES`. What they count is reported apart, as
  ``elementwise_ops`` / ``elementwise_g`` (operations, not MACs), so ``macs_g`` stays comparable
  with every other fvcore number. Each handle's rule is in :data:`ELEMENTWISE_CONVENTIONS`.
* ``macs_g_thop`` is ``thop.profile(model, (x,))`` with thop's default rules, run on a deep copy.
  It differs from fvcore by known, per-op rules; :func:`compare_counters` splits both counts by
  op kind so every difference is accounted for.
* Activation memory is measured, not estimated: one forward at batch 1 under ``torch.no_grad`` with
  a dispatch mode that sees every ATen op (see :func:`measure_activations`).
* Sizes: 1 MB = 10**6 bytes; weight sizes count parameters only (BN running statistics fold into
  the convolutions at deployment).

Every function here is pure: it returns values, never prints or writes files, does not change the
model (train/eval mode is restored; thop runs on a copy) and silences fvcore's and thop's chatter.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import logging
import math
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import pandas as pd
import torch
import torch.nn as nn

InputSize = Union[int, Sequence[int]]  # side of a square input, or (height, width)

MB = 1e6  # bytes in a megabyte, as used in every *_mb field
GIGA = 1e9

# --------------------------------------------------------------------------------------------
# Extra fvcore handles: element-wise work, counted apart from MACs
# --------------------------------------------------------------------------------------------


def _shape(val: Any) -> Optional[list[int]]:
    """Shape of a traced value, None when it is not a tensor of known shape."""
    try:
        if val.isCompleteTensor():
            return list(val.type().sizes())
    except RuntimeError:
        pass
    return None


def _numel(val: Any) -> int:
    shape = _shape(val)
    return math.prod(shape) if shape is not None else 0


def _int_list(val: Any) -> list[int]:
    """An int or int-list argument of a traced op (a constant or a ``prim::ListConstruct``)."""
    node = val.node()
    if node.kind() == "prim::ListConstruct":
        return [int(i.toIValue()) for i in node.inputs()]
    v = val.toIValue()
    return [int(x) for x in v] if isinstance(v, (list, tuple)) else [int(v)]


def pointwise_handle(inputs: list, outputs: list) -> int:
    """1 operation per output element (broadcast operands are counted at the output's size)."""
    return _numel(outputs[0])


def window_handle(inputs: list, outputs: list) -> int:
    """``kh * kw`` operations per output element of an average / max pooling window."""
    return _numel(outputs[0]) * math.prod(_int_list(inputs[1]))


def softmax_handle(inputs: list, outputs: list) -> int:
    """3 operations per element: exponential, addition into the sum, division by the sum."""
    return 3 * _numel(outputs[0])


def reduce_handle(inputs: list, outputs: list) -> int:
    """1 operation per input element (each element is added once), like fvcore's adaptive pooling."""
    return _numel(inputs[0])


_POINTWISE = (
    # arithmetic (tensor-tensor or tensor-scalar; in-place variants trace with a trailing "_")
    "add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "neg", "pow",
    "sqrt", "rsqrt", "exp", "log", "abs", "square",
    # activations: fvcore ignores relu / clamp silently and has no handle for the others
    "relu", "relu_", "hardtanh", "hardtanh_", "relu6", "clamp", "clamp_", "clamp_min", "clamp_max",
    "leaky_relu", "leaky_relu_", "prelu", "elu", "elu_", "gelu", "silu", "silu_",
    "sigmoid", "sigmoid_", "tanh", "tanh_", "hardsigmoid", "hardsigmoid_", "hardswish",
    "hardswish_", "mish",
)
ELEMENTWISE_HANDLES: dict[str, Callable[[list, list], int]] = {
    **{f"aten::{op}": pointwise_handle for op in _POINTWISE},
    "aten::avg_pool2d": window_handle,
    "aten::max_pool2d": window_handle,
    "aten::softmax": softmax_handle,
    "aten::log_softmax": softmax_handle,
    "aten::mean": reduce_handle,
    "aten::sum": reduce_handle,
    "aten::adaptive_max_pool2d": reduce_handle,
}
"""Handles added to fvcore's table. Their counts go to ``elementwise_ops``, never to ``macs``."""

ELEMENTWISE_CONVENTIONS: dict[str, str] = {
    "pointwise": "1 operation per output element: " + ", ".join(sorted({o.rstrip("_") for o in _POINTWISE}))
                 + " (ReLU6 traces as hardtanh; in-place variants alike; a broadcast operand "
                   "is counted at the output's size)",
    "avg_pool2d, max_pool2d": "kh*kw operations per output element (the window's additions or "
                              "comparisons, the division of the average included)",
    "softmax, log_softmax": "3 operations per element (exponential, sum, division)",
    "mean, sum, adaptive_max_pool2d": "1 operation per input element",
}
"""Human-readable rule of each group of :data:`ELEMENTWISE_HANDLES` (documentation and reports)."""

# Key under which fvcore reports an op: the op name without "aten::" (``_simplify_op_name``).
ELEMENTWISE_OPS: frozenset[str] = frozenset(k.split("::", 1)[1] for k in ELEMENTWISE_HANDLES)


def is_elementwise(op: str) -> bool:
    """Whether an fvcore operator key (e.g. ``hardtanh_``) belongs to ``elementwise_ops``."""
    return op in ELEMENTWISE_OPS


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def input_hw(input_size: InputSize) -> tuple[int, int]:
    if isinstance(input_size, int):
        return input_size, input_size
    h, w = input_size
    return int(h), int(w)


def make_input(input_size: InputSize, in_channels: int = 3, seed: int = 0) -> torch.Tensor:
    """A fixed random ``1 x C x H x W`` input (the counts do not depend on its values)."""
    h, w = input_hw(input_size)
    return torch.randn(1, in_channels, h, w, generator=torch.Generator().manual_seed(seed))


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Inference mode for the count (fvcore counts BN differently in training); restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the counters' warnings, logging and prints (records return values; nothing prints)."""
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _as_inputs(x: Union[torch.Tensor, Sequence[int], int]) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else make_input(x)


# --------------------------------------------------------------------------------------------
# Parameters and weight size
# --------------------------------------------------------------------------------------------


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameters; a parameter shared by two modules counts once."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def ncnn_bin_size_mb(path: Union[str, Path, None]) -> Optional[float]:
    """Size of an ncnn ``.bin`` weight file in MB, None without a file (hook for the ncnn path)."""
    if path is None:
        return None
    return Path(path).stat().st_size / MB


# --------------------------------------------------------------------------------------------
# MACs: fvcore (primary) and thop (cross-check)
# --------------------------------------------------------------------------------------------


def fvcore_analysis(model: nn.Module, x: Union[torch.Tensor, InputSize]):
    """``fvcore.nn.FlopCountAnalysis`` with the built-in handles plus :data:`ELEMENTWISE_HANDLES`,
    warnings off, already traced in eval mode (the model's mode is restored). Its ``total()`` mixes
    MACs and element-wise ops: use :func:`count_macs_fvcore` for the split."""
    from fvcore.nn import FlopCountAnalysis

    fa = FlopCountAnalysis(model, (_as_inputs(x),))
    fa.set_op_handle(**ELEMENTWISE_HANDLES)
    fa.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with _quiet(), _eval_mode(model), torch.no_grad():
        fa.total()  # trace now, in eval mode; fvcore keeps the result for every later query
    return fa


@dataclass(frozen=True)
class FvcoreCount:
    macs: int  # fvcore built-in handles (1 MAC = 1 multiply-add)
    elementwise_ops: int  # extra handles (operations, not MACs)
    macs_by_op: dict[str, int]
    elementwise_by_op: dict[str, int]
    unsupported_ops: dict[str, int]  # op -> occurrences with no handle (empty for a complete table)
    self_counts: dict[str, Counter]  # module name -> ops run directly in its forward (not children)


def _split(counter: Counter) -> tuple[dict[str, int], dict[str, int]]:
    macs = {k: int(v) for k, v in counter.items() if not is_elementwise(k)}
    ew = {k: int(v) for k, v in counter.items() if is_elementwise(k)}
    return macs, ew


def _self_counts(by_module: dict[str, Counter]) -> dict[str, Counter]:
    """Per-module counts of the ops a module runs itself, excluding its submodules.

    fvcore credits an op to its innermost module and to every ancestor of that module's (dotted,
    canonical) name, so subtracting each module's count from its parent leaves exactly the ops of
    the module's own forward; the self counts of all modules add up to the model total.
    """
    own = {name: Counter(c) for name, c in by_module.items()}
    for name, c in by_module.items():
        if name:
            parent = name.rsplit(".", 1)[0] if "." in name else ""
            own[parent].subtract(c)
    return {name: +c for name, c in own.items()}  # unary + drops zero entries


def count_macs_fvcore(model: nn.Module, x: Union[torch.Tensor, InputSize]) -> FvcoreCount:
    """fvcore's MACs (built-in handles) and the element-wise ops of the extra handles, from one trace."""
    fa = fvcore_analysis(model, x)
    by_module = fa.by_module_and_operator()
    unsupported = dict(fa.unsupported_ops())
    macs_by_op, ew_by_op = _split(by_module[""])
    return FvcoreCount(macs=sum(macs_by_op.values()), elementwise_ops=sum(ew_by_op.values()),
                       macs_by_op=macs_by_op, elementwise_by_op=ew_by_op,
                       unsupported_ops={k: int(v) for k, v in unsupported.items()},
                       self_counts=_self_counts(by_module))


@dataclass(frozen=True)
class ThopCount:
    macs: int  # what ``thop.profile`` returns as its first value
    by_module: dict[str, int]  # leaf module name -> MACs thop credited to it


def count_macs_thop(model: nn.Module, x: Union[torch.Tensor, InputSize]) -> ThopCount:
    """``thop.profile`` with its default rules, on a deep copy (thop adds buffers to modules)."""
    with _quiet():
        import thop

        work = copy.deepcopy(model)
        total, _, info = thop.profile(work, inputs=(_as_inputs(x),), verbose=False, ret_layer_info=True)

    by_module: dict[str, int] = {}

    def walk(tree: dict, prefix: str) -> None:
        for name, (ops, _params, sub) in tree.items():
            full = f"{prefix}.{name}" if prefix else name
            if sub:
                walk(sub, full)
            elif ops:
                by_module[full] = int(round(ops))

    walk(info, "")
    return ThopCount(macs=int(round(total)), by_module=by_module)


# --------------------------------------------------------------------------------------------
# Activation memory
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivationRecord:
    peak_bytes: int  # most bytes of intermediate tensors alive at once (input and weights excluded)
    largest_bytes: int  # largest single tensor produced by an op
    largest_shape: tuple[int, ...]
    largest_op: str  # the ATen op that produced it
    total_bytes: int  # bytes of all intermediate storages allocated (sum, not peak)
    n_ops: int  # ATen ops run


def measure_activations(model: nn.Module, x: Union[torch.Tensor, InputSize]) -> ActivationRecord:
    """Peak bytes of live intermediate tensors during one forward (no autograd), measured.

    Method: a ``TorchDispatchMode`` sees every ATen op the forward runs. Each new tensor storage an
    op returns is recorded with its size and a weak reference (``StorageWeakRef``); at the start of
    every op, storages whose last reference is gone are dropped. The live total is taken right
    after each op, when the op's inputs and output are both alive, which is where the peak of an
    op-by-op execution lies. Views and in-place results share their base's storage and add
    nothing; the input and the weights exist before the forward and are not counted; the outputs
    are. Scratch memory inside a kernel (e.g. im2col buffers) is not a tensor and is not counted.
    """
    from torch.multiprocessing.reductions import StorageWeakRef
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    x = _as_inputs(x)
    existing = {t.untyped_storage().data_ptr() for t in [x, *model.parameters(), *model.buffers()]}

    class Tracker(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.live: dict[int, tuple[Any, int]] = {}  # data_ptr -> (weak ref, bytes)
            self.live_bytes = self.peak_bytes = self.total_bytes = self.n_ops = 0
            self.largest: tuple[int, tuple[int, ...], str] = (0, (), "")

        def _drop_dead(self) -> None:
            for key, (ref, nbytes) in list(self.live.items()):
                if ref.expired():
                    del self.live[key]
                    self.live_bytes -= nbytes

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self._drop_dead()
            out = func(*args, **(kwargs or {}))
            self.n_ops += 1
            for t in tree_flatten(out)[0]:
                if not isinstance(t, torch.Tensor):
                    continue
                storage = t.untyped_storage()
                key, nbytes = storage.data_ptr(), storage.nbytes()
                if nbytes == 0 or key in existing:
                    continue
                if key in self.live:
                    if not self.live[key][0].expired():
                        continue  # a view or in-place result of a live storage: nothing new
                    self.live_bytes -= self.live.pop(key)[1]  # freed inside this op, address reused
                self.live[key] = (StorageWeakRef(storage), nbytes)
                self.live_bytes += nbytes
                self.total_bytes += nbytes
                size = t.numel() * t.element_size()
                if size > self.largest[0]:
                    self.largest = (size, tuple(t.shape), str(func.overloadpacket.__name__))
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
            return out

    tracker = Tracker()
    with _eval_mode(model), torch.no_grad():
        with tracker:
            out = model(x)
        del out
    size, shape, op = tracker.largest
    return ActivationRecord(peak_bytes=tracker.peak_bytes, largest_bytes=size, largest_shape=shape,
                            largest_op=op, total_bytes=tracker.total_bytes, n_ops=tracker.n_ops)


# --------------------------------------------------------------------------------------------
# The record
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComplexityRecord:
    """Cost of one design at one input size (batch 1). 1 MAC = 1 multiply-add; 1 MB = 1e6 bytes."""

    input_h: int
    input_w: int
    params: int
    params_trainable: int
    size_mb_fp32: float  # parameters x 4 bytes
    size_mb_fp16: float  # parameters x 2 bytes
    size_mb_ncnn_bin: Optional[float]  # size of the ncnn .bin file; None until one is given
    macs: int  # fvcore, built-in handles: the convention of the reference numbers
    macs_g: float  # macs / 1e9
    macs_g_thop: float  # thop.profile, default rules
    thop_rel_diff: float  # macs_g_thop / macs_g - 1 (explained op by op by compare_counters)
    macs_g_conv: float  # part of macs_g in convolutions (incl. transposed); the rest is norm/resize/pool
    elementwise_ops: int  # extra handles: activations, element-wise arithmetic, pooling, softmax
    elementwise_g: float  # elementwise_ops / 1e9 (operations, not MACs)
    act_peak_mb: float  # peak bytes of live intermediate tensors in one forward
    act_largest_mb: float  # largest single intermediate tensor
    act_largest_shape: str  # e.g. "1x192x128x128"
    unsupported_ops: str  # ops fvcore could not count, "op:count" joined by ","; "" when complete


def _fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def profile_model(model: nn.Module, input_size: InputSize = 256, in_channels: int = 3,
                  ncnn_bin: Union[str, Path, None] = None) -> ComplexityRecord:
    """Every paper cost of ``model`` for a ``1 x in_channels x H x W`` input.

    ``ncnn_bin``: path of the design's converted ncnn ``.bin`` (fills ``size_mb_ncnn_bin``).
    """
    h, w = input_hw(input_size)
    x = make_input((h, w), in_channels)
    total, trainable = count_params(model)
    act = measure_activations(model, x)  # first: an eager forward rejects an invalid input size
    fv = count_macs_fvcore(model, x)
    th = count_macs_thop(model, x)
    conv_macs = fv.macs_by_op.get("conv", 0)
    return ComplexityRecord(
        input_h=h, input_w=w, params=total, params_trainable=trainable,
        size_mb_fp32=total * 4 / MB, size_mb_fp16=total * 2 / MB,
        size_mb_ncnn_bin=ncnn_bin_size_mb(ncnn_bin),
        macs=fv.macs, macs_g=fv.macs / GIGA, macs_g_thop=th.macs / GIGA,
        thop_rel_diff=th.macs / fv.macs - 1 if fv.macs else float("nan"),
        macs_g_conv=conv_macs / GIGA,
        elementwise_ops=fv.elementwise_ops, elementwise_g=fv.elementwise_ops / GIGA,
        act_peak_mb=act.peak_bytes / MB, act_largest_mb=act.largest_bytes / MB,
        act_largest_shape=_fmt_shape(act.largest_shape),
        unsupported_ops=",".join(f"{k}:{v}" for k, v in sorted(fv.unsupported_ops.items())),
    )


SWEEP_SIZES: tuple[int, ...] = (128, 192, 256, 320, 512)
"""Input sides of the resolution sweep (square inputs)."""


def sweep_sizes(input_multiple: int = 1, sizes: Sequence[int] = SWEEP_SIZES) -> list[int]:
    """The sides of ``sizes`` a design accepts (divisible by its input multiple)."""
    return [s for s in sizes if s % input_multiple == 0]


def profile_sweep(model: nn.Module, sizes: Sequence[int] = SWEEP_SIZES, input_multiple: int = 1,
                  in_channels: int = 3) -> pd.DataFrame:
    """:func:`profile_model` at every accepted side of ``sizes``: one row per size."""
    return pd.DataFrame([dataclasses.asdict(profile_model(model, s, in_channels))
                         for s in sweep_sizes(input_multiple, sizes)])


# --------------------------------------------------------------------------------------------
# Per-layer table
# --------------------------------------------------------------------------------------------

LAYER_COLUMNS = ["module", "type", "calls", "output_shape", "params", "macs", "macs_pct",
                 "elementwise_ops", "ops"]


def _output_shapes(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, list[str]], list[str]]:
    """Output shape of every call of every module, and module names in order of first completion."""
    shapes: dict[str, list[str]] = {}
    order: list[str] = []

    def hook(name: str):
        def fn(_m, _inp, out):
            flat = [o for o in (out if isinstance(out, (tuple, list)) else [out])
                    if isinstance(o, torch.Tensor)]
            if name not in shapes:
                shapes[name] = []
                order.append(name)
            shapes[name].append(", ".join(_fmt_shape(o.shape) for o in flat))
        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules()]
    try:
        with _eval_mode(model), torch.no_grad():
            model(x)
    finally:
        for hnd in handles:
            hnd.remove()
    return shapes, order


def layer_table(model: nn.Module, input_size: InputSize = 256, in_channels: int = 3) -> pd.DataFrame:
    """One row per module that owns parameters or runs ops itself, in execution order.

    ``macs`` / ``elementwise_ops`` are the ops run directly in the module's forward, its submodules
    excluded (for a container: its own additions, resizes...), so each column sums exactly to the
    model total (``macs`` to :func:`count_macs_fvcore` ``.macs``); ``params`` are the module's own
    parameters, summing to the model's. ``macs_pct`` is the share of the total MACs in percent;
    ``ops`` names the ops counted in the row; ``module`` "" is the model itself.
    """
    x = make_input(input_size, in_channels)
    fv = count_macs_fvcore(model, x)
    shapes, order = _output_shapes(model, x)
    modules = dict(model.named_modules())
    seen_params: set[int] = set()
    rows = []
    for name, mod in modules.items():
        own = [p for p in mod.parameters(recurse=False) if id(p) not in seen_params]
        seen_params.update(id(p) for p in own)
        counts = fv.self_counts.get(name, Counter())
        macs, ew = _split(counts)
        is_leaf = next(mod.children(), None) is None
        if not (own or macs or ew or (is_leaf and name in shapes)):
            continue
        calls = shapes.get(name, [])
        rows.append({
            "module": name, "type": type(mod).__name__, "calls": len(calls),
            "output_shape": " | ".join(dict.fromkeys(calls)),
            "params": sum(p.numel() for p in own), "macs": sum(macs.values()),
            "elementwise_ops": sum(ew.values()),
            "ops": ", ".join(sorted(counts)),
        })
    rank = {name: i for i, name in enumerate(order)}
    rows.sort(key=lambda r: rank.get(r["module"], len(rank)))
    df = pd.DataFrame(rows, columns=[c for c in LAYER_COLUMNS if c != "macs_pct"])
    df.insert(LAYER_COLUMNS.index("macs_pct"), "macs_pct",
              100.0 * df["macs"] / fv.macs if fv.macs else 0.0)
    return df.reset_index(drop=True)


def layer_rows(model: nn.Module, input_size: InputSize = 256) -> list[dict]:
    """:func:`layer_table` as result rows, one per layer in execution order: ``layer`` (the module's
    name, "(model)" for the model itself) and every other column prefixed ``layer_`` (``layer_macs``,
    ``layer_macs_pct``, ``layer_params``...), so they never mix with a profile row's model totals."""
    table = layer_table(model, input_size)
    return [{"layer": r["module"] or "(model)", **{f"layer_{k}": v for k, v in r.items() if k != "module"}}
            for r in table.to_dict("records")]


# --------------------------------------------------------------------------------------------
# fvcore vs thop, op kind by op kind
# --------------------------------------------------------------------------------------------

# Category of a module type for the comparison; ops outside any module fall under their fvcore op.
_MODULE_KIND = {
    nn.Conv1d: "conv", nn.Conv2d: "conv", nn.Conv3d: "conv",
    nn.ConvTranspose1d: "conv_transpose", nn.ConvTranspose2d: "conv_transpose",
    nn.ConvTranspose3d: "conv_transpose",
    nn.BatchNorm1d: "batch_norm", nn.BatchNorm2d: "batch_norm", nn.BatchNorm3d: "batch_norm",
    nn.PReLU: "prelu", nn.AvgPool2d: "avg_pool2d", nn.MaxPool2d: "max_pool2d",
    nn.AdaptiveAvgPool2d: "adaptive_avg_pool2d", nn.Softmax: "softmax", nn.Linear: "linear",
    nn.Upsample: "upsample", nn.UpsamplingBilinear2d: "upsample", nn.UpsamplingNearest2d: "upsample",
}
_OP_KIND = {"upsample_bilinear2d": "upsample", "upsample_nearest2d": "upsample",
            "hardtanh_": "hardtanh", "relu_": "relu", "add_": "add", "mul_": "mul",
            "sigmoid_": "sigmoid"}

THOP_RULES: dict[str, str] = {
    "conv": "same as fvcore: output elements x C_in/groups x kh x kw",
    "conv_transpose": "output elements x C_in/groups x kh x kw, i.e. stride_h x stride_w times the "
                      "true count (fvcore: input elements x C_out/groups x kh x kw)",
    "batch_norm": "4 per element with affine (fvcore: 2 per element in eval mode)",
    "upsample": "only nn.Upsample modules are seen; F.interpolate counts 0 (fvcore: 4 per output "
                "element for bilinear)",
    "adaptive_avg_pool2d": "(window + 1) per output element (fvcore: 1 per input element)",
    "avg_pool2d": "1 per output element, in thop's MACs (fvcore: no handle; ours: elementwise)",
    "prelu": "1 per element, in thop's MACs (fvcore: no handle; ours: elementwise)",
    "softmax": "3 per element for an nn.Softmax module; F.softmax counts 0",
    "relu": "nn.ReLU counts 0; F.relu is invisible",
    "hardtanh": "nn.ReLU6 counts 0",
    "max_pool2d": "nn.MaxPool2d counts 0",
    "sigmoid": "nn.Sigmoid has no rule (0); torch.sigmoid is invisible",
    "functional": "F.*, torch.* and tensor operators (add, mul, sigmoid, interpolate...) run "
                  "outside modules: invisible to thop",
}
"""How thop counts each op kind, against fvcore (shown in the comparison table and the docs)."""


def compare_counters(model: nn.Module, input_size: InputSize = 256,
                     in_channels: int = 3) -> pd.DataFrame:
    """fvcore and thop side by side, one row per op kind (and a ``total`` row).

    Columns: ``fvcore_macs`` (built-in handles; sums to ``macs``), ``elementwise_ops`` (our extra
    handles), ``thop_macs`` (sums to ``thop.profile``'s total), ``thop_minus_fvcore`` and the rule
    by which thop differs. thop credits ops to leaf modules only, so an op kind is taken from the
    module type for thop and, for fvcore, from the module when it is a leaf of a known type, else
    from the op name.
    """
    x = make_input(input_size, in_channels)
    fv = count_macs_fvcore(model, x)
    th = count_macs_thop(model, x)
    modules = dict(model.named_modules())
    table: dict[str, Counter] = {}

    def add(kind: str, column: str, value: int) -> None:
        table.setdefault(kind, Counter())[column] += value

    for name, counts in fv.self_counts.items():
        kind_of_module = _MODULE_KIND.get(type(modules.get(name)))
        for op, v in counts.items():
            if is_elementwise(op):
                add(_OP_KIND.get(op, op), "elementwise_ops", int(v))
            else:
                add(kind_of_module or _OP_KIND.get(op, op), "fvcore_macs", int(v))
    for name, v in th.by_module.items():
        mod = modules.get(name)
        add(_MODULE_KIND.get(type(mod), type(mod).__name__), "thop_macs", v)
    rows = []
    for kind in sorted(table, key=lambda k: -max(table[k].values())):
        c = table[kind]
        rows.append({"kind": kind, "fvcore_macs": c["fvcore_macs"], "thop_macs": c["thop_macs"],
                     "thop_minus_fvcore": c["thop_macs"] - c["fvcore_macs"],
                     "elementwise_ops": c["elementwise_ops"],
                     "thop_rule": THOP_RULES.get(kind, THOP_RULES["functional"]
                                                 if not c["thop_macs"] else "")})
    df = pd.DataFrame(rows, columns=["kind", "fvcore_macs", "thop_macs", "thop_minus_fvcore",
                                     "elementwise_ops", "thop_rule"])
    tot = {"kind": "total", "fvcore_macs": fv.macs, "thop_macs": th.macs,
           "thop_minus_fvcore": th.macs - fv.macs, "elementwise_ops": fv.elementwise_ops,
           "thop_rule": ""}
    return pd.concat([df, pd.DataFrame([tot])], ignore_index=True)


__all__ = [
    "ActivationRecord", "ComplexityRecord", "ELEMENTWISE_CONVENTIONS", "ELEMENTWISE_HANDLES",
    "ELEMENTWISE_OPS", "FvcoreCount", "LAYER_COLUMNS", "THOP_RULES", "ThopCount", "compare_counters",
    "count_macs_fvcore", "count_macs_thop", "count_params", "fvcore_analysis", "input_hw",
    "is_elementwise", "layer_rows", "layer_table", "make_input", "measure_activations", "ncnn_bin_size_mb",
    "profile_model", "profile_sweep", "SWEEP_SIZES", "sweep_sizes",
]
