"""Conversion for ncnn (pnnx) and its content-keyed cache: keys, build-once, per-layer times on
tiny real modules (a few seconds in all).

(Split by topic from the one latency test module; shared stand-ins are in helpers.py.)
"""
from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import bench.backends as backends
import bench.run.adapters  # noqa: F401  registers the latency measurement
from archs import LOGITS, SEG_ALPHA, list_archs
from bench.backends import (ParityRecord, Runner, check_parity, conversion_key, read_param_io, state_dict_digest)
from bench.cache import fill_once
from helpers import HAVE_NCNN, needs_ncnn

HAVE_NCNN = backends.backend_missing("ncnn") is None

# ----------------------------------------------------------------------------- cache keys and cache

class Tiny(nn.Module):
    def __init__(self, two_outputs: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Conv2d(4, 1, 1)
        self.two_outputs = two_outputs

    def forward(self, x):
        y = self.head(torch.relu(self.bn(self.conv(x))))
        return (y, torch.sigmoid(y)) if self.two_outputs else y


def _tiny(seed=0, two_outputs=False) -> nn.Module:
    torch.manual_seed(seed)
    m = Tiny(two_outputs).eval()
    with torch.no_grad():  # non-trivial BN statistics
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
    return m


def test_state_dict_digest_sees_parameters_and_buffers():
    a, b = _tiny(), _tiny()
    assert state_dict_digest(a) == state_dict_digest(b)
    with torch.no_grad():
        b.conv.weight[0, 0, 0, 0] += 1e-6
    assert state_dict_digest(a) != state_dict_digest(b)
    c = _tiny()
    with torch.no_grad():
        c.bn.running_var[0] += 1e-3
    assert state_dict_digest(a) != state_dict_digest(c)


def test_conversion_key_changes_with_each_input():
    base = dict(weights_digest="ab", arch="x", input_size=256, converter="pnnx", converter_version="1",
                options={"fp16": False})
    k = conversion_key(**base)
    assert k == conversion_key(**base) and len(k) == 64
    for change in [dict(weights_digest="ac"), dict(arch="y"), dict(input_size=128),
                   dict(converter_version="2"), dict(options={"fp16": True}), dict(converter="torch.onnx")]:
        assert conversion_key(**{**base, **change}) != k, change


def test_cache_builds_once_and_leaves_nothing_on_failure(tmp_path):
    calls = []

    def build(tmp: Path) -> dict:
        calls.append(tmp)
        (tmp / "model.bin").write_bytes(b"x")
        return {"n": len(calls)}

    folder = tmp_path / "ncnn" / "key1"
    assert fill_once(folder, build) == {"n": 1}
    assert fill_once(folder, build) == {"n": 1} and len(calls) == 1
    assert (folder / "model.bin").is_file() and not calls[0].exists()  # built in a temp folder

    def broken(tmp: Path) -> dict:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("converter crashed")

    with pytest.raises(RuntimeError):
        fill_once(tmp_path / "ncnn" / "key2", broken)
    assert sorted(p.name for p in (tmp_path / "ncnn").iterdir()) == ["key1"]


def test_read_param_io(tmp_path):
    param = tmp_path / "m.param"
    param.write_text("7767517\n5 6\nInput in0 0 1 in0\nSplit s 1 2 in0 a b\n"
                     "Convolution c1 1 1 a out10 0=1\nConvolution c2 1 1 b c 0=1\nSigmoid s2 1 1 c out2\n")
    assert read_param_io(param) == (("in0",), ("out2", "out10"))
    bad = tmp_path / "bad.param"
    bad.write_text("hello\n")
    with pytest.raises(backends.ConversionError):
        read_param_io(bad)


@needs_ncnn
@pytest.mark.parametrize("two_outputs", [False, True])
def test_ncnn_conversion_is_cached_runs_and_matches_torch(tmp_path, monkeypatch, two_outputs):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    model = _tiny(two_outputs=two_outputs)
    nm = backends.convert_module_to_ncnn(model, "tiny", 32, cache_dir=tmp_path / "cache")
    folder = Path(nm.param_path).parent
    assert folder.parent == tmp_path / "cache" / "ncnn" and Path(nm.bin_path).is_file()
    assert list(cwd.iterdir()) == []  # pnnx's side files stay in the cache folder
    assert nm.in_names == ("in0",) and nm.out_names == (("out0", "out1") if two_outputs else ("out0",))
    assert nm.pnnx_version == backends.package_version("pnnx") and nm.bin_size_mb > 0
    assert json.loads((folder / "meta.json").read_text())["cache_key"] == nm.cache_key

    def no_converter(*a, **k):
        raise AssertionError("pnnx ran again although the conversion is cached")
    monkeypatch.setattr(backends.convert.subprocess, "run", no_converter)
    assert backends.convert_module_to_ncnn(model, "tiny", 32, cache_dir=tmp_path / "cache") == nm

    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)).numpy()
    with backends.TorchRunner(model, 1) as tr, backends.NcnnRunner(nm, 1) as nr:
        p = check_parity(tr.infer(x), nr.infer(x), SEG_ALPHA if two_outputs else LOGITS)
        # a float64 input is converted to a float32 copy that ncnn's Mat points into without owning
        # it: the bound callable must keep that copy alive (else ncnn reads freed memory)
        run = nr.bind(x.astype(np.float64))
        gc.collect()
        _ = [np.full((3, 32, 32), 1e6, np.float32) for _ in range(64)]  # reuse freed memory if any
        got, want = np.array(run()[0][1]), nr.infer(x)[0][0]
    assert p.ok, p.reason
    np.testing.assert_allclose(got, want, atol=1e-5)


@needs_ncnn
def test_ncnn_conversion_key_depends_on_weights_and_size(tmp_path):
    a = backends.convert_module_to_ncnn(_tiny(0), "tiny", 32, cache_dir=tmp_path)
    b = backends.convert_module_to_ncnn(_tiny(1), "tiny", 32, cache_dir=tmp_path)
    c = backends.convert_module_to_ncnn(_tiny(0), "tiny", 64, cache_dir=tmp_path)
    assert len({a.cache_key, b.cache_key, c.cache_key}) == 3


def test_time_by_type_groups_and_sorts():
    lts = [backends.LayerTime(0, "a", "Convolution", 2.0), backends.LayerTime(1, "b", "ReLU", 0.5),
           backends.LayerTime(2, "c", "Convolution", 1.0)]
    assert backends.time_by_type(lts) == [("Convolution", 3.0, 2), ("ReLU", 0.5, 1)]


@needs_ncnn
def test_ncnn_layer_times_cover_every_layer(tmp_path):
    nm = backends.convert_module_to_ncnn(_tiny(), "tiny", 32, cache_dir=tmp_path)
    x = np.zeros((1, 3, 32, 32), np.float32)
    lts = backends.ncnn_layer_times(nm, x, threads=1, repeats=2)
    names = [parts[1] for parts in (ln.split() for ln in Path(nm.param_path).read_text().splitlines()[2:])
             if parts and parts[0] != "Input"]
    assert [lt.name for lt in lts] == names and all(lt.ms >= 0 for lt in lts)
    assert lts[-1].out_shape == "1x32x32"
