"""The regression gate's run (``run_bench.py check``): :class:`CheckRequest` (the user's choices) ->
:func:`plan_check` (baseline, settings, jobs, why time ratios cannot be compared) -> the jobs run
(by the caller's executor) -> :func:`conclude` (the comparisons, or the new baseline).

The rules themselves are :mod:`bench.gate`; printing and writing the files are ``reports/gate.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from archs import list_archs

from .gate import (DEFAULT_RULES, Baseline, Comparison, accuracy_mismatch, compare, figures_from_rows, gate_jobs,
                   gate_settings, is_accuracy_floor, load_baseline, machine_mismatch, make_strict, merge_figures,
                   new_baseline, only_jobs, rebaselined_figures, settings_mismatch)
from .jobs import Job
from .runinfo import run_meta


@dataclass(frozen=True)
class CheckRequest:
    """The choices of ``run_bench.py check``."""

    baseline_path: Path
    archs: tuple[str, ...] = ()  # empty: every design
    quick: bool = False
    update: bool = False  # measure and rewrite the baseline instead of checking
    reason: Optional[str] = None  # why the baseline changes (needed with update)
    only: tuple[str, ...] = ()  # with update: re-measure only these deterministic figures
    strict: bool = False  # a baseline figure not measured fails instead of being skipped
    models_dir: Optional[Path] = None
    data_dir: Optional[Path] = None

    def usage_error(self) -> Optional[str]:
        """Why these choices do not go together (None when they do)."""
        if self.update and not (self.reason or "").strip():
            return "--update-baseline needs --reason TEXT (why the figures change)"
        if self.reason and not self.update:
            return "--reason goes with --update-baseline"
        if self.only and not self.update:
            return "--only goes with --update-baseline"
        return None


@dataclass
class CheckPlan:
    request: CheckRequest
    baseline: Optional[Baseline]  # None when the whole baseline is re-measured
    archs: list[str]
    settings: dict[str, Any]
    jobs: list[Job]
    meta: dict[str, Any]  # where this check runs (bench.runinfo.run_meta)
    note: Optional[str]  # why the time ratios are not compared (other machine kind or settings)
    accuracy_note: Optional[str] = None  # why the accuracy floors are not compared (other images)


def plan_check(req: CheckRequest, meta: Optional[dict[str, Any]] = None) -> CheckPlan:
    """Load the baseline (raises :class:`bench.gate.BaselineError`) and list the jobs (raises
    ValueError for an unknown ``--only`` figure)."""
    baseline = load_baseline(req.baseline_path) if (not req.update or req.only) else None
    meta = meta if meta is not None else run_meta()
    archs = list(req.archs) or list_archs()
    jobs = gate_jobs(archs, quick=req.quick, models_dir=req.models_dir, data_dir=req.data_dir)
    if req.only:
        jobs = only_jobs(jobs, req.only)
    settings = gate_settings(req.quick)
    note = accuracy_note = None
    if baseline is not None:
        note = machine_mismatch(baseline.machine, meta["machine"]) or settings_mismatch(baseline.settings, settings)
        accuracy_note = accuracy_mismatch(baseline.settings, settings)
    return CheckPlan(req, baseline, archs, settings, jobs, meta, note, accuracy_note)


@dataclass
class CheckResult:
    comparisons: list[Comparison]  # empty when the baseline was re-measured
    new_baseline: Optional[Baseline]  # the baseline to write (update), None otherwise or after failed jobs
    errors: list[str]  # failed jobs as "key: status"
    figures: dict[str, dict[str, Any]]  # what this run measured, per design

    @property
    def passed(self) -> bool:
        return not self.errors and not any(c.failed for c in self.comparisons)


def conclude(plan: CheckPlan, rows: Iterable[Mapping[str, Any]], errors: list[str]) -> CheckResult:
    """The check's outcome from the jobs' rows: the comparisons with the baseline, or (update) the new
    baseline (none when a job failed: a baseline is never written from a partial run)."""
    req, meta = plan.request, plan.meta
    current = figures_from_rows(rows)
    if not req.update:
        comparisons = compare(current, plan.baseline.metrics, DEFAULT_RULES, same_machine=plan.note is None,
                              accuracy_note=plan.accuracy_note)
        return CheckResult(make_strict(comparisons) if req.strict else comparisons, None, errors, current)
    if errors:
        return CheckResult([], None, errors, current)
    commit = meta.get("commit", "") + ("-dirty" if meta.get("dirty") else "")
    if req.only:  # the other figures, the machine and the settings stay the baseline's
        old, figures = plan.baseline, rebaselined_figures(req.only)
        kept, settings = old.metrics, dict(old.settings)
        if any(map(is_accuracy_floor, figures)):  # the floors now come from this check's images only
            kept = {a: {k: v for k, v in m.items() if not is_accuracy_floor(k)} for a, m in kept.items()}
            settings["accuracy_set"] = plan.settings["accuracy_set"]
        current = merge_figures(kept, current, figures)
        b = new_baseline(current, old.machine, old.versions,
                         f"{old.reason} | {commit}: {', '.join(figures)} re-measured: {req.reason}",
                         old.commit, settings)
    else:
        b = new_baseline(current, meta["machine"], meta["versions"], req.reason, commit, plan.settings)
    return CheckResult([], b, errors, current)
