#!/usr/bin/env python
"""Run the main job on a busy machine, as a user's laptop is: start N processes that keep a core
busy each, run ``run_bench.py all`` (any extra arguments are passed on), stop the busy processes
whatever happens, and print how long the run took and how many timing rows the quiet wait marked
not quiet. The busy processes end with the run (and by themselves after --max-minutes).

    python .ci/under_load.py --busy 2 -- --out reports/runs/under-load
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUSY = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--busy", type=int, default=2, help="busy processes (default 2)")
    p.add_argument("--max-minutes", type=float, default=90.0, help="the busy processes end by then at the latest")
    p.add_argument("run_args", nargs="*", help="arguments of `run_bench.py all` (after --)")
    args = p.parse_args(argv)
    busy = [subprocess.Popen([sys.executable, "-c", BUSY.format(s=args.max_minutes * 60)])
            for _ in range(args.busy)]
    t0 = time.monotonic()
    try:
        rc = subprocess.call([sys.executable, str(REPO / "run_bench.py"), "all", *args.run_args], cwd=REPO)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    wall_s = time.monotonic() - t0
    out = next((a.split("=", 1)[1] if "=" in a else args.run_args[i + 1]
                for i, a in enumerate(args.run_args) if a.startswith("--out")), None)
    summary = {"busy_processes": args.busy, "exit_code": rc, "wall_s": round(wall_s, 1)}
    rows_path = REPO / out / "rows.jsonl" if out else None  # (an absolute --out stays as it is)
    if rows_path and rows_path.is_file():
        rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
        timed = [r for r in rows if "quiet" in r and r.get("status") == "ok"]
        summary.update(rows=len(rows), timing_rows=len(timed),
                       timing_rows_not_quiet=sum(1 for r in timed if r.get("quiet") is False))
    print(json.dumps(summary))
    return rc


if __name__ == "__main__":
    sys.exit(main())
