"""Example predictions of one model on a few fixed photos, as result rows (the report draws the strip
from them; it loads no model). The probability map is kept small: downscaled so that its longer side
is at most :data:`EXAMPLE_SIDE` pixels and stored as a base64 PNG of uint8 (probability x 255)."""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ..data.samples import iter_pairs, scan_folder
from .accuracy import predict_prob
from .metrics import iou

EXAMPLE_SIDE = 192  # px, the longer side of a stored probability map
EXAMPLE_IMAGES = 4


def pick_stems(data_dir: Path, n: int = EXAMPLE_IMAGES) -> tuple[list[str], str]:
    """``n`` evenly spaced stems of the folder's validation split (``splits/<name>_val.txt``) if it
    has one, else of the whole folder; and which of the two ("val" / "all")."""
    from ..data.datasets import split_stems

    try:
        stems, split = split_stems(Path(data_dir).name, "val"), "val"
    except (OSError, ValueError, KeyError):
        stems, split = [], "val"
    if not stems:
        stems, split = [s.stem for s in scan_folder(data_dir)], "all"
    if len(stems) > n:
        stems = [stems[i] for i in np.linspace(0, len(stems) - 1, n).round().astype(int)]
    return list(stems), split


def encode_prob(prob: np.ndarray, side: int = EXAMPLE_SIDE) -> str:
    """H x W probability in [0, 1] -> base64 PNG (uint8), the longer side at most ``side``."""
    h, w = prob.shape[:2]
    scale = min(1.0, side / max(h, w))
    small = cv2.resize(prob.astype(np.float32), (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else prob.astype(np.float32)
    ok, png = cv2.imencode(".png", np.clip(np.round(small * 255), 0, 255).astype(np.uint8))
    if not ok:
        raise ValueError("could not encode the probability map as PNG")
    return base64.b64encode(png.tobytes()).decode("ascii")


def decode_prob(text: str, shape: Sequence[int]) -> np.ndarray:
    """The probability map written by :func:`encode_prob`, resized (bilinear) to ``shape`` (H, W)."""
    png = np.frombuffer(base64.b64decode(str(text), validate=True), np.uint8)
    small = cv2.imdecode(png, cv2.IMREAD_GRAYSCALE)
    if small is None:
        raise ValueError("not an encoded probability map")
    return cv2.resize(small.astype(np.float32) / 255.0, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)


def example_rows(model, preprocess, output_kind: str, data_dir: Path, input_size: int,
                 n_images: int = EXAMPLE_IMAGES) -> list[dict[str, Any]]:
    """One row per example photo: its stem, the probability map (``prob_png_b64``, see the module
    doc), the IoU of the mask (probability > 0.5) at the photo's own size, and where the photo is."""
    stems, split = pick_stems(Path(data_dir), n_images)
    rows = []
    for s, img, lab in iter_pairs(scan_folder(data_dir, stems)):
        prob = predict_prob(model, img, input_size, preprocess, output_kind)
        rows.append({"stem": s.stem, "example_split": split, "example_data": str(data_dir),
                     "image_h": int(img.shape[0]), "image_w": int(img.shape[1]),
                     "example_iou": float(iou(prob > 0.5, lab > 0.5)), "prob_png_b64": encode_prob(prob)})
    return rows
