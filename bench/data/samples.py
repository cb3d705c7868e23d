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


# A label's channels "agree" (a grey mask saved in colour) when no pixel's channels differ by more than
# this: JPEG-compressed masks carry a little chroma noise, a colour-coded mask differs by far more.
CHANNEL_TOLERANCE = 16


def _constant(a: np.ndarray) -> bool:
    return bool(a.size == 0 or (a == a.flat[0]).all())


def _grey(rgb: np.ndarray) -> Optional[np.ndarray]:
    """The one channel of an H x W x 3 image whose channels agree (see CHANNEL_TOLERANCE), else None."""
    c = rgb.astype(np.int32)
    spread = c.max(axis=2) - c.min(axis=2)
    return rgb[:, :, 0] if int(spread.max(initial=0)) <= CHANNEL_TOLERANCE else None


def decode_label(path: str | Path, kind: str = "mask") -> np.ndarray:
    """The label file as one 2-D array of its stored values (integers; no scaling yet), whatever the
    encoding: 1-bit, 8- or 16-bit grey; palette PNGs (a grey palette: the grey values shown; a colour
    palette: the class indices); 3 channels that agree (a grey mask saved in colour); 4 channels or
    grey + alpha (the alpha when it varies, e.g. a cut-out, else the colour). A colour-coded mask
    (channels that disagree), a mask whose colour and alpha disagree, or an unreadable file is a
    :class:`DataError` naming the file."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode, palette = im.mode, (im.getpalette() if im.mode in ("P", "PA") else None)
            arr = np.array(im)
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: unreadable or corrupt label image ({exc})") from None
    if arr.size == 0:
        raise DataError(f"{path}: empty label image")
    if mode in ("P", "PA"):
        idx = arr[:, :, 0] if arr.ndim == 3 else arr
        used = np.unique(idx)
        colours = np.array(palette or [], dtype=np.int32).reshape(-1, 3)
        if used.max() < len(colours):
            shown = colours[used]
            if (shown.max(axis=1) - shown.min(axis=1)).max(initial=0) <= CHANNEL_TOLERANCE:
                lut = np.zeros(256, np.uint8)
                lut[used] = shown[:, 0]
                return lut[idx]  # a grey palette: the values a viewer shows
        # a colour palette: class indices, 0 background, 255 void (the VOC convention)
        fg = [int(i) for i in used if i not in (0, 255)]
        if len(fg) > 1:
            raise DataError(f"{path}: palette label with {len(fg)} classes (indices {fg[:6]}); a person mask "
                            "has one foreground class")
        out = np.zeros(idx.shape, np.uint8)
        if fg:
            out[idx == fg[0]] = 1
        elif 255 in used:
            out[idx == 255] = 1  # {0, 255}: 255 is the person, not void
        return out
    if mode == "1":
        return arr.astype(np.uint8)
    if arr.ndim == 2:
        return arr.astype(np.uint16) if arr.dtype.kind in "iu" and arr.max() > 255 else arr
    channels = arr.shape[2]
    colour, alpha = (arr[:, :, :3], arr[:, :, 3]) if channels == 4 else \
        (arr[:, :, :1].repeat(3, axis=2), arr[:, :, 1]) if channels == 2 else (arr[:, :, :3], None)
    if kind == "alpha" and alpha is not None:
        return alpha  # an RGBA cut-out: the matte is the alpha
    grey = _grey(colour)
    if alpha is not None and not _constant(alpha):
        if grey is None or _constant(grey) or np.array_equal(grey > 127, alpha > 127):
            return alpha  # a cut-out (photo + alpha) or a flat colour with the mask in its alpha
        raise DataError(f"{path}: {channels}-channel label whose grey values and alpha disagree; store the mask "
                        "in one channel")
    if grey is None:
        raise DataError(f"{path}: {channels}-channel label whose colour channels disagree (a colour-coded mask?); "
                        "store a 1-channel or palette mask, or one whose channels are equal")
    return grey


def label_values(raw: np.ndarray, kind: str) -> np.ndarray:
    """Stored label values as float32 in [0, 1]: a mask as 0/1, an alpha matte soft.

    Masks: values that are all 0 or 1 are a 0/1 mask; exactly two values {0, k} (0/255, 0/65535, or
    any other k) mark k as the person; anything else (noise, soft edges) is thresholded at half of
    the range its maximum implies (1, 255 or 65535). ``mask01`` (EG1800): value 1 is the person, any
    other value background (a file without any 1 is read as a mask). Alpha mattes: divided by that
    range."""
    v = raw.astype(np.float32)
    top = float(v.max())
    scale = 1.0 if top <= 1 else 255.0 if top <= 255 else 65535.0
    if kind == "mask01" and (v == 1).any():  # EG1800 convention: 1 = person; values > 1 are background (PortraitNet)
        return (v == 1).astype(np.float32)
    if kind in ("mask", "mask01"):
        if top > 1:
            values = np.unique(v)
            if len(values) == 2 and values[0] == 0:
                return (v == values[1]).astype(np.float32)
        return (v > scale / 2).astype(np.float32)
    return np.clip(v / scale, 0.0, 1.0)


def read_label(path: str | Path, kind: str, size_hw: Optional[tuple[int, int]] = None,
               image_path: Optional[Path] = None) -> np.ndarray:
    """Label as float32 in [0, 1] (mask: 0/1, alpha: soft), resized to ``size_hw`` if given (the
    size of its image ``image_path``; a label of another aspect ratio is a DataError).

    ``kind``: ``"mask"``, ``"alpha"`` or ``"mask01"`` (EG1800). Every stored encoding is read by
    :func:`decode_label` and scaled by :func:`label_values`; masks are resized with
    nearest-neighbour, alpha mattes with bilinear interpolation.
    """
    path = Path(path)
    lab = label_values(decode_label(path, "alpha" if kind == "alpha" else "mask"), kind)
    kind = "mask" if kind == "mask01" else kind
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
