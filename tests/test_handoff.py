"""The hand-off wait budget (bench.measure.handoff): a history shared by the timing jobs on one
machine, so that a run stops waiting for cooperating threads once waiting has stopped paying off."""
from __future__ import annotations

import os

import pytest

import bench.measure.latency as latency
from bench.run import progress
from bench.measure.handoff import HandoffHistory


def test_only_waits_that_ended_with_the_threads_apart_spend_the_budget(tmp_path):
    h = HandoffHistory(tmp_path / "h.jsonl", window_s=600, budget_s=60)
    assert h.entries() == [] and h.wait_s(2, 30) == 30  # no history: a full wait
    now = 10_000.0
    h.record(2, 30.0, apart=True, now=now - 700)  # older than the window
    h.record(2, 25.0, apart=False, now=now - 100)  # paid off
    h.record(2, 20.0, apart=True, now=now - 90)
    h.record(4, 50.0, apart=True, now=now - 80)  # another thread count
    h.record(2, 0.0, apart=True, now=now - 10)  # no wait, nothing spent
    assert h.wasted_s(2, now) == pytest.approx(20.0)
    assert h.wait_s(2, 30, now) == 30  # 40 s left: the full 30
    h.record(2, 30.0, apart=True, now=now - 5)
    assert h.wait_s(2, 30, now) == pytest.approx(10.0)  # cut to what is left
    h.record(2, 12.0, apart=True, now=now - 1)
    assert h.wait_s(2, 30, now) == 0.0  # spent
    assert h.wait_s(2, 30, now + 600) == 30  # until those waits age out of the window
    assert h.wait_s(4, 30, now) == pytest.approx(10.0)


def test_a_torn_line_is_skipped_and_an_unwritable_history_costs_nothing(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text('{"t": 5, "threads": 2, "waited_s": 30, "apart": true}\n{"t": 6, "thr\nnot json\n')
    h = HandoffHistory(path)
    assert h.wasted_s(2, now=10) == 30
    blocked = tmp_path / "file"
    blocked.write_text("")
    nowhere = HandoffHistory(blocked / "sub" / "h.jsonl")  # its folder cannot be made
    nowhere.record(2, 30.0, apart=True)  # no error
    assert nowhere.entries() == [] and nowhere.wait_s(2, 30) == 30


def test_the_history_is_cut_back_to_its_newest_lines(tmp_path, monkeypatch):
    import bench.measure.handoff as handoff

    monkeypatch.setattr(handoff, "KEEP_LINES", 5)
    h = HandoffHistory(tmp_path / "h.jsonl")
    for i in range(11):
        h.record(2, float(i), apart=True, now=100.0 + i)
    lines = (tmp_path / "h.jsonl").read_text().splitlines()
    assert len(lines) == 5 and [e["waited_s"] for e in h.entries(now=111)] == [6.0, 7.0, 8.0, 9.0, 10.0]


@pytest.fixture
def quiet_cpu(monkeypatch):
    monkeypatch.setattr(latency, "load_avg", lambda: 0.1)
    monkeypatch.setattr(latency, "cpu_busy_fraction", lambda s: 0.0)
    monkeypatch.setattr(latency, "cpu_other_share", lambda a, b: 0.0)
    monkeypatch.setattr(latency.time, "sleep", lambda s: None)


def test_gate_stops_waiting_once_the_machines_budget_is_spent(tmp_path, monkeypatch, quiet_cpu):
    """Earlier jobs (other processes) waited 60 s in vain: the next job probes once, measures once
    and says why, instead of waiting 30 s again."""
    h = HandoffHistory(tmp_path / "h.jsonl", budget_s=60)
    h.record(2, 30.0, apart=True)
    h.record(2, 30.0, apart=True)
    probes, said = [], []
    monkeypatch.setattr(latency, "handoff_ratio", lambda t: probes.append(t) or 2.3)
    with progress.listening(said.append):
        best, n = latency.quiet_attempts(lambda: "timed", threads=2, attempts=3, handoff_wait_s=30.0, history=h)
    assert (n, best.stats, best.quiet(), best.waited_out) == (1, "timed", False, True)
    assert len(probes) == 2  # before and after; no waiting in between
    assert any("not waiting longer than 0 s" in m and "60 s of hand-off waits" in m for m in said)
    last = h.entries()[-1]
    assert (last["threads"], last["waited_s"], last["apart"]) == (2, 0.0, True)


def test_gate_records_each_attempt_and_waits_while_waiting_pays_off(tmp_path, monkeypatch, quiet_cpu):
    h = HandoffHistory(tmp_path / "h.jsonl", budget_s=60)
    for _ in range(5):
        h.record(2, 30.0, apart=False)  # long waits, each followed by cooperating threads
    ratios = iter([2.3, 2.2, 1.1, 1.2])  # apart for two probes, then together through the attempt
    monkeypatch.setattr(latency, "handoff_ratio", lambda t: next(ratios))
    best, n = latency.quiet_attempts(lambda: "timed", threads=2, attempts=3, handoff_wait_s=30.0, history=h)
    assert (n, best.quiet(), best.waited_out, best.handoff_before) == (1, True, False, 1.1)
    assert len(h.entries()) == 6 and h.entries()[-1]["apart"] is False
    # a flapping host: the wait ends below the limit, the probe after the attempt is above it; the
    # redo is made (cheap once waiting stops) and every attempt's wait is recorded as wasted
    ratios = iter([1.5, 1.7] * 3)
    monkeypatch.setattr(latency, "handoff_ratio", lambda t: next(ratios))
    best, n = latency.quiet_attempts(lambda: "timed", threads=2, attempts=3, handoff_wait_s=30.0, history=h)
    assert (n, best.quiet()) == (3, False)
    assert [e["apart"] for e in h.entries()[-3:]] == [True, True, True]


def test_a_timing_loop_the_suite_does_not_own_waits_within_the_budget_too(tmp_path, monkeypatch, quiet_cpu):
    """pytest-benchmark owns its loop: the wait before it uses the same budget and is recorded."""
    h = HandoffHistory(tmp_path / "h.jsonl", budget_s=60)
    probes = []
    monkeypatch.setattr(latency, "handoff_ratio", lambda t: probes.append(t) or 2.3)
    assert latency.wait_for_handoff_in_budget(2, h, max_wait_s=0.05) == 2.3
    assert h.entries()[-1]["apart"] is True and 0 < h.entries()[-1]["waited_s"] < 1
    h.record(2, 60.0, apart=True)  # spent
    probes.clear()
    assert latency.wait_for_handoff_in_budget(2, h, max_wait_s=30.0) == 2.3
    assert probes == [2] and h.entries()[-1]["waited_s"] == 0.0  # one probe, no wait
    assert latency.wait_for_handoff_in_budget(1, h) is None and len(h.entries()) == 3


def test_one_thread_leaves_no_history(tmp_path, quiet_cpu):
    h = HandoffHistory(tmp_path / "h.jsonl")
    latency.quiet_attempts(lambda: "timed", threads=1, attempts=1, history=h)
    assert not (tmp_path / "h.jsonl").exists()


def test_default_history_lives_in_the_cache_and_tests_get_their_own():
    from bench.cache import cache_folder
    from bench.measure import handoff

    assert HandoffHistory()._file() == handoff.default_path()
    assert handoff.default_path().parent != cache_folder("handoff")  # conftest's per-test history
    assert os.fspath(cache_folder("handoff")).endswith(os.path.join(".cache", "handoff"))
