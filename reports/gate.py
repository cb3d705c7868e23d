"""The regression gate's output: the comparison table for a terminal, the baseline file, and a
check's record (table and JSON) in a run folder. Comparing is ``bench.gate.rules``'s job."""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.gate.check import CheckPlan
from bench.gate.rules import Baseline, Comparison
from bench.run.runinfo import machine_kind

from .fmt import NOT_MEASURED
COLUMNS = ("design", "metric", "baseline", "current", "change", "limit", "verdict")


def _value(v: Any) -> str:
    if v is None:
        return NOT_MEASURED
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else NOT_MEASURED
    return str(v)


def _change(c: Comparison) -> str:
    if c.change is None:
        return ""
    if not math.isfinite(c.change):
        return "new"
    return f"{c.change:+.2%}"


def format_table(comparisons: Sequence[Comparison]) -> str:
    """Plain-text table, one line per (design, metric): baseline, current, relative change, the
    rule's limit and the verdict (ok / FAIL / skipped: why)."""
    if not comparisons:
        return "nothing to compare"
    body = [[c.arch, c.metric, _value(c.baseline), _value(c.current), _change(c), c.limit, c.verdict]
            for c in comparisons]
    widths = [max(len(str(x)) for x in col) for col in zip(COLUMNS, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [COLUMNS, *body]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def summary_line(comparisons: Sequence[Comparison], n_errors: int = 0) -> str:
    """``gate: PASS ...`` or ``gate: FAIL ...`` with the counts behind it."""
    failed = [c for c in comparisons if c.failed]
    skipped = sum(c.skipped for c in comparisons)
    ok = len(comparisons) - len(failed) - skipped
    counts = f"{ok} ok, {len(failed)} violations, {skipped} skipped, {n_errors} failed jobs"
    if not failed and not n_errors:
        return f"gate: PASS ({counts})"
    worst = ", ".join(f"{c.arch}/{c.metric}" for c in failed[:6]) + (" ..." if len(failed) > 6 else "")
    return f"gate: FAIL ({counts})" + (f": {worst}" if worst else "")


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def check_record(comparisons: Sequence[Comparison], note: Optional[str] = None,
                 errors: Sequence[str] = ()) -> dict[str, Any]:
    """The check as one JSON-able object (what ``check --json`` prints)."""
    return {"passed": not any(c.failed for c in comparisons) and not errors,
            "violations": sum(c.failed for c in comparisons), "machine_note": note, "errors": list(errors),
            "comparisons": [{k: _jsonable(v) for k, v in asdict(c).items()} for c in comparisons]}


def write_baseline(path: Path, baseline: Baseline) -> Path:
    """Write the baseline file atomically (a partly written baseline is never left behind)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(baseline.to_json())
    os.replace(tmp, path)
    return path


def write_check(out_dir: Path, comparisons: Sequence[Comparison], note: Optional[str] = None,
                errors: Sequence[str] = ()) -> tuple[Path, Path]:
    """``gate.txt`` (table and verdict) and ``gate.json`` (:func:`check_record`) in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    txt, js = out_dir / "gate.txt", out_dir / "gate.json"
    lines = ([note, ""] if note else []) + [format_table(comparisons), "", summary_line(comparisons, len(errors))]
    txt.write_text("\n".join(lines + [f"  {e}" for e in errors]) + "\n")
    js.write_text(json.dumps(check_record(comparisons, note, errors), indent=2, default=str) + "\n")
    return txt, js


def plan_lines(plan: CheckPlan) -> list[str]:
    """What a check will measure and against what, printed before it starts (settings first, as
    benchncnn does): the designs and timing settings, the baseline, and why time ratios are not
    compared when they are not."""
    s = plan.settings
    lines = [f"gate: {len(plan.archs)} designs at {s['input_size']}px; latency torch + ncnn at "
             f"{s['threads']} thread(s), {s['repeats']} rounds of {s['loops']} timed + {s['warmup']} warm-up loops, "
             f"then ncnn vs torch interleaved ({s['speedup_rounds']} rounds of {s['speedup_loops']}); "
             f"accuracy on {s.get('accuracy_set', '?')}"
             f"{' (quick)' if s['quick'] else ''}; this machine: {machine_kind(plan.meta['machine'])}"]
    b = plan.baseline
    if b is not None:
        lines.append(f"baseline: {plan.request.baseline_path} ({b.created}, commit {b.commit or '?'}, "
                     f"reason: {b.reason}); machine: {machine_kind(b.machine)}"
                     + (f"; time ratios also for: {'; '.join(sorted(b.machines))}" if b.machines else ""))
        if plan.ratio_source and not plan.note:
            lines.append(f"gate: time ratios compared with {plan.ratio_source}")
        if plan.note:
            lines.append(f"gate: {plan.note}")
        if plan.accuracy_note:
            lines.append(f"gate: accuracy floors not compared: {plan.accuracy_note}")
    return lines
