"""Training smoke tests: 4 real images at 64 px, a few steps, one thread (well under 30 s in total).

Checks that the loss goes down, that a run is a function of its seed, that an interrupted run
resumed from its saved state ends with exactly the same weights, and that the fp16 checkpoint it
writes loads through ``--weights trained`` and reproduces the recorded validation numbers.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import run_bench
from archs import get_spec
from bench.data.samples import scan_folder
from bench.train.loop import (CALIB_STEPS, Recipe, TrainState, _cache_item, _Item, compute_loss, lr_at,
                              make_batch, make_example, train)
from bench.models.weights import load_model
from bench.train.checkpoints import load_state, save_state, write_trained_checkpoint

ARCH = "esp_dense_seg"  # small, input multiple 16
PLAIN = Recipe(train_size=64, eval_size=64, batch_size=4, evals=2, val_at_start=True, crop_area=(1.0, 1.0),
               jitter=0.0, hflip=0.0, composite_prob=0.0)  # no augmentation: the loss must fall on 4 images
AUG = Recipe(train_size=64, eval_size=64, batch_size=4, evals=2, val_at_start=True, composite_prob=0.5)


@pytest.fixture(scope="module")
def sets(data_dir):
    hsd = scan_folder(data_dir / "hsd")
    ais = scan_folder(data_dir / "aisegment-40")
    return {"hsd": hsd[:3], "aisegment-40": ais[:1]}, {"hsd": hsd[-2:]}


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _run(sets, recipe=PLAIN, steps=10, **kw):
    losses = []

    def prog(p):
        if p.phase == "train":
            losses.append(p.loss)

    model, rec = train(ARCH, recipe, *sets, steps=steps, threads=1, on_progress=prog, **kw)
    return model, rec, losses


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_loss_decreases_and_record_is_complete(sets):
    _, rec, losses = _run(sets, steps=12)
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert rec.steps == 12 and rec.images_seen == 48 and rec.init == "scratch"
    assert rec.train_stems["hsd"] == [s.stem for s in sets[0]["hsd"]]
    assert not set(rec.train_stems["hsd"]) & set(rec.val_stems["hsd"])
    assert [c["step"] for c in rec.curve] == [0, 6, 12]  # step 0, every total/evals steps, final
    assert set(rec.val) >= {"miou", "miou_ci_low", "miou_ci_high", "boundary_f", "n_images"}
    assert rec.val_by_set["hsd"]["miou"] == pytest.approx(rec.val["miou"])  # one val set here


def test_same_seed_same_weights_other_seed_differs(sets):
    a, ra, _ = _run(sets, recipe=AUG, steps=6)
    b, rb, _ = _run(sets, recipe=AUG, steps=6)
    assert _same_weights(a, b) and ra.val["miou"] == rb.val["miou"]
    assert [c["val_miou"] for c in ra.curve] == [c["val_miou"] for c in rb.curve]
    c, _, _ = _run(sets, recipe=Recipe(**{**AUG.__dict__, "seed": 1}), steps=6)
    assert not _same_weights(a, c)


def test_resume_from_saved_state_ends_identical(sets, tmp_path):
    states = []
    full, rec_full, _ = _run(sets, recipe=AUG, steps=8, on_state=states.append)
    mid = [s for s in states if s.step == 4]
    assert len(mid) == 1
    path = tmp_path / "s.state.pt"
    save_state(mid[0], path)  # through the file, as `train --resume` does
    state = load_state(path)
    assert isinstance(state, TrainState) and state.step == 4 and state.total_steps == 8
    resumed, rec_res = train(ARCH, AUG, *sets, resume=state, threads=1)
    assert _same_weights(full, resumed)
    assert rec_res.steps == 8 and rec_res.val["miou"] == rec_full.val["miou"]
    with pytest.raises(ValueError, match="another design or recipe"):
        train(ARCH, PLAIN, *sets, resume=state, threads=1)


def test_fp16_checkpoint_loads_as_trained_and_matches_record(sets, tmp_path):
    model, rec, _ = _run(sets, steps=4)
    split_files = [tmp_path / "x_val.txt"]
    split_files[0].write_text("a\n")
    pt, js = write_trained_checkpoint(model, rec, tmp_path, ARCH, split_files)
    state = torch.load(pt, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    lm = load_model(ARCH, "trained", checkpoints_dir=tmp_path)
    assert _same_weights(lm.model, model)  # train() rounded the model to fp16: nothing lost
    prov = json.loads(js.read_text())
    assert prov["steps"] == 4 and prov["recipe"]["train_size"] == 64 and len(prov["splits"]["sha256"]) == 64
    assert prov["validation"]["all"]["miou"] == pytest.approx(rec.val["miou"])
    assert prov["reproduce"].startswith(f"python run_bench.py train --arch {ARCH} --steps 4 --seed 0")
    assert prov["checkpoint"]["sha256"] and "cpu" in prov["machine"] and "commit" in prov
    from bench.measure.accuracy import evaluate
    again = evaluate(lm.model, sets[1]["hsd"], 64, lm.preprocess, lm.spec.output_kind)
    assert again.miou == pytest.approx(rec.val["miou"], abs=1e-9)


def test_a_statistic_beyond_fp16_stays_fp32_instead_of_becoming_inf(sets, tmp_path):
    """esp_dense_seg's 30-minute run grew a BatchNorm running variance above 65504: rounding it to
    fp16 gave inf and dropped validation mIoU from 0.73 to 0.63. Such a tensor is kept fp32."""
    from bench.train.loop import fits_fp16, round_to_fp16
    model, rec, _ = _run(sets, steps=2)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    big = torch.full_like(bn.running_var, 1e5)
    bn.running_var.copy_(big)
    assert not fits_fp16(bn.running_var) and fits_fp16(bn.running_mean) and fits_fp16(torch.empty(0))
    assert not fits_fp16(torch.tensor([float("nan")]))
    round_to_fp16(model)
    assert torch.equal(bn.running_var, big)  # untouched, not inf
    split_files = [tmp_path / "x_val.txt"]
    split_files[0].write_text("a\n")
    pt, js = write_trained_checkpoint(model, rec, tmp_path, ARCH, split_files)
    state = torch.load(pt, weights_only=True)
    wide = [k for k, v in state.items() if v.dtype == torch.float32]
    assert len(wide) == 1 and wide[0].endswith("running_var") and torch.equal(state[wide[0]], big)
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert json.loads(js.read_text())["checkpoint"]["fp32_tensors"] == wide
    assert _same_weights(load_model(ARCH, "trained", checkpoints_dir=tmp_path).model, model)


def test_eval_cli_json_on_a_trained_fp16_file(sets, tmp_path, data_dir, capsys):
    model, rec, _ = _run(sets, steps=2)
    pt, _ = write_trained_checkpoint(model, rec, tmp_path, ARCH, [])
    code = run_bench.main(["eval", "--arch", ARCH, "--weights", str(pt), "--data", str(data_dir / "aisegment-40"),
                           "--split", "val", "--size", "64", "--json"])
    assert code == 0
    row = json.loads(capsys.readouterr().out)
    assert {"miou", "miou_ci_low", "miou_ci_high", "boundary_f", "n_images", "sad_k", "mse_x1e3", "grad_k"} <= set(row)
    assert row["n_images"] == 8 and row["split"] == "val" and row["n_alpha"] == 8


def test_time_budget_becomes_a_recorded_step_count(sets):
    r = Recipe(**{**PLAIN.__dict__, "evals": 0})
    _, rec = train(ARCH, r, sets[0], {}, minutes=1e-4, threads=1)
    assert rec.steps == CALIB_STEPS[1]  # budget used up: stops right after the timed steps


def test_seg_matting_loss_has_alpha_term():
    spec = get_spec("seg_matting")
    torch.manual_seed(0)
    label = torch.rand(2, 1, 32, 32)
    seg = torch.zeros(2, 2, 32, 32)
    r = Recipe()
    base = compute_loss((seg, label.clone()), label, spec.output_kind, r)
    worse = compute_loss((seg, torch.zeros_like(label)), label, spec.output_kind, r)
    assert worse - base == pytest.approx(label.abs().mean().item(), rel=1e-5)
    logits = compute_loss(torch.zeros(2, 1, 32, 32), label, "logits", r)
    assert base.item() == pytest.approx(logits.item(), rel=1e-6)  # 2-class softmax == sigmoid of diff


def test_lr_schedule():
    r = Recipe()
    assert lr_at(r, 0, 1000) == pytest.approx(r.lr / r.warmup_steps)
    assert lr_at(r, r.warmup_steps - 1, 1000) == pytest.approx(r.lr)
    assert lr_at(r, r.warmup_steps, 1000) == pytest.approx(r.lr)
    assert lr_at(r, 1000, 1000) == pytest.approx(r.lr * r.min_lr_frac)
    assert lr_at(r, 10, 50) == lr_at(r, 10, 5000)  # warm-up does not depend on the run length


def test_batches_are_deterministic_and_composites_keep_labels(sets):
    pre = get_spec(ARCH).preprocess
    items = [_cache_item(s, 96) for s in sets[0]["hsd"] + sets[0]["aisegment-40"]]
    x1, y1 = make_batch(items, 3, AUG, pre)
    x2, y2 = make_batch(items, 3, AUG, pre)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == (4, 3, 64, 64) and y1.shape == (4, 1, 64, 64)
    assert 0 <= y1.min() and y1.max() <= 1
    always = Recipe(**{**AUG.__dict__, "composite_prob": 1.0, "crop_area": (1.0, 1.0), "jitter": 0.0,
                       "hflip": 0.0})
    bg = _Item(np.full((80, 80, 3), 50, np.uint8), np.zeros((80, 80), np.uint8), False)  # no person
    fg_alpha = np.zeros((100, 60), np.uint8)
    fg_alpha[20:, 10:50] = 255
    fg = _Item(np.full((100, 60, 3), 200, np.uint8), fg_alpha, True)
    img, lab = make_example([bg, fg], 0, np.random.default_rng(0), always, pre)
    assert lab.max() == 1.0 and lab.mean() > 0.1  # the pasted person is foreground
    person = lab > 0.99
    bgr_mean = np.asarray(pre.mean, np.float32)[:, None]
    pix = img.reshape(3, -1) * pre.scale + bgr_mean  # back to 0..255
    assert np.allclose(pix[:, person.ravel()], 200, atol=1) and np.allclose(pix[:, (lab == 0).ravel()], 50, atol=1)


def test_train_help():
    with pytest.raises(SystemExit) as exc:
        run_bench.main(["train", "--help"])
    assert exc.value.code == 0


def test_worker_processes_make_the_same_batches_and_weights(sets):
    a, ra, _ = _run(sets, recipe=AUG, steps=4)
    b, rb, _ = _run(sets, recipe=AUG, steps=4, workers=1)
    assert _same_weights(a, b) and ra.val["miou"] == rb.val["miou"]
    assert rb.workers == 1 and ra.workers == 0 and rb.device == "cpu"
    assert rb.wall_seconds >= rb.train_seconds + rb.val_seconds - 0.5 and rb.load_seconds >= 0


def test_decoded_image_cache_is_content_keyed_and_exact(sets, tmp_path):
    from bench.train.loop import item_cache_key
    s = sets[0]["hsd"][0]
    plain = _cache_item(s, 96)
    first = _cache_item(s, 96, tmp_path)
    again = _cache_item(s, 96, tmp_path)  # read back from the file
    assert len(list(tmp_path.glob("*.npz"))) == 1
    for it in (first, again):
        assert np.array_equal(it.image, plain.image) and np.array_equal(it.label, plain.label)
    assert item_cache_key(s, 96) != item_cache_key(s, 128) != item_cache_key(sets[0]["hsd"][1], 96)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU exists here: the cuda path runs instead")
def test_cuda_without_a_gpu_is_a_clear_error(sets, capsys):
    with pytest.raises(ValueError, match="no CUDA GPU"):
        train(ARCH, PLAIN, *sets, steps=1, device="cuda")
    assert run_bench.main(["train", "--arch", ARCH, "--steps", "1", "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


@pytest.mark.slow
def test_state_between_validations_resumes_to_the_same_weights(sets, tmp_path):
    """A long run saves its state every ``state_every_s`` seconds between validations too; resuming
    from such a mid-interval step ends exactly where the uninterrupted run does."""
    states = []
    full, rec_full, _ = _run(sets, recipe=AUG, steps=8, on_state=states.append, state_every_s=0.0)
    assert {s.step for s in states} == set(range(1, 9))  # every step (0 s apart), the validations, the end
    mid = next(s for s in states if s.step == 3)  # not a validation step (those are 4 and 8)
    save_state(mid, tmp_path / "s.state.pt")
    resumed, rec_res = train(ARCH, AUG, *sets, resume=load_state(tmp_path / "s.state.pt"), threads=1)
    assert _same_weights(full, resumed) and rec_res.steps == 8
    assert [c["step"] for c in rec_res.curve] == [c["step"] for c in rec_full.curve]
    quiet = []
    _run(sets, recipe=AUG, steps=8, on_state=quiet.append)  # default: 10 minutes apart, so only validations
    assert [s.step for s in quiet] == [4, 8]


def test_recipe_data_is_read_through_the_recipes_own_splits(data_dir):
    """What `train` and a sweep's train job train on: each set through the recipe's split of it
    (aisegment-40's ``train-v2``, which leaves out EG1800 evaluation photos), validation on ``val``."""
    from bench.data.datasets import split_path, split_stems
    from bench.train.session import open_recipe_sets

    r = Recipe()
    train_sets, val_sets, files = open_recipe_sets(r, data_dir)
    assert list(train_sets) == list(val_sets) == list(r.train_sets)
    for name, split in zip(r.train_sets, r.train_splits):
        assert [s.stem for s in train_sets[name]] == split_stems(name, split)
        assert [s.stem for s in val_sets[name]] == split_stems(name, r.val_split)
    assert len(train_sets["aisegment-40"]) == 27 and len(val_sets["eg1800"]) == 134
    assert set(files) == {split_path(n, sp) for n, tr in zip(r.train_sets, r.train_splits) for sp in (tr, r.val_split)}
