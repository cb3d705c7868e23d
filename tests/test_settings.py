"""Typed settings (bench.run.settings): one dataclass per measurement holds the defaults, reads a
job's settings (unknown ones are errors) and makes the job back."""
from __future__ import annotations

import pytest

import bench.run.adapters  # noqa: F401  registers the measurements
from bench.gate.rules import gate_jobs
from bench.run.jobs import Job, run_job
from bench.measure.latency import DEFAULT_LOOPS, DEFAULT_ROUND_LOOPS, DEFAULT_WARMUP
from bench.run.plan import PlanOptions, plan_all
from bench.run.settings import (SETTINGS, ArmEstimateSettings, DeviceLatencySettings, LatencyRepeatSettings,
                                LatencySettings, SpeedupSettings)


def test_every_measurement_has_its_settings():
    import bench.run.sweep  # noqa: F401  registers train
    from bench.run.jobs import known_measurements

    # (tests register their own measurements, named with a leading underscore)
    assert sorted(SETTINGS) == [m for m in known_measurements() if not m.startswith("_")]
    assert all(cls.measurement == name for name, cls in SETTINGS.items())


def test_defaults_live_in_the_settings():
    s = LatencySettings()
    assert (s.loops, s.warmup, s.input_size, s.weights) == (DEFAULT_LOOPS, DEFAULT_WARMUP, 256, "random")
    assert SpeedupSettings().loops == DEFAULT_ROUND_LOOPS
    assert (s.threads_for("torch"), s.threads_for("file"), LatencySettings(threads=4).threads_for("file")) == (1, 2, 4)
    # None: a default left out of the key (the jobs made before these settings did not name it)
    assert DeviceLatencySettings().timing() == dict(threads=1, loops=20, warmup=3, powersave=0, exec_prefix=())
    assert DeviceLatencySettings().toolchain_name == "gnu" and ArmEstimateSettings().threads == (1, 4)


def test_latency_repeat_runs_the_latency_job_of_its_settings():
    s = LatencyRepeatSettings(backend="ncnn", threads=2, loops=12, runs=3)
    assert s.one_run() == LatencySettings(backend="ncnn", threads=2, loops=12)
    assert s.job("seg_matting").key == ("latency_repeat/seg_matting/backend=ncnn,input_size=256,loops=12,runs=3,"
                                        "threads=2,warmup=10,weights=random")


def test_settings_read_from_a_job_make_that_job():
    job = Job.make("latency", "pphumanseg_lite", backend="onnxruntime", threads=2)  # no input size: a model file
    assert LatencySettings.of(job).job(job.arch) == job
    assert LatencySettings.of(job) == LatencySettings(backend="onnxruntime", threads=2)  # equal values


def test_job_round_trip_and_key():
    s = LatencySettings(backend="ncnn", threads=2, input_size=224, loops=12)
    job = s.job("seg_matting")
    assert job.measurement == "latency" and LatencySettings.of(job) == s
    assert job.key == "latency/seg_matting/backend=ncnn,input_size=224,loops=12,threads=2,warmup=10,weights=random"
    assert LatencySettings.of(Job.make("latency", "x", threads="3")).threads == 3  # typed on the way in


def test_unknown_setting_is_an_error_row_naming_it():
    with pytest.raises(ValueError, match="unknown setting.*thread_count"):
        LatencySettings.of(Job.make("latency", "seg_matting", thread_count=2))
    rows = run_job(Job.make("latency", "seg_matting", backend="torch", thread_count=2))
    assert rows[0]["status"].startswith("error") and "thread_count" in rows[0]["status"]
    rows = run_job(Job.make("profile", "seg_matting", size=128))
    assert rows[0]["status"].startswith("error") and "unknown setting(s) size" in rows[0]["status"]


@pytest.mark.parametrize("jobs", [plan_all(PlanOptions(thorough=True)), plan_all(PlanOptions(quick=True)),
                                  gate_jobs(["seg_matting"]), gate_jobs(["esp_dense_seg"], quick=True)],
                         ids=["plan", "plan-quick", "gate", "gate-quick"])
def test_every_planned_job_reads_into_its_settings(jobs):
    assert {j.measurement for j in jobs} >= {"latency", "profile", "accuracy"}
    for j in jobs:
        s = SETTINGS[j.measurement].of(j)  # no unknown setting
        assert s.job(j.arch).key == j.key  # the same job back (tests/test_job_keys.py: every plan)


def test_given_settings_make_jobs_with_just_the_chosen_settings():
    """The plan builds every job from typed settings: ``given`` checks the names and keeps the key to
    what was chosen (the defaults stay out of it), so the keys of finished runs still match."""
    from bench.run.jobs import Job
    from bench.run.settings import AccuracySettings, ProfileSettings
    job = AccuracySettings.given(weights="trained", dataset="eg1800", split="test").job("seg_matting")
    assert job == Job.make("accuracy", "seg_matting", weights="trained", dataset="eg1800", split="test")
    assert job.key == "accuracy/seg_matting/dataset=eg1800,split=test,weights=trained"
    assert ProfileSettings.given().job("seg_matting").key == "profile/seg_matting"
    with pytest.raises(TypeError, match="input_sise"):
        ProfileSettings.given(input_sise=256)
    # read back, a job's settings are its fields' declared types (JSON keeps 256 as 256.0 via pandas)
    back = ProfileSettings.of(Job.make("profile", "seg_matting", input_size=256.0))
    assert back.input_size == 256 and isinstance(back.input_size, int)
