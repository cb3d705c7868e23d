"""The committed trained checkpoints (checkpoints/<design>.pt + .json): one per design, small,
made by the suite's one recipe on the committed split, and their recorded validation figures are
what ``eval --weights trained`` measures from the committed file today."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import run_bench
from archs import list_archs
from bench.train import Recipe, fits_fp16
from bench.paths import CHECKPOINTS_DIR
from bench.weights import sha256_file

SPLITS = Path(__file__).resolve().parents[1] / "splits"
MAX_MB = 5.0  # "a few MB each"


def _provenance(arch: str) -> dict:
    pt, js = CHECKPOINTS_DIR / f"{arch}.pt", CHECKPOINTS_DIR / f"{arch}.json"
    assert pt.is_file() and js.is_file(), f"{arch}: trained checkpoint or provenance missing in {CHECKPOINTS_DIR}"
    return json.loads(js.read_text())


@pytest.mark.parametrize("arch", list_archs())
def test_checkpoint_file_matches_its_provenance(arch):
    prov = _provenance(arch)
    pt = CHECKPOINTS_DIR / f"{arch}.pt"
    assert prov["arch"] == arch and prov["init"] == "scratch"
    assert prov["checkpoint"]["sha256"] == sha256_file(pt), f"{pt} is not the file its provenance describes"
    assert pt.stat().st_size < MAX_MB * 2 ** 20
    # one recipe for every design: the committed runs used the defaults of bench.train.Recipe
    assert Recipe.from_dict(prov["recipe"]) == Recipe()
    # trained on the committed split: the split files are byte for byte those of the run
    for name, digest in prov["splits"]["files"].items():
        assert sha256_file(SPLITS / name) == digest, f"splits/{name} changed since {arch} was trained"
    state = torch.load(pt, weights_only=True)
    wide = [k for k, v in state.items() if v.is_floating_point() and v.dtype != torch.float16]
    assert wide == prov["checkpoint"].get("fp32_tensors", [])
    assert all(not fits_fp16(state[k]) for k in wide)  # fp32 only where fp16 cannot hold the values
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.mark.parametrize("arch", list_archs())
def test_eval_of_the_committed_file_reproduces_the_recorded_validation(arch, data_dir, capsys):
    """The acceptance command (`eval --weights trained --data DIR --json`) on the HSD validation
    stems gives exactly the figure recorded right after training (evaluation is deterministic)."""
    want = _provenance(arch)["validation"]["by_set"]["hsd"]
    code = run_bench.main(["eval", "--arch", arch, "--weights", "trained", "--data", str(data_dir / "hsd"),
                           "--split", "val", "--json"])
    assert code == 0
    got = json.loads(capsys.readouterr().out)
    got = got[0] if isinstance(got, list) else got
    assert {"miou", "miou_ci_low", "miou_ci_high", "boundary_f", "n_images"} <= set(got)
    assert got["n_images"] == want["n_images"] == 44
    assert got["miou"] == pytest.approx(want["miou"], abs=1e-6)
    assert got["boundary_f"] == pytest.approx(want["boundary_f"], abs=1e-6)
