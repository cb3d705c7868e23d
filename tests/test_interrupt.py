"""The main job on a user's machine (and a sweep): Ctrl-C / SIGTERM stop it cleanly and --resume finishes it;
bad flags and unwritable folders are one-line usage errors (exit 2), never tracebacks."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from reports.results import job_counts

pytestmark = [pytest.mark.slow]  # real runs of run_bench.py

REPO = Path(__file__).resolve().parents[1]
# the smallest real plan: one design, --quick (profile, accuracy, latency, ARM jobs)
PLAN = ["--all", "--quick", "--arch", "residualdense_bisenet"]


def _rows(run_dir: Path) -> list[dict]:
    path = run_dir / "rows.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run_bench.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def _as_from_a_terminal() -> None:
    """In the child before it starts: Ctrl-C with its default meaning, as a command typed in a terminal
    has it. A test run started in the background by a shell without job control (``cmd &`` in a
    script, as CI runners may) inherits SIGINT *ignored*, and Python keeps an ignored SIGINT ignored:
    the run would rightly not stop, and the test would say nothing about Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_after_two_jobs(args: list[str], run_dir: Path, sig: int) -> str:
    """Start ``run_bench.py args`` in its own process group, send ``sig`` to the group (as a terminal
    signals the foreground job, workers included) once two jobs have rows in ``run_dir``, and check
    it stops within 15 s with exit 130 and no traceback. Returns its stderr."""
    proc = subprocess.Popen([sys.executable, "run_bench.py", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=_as_from_a_terminal)
    deadline = time.time() + 300
    while time.time() < deadline and len(_rows(run_dir)) < 2 and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    assert len(_rows(run_dir)) >= 2, "no job finished within 300 s"
    t0 = time.time()
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    stopped_s = time.time() - t0
    assert stopped_s < 15, f"took {stopped_s:.1f} s to stop"
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "Traceback" not in out
    return err


def _resume(args: list[str], run_dir: Path, before: list[dict]) -> list[dict]:
    """Run the resume command ``args``: it succeeds, runs no job that had finished, and its last line
    counts the jobs as results.csv holds them. Returns every row."""
    from reports.results import job_counts

    done = _cli(*args, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(run_dir)
    after = rows[len(before):]
    assert not {r["job"] for r in before} & {r["job"] for r in after}, "a finished job was run again"
    assert {r["run_attempt"] for r in before} == {1} and {r["run_attempt"] for r in after} == {2}
    assert job_counts(pd.read_csv(run_dir / "results.csv")).line() in done.stdout
    return rows


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_keeps_rows_writes_a_partial_report_and_resume_finishes(tmp_path, sig):
    run_dir = tmp_path / "run"
    err = _interrupt_after_two_jobs([*PLAN, "--out", str(run_dir)], run_dir, sig)
    before = _rows(run_dir)
    assert before and all(r["status"] for r in before)
    line = [ln for ln in err.splitlines() if ln.startswith("interrupted:")]
    assert len(line) == 1 and f"resume with: python run_bench.py --all --resume {run_dir}" in line[0]
    assert "Partial run" in (run_dir / "report.md").read_text()
    assert json.loads((run_dir / "meta.json").read_text())["partial"]["jobs_finished"] == len({r["job"] for r in before})

    rows = _resume(["--all", "--resume", str(run_dir)], run_dir, before)
    counts = Counter(r["job"] for r in rows)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert len(counts) == meta["plan"]["jobs"]  # every job of the saved plan, once
    assert "partial" not in meta and len(meta["resumed"]) == 1
    report = (run_dir / "report.md").read_text()
    assert "Partial run" not in report
    assert f"**Jobs**: {job_counts(pd.read_csv(run_dir / 'results.csv')).line()}" in report


# a sweep of short jobs that runs long enough to be interrupted (profile: no timing, no data)
SWEEP = """archs = ["esp_dense_seg", "residualdense_bisenet", "shuffle_seg_skipnet", "seg_matting", "mobilenet_dilate_unet"]
measurements = ["profile"]
sizes = [128, 160, 192, 224, 256]
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sweep_interrupt_keeps_rows_and_resume_finishes(tmp_path, sig):
    matrix, run_dir = tmp_path / "m.toml", tmp_path / "run"
    matrix.write_text(SWEEP)
    err = _interrupt_after_two_jobs(["sweep", str(matrix), "--out", str(run_dir)], run_dir, sig)
    before = _rows(run_dir)
    line = [ln for ln in err.splitlines() if ln.startswith("interrupted:")]
    assert len(line) == 1 and f"resume with: python run_bench.py sweep {matrix} --resume {run_dir}" in line[0]
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["partial"]["jobs_finished"] == len({r["job"] for r in before}) < meta["sweep"]["jobs"]

    rows = _resume(["sweep", str(matrix), "--resume", str(run_dir)], run_dir, before)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert len(Counter(r["job"] for r in rows)) == meta["sweep"]["jobs"] and "partial" not in meta


def test_resume_takes_the_plan_from_the_folder_and_refuses_other_flags(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "rows.jsonl").write_text("")
    (run_dir / "meta.json").write_text(json.dumps({"plan_options": {"archs": ["esp_dense_seg"], "input_size": 256,
                                                                    "quick": True}}))
    r = _cli("--all", "--resume", str(run_dir), "--size", "224")
    assert r.returncode == 2 and "--size 224 (the run measures at 256)" in r.stderr
    r = _cli("--all", "--resume", str(run_dir), "--arch", "seg_matting")
    assert r.returncode == 2 and "--arch seg_matting (the run measures esp_dense_seg)" in r.stderr
    r = _cli("--all", "--resume", str(tmp_path / "nothing"))
    assert r.returncode == 2 and "not a run folder" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--all", "--size", "250"], "--size 250 does not fit esp_dense_seg (multiple of 16)"),
    (["latency", "--arch", "esp_dense_seg", "--threads", "0"], "argument --threads: 0 is below the minimum 1"),
    (["latency", "--arch", "esp_dense_seg", "--loops", "1"], "argument --loops: 1 is below the minimum 5"),
    (["speedup", "--arch", "esp_dense_seg", "--threads", "-1"], "argument --threads: -1 is below the minimum 1"),
    (["--resume", "somewhere"], "--resume goes with all (or --all)"),
    (["list", "nosuch"], "nothing matches 'nosuch'"),
    (["--all", "--quick", "--thorough"], "--quick and --thorough exclude each other"),
    (["--thorough"], "--thorough goes with all (or --all)"),
])
def test_bad_flags_are_one_line_usage_errors(args, message):
    r = _cli(*args, timeout=120)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr.strip().splitlines()[-1] and "Traceback" not in r.stderr


@pytest.fixture()
def read_only_dir(tmp_path):
    """A read-only mount (as root, where permissions do not stop writes) or a read-only folder."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)]).returncode != 0:
            pytest.skip("cannot mount a read-only tmpfs here")
        yield path
        subprocess.run(["umount", str(path)])
    else:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)


def test_unwritable_output_is_a_one_line_error(read_only_dir):
    r = _cli(*PLAN, "--out", str(read_only_dir / "run"), timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [next(ln for ln in r.stderr.splitlines() if "cannot write the run folder" in ln)]
    r = _cli("check", "--quick", "--arch", "residualdense_bisenet", "--out", str(read_only_dir / "gate"), timeout=120)
    assert r.returncode == 2 and "cannot write the output folder" in r.stderr and "Traceback" not in r.stderr
