"""Run folders: rows are appended to ``rows.jsonl`` the moment a job finishes (no finished result
is lost if the run is interrupted), and ``results.csv`` / ``results.json`` hold the table.

A run folder has one writer at a time (:class:`RunLock`, ``run.lock``) and every row carries the
attempt that wrote it (``run_id``, ``run_attempt``: 1 for the run, n for its (n-1)-th resume), so
that the loader keeps the last attempt of each job by number, never by where its rows stand in the
file. A line left incomplete by a killed writer is moved to ``rows.jsonl.torn`` before anything is
appended (:func:`repair_rows`), and counted (:func:`torn_lines`).
"""
from __future__ import annotations

import json
import math
import os
import secrets
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Optional

import pandas as pd

from bench.paths import RUNS_DIR
from bench.run.status import kinds

ROWS_FILE = "rows.jsonl"
TORN_FILE = "rows.jsonl.torn"
LOCK_FILE = "run.lock"
META_FILE = "meta.json"
DEFAULT_RUNS_DIR = RUNS_DIR


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked (held by another run, already a run, not a folder):
    a usage error, said before anything is measured."""


def new_run_dir(base: Path = DEFAULT_RUNS_DIR) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = Path(base) / stamp
    n = 1
    while path.exists():
        n += 1
        path = Path(base) / f"{stamp}-{n}"
    return path


def new_run_id() -> str:
    """A run's identity, kept in its meta.json and in every row it writes (also across resumes)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def is_run_folder(path: Path) -> bool:
    path = Path(path)
    return (path / ROWS_FILE).is_file() or (path / META_FILE).is_file()


def check_new_run_dir(path: Path, flag: str = "--out") -> None:
    """RunFolderError unless ``path`` can hold a new run: a folder that does not exist yet or holds
    no run (a finished or partial run is continued with ``--resume``, never re-measured into)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{flag} {path}: is a file, not a folder; name a folder for the run")
    if is_run_folder(path):
        when = ""
        try:
            date = json.loads((path / META_FILE).read_text()).get("date")
            when = f" (started {date})" if date else ""
        except (OSError, ValueError, AttributeError):
            pass
        raise RunFolderError(f"{flag} {path}: already holds a run{when}; continue it with --resume {path}, "
                             "or name a new folder")


def check_resume_dir(path: Path) -> None:
    path = Path(path)
    if not (path / ROWS_FILE).is_file():
        raise RunFolderError(f"--resume {path}: not a run folder (no {ROWS_FILE})")


# ----------------------------------------------------------------------------- one writer per folder

def _proc_start(pid: int) -> Optional[str]:
    """The start time of process ``pid`` (clock ticks since boot, Linux ``/proc``), None where unknown:
    with the pid it tells a live holder from a new process that reuses a dead one's number."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    started: str  # UTC, ISO
    proc_start: Optional[str] = None
    command: str = ""

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, since {self.started}" + (f" ({self.command})" if self.command else "")


class RunLock:
    """``<run_dir>/run.lock``: created exclusively by the one process writing the folder, holding its
    pid, host and start; removed when it ends. A second writer is refused (:class:`RunFolderError`
    naming the holder); a lock left by a process that is gone (same host, pid dead or reused) is
    taken over, and :attr:`stale` names it."""

    def __init__(self, run_dir: Path, command: str = ""):
        self.path = Path(run_dir) / LOCK_FILE
        self.command = command
        self.stale: Optional[LockHolder] = None
        self._held = False

    def _read(self) -> Optional[LockHolder]:
        try:
            d = json.loads(self.path.read_text())
            return LockHolder(int(d["pid"]), str(d["host"]), str(d.get("started", "?")), d.get("proc_start"),
                              str(d.get("command", "")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return LockHolder(-1, "?", "?")  # unreadable: written by a process killed while writing it

    def _gone(self, holder: LockHolder) -> bool:
        if holder.pid < 0:
            return True
        if holder.host != socket.gethostname():
            return False  # another machine's process: cannot be checked from here
        if not _alive(holder.pid):
            return True
        return holder.proc_start is not None and _proc_start(holder.pid) not in (None, holder.proc_start)

    def acquire(self) -> "RunLock":
        me = LockHolder(os.getpid(), socket.gethostname(), datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        _proc_start(os.getpid()), self.command)
        # written whole under a name of its own, then linked into place: a link is atomic and fails if the
        # lock exists, so no reader ever sees a lock without its holder
        tmp = self.path.with_name(f"{LOCK_FILE}.{os.getpid()}.{secrets.token_hex(3)}")
        tmp.write_text(json.dumps(asdict(me)))
        try:
            for _ in range(3):
                try:
                    os.link(tmp, self.path)
                except FileExistsError:
                    holder = self._read()
                    if holder is None:
                        continue  # released meanwhile
                    if not self._gone(holder):
                        where = ("; if that run is gone, delete the lock file" if holder.host != socket.gethostname()
                                 else "; wait for it to end or use another folder")
                        raise RunFolderError(f"{self.path.parent}: in use by another run ({holder.describe()}, "
                                             f"{self.path}){where}") from None
                    self.stale = holder
                    self.path.unlink(missing_ok=True)
                    continue
                self._held = True
                return self
        finally:
            tmp.unlink(missing_ok=True)
        raise RunFolderError(f"{self.path}: could not take the lock (it keeps changing hands)")

    def release(self) -> None:
        if not self._held:
            return
        holder = self._read()
        if holder is not None and holder.pid == os.getpid():
            self.path.unlink(missing_ok=True)
        self._held = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# ----------------------------------------------------------------------------- rows

def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (tuple, set)):
        return list(v)
    return v


def repair_rows(run_dir: Path) -> int:
    """Move a torn last line of ``rows.jsonl`` (a writer killed mid-line: no newline at the end) to
    ``rows.jsonl.torn``, so that the next row starts on a line of its own. Returns how many bytes
    were moved (0: the file was whole)."""
    path = Path(run_dir) / ROWS_FILE
    if not path.is_file():
        return 0
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # find the start of the last line
        pos, chunk = size, 1 << 16
        start = 0
        while pos > 0:
            lo = max(0, pos - chunk)
            f.seek(lo)
            block = f.read(pos - lo)
            i = block.rfind(b"\n")
            if i >= 0:
                start = lo + i + 1
                break
            pos = lo
        f.seek(start)
        fragment = f.read()
        with open(Path(run_dir) / TORN_FILE, "ab") as torn:
            torn.write(fragment + b"\n")
        f.truncate(start)
    return len(fragment)


def torn_lines(run_dir: Path) -> int:
    """How many row lines of the run were torn by an interrupted write and set aside."""
    path = Path(run_dir) / TORN_FILE
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())


class RunWriter:
    """Appends rows to ``<run_dir>/rows.jsonl`` as they arrive (each stamped with ``run_id`` and
    ``run_attempt`` when given) and writes the tables at the end. Opening it repairs a torn last line."""

    def __init__(self, run_dir: Path, run_id: Optional[str] = None, attempt: Optional[int] = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.rows_path = self.run_dir / ROWS_FILE
        self.rows_path.touch()  # a run stopped before its first row is still a run folder (0 rows)
        self.torn_bytes = repair_rows(self.run_dir)
        self.stamp = {k: v for k, v in (("run_id", run_id), ("run_attempt", attempt)) if v is not None}

    def append(self, rows: Iterable[dict]) -> None:
        text = "".join(json.dumps({**{k: _jsonable(v) for k, v in row.items()}, **self.stamp}) + "\n" for row in rows)
        with open(self.rows_path, "a") as f:  # one write per job: its rows land together or not at all
            f.write(text)
            f.flush()

    def write_meta(self, meta: dict) -> None:
        tmp = self.run_dir / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n")
        tmp.replace(self.run_dir / META_FILE)  # a run killed meanwhile keeps its old meta, never half of one

    def finish(self) -> pd.DataFrame:
        df = load_rows(self.run_dir)
        df.to_csv(self.run_dir / "results.csv", index=False)
        df.to_json(self.run_dir / "results.json", orient="records", indent=1)
        return df


def load_rows(run_dir: Path) -> pd.DataFrame:
    """All rows of a run; per job, only the rows of its last attempt (a resumed run re-does failed
    jobs). The attempt is the row's ``run_attempt``; rows written before rows carried one count as
    attempt 0, told apart among themselves by adjacency (a job's rows were written together)."""
    path = Path(run_dir) / ROWS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a run folder (no {ROWS_FILE})")
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                # a line cut by an interruption (repair_rows moves it aside before the next append)
                continue
    df = pd.DataFrame(records)
    if df.empty:
        return df
    numbered = pd.to_numeric(df["run_attempt"], errors="coerce") if "run_attempt" in df.columns else \
        pd.Series(float("nan"), index=df.index)
    old = numbered.isna()
    adjacency = (df["job"] != df["job"].shift()).cumsum()  # < len(df): below every numbered attempt's rank
    rank = numbered.fillna(0) * (len(df) + 1) + adjacency.where(old, 0)
    last = rank.groupby(df["job"]).transform("max")
    return df[rank == last].reset_index(drop=True)


def job_status(df: pd.DataFrame) -> pd.Series:
    """Each job's status word (ok / skipped / error) from its rows: error if any row failed, skipped
    if its rows say skipped, else ok."""
    if df is None or df.empty or "job" not in df.columns:
        return pd.Series(dtype=object)
    word = kinds(df["status"]) if "status" in df.columns else pd.Series("ok", index=df.index)
    order = {"error": 0, "skipped": 1}
    rank = word.map(lambda w: order.get(w, 2))
    worst = rank.groupby(df["job"], sort=False).min()
    return worst.map({0: "error", 1: "skipped", 2: "ok"})


@dataclass(frozen=True)
class JobCounts:
    jobs: int
    ok: int
    skipped: int
    failed: int

    def line(self) -> str:
        return f"{self.jobs} jobs: {self.ok} ok, {self.skipped} skipped, {self.failed} failed"


def job_counts(df: pd.DataFrame) -> JobCounts:
    """How many of the run's jobs (their last attempts, as in results.csv) are ok, skipped, failed:
    the one count the last line of a run and its report both give."""
    st = job_status(df)
    return JobCounts(len(st), int((st == "ok").sum()), int((st == "skipped").sum()), int((st == "error").sum()))


def finished_jobs(run_dir: Path) -> set[str]:
    """Keys of jobs whose last attempt is ok or skipped (errors are retried on resume)."""
    try:
        df = load_rows(run_dir)
    except FileNotFoundError:
        return set()
    st = job_status(df)
    return set(st.index[st != "error"])
