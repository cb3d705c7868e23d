"""The committed checkpoints (checkpoints/<name>.pt + .json): one per design trained from scratch
(``--weights trained``) and the seed seg_matting fine-tuned with the same recipe
(``seg_matting-finetuned``, ``--weights finetuned``); small, made by the suite's one recipe on the
committed split, and their recorded validation and test figures are what ``eval`` measures from the
committed file today."""
from __future__ import annotations

import json

import pytest
import torch

import run_bench
from archs import list_archs
from bench.data.datasets import split_stems
from bench.train.loop import Recipe, fits_fp16
from bench.paths import CHECKPOINTS_DIR, SPLITS_DIR
from bench.models.weights import OWN_WEIGHTS, load_model, sha256_file

pytestmark = [pytest.mark.slow]  # whole eg1800-test evaluations

MAX_MB = 5.0  # "a few MB each"
# every committed checkpoint, by file stem: each design's own, and the seed fine-tuned (issue 16)
OWN = [*list_archs(), "seg_matting" + OWN_WEIGHTS["finetuned"]]


def _weights(name: str) -> tuple[str, str]:
    """(design, ``--weights`` value) of a committed checkpoint's file stem."""
    arch, _, rest = name.partition("-")
    return arch, "trained" if not rest else rest


def _provenance(name: str) -> dict:
    pt, js = CHECKPOINTS_DIR / f"{name}.pt", CHECKPOINTS_DIR / f"{name}.json"
    assert pt.is_file() and js.is_file(), f"{name}: checkpoint or provenance missing in {CHECKPOINTS_DIR}"
    return json.loads(js.read_text())


def _eg1800_test(name: str) -> tuple[dict, dict]:
    """The provenance and its recorded eg1800-test figure (``eval --record``)."""
    prov = _provenance(name)
    assert "eg1800/test" in prov.get("test", {}), \
        f"{name}: no eg1800 test figure recorded; run eval --weights <file>.pt --data <eg1800> --split test --record"
    return prov, prov["test"]["eg1800/test"]


@pytest.mark.parametrize("name", OWN)
def test_checkpoint_file_matches_its_provenance(name):
    prov = _provenance(name)
    arch, weights = _weights(name)
    pt = CHECKPOINTS_DIR / f"{name}.pt"
    assert prov["arch"] == arch and prov["init"] == ("scratch" if weights == "trained" else "seed")
    assert prov["checkpoint"]["sha256"] == sha256_file(pt), f"{pt} is not the file its provenance describes"
    assert pt.stat().st_size < MAX_MB * 2 ** 20
    # one recipe for every checkpoint: recipe v2, the defaults of bench.train.loop.Recipe
    assert prov["recipe"] == Recipe().to_dict()
    # trained on the committed split: the split files are byte for byte those of the run
    for split_file, digest in prov["splits"]["files"].items():
        assert sha256_file(SPLITS_DIR / split_file) == digest, \
            f"splits/{split_file} changed since {pt.name} was trained"
    state = torch.load(pt, weights_only=True)
    wide = [k for k, v in state.items() if v.is_floating_point() and v.dtype != torch.float16]
    assert wide == prov["checkpoint"].get("fp32_tensors", [])
    assert all(not fits_fp16(state[k]) for k in wide)  # fp32 only where fp16 cannot hold the values
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.mark.parametrize("name", OWN)
def test_eval_of_the_committed_file_reproduces_the_recorded_validation(name, data_dir, capsys):
    """The acceptance command (`eval --weights trained|finetuned --data DIR --json`) on the HSD validation
    stems gives exactly the figure recorded right after training (evaluation is deterministic)."""
    want = _provenance(name)["validation"]["by_set"]["hsd"]
    arch, weights = _weights(name)
    code = run_bench.main(["eval", "--arch", arch, "--weights", weights, "--data", str(data_dir / "hsd"),
                           "--split", "val", "--json"])
    assert code == 0
    got = json.loads(capsys.readouterr().out)
    got = got[0] if isinstance(got, list) else got
    assert {"miou", "miou_ci_low", "miou_ci_high", "boundary_f", "n_images"} <= set(got)
    assert got["n_images"] == want["n_images"] == 44
    assert got["miou"] == pytest.approx(want["miou"], abs=1e-6)
    assert got["boundary_f"] == pytest.approx(want["boundary_f"], abs=1e-6)


@pytest.mark.parametrize("name", OWN)
def test_a_recipe_v2_checkpoint_is_complete_and_trained_on_no_evaluation_image(name):
    prov = _provenance(name)
    r = Recipe()
    assert prov["steps"] == prov["curve"][-1]["step"] and prov["images_seen"] == prov["steps"] * r.batch_size
    assert prov["wall_seconds"] > prov["train_seconds"] > 0 and prov["img_per_s"] > 0
    assert set(prov["train_stems"]) == set(r.train_sets) == set(prov["validation"]["by_set"])
    for name, split in zip(r.train_sets, r.train_splits):
        assert prov["train_stems"][name] == split_stems(name, split)
    test = set(split_stems("eg1800", "test"))
    assert not test & set(prov["train_stems"]["eg1800"])


@pytest.mark.parametrize("name", OWN)
def test_eval_on_eg1800_test_reproduces_the_recorded_figure(name, data_dir, capsys):
    """`eval --weights trained|finetuned --data ../shared/data/eg1800 --split test` gives exactly the eg1800-test
    figure recorded in the provenance (`eval --record`; headline accuracy of issue 16)."""
    _, want = _eg1800_test(name)
    arch, weights = _weights(name)
    code = run_bench.main(["eval", "--arch", arch, "--weights", weights, "--data", str(data_dir / "eg1800"),
                           "--split", "test", "--size", str(want["input_size"]), "--json"])
    assert code == 0
    got = json.loads(capsys.readouterr().out)
    got = got[0] if isinstance(got, list) else got
    assert got["n_images"] == want["n_images"] == 264
    # to 1e-6 (as the validation figure above), not bit for bit: PyTorch's thread count changes the
    # order of float sums; recorded at 2 threads, shuffle_seg_skipnet's figure moves by 2.7e-8 at 1
    assert got["miou"] == pytest.approx(want["miou"], abs=1e-6)
    assert got["miou_ci_low"] == pytest.approx(want["miou_ci_low"], abs=1e-6)


@pytest.mark.parametrize("name", OWN)
def test_recorded_eg1800_test_figure_is_precise_enough_to_rank(name):
    """Issue 16: the half-width of the eg1800-test 95 % interval is at most 0.01 for every design
    (264 images), so designs 0.02 apart can be told apart."""
    _, t = _eg1800_test(name)
    assert t["miou_ci_low"] <= t["miou"] <= t["miou_ci_high"]
    assert (t["miou_ci_high"] - t["miou_ci_low"]) / 2 <= 0.01


def test_finetuned_checkpoint_is_the_seed_trained_further(models_dir):
    """checkpoints/seg_matting-finetuned.pt started from the seed checkpoint (provenance ``init``) and
    was trained: its weights are the seed's moved by the recipe, not a copy of them and not a fresh
    design: most convolutions changed, yet they ended at less than half the distance from the seed's
    that the from-scratch checkpoint has (0.43 when committed)."""
    seed = load_model("seg_matting", "seed", models_dir).model.state_dict()
    tuned = load_model("seg_matting", "finetuned").model.state_dict()
    scratch = load_model("seg_matting", "trained").model.state_dict()
    conv = [k for k, v in seed.items() if v.is_floating_point() and v.dim() == 4]

    def dist(sd):
        return sum(float((sd[k].float() - seed[k].float()).norm()) for k in conv)

    moved = sum(not torch.equal(tuned[k].half(), seed[k].half()) for k in conv)
    assert moved > 0.9 * len(conv)
    assert dist(tuned) < 0.5 * dist(scratch)


def test_eval_record_keeps_the_test_figure_beside_the_weights(tmp_path, data_dir, capsys):
    """`eval --weights X.pt --split test --record` writes the figure it printed into X.json under
    test/<set>/test (what the eg1800-test reproduction test reads); any other split or weights
    without a provenance file is a usage error that writes nothing."""
    arch = "residualdense_bisenet"
    pt, js = tmp_path / f"{arch}.pt", tmp_path / f"{arch}.json"
    pt.write_bytes((CHECKPOINTS_DIR / f"{arch}.pt").read_bytes())
    js.write_text((CHECKPOINTS_DIR / f"{arch}.json").read_text())
    eg = data_dir / "eg1800"
    before = js.read_text()
    assert run_bench.main(["eval", "--arch", arch, "--weights", str(pt), "--data", str(eg),
                           "--split", "train", "--record"]) == 2
    assert "--record" in capsys.readouterr().err and js.read_text() == before
    assert run_bench.main(["eval", "--arch", arch, "--weights", "random", "--data", str(eg),
                           "--split", "test", "--record"]) == 2
    capsys.readouterr()
    code = run_bench.main(["eval", "--arch", arch, "--weights", str(pt), "--data", str(eg),
                           "--split", "test", "--record", "--json"])
    out = capsys.readouterr()
    assert code == 0 and "recorded in" in out.err
    printed = json.loads(out.out)
    kept = json.loads(js.read_text())["test"]["eg1800/test"]
    assert kept["n_images"] == printed["n_images"] == 264
    assert kept["miou"] == printed["miou"] and kept["input_size"] == 256
    assert not any(isinstance(v, list) for k, v in kept.items() if k != "input_size")
