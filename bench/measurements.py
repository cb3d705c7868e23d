"""Job adapters: each turns a :class:`~bench.jobs.Job` into result rows by calling the pure
measurement functions of ``bench/``. Importing this module registers them."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from archs import get_spec

from .jobs import Job, Skip, measurement
from .weights import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR, WeightsError, load_model, trained_checkpoint_path


@measurement("profile")
def profile_job(job: Job) -> list[dict]:
    """Paper cost (bench.complexity.profile_model) at ``input_size``, next to the reference numbers
    of ARCHITECTURES.md. Settings: input_size (default 256); ncnn_bin (optional path of the design's
    ncnn .bin, fills size_mb_ncnn_bin). ``macs_rel_diff`` is only given at the reference size."""
    from .complexity import profile_model

    if _is_file_peer(job.arch):
        return _peer_profile(job)
    spec = get_spec(job.arch)
    size = int(job.get("input_size", 256))
    if size % spec.input_multiple:
        raise Skip(f"input side {size} is not a multiple of {spec.input_multiple}")
    lm = load_model(job.arch, "random")
    rec = profile_model(lm.model, size, ncnn_bin=job.get("ncnn_bin"))
    row = dataclasses.asdict(rec)
    row.update(
        input_size=size, ref_params=spec.ref_params, params_rel_diff=rec.params / spec.ref_params - 1,
        ref_macs_g=spec.ref_macs_g, ref_macs_size=spec.ref_macs_size,
        macs_rel_diff=rec.macs_g / spec.ref_macs_g - 1 if size == spec.ref_macs_size else None,
    )
    return [row]


@measurement("accuracy")
def accuracy_job(job: Job) -> list[dict]:
    """Settings: weights, input_size, data_dir, models_dir, and optionally layout ("auto", see
    bench.datasets) and split (e.g. "val": only the validation stems listed in splits/; default:
    the layout's default, the whole folder for the shared format)."""
    from .accuracy import evaluate
    from .datasets import detect_layout, layout_splits, open_dataset

    if _is_file_peer(job.arch):
        return _peer_accuracy(job)
    weights = job.get("weights", "random")
    if weights == "trained" and not trained_checkpoint_path(job.arch).is_file():
        raise Skip(f"no trained checkpoint checkpoints/{job.arch}.pt")
    data_dir = Path(job.get("data_dir", DEFAULT_DATA_DIR / "hsd"))
    layout = job.get("layout", "auto")
    layout = detect_layout(data_dir) if layout == "auto" else layout
    split = job.get("split") or layout_splits(layout)[0]
    samples = open_dataset(data_dir, layout, split)
    lm = load_model(job.arch, weights, Path(job.get("models_dir", DEFAULT_MODELS_DIR)))
    size = int(job.get("input_size", 256))
    rec = evaluate(lm.model, samples, size, lm.preprocess, lm.spec.output_kind)
    row = {k: v for k, v in dataclasses.asdict(rec).items() if not isinstance(v, tuple)}
    row.update(weights=weights, dataset=data_dir.name, layout=layout, split=split)
    return [row]


@measurement("latency", fresh_process=True)
def latency_job(job: Job) -> list[dict]:
    """Latency of one design on one backend (protocol in ``bench/latency.py``). Settings: backend
    (torch, ncnn, onnxruntime), threads, input_size, loops, warmup, weights, models_dir, data_dir
    (the folder of the fixed parity input), attempts and quiet_wait_s (quiet gate). A missing
    backend package is a ``skipped`` row; a parity failure an ``error: parity ...`` row with NaN
    latencies."""
    from .backends import BackendUnavailable
    from .latency import DEFAULT_LOOPS, DEFAULT_WARMUP, measure_latency, record_row

    if _is_file_peer(job.arch):
        return _peer_latency(job)
    backend = job.get("backend", "torch")
    try:
        rec = measure_latency(job.arch, backend, loops=int(job.get("loops", DEFAULT_LOOPS)),
                              warmup=int(job.get("warmup", DEFAULT_WARMUP)), **_timing_settings(job, backend))
    except BackendUnavailable as exc:
        raise Skip(str(exc)) from None
    return [record_row(rec)]


def _timing_settings(job: Job, backend: str) -> dict:
    """The settings a design's timing job passes on (threads, input_size, weights, models_dir,
    data_dir, and attempts / quiet_wait_s where given), after the checks it makes first: a
    backend whose packages are missing, or an input side the design does not take, is a Skip; an
    unknown backend a ValueError (an error row)."""
    from .backends import backend_missing

    why = backend_missing(backend)
    if why:
        raise Skip(why)
    spec = get_spec(job.arch)
    size = int(job.get("input_size", 256))
    if size % spec.input_multiple:
        raise Skip(f"input side {size} is not a multiple of {spec.input_multiple}")
    data_dir = job.get("data_dir")
    return dict(threads=int(job.get("threads", 1)), input_size=size, weights=job.get("weights", "random"),
                models_dir=Path(job.get("models_dir", DEFAULT_MODELS_DIR)),
                data_dir=Path(data_dir) if data_dir else None,
                **{k: job.get(k) for k in ("attempts", "quiet_wait_s") if job.get(k) is not None})


@measurement("latency_repeat", timing=True)
def latency_repeat_job(job: Job) -> list[dict]:
    """Repeatability of a latency measurement: the ``latency`` job with the same settings run
    ``runs`` times (default 5), each in a fresh process, summarised by
    :func:`bench.latency.summarize_repeats` (the runs' medians and their between-run CV). All runs
    skipped (e.g. backend missing) is a skipped row; some failed, an error row with what the ok
    runs gave."""
    from .jobs import run_in_fresh_process
    from .latency import DEFAULT_REPEATS, summarize_repeats

    runs = int(job.get("runs", DEFAULT_REPEATS))
    if runs < 2:
        raise ValueError(f"runs={runs}: repeatability needs at least 2 runs")
    one = Job.make("latency", job.arch, **{k: v for k, v in job.settings if k != "runs"})
    rows = [run_in_fresh_process(one)[0] for _ in range(runs)]
    if all(str(r.get("status", "")).startswith("skipped") for r in rows):
        raise Skip(str(rows[0]["status"])[len("skipped: "):])
    rec = summarize_repeats(rows)
    first = next((r for r in rows if r.get("status") == "ok"), rows[0])
    row = dataclasses.asdict(rec)
    row.update({k: first.get(k) for k in ("protocol", "cpu_model", "cpu_count")})
    return [row]


@measurement("speedup", fresh_process=True)
def speedup_job(job: Job) -> list[dict]:
    """A backend against PyTorch, both timed interleaved in one process
    (:func:`bench.latency.measure_speedup`). Settings: backend (the other one: ncnn or onnxruntime),
    threads, input_size, rounds, loops (per round and backend), warmup, weights, models_dir,
    data_dir, attempts and quiet_wait_s (quiet gate). A missing backend package is a ``skipped``
    row; a parity failure an ``error: parity`` row with NaN figures."""
    from .backends import BackendUnavailable
    from .latency import DEFAULT_ROUND_LOOPS, DEFAULT_ROUND_WARMUP, DEFAULT_ROUNDS, measure_speedup

    other = job.get("backend", "ncnn")
    try:
        rec = measure_speedup(job.arch, other, rounds=int(job.get("rounds", DEFAULT_ROUNDS)),
                              loops=int(job.get("loops", DEFAULT_ROUND_LOOPS)),
                              warmup=int(job.get("warmup", DEFAULT_ROUND_WARMUP)), **_timing_settings(job, other))
    except BackendUnavailable as exc:
        raise Skip(str(exc)) from None
    row = dataclasses.asdict(rec)
    row["backend"] = rec.other_backend  # rows of one backend are found by this column everywhere
    return [row]


@measurement("arm_cost")
def arm_cost_job(job: Job) -> list[dict]:
    """ncnn on aarch64, emulated by ``qemu-aarch64 -cpu cortex-a72``: output parity against x86 ncnn
    and PyTorch on the fixed real input, and guest instructions per inference (threads=1), the
    suite's deterministic ARM cost. Emulated time is never reported as ARM latency.
    Settings: input_size, weights, models_dir, data_dir, toolchain (gnu | zig)."""
    import torch

    from . import arm
    from .backends import check_parity, convert_to_ncnn
    from .latency import fixed_input

    toolchain = job.get("toolchain", "gnu")
    why = arm.toolchain_status(toolchain)
    if why:
        raise Skip(why.removeprefix("skipped: "))
    spec = get_spec(job.arch)
    size = int(job.get("input_size", 256))
    if size % spec.input_multiple:
        raise Skip(f"input side {size} is not a multiple of {spec.input_multiple}")
    weights = job.get("weights", "random")
    models_dir = Path(job.get("models_dir", DEFAULT_MODELS_DIR))
    data_dir = job.get("data_dir")
    lm = load_model(job.arch, weights, models_dir)
    nm = convert_to_ncnn(job.arch, weights, size, models_dir=models_dir)
    x, input_name = fixed_input(size, lm.preprocess, Path(data_dir) if data_dir else None)
    runner = arm.build_runner(toolchain=toolchain)
    plugin = arm.build_plugin()
    # Everything below is deterministic in these inputs: cache the row by their content.
    key = _digest(runner, plugin, nm.param_path, nm.bin_path, x.tobytes(), arm.qemu_version(),
                  torch.__version__, "arm_cost/v2")
    cache = arm.default_cache_dir() / "results" / f"{key}.json"
    if cache.is_file():
        return [{**json.loads(cache.read_text()), "cached": True}]
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
    status = "ok" if ok else "error: parity " + "; ".join(
        f"vs {name} {rec.reason}" for name, rec in (("x86 ncnn", vs_x86), ("PyTorch", vs_torch)) if not rec.ok)
    row = {
        "status": status, "input_size": size, "weights": weights, "threads": 1,
        "arm_instructions_m": cost.arm_instructions_m, "setup_instructions_m": cost.setup_instructions_m,
        "cpu_model": cost.cpu_model, "qemu_version": cost.qemu_version, "ncnn_version": cost.ncnn_version,
        "toolchain": cost.toolchain, "compiler": cost.compiler,
        "parity_arm_vs_x86_max_abs_diff": vs_x86.max_abs_diff, "parity_arm_vs_x86_mask_iou": vs_x86.mask_iou,
        "parity_arm_vs_torch_max_abs_diff": vs_torch.max_abs_diff,
        "parity_arm_vs_torch_mask_iou": vs_torch.mask_iou, "parity_ok_arm": ok,
        "parity_input": input_name, "pnnx_version": nm.pnnx_version, "size_mb_ncnn_bin": nm.bin_size_mb,
    }
    if ok:  # only a good result is reused; a failure is measured again next time
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(row))
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
    from . import arm
    from .backends import convert_to_ncnn

    device = job.get("device") or ""
    if not device:
        raise Skip("no device (pass --device adb[:SERIAL] or ssh:user@host[:port]); emulated time "
                   "is not reported as ARM latency")
    arm.parse_device(device)  # a malformed device string is an error row, not a skip
    size = int(job.get("input_size", 256))
    weights = job.get("weights", "random")
    models_dir = Path(job.get("models_dir", DEFAULT_MODELS_DIR))
    nm = convert_to_ncnn(job.arch, weights, size, models_dir=models_dir)
    why = arm.toolchain_status(job.get("toolchain", "gnu"), need_qemu=False)
    if why:
        raise Skip(why.removeprefix("skipped: "))
    rec = arm.run_on_device(device, None, nm.param_path, nm.bin_path, threads=int(job.get("threads", 1)),
                            loops=int(job.get("loops", 20)), warmup=int(job.get("warmup", 3)),
                            input_shape=(3, size, size), out_names=nm.out_names,
                            powersave=int(job.get("powersave", 0)),
                            exec_prefix=tuple(job.get("exec_prefix", ()) or ()))
    row = dataclasses.asdict(rec)
    row.update(backend="ncnn-arm", input_size=size, weights=weights)
    return [row]


def _is_file_peer(name: str) -> bool:
    """A peer that is a model file on its own runtime (MediaPipe .tflite, PP-HumanSeg .onnx)."""
    from .peers import PEERS
    return name in PEERS


def _peer_missing(name: str, runtime: str | None = None) -> None:
    from .peers import get_peer, runtime_missing
    why = runtime_missing(runtime or get_peer(name).runtime)
    if why:
        raise Skip(why)


def _peer_profile(job: Job) -> list[dict]:
    """Parameters and MACs of a file peer (.tflite / .onnx), read from its graph (``macs_source``
    = "graph": the counters cannot run these files)."""
    from .peers import graph_stats, record_row

    _peer_missing(job.arch)
    st = graph_stats(job.arch, Path(job.get("models_dir", DEFAULT_MODELS_DIR)))
    row = record_row(st)
    row.pop("peer", None)
    row.update(input_size=None, native_input=f"{st.input_h}x{st.input_w}", size_mb_fp32=st.weight_mb,
               macs_source="graph", params_source="graph")
    return [row]


def _peer_accuracy(job: Job) -> list[dict]:
    """Accuracy of a file peer at its native input size, same protocol and data as the designs.
    Settings: data_dir, dataset, split, runtime, threads, models_dir."""
    from .datasets import detect_layout, layout_splits, open_dataset
    from .peers import evaluate_peer, record_row

    runtime = job.get("backend")
    _peer_missing(job.arch, runtime)
    data_dir = Path(job.get("data_dir", DEFAULT_DATA_DIR / "hsd"))
    layout = detect_layout(data_dir)
    split = job.get("split") or layout_splits(layout)[0]
    samples = open_dataset(data_dir, layout, split)
    rec = evaluate_peer(job.arch, samples, Path(job.get("models_dir", DEFAULT_MODELS_DIR)),
                        threads=int(job.get("threads", 2)), runtime=runtime)
    row = record_row(rec)
    h, w = rec.input_size
    row.update(input_size=None, native_input=f"{h}x{w}", weights="official", dataset=data_dir.name,
               split=split, layout=layout)
    return [row]


def _peer_latency(job: Job) -> list[dict]:
    """Latency of a file peer on its own runtime (or ``ncnn`` after conversion, with a parity check
    against the original runtime on a few validation images first). Settings: runtime, threads,
    loops, warmup, models_dir, data_dir."""
    from .peers import get_peer, measure_peer_latency, ncnn_parity, record_row

    runtime = job.get("backend") or get_peer(job.arch).runtime
    _peer_missing(job.arch, runtime)
    models_dir = Path(job.get("models_dir", DEFAULT_MODELS_DIR))
    parity = {}
    if runtime == "ncnn":
        from .data import scan_folder
        samples = scan_folder(Path(job.get("data_dir", DEFAULT_DATA_DIR / "hsd")))[:4]
        pr = ncnn_parity(job.arch, samples, models_dir)
        parity = {"parity_max_abs_diff": pr.max_abs_diff, "parity_mask_iou": pr.min_mask_iou,
                  "parity_ok": pr.ok, "parity_reference": pr.reference}
        if not pr.ok:
            return [{"status": f"error: parity {pr.reason}", "backend": runtime, **parity}]
    loops, warmup = job.get("loops"), job.get("warmup")
    rec = measure_peer_latency(job.arch, threads=int(job.get("threads", 2)), runtime=runtime,
                               loops=int(loops) if loops else None, warmup=int(warmup) if warmup else None,
                               models_dir=models_dir, attempts=job.get("attempts"),
                               quiet_wait_s=job.get("quiet_wait_s"))
    row = record_row(rec)
    row.pop("peer", None)
    row.update(backend=runtime, input_size=None, native_input=f"{rec.input_h}x{rec.input_w}", **parity)
    return [row]


__all__ = ["profile_job", "accuracy_job", "latency_job", "arm_cost_job", "device_latency_job", "WeightsError"]
