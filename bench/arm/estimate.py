"""Estimated ARM device latency from qemu instruction counts, calibrated on ncnn's published timings.

ncnn's benchncnn was run by its authors and users on real phones and boards
(``../shared/anchors/ncnn-benchmark/device_tables.csv``); ``bench.arm.counts`` counts the same
models' guest instructions under ``qemu -cpu cortex-a72`` (ARMv8.0) and ``-cpu cortex-a76``
(ARMv8.2, fp16 kernels). Per device and thread count this module fits ``ms = features @ coef``
(non-negative coefficients, least squares on relative errors) for a few model forms:

* ``macs``: a x MACs (for comparison only),
* ``insn``: a x instructions,
* ``insn+traffic``: a x instructions + c x activation bytes read and written (memory-bound layers),
* ``insn+generic``: instructions of layers ncnn runs with generic kernels (depthwise larger than
  5x5, grouped convolutions that are not depthwise) at their own rate,
* ``insn+generic+traffic``: both,
* ``insn+layers`` / ``insn+traffic+layers``: plus a fixed cost per executed layer (thread
  start-up and synchronisation, which matters most with several threads),
* ``insn+traffic+weights``: plus the weights read once per inference (large fully-connected
  layers: alexnet, vgg16),
* ``classes`` / ``classes+traffic``: one rate each for the instructions of convolutions and
  fully-connected layers, of depthwise and grouped convolutions, and of everything else.

The form is chosen per ISA class by leave-one-out (LOO) error over the benchmark models, never by
the suite's designs. An estimate is always a record with ``kind="estimate"``, an 80% band from the
signed LOO errors of its device fit (``arm_est_ms_low``/``_high``), the fit's LOO figures, and a
flag when the model lies outside the calibration set (instructions per MAC, traffic per
instruction, or layer mix). Nothing here writes files.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from .. import columns as C
from . import counts as arm_counts

CALIBRATION_TABLE = Path(__file__).resolve().parent / "calibration_counts.csv"


def default_device_tables() -> Path:
    return arm_counts.default_params_dir().parent / "device_tables.csv"


@dataclasses.dataclass(frozen=True)
class Device:
    """A device of ncnn's tables and how its rows are chosen."""

    name: str  # table device id
    isa: str  # "armv8.0" or "armv8.2"
    core: str  # core the 1-thread row ran on
    powersave: Mapping[int, int]  # threads -> benchncnn powersave of the row used (0 all, 1 little, 2 big)
    title: str

    @property
    def cpu_model(self) -> str:
        """QEMU CPU model whose counts fit this core type."""
        return "cortex-a72" if self.isa == "armv8.0" else "cortex-a76"


DEVICES: dict[str, Device] = {d.name: d for d in (
    Device("rpi4", "armv8.0", "A72", {1: 0, 4: 0}, "Raspberry Pi 4 (Cortex-A72 1.8 GHz)"),
    Device("rpi3bplus", "armv8.0", "A53", {1: 0, 4: 0}, "Raspberry Pi 3B+ (Cortex-A53 1.4 GHz)"),
    Device("sd835", "armv8.0", "Kryo280 (A73-class)", {1: 2, 4: 2}, "Snapdragon 835 (Galaxy S8 generation), big cores"),
    Device("rk3399", "armv8.0", "A72", {1: 2, 2: 2, 4: 1},
           "RK3399: 1 and 2 threads on the A72s; 4 threads on the four A53"),
    Device("rpi5", "armv8.2", "A76", {1: 0, 4: 0}, "Raspberry Pi 5 (Cortex-A76 2.4 GHz)"),
    Device("rk3588", "armv8.2", "A76", {1: 2, 4: 2}, "RK3588, big cores (Cortex-A76 2.4 GHz)"),
    Device("sd855plus", "armv8.2", "Kryo485 (A76-class)", {1: 2, 4: 2}, "Snapdragon 855+, big cores"),
)}

GENERIC_CLASSES = ("dw_large", "gconv")  # kernels ncnn has no specialised ARM code for
CONV_CLASSES = ("conv1x1", "conv3x3s1", "conv_other", "fc", "deconv")  # GEMM-like, compute-bound
DW_CLASSES = ("dw3x3", "dw5x5", "dw_large", "gconv")  # depthwise / grouped: few MACs per byte


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    return df[name].to_numpy(dtype=float)


FORMS: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {
    "macs": lambda d: np.c_[_col(d, "macs_m")],
    "insn": lambda d: np.c_[_col(d, "insn_m")],
    "insn+traffic": lambda d: np.c_[_col(d, "insn_m"), _col(d, "traffic_mb")],
    "insn+generic": lambda d: np.c_[_col(d, "insn_m") - _generic(d), _generic(d)],
    "insn+generic+traffic": lambda d: np.c_[_col(d, "insn_m") - _generic(d), _generic(d), _col(d, "traffic_mb")],
    "insn+layers": lambda d: np.c_[_col(d, "insn_m"), _col(d, "layers")],
    "insn+traffic+layers": lambda d: np.c_[_col(d, "insn_m"), _col(d, "traffic_mb"), _col(d, "layers")],
    "classes": lambda d: np.c_[_sum(d, CONV_CLASSES), _sum(d, DW_CLASSES),
                               _col(d, "insn_m") - _sum(d, CONV_CLASSES) - _sum(d, DW_CLASSES)],
    "insn+traffic+weights": lambda d: np.c_[_col(d, "insn_m"), _col(d, "traffic_mb"), _col(d, "weights_m")],
    "classes+traffic": lambda d: np.c_[_sum(d, CONV_CLASSES), _sum(d, DW_CLASSES),
                                       _col(d, "insn_m") - _sum(d, CONV_CLASSES) - _sum(d, DW_CLASSES),
                                       _col(d, "traffic_mb")],
}
FORM_TERMS = {"macs": ("ms_per_mmac",), "insn": ("ms_per_minsn",), "insn+traffic": ("ms_per_minsn", "ms_per_mb"),
              "insn+generic": ("ms_per_minsn", "ms_per_minsn_generic"),
              "insn+generic+traffic": ("ms_per_minsn", "ms_per_minsn_generic", "ms_per_mb"),
              "insn+layers": ("ms_per_minsn", "ms_per_layer"), "insn+traffic+layers": ("ms_per_minsn", "ms_per_mb", "ms_per_layer"),
              "insn+traffic+weights": ("ms_per_minsn", "ms_per_mb", "ms_per_mweight"),
              "classes": ("ms_per_minsn_conv", "ms_per_minsn_dw", "ms_per_minsn_other"),
              "classes+traffic": ("ms_per_minsn_conv", "ms_per_minsn_dw", "ms_per_minsn_other", "ms_per_mb")}


def _sum(d: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    return sum(_col(d, f"insn_m_{c}") for c in classes)


def _generic(d: pd.DataFrame) -> np.ndarray:
    return _sum(d, GENERIC_CLASSES)


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


def fit_relative(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative coef minimising sum(((X @ coef) / y - 1)^2) (scipy's NNLS on rows scaled by 1/y)."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    if X.ndim != 2 or len(X) != len(y) or len(y) == 0 or np.any(y <= 0):
        raise ValueError(f"need X (n, k) and positive y (n,), got {X.shape} and {y.shape}")
    coef, _ = nnls(X / y[:, None], np.ones(len(y)))
    return coef


def loo_errors(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed leave-one-out relative errors: prediction of model i from a fit without it, / y_i - 1."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    out = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        out[i] = X[i] @ fit_relative(X[keep], y[keep]) / y[i] - 1.0
    return out


@dataclasses.dataclass(frozen=True)
class DeviceFit:
    """One model form fitted on one device table (all benchmark models), with its LOO errors."""

    device: str
    threads: int
    powersave: int
    isa: str
    cpu_model: str
    form: str
    coef: tuple[float, ...]
    terms: tuple[str, ...]
    n_models: int
    loo_err_median: float  # of |error|
    loo_err_p90: float
    loo_err_max: float
    loo_err_q10_signed: float  # 10th / 90th percentile of signed errors (prediction / published - 1)
    loo_err_q90_signed: float
    fit_err_median: float  # in-sample, for comparison
    worst: tuple[tuple[str, float], ...]  # (model, signed LOO error), worst three
    table_date: str
    models: tuple[str, ...]
    loo_errors: tuple[float, ...]
    published_ms: tuple[float, ...]  # the table's times of ``models`` (LOO prediction = published x (1 + error))

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features, float) @ np.asarray(self.coef)


def device_timings(tables: pd.DataFrame, device: str, threads: int, powersave: Optional[int] = None,
                   stat: str = "avg_ms") -> pd.Series:
    """Published ms per model for one device / thread count / powersave (int8 models left out)."""
    rows = tables[(tables.device == device) & (tables.threads == threads)]
    if powersave is not None:
        rows = rows[rows.powersave == powersave]
    rows = rows[~rows.model.str.endswith("_int8")]
    if rows.model.duplicated().any():
        dup = sorted(rows.model[rows.model.duplicated()].unique())
        raise ValueError(f"device {device} threads {threads}: several rows for {dup} (pass powersave)")
    return rows.set_index("model")[stat].astype(float)


def _joined(counts: pd.DataFrame, ms: pd.Series, cpu_model: str) -> pd.DataFrame:
    c = counts[(counts.cpu_model == cpu_model) & (counts.get("status", "ok") == "ok")].set_index("model")
    common = [m for m in c.index if m in ms.index]
    return c.loc[common].assign(ms=ms.loc[common].to_numpy())


def fit_device(counts: pd.DataFrame, tables: pd.DataFrame, device: Device, threads: int, form: str,
               stat: str = "avg_ms") -> DeviceFit:
    """Fit ``form`` on ``device`` at ``threads`` over every benchmark model with a count and a timing."""
    ps = device.powersave[threads]
    ms = device_timings(tables, device.name, threads, ps, stat)
    data = _joined(counts, ms, device.cpu_model)
    if len(data) < 5:
        raise ValueError(f"{device.name}: only {len(data)} benchmark models with counts and timings")
    X, y = FORMS[form](data), data.ms.to_numpy()
    coef = fit_relative(X, y)
    err = loo_errors(X, y)
    order = np.argsort(-np.abs(err))
    date = tables[(tables.device == device.name) & (tables.threads == threads)].date.iloc[0]
    return DeviceFit(
        device=device.name, threads=threads, powersave=ps, isa=device.isa, cpu_model=device.cpu_model, form=form,
        coef=tuple(float(c) for c in coef), terms=FORM_TERMS[form], n_models=len(y),
        loo_err_median=float(np.median(np.abs(err))), loo_err_p90=float(np.quantile(np.abs(err), 0.9)),
        loo_err_max=float(np.max(np.abs(err))), loo_err_q10_signed=float(np.quantile(err, 0.1)),
        loo_err_q90_signed=float(np.quantile(err, 0.9)),
        fit_err_median=float(np.median(np.abs(X @ coef / y - 1))),
        worst=tuple((str(data.index[i]), float(err[i])) for i in order[:3]), table_date=str(date),
        models=tuple(str(m) for m in data.index), loo_errors=tuple(float(e) for e in err),
        published_ms=tuple(float(v) for v in y))


def calibrate(counts: pd.DataFrame, tables: pd.DataFrame, devices: Sequence[str] = tuple(DEVICES),
              threads: Sequence[int] = (1, 4), forms: Sequence[str] = tuple(FORMS)) -> list[DeviceFit]:
    """Every form on every device and thread count its published table has (``Device.powersave``:
    of the seven devices only rk3399 has a 2-thread table, none an 8-thread one)."""
    return [fit_device(counts, tables, DEVICES[d], t, f) for d in devices for t in threads
            if t in DEVICES[d].powersave for f in forms]


def fits_table(fits: Sequence[DeviceFit]) -> pd.DataFrame:
    rows = []
    for f in fits:
        row = {k: v for k, v in dataclasses.asdict(f).items()
               if k not in ("coef", "terms", "worst", "models", "loo_errors", "published_ms")}
        row.update({t: c for t, c in zip(f.terms, f.coef)})
        row["worst"] = ", ".join(f"{m} {e:+.0%}" for m, e in f.worst)
        rows.append(row)
    return pd.DataFrame(rows)


def choose_forms(fits: Sequence[DeviceFit], candidates: Sequence[str] = tuple(FORMS)) -> dict[tuple[str, int], str]:
    """Per ISA class and thread count: the form with the lowest mean over the devices of
    (LOO median + LOO p90) / 2 (errors over the benchmark models only). ``macs`` is a baseline,
    never chosen."""
    df = fits_table([f for f in fits if f.form in candidates and f.form != "macs"])
    score = ((df.loo_err_median + df.loo_err_p90) / 2).groupby([df.isa, df.threads, df.form]).mean()
    return {(isa, int(t)): str(score.loc[(isa, t)].idxmin())
            for isa, t in sorted({k[:2] for k in score.index})}


# --------------------------------------------------------------------------------------------
# Estimates
# --------------------------------------------------------------------------------------------


def calibration_ranges(counts: pd.DataFrame, cpu_model: str) -> dict[str, tuple[float, float]]:
    """Range over the benchmark models of what the flag checks: instructions per MAC, bytes per
    instruction and each layer class's share of instructions."""
    c = counts[(counts.cpu_model == cpu_model) & (counts.get("status", "ok") == "ok")]
    out = {"insn_per_mac": ((c.insn_m / c.macs_m).min(), (c.insn_m / c.macs_m).max()),
           "bytes_per_insn": ((c.traffic_mb / c.insn_m).min(), (c.traffic_mb / c.insn_m).max())}
    for cls in arm_counts.LAYER_CLASSES:
        share = c[f"insn_m_{cls}"] / c.insn_m
        out[f"share_{cls}"] = (share.min(), share.max())
    return out


def out_of_range(row: Mapping, ranges: Mapping[str, tuple[float, float]], share_slack: float = 0.05) -> list[str]:
    """Reasons a model lies outside the calibration set (empty = inside)."""
    why = []
    for key, value in (("insn_per_mac", row["insn_m"] / row["macs_m"] if row["macs_m"] else np.inf),
                       ("bytes_per_insn", row["traffic_mb"] / row["insn_m"])):
        lo, hi = ranges[key]
        if not lo <= value <= hi:
            why.append(f"{key} {value:.3g} outside [{lo:.3g}, {hi:.3g}]")
    for cls in arm_counts.LAYER_CLASSES:
        share = row[f"insn_m_{cls}"] / row["insn_m"]
        lo, hi = ranges[f"share_{cls}"]
        if share > hi + share_slack:
            why.append(f"{cls} {share:.0%} of instructions (benchmark models at most {hi:.0%})")
    return why


def estimate_rows(model_rows: pd.DataFrame, counts: pd.DataFrame, fits: Sequence[DeviceFit],
                  forms: Mapping[tuple[str, int], str]) -> pd.DataFrame:
    """``arm_est_ms`` per model (rows of ``bench.arm.counts.model_row`` for both CPU models), device
    and thread count, with the chosen form of the device's ISA class. Every row is an estimate."""
    rows = []
    by_key = {(f.device, f.threads, f.form): f for f in fits}
    ranges = {cpu: calibration_ranges(counts, cpu) for cpu in arm_counts.CPU_MODELS}
    for (device, threads, form), f in sorted(by_key.items()):
        if forms.get((f.isa, threads)) != form:
            continue
        for _, r in model_rows[model_rows.cpu_model == f.cpu_model].iterrows():
            est = float(f.predict(FORMS[form](pd.DataFrame([r]))[0]))
            why = out_of_range(r, ranges[f.cpu_model])
            rows.append({
                "model": r["model"], "input_whc": r["input_whc"], "kind": "estimate", C.DEVICE_MODEL: device,
                "device_title": DEVICES[device].title, "isa": f.isa, "threads": threads, "powersave": f.powersave,
                "cpu_model_counts": f.cpu_model, "form": form, C.ARM_EST_MS: est,
                # prediction / truth - 1 lies in [q10, q90] for 80% of the LOO models, so the truth in:
                C.ARM_EST_MS_LOW: est / (1 + f.loo_err_q90_signed), C.ARM_EST_MS_HIGH: est / (1 + f.loo_err_q10_signed),
                "est_loo_err_median": f.loo_err_median, "est_loo_err_p90": f.loo_err_p90,
                "insn_m": r["insn_m"], "macs_m": r["macs_m"], "out_of_range": bool(why), "out_of_range_why": "; ".join(why),
                "calibration_table_date": f.table_date, "status": "ok"})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Measurement: estimates for a model converted to ncnn
# --------------------------------------------------------------------------------------------


def load_calibration(table: Optional[Path] = None) -> pd.DataFrame:
    """The committed calibration counts (``run_bench.py arm-calibrate`` regenerates them)."""
    path = Path(table or CALIBRATION_TABLE)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no calibration counts (run: python run_bench.py arm-calibrate)")
    df = pd.read_csv(path)
    missing = {"model", "cpu_model", "insn_m", "macs_m", "traffic_mb"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    return df


def load_device_tables(path: Optional[Path] = None) -> pd.DataFrame:
    path = Path(path or default_device_tables())
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ncnn's published device timings are missing (../shared/anchors)")
    return pd.read_csv(path)


def calibrated(devices: Sequence[str] = tuple(DEVICES), threads: Sequence[int] = (1, 4),
               counts: Optional[pd.DataFrame] = None, tables: Optional[pd.DataFrame] = None
               ) -> tuple[list[DeviceFit], dict[tuple[str, int], str], pd.DataFrame]:
    """(all fits, chosen form per ISA class and thread count, calibration counts) from the committed table."""
    counts = load_calibration() if counts is None else counts
    tables = load_device_tables() if tables is None else tables
    fits = calibrate(counts, tables, devices, threads)
    return fits, choose_forms(fits), counts


def model_rows_for(name: str, param: Path, input_shape: Sequence[int], out_names: Optional[Sequence[str]] = None,
                   cache_dir: Optional[Path] = None) -> pd.DataFrame:
    """Counts of an ncnn model under both CPU models (benchncnn protocol), as calibration-table rows."""
    rows = []
    for cpu in arm_counts.CPU_MODELS:
        c = arm_counts.count_layers(param, input_shape, cpu, out_names=out_names, cache_dir=cache_dir)
        rows.append({**arm_counts.model_row(c, param), "model": name})
    return pd.DataFrame(rows)


def estimate_ncnn_model(name: str, param: Path, input_shape: Sequence[int], out_names: Optional[Sequence[str]] = None,
                        devices: Sequence[str] = tuple(DEVICES), threads: Sequence[int] = (1, 4),
                        calibration: Optional[tuple[list[DeviceFit], dict[tuple[str, int], str], pd.DataFrame]] = None
                        ) -> pd.DataFrame:
    """``arm_est_ms`` of one ncnn model per device and thread count (``kind="estimate"`` rows)."""
    fits, forms, counts = calibration or calibrated(devices, threads)
    fits = [f for f in fits if f.device in devices and f.threads in threads]
    return estimate_rows(model_rows_for(name, Path(param), input_shape, out_names), counts, fits, forms)


def ncnn_model_for(name: str, input_size: Optional[int] = None) -> tuple[Path, tuple[int, ...], tuple[str, ...], str]:
    """(param, input shape C,H,W, output names, size label) of a design or peer through the suite's
    own conversions: designs and the torch peers (SINet, ExtremeC3Net) by ``convert_to_ncnn`` at
    ``input_size`` (default: 256 for designs, the checkpoint's size for peers); the ONNX peer
    (PP-HumanSeg lite) by ``bench.models.peers.convert_peer_to_ncnn`` at its native size. Weights do not
    matter: counts run with zero weights, as for the calibration set."""
    from archs import get_spec, list_archs

    from ..models.peers import PEERS

    if name in PEERS:
        from ..models.peers import convert_peer_to_ncnn

        from . import runner as arm

        # own cache folder: the converted model is only read here (param + output names)
        nm = convert_peer_to_ncnn(name, cache_dir=arm.default_cache_dir())
        h, w = PEERS[name].input_hw
        return Path(nm.param_path), (3, h, w), tuple(nm.out_names), f"{w}x{h}"
    if name not in list_archs(peers=True):
        raise ValueError(f"unknown design or peer {name!r}")
    from ..backends import convert_to_ncnn

    spec = get_spec(name)
    size = input_size or (spec.checkpoints[0].input_size if name not in list_archs() and spec.checkpoints else 256)
    nm = convert_to_ncnn(name, "random", size)
    return Path(nm.param_path), (3, size, size), tuple(nm.out_names), f"{size}x{size}"


def estimate_model(name: str, input_size: Optional[int] = None, devices: Sequence[str] = tuple(DEVICES),
                   threads: Sequence[int] = (1, 4),
                   calibration: Optional[tuple[list[DeviceFit], dict[tuple[str, int], str], pd.DataFrame]] = None) -> pd.DataFrame:
    """Estimated ARM latency of a design or peer (see ``ncnn_model_for``) on each device: rows with
    ``kind="estimate"``, ``arm_est_ms`` and its 80% band, never a measured column."""
    param, shape, outs, _ = ncnn_model_for(name, input_size)
    return estimate_ncnn_model(name, param, shape, outs, devices, threads, calibration)


def fp16_layer_table(name: str, param: Path, input_shape: Sequence[int], out_names: Optional[Sequence[str]] = None
                     ) -> pd.DataFrame:
    """Per layer of one model: instructions under cortex-a72 and cortex-a76 (fp16 kernels) and the
    layer's output channels, to see which layers fp16 arithmetic helps and which it costs
    (ncnn packs fp16 by 8 channels: other channel counts fall back to narrower kernels)."""
    t = {}
    for cpu in arm_counts.CPU_MODELS:
        c = arm_counts.count_layers(param, input_shape, cpu, out_names=out_names)
        t[cpu] = arm_counts.layer_table(c, param).set_index("index")
    a72, a76 = t["cortex-a72"], t["cortex-a76"]
    out = a72[["type", "name", "layer_class", "insns", "macs"]].rename(columns={"insns": "insns_a72"})
    out["insns_a76"] = a76.insns.reindex(out.index)
    out["channels"] = a72.out_channels
    out["channels_mult8"] = out.channels % 8 == 0
    out["ratio_a76_a72"] = out.insns_a76 / out.insns_a72
    return out.assign(model=name).reset_index()


def fp16_layers_of(name: str, input_size: Optional[int] = None) -> pd.DataFrame:
    """``fp16_layer_table`` of a design or peer (see ``ncnn_model_for``)."""
    param, shape, outs, _ = ncnn_model_for(name, input_size)
    return fp16_layer_table(name, param, shape, outs)


# --------------------------------------------------------------------------------------------
# A real device against the estimates
# --------------------------------------------------------------------------------------------

# What a device's own probe (``bench.arm.run_on_device``: board model / SoC strings) says, matched
# only to warn when --device-model names another calibrated device than the one measured.
_PROBE_PATTERNS = {
    "rpi4": r"raspberry pi (compute module )?4|raspberry pi 400", "rpi5": r"raspberry pi (compute module )?5|raspberry pi 500",
    "rpi3bplus": r"raspberry pi 3 model b plus", "rk3399": r"rk3399", "rk3588": r"rk3588",
    "sd835": r"msm8998|sdm835|snapdragon 835", "sd855plus": r"msmnile|sm8150|snapdragon 855",
}


def check_device_model(name: str) -> Device:
    """The calibrated device called ``name`` (``--device-model``); a ValueError naming the known ones."""
    if name not in DEVICES:
        raise ValueError(f"unknown device model {name!r} (--device-model); calibrated devices: {', '.join(DEVICES)}")
    return DEVICES[name]


def probed_device_model(reported: str) -> Optional[str]:
    """The calibrated device a measured device's probe string names, or None when it names none."""
    import re

    text = str(reported or "").lower()
    hits = [name for name, pattern in _PROBE_PATTERNS.items() if re.search(pattern, text)]
    return hits[0] if len(hits) == 1 else None


def _emulated(prefix) -> bool:
    if isinstance(prefix, (list, tuple)):
        return len(prefix) > 0
    return str(prefix or "").strip() not in ("", "()", "[]", "nan", "None")


def measured_vs_estimated(rows: pd.DataFrame, device_model: str) -> pd.DataFrame:
    """Latency measured on a real device beside the estimate for the calibrated device it is.

    ``rows``: a run's rows (column ``measurement``): ``device_latency`` rows (``--device``) and
    ``arm_estimate`` rows. The measured device is taken to be ``device_model`` (``--device-model``;
    unknown = ValueError): every ok device row of a design is paired with that device's estimate
    at the same thread count and input size. Rows run through an emulator on the board
    (``exec_prefix``) are not device time and are left out; skipped and failed rows too. One row
    per design, thread count and device string: the measured ``latency_ms_median`` and the estimate
    (``arm_est_ms`` [low, high]) in separate columns, ``est_err_vs_measured`` = estimate / measured
    - 1 ("+" = estimated too slow, as the LOO errors), ``in_band`` and a ``note`` (no estimate at
    that thread count or size, another powersave mode than the calibration rows, a probe that does
    not name ``device_model``)."""
    device = check_device_model(device_model)
    if rows.empty or "measurement" not in rows.columns:
        return pd.DataFrame()
    status = rows["status"].astype(str) if "status" in rows.columns else pd.Series("ok", index=rows.index)
    meas = rows[(rows["measurement"] == "device_latency") & (status == "ok")]
    if "exec_prefix" in meas.columns:
        meas = meas[~meas["exec_prefix"].map(_emulated)]
    est = rows[(rows["measurement"] == "arm_estimate") & (status == "ok")]
    est = est[est[C.DEVICE_MODEL] == device.name] if C.DEVICE_MODEL in est.columns else est.iloc[0:0]
    out = []
    for _, m in meas.iterrows():
        threads, size = int(m["threads"]), int(m["input_size"])
        cand = est[(est["arch"] == m["arch"]) & (est["threads"] == threads)]
        same_size = cand[cand["input_whc"].astype(str).str.startswith(f"{size}x{size}x")]
        notes = []
        if cand.empty:
            notes.append(f"no {device.name} estimate at {threads} thread(s)")
        elif same_size.empty:
            notes.append(f"estimate at another input size ({cand['input_whc'].iloc[0]})")
        e = same_size.iloc[0] if len(same_size) else None
        measured = float(m[C.LATENCY_MS_MEDIAN])
        ps_meas = int(m["powersave"]) if pd.notna(m.get("powersave")) else None
        if e is not None and ps_meas is not None and ps_meas != int(e["powersave"]):
            notes.append(f"measured with powersave {ps_meas}, the {device.name} calibration rows used {int(e['powersave'])}")
        reported = str(m.get(C.DEVICE_MODEL) or "")
        probed = probed_device_model(reported)
        if probed and probed != device.name:
            notes.append(f"the device reports {reported!r}, which looks like {probed}, not {device.name}")
        elif not probed and reported:
            notes.append(f"the device reports {reported!r}, not recognisably {device.name}")
        est_ms = float(e[C.ARM_EST_MS]) if e is not None else np.nan
        low = float(e[C.ARM_EST_MS_LOW]) if e is not None else np.nan
        high = float(e[C.ARM_EST_MS_HIGH]) if e is not None else np.nan
        out.append({
            "arch": m["arch"], "threads": threads, "input_size": size, "device": m.get("device", ""),
            "device_reported": reported, "powersave": ps_meas, C.LATENCY_MS_MEDIAN: measured,
            C.DEVICE_MODEL: device.name, C.ARM_EST_MS: est_ms, C.ARM_EST_MS_LOW: low, C.ARM_EST_MS_HIGH: high,
            "est_err_vs_measured": est_ms / measured - 1 if measured > 0 else np.nan,
            "in_band": bool(low <= measured <= high) if e is not None else None,
            "est_loo_err_median": float(e["est_loo_err_median"]) if e is not None else np.nan,
            "est_loo_err_p90": float(e["est_loo_err_p90"]) if e is not None else np.nan,
            "note": "; ".join(notes)})
    return pd.DataFrame(out)
