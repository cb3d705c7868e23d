"""Jobs: independent (measurement x design x settings) units of work, and executors for them.

A :class:`Job` is a small frozen value (picklable, no shared state): everything a measurement needs
is in its settings (sizes, paths, backend...). ``run_job`` turns a job into result rows (dicts) and
never raises: a failure becomes one row with ``status = "error: ..."``. Executors run many jobs and
yield ``(job, rows)`` as each finishes, so the caller (report layer) can save every finished result
at once; ``skip_keys`` lets an interrupted run resume without redoing finished jobs.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
import traceback
from datetime import datetime, timezone
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

from .. import columns as C
from . import progress
from .status import OK, Status, row_status

Row = dict[str, Any]
MeasureFn = Callable[["Job"], list[Row]]

_MEASUREMENTS: dict[str, MeasureFn] = {}
_FRESH_PROCESS: set[str] = set()  # measurements that :func:`execute` runs each in a new process
_TIMING: set[str] = set()  # measurements that time something: they need the machine to themselves


class Skip(Exception):
    """Raised by a measurement that cannot run here; becomes a ``skipped: <reason>`` row."""


@dataclass(frozen=True)
class Job:
    measurement: str
    arch: str
    settings: tuple[tuple[str, Any], ...] = ()

    @staticmethod
    def make(measurement: str, arch: str, **settings: Any) -> "Job":
        return Job(measurement, arch, tuple(sorted(settings.items())))

    @property
    def key(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.settings if not k.endswith("_dir"))
        return f"{self.measurement}/{self.arch}" + (f"/{opts}" if opts else "")

    def get(self, name: str, default: Any = None) -> Any:
        for k, v in self.settings:
            if k == name:
                return v
        return default


def measurement(name: str, fresh_process: bool = False, timing: Optional[bool] = None,
                ) -> Callable[[MeasureFn], MeasureFn]:
    """Register ``fn(job) -> rows`` as the runner of measurement ``name``. ``fresh_process``: its
    result depends on the state of the process it runs in (e.g. latency: allocator and thread-pool
    state left by earlier jobs), so :func:`execute` gives each such job a new process. ``timing``
    (default: the same as ``fresh_process``): it measures time, so an executor that runs jobs side
    by side must give it a machine of its own (:mod:`bench.run.cluster`)."""

    def deco(fn: MeasureFn) -> MeasureFn:
        if name in _MEASUREMENTS:
            raise ValueError(f"measurement {name!r} registered twice")
        _MEASUREMENTS[name] = fn
        if fresh_process:
            _FRESH_PROCESS.add(name)
        if fresh_process if timing is None else timing:
            _TIMING.add(name)
        return fn

    return deco


def known_measurements() -> list[str]:
    return sorted(_MEASUREMENTS)


def is_timing(job: Job) -> bool:
    """Whether ``job`` measures time (and so must not share its machine with other jobs)."""
    return job.measurement in _TIMING


def _base_row(job: Job) -> Row:
    row: Row = {"job": job.key, "measurement": job.measurement, "arch": job.arch}
    row.update({k: v for k, v in job.settings if not k.endswith("_dir")})
    return row


def run_job(job: Job) -> list[Row]:
    """Run one job; always returns rows (``status`` ok / skipped: why / error: why)."""
    t0 = time.perf_counter()
    try:
        fn = _MEASUREMENTS.get(job.measurement)
        if fn is None:
            raise KeyError(f"unknown measurement {job.measurement!r}; known: {', '.join(known_measurements())}")
        rows = fn(job)
        out = []
        for r in rows:
            row = _base_row(job)
            row.update(r)
            row.setdefault("status", str(OK))
            out.append(row)
    except Skip as exc:
        out = [{**_base_row(job), "status": str(Status.skip(str(exc)))}]
    except Exception as exc:  # a failed job must not stop the run
        msg = f"{type(exc).__name__}: {exc}".strip().replace("\n", " ")
        out = [{**_base_row(job), "status": str(Status.fail(msg[:500])),
                "traceback": traceback.format_exc(limit=8)}]
    elapsed = time.perf_counter() - t0
    # when and under what load it was measured (a resumed run's parts may be hours apart)
    stamp = {"job_seconds": round(elapsed, 3),
             "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             C.LOAD_AVG_1M: round(os.getloadavg()[0], 2)}
    for row in out:
        row.update(stamp)
    return out


def execute(jobs: Iterable[Job], skip_keys: Iterable[str] = (), workers: int = 0, isolate: bool = True,
            untimed_workers: int = 0) -> Iterator[tuple[Job, list[Row]]]:
    """Run ``jobs`` (skipping those whose key is in ``skip_keys``), yielding results as they finish.

    ``workers=0`` runs them one after another (the default: timing jobs must not compete for the
    cores), in this process except the measurements registered with ``fresh_process``, which get a
    new process each (``isolate=False``: all in this process, e.g. for tests that patch it);
    ``workers>0`` spreads them over that many processes.

    ``untimed_workers>1`` (with ``workers=0`` and ``isolate``): the jobs that time nothing (cost,
    accuracy, ARM counts) run first, that many side by side in worker processes whose PyTorch uses
    ``cores // untimed_workers`` threads each (no core is oversubscribed); then the timing jobs run
    one after another with the machine to themselves, as before. Their figures do not depend on the
    thread count apart from float rounding (accuracy agrees within about 1e-6).
    """
    skip = set(skip_keys)
    todo = [j for j in jobs if j.key not in skip]
    if workers <= 0:
        if isolate and untimed_workers > 1:
            untimed = [j for j in todo if not is_timing(j)]
            todo = [j for j in todo if is_timing(j)]
            threads = max(1, (os.cpu_count() or 1) // untimed_workers)
            yield from _in_pool(untimed, untimed_workers, threads)
        for job in todo:
            fresh = isolate and job.measurement in _FRESH_PROCESS
            yield job, (run_in_fresh_process(job) if fresh else run_job(job))
        return
    yield from _in_pool(todo, workers)


def _in_pool(jobs: list[Job], workers: int, torch_threads: Optional[int] = None
             ) -> Iterator[tuple[Job, list[Row]]]:
    """``jobs`` over ``workers`` spawned processes (``torch_threads``: each one's PyTorch thread
    count), yielding as they finish; interrupted, the workers are ended at once."""
    if not jobs:
        return
    # "spawn": a forked child of a process that already ran torch on several threads can deadlock.
    pool = _worker_pool(workers, torch_threads)
    try:
        with _stop_signals_held():  # the workers start (on submit) with Ctrl-C held until they ignore it
            futures = {pool.submit(_run_in_worker, job, defined_in(job)): job for job in jobs}
        for fut in _as_completed(futures):
            try:
                rows = fut.result()
            except BrokenProcessPool as exc:  # a worker died (e.g. a crash in a native library)
                rows = failed_rows(futures[fut], f"worker process died ({exc})")
            yield futures[fut], rows
    except BaseException:  # interrupted (or the caller stopped): end the workers now, not after their jobs
        stop_workers(pool)
        raise
    pool.shutdown()


def _worker_pool(workers: int, torch_threads: Optional[int] = None) -> ProcessPoolExecutor:
    """Spawned worker processes that leave Ctrl-C to the parent (:func:`stop_workers` ends them) and
    send their progress messages (:mod:`bench.run.progress`) to it."""
    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(progress.worker_queue(ctx), torch_threads))


def _as_completed(futures: Iterable[Future]) -> Iterator[Future]:
    """The futures as they finish, waking every :data:`_WAKE_S`: a Ctrl-C that the kernel hands to
    another thread of this process (the status relay, tqdm's monitor) is acted on only when the main
    thread runs Python code, not while it sleeps on a lock (the run went on until the next job ended,
    up to 43 s in CI)."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=_WAKE_S, return_when=FIRST_COMPLETED)
        yield from done


_WAKE_S = 0.25
_HELD = {signal.SIGINT}


@contextlib.contextmanager
def _stop_signals_held():
    """Within the block this thread holds Ctrl-C (SIGINT) back, and so do the processes it starts
    (they inherit the mask) until :func:`_init_worker` ignores it: a worker that took a terminal's
    Ctrl-C while starting up (importing torch takes seconds) died with a traceback of its own. The
    parent still gets it: another of its threads takes it, or it waits until the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)


def _init_worker(status_queue, torch_threads: Optional[int] = None) -> None:
    # A terminal's Ctrl-C reaches the whole process group. A worker that took it would die with a
    # traceback of its own; the parent decides instead and ends its workers. (Started with SIGINT
    # held, see _stop_signals_held: ignore it, then let it through.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
    progress.init_worker(status_queue)
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)


def stop_workers(pool: ProcessPoolExecutor, grace_s: float = 2.0) -> None:
    """End ``pool`` and every child process of this process at once (terminate, then kill)."""
    manager = getattr(pool, "_executor_manager_thread", None)  # the pool's thread that talks to its workers
    pool.shutdown(wait=False, cancel_futures=True)
    children = multiprocessing.active_children()
    for p in children:
        p.terminate()
    deadline = time.monotonic() + grace_s
    for p in children:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)
    # let that thread see its workers gone and close its pipes before the interpreter exits: racing
    # with the exit it wrote to a closed pipe ("Exception ignored ... Bad file descriptor", Python 3.11)
    if manager is not None:
        manager.join(grace_s)


@contextlib.contextmanager
def stop_on_signals():
    """Within the block, Ctrl-C (SIGINT) and SIGTERM both stop the run as a KeyboardInterrupt in the
    main thread, so the caller keeps what finished and ends its workers. Both are set explicitly: a
    run started in the background of a script inherits SIGINT *ignored*, and Python keeps an
    inherited ignore (the run was deaf to Ctrl-C)."""
    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old_term = signal.signal(signal.SIGTERM, _raise)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


def failed_rows(job: Job, message: str) -> list[Row]:
    """The error row of a job that did not return rows (its worker process or node died)."""
    return [{**_base_row(job), "status": str(Status.fail(message))}]


def run_in_fresh_process(job: Job) -> list[Row]:
    """Run ``job`` in a new process of its own (spawned: nothing inherited but the job) and wait for
    it. For measurements whose result depends on process state (memory layout, thread pools); a
    worker that dies (e.g. a crash in a native library) gives an error row. Interrupted, it ends
    the worker at once and re-raises."""
    [(_, rows)] = _in_pool([job], 1)  # (unpacking runs the pool to its end: shut down)
    return rows


def defined_in(job: Job) -> Optional[str]:
    """The module that registered the job's measurement (imported by a worker to register it)."""
    fn = _MEASUREMENTS.get(job.measurement)
    return getattr(fn, "__module__", None)


def _run_in_worker(job: Job, module: Optional[str] = None) -> list[Row]:
    """Run ``job`` in a worker process, after importing ``module`` (the one that registered the
    job's measurement in the parent) so that the worker knows it too."""
    import importlib

    if module and job.measurement not in _MEASUREMENTS:
        importlib.import_module(module)
    return run_job(job)


def status_of(rows: list[Row]) -> Status:
    """Ok if every row is ok, else the status of the first row that is not."""
    for r in rows:
        s = row_status(r)
        if not s.ok:
            return s
    return OK


def first_error(rows: list[Row]) -> Optional[str]:
    for r in rows:
        if row_status(r).error:
            return str(r["status"])
    return None
