"""A file given as ``--weights`` that is not a state dict of the design is refused in the suite's own
words: what the file is and what is accepted, never PyTorch's hint to load it with
``weights_only=False`` (advice the suite must never follow) and no warning with a source line."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from archs import create_arch
from bench.models.weights import WeightsError, load_model

pytestmark = [pytest.mark.slow]  # processes of run_bench.py

REPO = Path(__file__).resolve().parents[1]
ACCEPTED = "--weights takes a state dict saved with torch.save(model.state_dict(), path)"


def _files(tmp_path: Path, models_dir: Path) -> dict[str, Path]:
    other = create_arch("residualdense_bisenet").eval()
    files = {"other_design": tmp_path / "other.pt", "torchscript": tmp_path / "ts.pt",
             "pickled_module": tmp_path / "module.pt", "truncated": tmp_path / "cut.pt", "text": tmp_path / "notes.txt",
             "empty": tmp_path / "empty.pt", "random_bytes": tmp_path / "noise.bin",
             "tflite": models_dir / "mediapipe" / "selfie_segmentation.tflite",
             "onnx": models_dir / "pphumanseg" / "ppseg_lite_portrait_398x224_with_softmax_fixed.onnx"}
    torch.save(other.state_dict(), files["other_design"])
    torch.jit.save(torch.jit.trace(other, torch.zeros(1, 3, 128, 128)), files["torchscript"])
    torch.save(other, files["pickled_module"])
    files["truncated"].write_bytes(files["other_design"].read_bytes()[:4000])
    files["text"].write_text("weights: see the wiki\n")
    files["empty"].write_bytes(b"")
    files["random_bytes"].write_bytes(bytes(range(7, 250)) * 40)
    return files


EXPECTED = {
    "other_design": "a state dict of residualdense_bisenet, not of esp_dense_seg",
    "torchscript": "a TorchScript archive (torch.jit.save), not a state dict",
    "pickled_module": "holds Python objects besides tensors (archs.residualdense_bisenet.",
    "truncated": "a truncated or damaged zip archive",
    "text": "a text file, not a PyTorch checkpoint",
    "empty": "an empty file",
    "random_bytes": "not a PyTorch checkpoint",
    "tflite": "a TFLite model file, not a PyTorch checkpoint",
    "onnx": "an ONNX model file",
}


def test_each_kind_of_wrong_file_is_named_and_what_is_accepted_said(models_dir, tmp_path):
    for kind, path in _files(tmp_path, models_dir).items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch's TorchScript UserWarning would fail here
            with pytest.raises(WeightsError) as err:
                load_model("esp_dense_seg", str(path))
        msg = str(err.value)
        assert str(path) in msg and EXPECTED[kind] in msg, (kind, msg)
        assert "weights_only=False" not in msg and "will likely succeed" not in msg, (kind, msg)
        if kind != "other_design":
            assert ACCEPTED in msg, (kind, msg)


def test_the_cli_refuses_them_as_one_line_usage_errors(models_dir, tmp_path):
    files = _files(tmp_path, models_dir)
    for kind in ("torchscript", "pickled_module", "other_design"):
        r = subprocess.run([sys.executable, "run_bench.py", "latency", "--arch", "esp_dense_seg", "--weights",
                            str(files[kind])], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and EXPECTED[kind] in r.stderr, (kind, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Warning" not in r.stderr, (kind, r.stderr)


def test_a_state_dict_of_the_design_itself_still_loads(tmp_path):
    model = create_arch("esp_dense_seg")
    path = tmp_path / "mine.pt"
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, path)
    assert load_model("esp_dense_seg", str(path)).source == str(path)
