"""Portrait data in the shared folder format (``shared/data/README.md``).

    <root>/images/<stem>.jpg|png     RGB photo
    <root>/masks/<stem>.png          binary mask, 0/255 or 0/1                    (label kind "mask")
    <root>/alpha/<stem>.png          RGBA cut-out (alpha = channel 3) or 1-channel  (label kind "alpha")

Pairs are matched by file stem. A label stored at another size than its image is resized to the
image with nearest-neighbour (masks) or bilinear (alpha mattes) interpolation before any metric.
Every problem raises :class:`DataError` naming the file or folder and what is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import cv2
import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
LABEL_DIRS = ("masks", "alpha")
# A label stored at another size than its photo is resized to it, but only if both have the same
# shape: width/height ratios further apart than this are a label of another image (or a crop).
# The shared sets differ by at most 0.17% (HSD masks saved at other sizes).
MAX_ASPECT_MISMATCH = 0.02


class DataError(ValueError):
    """A data file or folder is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class Sample:
    stem: str
    image_path: Path
    label_path: Path
    label_kind: str  # "mask" or "alpha" (or "mask01", see read_label)


def _files_by_stem(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes:
            if p.stem in found:
                raise DataError(f"{folder}: two files share the stem {p.stem!r}: {found[p.stem].name}, {p.name}")
            found[p.stem] = p
    return found


def check_pairs(images: dict[str, Path], labels: dict[str, Path], where: Path,
                allow_extra_labels: bool = False) -> None:
    """DataError naming the first image without a label (or label without an image, unless
    ``allow_extra_labels``), with how many more there are."""
    no_label = sorted(set(images) - set(labels))
    if no_label:
        raise DataError(f"{where}: image without label: {images[no_label[0]]}"
                        + (f" (and {len(no_label) - 1} more)" if len(no_label) > 1 else ""))
    no_image = sorted(set(labels) - set(images))
    if no_image and not allow_extra_labels:
        raise DataError(f"{where}: label without image: {labels[no_image[0]]}"
                        + (f" (and {len(no_image) - 1} more)" if len(no_image) > 1 else ""))


def scan_folder(root: str | Path, stems: Optional[Sequence[str]] = None) -> list[Sample]:
    """Pair ``images/`` with ``masks/`` or ``alpha/`` by stem; ``stems`` keeps only those (in order)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    img_dir = root / "images"
    if not img_dir.is_dir():
        raise DataError(f"{root}: no images/ folder (expected images/ plus masks/ or alpha/)")
    label_dirs = [root / d for d in LABEL_DIRS if (root / d).is_dir()]
    if not label_dirs:
        raise DataError(f"{root}: no masks/ or alpha/ folder next to images/")
    if len(label_dirs) > 1:
        raise DataError(f"{root}: both masks/ and alpha/ exist; keep one label kind per folder")
    label_dir = label_dirs[0]
    kind = "mask" if label_dir.name == "masks" else "alpha"
    images = _files_by_stem(img_dir, IMAGE_SUFFIXES)
    labels = _files_by_stem(label_dir, (".png", ".bmp", ".jpg", ".jpeg"))
    if not images:
        raise DataError(f"{img_dir}: empty folder (no {'/'.join(IMAGE_SUFFIXES)} files)")
    check_pairs(images, labels, root)
    if stems is None:
        stems = sorted(images)
    else:
        missing = [s for s in stems if s not in images]
        if missing:
            raise DataError(f"{root}: stems not found: {', '.join(missing[:5])}")
    return [Sample(s, images[s], labels[s], kind) for s in stems]


def read_image(path: str | Path) -> np.ndarray:
    """H x W x 3 uint8 RGB image; DataError if the file is missing, unreadable or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file does not exist")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise DataError(f"{path}: unreadable or corrupt image")
    check_complete(path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def check_complete(path: Path) -> None:
    """DataError if the file's encoded data stops early or is damaged. OpenCV decodes a truncated
    JPEG as far as it goes, fills the rest with grey and only prints a libjpeg warning; Pillow's
    decoder raises instead, so the file is decoded once more by Pillow to find out."""
    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: truncated or corrupt image ({exc})") from None


def check_aspect(image_path: Path, image_hw: tuple[int, int], label_path: Path, label_hw: tuple[int, int]) -> None:
    """DataError if a label's width/height ratio differs from its photo's by more than
    :data:`MAX_ASPECT_MISMATCH` (then stretching it to the photo would misplace the person)."""
    (ih, iw), (lh, lw) = image_hw, label_hw
    mismatch = abs((iw / ih) / (lw / lh) - 1.0)
    if mismatch > MAX_ASPECT_MISMATCH:
        raise DataError(f"{label_path}: label is {lw}x{lh} but its image {image_path.name} is {iw}x{ih}: "
                        f"aspect ratios differ by {mismatch:.0%} (more than {MAX_ASPECT_MISMATCH:.0%}); "
                        "not the label of this image, or cropped")


def read_label(path: str | Path, kind: str, size_hw: Optional[tuple[int, int]] = None,
               image_path: Optional[Path] = None) -> np.ndarray:
    """Label as float32 in [0, 1] (mask: 0/1, alpha: soft), resized to ``size_hw`` if given (the
    size of its image ``image_path``; a label of another aspect ratio is a DataError).

    ``kind``: ``"mask"`` (0/1 or 0/255), ``"alpha"`` (RGBA cut-out or 1-channel matte, 0..1 or
    0..255) or ``"mask01"`` (EG1800: value 1 is the person, any other value background; a file
    without any 1 is read as 0/255). Masks are resized with nearest-neighbour, alpha mattes with
    bilinear interpolation.
    """
    path = Path(path)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0:
        raise DataError(f"{path}: unreadable or corrupt label image")
    if raw.ndim == 3:
        if kind == "alpha" and raw.shape[2] == 4:
            raw = raw[:, :, 3]
        elif kind == "alpha":
            raise DataError(f"{path}: alpha label must be RGBA (alpha in channel 3) or 1-channel, "
                            f"got {raw.shape[2]} channels")
        else:
            raw = raw[:, :, 0]
    if raw.dtype == np.uint16:
        raw = (raw / 257.0).astype(np.float32)
    lab = raw.astype(np.float32)
    top = lab.max()
    if kind == "mask01":  # EG1800 convention: 1 = person; values > 1 are background (PortraitNet)
        lab = (lab == 1).astype(np.float32) if (lab == 1).any() else (lab > 127).astype(np.float32)
        kind = "mask"
    elif kind == "mask":
        lab = (lab > (0.5 if top <= 1 else 127)).astype(np.float32)
    else:
        lab = lab / (1.0 if top <= 1 else 255.0)  # 0..1 or 0..255 mattes
    if size_hw is not None and lab.shape[:2] != tuple(size_hw):
        check_aspect(Path(image_path or "its image"), tuple(size_hw), path, lab.shape[:2])
        h, w = size_hw
        interp = cv2.INTER_NEAREST if kind == "mask" else cv2.INTER_LINEAR
        lab = cv2.resize(lab, (w, h), interpolation=interp)
    return lab


def load_pair(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image, label float32 in [0,1] at the image's size). DataError for a truncated
    image or a label whose aspect ratio is not the image's."""
    img = read_image(sample.image_path)
    return img, read_label(sample.label_path, sample.label_kind, img.shape[:2], image_path=sample.image_path)


def iter_pairs(samples: Sequence[Sample]) -> Iterator[tuple[Sample, np.ndarray, np.ndarray]]:
    for s in samples:
        img, lab = load_pair(s)
        yield s, img, lab
