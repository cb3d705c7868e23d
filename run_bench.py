#!/usr/bin/env python3
"""Benchmark suite for fast portrait-segmentation networks: one command line.

    python run_bench.py all [--quick]         measure everything, write reports/runs/<run>/ and its report
                                              (``--all`` is the same)
    python run_bench.py report RUN_DIR        re-render a run's report.md / report.html (no measuring)
    python run_bench.py compare RUN_A RUN_B   what changed between two runs, per design and metric
    python run_bench.py list [--kind peer]    the registered designs and peers
    python run_bench.py profile --arch NAME   parameters and cost of one design
    python run_bench.py eval --arch NAME --weights seed --data DIR [--split val]
    python run_bench.py train --arch NAME [--minutes 30 | --steps N | --epochs E]
    python run_bench.py latency --arch NAME --backend ncnn [--threads 2] [--size 256] [--repeat 5] [--json]
    python run_bench.py speedup --arch NAME [--backend ncnn] [--threads 2]   ncnn vs PyTorch, timed interleaved
    python run_bench.py check [--baseline bench/baseline.json] [--quick]   regression gate (docs/gate.md)

Exit codes: 0 ok, 1 failure, 2 usage error. This file only wires arguments to ``bench/`` (which
measures) and ``reports/`` (which writes files). It is longer than it should be (over 600 lines, goal
250): the gate's and training's orchestration (``cmd_check``, ``cmd_train``) are to move into
``bench/`` (issue 18, not done yet).
"""
from __future__ import annotations

import argparse
import os
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from bench.sources import get_source, list_sources

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _print_row(row: dict, keys: Sequence[str]) -> None:
    width = max(len(k) for k in keys)
    for k in keys:
        if k in row:
            v = row[k]
            print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")


def _one_job(job, as_json: bool, keys: Sequence[str]) -> int:
    from bench.jobs import run_job, status_of
    rows = run_job(job)
    status = status_of(rows)
    if status.startswith("error"):
        print(f"{job.key}: {status}", file=sys.stderr)
        return EXIT_FAIL
    if status != "ok":
        print(f"{job.key}: {status}", file=sys.stderr)
    if as_json:
        _print_json(rows[0] if len(rows) == 1 else rows)
    else:
        for r in rows:
            _print_row(r, keys)
    return EXIT_OK if status == "ok" else EXIT_FAIL


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


def _torch_model(name: str, option: str) -> bool:
    """Whether ``name`` is a torch model; says why ``option`` needs one when it is not."""
    if get_source(name).spec.form == "torch":
        return True
    print(f"{option} needs a model in PyTorch; {name} is a published model file", file=sys.stderr)
    return False


def cmd_profile(args) -> int:
    from bench.jobs import Job, run_job, status_of
    keys = ["arch", "input_size", "native_input", "params", "params_trainable", "size_mb_fp32", "size_mb_fp16",
            "size_mb_ncnn_bin", "macs", "macs_g", "macs_g_thop", "thop_rel_diff", "elementwise_g",
            "act_peak_mb", "act_largest_mb", "act_largest_shape", "ref_params", "ref_macs_g",
            "ref_macs_size", "macs_rel_diff"]
    job = Job.make("profile", args.arch, input_size=args.size, models_dir=str(args.models_dir))
    if args.layers and not _torch_model(args.arch, "--layers"):
        return EXIT_USAGE
    if not args.layers:
        return _one_job(job, args.json, keys)
    from bench.complexity import layer_table
    from bench.weights import load_model
    rows = run_job(job)
    status = status_of(rows)
    if status != "ok":
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
    from bench.jobs import Job
    extra = {k: v for k, v in (("split", args.split), ("layout", args.layout)) if v and v != "auto"}
    job = Job.make("accuracy", args.arch, weights=args.weights, input_size=args.size,
                   data_dir=str(Path(args.data).resolve()), models_dir=str(args.models_dir), **extra)
    return _one_job(job, args.json, ["arch", "weights", "dataset", "layout", "split", "input_size",
                                     "n_images", "miou", "miou_ci_low", "miou_ci_high", "iou_dataset",
                                     "boundary_f", "boundary_f_ci_low", "boundary_f_ci_high", "n_alpha",
                                     "sad_k", "mse_x1e3", "grad_k"])


def cmd_latency(args) -> int:
    import os

    from bench.jobs import Job
    threads = args.threads or os.cpu_count() or 1
    if args.layers and not _torch_model(args.arch, "--layers"):
        return EXIT_USAGE
    args.backend = args.backend or get_source(args.arch).spec.backends[0]
    if args.backend == "ncnn-arm":
        job = Job.make("device_latency", args.arch, device=args.device or "", threads=threads,
                       input_size=args.size, loops=args.loops, warmup=args.warmup, weights=args.weights,
                       powersave=args.powersave, models_dir=str(args.models_dir))
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
        return _one_job(Job.make("latency_repeat", args.arch, runs=args.repeat, **settings), args.json, [
            "protocol", "arch", "backend", "weights", "threads", "input_size", "status", "runs", "runs_ok",
            "runs_quiet", "run_medians_ms", "latency_ms_median_of_runs", "between_run_cv",
            "between_run_spread", "within_run_cv_median", "within_run_cv_max", "repeatable"])
    job = Job.make("latency", args.arch, **settings)
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
    from bench.latency import fixed_input
    from bench.weights import load_model
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

    from bench.jobs import Job
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
    from bench import arm
    why = arm.toolchain_status(args.toolchain)
    if why:
        print(f"cannot build the aarch64 runner: {why.removeprefix('skipped: ')}", file=sys.stderr)
        return EXIT_FAIL
    runner = arm.build_runner(toolchain=args.toolchain, jobs=args.jobs)
    plugin = arm.build_plugin()
    import dataclasses
    info = {**dataclasses.asdict(arm.runner_build_info(runner)), "plugin": str(plugin),
            "qemu": arm.qemu_version()}
    _print_row(info, list(info))
    return EXIT_OK


def cmd_arm_calibrate(args) -> int:
    from bench import arm, arm_counts
    from reports.arm_estimate import write_calibration_table
    why = arm.toolchain_status("gnu")
    if why:
        print(f"cannot count under qemu: {why.removeprefix('skipped: ')}", file=sys.stderr)
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

    from bench import arm_estimate as ae
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

    from bench.datasets import open_dataset, split_path
    from bench.train import Recipe, resolve_device, train
    from bench.weights import load_model
    from reports.training import load_state, save_state, state_path, write_trained_checkpoint

    kw = {"seed": args.seed}
    if args.train_size:
        kw["train_size"] = args.train_size
    recipe = Recipe(**kw)
    try:
        resolve_device(args.device)
    except ValueError as e:
        print(e, file=sys.stderr)
        return EXIT_USAGE
    data_dir = Path(args.train_data_dir or args.data_dir)
    name = args.name or (args.arch if args.init == "scratch" else f"{args.arch}-finetuned")
    sets = list(zip(recipe.train_sets, recipe.train_splits))
    train_sets = {n: open_dataset(data_dir / n, "folder", sp, args.splits_dir) for n, sp in sets}
    val_sets = {n: open_dataset(data_dir / n, "folder", recipe.val_split, args.splits_dir) for n, _ in sets}
    split_files = [split_path(n, sp, args.splits_dir) for n, tr in sets for sp in (tr, recipe.val_split)]
    init_model = None if args.init == "scratch" else load_model(args.arch, args.init, args.models_dir).model
    spath = state_path(args.state_dir, name)
    resume = load_state(spath) if args.train_resume else None
    budget = {}
    if resume is None:
        budget = ({"steps": args.steps} if args.steps else {"epochs": args.epochs} if args.epochs
                  else {"minutes": args.minutes or 30.0})
    n_train = sum(len(v) for v in train_sets.values())
    n_val = sum(len(v) for v in val_sets.values())
    print(f"train {args.arch} -> {Path(args.train_out) / name}.pt  init={args.init}  {budget or 'resume'}  "
          f"train {n_train} / val {n_val} images  size {recipe.train_size} (eval {recipe.eval_size})  "
          f"batch {recipe.batch_size}  lr {recipe.lr}  seed {recipe.seed}  threads {args.threads or 'default'}  "
          f"workers {args.workers}  device {args.device}",
          file=sys.stderr)
    bar = tqdm(total=None, unit="step", dynamic_ncols=True, file=sys.stderr)

    def on_progress(p) -> None:
        if p.total_steps and bar.total != p.total_steps:
            bar.total = p.total_steps
        bar.n = p.step
        bar.set_postfix_str(f"loss {p.loss:.3f} val_miou {p.val_miou:.3f} lr {p.lr:.1e} "
                            f"{p.img_per_s:.1f} img/s" + (" [validating]" if p.phase == "val" else ""))

    try:
        model, rec = train(args.arch, recipe, train_sets, val_sets, init_model=init_model, init=args.init,
                           threads=args.threads, resume=resume, on_progress=on_progress,
                           workers=args.workers, device=args.device,
                           cache_dir=None if args.no_cache else Path(__file__).resolve().parent / ".cache" / "train-items",
                           on_state=lambda st: save_state(st, spath), **budget)
    finally:
        bar.close()
    pt, js = write_trained_checkpoint(model, rec, Path(args.train_out), name, split_files, data_dir)
    v = rec.val
    print(f"{args.arch}: {rec.steps} steps ({rec.epochs} epochs, {rec.train_seconds:.0f} s training, "
          f"{rec.img_per_s} img/s)  val mIoU {v.get('miou', float('nan')):.4f} "
          f"[{v.get('miou_ci_low', float('nan')):.4f}, {v.get('miou_ci_high', float('nan')):.4f}]  "
          f"boundary F {v.get('boundary_f', float('nan')):.4f}")
    print(f"  {pt}\n  {js}")
    return EXIT_OK


def _consume(results, total: int, *sinks) -> tuple[list[str], int]:
    """Drain an executor's ``(job, rows)`` stream under a progress bar: hand each job's rows to
    ``sinks`` at once, print every failed job as it ends. Returns (the failures as ``key: status``,
    how many jobs were skipped)."""
    from tqdm import tqdm

    from bench.jobs import first_error

    errors, n_skip = [], 0
    with tqdm(total=total, unit="job", dynamic_ncols=True, file=sys.stderr) as bar:
        for job, rows in results:
            for sink in sinks:
                sink(rows)
            bad = first_error(rows)
            if bad:
                errors.append(f"{job.key}: {bad}")
                tqdm.write(errors[-1], file=sys.stderr)
            elif rows and str(rows[0].get("status", "")).startswith("skipped"):
                n_skip += 1
            bar.set_postfix_str(job.key[:60])
            bar.update(1)
    return errors, n_skip


def _all_plan(args):
    """The plan of an --all run and its folder: a new one from the flags (checked before anything
    runs), or, with --resume, the one saved in the run folder (flags that would change it are a
    usage error). Raises ValueError with the message for the user."""
    from bench.arm_estimate import check_device_model
    from bench.plan import PlanOptions, check_plan_options, resume_conflicts
    from reports.report import load_meta
    from reports.results import new_run_dir

    check_device_model(args.device_model)  # an unknown name: the error lists the calibrated devices
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "rows.jsonl").is_file():
            raise ValueError(f"--resume {run_dir}: not a run folder (no rows.jsonl)")
        meta = load_meta(run_dir)
        if "plan_options" not in meta:
            raise ValueError(f"--resume {run_dir}: its meta.json has no saved plan (a run of an older version); "
                             "start a new run")
        opts = PlanOptions.from_dict(meta["plan_options"])
        conflicts = resume_conflicts(opts, args.arch, args.size, args.quick, args.thorough)
        if conflicts:
            raise ValueError(f"--resume takes the plan from {run_dir}/meta.json; these flags would change it: "
                             + "; ".join(conflicts))
        return run_dir, opts, meta
    opts = PlanOptions(archs=tuple(args.arch) if args.arch else None, input_size=args.size or 256,
                       data_dir=args.data_dir, models_dir=args.models_dir, quick=args.quick,
                       thorough=args.thorough, device=args.device)
    if opts.quick and opts.thorough:
        raise ValueError("--quick and --thorough exclude each other")
    check_plan_options(opts)
    return (Path(args.out) if args.out else new_run_dir()), opts, None


def cmd_all(args) -> int:
    from bench.cluster import make_executor
    from bench.jobs import stop_on_signals
    from bench.plan import plan_all
    from bench.runinfo import run_meta
    from reports.results import RunWriter, finished_jobs

    try:
        run_dir, opts, old_meta = _all_plan(args)
    except ValueError as exc:
        print(f"run_bench.py: {exc}", file=sys.stderr)
        return EXIT_USAGE
    jobs = plan_all(opts)
    done = finished_jobs(run_dir) if old_meta is not None else set()
    meta = run_meta()
    if old_meta is None:
        meta.update(device_model=args.device_model,
                    plan={"jobs": len(jobs), "input_size": opts.input_size, "quick": opts.quick,
                          "thorough": opts.thorough},
                    plan_options=opts.to_dict())
    else:  # the run keeps its start date; each resume is recorded with its own
        meta = {**{k: v for k, v in old_meta.items() if k != "partial"},  # partial again only if interrupted again
                "resumed": [*old_meta.get("resumed", []),
                            {"date": meta["date"], "commit": meta["commit"], "jobs_done_before": len(done)}]}
    try:
        writer = RunWriter(run_dir)
        writer.write_meta(meta)
    except OSError as exc:
        print(f"run_bench.py: cannot write the run folder {run_dir}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    n_err, n_skip, interrupted = 0, 0, False
    todo = [j for j in jobs if j.key not in done]
    run = make_executor(args.executor, args.workers, [args.device] if getattr(args, "device", None) else [])
    try:
        with stop_on_signals():
            errors, n_skip = _consume(run(todo), len(todo), writer.append)
        n_err = len(errors)
    except KeyboardInterrupt:
        interrupted = True
    df = writer.finish()
    finished = len(finished_jobs(run_dir))
    if interrupted:
        meta["partial"] = {"jobs_finished": finished, "jobs_planned": len(jobs)}
        writer.write_meta(meta)
    print(f"{len(df)} rows ({n_err} failed jobs, {n_skip} skipped, {len(done)} reused) -> {run_dir}")
    for name in ("results.csv", "results.json"):
        print(f"  {run_dir / name}")
    try:
        with stop_on_signals():  # interrupted: no example strip or per-layer tables (they compute)
            report = _render_report(run_dir, df, meta, None if interrupted else Path(opts.data_dir) / "hsd",
                                    list(opts.archs or []), opts.input_size, layers=not interrupted)
        print(f"  {report.with_name('report.md')}\n  {report}")
    except KeyboardInterrupt:
        print(f"interrupted while writing the report; every row is saved: redo it with "
              f"`python run_bench.py report {run_dir}`", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the measurements are saved: the report can be redone alone
        print(f"report failed ({type(exc).__name__}: {exc}); redo it with "
              f"`python run_bench.py report {run_dir}`", file=sys.stderr)
        if not interrupted:
            return EXIT_FAIL
    if interrupted:
        print(f"interrupted: {finished} of {len(jobs)} jobs finished, their rows are kept (report marked "
              f"partial); resume with: python run_bench.py --all --resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if n_err == 0 else EXIT_FAIL


def cmd_sweep(args) -> int:
    from bench.cluster import make_executor
    from bench.sweep import SweepError, expand, load_matrix
    from bench.runinfo import run_meta
    from reports.results import RunWriter, finished_jobs, new_run_dir
    from reports.sweep import write_sweep_report

    try:
        matrix = load_matrix(args.matrix)
    except SweepError as exc:
        print(f"sweep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    jobs = expand(matrix)
    run_dir = Path(args.resume) if args.resume else (Path(args.out) if args.out else new_run_dir())
    done = finished_jobs(run_dir) if args.resume else set()
    writer = RunWriter(run_dir)
    writer.write_meta({**run_meta(), "sweep": {"matrix": str(args.matrix), "jobs": len(jobs),
                                               "executor": args.executor.kind}})
    print(f"sweep: {len(jobs)} jobs ({len(done)} done before) from {args.matrix}, executor "
          f"{args.executor.kind}{':' + args.executor.address if args.executor.address else ''}", file=sys.stderr)
    errors, _ = _consume(make_executor(args.executor, args.workers)(jobs, skip_keys=done), len(jobs) - len(done),
                         writer.append)
    n_err = len(errors)
    df = writer.finish()
    report = write_sweep_report(run_dir, df)
    print(f"{len(df)} rows ({n_err} failed jobs) -> {run_dir}\n  {report}")
    return EXIT_OK if n_err == 0 else EXIT_FAIL


def cmd_simulate(args) -> int:
    from bench.cluster import simulate
    from bench.jobs import Job, is_timing
    from reports.results import load_rows

    try:
        df = load_rows(Path(args.run_dir))
    except FileNotFoundError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    per_job = df.groupby("job", sort=False).first()
    jobs = [(float(r.job_seconds), is_timing(Job(r.measurement, r.arch))) for r in per_job.itertuples()]
    print(f"{len(jobs)} jobs of {args.run_dir}: simulated wall time (placement of --executor ray; an estimate "
          f"from the measured job durations, start-up and data movement ignored)")
    for n in args.nodes:
        r = simulate(jobs, n, args.cpus_per_node)
        print(f"  {n:>3} node(s) x {r.cpus_per_node} CPUs: {r.wall_s / 60:7.1f} min   "
              f"(timing jobs {r.timing_s / 60:.1f} min serial per node, others {r.other_s / 60:.1f} CPU-min)")
    return EXIT_OK


def cmd_check(args) -> int:
    from archs import list_archs
    from bench.gate import (DEFAULT_RULES, BaselineError, compare, figures_from_rows, gate_jobs, gate_settings,
                            load_baseline, machine_kind, machine_mismatch, make_strict, merge_figures,
                            new_baseline, only_jobs, settings_mismatch)
    from bench.cluster import make_executor
    from reports.gate import check_record, format_table, summary_line, write_baseline, write_check
    from bench.runinfo import run_meta
    from reports.results import RunWriter

    if args.update_baseline and not (args.reason or "").strip():
        print("--update-baseline needs --reason TEXT (why the figures change)", file=sys.stderr)
        return EXIT_USAGE
    if args.reason and not args.update_baseline:
        print("--reason goes with --update-baseline", file=sys.stderr)
        return EXIT_USAGE
    if args.only and not args.update_baseline:
        print("--only goes with --update-baseline", file=sys.stderr)
        return EXIT_USAGE
    baseline = None
    if not args.update_baseline or args.only:
        try:
            baseline = load_baseline(args.baseline)
        except BaselineError as exc:
            print(f"gate: {exc}", file=sys.stderr)
            return EXIT_FAIL
    meta = run_meta()
    archs = args.arch or list_archs()
    settings = gate_settings(args.quick)
    jobs = gate_jobs(archs, quick=args.quick, models_dir=args.models_dir, data_dir=args.data_dir)
    if args.only:
        try:
            jobs = only_jobs(jobs, args.only)
        except ValueError as exc:
            print(f"gate: {exc}", file=sys.stderr)
            return EXIT_USAGE
    # the settings first, as benchncnn does
    print(f"gate: {len(archs)} designs at {settings['input_size']}px; latency torch + ncnn at "
          f"{settings['threads']} thread(s), {settings['repeats']} rounds of {settings['loops']} timed + "
          f"{settings['warmup']} warm-up loops, then ncnn vs torch interleaved ({settings['speedup_rounds']} rounds of "
          f"{settings['speedup_loops']}){' (quick)' if args.quick else ''}; this machine: "
          f"{machine_kind(meta['machine'])}", file=sys.stderr)
    note = None
    if baseline is not None:
        print(f"baseline: {args.baseline} ({baseline.created}, commit {baseline.commit or '?'}, "
              f"reason: {baseline.reason}); machine: {machine_kind(baseline.machine)}", file=sys.stderr)
        note = (machine_mismatch(baseline.machine, meta["machine"])
                or settings_mismatch(baseline.settings, settings))
        if note:
            print(f"gate: {note}", file=sys.stderr)
    try:
        writer = RunWriter(Path(args.out)) if args.out else None
        if writer:
            writer.write_meta({**meta, "gate": {**settings, "baseline": str(args.baseline)}})
    except OSError as exc:
        print(f"gate: cannot write the output folder {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    rows: list[dict] = []
    errors, _ = _consume(make_executor(args.executor)(jobs), len(jobs), rows.extend,
                         *([writer.append] if writer else []))
    if writer:
        writer.finish()
    current = figures_from_rows(rows)

    if args.update_baseline:
        if errors:
            print(f"gate: {len(errors)} jobs failed; the baseline is not written", file=sys.stderr)
            return EXIT_FAIL
        commit = meta.get("commit", "") + ("-dirty" if meta.get("dirty") else "")
        if args.only:  # the other figures, the machine and the settings stay the baseline's
            current = merge_figures(baseline.metrics, current, args.only)
            b = new_baseline(current, baseline.machine, baseline.versions,
                             f"{baseline.reason} | {commit}: {', '.join(args.only)} re-measured: {args.reason}",
                             baseline.commit, baseline.settings)
        else:
            b = new_baseline(current, meta["machine"], meta["versions"], args.reason, commit, settings)
        path = write_baseline(Path(args.baseline), b)
        n = sum(len(m) for m in current.values())
        print(f"gate: baseline written: {path} ({n} figures of {len(current)} designs; reason: {args.reason})")
        return EXIT_OK

    comparisons = compare(current, baseline.metrics, DEFAULT_RULES, same_machine=note is None)
    if args.strict:
        comparisons = make_strict(comparisons)
    if writer:
        write_check(Path(args.out), comparisons, note, errors)
    if args.json:
        _print_json(check_record(comparisons, note, errors))
    else:
        if note:
            print(f"note: {note}\n")
        print(format_table(comparisons))
        print()
        print(summary_line(comparisons, len(errors)))
        for e in errors:
            print(f"  {e}")
    return EXIT_FAIL if errors or any(c.failed for c in comparisons) else EXIT_OK


def _render_report(run_dir: Path, df, meta: dict, data_dir: Optional[Path], archs, size: int,
                   layers: bool = True) -> Path:
    """Example strip (when ``data_dir`` is given) and report of a run; progress on stderr."""
    from reports.report import write_examples, write_report

    def say(msg: str) -> None:
        print(f"report: {msg}", file=sys.stderr, flush=True)

    if data_dir is not None:
        say(f"example predictions on {data_dir}")
        info = write_examples(run_dir, data_dir, archs=archs or None, input_size=size)
        if info.get("note"):
            say(info["note"])
    return write_report(run_dir, df, meta, layer_tables=layers, progress=say)


def cmd_report(args) -> int:
    from reports.report import load_meta, load_results, main_input_size

    run_dir = Path(args.run_dir)
    try:
        df = load_results(run_dir)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    meta = load_meta(run_dir)
    size = main_input_size(df, meta)
    archs = sorted(set(df["arch"].dropna())) if "arch" in df.columns else None
    try:
        path = _render_report(run_dir, df, meta, Path(args.data) if args.data else None, archs, size,
                              layers=not args.no_layers)
    except OSError as exc:
        print(f"report: cannot write into {run_dir}: {exc.strerror or exc} ({exc.filename or run_dir})",
              file=sys.stderr)
        return EXIT_USAGE
    print(path.with_name("report.md"))
    print(path)
    return EXIT_OK


def cmd_compare(args) -> int:
    from reports.report import compare_runs, format_comparison, load_meta, load_results

    dfs = []
    for d in (args.run_a, args.run_b):
        try:
            dfs.append(load_results(Path(d)))
        except FileNotFoundError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
        m = load_meta(Path(d))
        print(f"{'AB'[len(dfs) - 1]}: {d}  ({m.get('date', '?')}, commit {m.get('commit', '?')}"
              f"{', dirty' if m.get('dirty') else ''})")
    cmp = compare_runs(dfs[0], dfs[1], input_size=args.size, rel_tol=args.min_change / 100)
    print(format_comparison(cmp))
    return EXIT_OK


def _arch_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--arch", required=required, metavar="NAME",
                   help="design or peer name (see `run_bench.py list`)")


def _executor_arg(p: argparse.ArgumentParser) -> None:
    from bench.cluster import parse_executor

    p.add_argument("--executor", type=_parsed(parse_executor), default=parse_executor("local"),
                   metavar="local|ray[:ADDRESS]",
                   help="where the jobs run: local (default), ray (a local Ray instance) or ray:ADDRESS "
                        "(join that Ray cluster; docs/cluster.md)")


def _parsed(fn):
    """An argparse type from a parser that raises ValueError (its message becomes the usage error)."""
    def parse(text: str):
        try:
            return fn(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _at_least(low: int):
    """argparse type: a whole number >= ``low`` (else a usage error saying so)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum {low}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    from bench.backends.table import BACKENDS, TABLE
    from bench.latency import MIN_LOOPS
    from bench.paths import (BASELINE_PATH, CHECKPOINTS_DIR, DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR, SPLITS_DIR,
                             TRAIN_STATE_DIR)

    run = argparse.ArgumentParser(add_help=False)  # the options of `all` (and of the --all alias)
    run.add_argument("--out", metavar="DIR", help="run folder (default reports/runs/<utc time>)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run; finished jobs are kept")
    run.add_argument("--arch", action="append", metavar="NAME", help="only these designs (repeatable)")
    run.add_argument("--size", type=_at_least(1), default=None, help="network input side (default 256)")
    run.add_argument("--quick", action="store_true", help="fewer sizes and loops (CI)")
    run.add_argument("--thorough", action="store_true",
                     help="also re-measure every latency in fresh processes (repeatability), time the ncnn "
                          "speed-ups interleaved and sweep latency over input sizes (about 3x longer)")
    run.add_argument("--device", metavar="DEV", default=None,
                     help="real ARM device for ncnn latency: adb[:SERIAL] or ssh:USER@HOST[:PORT] "
                          "(default: none, those rows say skipped)")
    run.add_argument("--workers", type=_at_least(0), default=0,
                     help="run jobs in N processes (default 0 = in this process, as timing needs)")
    run.add_argument("--device-model", default="rpi4", metavar="NAME",
                     help="ARM device of the report's accuracy-vs-estimated-ms plot (default rpi4; see docs/arm.md)")
    _executor_arg(run)
    p = argparse.ArgumentParser(prog="run_bench.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, parents=[run])
    p.add_argument("--all", action="store_true", help="the same as the `all` command (kept as an alias)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="shared data folder (default %(default)s)")
    p.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR, help="shared models folder (default %(default)s)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("all", parents=[run], help="run every measurement for every design and peer and "
                                                  "write a run folder with its report")
    s.set_defaults(func=cmd_all)

    s = sub.add_parser("list", help="list the registered names: designs and peers, with their kind")
    s.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'seg*'")
    s.add_argument("--kind", choices=["design", "peer"], help="only designs or only peers")
    s.add_argument("-v", "--verbose", action="store_true", help="with form, reference numbers, input and backends")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("profile", help="parameters, MACs (fvcore and thop), weight size and "
                                       "activation memory of one design (1 MAC = 1 multiply-add)")
    _arch_arg(s)
    s.add_argument("--size", type=int, default=256, help="input side (default 256)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--layers", action="store_true",
                   help="also the per-layer table (path, type, output shape, params, MACs, share)")
    s.set_defaults(func=cmd_profile)

    s = sub.add_parser("eval", help="accuracy (mean per-image IoU) of one design on a data folder")
    _arch_arg(s)
    s.add_argument("--weights", default="random",
                   help="random, seed (the published seg_matting checkpoint), trained, or a path")
    s.add_argument("--data", required=True, metavar="DIR",
                   help="folder with images/ and masks/ or alpha/ (or an EG1800, AISegment, PPM-100, "
                        "P3M-10k folder, see --layout)")
    s.add_argument("--size", type=int, default=256, help="network input side (default 256)")
    s.add_argument("--split", default=None,
                   help="part of the data: all, train, val or test (stems in splits/<folder>_<split>.txt; "
                        "eg1800 has test, the authors' list) for the shared format; test/train (EG1800's "
                        "original layout); val_np/val_p/train (P3M-10k). Default: all, "
                        "or the test / validation part of a public set")
    s.add_argument("--layout", default="auto",
                   choices=["auto", "folder", "eg1800", "aisegment", "ppm100", "p3m10k"],
                   help="data layout (default: detected from the folders)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("latency", help="latency of one design on one backend (protocol: docs/latency.md)")
    _arch_arg(s)
    s.add_argument("--backend", default=None, choices=list(TABLE),
                   help="torch (eager), ncnn (converted with pnnx, cached in .cache/ncnn), onnxruntime, "
                        "ncnn-arm (our aarch64 runner on --device; without one: a skipped row) or litert "
                        "(.tflite peers); default: the model's reference (torch for designs)")
    s.add_argument("--device", metavar="DEV",
                   help="with ncnn-arm: adb[:SERIAL] (Android) or ssh:user@host[:port] (ARM board)")
    s.add_argument("--powersave", type=int, default=0, choices=[0, 1, 2],
                   help="with ncnn-arm: ncnn core choice, 0 all, 1 little, 2 big (default 0)")
    s.add_argument("--threads", type=_at_least(1), default=None, help="threads (default: all cores)")
    s.add_argument("--size", type=int, default=256, help="input side (default 256)")
    s.add_argument("--loops", type=_at_least(MIN_LOOPS), default=30,
                   help=f"timed iterations (default 30, at least {MIN_LOOPS})")
    s.add_argument("--warmup", type=_at_least(0), default=10, help="untimed iterations first (default 10)")
    s.add_argument("--weights", default="random",
                   help="random (default), seed (seg_matting), trained or a path; parity is checked with them")
    s.add_argument("--layers", action="store_true",
                   help="also the time per layer type (ncnn: per layer, extracted one by one; torch: profiler)")
    s.add_argument("--repeat", type=int, metavar="N",
                   help="run the measurement N times (at least 2), each in a fresh process, and report how "
                        "well its median repeats (between-run CV)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_latency)

    s = sub.add_parser("speedup", help="how much faster ncnn (or onnxruntime) runs a design than PyTorch, "
                                        "both timed interleaved in one process (docs/latency.md)")
    _arch_arg(s)
    s.add_argument("--backend", default="ncnn", choices=[b for b in BACKENDS if b != "torch"],
                   help="the backend compared with PyTorch (default ncnn)")
    s.add_argument("--threads", type=_at_least(1), default=None, help="threads for both (default: all cores)")
    s.add_argument("--size", type=int, default=256, help="input side (default 256)")
    s.add_argument("--rounds", type=int, default=10, help="rounds, each backend timed once per round "
                                                          "(default 10, at least 3)")
    s.add_argument("--loops", type=_at_least(MIN_LOOPS), default=10,
                   help="timed iterations per backend and round (default 10)")
    s.add_argument("--warmup", type=_at_least(0), default=3, help="untimed iterations per backend and round (default 3)")
    s.add_argument("--weights", default="random",
                   help="random (default), seed (seg_matting), trained or a path; parity is checked with them")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_speedup)

    s = sub.add_parser("build-arm", help="build (or reuse) the static aarch64 ncnn runner and the qemu "
                                         "instruction-count plugin, cached in .cache/arm")
    s.add_argument("--toolchain", default="gnu", choices=["gnu", "zig"],
                   help="gnu: Debian g++-aarch64-linux-gnu (default); zig: ziglang from PyPI")
    s.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default 2)")
    s.set_defaults(func=cmd_build_arm)

    s = sub.add_parser("arm-calibrate", help="count ncnn's benchncnn models under qemu (cortex-a72 and "
                                             "cortex-a76, per layer) into the committed calibration table")
    s.add_argument("--models", nargs="*", help="benchncnn models (default: every non-int8 one)")
    s.add_argument("--cpu", nargs="+", default=["cortex-a72", "cortex-a76"], choices=["cortex-a72", "cortex-a76"])
    s.add_argument("--out", default=str(Path(__file__).resolve().parent / "bench" / "arm" / "calibration_counts.csv"))
    s.set_defaults(func=cmd_arm_calibrate)

    s = sub.add_parser("arm-estimate", help="estimated ms on ARM devices from instruction counts, "
                                            "calibrated on ncnn's published timings (docs/arm.md)")
    s.add_argument("--models", nargs="*", default=[], help="designs or peers to estimate (none: the fits only)")
    s.add_argument("--device-model", nargs="*", help="devices (default: all calibrated ones)")
    s.add_argument("--threads", nargs="+", type=int, default=[1, 4], choices=[1, 2, 4])  # 2: rk3399 only
    s.add_argument("--size", type=int, default=None, help="input side for designs (default 256; peers: native)")
    s.add_argument("--plot", help="also write the calibration-quality plot (PNG; one per thread count)")
    s.add_argument("--fp16", action="store_true", help="with --models: cortex-a76 / cortex-a72 instructions per "
                                                       "model, by output channels a multiple of 8 or not")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_arm_estimate)

    s = sub.add_parser("train", help="train one design with the suite's recipe (docs/training.md)")
    _arch_arg(s)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--minutes", type=float, help="time budget; turned into a step count after timing "
                   "the first steps (default 30 when no length is given)")
    g.add_argument("--steps", type=int, help="number of optimisation steps (batch 16)")
    g.add_argument("--epochs", type=float, help="passes over the training images")
    s.add_argument("--init", default="scratch",
                   help="scratch (seeded random init, default), seed (seg_matting's published checkpoint) "
                        "or a state-dict path")
    s.add_argument("--seed", type=int, default=0, help="seed of init, data order and augmentation (default 0)")
    s.add_argument("--train-size", type=int, help="training crop side (default: the recipe's, 192)")
    s.add_argument("--threads", type=_at_least(1), help="torch threads (default: torch's default)")
    s.add_argument("--name", help="checkpoint name (default: the design, or <design>-finetuned with --init)")
    s.add_argument("--out", dest="train_out", default=str(CHECKPOINTS_DIR), metavar="DIR",
                   help="where <name>.pt and <name>.json go (default %(default)s)")
    s.add_argument("--data-dir", dest="train_data_dir", type=Path, metavar="DIR",
                   help="folder holding the recipe's sets (eg1800/, ccp-person/, hsd/, aisegment-40/; default: the top-level --data-dir)")
    s.add_argument("--splits-dir", type=Path, default=SPLITS_DIR, help="stem lists (default %(default)s)")
    s.add_argument("--state-dir", type=Path, default=TRAIN_STATE_DIR,
                   help="resumable state <name>.state.pt, written at every validation (default %(default)s)")
    s.add_argument("--resume", dest="train_resume", action="store_true", help="continue the interrupted run of <name> from --state-dir")
    s.add_argument("--workers", type=int, default=1,
                   help="DataLoader processes making the augmented batches (default 1; 0: in the training process)")
    s.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N] (an error where no GPU exists)")
    s.add_argument("--no-cache", action="store_true",
                   help="decode the training images again instead of reading .cache/train-items")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("report", help="re-render the report of a saved run (no measuring)")
    s.add_argument("run_dir", metavar="RUN_DIR", help="run folder (reports/runs/<run>)")
    s.add_argument("--data", metavar="DIR", help="also redo the example predictions on this data folder")
    s.add_argument("--no-layers", action="store_true", help="skip the per-layer MAC share plot")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("compare", help="what changed between two runs, per design and metric")
    s.add_argument("run_a", metavar="RUN_A", help="the older run folder")
    s.add_argument("run_b", metavar="RUN_B", help="the newer run folder")
    s.add_argument("--size", type=int, default=None, help="input side to compare at (default: run A's)")
    s.add_argument("--min-change", type=float, default=0.0, metavar="PCT",
                   help="hide changes smaller than PCT percent (default 0: every change)")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("check", help="regression gate: measure this tree and compare with the committed "
                                     "baseline (docs/gate.md); exit 1 on any violation")
    s.add_argument("--baseline", type=Path, default=BASELINE_PATH,
                   metavar="PATH", help="baseline file (default bench/baseline.json)")
    s.add_argument("--quick", action="store_true",
                   help="short latency loops (12 timed, 3 warm-up, one attempt per round): a few "
                        "minutes, for CI")
    s.add_argument("--update-baseline", action="store_true",
                   help="measure and rewrite the baseline instead of checking (needs --reason)")
    s.add_argument("--reason", metavar="TEXT", help="why the baseline changes (recorded in the file)")
    s.add_argument("--only", nargs="+", metavar="FIGURE",
                   help="with --update-baseline: re-measure only these deterministic figures (e.g. "
                        "arm_instructions_m after a runner change) and keep every other one")
    s.add_argument("--arch", action="append", metavar="NAME", help="only these designs (repeatable; default all)")
    s.add_argument("--strict", action="store_true",
                   help="a baseline figure this run could not measure (skipped job) fails instead of "
                        "being skipped (CI uses it)")
    s.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    s.add_argument("--out", metavar="DIR", help="also keep the rows (rows.jsonl, results.csv) and gate.txt / "
                                                "gate.json in this folder")
    _executor_arg(s)
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("sweep", help="run a declared matrix (designs x sizes x threads x backends, training "
                                     "seeds x recipe variants) and report it (docs/cluster.md)")
    s.add_argument("matrix", type=Path, metavar="MATRIX.toml", help="the matrix (e.g. bench/sweeps/example.toml)")
    s.add_argument("--out", metavar="DIR", help="run folder (default reports/runs/<utc time>)")
    s.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted sweep; finished jobs are kept")
    s.add_argument("--workers", type=int, default=0, help="local: N processes; ray: CPUs of the local instance")
    _executor_arg(s)
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("simulate", help="expected wall time of a run's jobs on 1, 4, 16 nodes under the Ray "
                                        "executor's placement, from its measured job durations")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("--nodes", type=int, nargs="+", default=[1, 4, 16])
    s.add_argument("--cpus-per-node", type=int, default=os.cpu_count() or 1)
    s.set_defaults(func=cmd_simulate)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import bench.measurements  # noqa: F401  registers the measurements
    chosen = args.arch if isinstance(args.arch, list) else [args.arch] if args.arch else []
    unknown = [a for a in chosen if a not in list_sources()]
    if unknown:
        parser.error(f"unknown name {unknown[0]!r}; known designs: {', '.join(list_sources(kind='design'))}; "
                     f"known peers: {', '.join(list_sources(kind='peer'))}")
    if args.all:
        if args.command:
            parser.error("--all takes no subcommand")
        return cmd_all(args)  # the alias of `all`
    for flag in ("resume", "out", "quick", "thorough"):
        if getattr(args, flag, None) and not args.command:
            parser.error(f"--{flag} goes with all (or --all)")
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    # the sub-parser's own defaults (e.g. --size) win over the top-level ones
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
