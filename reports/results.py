"""Run folders: rows are appended to ``rows.jsonl`` the moment a job finishes (no finished result
is lost if the run is interrupted), and ``results.csv`` / ``results.json`` hold the table."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from bench.paths import RUNS_DIR

ROWS_FILE = "rows.jsonl"
DEFAULT_RUNS_DIR = RUNS_DIR


def new_run_dir(base: Path = DEFAULT_RUNS_DIR) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = Path(base) / stamp
    n = 1
    while path.exists():
        n += 1
        path = Path(base) / f"{stamp}-{n}"
    return path


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (tuple, set)):
        return list(v)
    return v


class RunWriter:
    """Appends rows to ``<run_dir>/rows.jsonl`` as they arrive and writes the tables at the end."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.rows_path = self.run_dir / ROWS_FILE
        self.rows_path.touch()  # a run stopped before its first row is still a run folder (0 rows)

    def append(self, rows: Iterable[dict]) -> None:
        with open(self.rows_path, "a") as f:
            for row in rows:
                f.write(json.dumps({k: _jsonable(v) for k, v in row.items()}) + "\n")
            f.flush()

    def write_meta(self, meta: dict) -> None:
        (self.run_dir / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")

    def finish(self) -> pd.DataFrame:
        df = load_rows(self.run_dir)
        df.to_csv(self.run_dir / "results.csv", index=False)
        df.to_json(self.run_dir / "results.json", orient="records", indent=1)
        return df


def load_rows(run_dir: Path) -> pd.DataFrame:
    """All rows of a run; the last row set of a job wins (a resumed run re-does failed jobs)."""
    path = Path(run_dir) / ROWS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a run folder (no {ROWS_FILE})")
    records = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                # a line cut by an interruption: everything before it is kept
                continue
    df = pd.DataFrame(records)
    if df.empty:
        return df
    # keep, per job, only the rows of its last attempt
    df["_attempt"] = (df["job"] != df["job"].shift()).cumsum()
    last = df.groupby("job")["_attempt"].transform("max")
    return df[df["_attempt"] == last].drop(columns="_attempt").reset_index(drop=True)


def finished_jobs(run_dir: Path) -> set[str]:
    """Keys of jobs whose last attempt is ok or skipped (errors are retried on resume)."""
    try:
        df = load_rows(run_dir)
    except FileNotFoundError:
        return set()
    if df.empty:
        return set()
    bad = df[df["status"].astype(str).str.startswith("error")]["job"]
    return set(df["job"]) - set(bad)
