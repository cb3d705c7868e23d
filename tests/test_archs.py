"""Every registered design gets the same checks (timm-style, parametrized over the registry)."""
from __future__ import annotations

import pytest
import torch

import archs
from archs import LOGITS, SEG_ALPHA, create_arch, get_spec, list_archs
from archs.registry import ArchSpec, register_arch

EXPECTED = {"mobilenet_dilate_unet", "shuffle_seg_skipnet", "esp_dense_seg",
            "residualdense_bisenet", "seg_matting"}
ALL = list_archs(peers=True)  # the five designs and the torch peers get the same checks


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def test_registry_has_the_five_designs():
    assert set(list_archs()) == EXPECTED
    assert {"sinet", "extremec3"} <= set(ALL)


def test_list_archs_pattern():
    assert list_archs("seg_*") == ["seg_matting"]
    assert list_archs("*_unet") == ["mobilenet_dilate_unet"]
    assert list_archs("nothing*") == []


def test_unknown_name_lists_known_names():
    with pytest.raises(KeyError) as err:
        create_arch("mobilenet_unet")
    for name in EXPECTED:
        assert name in str(err.value)


def test_duplicate_registration_is_refused():
    spec = ArchSpec("seg_matting", 32, 32, LOGITS, 1, 0.1)
    with pytest.raises(ValueError, match="registered twice"):
        register_arch(spec)(lambda: torch.nn.Identity())


@pytest.mark.parametrize("name", ALL)
def test_param_count_matches_reference_exactly(name):
    model = create_arch(name)
    assert sum(p.numel() for p in model.parameters()) == get_spec(name).ref_params


@pytest.mark.parametrize("name", ALL)
def test_spec_is_consistent(name):
    spec = get_spec(name)
    assert spec.name == name
    assert spec.output_kind in (LOGITS, SEG_ALPHA)
    assert spec.output_stride % spec.input_multiple == 0 or spec.input_multiple % spec.output_stride == 0
    assert create_arch(name).spec is spec


@pytest.mark.parametrize("size", [(128, 128), (192, 320)])
@pytest.mark.parametrize("name", ALL)
def test_forward_full_resolution(name, size):
    torch.manual_seed(0)
    model = create_arch(name).eval()
    x = torch.randn(2, 3, *size)
    with torch.inference_mode():
        outs = _outputs(model(x))
    spec = get_spec(name)
    if spec.output_kind == LOGITS:
        assert len(outs) == 1 and outs[0].shape == (2, 1, *size)
    else:
        seg, alpha = outs
        assert seg.shape == (2, 2, *size) and alpha.shape == (2, 1, *size)
        assert 0.0 <= float(alpha.min()) and float(alpha.max()) <= 1.0
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("name", ALL)
def test_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = create_arch(name).train()
    loss = sum(o.float().mean() for o in _outputs(model(torch.randn(2, 3, 64, 64))))
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without gradient (dead layers?): {no_grad[:5]}"


@pytest.mark.parametrize("name", ALL)
def test_wrong_size_raises_clear_error(name):
    model = create_arch(name).eval()
    m = get_spec(name).input_multiple
    with pytest.raises(ValueError, match=f"multiples of {m}"):
        model(torch.randn(1, 3, 128 + m // 2, 128))


@pytest.mark.parametrize("name", ALL)
def test_jit_trace_matches_eager(name):
    torch.manual_seed(0)
    model = create_arch(name).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.inference_mode():
        ref = _outputs(model(x))
    traced = torch.jit.trace(model, x, check_trace=False, strict=False)
    with torch.inference_mode():
        got = _outputs(traced(x))
    assert ref, "the model returned no output"
    for a, b in zip(ref, got, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ALL)
def test_torch_export(name):
    model = create_arch(name).eval()
    x = torch.randn(1, 3, 128, 128)
    ep = torch.export.export(model, (x,))
    with torch.inference_mode():
        ref, got = _outputs(model(x)), _outputs(ep.module()(x))
        assert ref, "the model returned no output"
        for a, b in zip(ref, got, strict=True):
            torch.testing.assert_close(a, b)


def test_residualdense_bisenet_runs_at_256_and_512():
    model = create_arch("residualdense_bisenet").eval()
    with torch.inference_mode():
        for s in (256, 512):
            assert model(torch.randn(1, 3, s, s)).shape == (1, 1, s, s)


def test_archs_needs_only_torch():
    """A design can be copied out: archs/ imports nothing from bench/, reports/ or the CLI."""
    import ast
    from pathlib import Path
    for path in Path(archs.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                assert node.module.split(".")[0] in {"torch", "__future__", "typing", "dataclasses",
                                                     "fnmatch", "math", "collections"}, (path, node.module)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] in {"torch", "math", "fnmatch"}, (path, alias.name)


def test_shared_batchnorm_has_one_affine_and_statistics_per_place():
    """shuffle_seg_skipnet / esp_dense_seg apply one BN at several places: one affine (the designs'
    parameter counts), but running statistics per place, so eval mode sees each place's own."""
    from archs.blocks import SharedBatchNorm
    bn = SharedBatchNorm(sites=2)
    assert sum(p.numel() for p in bn.parameters()) == 2
    a, b = torch.randn(8, 1, 4, 4) * 100 + 50, torch.randn(8, 1, 4, 4) * 0.1
    ref = torch.nn.BatchNorm2d(1)
    bn.train(), ref.train()
    for _ in range(50):
        out = bn(a, 0)
        bn(b, 1)
        torch.testing.assert_close(out, ref(a))  # training mode: batch statistics, as nn.BatchNorm2d
    bn.eval(), ref.eval()
    torch.testing.assert_close(bn(a, 0), ref(a))  # eval: site 0's statistics are those of a alone
    assert float(bn(b, 1).detach().abs().mean()) < 3  # site 1 normalised by its own small variance
    assert float(bn.running_var_0) > 1000 > 1 > float(bn.running_var_1)
    for arch, sites in (("shuffle_seg_skipnet", 9), ("esp_dense_seg", 3)):
        model = create_arch(arch)
        shared = [m for m in model.modules() if isinstance(m, SharedBatchNorm)]
        assert len(shared) == 1 and shared[0].sites == sites
