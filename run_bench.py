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
    python run_bench.py check [--baseline bench/gate/baseline.json] [--quick]   regression gate (docs/gate.md)
    python run_bench.py sweep MATRIX.toml     a declared matrix of jobs (docs/cluster.md)

Exit codes: 0 ok, 1 failure, 2 usage error, 130 interrupted. This file is the entry point: it
parses the arguments (``cli/parser.py``) and hands them to a command of ``cli/`` (the CLI layer,
docs/architecture.md), which wires them to ``bench/`` (which measures) and ``reports/`` (which
writes files).
"""
from __future__ import annotations

import sys
from typing import Optional, Sequence

try:  # the imports (torch) take seconds: Ctrl-C meanwhile is an interrupted start, not a traceback
    from bench.models.sources import list_sources
    from cli.common import EXIT_INTERRUPTED, EXIT_USAGE
    from cli.parser import build_parser as _build_parser
    from cli.runs import cmd_all
except KeyboardInterrupt:
    sys.exit(130)


def build_parser():
    return _build_parser(__doc__.split("\n\n")[0])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import bench.run.adapters  # noqa: F401  registers the measurements
    chosen = args.arch if isinstance(args.arch, list) else [args.arch] if args.arch else []
    unknown = [a for a in chosen if a not in list_sources()]
    if unknown:
        parser.error(f"unknown name {unknown[0]!r}; known designs: {', '.join(list_sources(kind='design'))}; "
                     f"known peers: {', '.join(list_sources(kind='peer'))}")
    from bench.paths import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR
    for flag, path, default in (("--data-dir", args.data_dir, DEFAULT_DATA_DIR),
                                ("--models-dir", args.models_dir, DEFAULT_MODELS_DIR),
                                ("--data-dir", getattr(args, "train_data_dir", None), None)):
        if path is not None and path != default and not path.is_dir():
            parser.error(f"{flag} {path}: no such folder")
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
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before a command took charge of it (parsing, registering)
        sys.exit(EXIT_INTERRUPTED)
