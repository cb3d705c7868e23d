"""The one way the commands over many jobs (``all``, ``sweep``, ``check --out``) use a run folder:
checked and locked before anything runs (a second writer, ``--out`` on an existing run, a file
where a folder should be: usage errors), stamped with the run's id and attempt, drained under
explicit SIGINT / SIGTERM handling (whatever disposition the process inherited), and closed with
counts taken from the rows as ``results.csv`` holds them."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from .common import _consume


@dataclass
class RunSession:
    run_dir: Path
    meta: dict
    writer: Any  # reports.results.RunWriter
    lock: Any  # reports.results.RunLock
    done: set = field(default_factory=set)  # keys of the jobs an earlier attempt finished
    interrupted: bool = False

    def run(self, executor: Callable, jobs: Sequence, *more_sinks: Callable) -> list:
        """Run the ``jobs`` an earlier attempt did not finish (``done``) on ``executor`` (a
        ``bench.run.cluster.make_executor`` result), saving each job's rows as it ends; Ctrl-C or
        SIGTERM ends it (``interrupted``). The one way ``all``, ``sweep`` and ``check --out`` run
        their jobs. Returns the failures as ``key: status`` (counted again from the rows by
        :meth:`finish`)."""
        total = sum(j.key not in self.done for j in jobs)
        errors, self.interrupted = drain(executor(jobs, skip_keys=self.done), total, self.writer.append,
                                         *more_sinks)
        return errors

    def finish(self, planned: int):
        """Write the tables; an interrupted run's meta says how far it got. Returns (rows, counts)."""
        from reports.results import finished_jobs, job_counts
        df = self.writer.finish()
        if self.interrupted:
            self.meta["partial"] = {"jobs_finished": len(finished_jobs(self.run_dir)), "jobs_planned": planned}
            self.writer.write_meta(self.meta)
        return df, job_counts(df)

    def close(self) -> None:
        self.lock.release()


def drain(results: Iterable, total: int, *sinks: Callable) -> tuple[list, bool]:
    """Hand each finished job's rows to ``sinks`` under a progress bar until the jobs end or Ctrl-C /
    SIGTERM arrives. Returns (the failures as ``key: status``, whether it was interrupted)."""
    from bench.run.jobs import stop_on_signals
    errors: list = []
    try:
        with stop_on_signals():
            errors, _ = _consume(results, total, *sinks)
    except KeyboardInterrupt:
        return errors, True
    return errors, False


def open_run(run_dir: Path, resume: bool, fresh_meta: dict, command: str) -> RunSession:
    """Check, lock and open ``run_dir`` for a new run (``resume`` False: the folder must not hold a run)
    or for the next attempt of the run it holds. ``fresh_meta``: this invocation's meta (machine,
    date, commit, and for a new run its plan). Raises RunFolderError (a usage error) or OSError (the
    folder cannot be written)."""
    from reports.report import load_meta
    from reports.results import RunLock, RunWriter, check_new_run_dir, check_resume_dir, finished_jobs, new_run_id

    run_dir = Path(run_dir)
    (check_resume_dir if resume else check_new_run_dir)(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir, command).acquire()
    try:
        if not resume:
            check_new_run_dir(run_dir)  # again, holding the lock: a run may have filled it meanwhile
        if lock.stale is not None:
            print(f"note: {run_dir}/run.lock was left by a run that is gone ({lock.stale.describe()}); taken over",
                  file=sys.stderr)
        if resume:
            old = load_meta(run_dir)
            resumed = [*old.get("resumed", []), {"date": fresh_meta.get("date"), "commit": fresh_meta.get("commit"),
                                                  "jobs_done_before": len(finished_jobs(run_dir))}]
            # the run keeps its start date and id; partial again only if interrupted again
            meta = {**{k: v for k, v in old.items() if k != "partial"}, "resumed": resumed,
                    "attempt": len(resumed) + 1}
            meta.setdefault("run_id", new_run_id())
        else:
            meta = {**fresh_meta, "run_id": new_run_id(), "attempt": 1}
        writer = RunWriter(run_dir, meta["run_id"], meta["attempt"])
        if writer.torn_bytes:
            print(f"note: {run_dir}/rows.jsonl ended in a torn line ({writer.torn_bytes} bytes, a write cut off); "
                  f"moved to rows.jsonl.torn, its job runs again", file=sys.stderr)
        writer.write_meta(meta)
        done = finished_jobs(run_dir) if resume else set()
    except BaseException:
        lock.release()
        raise
    return RunSession(run_dir, meta, writer, lock, done)


def summary_line(df, counts, reused: int, run_dir: Path, torn: Optional[int] = None) -> str:
    """The last line of a run: the job counts of its rows as results.csv holds them."""
    from reports.results import torn_lines
    torn = torn_lines(run_dir) if torn is None else torn
    extra = f", {torn} torn line(s) set aside" if torn else ""
    return f"{len(df)} rows, {counts.line()} ({reused} reused from earlier attempts{extra}) -> {run_dir}"
