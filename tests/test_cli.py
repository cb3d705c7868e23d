"""The command line: stable subcommands, JSON keys, exit codes."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import run_bench
from archs import get_spec, list_archs

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_bench.py"), *args], capture_output=True,
                          text=True, cwd=REPO, timeout=900)


def test_list_prints_the_five_names():
    out = _run("list")
    assert out.returncode == 0
    assert out.stdout.split() == list_archs()


@pytest.mark.parametrize("name", list_archs())
def test_profile_json_params(name, capsys):
    assert run_bench.main(["profile", "--arch", name, "--size", "128", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["arch"] == name and row["input_size"] == 128
    assert row["params"] == get_spec(name).ref_params


def test_unknown_design_is_usage_error():
    out = _run("profile", "--arch", "nope")
    assert out.returncode == 2 and "known designs" in out.stderr


def test_no_command_is_usage_error():
    assert _run().returncode == 2


@pytest.mark.parametrize("cmd", ["list", "profile", "eval"])
def test_help(cmd):
    out = _run(cmd, "--help")
    assert out.returncode == 0 and "usage" in out.stdout


def test_eval_json_on_a_small_folder(tmp_path, data_dir, capsys):
    src = data_dir / "hsd"
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    stems = sorted(p.stem for p in (src / "images").iterdir())[:3]
    for s in stems:
        shutil.copy(src / "images" / f"{s}.jpg", tmp_path / "images")
        shutil.copy(src / "masks" / f"{s}.png", tmp_path / "masks")
    code = run_bench.main(["eval", "--arch", "seg_matting", "--weights", "seed", "--data",
                           str(tmp_path), "--json"])
    assert code == 0
    row = json.loads(capsys.readouterr().out)
    assert row["n_images"] == 3 and row["weights"] == "seed" and row["input_size"] == 256
    assert 0.5 < row["miou"] <= 1.0


def test_eval_bad_folder_fails_with_message(tmp_path, capsys):
    code = run_bench.main(["eval", "--arch", "seg_matting", "--weights", "seed", "--data",
                           str(tmp_path / "missing")])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err
