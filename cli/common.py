"""What every command shares: exit codes, printing one job's rows, draining an executor under a
progress bar, and the argparse types."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Optional, Sequence

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


def _one_job(job, as_json: bool, keys: Sequence[str], on_ok: Optional[Callable[[list], None]] = None) -> int:
    """Run ``job`` here, print its rows; ``on_ok(rows)`` first when it succeeded."""
    from bench.run.jobs import run_job, status_of
    rows = run_job(job)
    status = status_of(rows)
    if status.error:
        print(f"{job.key}: {status}", file=sys.stderr)
        return EXIT_FAIL
    if not status.ok:
        print(f"{job.key}: {status}", file=sys.stderr)
    elif on_ok is not None:
        on_ok(rows)
    if as_json:
        _print_json(rows[0] if len(rows) == 1 else rows)
    else:
        for r in rows:
            _print_row(r, keys)
    return EXIT_OK if status.ok else EXIT_FAIL


def _consume(results, total: int, *sinks) -> tuple[list[str], int]:
    """Drain an executor's ``(job, rows)`` stream under a progress bar: hand each job's rows to
    ``sinks`` at once, print every failed job as it ends. Returns (the failures as ``key: status``,
    how many jobs were skipped)."""
    from tqdm import tqdm

    from bench.run import progress
    from bench.run.jobs import first_error
    from bench.run.status import row_status

    errors, n_skip = [], 0
    try:
        with tqdm(total=total, unit="job", dynamic_ncols=True, file=sys.stderr) as bar, \
                progress.listening(lambda message: bar.set_postfix_str(message[:90])):  # e.g. what the quiet wait waits for
            for job, rows in results:
                for sink in sinks:
                    sink(rows)
                bad = first_error(rows)
                if bad:
                    errors.append(f"{job.key}: {bad}")
                    tqdm.write(errors[-1], file=sys.stderr)
                elif rows and row_status(rows[0]).skipped:
                    n_skip += 1
                bar.set_postfix_str(job.key[:60])
                bar.update(1)
    finally:
        # interrupted here (e.g. Ctrl-C while a row was written), the executor is told at once so that it
        # ends its workers now; left to the garbage collector, the run waited for every queued job
        close = getattr(results, "close", None)
        if close is not None:
            close()
    return errors, n_skip


def _arch_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--arch", required=required, metavar="NAME",
                   help="design or peer name (see `run_bench.py list`)")


def _executor_arg(p: argparse.ArgumentParser) -> None:
    from bench.run.cluster import parse_executor

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


