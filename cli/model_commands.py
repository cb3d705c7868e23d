"""Commands that measure one model (list, profile, eval, latency, speedup, the ARM commands, train):
each builds a job or a request for bench/ and prints its rows."""
from __future__ import annotations

import sys
from pathlib import Path

from bench.models.sources import get_source, list_sources

from .common import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, _one_job, _print_json, _print_row


def cmd_list(args) -> int:
    from archs import get_spec
    names = list_sources(args.pattern, args.kind)
    if not names:
        print(f"nothing matches {args.pattern!r}; known: {', '.join(list_sources(kind=args.kind))}", file=sys.stderr)
        return EXIT_USAGE
    for name in names:
        spec = get_source(name).spec
        line = f"{name:<28} {spec.kind:<7}"
        if args.verbose:
            size = (f"input {spec.native_input[0]}x{spec.native_input[1]}" if spec.native_input
                    else f"multiple {spec.input_multiple}")
            ref = ""
            if spec.form == "torch":
                a = get_spec(name)
                ref = f"params {a.ref_params:>9,}  GMACs {a.ref_macs_g:.3f}@{a.ref_macs_size}  "
            line += f" {spec.form:<5}  {ref}{size}  backends {','.join(spec.backends)}  {spec.description}"
        print(line.rstrip())
    return EXIT_OK


def _bad_request(name: str, **request) -> bool:
    """Whether the flags do not fit model ``name`` (an input side, weights or backend it does not
    take); says why in one line. Checked before anything is measured: a usage error, not a failure."""
    from bench.models.sources import RequestError
    try:
        get_source(name).check_request(**request)
    except RequestError as exc:
        print(f"run_bench.py: {exc}", file=sys.stderr)
        return True
    return False


def _torch_model(name: str, option: str) -> bool:
    """Whether ``name`` is a torch model; says why ``option`` needs one when it is not."""
    if get_source(name).spec.form == "torch":
        return True
    print(f"{option} needs a model in PyTorch; {name} is a published model file", file=sys.stderr)
    return False


def cmd_profile(args) -> int:
    from bench.run.jobs import Job, run_job, status_of
    keys = ["arch", "input_size", "native_input", "params", "params_trainable", "size_mb_fp32", "size_mb_fp16",
            "size_mb_ncnn_bin", "macs", "macs_g", "macs_g_thop", "thop_rel_diff", "elementwise_g",
            "act_peak_mb", "act_largest_mb", "act_largest_shape", "ref_params", "ref_macs_g",
            "ref_macs_size", "macs_rel_diff"]
    if _bad_request(args.arch, input_size=args.size):
        return EXIT_USAGE
    if args.layers and not _torch_model(args.arch, "--layers"):
        return EXIT_USAGE
    args.size = args.size or 256  # a model file is profiled at its own input whatever the job says
    job = Job.make("profile", args.arch, input_size=args.size, models_dir=str(args.models_dir))
    if not args.layers:
        return _one_job(job, args.json, keys)
    from bench.measure.complexity import layer_table
    from bench.models.weights import load_model
    rows = run_job(job)
    status = status_of(rows)
    if not status.ok:
        print(f"{job.key}: {status}", file=sys.stderr)
        return EXIT_FAIL
    table = layer_table(load_model(args.arch, "random").model, args.size)
    if args.json:
        _print_json({**rows[0], "layers": table.to_dict(orient="records")})
        return EXIT_OK
    _print_row(rows[0], keys)
    print(f"\nper layer at {args.size}x{args.size} (MACs and element-wise ops of each module's own "
          f"forward; columns sum to the totals; module '' is the model):")
    print(table.to_string(index=False, formatters={"macs_pct": "{:.2f}".format}))
    return EXIT_OK


def cmd_eval(args) -> int:
    from bench.run.jobs import Job
    from bench.data.datasets import DataError, open_dataset
    spec = get_source(args.arch).spec
    if _bad_request(args.arch, input_size=args.size, weights=args.weights):
        return EXIT_USAGE
    weights, size = args.weights or spec.default_weights, args.size or spec.default_size
    try:  # the folder, its layout and the split exist (the photos themselves are read by the measurement)
        open_dataset(Path(args.data), args.layout, args.split)
    except DataError as exc:
        print(f"run_bench.py: --data {args.data}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    extra = {k: v for k, v in (("split", args.split), ("layout", args.layout)) if v and v != "auto"}
    job = Job.make("accuracy", args.arch, weights=weights, input_size=size,
                   data_dir=str(Path(args.data).resolve()), models_dir=str(args.models_dir), **extra)
    on_ok = None
    if args.record:
        from bench.train.checkpoints import add_test_result, provenance_of
        prov = provenance_of(args.arch, weights)
        why = (f"split {args.split!r}: it keeps only a test figure (--split test)" if args.split != "test" else
               f"weights {weights!r} have no provenance JSON (--weights trained, finetuned or a .pt path)" if prov is None
               else f"{prov} does not exist" if not prov.is_file() else None)
        if why:
            print(f"--record: {why}", file=sys.stderr)
            return EXIT_USAGE

        def on_ok(rows):
            row = rows[0]
            add_test_result(prov, f"{row['dataset']}/{row['split']}", row)
            print(f"recorded in {prov} under test/{row['dataset']}/{row['split']}", file=sys.stderr)
    return _one_job(job, args.json, ["arch", "weights", "dataset", "layout", "split", "input_size",
                                     "n_images", "miou", "miou_ci_low", "miou_ci_high", "iou_dataset",
                                     "boundary_f", "boundary_f_ci_low", "boundary_f_ci_high", "n_alpha",
                                     "sad_k", "mse_x1e3", "grad_k"], on_ok)


def cmd_latency(args) -> int:
    import os

    from bench.run.settings import DeviceLatencySettings, LatencyRepeatSettings, LatencySettings
    threads = args.threads or os.cpu_count() or 1
    if _bad_request(args.arch, input_size=args.size, weights=args.weights,
                    backend=args.backend if args.backend != "ncnn-arm" else None):
        return EXIT_USAGE
    if args.layers and not _torch_model(args.arch, "--layers"):
        return EXIT_USAGE
    args.backend = args.backend or get_source(args.arch).spec.backends[0]
    args.size, args.weights = args.size or 256, args.weights or "random"  # the jobs' keys as before
    if args.backend == "ncnn-arm":
        job = DeviceLatencySettings(device=args.device or "", threads=threads, input_size=args.size, loops=args.loops,
                                    warmup=args.warmup, weights=args.weights, powersave=args.powersave,
                                    models_dir=str(args.models_dir)).job(args.arch)
        return _one_job(job, args.json, [
            "arch", "device", "transport", "status", "device_model", "cpu_governor", "temperature_c",
            "threads", "powersave", "cpu_mask", "input_size", "latency_ms_min", "latency_ms_median",
            "latency_ms_max", "ncnn_version", "arm_features", "exec_prefix"])
    if args.device:
        print("--device goes with --backend ncnn-arm", file=sys.stderr)
        return EXIT_USAGE
    settings = dict(backend=args.backend, threads=threads, input_size=args.size, loops=args.loops,
                    warmup=args.warmup, weights=args.weights, models_dir=str(args.models_dir),
                    data_dir=str(Path(args.data_dir) / "hsd"))
    if args.repeat is not None:
        if args.repeat < 2:
            print(f"--repeat {args.repeat}: repeatability needs at least 2 runs", file=sys.stderr)
            return EXIT_USAGE
        if args.layers:
            print("--layers goes without --repeat", file=sys.stderr)
            return EXIT_USAGE
        return _one_job(LatencyRepeatSettings(runs=args.repeat, **settings).job(args.arch), args.json, [
            "protocol", "arch", "backend", "weights", "threads", "input_size", "status", "runs", "runs_ok",
            "runs_quiet", "run_medians_ms", "latency_ms_median_of_runs", "between_run_cv",
            "between_run_spread", "within_run_cv_median", "within_run_cv_max", "repeatable"])
    job = LatencySettings(**settings).job(args.arch)
    code = _one_job(job, args.json, [
        "protocol", "arch", "backend", "weights", "threads", "input_size", "native_input", "status", "latency_ms_median",
        "latency_ms_p10", "latency_ms_p90", "latency_ms_min", "latency_ms_mean", "latency_cv",
        "parity_ok", "parity_max_abs_diff", "parity_mask_iou", "calib_ms_median", "peak_gmacs_per_s",
        "latency_ratio_to_calib", "macs_g", "achieved_gmacs_per_s", "fraction_of_peak", "backend_options",
        "converter", "cpu_model", "cpu_count", "load_avg_1m", "cpu_busy_before", "cpu_other_during",
        "quiet", "attempts", "torch_version", "ncnn_version", "pnnx_version", "onnxruntime_version"])
    if code != EXIT_OK or not args.layers or args.backend == "onnxruntime":
        return code
    from bench.backends import convert_module_to_ncnn, ncnn_layer_times, time_by_type, torch_op_times
    from bench.measure.latency import fixed_input
    from bench.models.weights import load_model
    lm = load_model(args.arch, args.weights, args.models_dir)
    x, _ = fixed_input(args.size, lm.preprocess, Path(args.data_dir) / "hsd")
    if args.backend == "ncnn":
        nm = convert_module_to_ncnn(lm.model, args.arch, args.size)
        layers = ncnn_layer_times(nm, x, threads)
    else:
        layers = torch_op_times(lm.model, x, threads)
    total = sum(lt.ms for lt in layers) or 1.0
    print(f"\n{args.backend} time per layer type ({threads} threads; median of 10 runs; sum "
          f"{total:.2f} ms):")
    for kind, ms, n in time_by_type(layers):
        print(f"  {kind:<32} {ms:8.3f} ms  {100 * ms / total:5.1f} %  x{n}")
    return code


def cmd_speedup(args) -> int:
    import os

    from bench.run.jobs import Job
    if not _torch_model(args.arch, "speedup") or _bad_request(args.arch, input_size=args.size,
                                                              weights=args.weights, backend=args.backend):
        return EXIT_USAGE
    args.size, args.weights = args.size or 256, args.weights or "random"
    if args.rounds < 3 or args.loops < 1:
        print(f"--rounds {args.rounds} --loops {args.loops}: an interleaved comparison needs at least 3 rounds "
              "of at least 1 timed iteration", file=sys.stderr)
        return EXIT_USAGE
    job = Job.make("speedup", args.arch, backend=args.backend, threads=args.threads or os.cpu_count() or 1,
                   input_size=args.size, rounds=args.rounds, loops=args.loops, warmup=args.warmup,
                   weights=args.weights, models_dir=str(args.models_dir), data_dir=str(Path(args.data_dir) / "hsd"))
    return _one_job(job, args.json, [
        "protocol", "arch", "base_backend", "other_backend", "weights", "threads", "input_size", "status",
        "speedup", "speedup_min", "speedup_max", "speedup_cv", "round_speedups", "base_ms_median",
        "other_ms_median", "base_round_cv", "other_round_cv", "parity_ok", "parity_max_abs_diff",
        "parity_mask_iou", "cpu_model", "cpu_count", "cpu_busy_before", "cpu_other_during",
        "handoff_ratio_before", "handoff_ratio_after", "quiet", "attempts", "converter", "torch_version",
        "ncnn_version", "pnnx_version", "onnxruntime_version"])


def cmd_build_arm(args) -> int:
    from bench.arm import runner as arm
    from bench.run.status import Status
    why = arm.toolchain_status(args.toolchain)
    if why:
        print(f"cannot build the aarch64 runner: {Status.parse(why).message}", file=sys.stderr)
        return EXIT_FAIL
    runner = arm.build_runner(toolchain=args.toolchain, jobs=args.jobs)
    plugin = arm.build_plugin()
    import dataclasses
    info = {**dataclasses.asdict(arm.runner_build_info(runner)), "plugin": str(plugin),
            "qemu": arm.qemu_version()}
    _print_row(info, list(info))
    return EXIT_OK


ARM_COST_KEYS = ["arch", "status", "input_size", "weights", "threads", "arm_instructions_m",
                 "setup_instructions_m", "cpu_model", "parity_ok_arm", "parity_arm_vs_x86_max_abs_diff",
                 "parity_arm_vs_x86_mask_iou", "parity_arm_vs_torch_max_abs_diff", "parity_arm_vs_torch_mask_iou",
                 "size_mb_ncnn_bin", "qemu_version", "ncnn_version", "toolchain", "cached"]


def cmd_arm(args) -> int:
    """The ARM figures of one model, as ``all`` measures them: emulated aarch64 ncnn (parity and
    instruction counts) and the estimated ms on the calibrated devices (estimates, labelled)."""
    from bench.run.jobs import run_job, status_of
    from bench.run.plan import model_arm_jobs
    from reports.arm_estimate import estimates_markdown

    if _bad_request(args.arch, input_size=args.size):
        return EXIT_USAGE
    results = [(job, run_job(job)) for job in model_arm_jobs(args.arch, args.size, args.models_dir,
                                                              Path(args.data_dir) / "hsd")]
    statuses = [status_of(rows) for _, rows in results]
    if args.json:
        _print_json({job.measurement: rows for job, rows in results})
    for (job, rows), status in zip(results, statuses):
        if not status.ok:
            print(f"{job.key}: {status}", file=sys.stderr)
        if args.json or not status.ok:
            continue
        if job.measurement == "arm_cost":
            print("emulated aarch64 ncnn (qemu; instruction counts, not time):")
            _print_row(rows[0], ARM_COST_KEYS)
        else:
            import pandas as pd
            est = pd.DataFrame(rows)
            for t in sorted(set(est.threads)):
                print(f"\nestimated ms, {t} thread(s) [80% band from LOO errors]; estimates, not measurements:\n")
                print(estimates_markdown(est, t))
    return EXIT_OK if all(s.ok for s in statuses) else EXIT_FAIL


def cmd_arm_calibrate(args) -> int:
    from bench.arm import counts as arm_counts, runner as arm
    from bench.run.status import Status
    from reports.arm_estimate import write_calibration_table
    why = arm.toolchain_status("gnu")
    if why:
        print(f"cannot count under qemu: {Status.parse(why).message}", file=sys.stderr)
        return EXIT_FAIL
    df = arm_counts.calibration_counts(args.models or None, tuple(args.cpu))
    path = write_calibration_table(df, Path(args.out))
    bad = df[df.status != "ok"]
    for _, r in bad.iterrows():
        print(f"{r.model} {r.cpu_model}: {r.status}", file=sys.stderr)
    print(f"{len(df) - len(bad)} of {len(df)} counts -> {path}")
    return EXIT_FAIL if len(bad) else EXIT_OK


def cmd_arm_estimate(args) -> int:
    import pandas as pd

    from bench.arm import estimate as ae
    from reports.arm_estimate import estimates_markdown, loo_markdown
    devices = args.device_model or list(ae.DEVICES)
    unknown = [d for d in devices if d not in ae.DEVICES]
    if unknown:
        print(f"unknown device model {unknown[0]!r}; known: {', '.join(ae.DEVICES)}", file=sys.stderr)
        return EXIT_USAGE
    fits, forms, counts = ae.calibrated(devices, tuple(args.threads))
    table = ae.fits_table(fits)
    table["chosen"] = [forms.get((i, t)) == f for i, t, f in zip(table.isa, table.threads, table.form)]
    est = pd.concat([ae.estimate_model(m, args.size, devices, tuple(args.threads), (fits, forms, counts))
                     for m in args.models], ignore_index=True) if args.models else None
    if args.plot:
        from reports.arm_estimate import plot_calibration
        chosen = [f for f in fits if forms.get((f.isa, f.threads)) == f.form]
        for t in args.threads:
            path = Path(args.plot)
            print(f"calibration plot: {plot_calibration(chosen, path.with_name(f'{path.stem}_{t}t{path.suffix}'), t)}")
    if args.fp16 and args.models:
        from reports.arm_estimate import fp16_markdown
        print("fp16 kernels (cortex-a76) against fp32 (cortex-a72), instructions per layer group:\n")
        print(fp16_markdown(pd.concat([ae.fp16_layers_of(m, args.size) for m in args.models], ignore_index=True)))
        print()
    if args.json:
        _print_json({"forms": {f"{i}/{t}": f for (i, t), f in forms.items()}, "fits": table.to_dict("records"),
                     "estimates": est.to_dict("records") if est is not None else []})
        return EXIT_OK
    chosen = ", ".join(f"{i} {t} thread(s): {f}" for (i, t), f in forms.items())
    print(f"chosen form per ISA class and thread count (by LOO over the benchmark models): {chosen}\n")
    print(loo_markdown(table, list(ae.FORMS)))
    if est is not None:
        for t in args.threads:
            print(f"\nestimated ms, {t} thread(s) [80% band from LOO errors]; estimates, not measurements:\n")
            print(estimates_markdown(est, t))
    return EXIT_OK


def cmd_train(args) -> int:
    from tqdm import tqdm

    from bench.run.jobs import stop_on_signals
    from bench.train.session import TrainRequest, prepare, run

    req = TrainRequest(args.arch, Path(args.train_data_dir or args.data_dir), args.splits_dir, args.models_dir,
                       args.state_dir, Path(args.train_out), init=args.init, seed=args.seed,
                       train_size=args.train_size, name=args.name, steps=args.steps, epochs=args.epochs,
                       minutes=args.minutes, resume=args.train_resume, threads=args.threads, workers=args.workers,
                       device=args.device, cache=not args.no_cache)
    try:
        setup = prepare(req)
    except ValueError as e:
        print(e, file=sys.stderr)
        return EXIT_USAGE
    r = setup.recipe
    print(f"train {args.arch} -> {Path(args.train_out) / req.checkpoint_name}.pt  init={args.init}  "
          f"{setup.budget or 'resume'}  train {setup.n_train} / val {setup.n_val} images  size {r.train_size} "
          f"(eval {r.eval_size})  batch {r.batch_size}  lr {r.lr}  seed {r.seed}  threads {args.threads or 'default'}  "
          f"workers {args.workers}  device {args.device}", file=sys.stderr)
    bar = tqdm(total=None, unit="step", dynamic_ncols=True, file=sys.stderr)

    def on_progress(p) -> None:
        if p.total_steps and bar.total != p.total_steps:
            bar.total = p.total_steps
        bar.n = p.step
        bar.set_postfix_str(f"loss {p.loss:.3f} val_miou {p.val_miou:.3f} lr {p.lr:.1e} "
                            f"{p.img_per_s:.1f} img/s" + (" [validating]" if p.phase == "val" else ""))

    try:
        with stop_on_signals():  # Ctrl-C and SIGTERM, whatever the inherited disposition
            rec, pt, js = run(setup, on_progress)
    except KeyboardInterrupt:
        bar.close()
        state = setup.state_file
        kept = (f"the state of its last validation is kept in {state}" if state.is_file()
                else "it stopped before its first validation, so there is no state to resume from")
        print(f"interrupted: {kept}; resume with: python run_bench.py train --arch {args.arch} --name "
              f"{req.checkpoint_name} --resume --state-dir {args.state_dir} --out {args.train_out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    v = rec.val
    print(f"{args.arch}: {rec.steps} steps ({rec.epochs} epochs, {rec.train_seconds:.0f} s training, "
          f"{rec.img_per_s} img/s)  val mIoU {v.get('miou', float('nan')):.4f} "
          f"[{v.get('miou_ci_low', float('nan')):.4f}, {v.get('miou_ci_high', float('nan')):.4f}]  "
          f"boundary F {v.get('boundary_f', float('nan')):.4f}")
    print(f"  {pt}\n  {js}")
    return EXIT_OK


