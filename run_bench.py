#!/usr/bin/env python3
"""Benchmark suite for fast portrait-segmentation networks: one command line.

    python run_bench.py --all                 measure everything, write reports/runs/<run>/
    python run_bench.py list                  the registered designs
    python run_bench.py profile --arch NAME   parameters and cost of one design
    python run_bench.py eval --arch NAME --weights seed --data DIR

Exit codes: 0 ok, 1 failure, 2 usage error. This file only wires arguments to ``bench/`` (which
measures) and ``reports/`` (which writes files).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


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
    from archs import get_spec, list_archs
    for name in list_archs(args.pattern):
        if args.verbose:
            s = get_spec(name)
            print(f"{name:<24} params {s.ref_params:>9,}  GMACs {s.ref_macs_g:.3f}@{s.ref_macs_size}  "
                  f"multiple {s.input_multiple}  {s.description}")
        else:
            print(name)
    return EXIT_OK


def cmd_profile(args) -> int:
    from bench.jobs import Job
    job = Job.make("profile", args.arch, input_size=args.size)
    return _one_job(job, args.json, ["arch", "input_size", "params", "params_trainable", "ref_params"])


def cmd_eval(args) -> int:
    from bench.jobs import Job
    job = Job.make("accuracy", args.arch, weights=args.weights, input_size=args.size,
                   data_dir=str(Path(args.data).resolve()), models_dir=str(args.models_dir))
    return _one_job(job, args.json, ["arch", "weights", "dataset", "input_size", "n_images", "miou",
                                     "miou_ci_low", "miou_ci_high", "iou_dataset"])


def cmd_all(args) -> int:
    from tqdm import tqdm

    from bench.jobs import execute
    from bench.plan import PlanOptions, plan_all
    from reports.results import RunWriter, finished_jobs, new_run_dir, run_meta

    run_dir = Path(args.resume) if args.resume else (Path(args.out) if args.out else new_run_dir())
    opts = PlanOptions(archs=args.arch or None, input_size=args.size, data_dir=args.data_dir,
                       models_dir=args.models_dir, quick=args.quick)
    jobs = plan_all(opts)
    done = finished_jobs(run_dir) if args.resume else set()
    writer = RunWriter(run_dir)
    writer.write_meta({**run_meta(), "plan": {"jobs": len(jobs), "input_size": args.size,
                                              "quick": args.quick}})
    n_err = 0
    todo = [j for j in jobs if j.key not in done]
    with tqdm(total=len(todo), unit="job", dynamic_ncols=True, file=sys.stderr) as bar:
        for job, rows in execute(todo, workers=args.workers):
            writer.append(rows)
            bad = [r["status"] for r in rows if str(r.get("status", "")).startswith("error")]
            if bad:
                n_err += 1
                tqdm.write(f"{job.key}: {bad[0]}", file=sys.stderr)
            bar.set_postfix_str(job.key[:60])
            bar.update(1)
    df = writer.finish()
    print(f"{len(df)} rows ({n_err} failed jobs, {len(done)} reused) -> {run_dir}")
    for name in ("results.csv", "results.json"):
        print(f"  {run_dir / name}")
    return EXIT_OK if n_err == 0 else EXIT_FAIL


def _arch_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--arch", required=required, metavar="NAME",
                   help="design name (see `run_bench.py list`)")


def build_parser() -> argparse.ArgumentParser:
    from bench.weights import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR

    p = argparse.ArgumentParser(prog="run_bench.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--all", action="store_true",
                   help="run every measurement for every design and write a run folder")
    p.add_argument("--out", metavar="DIR", help="run folder for --all (default reports/runs/<utc time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted --all run; finished jobs are kept")
    p.add_argument("--arch", action="append", metavar="NAME", help="with --all: only these designs (repeatable)")
    p.add_argument("--size", type=int, default=256, help="network input side for --all (default 256)")
    p.add_argument("--quick", action="store_true", help="with --all: fewer sizes and loops")
    p.add_argument("--workers", type=int, default=0,
                   help="with --all: run jobs in N processes (default 0 = in this process, as timing needs)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="shared data folder (default %(default)s)")
    p.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR, help="shared models folder (default %(default)s)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("list", help="list the registered designs")
    s.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'seg*'")
    s.add_argument("-v", "--verbose", action="store_true", help="with reference numbers")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("profile", help="parameters and cost of one design")
    _arch_arg(s)
    s.add_argument("--size", type=int, default=256, help="input side (default 256)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_profile)

    s = sub.add_parser("eval", help="accuracy (mean per-image IoU) of one design on a data folder")
    _arch_arg(s)
    s.add_argument("--weights", default="random",
                   help="random, seed (the published seg_matting checkpoint), trained, or a path")
    s.add_argument("--data", required=True, metavar="DIR", help="folder with images/ and masks/ or alpha/")
    s.add_argument("--size", type=int, default=256, help="network input side (default 256)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_eval)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import bench.measurements  # noqa: F401  registers the measurements
    from archs import list_archs
    chosen = args.arch if isinstance(args.arch, list) else [args.arch] if args.arch else []
    unknown = [a for a in chosen if a not in list_archs()]
    if unknown:
        parser.error(f"unknown design {unknown[0]!r}; known designs: {', '.join(list_archs())}")
    if args.all:
        if args.command:
            parser.error("--all takes no subcommand")
        return cmd_all(args)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    # the sub-parser's own defaults (e.g. --size) win over the top-level ones
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
