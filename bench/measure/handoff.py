"""The machine's recent hand-off outcomes: a budget for waiting on cooperating threads that outlives
one timing job.

Before a multi-thread attempt the quiet wait (:mod:`bench.measure.latency`) waits up to 30 s for the
threads to share a cache again. On a host that keeps the two vCPUs apart for minutes, or lets them
hover at the limit, that wait rarely pays off, and every timing job runs in a fresh process that
knows nothing of the jobs before it: a full run then waits 30 s per job (and per redo) and takes
twice as long. So every multi-thread attempt appends what it found to a small history shared by all
processes on the machine (``.cache/handoff/history.jsonl``, one JSON line per attempt: time, threads,
seconds waited, whether a hand-off probe was above its limit). Waiting that ended in an attempt whose
hand-off check failed is *wasted*; once the wasted waiting of the last ``window_s`` seconds reaches
``budget_s``, the quiet wait stops waiting (one probe, one attempt) until those waits age out of the window.
Waits that were followed by cooperating threads cost nothing, so a host that recovers within the
wait keeps being waited for.

The history is an optimisation: a file that cannot be read or written means a full budget, never a
failed measurement. Lines are short and appended in one write, so concurrent jobs do not tear them;
a malformed line is skipped.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..cache import cache_folder

WINDOW_S = 600.0  # the history looks back this far
BUDGET_S = 60.0  # wasted hand-off waiting allowed per window before the quiet wait stops waiting
KEEP_LINES = 2000  # the file is cut back to its newest lines when it grows past twice this


def default_path() -> Path:
    """Where the machine's history lives (under the git-ignored cache)."""
    return cache_folder("handoff") / "history.jsonl"


@dataclass(frozen=True)
class HandoffHistory:
    """The hand-off history at ``path`` (default :func:`default_path`), judged over the last
    ``window_s`` seconds with ``budget_s`` seconds of wasted waiting allowed."""

    path: Optional[Path] = None
    window_s: float = WINDOW_S
    budget_s: float = BUDGET_S

    def _file(self) -> Path:
        return Path(self.path) if self.path else default_path()

    def entries(self, now: Optional[float] = None) -> list[dict]:
        """The entries of the last ``window_s`` seconds (oldest first); [] when there is no history."""
        now = time.time() if now is None else now
        try:
            lines = self._file().read_text().splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                e = json.loads(line)
                if now - float(e["t"]) <= self.window_s:
                    out.append(e)
            except (ValueError, KeyError, TypeError):
                continue  # a torn or foreign line: skip it
        return out

    def wasted_s(self, threads: int, now: Optional[float] = None) -> float:
        """Seconds of waiting at ``threads`` threads within the window that ended in an attempt whose
        hand-off check failed."""
        return sum(float(e.get("waited_s", 0.0)) for e in self.entries(now)
                   if e.get("threads") == threads and e.get("apart"))

    def wait_s(self, threads: int, max_wait_s: float, now: Optional[float] = None) -> float:
        """How long the next attempt at ``threads`` threads may wait: ``max_wait_s``, cut to what is
        left of the budget (0 once it is spent)."""
        return max(0.0, min(max_wait_s, self.budget_s - self.wasted_s(threads, now)))

    def record(self, threads: int, waited_s: float, apart: bool, now: Optional[float] = None) -> None:
        """Append one attempt's outcome: seconds waited for the hand-off before it and whether a
        hand-off probe (before or after it) was above its limit."""
        line = json.dumps({"t": round(time.time() if now is None else now, 3), "threads": int(threads),
                           "waited_s": round(float(waited_s), 3), "apart": bool(apart)}) + "\n"
        path = self._file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
            self._trim(path)
        except OSError:
            pass  # an unwritable cache costs only the budget's memory, never the measurement

    @staticmethod
    def _trim(path: Path) -> None:
        """Keep the file small: past ``2 * KEEP_LINES`` lines, replace it with its newest ``KEEP_LINES``."""
        lines = path.read_text().splitlines(keepends=True)
        if len(lines) > 2 * KEEP_LINES:
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text("".join(lines[-KEEP_LINES:]))
            os.replace(tmp, path)
