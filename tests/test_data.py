"""The folder loader: pairing by stem, label resizing, and a clear error for each bad input."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.data.samples import DataError, Sample, load_pair, read_image, read_label, scan_folder


def _write_img(path: Path, h=40, w=30) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def _write_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), mask)


def _folder(tmp_path: Path, stems=("a", "b")) -> Path:
    for s in stems:
        _write_img(tmp_path / "images" / f"{s}.jpg")
        m = np.zeros((40, 30), np.uint8)
        m[10:30, 5:20] = 255
        _write_mask(tmp_path / "masks" / f"{s}.png", m)
    return tmp_path


def test_pairs_by_stem(tmp_path):
    samples = scan_folder(_folder(tmp_path, ("b", "a", "c")))
    assert [s.stem for s in samples] == ["a", "b", "c"]
    assert all(s.label_kind == "mask" for s in samples)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan_folder(tmp_path / "nope")


def test_no_label_folder(tmp_path):
    _write_img(tmp_path / "images" / "a.jpg")
    with pytest.raises(DataError, match="no masks/ or alpha/"):
        scan_folder(tmp_path)


def test_empty_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="empty folder"):
        scan_folder(tmp_path)


def test_image_without_label_names_the_file(tmp_path):
    _folder(tmp_path)
    _write_img(tmp_path / "images" / "lonely.jpg")
    with pytest.raises(DataError, match=r"image without label: .*lonely\.jpg"):
        scan_folder(tmp_path)


def test_label_without_image_names_the_file(tmp_path):
    _folder(tmp_path)
    _write_mask(tmp_path / "masks" / "orphan.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match=r"label without image: .*orphan\.png"):
        scan_folder(tmp_path)


def test_corrupt_image_names_the_file(tmp_path):
    _folder(tmp_path)
    bad = tmp_path / "images" / "a.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    sample = scan_folder(tmp_path)[0]
    with pytest.raises(DataError, match=r"a\.jpg: unreadable or corrupt image"):
        load_pair(sample)


def test_empty_image_file(tmp_path):
    p = tmp_path / "x.png"
    p.write_bytes(b"")
    with pytest.raises(DataError, match="x.png"):
        read_image(p)


def test_corrupt_label_names_the_file(tmp_path):
    _folder(tmp_path)
    (tmp_path / "masks" / "b.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"b\.png: unreadable or corrupt label"):
        load_pair(scan_folder(tmp_path)[1])


def test_mask_resized_to_image_with_nearest(tmp_path):
    _write_img(tmp_path / "images" / "a.jpg", 40, 30)
    m = np.zeros((20, 15), np.uint8)
    m[:, 7:] = 255
    _write_mask(tmp_path / "masks" / "a.png", m)
    img, lab = load_pair(scan_folder(tmp_path)[0])
    assert lab.shape == img.shape[:2] == (40, 30)
    assert set(np.unique(lab)) == {0.0, 1.0}  # nearest keeps it binary


def test_mask_with_values_0_1(tmp_path):
    m = np.zeros((8, 8), np.uint8)
    m[2:6, 2:6] = 1
    _write_mask(tmp_path / "m.png", m)
    lab = read_label(tmp_path / "m.png", "mask")
    assert lab.sum() == 16 and lab.max() == 1.0


def test_rgba_alpha_and_single_channel_alpha(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 3] = 128
    rgba[..., 0] = 255  # colour channels must be ignored
    _write_mask(tmp_path / "a.png", rgba)
    assert np.allclose(read_label(tmp_path / "a.png", "alpha"), 128 / 255)
    _write_mask(tmp_path / "g.png", np.full((10, 10), 255, np.uint8))
    assert np.allclose(read_label(tmp_path / "g.png", "alpha"), 1.0)


def test_shared_folders_scan(data_dir):
    hsd = scan_folder(data_dir / "hsd")
    ais = scan_folder(data_dir / "aisegment-40")
    assert len(hsd) == 220 and hsd[0].label_kind == "mask"
    assert len(ais) == 40 and ais[0].label_kind == "alpha"
    img, lab = load_pair(ais[0])
    assert img.shape[:2] == lab.shape and 0 < lab.mean() < 1


def _copy_pair(src: Sample, dst_root: Path) -> Sample:
    (dst_root / "images").mkdir(parents=True, exist_ok=True)
    (dst_root / "masks").mkdir(parents=True, exist_ok=True)
    img = dst_root / "images" / src.image_path.name
    lab = dst_root / "masks" / src.label_path.name
    shutil.copyfile(src.image_path, img)
    shutil.copyfile(src.label_path, lab)
    return Sample(src.stem, img, lab, src.label_kind)


def test_truncated_photo_is_an_error_naming_it(tmp_path, data_dir):
    """A real shared photo cut to 60% of its bytes: OpenCV alone half-decodes it without an error."""
    sample = _copy_pair(scan_folder(data_dir / "hsd")[0], tmp_path)
    raw = sample.image_path.read_bytes()
    sample.image_path.write_bytes(raw[: int(len(raw) * 0.6)])
    assert cv2.imread(str(sample.image_path)) is not None  # what made it slip through before
    with pytest.raises(DataError, match=rf"{sample.image_path.name}: truncated or corrupt image"):
        load_pair(sample)


def test_label_of_another_shape_is_an_error_naming_both(tmp_path, data_dir):
    """A 37x211 mask for a photo of another aspect ratio is not stretched over it."""
    sample = _copy_pair(scan_folder(data_dir / "hsd")[0], tmp_path)
    mask = cv2.imread(str(sample.label_path), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(sample.label_path), cv2.resize(mask, (37, 211), interpolation=cv2.INTER_NEAREST))
    with pytest.raises(DataError, match=rf"{sample.label_path.name}: label is 37x211 but its image "
                                        rf"{sample.image_path.name} is \d+x\d+: aspect ratios differ"):
        load_pair(sample)


def test_every_shared_label_has_its_photos_aspect(data_dir):
    """The 2% limit leaves every real pair alone (HSD masks differ in size by up to 0.17% in aspect)."""
    from PIL import Image

    from bench.data.samples import MAX_ASPECT_MISMATCH
    worst = 0.0
    for s in scan_folder(data_dir / "hsd"):
        (iw, ih), (lw, lh) = Image.open(s.image_path).size, Image.open(s.label_path).size
        worst = max(worst, abs((iw / ih) / (lw / lh) - 1))
    assert 0 < worst < MAX_ASPECT_MISMATCH / 5
