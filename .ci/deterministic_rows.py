#!/usr/bin/env python3
"""The deterministic fields of the ``run_bench.py all --quick`` rows, to show a refactor changed no
result: parameters, MACs, sizes, activation memory, parity, ARM instruction counts, accuracy.

    python .ci/deterministic_rows.py run OUT.jsonl        measure (from the tree this file is in)
    python .ci/deterministic_rows.py extract RUN_DIR OUT.jsonl   the same fields from a finished run's rows
    python .ci/deterministic_rows.py compare A.jsonl B.jsonl

``run`` executes the quick plan with every latency job cut to its parity check and a token timing
(5 loops, one attempt, no quiet wait): timings are not compared, so they need not be good. Rows are
matched by what they measure (measurement, design, backend, threads, size, weights, data set,
split), not by job key, so a renamed setting does not hide a row. ``compare`` prints every field
that differs and exits 1 when one does (exact for integers and text, 1e-9 relative for floats).
"""
from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

IDENTITY = ("measurement", "arch", "backend", "threads", "input_size", "weights", "dataset", "split")
DETERMINISTIC = re.compile(
    r"^(status|params.*|macs.*|elementwise.*|size_mb.*|model_size_mb|weight_mb|weight_tensors|act_.*|ref_.*"
    r"|.*_rel_diff|parity.*|arm_instructions_m|setup_instructions_m|miou.*|iou_.*|boundary_f.*|n_images"
    r"|n_alpha|sad_k|mse_x1e3|grad_k|native_input|uncounted_ops|op_counts)$")
TIMING_CUT = {"loops": 5, "warmup": 1, "attempts": 1, "quiet_wait_s": 0.0}


def _identity(row: dict) -> str:
    return "/".join(f"{k}={row.get(k)}" for k in IDENTITY if row.get(k) not in (None, ""))


def run(out: Path) -> int:
    import bench.run.adapters  # noqa: F401  registers the measurements
    from bench.run.jobs import Job, execute
    from bench.run.plan import PlanOptions, plan_all

    jobs = []
    for job in plan_all(PlanOptions(quick=True)):
        if job.measurement == "latency":
            job = Job.make(job.measurement, job.arch, **{**dict(job.settings), **TIMING_CUT})
        jobs.append(job)
    with open(out, "w") as f:
        for i, (job, rows) in enumerate(execute(jobs), 1):
            print(f"[{i}/{len(jobs)}] {job.key}: {rows[0].get('status')}", file=sys.stderr, flush=True)
            for r in rows:
                f.write(json.dumps({"id": _identity(r), **_keep(r)}, default=str, sort_keys=True) + "\n")
    return 0


def _keep(r: dict) -> dict:
    return {k: v for k, v in r.items() if k in IDENTITY or DETERMINISTIC.match(k)}


def extract(run_dir: Path, out: Path) -> int:
    """The deterministic fields of every row of a finished run (any plan: e.g. two default ``--all``
    runs before and after a change); rows of one job that share an identity (one per ARM device, per
    layer) are told apart by their order within the job."""
    seen: dict[str, int] = {}
    with open(out, "w") as f:
        for line in (run_dir / "rows.jsonl").read_text().splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            ident = "/".join(filter(None, [_identity(r), str(r.get("device_model") or "")]))
            seen[ident] = seen.get(ident, 0) + 1
            ident += f"#{seen[ident]}" if seen[ident] > 1 else ""
            f.write(json.dumps({"id": ident, **_keep(r)}, default=str, sort_keys=True) + "\n")
    return 0


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, (int, float)) or isinstance(b, float) and isinstance(a, (int, float)):
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def compare(path_a: Path, path_b: Path) -> int:
    a, b = ({json.loads(ln)["id"]: json.loads(ln) for ln in p.read_text().splitlines()} for p in (path_a, path_b))
    diffs = [f"only in {path_a.name}: {i}" for i in sorted(a.keys() - b.keys())]
    diffs += [f"only in {path_b.name}: {i}" for i in sorted(b.keys() - a.keys())]
    for i in sorted(a.keys() & b.keys()):
        for k in sorted(a[i].keys() | b[i].keys()):
            if not _same(a[i].get(k), b[i].get(k)):
                diffs.append(f"{i}: {k}: {a[i].get(k)!r} -> {b[i].get(k)!r}")
    print("\n".join(diffs) if diffs else f"{len(a)} rows, every deterministic field identical")
    return 1 if diffs else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        sys.exit(run(Path(sys.argv[2])))
    if len(sys.argv) == 4 and sys.argv[1] == "extract":
        sys.exit(extract(Path(sys.argv[2]), Path(sys.argv[3])))
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
