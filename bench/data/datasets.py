"""Dataset layouts -> lists of :class:`~bench.data.samples.Sample`, and the fixed train/validation splits.

``open_dataset(root, layout="auto", split=None)`` reads any of these layouts (``detect_layout``
picks one from the folders it finds) and returns samples that ``bench.data.samples.load_pair`` and
``bench.measure.accuracy.evaluate`` understand:

=========== ===================================================== ========== =====================
layout      files                                                 label      splits (default first)
=========== ===================================================== ========== =====================
folder      images/<stem>.jpg + masks/<stem>.png or alpha/<stem>   mask/alpha all, train, val (1)
            .png (shared/data/README.md)
eg1800      Images/<id>.png + Labels/<id>.png, eg1800_train.txt /  mask01 (2) test, train, all
            eg1800_test.txt listing image file names
aisegment   clip_img/<group>/clip_<n>/<stem>.jpg +                 alpha (3)  all
            matting/<group>/matting_<n>/<stem>.png (RGBA)
ppm100      image/<stem>.jpg + matte/<stem>.png|jpg (1 channel)    alpha      all
p3m10k      train/blurred_image + train/mask;                     alpha (4)  val_np, val_p, train
            validation/P3M-500-P/blurred_image + mask;
            validation/P3M-500-NP/original_image + mask
=========== ===================================================== ========== =====================

(1) ``train`` / ``val`` / ``test`` / ``train-v2`` read the stem lists
``<splits_dir>/<folder name>_<split>.txt`` (this repo's ``splits/``, made by :func:`make_split` and
:func:`portrait_v2_splits`; not every set has every split). (2) value 1 = person, other values background, as in
PortraitNet's loader. (3) AISegment "matting_human_half"; macOS ``._*`` files are ignored.
(4) P3M's ``mask`` folders hold soft alpha mattes.
Every image must have its label (and the reverse, except EG1800 whose Labels/ has extras):
a missing partner raises :class:`~bench.data.samples.DataError` naming the file.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Optional, Sequence

from .samples import IMAGE_SUFFIXES, DataError, Sample, check_pairs, scan_folder
from ..paths import SPLITS_DIR

LABEL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

Adapter = Callable[[Path, Optional[str], Path], list[Sample]]
_LAYOUTS: dict[str, tuple[Adapter, tuple[str, ...]]] = {}  # name -> (adapter, splits)


def layout(name: str, splits: tuple[str, ...]) -> Callable[[Adapter], Adapter]:
    """Register ``adapter(root, split, splits_dir) -> samples``; ``splits[0]`` is the default."""

    def deco(fn: Adapter) -> Adapter:
        if name in _LAYOUTS:
            raise ValueError(f"layout {name!r} registered twice")
        _LAYOUTS[name] = (fn, splits)
        return fn

    return deco


def known_layouts() -> list[str]:
    return list(_LAYOUTS)


def layout_splits(name: str) -> tuple[str, ...]:
    return _LAYOUTS[name][1]


# ----------------------------------------------------------------------------- splits

def split_path(name: str, split: str, splits_dir: Path = SPLITS_DIR) -> Path:
    return Path(splits_dir) / f"{name}_{split}.txt"


def read_stems(path: Path) -> list[str]:
    """Stem list file: one stem per line; blank lines and ``#`` comments ignored."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: split file not found")
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def split_stems(name: str, split: str, splits_dir: Path = SPLITS_DIR) -> list[str]:
    """Stems of split ``split`` ("train" / "val") of the data set called ``name`` (folder name)."""
    return read_stems(split_path(name, split, splits_dir))


def make_split(stems: Sequence[str], val_fraction: float = 0.2, seed: int = 0) -> tuple[list[str], list[str]]:
    """Fixed, seeded (train, val) split of ``stems``; each list sorted.

    Order = SHA-256 of ``"<seed>:<stem>"``; the first ``round(val_fraction * n)`` stems are
    validation. Depends only on the stem names and the seed (no library RNG), so it is the same on
    every machine; adding stems keeps the order of the existing ones, so only stems at the
    boundary of the validation part can change side.
    """
    stems = sorted(set(stems))
    order = sorted(stems, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    n_val = int(round(val_fraction * len(stems)))
    val = set(order[:n_val])
    return [s for s in stems if s not in val], sorted(val)


def split_files_sha256(paths: Sequence[Path]) -> str:
    """One SHA-256 over the given split files (name and bytes, in the given order)."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


# ----------------------------------------------------------------------------- recipe v2 splits

EG1800_VAL_FRACTION = 0.1  # seeded hold-out of the authors' train + extra: the eg1800 validation side
CCP_VAL_FRACTION = 0.1
DUPLICATES_FILE = "duplicates-aisegment-40.tsv"  # in the eg1800 folder: (eg1800 stem, aisegment-40 stem)


def read_duplicates(path: Path) -> list[tuple[str, str]]:
    """(eg1800 stem, aisegment-40 stem) pairs of the same photo, from the shared data's TSV."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: duplicate list not found")
    lines = [ln.split("\t") for ln in path.read_text().splitlines() if ln.strip()]
    head = lines[0]
    if "eg1800_stem" not in head or "aisegment40_stem" not in head:
        raise DataError(f"{path}: header must name eg1800_stem and aisegment40_stem, got {head}")
    i, j = head.index("eg1800_stem"), head.index("aisegment40_stem")
    return [(ln[i], ln[j]) for ln in lines[1:]]


def portrait_v2_splits(data_dir: Path, seed: int = 0) -> dict[str, list[str]]:
    """The stem lists of recipe v2, by split file name (``<set>_<split>.txt``), from the shared data.

    - eg1800: ``test`` = the authors' ``test.txt`` (never trained on, never used to choose);
      ``val`` = a seeded :func:`make_split` hold-out (10 %) of the authors' ``train.txt`` + ``extra.txt``;
      ``train`` = the rest, minus the photos whose aisegment-40 twin is an aisegment-40 validation image.
    - ccp-person: seeded 90/10 ``train`` / ``val``.
    - hsd: the v1 files (``hsd_train.txt`` / ``hsd_val.txt``) unchanged.
    - aisegment-40: ``val`` unchanged (v1); ``train-v2`` = v1's ``train`` minus the stems whose EG1800
      twin is on an EG1800 evaluation side (test or val), so no training image is an evaluation photo.
    Twins come from ``eg1800/duplicates-aisegment-40.tsv``."""
    data_dir = Path(data_dir)
    eg = data_dir / "eg1800"
    eg_test = read_stems(eg / "test.txt")
    eg_pool = read_stems(eg / "train.txt") + read_stems(eg / "extra.txt")
    eg_train, eg_val = make_split(eg_pool, EG1800_VAL_FRACTION, seed)
    ais_train, ais_val = make_split([s.stem for s in scan_folder(data_dir / "aisegment-40")], 0.2, seed)
    twins = read_duplicates(eg / DUPLICATES_FILE)
    eg_eval = set(eg_test) | set(eg_val)
    ais_drop = {a for e, a in twins if e in eg_eval}
    eg_drop = {e for e, a in twins if a in set(ais_val)}
    ccp_train, ccp_val = make_split([s.stem for s in scan_folder(data_dir / "ccp-person")], CCP_VAL_FRACTION, seed)
    hsd_train, hsd_val = make_split([s.stem for s in scan_folder(data_dir / "hsd")], 0.2, seed)
    return {"eg1800_train.txt": [s for s in eg_train if s not in eg_drop], "eg1800_val.txt": eg_val,
            "eg1800_test.txt": sorted(eg_test),
            "ccp-person_train.txt": ccp_train, "ccp-person_val.txt": ccp_val,
            "hsd_train.txt": hsd_train, "hsd_val.txt": hsd_val,
            "aisegment-40_train-v2.txt": [s for s in ais_train if s not in ais_drop],
            "aisegment-40_val.txt": ais_val}


def write_split_files(lists: dict[str, list[str]], splits_dir: Path = SPLITS_DIR) -> list[Path]:
    """Write each stem list as ``<splits_dir>/<file name>`` (one stem a line)."""
    out = []
    for name, stems in lists.items():
        p = Path(splits_dir) / name
        p.write_text("".join(f"{s}\n" for s in stems))
        out.append(p)
    return out


# ----------------------------------------------------------------------------- helpers

def _files_by_stem(folder: Path, suffixes: Sequence[str], recursive: bool = False) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    found: dict[str, Path] = {}
    it = folder.rglob("*") if recursive else folder.iterdir()
    for p in sorted(it):
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("._"):
            if p.stem in found:
                raise DataError(f"{folder}: two files share the stem {p.stem!r}: {found[p.stem]}, {p}")
            found[p.stem] = p
    return found


def _pair(images: dict[str, Path], labels: dict[str, Path], kind: str, where: Path,
          allow_extra_labels: bool = False) -> list[Sample]:
    if not images:
        raise DataError(f"{where}: no images found")
    check_pairs(images, labels, where, allow_extra_labels)
    return [Sample(s, images[s], labels[s], kind) for s in sorted(images)]


def _unknown_split(layout_name: str, split: str) -> DataError:
    return DataError(f"layout {layout_name!r} has no split {split!r} "
                     f"(known: {', '.join(layout_splits(layout_name))})")


# ----------------------------------------------------------------------------- layouts

@layout("folder", ("all", "train", "val", "test", "train-v2"))
def _folder(root: Path, split: Optional[str], splits_dir: Path) -> list[Sample]:
    if split in (None, "all"):
        return scan_folder(root)
    if split not in layout_splits("folder"):
        raise _unknown_split("folder", split)
    return scan_folder(root, split_stems(root.name, split, splits_dir))


@layout("eg1800", ("test", "train", "all"))
def _eg1800(root: Path, split: Optional[str], splits_dir: Path) -> list[Sample]:
    split = split or "test"
    images = _files_by_stem(root / "Images", IMAGE_SUFFIXES)
    labels = _files_by_stem(root / "Labels", LABEL_SUFFIXES)
    if split == "all":
        return _pair(images, labels, "mask01", root, allow_extra_labels=True)
    if split not in ("train", "test"):
        raise _unknown_split("eg1800", split)
    lst = root / f"eg1800_{split}.txt"
    if not lst.is_file():
        raise DataError(f"{root}: list file {lst.name} not found (EG1800 ships eg1800_train.txt "
                        "and eg1800_test.txt next to Images/ and Labels/)")
    out = []
    for name in read_stems(lst):
        stem = Path(name).stem
        if stem not in images:
            raise DataError(f"{lst}: listed image {name} not found in {root / 'Images'}")
        if stem not in labels:
            raise DataError(f"{root}: image without label: {images[stem]}")
        out.append(Sample(stem, images[stem], labels[stem], "mask01"))
    return out


@layout("aisegment", ("all",))
def _aisegment(root: Path, split: Optional[str], splits_dir: Path) -> list[Sample]:
    if split not in (None, "all"):
        raise _unknown_split("aisegment", split)
    images = _files_by_stem(root / "clip_img", (".jpg", ".jpeg", ".png"), recursive=True)
    labels = _files_by_stem(root / "matting", (".png",), recursive=True)
    return _pair(images, labels, "alpha", root)


@layout("ppm100", ("all",))
def _ppm100(root: Path, split: Optional[str], splits_dir: Path) -> list[Sample]:
    if split not in (None, "all"):
        raise _unknown_split("ppm100", split)
    return _pair(_files_by_stem(root / "image", IMAGE_SUFFIXES),
                 _files_by_stem(root / "matte", LABEL_SUFFIXES), "alpha", root)


P3M_SPLITS = {"val_np": ("validation/P3M-500-NP", "original_image"),
              "val_p": ("validation/P3M-500-P", "blurred_image"),
              "train": ("train", "blurred_image")}


@layout("p3m10k", ("val_np", "val_p", "train"))
def _p3m10k(root: Path, split: Optional[str], splits_dir: Path) -> list[Sample]:
    split = split or "val_np"
    if split not in P3M_SPLITS:
        raise _unknown_split("p3m10k", split)
    sub, img_dir = P3M_SPLITS[split]
    base = root / sub
    return _pair(_files_by_stem(base / img_dir, IMAGE_SUFFIXES),
                 _files_by_stem(base / "mask", LABEL_SUFFIXES), "alpha", base)


def detect_layout(root: str | Path) -> str:
    """Name of the layout of ``root`` from the folders it holds; DataError if none fits."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    has = lambda *parts: (root.joinpath(*parts)).is_dir()  # noqa: E731
    if has("images") and (has("masks") or has("alpha")):
        return "folder"
    if has("Images") and has("Labels"):
        return "eg1800"
    if has("clip_img") and has("matting"):
        return "aisegment"
    if has("image") and has("matte"):
        return "ppm100"
    if has("train", "blurred_image") or has("validation", "P3M-500-NP") or has("validation", "P3M-500-P"):
        return "p3m10k"
    raise DataError(f"{root}: unknown data layout; expected images/ + masks/ or alpha/ (shared format), "
                    "Images/ + Labels/ (EG1800), clip_img/ + matting/ (AISegment), image/ + matte/ "
                    "(PPM-100) or train/ + validation/ (P3M-10k)")


def open_dataset(root: str | Path, layout_name: str = "auto", split: Optional[str] = None,
                 splits_dir: Path = SPLITS_DIR) -> list[Sample]:
    """Samples of ``root`` in layout ``layout_name`` ("auto" = :func:`detect_layout`), split ``split``
    (None = the layout's default: everything for the shared folder format, the test / validation
    part for EG1800 and P3M-10k)."""
    root = Path(root)
    name = detect_layout(root) if layout_name == "auto" else layout_name
    if name not in _LAYOUTS:
        raise DataError(f"unknown layout {name!r}; known: auto, {', '.join(known_layouts())}")
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    return _LAYOUTS[name][0](root, split, Path(splits_dir))
