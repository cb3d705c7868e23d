"""The job list on a real local Ray cluster (loopback only, 2 CPUs): the same rows as in process,
faults as error rows, timing jobs alone on their node."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from bench.run.cluster import LOCAL_ONLY_ENV, ExecutorSpec, parse_executor
from bench.run.jobs import Job, execute

os.environ.update(LOCAL_ONLY_ENV)  # before Ray is imported: the test cluster listens on loopback only
ray = pytest.importorskip("ray", reason="Ray is not installed (requirements.txt has it)")

import bench.run.adapters  # noqa: E402,F401  registers the suite's measurements in this process
from bench.run import cluster  # noqa: E402
from bench.run.sweep import expand, load_matrix  # noqa: E402
from tests.test_sweep import TINY_RECIPE  # noqa: E402
from tests import cluster_jobs  # noqa: E402,F401  registers the test measurements here and in workers

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # a loopback Ray cluster

DETERMINISTIC = ("params", "macs", "macs_g_thop", "elementwise_ops", "size_mb_fp32", "act_peak_mb", "status",
                 "train_steps", "train_loss_final", "val_miou", "val_miou_ci_low", "val_miou_ci_high")


def test_skip_keys_and_no_timing_node(tmp_path):
    """Resume skips finished jobs; a cluster without a timing slot gives error rows, not a hang."""
    assert not ray.is_initialized(), "this test runs before the module's shared cluster starts"
    jobs = [Job.make("_cluster_work", "w", i=0, seconds=0.1), Job.make("_cluster_timing", "t", i=0, seconds=0.1),
            Job.make("_cluster_work", "w", i=1, seconds=0.1)]
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(cluster.REPO_ROOT)}})
    try:
        got = {job.key: rows[0]["status"] for job, rows in cluster.execute_ray(jobs, skip_keys={jobs[0].key})}
    finally:
        ray.shutdown()
    assert set(got) == {jobs[1].key, jobs[2].key}
    assert got[jobs[2].key] == "ok"
    assert got[jobs[1].key].startswith("error: no alive node offers the 'timing_slot' resource")


@pytest.fixture(scope="module")
def ray_cluster():
    started = cluster.connect(num_cpus=2)
    yield
    if started:
        ray.shutdown()


def test_parse_executor():
    assert parse_executor("local") == ExecutorSpec("local")
    assert parse_executor("ray") == ExecutorSpec("ray", None)
    assert parse_executor("ray:127.0.0.1:6379") == ExecutorSpec("ray", "127.0.0.1:6379")
    for bad in ("", "ray:", "dask", "Ray"):
        with pytest.raises(ValueError, match="expected local, ray or ray:ADDRESS"):
            parse_executor(bad)


def test_a_small_matrix_gives_the_in_process_figures(ray_cluster, tmp_path, data_dir):
    """profile and training (1 thread: bit-identical by construction) of a declared matrix, and a job
    that fails: every deterministic figure and status equals the in-process run's."""
    path = tmp_path / "m.toml"
    path.write_text(f'archs = ["residualdense_bisenet"]\nmeasurements = ["profile", "train"]\nseeds = [0]\n'
                    f'train_steps = 3\ndata_dir = "{data_dir}"\n' + TINY_RECIPE)
    jobs = [*expand(load_matrix(path)), Job.make("profile", "no_such_design", input_size=256)]
    local = {job.key: rows for job, rows in execute(jobs)}
    remote = {job.key: rows for job, rows in cluster.execute_ray(jobs)}
    assert set(remote) == set(local) == {j.key for j in jobs}
    for key, rows in local.items():
        assert len(remote[key]) == len(rows)
        for a, b in zip(rows, remote[key]):
            for field in DETERMINISTIC:
                assert a.get(field) == b.get(field), (key, field)
            assert b["node_id"] and b["node_machine"]["cores"] == os.cpu_count()
    assert all(local[j.key][0]["status"] == "ok" for j in jobs[:-1])
    train_row = next(r[0] for k, r in local.items() if k.startswith("train/"))
    assert train_row["train_loss_final"] > 0  # a real loss, equal to the bit in both executors
    assert local[jobs[-1].key][0]["status"].startswith("error")


def test_a_killed_worker_is_an_error_row_and_the_rest_complete(ray_cluster, tmp_path):
    pid_file = tmp_path / "victim.pid"
    victim = Job.make("_cluster_victim", "x", pid_file=str(pid_file), seconds=60)
    others = [Job.make("_cluster_work", "x", i=i, seconds=0.2) for i in range(4)]

    def kill_when_started():
        deadline = time.time() + 60
        while time.time() < deadline and not pid_file.exists():
            time.sleep(0.05)
        time.sleep(0.2)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    t0 = time.time()
    results = {job.key: rows for job, rows in cluster.execute_ray([victim, *others], retries=0)}
    killer.join(5)
    assert time.time() - t0 < 50, "the victim was not killed: the test did not test anything"
    assert results[victim.key][0]["status"].startswith("error: worker died")
    for job in others:
        assert results[job.key][0]["status"] == "ok"
        assert results[job.key][0]["t_end"] > results[job.key][0]["t_start"]


def test_a_killed_worker_is_retried_when_asked(ray_cluster, tmp_path):
    pid_file = tmp_path / "victim.pid"
    victim = Job.make("_cluster_victim", "x", pid_file=str(pid_file), seconds=3)
    first_pid = []

    def kill_first():
        while not pid_file.exists():
            time.sleep(0.05)
        first_pid.append(int(pid_file.read_text()))
        os.kill(first_pid[0], signal.SIGKILL)

    threading.Thread(target=kill_first, daemon=True).start()
    (_, rows), = list(cluster.execute_ray([victim], retries=1))
    assert rows[0]["status"] == "ok" and rows[0]["pid"] != first_pid[0]


def test_timing_jobs_have_their_node_to_themselves(ray_cluster):
    timing = [Job.make("_cluster_timing", "t", i=i, seconds=0.4) for i in range(3)]
    work = [Job.make("_cluster_work", "w", i=i, seconds=0.3) for i in range(6)]
    rows = {job.key: rows[0] for job, rows in cluster.execute_ray([*timing, *work])}
    assert all(r["status"] == "ok" for r in rows.values())
    spans = {k: (r["t_start"], r["t_end"], r["node_id"], r["pid"]) for k, r in rows.items()}
    t_spans = [spans[j.key] for j in timing]
    assert len({s[3] for s in t_spans}) == 3, "each timing job runs in a worker process of its own"
    for tj in timing:
        a0, a1, node, _ = spans[tj.key]
        for key, (b0, b1, other_node, _) in spans.items():
            if key != tj.key and other_node == node:
                assert a1 <= b0 or b1 <= a0, f"{key} ran on {node} while timing job {tj.key} did"


def test_what_a_job_says_reaches_the_drivers_progress_line(ray_cluster):
    """A job's progress message (e.g. what the quiet wait waits for) is relayed from its Ray worker to
    the driver's listeners before the job's rows are yielded, as from a fresh local process."""
    from bench.run import progress
    said = []
    with progress.listening(said.append):
        [(job, rows)] = list(cluster.execute_ray([Job.make("_status_talker", "esp_dense_seg")]))
    assert rows[0]["status"] == "ok" and rows[0]["pid"] != os.getpid()
    assert said == [f"talking from {rows[0]['pid']}"]
