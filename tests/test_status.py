"""A row's status: one type writes and reads the ``status`` text, and no code parses its prefix."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

import bench.run.adapters  # noqa: F401  registers the measurements
from bench.run.jobs import Job, first_error, run_job, status_of
from bench.run.status import OK, Status, kinds, row_status

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text, kind, reason, message", [
    ("ok", "ok", "", ""),
    ("skipped: the aarch64 toolchain is missing", "skipped", "", "the aarch64 toolchain is missing"),
    ("error: ValueError: no such split", "error", "", "ValueError: no such split"),
    ("error: parity max |diff| 0.31 > 0.0101", "error", "parity", "max |diff| 0.31 > 0.0101"),
    ("error: parity vs x86 ncnn 2 outputs, expected 1", "error", "parity", "vs x86 ncnn 2 outputs, expected 1"),
    # "parity" as a word inside another message is not the parity kind
    ("error: ncnn conversion without parity (iou 0.4): no estimate", "error", "",
     "ncnn conversion without parity (iou 0.4): no estimate"),
    ("error: parityless", "error", "", "parityless"),
])
def test_parse_and_write_back(text, kind, reason, message):
    s = Status.parse(text)
    assert (s.kind, s.reason, s.message) == (kind, reason, message)
    assert str(s) == text
    assert [s.ok, s.skipped, s.error] == [kind == "ok", kind == "skipped", kind == "error"]


@pytest.mark.parametrize("missing", [None, float("nan"), "", "  "])
def test_a_row_without_a_status_is_ok(missing):
    assert Status.parse(missing) is OK
    assert row_status({}) is OK and row_status({"status": missing}) is OK


def test_text_naming_no_kind_is_an_error_and_kinds_are_checked():
    assert Status.parse("exploded") == Status("error", "exploded")
    assert Status.parse("FAIL").error  # the gate's verdict word
    with pytest.raises(ValueError, match="status kind"):
        Status("maybe")
    with pytest.raises(ValueError, match="reason"):
        Status("skipped", "x", "parity")
    with pytest.raises(ValueError, match="reason"):
        Status.fail("x", "timeout")


def test_kinds_of_a_column():
    col = pd.Series(["ok", "skipped: x", "error: parity y", None, math.nan, "error: z"])
    assert list(kinds(col)) == ["ok", "skipped", "error", "ok", "ok", "error"]


def test_jobs_write_statuses_the_type_reads():
    """A skipped, a failed and an ok job through the real job runner."""
    skipped = run_job(Job.make("layers", "mediapipe_selfie", input_size=256))  # a file: no PyTorch layers
    failed = run_job(Job.make("no_such_measurement", "mobilenet_dilate_unet"))
    for rows, kind in ((skipped, "skipped"), (failed, "error")):
        s = status_of(rows)
        assert s.kind == kind and s.message and str(s) == rows[0]["status"], rows[0]["status"]
    assert first_error(failed) == failed[0]["status"] and first_error(skipped) is None


def test_no_code_matches_status_prefixes():
    """Statuses are asked (``.ok``, ``.skipped``, ``.error``, ``.reason``), never prefix-matched."""
    pattern = re.compile(r"""startswith\(\(?["'](ok|skipped|error)|removeprefix\(["'](skipped|error)""")
    hits = [f"{p.relative_to(REPO)}:{i}" for top in ("bench", "reports", "cli")
            for p in sorted((REPO / top).rglob("*.py")) if p.name != "status.py"
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, "status prefixes parsed at " + ", ".join(hits)
