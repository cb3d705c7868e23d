"""Job keys are what ``--resume`` matches a run folder's finished rows by: a change to how jobs are
built must not change them. ``tests/data/job_keys.json`` holds, in order, the keys of the default,
quick and thorough plans, the gate's jobs and a sweep, as the code at e96fb8a made them (before the
jobs were built from typed settings), less the 5 peers' full-HSD accuracy jobs that c87bb50 moved from
the default and quick plans to --thorough, plus the report's `layers` and `examples` jobs (added: the
per-layer tables and example predictions became jobs), and the gate's 6 accuracy jobs moved from hsd val to eg1800 test (session 8, issue 16); nothing else changed (checked when each was made). Changing that file on purpose means old runs no longer resume.

The plans follow what is on disk (a published checkpoint in ../shared/models is timed with its
weights), as the suite expects; the inputs that vary between machines are pinned: the core count
(thread counts) and an optional fine-tuned checkpoint."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

import bench.models.weights as weights
import bench.run.plan as plan
from archs import list_archs
from bench.gate.rules import gate_jobs
from bench.run.jobs import Job
from bench.run.settings import SETTINGS
from bench.run.sweep import SWEEP_MEASUREMENTS, SweepMatrix, expand

EXPECTED = json.loads((Path(__file__).parent / "data" / "job_keys.json").read_text())
SWEEP = SweepMatrix(archs=("seg_matting", "sinet"), measurements=SWEEP_MEASUREMENTS, seeds=(0, 1),
                    recipes={"default": {}, "crop160": {"train_size": 160}})


def planned_jobs(name: str) -> list[Job]:
    return {
        "plan": lambda: plan.plan_all(plan.PlanOptions()),
        "plan-quick": lambda: plan.plan_all(plan.PlanOptions(quick=True)),
        "plan-thorough": lambda: plan.plan_all(plan.PlanOptions(thorough=True)),
        "gate": lambda: gate_jobs(list_archs()),
        "gate-quick": lambda: gate_jobs(list_archs(), quick=True),
        "sweep": lambda: expand(SWEEP),
    }[name]()


@pytest.fixture(autouse=True)
def pinned_machine(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(plan, "trained_checkpoint_path", lambda name, *a, **k: tmp_path / f"{name}.pt")
    monkeypatch.setattr(weights, "CHECKPOINTS_DIR", tmp_path)  # where the plan looks for the own weights


def test_the_seed_fine_tune_is_planned_by_name_not_by_path(tmp_path):
    """With checkpoints/seg_matting-finetuned.pt present, --all scores it on every accuracy set as
    weights "finetuned": its job keys hold no path, so they are the same in every clone (resume)."""
    (tmp_path / "seg_matting-finetuned.pt").write_bytes(b"")  # where pinned_machine points the lookup
    jobs = [j for j in plan.plan_all(plan.PlanOptions()) if j.measurement == "accuracy" and j.get("weights") == "finetuned"]
    assert {j.arch for j in jobs} == {"seg_matting"} and len(jobs) == len(plan.ACCURACY_SETS)
    assert not any(str(tmp_path) in j.key or "/" in str(j.get("weights")) for j in jobs)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_job_keys_unchanged(name):
    assert [j.key for j in planned_jobs(name)] == EXPECTED[name]


# built from their settings (bench.run.plan, bench.gate.rules, bench.run.sweep): the settings alone make the job
BUILT_FROM_SETTINGS = {"arm_cost", "device_latency", "arm_estimate", "latency_repeat", "train"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_job_round_trips_through_its_settings(name):
    for job in planned_jobs(name):
        cls = SETTINGS[job.measurement]
        settings = cls.of(job)  # no unknown setting
        assert settings.job(job.arch).key == job.key
        if job.measurement in BUILT_FROM_SETTINGS:
            assert cls(**dataclasses.asdict(settings)).job(job.arch).key == job.key
