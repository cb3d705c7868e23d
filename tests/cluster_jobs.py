"""Measurements used only by tests/test_cluster.py. They live in a module of their own (not the test
file) so that a Ray worker process can import them by name (``tests.cluster_jobs``)."""
from __future__ import annotations

import os
import time
from pathlib import Path

from bench.run.jobs import Job, measurement


def _span(job: Job) -> dict:
    t0 = time.time()
    time.sleep(float(job.get("seconds", 0.5)))
    return {"pid": os.getpid(), "t_start": t0, "t_end": time.time()}


@measurement("_cluster_work")
def cluster_work(job: Job) -> list[dict]:
    """A machine-independent job: sleeps, reports when it ran and where."""
    return [_span(job)]


@measurement("_cluster_timing", fresh_process=True)
def cluster_timing(job: Job) -> list[dict]:
    """A timing job: it must have its node to itself."""
    return [_span(job)]


@measurement("_cluster_victim")
def cluster_victim(job: Job) -> list[dict]:
    """Writes its pid where the test can find it, then waits to be killed (or times out)."""
    Path(job.get("pid_file")).write_text(str(os.getpid()))
    time.sleep(float(job.get("seconds", 30)))
    return [{"pid": os.getpid()}]


@measurement("_status_talker", fresh_process=True)
def status_talker(job: Job) -> list[dict]:
    """Says something on the progress line from a fresh process (tests/test_latency.py)."""
    from bench.run import progress

    progress.say(f"talking from {os.getpid()}")
    time.sleep(0.3)  # the relay is asynchronous: let the message leave before the process ends
    return [{"pid": os.getpid()}]
