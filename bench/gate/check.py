"""The regression gate's run (``run_bench.py check``): :class:`CheckRequest` (the user's choices) ->
:func:`plan_check` (baseline, settings, jobs, why time ratios cannot be compared) -> the jobs run
(by the caller's executor) -> :func:`conclude` (the comparisons, or the new baseline).

The rules themselves are :mod:`bench.gate.rules`; printing and writing the files are ``reports/gate.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from archs import list_archs

from .rules import (DEFAULT_RULES, Baseline, BaselineError, Comparison, accuracy_mismatch, compare, figures_from_rows,
                    gate_jobs, gate_settings, is_accuracy_floor, load_baseline, make_strict,
                    merge_figures, new_baseline, only_jobs, rebaselined_figures, reference_for, with_machine_ratios)
from ..run.jobs import Job
from ..run.runinfo import machine_kind, run_meta


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
    this_machine: bool = False  # with update: keep this machine kind's time ratios, every other figure stays

    def usage_error(self) -> Optional[str]:
        """Why these choices do not go together (None when they do)."""
        if self.update and not (self.reason or "").strip():
            return "--update-baseline needs --reason TEXT (why the figures change)"
        if self.reason and not self.update:
            return "--reason goes with --update-baseline"
        if self.only and not self.update:
            return "--only goes with --update-baseline"
        if self.this_machine and not self.update:
            return "--this-machine goes with --update-baseline"
        if self.this_machine and self.only:
            return "--this-machine re-measures the time ratios only; it does not go with --only"
        return None


@dataclass
class CheckPlan:
    request: CheckRequest
    baseline: Optional[Baseline]  # None when the whole baseline is re-measured
    archs: list[str]
    settings: dict[str, Any]
    jobs: list[Job]
    meta: dict[str, Any]  # where this check runs (bench.run.runinfo.run_meta)
    note: Optional[str]  # why the time ratios are not compared (other machine kind or settings)
    accuracy_note: Optional[str] = None  # why the accuracy floors are not compared (other images)
    reference: Optional[dict[str, dict[str, Any]]] = None  # the figures compared with (ratios of this machine kind)
    ratio_source: str = ""  # where the compared time ratios come from
    kept_machines: Optional[dict[str, dict[str, Any]]] = None  # full update: other kinds' entries carried over


def plan_check(req: CheckRequest, meta: Optional[dict[str, Any]] = None) -> CheckPlan:
    """Load the baseline (raises :class:`bench.gate.rules.BaselineError`) and list the jobs (raises
    ValueError for an unknown ``--only`` figure)."""
    baseline = load_baseline(req.baseline_path) if (not req.update or req.only or req.this_machine) else None
    meta = meta if meta is not None else run_meta()
    archs = list(req.archs) or list_archs()
    jobs = gate_jobs(archs, quick=req.quick, models_dir=req.models_dir, data_dir=req.data_dir)
    if req.only:
        jobs = only_jobs(jobs, req.only)
    if req.this_machine:  # the time ratios come from the latency rounds and the interleaved comparisons
        jobs = [j for j in jobs if j.measurement in ("latency", "speedup")]
    settings = gate_settings(req.quick)
    note = accuracy_note = reference = kept = None
    source = ""
    if baseline is not None:
        if req.this_machine and machine_kind(baseline.machine) == machine_kind(meta["machine"]):
            raise ValueError(f"this machine ({machine_kind(meta['machine'])}) is the baseline's own kind: "
                             "re-measure the whole baseline (check --update-baseline) instead of adding it")
        reference, note, source = reference_for(baseline, meta["machine"], settings)
        accuracy_note = accuracy_mismatch(baseline.settings, settings)
    elif req.update:  # a full re-baseline keeps the other machine kinds' time ratios of the file it replaces
        kept = _other_machines(req.baseline_path, meta["machine"])
    return CheckPlan(req, baseline, archs, settings, jobs, meta, note, accuracy_note, reference, source, kept)


def _other_machines(path: Path, machine: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``machines`` entries of the baseline at ``path`` other than ``machine``'s kind ({} when there
    is no readable baseline: a full re-baseline is also how a damaged file is replaced)."""
    try:
        old = load_baseline(path)
    except BaselineError:
        return {}
    return {k: v for k, v in old.machines.items() if k != machine_kind(machine)}


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
        comparisons = compare(current, plan.reference, DEFAULT_RULES, same_machine=plan.note is None,
                              accuracy_note=plan.accuracy_note)
        return CheckResult(make_strict(comparisons) if req.strict else comparisons, None, errors, current)
    if errors:
        return CheckResult([], None, errors, current)
    commit = meta.get("commit", "") + ("-dirty" if meta.get("dirty") else "")
    if req.this_machine:
        b = with_machine_ratios(plan.baseline, current, meta["machine"], plan.settings, meta["versions"],
                                req.reason, commit)
        return CheckResult([], b, errors, current)
    if req.only:  # the other figures, the machine and the settings stay the baseline's
        old, figures = plan.baseline, rebaselined_figures(req.only)
        kept, settings = old.metrics, dict(old.settings)
        if any(map(is_accuracy_floor, figures)):  # the floors now come from this check's images only
            kept = {a: {k: v for k, v in m.items() if not is_accuracy_floor(k)} for a, m in kept.items()}
            settings["accuracy_set"] = plan.settings["accuracy_set"]
        current = merge_figures(kept, current, figures)
        b = replace(new_baseline(current, old.machine, old.versions,
                                 f"{old.reason} | {commit}: {', '.join(figures)} re-measured: {req.reason}",
                                 old.commit, settings), machines=dict(old.machines))
    else:
        b = replace(new_baseline(current, meta["machine"], meta["versions"], req.reason, commit, plan.settings),
                    machines=dict(plan.kept_machines or {}))
    return CheckResult([], b, errors, current)
