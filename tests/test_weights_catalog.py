"""One typed catalog of each model's weights (bench.models.weights.weights_catalog), read by the plan,
``eval --weights``, the gate and the model sources."""
from __future__ import annotations

import pytest

import bench.models.weights as weights
from archs import get_spec, list_archs
from bench.models.sources import get_source
from bench.models.weights import planned_weights, weights_catalog, weights_names


@pytest.mark.parametrize("arch", list_archs(peers=True))
def test_catalog_is_every_name_a_design_takes(arch):
    spec = get_spec(arch)
    cat = weights_catalog(spec)
    assert set(cat) == set(weights_names(spec)) and cat["random"].path() is None
    for c in spec.checkpoints:  # the published ones come from the spec, with their preprocessing
        w = cat[c.name]
        assert (w.origin, w.file, w.preprocess, w.reference_miou) == ("published", c.relpath, c.preprocess,
                                                                      c.reference_miou)
        assert get_source(arch).preprocess(c.name) == c.preprocess
    assert cat["trained"].path().name == f"{arch}.pt" and "train --arch " + arch in cat["trained"].make
    assert cat["finetuned"].make.endswith("--init seed")
    assert get_source(arch).preprocess("trained") == spec.preprocess


def test_the_plan_and_the_gate_read_the_catalog(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "CHECKPOINTS_DIR", tmp_path)
    assert planned_weights("seg_matting") == ["seed", "trained"]
    (tmp_path / "seg_matting-finetuned.pt").write_bytes(b"")  # present: planned, by name
    assert planned_weights("seg_matting") == ["seed", "trained", "finetuned"]
    assert planned_weights("seg_matting", ("own", "published"), if_present=False) == ["trained", "seed"]
    assert planned_weights("mobilenet_dilate_unet") == ["trained"]


def test_a_missing_own_checkpoint_names_the_command_that_makes_it(tmp_path):
    with pytest.raises(weights.WeightsError, match="run_bench.py train --arch seg_matting --init seed"):
        weights.load_model("seg_matting", "finetuned", checkpoints_dir=tmp_path)
