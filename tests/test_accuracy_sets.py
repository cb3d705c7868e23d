"""Per-set evaluation, the paired bootstrap and the IoU conventions (bench.measure.accuracy), on real fixtures."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from archs import get_spec
from bench.measure.accuracy import evaluate_fn, evaluate_sets, iou_conventions, model_input_predictor, paired_bootstrap
from bench.data.samples import iter_pairs
from bench.data.datasets import open_dataset
from bench.models.weights import load_model


@pytest.fixture(scope="module")
def few(data_dir):
    return open_dataset(data_dir / "eg1800", split="test")[:4]


def _blob(hw):
    p = np.zeros(hw, np.float32)
    p[hw[0] // 4:, hw[1] // 4: 3 * hw[1] // 4] = 0.9
    return p


def test_conventions_per_image_at_image_is_the_suite_protocol(few):
    hw = (32, 48)
    conv = iou_conventions(lambda img: _blob(hw), few, hw)
    back = evaluate_fn(lambda img: cv2.resize(_blob(hw), (img.shape[1], img.shape[0]),
                                              interpolation=cv2.INTER_LINEAR), few, hw)
    assert conv.n_images == 4 and conv.fg_per_image_at_image == pytest.approx(back.miou, abs=1e-12)
    assert conv.fg_pooled_at_image == pytest.approx(back.iou_dataset, abs=1e-12)
    # a perfect predictor at the input scores 1 at the input under every convention
    labels = {id(s): lab for s, _, lab in iter_pairs(few)}
    it = iter(few)

    def perfect(img):
        lab = labels[id(next(it))]
        return cv2.resize((lab > 0.5).astype(np.uint8), hw[::-1], interpolation=cv2.INTER_NEAREST).astype(np.float32)

    p = iou_conventions(perfect, few, hw)
    assert p.fg_per_image_at_input == p.fg_pooled_at_input == p.twoclass_pooled_at_input == 1.0
    assert p.fg_per_image_at_image < 1.0  # upsampling a 32 x 48 mask loses the edges
    with pytest.raises(ValueError, match="expected"):
        iou_conventions(lambda img: _blob((8, 8)), few, hw)


def test_paired_bootstrap_is_paired_and_checks_the_images(few):
    lm = load_model("esp_dense_seg", "random")
    recs = evaluate_sets(lm.model, {"eg1800/test": few, "eg1800/test-2": few[:2]}, 64, lm.preprocess,
                         lm.spec.output_kind)
    a = recs["eg1800/test"]
    assert recs["eg1800/test-2"].n_images == 2 and a.n_images == 4
    same = paired_bootstrap(a, a)
    assert same.diff_miou == 0 and same.diff_ci_low == same.diff_ci_high == 0 and not same.significant
    better = dataclasses.replace(a, per_image_iou=tuple(v + 0.05 for v in a.per_image_iou), miou=a.miou + 0.05)
    d = paired_bootstrap(better, a)
    assert d.diff_miou == pytest.approx(0.05) and d.diff_ci_low == pytest.approx(0.05) and d.significant
    assert d.p_two_sided == 0.0
    mixed = dataclasses.replace(a, per_image_iou=tuple(v + (0.3 if i % 2 else -0.3) for i, v in enumerate(a.per_image_iou)))
    m = paired_bootstrap(mixed, a)
    assert m.diff_ci_low < 0 < m.diff_ci_high and not m.significant
    with pytest.raises(ValueError, match="same images"):
        paired_bootstrap(a, recs["eg1800/test-2"])


def test_model_input_predictor_shape(few):
    spec = get_spec("esp_dense_seg")
    lm = load_model("esp_dense_seg", "random")
    pred = model_input_predictor(lm.model, 64, lm.preprocess, spec.output_kind)
    _, img, _ = next(iter_pairs(few))
    assert pred(img).shape == (64, 64)


@pytest.mark.slow
def test_eval_cli_reads_the_eg1800_test_split(data_dir, capsys):
    import json

    import run_bench
    code = run_bench.main(["eval", "--arch", "esp_dense_seg", "--weights", "random", "--data",
                           str(data_dir / "eg1800"), "--split", "test", "--size", "64", "--json"])
    assert code == 0
    row = json.loads(capsys.readouterr().out)
    row = row[0] if isinstance(row, list) else row
    assert row["n_images"] == 264 and row["split"] == "test" and 0 <= row["miou"] <= 1
