"""Commands over many jobs and over run folders: all (and --all), sweep, simulate, check, report,
compare."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from .common import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, _consume, _print_json


def _all_plan(args):
    """The plan of an --all run and its folder: a new one from the flags (checked before anything
    runs), or, with --resume, the one saved in the run folder (flags that would change it are a
    usage error). Raises ValueError with the message for the user."""
    from bench.arm.estimate import check_device_model
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
        with stop_on_signals():  # (the example strip and per-layer plot come from rows: a partial run has some)
            report = _render_report(run_dir, df, meta, None, list(opts.archs or []))
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
    from bench.jobs import stop_on_signals
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
    meta = {**run_meta(), "sweep": {"matrix": str(args.matrix), "jobs": len(jobs), "executor": args.executor.kind}}
    writer.write_meta(meta)
    print(f"sweep: {len(jobs)} jobs ({len(done)} done before) from {args.matrix}, executor "
          f"{args.executor.kind}{':' + args.executor.address if args.executor.address else ''}", file=sys.stderr)
    errors, interrupted = [], False
    try:
        with stop_on_signals():
            errors, _ = _consume(make_executor(args.executor, args.workers)(jobs, skip_keys=done),
                                 len(jobs) - len(done), writer.append)
    except KeyboardInterrupt:
        interrupted = True
    df = writer.finish()
    resume = f"python run_bench.py sweep {args.matrix} --resume {run_dir}"
    if interrupted:
        finished = len(finished_jobs(run_dir))
        writer.write_meta({**meta, "partial": {"jobs_finished": finished, "jobs_planned": len(jobs)}})
        try:
            with stop_on_signals():
                write_sweep_report(run_dir, df)
        except KeyboardInterrupt:
            pass  # the rows are saved; the resumed sweep writes the report
        print(f"interrupted: {finished} of {len(jobs)} jobs finished, their rows are kept; resume with: {resume}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    report = write_sweep_report(run_dir, df)
    print(f"{len(df)} rows ({len(errors)} failed jobs) -> {run_dir}\n  {report}")
    return EXIT_OK if not errors else EXIT_FAIL


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
    from bench.check import CheckRequest, conclude, plan_check
    from bench.cluster import make_executor
    from bench.gate import BaselineError, machine_kind
    from reports.gate import check_record, format_table, plan_lines, summary_line, write_baseline, write_check
    from reports.results import RunWriter

    req = CheckRequest(args.baseline, tuple(args.arch or ()), args.quick, args.update_baseline, args.reason,
                       tuple(args.only or ()), args.strict, args.models_dir, args.data_dir,
                       this_machine=args.this_machine)
    if req.usage_error():
        print(req.usage_error(), file=sys.stderr)
        return EXIT_USAGE
    try:
        plan = plan_check(req)
    except BaselineError as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except ValueError as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for line in plan_lines(plan):  # the settings first, as benchncnn does
        print(line, file=sys.stderr)
    try:
        writer = RunWriter(Path(args.out)) if args.out else None
        if writer:
            writer.write_meta({**plan.meta, "gate": {**plan.settings, "baseline": str(args.baseline)}})
    except OSError as exc:
        print(f"gate: cannot write the output folder {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    rows: list[dict] = []
    errors, _ = _consume(make_executor(args.executor)(plan.jobs), len(plan.jobs), rows.extend,
                         *([writer.append] if writer else []))
    if writer:
        writer.finish()
    result = conclude(plan, rows, errors)
    if args.update_baseline:
        if result.new_baseline is None:
            print(f"gate: {len(errors)} jobs failed; the baseline is not written", file=sys.stderr)
            return EXIT_FAIL
        path = write_baseline(Path(args.baseline), result.new_baseline)
        kind = machine_kind(plan.meta["machine"])
        written = result.new_baseline.machines[kind]["metrics"] if args.this_machine else result.figures
        n = sum(len(m) for m in written.values())
        what = f"time ratios of this machine kind, {kind}," if args.this_machine else "figures"
        print(f"gate: baseline written: {path} ({n} {what} of {len(result.figures)} designs; reason: {args.reason})")
        kept = sorted(result.new_baseline.machines)
        if kept and not args.this_machine:
            print(f"gate: kept the time ratios of {len(kept)} other machine kind(s): {'; '.join(kept)} "
                  "(re-measure them there with --this-machine if this change moves timings)")
        return EXIT_OK
    if writer:
        write_check(Path(args.out), result.comparisons, plan.note, errors)
    if args.json:
        _print_json(check_record(result.comparisons, plan.note, errors))
    else:
        if plan.note:
            print(f"note: {plan.note}\n")
        print(format_table(result.comparisons))
        print()
        print(summary_line(result.comparisons, len(errors)))
        for e in errors:
            print(f"  {e}")
    return EXIT_OK if result.passed else EXIT_FAIL


def _render_report(run_dir: Path, df, meta: dict, data_dir: Optional[Path], archs,
                   layers: bool = True) -> Path:
    """Example strip and report of a run, from its rows (``data_dir``: where to read the example
    photos, default the folder the rows name); progress on stderr."""
    from reports.report import write_examples, write_report

    def say(msg: str) -> None:
        print(f"report: {msg}", file=sys.stderr, flush=True)

    say("example predictions")
    info = write_examples(run_dir, df, archs=archs or None, data_dir=data_dir)
    if info.get("note"):
        say(info["note"])
    return write_report(run_dir, df, meta, layer_tables=layers, progress=say)


def cmd_report(args) -> int:
    from reports.report import load_meta, load_results

    run_dir = Path(args.run_dir)
    try:
        df = load_results(run_dir)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    meta = load_meta(run_dir)
    archs = sorted(set(df["arch"].dropna())) if "arch" in df.columns else None
    try:
        path = _render_report(run_dir, df, meta, Path(args.data) if args.data else None, archs,
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


