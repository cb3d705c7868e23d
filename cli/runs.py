"""Commands over many jobs and over run folders: all (and --all), sweep, simulate, check, report,
compare."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from .common import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, _print_json


def _all_plan(args):
    """The plan of an --all run and its folder: a new one from the flags (checked before anything
    runs), or, with --resume, the one saved in the run folder (flags that would change it are a
    usage error). Raises ValueError with the message for the user."""
    from bench.arm.estimate import check_device_model
    from bench.run.plan import PlanOptions, check_plan_options, resume_conflicts
    from reports.report import load_meta
    from reports.results import check_resume_dir, new_run_dir

    check_device_model(args.device_model)  # an unknown name: the error lists the calibrated devices
    if args.resume:
        if args.out:
            raise ValueError(f"--out {args.out} goes without --resume: a resumed run writes into its own folder "
                             f"({args.resume})")
        run_dir = Path(args.resume)
        check_resume_dir(run_dir)
        meta = load_meta(run_dir)
        if "plan_options" not in meta:
            raise ValueError(f"--resume {run_dir}: its meta.json has no saved plan (a run of an older version); "
                             "start a new run")
        opts = PlanOptions.from_dict(meta["plan_options"])
        conflicts = resume_conflicts(opts, args.arch, args.size, args.quick, args.thorough)
        if conflicts:
            raise ValueError(f"--resume takes the plan from {run_dir}/meta.json; these flags would change it: "
                             + "; ".join(conflicts))
        return run_dir, opts, True
    opts = PlanOptions(archs=tuple(args.arch) if args.arch else None, input_size=args.size or 256,
                       data_dir=args.data_dir, models_dir=args.models_dir, quick=args.quick,
                       thorough=args.thorough, device=args.device)
    if opts.quick and opts.thorough:
        raise ValueError("--quick and --thorough exclude each other")
    check_plan_options(opts)  # (the --out folder is checked by open_run, before and under its lock)
    return (Path(args.out) if args.out else new_run_dir()), opts, False


def _open(run_dir: Path, resume: bool, fresh_meta: dict, command: str, who: str = "run_bench.py",
          noun: str = "run folder"):
    """The run folder's session, or (None, exit code) after a one-line usage error."""
    from reports.results import RunFolderError
    from .runfolder import open_run
    try:
        return open_run(run_dir, resume, fresh_meta, command), EXIT_OK
    except RunFolderError as exc:
        print(f"{who}: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"{who}: cannot write the {noun} {run_dir}: {exc.strerror or exc}", file=sys.stderr)
    return None, EXIT_USAGE


def cmd_all(args) -> int:
    from bench.run.cluster import make_executor
    from bench.run.jobs import stop_on_signals
    from bench.run.plan import plan_all
    from bench.run.runinfo import run_meta
    from .runfolder import summary_line

    try:
        run_dir, opts, resume = _all_plan(args)
    except ValueError as exc:
        print(f"run_bench.py: {exc}", file=sys.stderr)
        return EXIT_USAGE
    jobs = plan_all(opts)
    fresh = run_meta()
    fresh.update(device_model=args.device_model,
                 plan={"jobs": len(jobs), "input_size": opts.input_size, "quick": opts.quick,
                       "thorough": opts.thorough},
                 plan_options=opts.to_dict())
    session, code = _open(run_dir, resume, fresh, "all")
    if session is None:
        return code
    try:
        session.run(make_executor(args.executor, args.workers, [args.device] if getattr(args, "device", None) else []),
                    jobs)
        df, counts = session.finish(len(jobs))
        print(summary_line(df, counts, len(session.done), run_dir))
        for name in ("results.csv", "results.json"):
            print(f"  {run_dir / name}")
        try:
            with stop_on_signals():  # (the example strip and per-layer plot come from rows: a partial run has some)
                report = _render_report(run_dir, df, session.meta, None, list(opts.archs or []))
            print(f"  {report.with_name('report.md')}\n  {report}")
        except KeyboardInterrupt:
            print(f"interrupted while writing the report; every row is saved: redo it with "
                  f"`python run_bench.py report {run_dir}`", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as exc:  # the measurements are saved: the report can be redone alone
            print(f"report failed ({type(exc).__name__}: {exc}); redo it with "
                  f"`python run_bench.py report {run_dir}`", file=sys.stderr)
            if not session.interrupted:
                return EXIT_FAIL
        if session.interrupted:
            p = session.meta["partial"]
            print(f"interrupted: {p['jobs_finished']} of {len(jobs)} jobs finished, their rows are kept (report "
                  f"marked partial); resume with: python run_bench.py --all --resume {run_dir}", file=sys.stderr)
            return EXIT_INTERRUPTED
        return EXIT_OK if counts.failed == 0 else EXIT_FAIL
    finally:
        session.close()


def cmd_sweep(args) -> int:
    from bench.run.cluster import make_executor
    from bench.run.jobs import stop_on_signals
    from bench.run.sweep import SweepError, expand, load_matrix
    from bench.run.runinfo import run_meta
    from reports.results import new_run_dir
    from reports.sweep import write_sweep_report
    from .runfolder import summary_line

    if args.resume and args.out:
        print(f"sweep: --out {args.out} goes without --resume: a resumed sweep writes into its own folder "
              f"({args.resume})", file=sys.stderr)
        return EXIT_USAGE
    try:
        matrix = load_matrix(args.matrix)
    except SweepError as exc:
        print(f"sweep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    jobs = expand(matrix)
    run_dir = Path(args.resume) if args.resume else (Path(args.out) if args.out else new_run_dir())
    fresh = {**run_meta(), "sweep": {"matrix": str(args.matrix), "jobs": len(jobs), "executor": args.executor.kind}}
    session, code = _open(run_dir, bool(args.resume), fresh, "sweep", who="sweep")
    if session is None:
        return code
    try:
        done = session.done
        print(f"sweep: {len(jobs)} jobs ({len(done)} done before) from {args.matrix}, executor "
              f"{args.executor.kind}{':' + args.executor.address if args.executor.address else ''}", file=sys.stderr)
        session.run(make_executor(args.executor, args.workers), jobs)
        df, counts = session.finish(len(jobs))
        resume = f"python run_bench.py sweep {args.matrix} --resume {run_dir}"
        if session.interrupted:
            try:
                with stop_on_signals():
                    write_sweep_report(run_dir, df)
            except KeyboardInterrupt:
                pass  # the rows are saved; the resumed sweep writes the report
            print(f"interrupted: {session.meta['partial']['jobs_finished']} of {len(jobs)} jobs finished, their rows "
                  f"are kept; resume with: {resume}", file=sys.stderr)
            return EXIT_INTERRUPTED
        report = write_sweep_report(run_dir, df)
        print(f"{summary_line(df, counts, len(done), run_dir)}\n  {report}")
        return EXIT_OK if counts.failed == 0 else EXIT_FAIL
    finally:
        session.close()


def cmd_simulate(args) -> int:
    from bench.run.cluster import simulate
    from bench.run.jobs import Job, is_timing
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
    from bench.gate.check import CheckRequest, conclude, plan_check
    from bench.run.cluster import make_executor
    from bench.gate.rules import BaselineError, machine_kind
    from reports.gate import check_record, format_table, plan_lines, summary_line, write_baseline, write_check
    from .runfolder import drain

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
    session = None
    if args.out:
        session, code = _open(Path(args.out), False, {**plan.meta, "gate": {**plan.settings,
                                                                            "baseline": str(args.baseline)}},
                              "check", who="gate", noun="output folder")
        if session is None:
            return code
    try:
        rows: list[dict] = []
        if session:  # --out: the rows saved as they come, as in all and sweep
            errors = session.run(make_executor(args.executor), plan.jobs, rows.extend)
            interrupted = session.interrupted
            session.finish(len(plan.jobs))
        else:
            errors, interrupted = drain(make_executor(args.executor)(plan.jobs), len(plan.jobs), rows.extend)
    finally:
        if session:
            session.close()
    if interrupted:
        kept = f"; the rows that finished are in {args.out}" if args.out else ""
        print(f"interrupted: the gate concluded nothing and wrote no baseline{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
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
    if args.out:
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


