"""Job executor and run folders: failures become rows, results are saved as they finish, resume."""
from __future__ import annotations

import json
import os

import pytest

from bench.run.jobs import Job, Skip, execute, measurement, run_job
from reports.results import RunWriter, finished_jobs, load_rows

CALLS: list[str] = []


@measurement("_test_echo")
def _echo(job: Job) -> list[dict]:
    CALLS.append(job.key)
    if job.get("fail"):
        raise RuntimeError("boom")
    if job.get("skip"):
        raise Skip("no device")
    return [{"value": job.get("x", 0) * 2}]


@measurement("_test_pid", fresh_process=True)
def _pid(job: Job) -> list[dict]:
    return [{"pid": os.getpid()}]


def test_job_key_is_stable_and_ignores_paths():
    a = Job.make("_test_echo", "d", x=1, data_dir="/a")
    b = Job.make("_test_echo", "d", data_dir="/b", x=1)
    assert a.key == b.key == "_test_echo/d/x=1"


def test_rows_carry_status_and_settings():
    rows = run_job(Job.make("_test_echo", "d", x=3))
    assert rows[0]["status"] == "ok" and rows[0]["value"] == 6 and rows[0]["x"] == 3
    assert rows[0]["arch"] == "d" and rows[0]["measurement"] == "_test_echo"


def test_failure_becomes_error_row():
    rows = run_job(Job.make("_test_echo", "d", fail=True))
    assert rows[0]["status"] == "error: RuntimeError: boom"
    assert "Traceback" in rows[0]["traceback"]


def test_skip_becomes_skipped_row():
    assert run_job(Job.make("_test_echo", "d", skip=True))[0]["status"] == "skipped: no device"


def test_unknown_measurement_is_an_error_row():
    assert run_job(Job.make("nope", "d"))[0]["status"].startswith("error: KeyError")


def test_run_goes_on_after_a_failure_and_resumes(tmp_path):
    jobs = [Job.make("_test_echo", "d", x=1), Job.make("_test_echo", "d", fail=True),
            Job.make("_test_echo", "d", x=2)]
    writer = RunWriter(tmp_path)
    for _, rows in execute(jobs):
        writer.append(rows)
    df = writer.finish()
    assert list(df["status"]) == ["ok", "error: RuntimeError: boom", "ok"]
    assert (tmp_path / "results.csv").is_file()
    assert len(json.loads((tmp_path / "results.json").read_text())) == 3
    # resume: only the failed job runs again
    done = finished_jobs(tmp_path)
    assert done == {jobs[0].key, jobs[2].key}
    CALLS.clear()
    for _, rows in execute(jobs, skip_keys=done):
        writer.append(rows)
    assert CALLS == [jobs[1].key]
    assert len(load_rows(tmp_path)) == 3  # the retry replaces the failed attempt


def test_truncated_last_line_keeps_earlier_rows(tmp_path):
    writer = RunWriter(tmp_path)
    writer.append(run_job(Job.make("_test_echo", "d", x=1)))
    with open(writer.rows_path, "a") as f:
        f.write('{"job": "cut')
    assert len(load_rows(tmp_path)) == 1


@pytest.mark.slow
def test_process_executor_runs_registered_measurements():
    """A worker process imports the module that registered the measurement in this process."""
    import bench.run.adapters  # noqa: F401  registers "profile"
    jobs = [Job.make("profile", "esp_dense_seg", input_size=128)]
    results = list(execute(jobs, workers=1))
    assert results[0][1][0]["status"] == "ok"
    assert results[0][1][0]["params"] == 240237


def test_fresh_process_measurements_get_a_new_process_each():
    jobs = [Job.make("_test_pid", "d", i=0), Job.make("_test_echo", "d", x=1), Job.make("_test_pid", "d", i=1)]
    rows = [r[0] for _, r in execute(jobs)]
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"]
    assert rows[1]["value"] == 2  # an ordinary measurement runs here
    pids = {rows[0]["pid"], rows[2]["pid"]}
    assert len(pids) == 2 and os.getpid() not in pids


@measurement("_test_threads")
def _threads(job: Job) -> list[dict]:
    import torch

    return [{"pid": os.getpid(), "torch_threads": torch.get_num_threads()}]


@pytest.mark.slow
def test_untimed_jobs_run_side_by_side_before_the_timing_jobs():
    """The local executor's default for `all`: jobs that time nothing share the cores (worker
    processes, PyTorch threads split between them), then each timing job runs alone in a fresh one."""
    jobs = [Job.make("_test_pid", "d", i=0), Job.make("_test_threads", "d", i=0),
            Job.make("_test_threads", "d", i=1), Job.make("_test_pid", "d", i=1),
            Job.make("_test_threads", "d", i=2)]
    out = list(execute(jobs, untimed_workers=2))
    order = [job.measurement for job, _ in out]
    assert order == ["_test_threads"] * 3 + ["_test_pid"] * 2  # every untimed job first
    assert {job.key for job, _ in out} == {j.key for j in jobs}  # each job once
    rows = {job.key: r[0] for job, r in out}
    untimed = [rows[j.key] for j in jobs if j.measurement == "_test_threads"]
    assert all(r["status"] == "ok" for r in rows.values())
    assert os.getpid() not in {r["pid"] for r in untimed}
    assert {r["torch_threads"] for r in untimed} == {max(1, (os.cpu_count() or 1) // 2)}
    pids = [rows[j.key]["pid"] for j in jobs if j.measurement == "_test_pid"]
    assert len(set(pids)) == 2 and not set(pids) & {r["pid"] for r in untimed}


def test_untimed_workers_skip_finished_jobs_and_stay_in_process_when_not_isolated():
    jobs = [Job.make("_test_echo", "d", x=1), Job.make("_test_echo", "d", x=2)]
    CALLS.clear()
    out = list(execute(jobs, skip_keys={jobs[0].key}, untimed_workers=2, isolate=False))
    assert [job.key for job, _ in out] == [jobs[1].key] and CALLS == [jobs[1].key]  # ran here


def test_not_a_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        load_rows(tmp_path)


def test_plan_takes_the_published_checkpoints_from_the_specs():
    """Which weights the plan evaluates comes from each design's spec (no design named in the plan):
    every published checkpoint and ours on the validation splits, and on all of HSD each published
    checkpoint that has a reference mIoU to reproduce (seg_matting's seed)."""
    from archs import get_spec, list_archs
    from bench.run.plan import PlanOptions, plan_all

    jobs = [j for j in plan_all(PlanOptions(peers=False, arm=False)) if j.measurement == "accuracy"]
    for arch in list_archs():
        published = get_spec(arch).checkpoints
        assert {c.name for c in published} | {"trained"} <= {j.get("weights") for j in jobs if j.arch == arch}
        full = {j.get("weights") for j in jobs if j.arch == arch and j.get("split") == "all"}
        assert full == {c.name for c in published if c.reference_miou is not None}
    assert any(j.arch == "seg_matting" and j.get("weights") == "seed" and j.get("split") == "all" for j in jobs)


def test_peers_whole_hsd_accuracy_only_in_thorough_mode():
    """The default plan measures the peers on the headline and validation sets; the full-HSD figures
    of the peers (not in the report) come with --thorough."""
    from bench.run.plan import PlanOptions, plan_all

    def peers_full_hsd(opt):
        return {j.arch for j in plan_all(opt) if j.measurement == "accuracy" and j.get("split") == "all"}

    assert peers_full_hsd(PlanOptions(arm=False)) == {"seg_matting"}  # the seed's reproduction only
    assert {"sinet", "extremec3", "mediapipe_selfie", "pphumanseg_lite"} <= peers_full_hsd(
        PlanOptions(arm=False, thorough=True))


def test_an_interrupted_consumer_ends_the_executor_at_once():
    """Ctrl-C while the CLI writes a row (outside the executor's generator) must still end the
    executor's workers now, not when the garbage collector gets to it (the run then waited for
    every queued job)."""
    from cli.common import _consume

    closed = []

    def executor():
        try:
            for i in range(3):
                yield Job.make("_test_echo", "d", x=i), [{"status": "ok"}]
        finally:
            closed.append(True)

    def sink(rows):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _consume(executor(), 3, sink)
    assert closed == [True]


def test_a_run_folder_exists_from_the_start(tmp_path):
    """Stopped before its first row, a run is still a run folder with no rows (its report and resume
    work), not a missing file."""
    writer = RunWriter(tmp_path / "run")
    assert finished_jobs(tmp_path / "run") == set() and writer.finish().empty


@measurement("_test_sleep")
def _sleep(job: Job) -> list[dict]:
    import time

    time.sleep(float(job.get("s", 0)))
    return [{"slept_s": job.get("s")}]


@pytest.mark.slow
def test_ctrl_c_taken_by_another_thread_stops_the_wait_at_once():
    """The kernel may hand a terminal's Ctrl-C to any thread of the process (the status relay, tqdm's
    monitor); Python acts on it only in the main thread. Waiting on its workers, the main thread must
    still stop within a moment, not when the next job ends (here 30 s away)."""
    import signal
    import threading
    import time

    def ctrl_c_in_this_thread():
        time.sleep(4.0)  # the workers have started (spawned, torch imported) and sleep
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    jobs = [Job.make("_test_sleep", "d", s=30, i=i) for i in range(2)]
    # Ctrl-C as in a terminal, also when this test run inherited it ignored (started with `cmd &`)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=ctrl_c_in_this_thread, daemon=True).start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            list(execute(jobs, untimed_workers=2))
        assert time.monotonic() - t0 < 12
    finally:
        signal.signal(signal.SIGINT, old)
