"""Run the job list on a Ray cluster: the same jobs, the same rows, placed by what they measure.

:func:`execute_ray` has the contract of :func:`bench.run.jobs.execute`: it yields ``(job, rows)`` on the
driver as each job finishes (the caller appends them to ``rows.jsonl`` at once) and never raises for
a job: a job whose worker or node died becomes an ``error: ...`` row after Ray's retries.

Placement (docs/cluster.md):

* **anywhere** - jobs whose figures do not depend on the machine (parameters/MACs, accuracy,
  conversion and parity, ARM instruction counts under qemu, training): one CPU each, as many at once
  as the cluster has CPUs.
* **timing** - latency, repeatability and speed-up jobs (:func:`bench.run.jobs.is_timing`): one at a time
  per node, on a node that offers the :data:`TIMING_RESOURCE` custom resource, holding *every* CPU of
  that node, so nothing else of the run executes there meanwhile; each runs in a worker process of
  its own (``max_calls=1``), as the local executor gives it a fresh process. Every row of a job run
  here carries the node it ran on and that node's machine header (``node_id``, ``node_machine``).
* **device** - jobs with a ``device`` setting (adb serial, ssh board) need the custom resource
  :func:`device_resource` of that device, declared by the node it is attached to, one unit: one job
  per device at a time, so a device farm is a Ray cluster.

What a job says on the progress line (:func:`bench.run.progress.say`, e.g. what the quiet wait waits for)
reaches the driver's listeners through a Ray queue that the driver drains while it waits for results,
as a fresh local worker process's messages do (best effort, like them).

Ray is imported only when a Ray executor is used; the rest of the suite does not need it.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

from . import progress
from .jobs import Job, Row, defined_in, execute, failed_rows, is_timing, run_job
from ..paths import REPO_ROOT

TIMING_RESOURCE = "timing_slot"
MAX_UNTIMED_WORKERS = 8  # local executor: processes for the jobs that time nothing (each ~1 GB at most)
DEVICE_PREFIX = "arm_device:"
# A local instance must listen on loopback only. Ray picks the address of the machine's outward
# interface unless told it is not a cluster node; this switch (Ray's own, meant for laptops) makes it
# use 127.0.0.1 for the GCS, the raylet and the workers. It must be set before Ray is imported.
LOCAL_ONLY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
RELAY_INTERVAL_S = 0.5  # how often the driver passes the jobs' progress messages on while it waits


def device_resource(device: str) -> str:
    """The custom resource name of an ARM device (``adb:SERIAL``, ``ssh:user@host``)."""
    return DEVICE_PREFIX + device


@dataclass(frozen=True)
class ExecutorSpec:
    """``local`` (the in-process executor) or ``ray`` with an optional cluster address."""
    kind: str = "local"
    address: Optional[str] = None


def parse_executor(text: str) -> ExecutorSpec:
    """``local``, ``ray`` (start a local Ray instance) or ``ray:ADDRESS`` (join that cluster,
    e.g. ``ray:auto`` or ``ray:10.0.0.5:6379``). Raises ValueError on anything else."""
    if text == "local":
        return ExecutorSpec("local")
    if text == "ray":
        return ExecutorSpec("ray")
    if text.startswith("ray:") and len(text) > 4:
        return ExecutorSpec("ray", text[4:])
    raise ValueError(f"executor {text!r}: expected local, ray or ray:ADDRESS")


def make_executor(spec: ExecutorSpec, workers: int = 0, devices: Iterable[str] = ()
                  ) -> Callable[..., Iterator[tuple[Job, list[Row]]]]:
    """``run(jobs, skip_keys=()) -> iterator of (job, rows)`` for the chosen executor. ``local``:
    :func:`bench.run.jobs.execute` with ``workers`` processes (0 = the jobs that time nothing side by side
    on the cores, up to :data:`MAX_UNTIMED_WORKERS` at once, then the timing jobs one after another);
    ``ray``: Ray, whose local instance gets ``workers`` CPUs when that is given (default all)."""
    if spec.kind == "local":
        untimed = 0 if workers else min(os.cpu_count() or 1, MAX_UNTIMED_WORKERS)
        return lambda jobs, skip_keys=(): execute(jobs, skip_keys=skip_keys, workers=workers,
                                                  untimed_workers=untimed)
    return lambda jobs, skip_keys=(): execute_ray(jobs, skip_keys=skip_keys, address=spec.address,
                                                  num_cpus=workers or None, devices=devices)


def _run_remote(job: Job, module: Optional[str], cwd: str, messages: Any = None) -> list[Row]:
    """Body of every Ray task: run the job as the local executor would, from the repo's folder
    (relative data/model paths in the settings mean the same on every node), and stamp the rows
    with the node that measured them. ``messages``: the driver's queue for what the job says on the
    progress line."""
    import importlib
    import sys

    import ray

    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    if os.path.isdir(cwd):
        os.chdir(cwd)
    if module:  # the module that registered the job's measurement in the driver
        importlib.import_module(module)
    from .runinfo import machine

    progress.init_worker(messages)  # a reused worker process: this task's queue, not a former one's
    rows = run_job(job)
    node = {"node_id": ray.get_runtime_context().get_node_id(), "node_machine": machine()}
    for row in rows:
        row.update(node)
    return rows


def connect(address: Optional[str] = None, num_cpus: Optional[int] = None,
            devices: Iterable[str] = ()) -> bool:
    """Join the cluster at ``address``, or start a local instance on loopback with ``num_cpus``
    CPUs, one timing slot and the given ARM devices as resources. Returns True when this call
    started Ray (the caller shuts it down)."""
    if not address:
        for k, v in LOCAL_ONLY_ENV.items():
            os.environ.setdefault(k, v)
    import ray

    if ray.is_initialized():
        return False
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    common = dict(include_dashboard=False, log_to_driver=False, configure_logging=False,
                  runtime_env={"env_vars": env})
    if address:
        ray.init(address=address, **common)
    else:
        resources = {TIMING_RESOURCE: 1.0, **{device_resource(d): 1.0 for d in devices}}
        ray.init(num_cpus=num_cpus, resources=resources, **common)
    return True


def _timing_nodes() -> dict[str, float]:
    """Alive nodes that offer a timing slot, with their CPU count."""
    import ray

    return {n["NodeID"]: n["Resources"].get("CPU", 1.0) for n in ray.nodes()
            if n.get("Alive") and n["Resources"].get(TIMING_RESOURCE, 0) >= 1}


def execute_ray(jobs: Iterable[Job], skip_keys: Iterable[str] = (), address: Optional[str] = None,
                num_cpus: Optional[int] = None, retries: int = 1, devices: Iterable[str] = (),
                ) -> Iterator[tuple[Job, list[Row]]]:
    """Run ``jobs`` (less ``skip_keys``) on Ray, yielding ``(job, rows)`` as each finishes.

    ``retries``: how often Ray re-runs a job whose worker process or node died (every measurement
    is idempotent: it only reads its inputs); after that the job is an error row. Interrupting the
    generator (Ctrl-C) cancels what is still queued or running; finished rows were already yielded.
    """
    import ray
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    skip = set(skip_keys)
    todo = [j for j in jobs if j.key not in skip]
    started = connect(address, num_cpus, devices)
    task = ray.remote(_run_remote)
    fresh_task = ray.remote(max_calls=1)(_run_remote)  # its worker process exits after one job
    cwd = str(REPO_ROOT)
    messages: Optional[Queue] = None
    pending: dict[Any, tuple[Job, Optional[str]]] = {}  # object ref -> (job, timing node or None)
    timing_queue = [j for j in todo if is_timing(j) and not j.get("device")]
    timing_keys = {j.key for j in timing_queue}
    try:
        messages = Queue(actor_options={"num_cpus": 0})  # what the jobs say, for this process's progress line
        for job in todo:
            if job.key in timing_keys:
                continue
            if job.get("device"):
                ref = fresh_task.options(num_cpus=1, max_retries=retries, resources={
                    device_resource(str(job.get("device"))): 1.0}).remote(job, defined_in(job), cwd, messages)
            else:
                ref = task.options(num_cpus=1, max_retries=retries).remote(job, defined_in(job), cwd, messages)
            pending[ref] = (job, None)
        busy: set[str] = set()

        def dispatch() -> None:
            for node_id, cpus in _timing_nodes().items():
                if timing_queue and node_id not in busy:
                    job = timing_queue.pop(0)
                    strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
                    ref = fresh_task.options(num_cpus=cpus, resources={TIMING_RESOURCE: 1.0},
                                             max_retries=retries, scheduling_strategy=strategy
                                             ).remote(job, defined_in(job), cwd, messages)
                    pending[ref] = (job, node_id)
                    busy.add(node_id)

        dispatch()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=RELAY_INTERVAL_S)
            _relay(messages)
            if not done:
                continue
            ref = done[0]
            job, node_id = pending.pop(ref)
            try:
                rows = ray.get(ref)
            except Exception as exc:  # worker or node died after the retries; the run goes on
                rows = failed_rows(job, f"worker died ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
            if node_id is not None:
                busy.discard(node_id)
                dispatch()
            yield job, rows
        for job in timing_queue:  # no (more) node offers a timing slot
            yield job, failed_rows(job, f"no alive node offers the {TIMING_RESOURCE!r} resource (start "
                                        "nodes with --resources '{\"timing_slot\": 1}', see docs/cluster.md)")
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if messages is not None:
            with contextlib.suppress(Exception):  # the queue's actor may have gone with its node
                messages.shutdown(force=True)
        if started:
            ray.shutdown()


def _relay(messages: Any) -> None:
    """Pass what the jobs said since the last call on to this process's progress-line listeners."""
    try:
        waiting = messages.qsize()
        said = messages.get_nowait_batch(waiting) if waiting else []
    except Exception:  # best effort: a message lost costs a stale progress line, never a result
        return
    for message in said:
        progress.say(message)


__all__ = ["ExecutorSpec", "parse_executor", "make_executor", "execute_ray", "connect", "device_resource",
           "TIMING_RESOURCE"]


@dataclass(frozen=True)
class SimulatedRun:
    """Expected wall time of a job list on a cluster, simulated from measured job durations."""
    nodes: int
    cpus_per_node: int
    wall_s: float
    timing_s: float  # sum of the timing jobs' durations (they run one per node at a time)
    other_s: float  # sum of the other jobs' durations (one CPU each)
    jobs: int


def simulate(durations: Iterable[tuple[float, bool]], nodes: int, cpus_per_node: int) -> SimulatedRun:
    """Wall time of jobs ``(seconds, is_timing)`` on ``nodes`` identical nodes under the placement of
    :func:`execute_ray`: a timing job needs an idle node and holds it whole; the other jobs take one
    CPU each. Policy simulated: timing jobs first (the serial part is not left for last), each idle
    node taking the next one; once every timing job has started, free CPUs take the other jobs, all
    in plan order. It ignores start-up and data movement: an estimate, not a measurement, fed with
    the ``job_seconds`` of a run's rows.jsonl measured on one machine."""
    import heapq

    if nodes < 1 or cpus_per_node < 1:
        raise ValueError("nodes and cpus_per_node must be >= 1")
    jobs = list(durations)
    timing = [s for s, t in jobs if t]
    other = [s for s, t in jobs if not t]
    ti, oi = 0, 0
    free = [cpus_per_node] * nodes  # free CPUs per node
    exclusive = [False] * nodes  # a timing job holds the node
    events: list[tuple[float, int, int]] = []  # (end time, node, cpus released)
    now = 0.0
    while ti < len(timing) or oi < len(other) or events:
        for n in range(nodes):
            if ti < len(timing) and free[n] == cpus_per_node and not exclusive[n]:
                heapq.heappush(events, (now + timing[ti], n, -1))
                ti += 1
                free[n], exclusive[n] = 0, True
            while ti >= len(timing) and oi < len(other) and free[n] > 0 and not exclusive[n]:
                heapq.heappush(events, (now + other[oi], n, 1))
                oi += 1
                free[n] -= 1
        if not events:
            break
        now, n, released = heapq.heappop(events)
        if released < 0:
            free[n], exclusive[n] = cpus_per_node, False
        else:
            free[n] += released
    return SimulatedRun(nodes, cpus_per_node, round(now, 1), round(sum(timing), 1), round(sum(other), 1), len(jobs))
