"""Job adapters: each turns a :class:`~bench.run.jobs.Job` into result rows by calling the pure
measurement functions of ``bench/``. Importing this module registers them."""
from __future__ import annotations

import hashlib
from pathlib import Path

from archs import get_spec

from .. import columns as C
from .jobs import Job, Skip, measurement
from .status import OK, Status, row_status
from ..cache import cache_folder, read_entry, write_entry
from .settings import (AccuracySettings, ArmCostSettings, ArmEstimateSettings, DeviceLatencySettings,
                       ExamplesSettings, LatencyRepeatSettings, LatencySettings, LayersSettings, ProfileSettings,
                       SpeedupSettings)
from ..models.sources import get_source
from ..models.weights import WeightsError, load_model


@measurement("profile")
def profile_job(job: Job) -> list[dict]:
    """Cost of any model source (:meth:`bench.models.sources.ModelSource.cost`). Settings: input_size
    (torch sources, default 256); ncnn_bin (optional path of the design's ncnn .bin, fills
    size_mb_ncnn_bin); models_dir (file models)."""
    s = ProfileSettings.of(job)
    return [get_source(job.arch).cost(s.input_size, s.models_path, ncnn_bin=s.ncnn_bin)]


@measurement("accuracy")
def accuracy_job(job: Job) -> list[dict]:
    """Settings: weights, input_size, data_dir, models_dir, threads and backend (file models), and
    optionally layout ("auto", see bench.data.datasets) and split (e.g. "val": only the validation stems
    listed in splits/; default: the layout's default, the whole folder for the shared format)."""
    from ..data.datasets import detect_layout, layout_splits, open_dataset

    s = AccuracySettings.of(job)
    source = get_source(job.arch)
    source.check_accuracy(s)
    data_dir = Path(s.data_dir)
    layout = detect_layout(data_dir) if s.layout == "auto" else s.layout
    split = s.split or layout_splits(layout)[0]
    samples = open_dataset(data_dir, layout, split)
    row = source.accuracy(samples, s)
    row.update(dataset=data_dir.name, layout=layout, split=split)
    return [row]


@measurement("layers")
def layers_job(job: Job) -> list[dict]:
    """Per-layer MACs and parameters of a torch model (``bench.measure.complexity.layer_rows``): one
    row per layer, for the report's MAC-share plot and ``layers/<design>_<size>.csv``."""
    from ..measure.complexity import layer_rows

    s = LayersSettings.of(job)
    if get_source(job.arch).spec.form != "torch":
        raise Skip("per-layer tables need a PyTorch model")
    return layer_rows(load_model(job.arch, "random").model, s.input_size)


@measurement("examples")
def examples_job(job: Job) -> list[dict]:
    """A model's predictions on a few fixed photos of ``data_dir`` (``bench.measure.examples``): one row
    per photo with its probability map, for the report's strip of examples."""
    from ..measure.examples import EXAMPLE_IMAGES, example_rows

    s = ExamplesSettings.of(job)
    source = get_source(job.arch)
    source.check_weights(s.weights)
    if source.spec.form != "torch":
        raise Skip("example predictions are drawn for the PyTorch models")
    lm = load_model(job.arch, s.weights, s.models_path)
    return example_rows(lm.model, lm.preprocess, lm.spec.output_kind, Path(s.data_dir), s.input_size,
                        s.n_images or EXAMPLE_IMAGES)


@measurement("latency", fresh_process=True)
def latency_job(job: Job) -> list[dict]:
    """Latency of any model source on one backend (protocol in ``bench/measure/latency.py``). Settings:
    backend (default: the source's reference backend), threads, input_size, loops, warmup, weights,
    models_dir, data_dir (the folder of the fixed parity input), attempts and quiet_wait_s (quiet
    gate). A backend the source does not run on, or whose package is missing, is a ``skipped`` row;
    a parity failure an ``error: parity ...`` row with NaN latencies."""
    from ..backends import BackendUnavailable

    settings = LatencySettings.of(job)
    source = get_source(job.arch)
    try:
        return [source.latency(settings.backend or source.spec.backends[0], settings)]
    except BackendUnavailable as exc:
        raise Skip(str(exc)) from None


@measurement("latency_repeat", timing=True)
def latency_repeat_job(job: Job) -> list[dict]:
    """Repeatability of a latency measurement: the ``latency`` job with the same settings run
    ``runs`` times (default 5), each in a fresh process, summarised by
    :func:`bench.measure.latency.summarize_repeats` (the runs' medians and their between-run CV). All runs
    skipped (e.g. backend missing) is a skipped row; some failed, an error row with what the ok
    runs gave."""
    from .jobs import run_in_fresh_process
    from ..measure.latency import summarize_repeats

    s = LatencyRepeatSettings.of(job)
    if s.runs < 2:
        raise ValueError(f"runs={s.runs}: repeatability needs at least 2 runs")
    one = s.one_run().job(job.arch)
    rows = [run_in_fresh_process(one)[0] for _ in range(s.runs)]
    if all(row_status(r).skipped for r in rows):
        raise Skip(row_status(rows[0]).message)
    rec = summarize_repeats(rows)
    first = next((r for r in rows if row_status(r).ok), rows[0])
    row = C.record_row(rec)
    row.update({k: first.get(k) for k in ("protocol", "cpu_model", "cpu_count")})
    return [row]


@measurement("speedup", fresh_process=True)
def speedup_job(job: Job) -> list[dict]:
    """A backend against PyTorch, both timed interleaved in one process
    (:func:`bench.measure.latency.measure_speedup`). Settings: backend (the other one: ncnn or onnxruntime),
    threads, input_size, rounds, loops (per round and backend), warmup, weights, models_dir,
    data_dir, attempts and quiet_wait_s (quiet wait). A missing backend package, or a model with no
    PyTorch form, is a ``skipped`` row; a parity failure an ``error: parity`` row with NaN figures."""
    from ..backends import BackendUnavailable

    try:
        settings = SpeedupSettings.of(job)
        row = get_source(job.arch).speedup(settings.backend or "ncnn", settings)
    except BackendUnavailable as exc:
        raise Skip(str(exc)) from None
    row[C.BACKEND] = row[C.OTHER_BACKEND]  # rows of one backend are found by this column everywhere
    return [row]


@measurement("arm_cost")
def arm_cost_job(job: Job) -> list[dict]:
    """ncnn on aarch64, emulated by ``qemu-aarch64 -cpu cortex-a72``: output parity against x86 ncnn
    and PyTorch on the fixed real input, and guest instructions per inference (threads=1), the
    suite's deterministic ARM cost. Emulated time is never reported as ARM latency.
    Settings: input_size, weights, models_dir, data_dir, toolchain (gnu | zig)."""
    import torch

    from ..arm import runner as arm
    from ..backends import check_parity, convert_to_ncnn
    from ..measure.latency import fixed_input

    s = ArmCostSettings.of(job)
    why = arm.toolchain_status(s.toolchain_name)
    if why:
        raise Skip(Status.parse(why).message)
    spec = get_spec(job.arch)
    size, weights = s.input_size, s.weights
    if size % spec.input_multiple:
        raise Skip(f"input side {size} is not a multiple of {spec.input_multiple}")
    lm = load_model(job.arch, weights, s.models_path)
    nm = convert_to_ncnn(job.arch, weights, size, models_dir=s.models_path)
    x, input_name = fixed_input(size, lm.preprocess, Path(s.data_dir) if s.data_dir else None)
    runner = arm.build_runner(toolchain=s.toolchain_name)
    plugin = arm.build_plugin()
    # Everything below is deterministic in these inputs: cache the row by their content.
    key = _digest(runner, plugin, nm.param_path, nm.bin_path, x.tobytes(), arm.qemu_version(),
                  torch.__version__, "arm_cost/v3")  # v3: counted between markers
    cache = cache_folder("arm_results") / f"{key}.json"
    cached = read_entry(cache)
    if cached is not None:
        return [{**cached, "cached": True}]
    _, arm_out = arm.run_emulated(runner, nm.param_path, nm.bin_path, x, threads=1,
                                  out_names=nm.out_names)
    # Same criterion as x86 ncnn vs PyTorch (bench.backends.check_parity: atol + rtol * max|ref| and
    # the foreground-mask IoU): kernels for aarch64 round differently from the x86 ones.
    arm_list = [arm_out[n] for n in nm.out_names]
    x86 = arm.x86_ncnn_outputs(nm.param_path, nm.bin_path, x, out_names=nm.out_names)
    vs_x86 = check_parity([x86[n] for n in nm.out_names], arm_list, spec.output_kind)
    with torch.inference_mode():
        ref = lm.model(torch.from_numpy(x))
    ref = [t.numpy() for t in (ref if isinstance(ref, (tuple, list)) else (ref,))]
    vs_torch = check_parity(ref, arm_list, spec.output_kind)
    cost = arm.count_instructions(runner, plugin, nm.param_path, nm.bin_path, x, threads=1,
                                  out_names=nm.out_names)
    ok = vs_x86.ok and vs_torch.ok
    status = OK if ok else Status.fail("; ".join(
        f"vs {name} {rec.reason}" for name, rec in (("x86 ncnn", vs_x86), ("PyTorch", vs_torch)) if not rec.ok), "parity")
    row = {
        "status": str(status), "input_size": size, "weights": weights, "threads": 1,
        "arm_instructions_m": cost.arm_instructions_m, "setup_instructions_m": cost.setup_instructions_m,
        "cpu_model": cost.cpu_model, "qemu_version": cost.qemu_version, "ncnn_version": cost.ncnn_version,
        "toolchain": cost.toolchain, "compiler": cost.compiler,
        "parity_arm_vs_x86_max_abs_diff": vs_x86.max_abs_diff, "parity_arm_vs_x86_mask_iou": vs_x86.mask_iou,
        "parity_arm_vs_torch_max_abs_diff": vs_torch.max_abs_diff,
        "parity_arm_vs_torch_mask_iou": vs_torch.mask_iou, "parity_ok_arm": ok,
        "parity_input": input_name, "pnnx_version": nm.pnnx_version, "size_mb_ncnn_bin": nm.bin_size_mb,
    }
    if ok:  # only a good result is reused; a failure is measured again next time
        write_entry(cache, row)
    return [{**row, "cached": False}]


def _digest(*parts) -> str:
    """SHA-256 over files (paths) and bytes/str values, in order."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, (str, Path)) and Path(part).is_file():
            h.update(Path(part).read_bytes())
        elif isinstance(part, bytes):
            h.update(part)
        else:
            h.update(str(part).encode())
        h.update(b"\0")
    return h.hexdigest()


@measurement("device_latency")
def device_latency_job(job: Job) -> list[dict]:
    """ncnn latency on a real ARM device (``adb[:SERIAL]`` or ``ssh:user@host[:port]``). Without a
    device this is a ``skipped: no device`` row: emulated time is not ARM latency.
    Settings: device, threads, input_size, loops, warmup, powersave, weights, models_dir."""
    from ..arm import runner as arm
    from ..backends import convert_to_ncnn

    s = DeviceLatencySettings.of(job)
    device = s.device
    if not device:
        raise Skip("no device (pass --device adb[:SERIAL] or ssh:user@host[:port]); emulated time "
                   "is not reported as ARM latency")
    arm.parse_device(device)  # a malformed device string is an error row, not a skip
    size = s.input_size
    nm = convert_to_ncnn(job.arch, s.weights, size, models_dir=s.models_path)
    why = arm.toolchain_status(s.toolchain_name, need_qemu=False)
    if why:
        raise Skip(Status.parse(why).message)
    rec = arm.run_on_device(device, None, nm.param_path, nm.bin_path, input_shape=(3, size, size),
                            out_names=nm.out_names, **s.timing())
    row = C.record_row(rec)
    row.update(backend="ncnn-arm", input_size=size, weights=s.weights)
    return [row]


@measurement("arm_estimate")
def arm_estimate_job(job: Job) -> list[dict]:
    """Estimated ms on ARM devices (``bench.arm.estimate``): guest instructions of the model's ncnn
    conversion under qemu (cortex-a72 and cortex-a76, benchncnn's protocol) turned into ms by
    per-device fits on ncnn's published benchncnn timings. Every row is an estimate (``kind``,
    ``arm_est_ms`` with an 80% band and the fit's leave-one-out error), never a measured latency.
    Settings: input_size (designs; peers use their native size), device_models and thread_counts
    (comma lists; default: all calibrated devices, 1 and 4 threads)."""
    from ..arm import estimate as arm_estimate, runner as arm

    why = arm.toolchain_status("gnu")
    if why:
        raise Skip(Status.parse(why).message)
    s = ArmEstimateSettings.of(job)
    devices = tuple(str(s.device_models).split(",")) if s.device_models else tuple(arm_estimate.DEVICES)
    source = get_source(job.arch)
    if source.spec.form == "file":
        if "ncnn" not in source.spec.backends:
            raise Skip(f"{job.arch} has no ncnn conversion (runtime {source.spec.backends[0]})")
        source.check_backend("ncnn")
        from ..data.samples import scan_folder
        from ..models.peers import ncnn_parity
        samples = scan_folder(Path(s.data_dir))[:4]
        # the conversion bench.arm.estimate counts (same cache folder)
        pr = ncnn_parity(job.arch, samples, s.models_path, cache_dir=arm.default_cache_dir())
        if not pr.ok:
            return [{"status": f"error: ncnn conversion without parity ({pr.reason}): no estimate", "kind": "estimate"}]
    df = arm_estimate.estimate_model(job.arch, s.input_size or None, devices, s.threads)
    return df.to_dict("records")


__all__ = ["profile_job", "accuracy_job", "latency_job", "arm_cost_job", "device_latency_job", "arm_estimate_job",
           "WeightsError"]
