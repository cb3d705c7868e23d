"""A run folder has one writer and keeps every finished result: two runs started together, ``--out``
on a finished run, a torn last line, a failed last job resumed twice, a lock left by a dead run, and
``--out`` with ``--resume``. Real processes of ``run_bench.py`` on a small sweep (profile jobs: no
timing, no data), plus the loader's rule on hand-made rows."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.run.jobs import Job, run_job
from reports.results import (LOCK_FILE, RunLock, RunWriter, finished_jobs, job_counts, load_rows,
                             torn_lines)

pytestmark = [pytest.mark.slow]  # real runs of run_bench.py

REPO = Path(__file__).resolve().parents[1]
MATRIX = 'archs = ["esp_dense_seg", "residualdense_bisenet"]\nmeasurements = ["profile"]\nsizes = [128, 160]\n'
N_JOBS = 4


def _cli(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run_bench.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, **kw)


def _lines(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "rows.jsonl").read_text().splitlines() if x.strip()]


def _last_line_counts(stdout: str) -> tuple[int, int, int, int]:
    m = re.search(r"(\d+) jobs: (\d+) ok, (\d+) skipped, (\d+) failed", stdout)
    assert m, stdout
    return tuple(int(g) for g in m.groups())


def _csv_counts(run_dir: Path) -> tuple[int, int, int, int]:
    c = job_counts(pd.read_csv(run_dir / "results.csv"))
    return c.jobs, c.ok, c.skipped, c.failed


@pytest.fixture()
def matrix(tmp_path) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(MATRIX)
    return path


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> tuple[Path, Path]:
    """One finished sweep of the matrix (the tests copy it, never change it)."""
    base = tmp_path_factory.mktemp("sweep")
    (base / "m.toml").write_text(MATRIX)
    r = _cli("sweep", str(base / "m.toml"), "--out", str(base / "run"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert _last_line_counts(r.stdout) == (N_JOBS, N_JOBS, 0, 0) == _csv_counts(base / "run")
    assert not (base / "run" / LOCK_FILE).exists()  # released at the end
    return base / "m.toml", base / "run"


def _copy(finished: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(finished, dst)
    return dst


def test_two_runs_started_together_on_one_folder(matrix, tmp_path):
    out = tmp_path / "run"
    procs = [subprocess.Popen([sys.executable, "run_bench.py", "sweep", str(matrix), "--out", str(out)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [err[-800:] for _, _, err in results]
    refused = next(err for code, _, err in results if code == 2)
    assert ("in use by another run (pid" in refused or "already holds a run" in refused), refused
    assert len(refused.strip().splitlines()) == 1 and "Traceback" not in refused
    rows = _lines(out)
    assert len(rows) == N_JOBS and len({r["job"] for r in rows}) == N_JOBS  # every job once
    assert _csv_counts(out) == (N_JOBS, N_JOBS, 0, 0)


def test_a_held_lock_refuses_a_second_writer_and_a_dead_ones_lock_is_taken_over(matrix, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out, "test"):
        r = _cli("sweep", str(matrix), "--out", str(out))
        assert r.returncode == 2 and f"in use by another run (pid {os.getpid()} on {socket.gethostname()}" in r.stderr
        assert not (out / "rows.jsonl").exists()  # refused before anything was written
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                             "started": "2026-01-01T00:00:00+00:00"}))
    r = _cli("sweep", str(matrix), "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"left by a run that is gone (pid {dead.pid}" in r.stderr
    assert not (out / LOCK_FILE).exists() and len(_lines(out)) == N_JOBS


def test_out_on_a_finished_run_is_refused_and_the_run_is_left_as_it_was(finished_sweep, tmp_path):
    matrix, finished = finished_sweep
    copy = _copy(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    for args in (["sweep", str(matrix), "--out", str(copy)], ["--all", "--quick", "--out", str(copy)]):
        r = _cli(*args)
        assert r.returncode == 2, r.stderr[-2000:]
        assert f"already holds a run (started " in r.stderr and f"--resume {copy}" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("cmd", ["all", "sweep"])
def test_out_with_resume_and_out_on_a_file_are_usage_errors(cmd, finished_sweep, tmp_path):
    matrix, finished = finished_sweep
    head = ["--all", "--quick"] if cmd == "all" else ["sweep", str(matrix)]
    r = _cli(*head, "--resume", str(finished), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "goes without --resume" in r.stderr
    (tmp_path / "file").write_text("")
    r = _cli(*head, "--out", str(tmp_path / "file"))
    assert r.returncode == 2 and "is a file, not a folder" in r.stderr and "File exists" not in r.stderr


def test_resume_after_a_torn_last_line_reruns_that_job_and_counts_it(finished_sweep, tmp_path):
    matrix, finished = finished_sweep
    run = _copy(finished, tmp_path)
    text = (run / "rows.jsonl").read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    torn_job = json.loads(last)["job"]
    (run / "rows.jsonl").write_text(text[: len(text) - len(last) - 1] + last[: len(last) // 2])  # killed mid-write
    assert torn_job not in finished_jobs(run)
    r = _cli("sweep", str(matrix), "--resume", str(run))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ended in a torn line" in r.stderr and "1 torn line(s) set aside" in r.stdout
    assert torn_lines(run) == 1 and (run / "rows.jsonl.torn").read_text() == last[: len(last) // 2] + "\n"
    rows = _lines(run)  # every line parses: the re-run row did not land on the fragment
    assert [r["job"] for r in rows].count(torn_job) == 1
    assert _last_line_counts(r.stdout) == _csv_counts(run) == (N_JOBS, N_JOBS, 0, 0)


def test_a_failed_last_job_resumed_twice(finished_sweep, tmp_path):
    """The last job failed (its rows replaced by the error row a failure writes): the first resume
    re-runs it and results.csv keeps only the new ok row; the second resume runs nothing."""
    matrix, finished = finished_sweep
    run = _copy(finished, tmp_path)
    rows = _lines(run)
    failed = rows[-1]["job"]
    error = {k: rows[-1][k] for k in ("job", "measurement", "arch", "run_id", "run_attempt", "input_size")}
    kept = [json.dumps(r) for r in rows if r["job"] != failed]
    (run / "rows.jsonl").write_text("\n".join([*kept, json.dumps({**error, "status": "error: RuntimeError: boom"})])
                                    + "\n")
    assert _csv_counts(run) != _csv_counts(finished) or True  # (results.csv is rewritten by the resume)
    first = _cli("sweep", str(matrix), "--resume", str(run))
    assert first.returncode == 0, first.stderr[-2000:]
    assert "(1 done before)" not in first.stderr and f"({N_JOBS - 1} done before)" in first.stderr
    df = pd.read_csv(run / "results.csv")
    assert list(df[df.job == failed].status) == ["ok"]
    assert _last_line_counts(first.stdout) == _csv_counts(run) == (N_JOBS, N_JOBS, 0, 0)
    assert "0 failed" in (run / "report.md").read_text()
    second = _cli("sweep", str(matrix), "--resume", str(run))
    assert second.returncode == 0 and f"({N_JOBS} done before)" in second.stderr
    assert len(_lines(run)) == N_JOBS + 1  # the error row stays in rows.jsonl, nothing new was measured
    assert _last_line_counts(second.stdout) == _csv_counts(run) == (N_JOBS, N_JOBS, 0, 0)
    meta = json.loads((run / "meta.json").read_text())
    assert [r["run_attempt"] for r in _lines(run)][-1] == 2 and meta["attempt"] == 3 and len(meta["resumed"]) == 2


def test_the_loader_keeps_each_jobs_last_attempt_by_number_not_by_position(tmp_path):
    """The error row of a failed last job and its retry stand side by side in rows.jsonl: by
    adjacency they were one attempt (the old loader kept both); by attempt number the retry wins."""
    a, b = Job.make("profile", "esp_dense_seg", input_size=128), Job.make("profile", "esp_dense_seg", input_size=160)
    import bench.run.adapters  # noqa: F401  registers "profile"
    w1 = RunWriter(tmp_path, "r", 1)
    w1.append(run_job(a))
    w1.append([{"job": b.key, "measurement": "profile", "arch": "esp_dense_seg", "status": "error: boom"}])
    RunWriter(tmp_path, "r", 2).append(run_job(b))
    df = load_rows(tmp_path)
    assert sorted(df.job) == sorted([a.key, b.key]) and set(df.status) == {"ok"}
    assert job_counts(df).line() == "2 jobs: 2 ok, 0 skipped, 0 failed"
    # rows of runs made before rows carried an attempt: adjacency, as then
    old = tmp_path / "old"
    old.mkdir()
    (old / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"job": "x", "status": "error: boom"}, {"job": "y", "status": "ok"}, {"job": "x", "status": "ok"}]))
    assert list(load_rows(old).status) == ["ok", "ok"]


def _ignoring_sigint() -> None:
    """In the child: SIGINT ignored, as a job started in the background of a script inherits it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_an_inherited_ignored_sigint_still_stops_a_sweep(tmp_path):
    matrix, out = tmp_path / "m.toml", tmp_path / "run"
    matrix.write_text('archs = ["esp_dense_seg", "residualdense_bisenet", "shuffle_seg_skipnet", "seg_matting"]\n'
                      'measurements = ["profile"]\nsizes = [128, 160, 192, 224, 256]\n')
    proc = subprocess.Popen([sys.executable, "run_bench.py", "sweep", str(matrix), "--out", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_ignoring_sigint)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and (
            not (out / "rows.jsonl").is_file() or len(_lines(out)) < 2):
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted:" in err and "Traceback" not in err
    assert not (out / LOCK_FILE).exists()


def test_an_inherited_ignored_sigint_still_stops_training(data_dir, tmp_path):
    proc = subprocess.Popen([sys.executable, "run_bench.py", "train", "--arch", "residualdense_bisenet", "--steps",
                             "100000", "--threads", "1", "--workers", "0", "--name", "t", "--out", str(tmp_path),
                             "--state-dir", str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=_ignoring_sigint)
    time.sleep(20)  # past the imports and into the data or the loop
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted:" in err and "--resume" in err and "Traceback" not in err
