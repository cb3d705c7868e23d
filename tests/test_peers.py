"""Published peers: SINet and ExtremeC3Net rebuilt in PyTorch (the registry checks of test_archs.py,
strict loading of the official weights, accuracy), and the runtime peers of bench/models/peers.py
(MediaPipe selfie on LiteRT, PP-HumanSeg lite on onnxruntime and, converted with pnnx, on ncnn).

Accuracy runs on a fixed subset of shared/data/hsd: every 11th stem in sorted order (20 images).
The floors are the measured subset mIoU minus 0.02 (full-set figures are in docs/peers.md).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os

from pathlib import Path

import numpy as np
import pytest
import torch

import archs.extremec3  # noqa: F401  registers the peer designs even if archs/__init__ does not
import archs.sinet  # noqa: F401
from archs import LOGITS, create_arch, get_spec, list_archs
from bench.models import peers
from bench.measure.accuracy import evaluate
from bench.measure.complexity import count_macs_fvcore
from bench.data.samples import read_image, scan_folder
from bench.run.jobs import Skip
from bench.models.weights import load_model

PEER_ARCHS = ["sinet", "extremec3"]
PAPER_PARAMS_M = {"sinet": 0.087, "extremec3": 0.038}  # the papers / the official README
EXACT_PARAMS = {"sinet": 86_910, "extremec3": 37_738}
SUBSET_FLOOR = {"sinet": 0.50, "extremec3": 0.62,  # measured on the subset: 0.5276, 0.6467
                "mediapipe_selfie": 0.81, "mediapipe_selfie_landscape": 0.80,  # 0.8332, 0.8225
                "pphumanseg_lite": 0.71}  # 0.7367 (onnxruntime and ncnn alike)
GRAPH = {  # params and MACs read from the graphs (deterministic for the hash-checked files)
    "mediapipe_selfie": (106_401, 59_215_744),
    "mediapipe_selfie_landscape": (106_401, 33_324_928),
    "pphumanseg_lite": (128_924, 251_262_480),
}


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _need(runtime: str) -> None:
    """Skip (outside CI) when a runtime package is missing; in CI a missing package fails."""
    why = peers.runtime_missing(runtime)
    if why and not os.environ.get("CI"):
        pytest.skip(why)


@pytest.fixture(scope="module")
def subset(data_dir):
    return scan_folder(data_dir / "hsd")[::11]


# ----------------------------------------------------------------------------- SINet, ExtremeC3Net

def test_peer_designs_are_listed_only_with_peers():
    for name in PEER_ARCHS:
        assert name in list_archs(peers=True)
        assert name not in list_archs()
        assert get_spec(name).peer


@pytest.mark.parametrize("name", PEER_ARCHS)
def test_official_weights_load_strictly_and_match_the_paper(name, models_dir):
    lm = load_model(name, "official", models_dir)  # strict load after the SHA-256 check
    n = sum(p.numel() for p in lm.model.parameters())
    assert n == EXACT_PARAMS[name] == get_spec(name).ref_params
    assert round(n / 1e6, 3) == PAPER_PARAMS_M[name]
    assert lm.preprocess.std is not None and lm.preprocess.channel_order == "BGR"


# Forward shapes, backward, wrong-size errors, trace and export of SINet / ExtremeC3Net are
# checked by tests/test_archs.py, which is parametrized over list_archs(peers=True).


@pytest.mark.parametrize("name", PEER_ARCHS)
def test_fvcore_macs_match_the_spec(name):
    c = count_macs_fvcore(create_arch(name), 224)
    assert not c.unsupported_ops
    assert round(c.macs / 1e9, 4) == get_spec(name).ref_macs_g


def test_sinet_gate_is_the_softmax_confidence():
    model = create_arch("sinet")
    s = torch.randn(2, 2, 9, 9) * 4
    torch.testing.assert_close(model._confidence(s), torch.softmax(s, 1).amax(1, keepdim=True))


def test_sinet_logit_is_the_two_class_difference(models_dir):
    model = load_model("sinet", "official", models_dir).model
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        two = model.forward_classes(x)
        torch.testing.assert_close(model(x), two[:, 1:2] - two[:, 0:1])


@pytest.mark.parametrize("name", PEER_ARCHS)
def test_official_accuracy_on_subset(name, models_dir, subset):
    torch.set_num_threads(1)
    lm = load_model(name, "official", models_dir)
    rec = evaluate(lm.model, subset, 224, lm.preprocess, lm.spec.output_kind)
    assert rec.n_images == 20
    assert rec.miou >= SUBSET_FLOOR[name], rec.miou


def test_per_channel_std_preprocess():
    from bench.measure.accuracy import to_input
    img = np.full((8, 8, 3), (10, 20, 30), np.uint8)  # RGB
    pre = get_spec("sinet").checkpoint("official").preprocess
    x = to_input(img, 8, pre)[0, :, 0, 0].numpy()
    expected = [(v - m) / s / 255 for v, m, s in zip((30, 20, 10), pre.mean, pre.std)]  # BGR
    np.testing.assert_allclose(x, expected, rtol=1e-6)
    no_std = dataclasses.replace(pre, std=None)
    np.testing.assert_allclose(to_input(img, 8, no_std)[0, :, 0, 0].numpy(),
                               [(v - m) / 255 for v, m in zip((30, 20, 10), pre.mean)], rtol=1e-6)


# ----------------------------------------------------------------------------- runtime peers

def test_peer_registry():
    assert peers.list_peers() == ["mediapipe_selfie", "mediapipe_selfie_landscape", "pphumanseg_lite"]
    with pytest.raises(KeyError, match="known peers"):
        peers.get_peer("mediapipe")
    for name in peers.list_peers():
        spec = peers.get_peer(name)
        assert spec.runtime in ("litert", "onnxruntime") and spec.license


def test_missing_file_or_runtime_is_a_skip(tmp_path, monkeypatch):
    with pytest.raises(Skip, match="not found"):
        peers.peer_file("pphumanseg_lite", tmp_path)
    with pytest.raises(Skip):
        peers.load_peer("pphumanseg_lite", tmp_path)
    with pytest.raises(Skip):
        peers.graph_stats("mediapipe_selfie", tmp_path)
    import bench.backends.table as table
    real = table.package_version
    monkeypatch.setattr(table, "package_version", lambda dist: None if dist == "ai-edge-litert" else real(dist))
    with pytest.raises(Skip, match="litert backend needs the ai-edge-litert package"):
        peers.load_peer("mediapipe_selfie")


@pytest.mark.parametrize("name", sorted(peers.PEERS))
def test_peer_runs_and_output_shape(name, models_dir, data_dir):
    spec = peers.get_peer(name)
    _need(spec.runtime)
    img = read_image(scan_folder(data_dir / "hsd")[0].image_path)
    with peers.load_peer(name, models_dir, threads=1) as r:
        x = r.prepare(img)
        h, w = spec.input_hw
        assert x.shape == ((1, h, w, 3) if spec.input_layout == "NHWC" else (1, 3, h, w))
        fg = r.foreground(r.run(x))
        assert fg.shape == (h, w) and fg.dtype == np.float32
        # a backends.base.Runner like every other: its backend is the runtime, infer the raw output
        from bench.backends.base import Runner
        assert isinstance(r, Runner) and r.backend == spec.runtime and r.threads == 1
        assert np.array_equal(r.infer(x)[0], r.run(x))
        prob = r.predict_prob(img)
    assert prob.shape == img.shape[:2]
    assert 0.0 <= prob.min() and prob.max() <= 1.0 and 0.02 < (prob > 0.5).mean() < 0.98


@pytest.mark.parametrize("name, runtime", [(n, rt) for n, p in sorted(peers.PEERS.items())
                                           for rt in (p.runtime, *(("ncnn",) if p.runtime == "onnxruntime" else ()))])
def test_model_size_mb_is_1e6_bytes(name, runtime, models_dir):
    """``model_size_mb`` is the model file in MB of 10^6 bytes, as every *_mb field of the suite (the
    peers once used MiB, so the column mixed the two)."""
    _need(runtime)
    with peers.load_peer(name, models_dir, threads=1, runtime=runtime) as r:
        size_mb = r.model_size_mb
        path = (Path(r._runner.nm.bin_path) if runtime == "ncnn"
                else models_dir / peers.get_peer(name).relpath)
    assert size_mb == round(path.stat().st_size / 1e6, 4)
    assert size_mb != round(path.stat().st_size / 2**20, 4)


@pytest.mark.parametrize("name", sorted(peers.PEERS))
def test_peer_accuracy_on_subset(name, models_dir, subset):
    _need(peers.get_peer(name).runtime)
    rec = peers.evaluate_peer(name, subset, models_dir, threads=1)
    assert rec.n_images == 20 and rec.input_size == peers.get_peer(name).input_hw
    assert rec.miou >= SUBSET_FLOOR[name], rec.miou
    assert rec.miou_ci_low <= rec.miou <= rec.miou_ci_high


@pytest.mark.parametrize("name", sorted(peers.PEERS))
def test_graph_stats(name, models_dir):
    spec = peers.get_peer(name)
    if spec.runtime == "litert":
        _need("litert")
    elif importlib.util.find_spec("onnx") is None and not os.environ.get("CI"):
        pytest.skip("onnx not installed")
    g = peers.graph_stats(name, models_dir)
    assert (g.params, g.macs) == GRAPH[name]
    assert g.params_source == g.macs_source == "graph"
    assert g.macs_g == pytest.approx(g.macs / 1e9) and g.uncounted_ops


def test_prepare_onnx_for_pnnx_keeps_the_computation(models_dir):
    _need("onnxruntime")
    import onnx
    import onnxruntime as ort
    path = peers.peer_file("pphumanseg_lite", models_dir)
    prepared, changes = peers.prepare_onnx_for_pnnx(onnx.load(str(path)))
    assert sum("split" in c for c in changes) == 10 and sum("roi" in c for c in changes) == 2
    x = np.random.default_rng(0).random((1, 3, 224, 398), dtype=np.float32)
    a = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    b = ort.InferenceSession(prepared.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(a, b)


def test_pphumanseg_ncnn_parity_and_accuracy(models_dir, subset, tmp_path):
    for rt in ("onnxruntime", "ncnn"):
        _need(rt)
    if importlib.util.find_spec("pnnx") is None and not os.environ.get("CI"):
        pytest.skip("pnnx not installed")
    par = peers.ncnn_parity("pphumanseg_lite", subset, models_dir, cache_dir=tmp_path)
    assert par.ok, par.reason
    assert par.n_images == 20 and par.max_abs_diff < 1e-3 and par.min_mask_iou > 0.999
    rec = peers.evaluate_peer("pphumanseg_lite", subset, models_dir, runtime="ncnn", cache_dir=tmp_path)
    assert rec.miou >= SUBSET_FLOOR["pphumanseg_lite"]
