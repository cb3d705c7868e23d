"""Label encodings: a real HSD mask (and a real aisegment-40 matte) re-encoded every way a data set
may store it reads back as the same label, or is refused with the file named; a set whose labels
are all empty, or implausible for photos of people, carries a warning into its row and the report."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data.samples import DataError, read_label
from bench.measure.accuracy import PLAUSIBLE_FG_SHARE, evaluate_fn, label_warning
from bench.data.samples import scan_folder

STEM_COUNT = 3


@pytest.fixture(scope="module")
def hsd_mask(data_dir) -> tuple[Path, np.ndarray]:
    """The first HSD mask and its person pixels (0/255 8-bit grey, as stored)."""
    path = sorted((data_dir / "hsd" / "masks").iterdir())[0]
    person = np.array(Image.open(path)) > 127
    assert 0.01 < person.mean() < 0.99, "the fixture needs a mask with person and background"
    return path, person


def _save(tmp_path: Path, name: str, arr: np.ndarray, mode: str | None = None, palette=None) -> Path:
    im = Image.fromarray(arr)  # the mode follows the array: uint16 -> I;16, bool -> 1, 2 channels -> LA
    if palette is not None:
        im.putpalette(palette)  # an "L" image with a palette is a palette ("P") image
    assert mode is None or im.mode == mode, (im.mode, mode)
    path = tmp_path / name
    im.save(path)
    with Image.open(path) as back:
        assert mode is None or back.mode == mode or (mode == "I;16" and back.mode.startswith("I")), back.mode
    return path


def _encodings(person: np.ndarray) -> dict[str, tuple[np.ndarray, str | None, list | None]]:
    p = person.astype(np.uint8)
    h, w = p.shape
    grey = p * 255
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    photo = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)  # a cut-out's colours
    voc = [0, 0, 0, 128, 0, 0] + [224, 224, 192] * 254  # index 0 black, 1 dark red, 255 void (VOC style)
    with_void = p.copy()
    with_void[:2, :] = 255  # a void border, as VOC labels have
    return {
        "8bit_0_255": (grey, None, None),
        "8bit_0_1": (p, None, None),
        "16bit_0_1": (p.astype(np.uint16), "I;16", None),
        "16bit_0_255": (grey.astype(np.uint16), "I;16", None),
        "16bit_0_65535": (p.astype(np.uint16) * 65535, "I;16", None),
        "1bit": (person, "1", None),
        "rgb_grey": (rgb, None, None),
        "rgba_opaque": (np.dstack([rgb, np.full((h, w), 255, np.uint8)]), None, None),
        "rgba_mask_in_alpha": (np.dstack([np.zeros((h, w, 3), np.uint8), grey]), None, None),
        "rgba_cutout": (np.dstack([photo, grey]), None, None),
        "grey_alpha": (np.dstack([np.full((h, w), 255, np.uint8), grey]), "LA", None),
        "palette_colour_0_1": (p, "P", voc),
        "palette_colour_void": (with_void, "P", voc),
        "palette_grey": (p, "P", [0, 0, 0, 255, 255, 255] + [0, 0, 0] * 254),
        "8bit_0_15": (p * 15, None, None),
    }


@pytest.mark.parametrize("name", list(_encodings(np.zeros((2, 2), bool))))
def test_every_mask_encoding_of_a_real_hsd_mask_reads_the_same(name, hsd_mask, tmp_path):
    _, person = hsd_mask
    arr, mode, palette = _encodings(person)[name]
    path = _save(tmp_path, f"{name}.png", arr, mode, palette)
    lab = read_label(path, "mask")
    expected = person.copy()
    if name == "palette_colour_void":
        expected[:2, :] = False  # void reads as background (PortraitNet's and VOC's convention)
    assert lab.dtype == np.float32 and set(np.unique(lab)) <= {0.0, 1.0}
    assert np.array_equal(lab > 0.5, expected), f"{name}: {int(((lab > 0.5) != expected).sum())} pixels differ"


def test_the_stored_hsd_mask_reads_as_before(hsd_mask):
    path, person = hsd_mask
    assert np.array_equal(read_label(path, "mask") > 0.5, person)


@pytest.mark.parametrize("name, message", [
    ("colour_coded", "colour channels disagree"),
    ("alpha_disagrees", "grey values and alpha disagree"),
    ("multi_class_palette", "palette label with 2 classes"),
    ("not_an_image", "unreadable or corrupt label image"),
])
def test_a_mask_that_cannot_be_read_right_is_refused_with_the_file_named(name, message, hsd_mask, tmp_path):
    _, person = hsd_mask
    p = person.astype(np.uint8)
    grey = p * 255
    h, w = p.shape
    if name == "colour_coded":  # person in red, background black
        path = _save(tmp_path, "m.png", np.dstack([grey, np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)]))
    elif name == "alpha_disagrees":
        path = _save(tmp_path, "m.png", np.dstack([np.repeat(grey[:, :, None], 3, axis=2), 255 - grey]))
    elif name == "multi_class_palette":
        two = p.copy()
        two[: h // 2] *= 2
        path = _save(tmp_path, "m.png", two, "P", [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0, 0, 0] * 253)
    else:
        path = tmp_path / "m.png"
        path.write_text("not a png")
    with pytest.raises(DataError, match=message) as err:
        read_label(path, "mask")
    assert str(path) in str(err.value)


def test_alpha_mattes_in_every_encoding_read_the_same(data_dir, tmp_path):
    src = sorted((data_dir / "aisegment-40" / "alpha").iterdir())[0]
    rgba = np.array(Image.open(src))
    alpha = rgba[:, :, 3]
    ref = read_label(src, "alpha")
    assert np.allclose(ref, alpha / 255.0)
    h, w = alpha.shape
    for name, arr, mode in [("grey", alpha, None), ("rgb_grey", np.repeat(alpha[:, :, None], 3, axis=2), None),
                            ("grey_alpha", np.dstack([np.zeros((h, w), np.uint8), alpha]), "LA"),
                            ("16bit", alpha.astype(np.uint16) * 257, "I;16")]:
        lab = read_label(_save(tmp_path, f"{name}.png", arr, mode), "alpha")
        assert np.allclose(lab, ref, atol=1e-6), name


def test_label_warning_for_empty_and_implausible_labels():
    assert label_warning([0.3, 0.5]) == ""
    assert "every label is empty" in label_warning([0.0, 0.0, 0.0])
    lo, hi = PLAUSIBLE_FG_SHARE
    assert "person share is" in label_warning([hi + 0.05, 0.99])
    assert "person share is" in label_warning([lo / 4])


def _copy_hsd(data_dir: Path, tmp_path: Path, transform) -> Path:
    """The first HSD photos with their masks re-encoded by ``transform(person) -> uint8 array``."""
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for mask in sorted((data_dir / "hsd" / "masks").iterdir())[:STEM_COUNT]:
        img = next(p for p in (data_dir / "hsd" / "images").iterdir() if p.stem == mask.stem)
        shutil.copy(img, root / "images" / img.name)
        Image.fromarray(transform(np.array(Image.open(mask)) > 127)).save(root / "masks" / f"{mask.stem}.png")
    return root


def test_a_set_of_empty_labels_warns_in_its_row_and_the_report(data_dir, tmp_path):
    """Masks stored as 0 and 0 (an export that lost the person): every label empty; the accuracy
    row says so, and so does the report, once for the set."""
    import pandas as pd

    from reports.accuracy_view import label_notes

    root = _copy_hsd(data_dir, tmp_path, lambda person: np.zeros(person.shape, np.uint8))
    rec = evaluate_fn(lambda img: np.ones(img.shape[:2], np.float32), scan_folder(root), 256)
    assert rec.n_empty_labels == STEM_COUNT and "every label is empty" in rec.label_warning
    fine = evaluate_fn(lambda img: np.ones(img.shape[:2], np.float32),
                       scan_folder(_copy_hsd(data_dir, tmp_path / "ok", lambda person: person.astype(np.uint8))), 256)
    assert fine.label_warning == "" and fine.n_empty_labels == 0 and 0.02 < fine.label_fg_share < 0.9
    rows = pd.DataFrame([{"measurement": "accuracy", "status": "ok", "arch": a, "dataset": "set", "split": "all",
                          "label_warning": rec.label_warning} for a in ("a", "b")])
    notes = label_notes(rows)
    assert len(notes) == 1 and "every label is empty" in notes[0] and "2 accuracy row(s)" in notes[0]
