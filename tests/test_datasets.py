"""Dataset adapters on tiny fixtures in each public layout (made here), and the committed splits."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.data.samples import DataError, load_pair, scan_folder
from bench.data.datasets import (DUPLICATES_FILE, SPLITS_DIR, detect_layout, known_layouts, make_split, open_dataset,
                                 portrait_v2_splits, read_duplicates, read_stems,
                                 split_files_sha256, split_path, split_stems)


def _img(path: Path, h=24, w=16, value=100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))


def _gray(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), arr)


def _rgba(path: Path, alpha: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgba = np.zeros(alpha.shape + (4,), np.uint8)
    rgba[..., 3] = alpha
    cv2.imwrite(str(path), rgba)


def _half(h=24, w=16, top=255) -> np.ndarray:
    a = np.zeros((h, w), np.uint8)
    a[:, w // 2:] = top
    return a


def test_all_layouts_registered():
    assert known_layouts() == ["folder", "eg1800", "aisegment", "ppm100", "p3m10k"]


def test_eg1800_layout_lists_and_label_convention(tmp_path):
    root = tmp_path / "EG1800"
    lab = _half(top=1)
    lab[0, 0] = 255  # PortraitNet: values > 1 are background
    for i in range(1, 4):
        _img(root / "Images" / f"{i:05d}.png")
        _gray(root / "Labels" / f"{i:05d}.png", lab)
    _gray(root / "Labels" / "00099.png", lab)  # EG1800's Labels/ holds extra files: allowed
    (root / "eg1800_train.txt").write_text("00001.png\n00002.png\n")
    (root / "eg1800_test.txt").write_text("00003.png\n")
    assert detect_layout(root) == "eg1800"
    test = open_dataset(root)  # default split: test
    assert [s.stem for s in test] == ["00003"] and test[0].label_kind == "mask01"
    assert [s.stem for s in open_dataset(root, split="train")] == ["00001", "00002"]
    assert len(open_dataset(root, split="all")) == 3
    _, y = load_pair(test[0])
    assert y[0, 0] == 0 and y[:, 8:].sum() == 24 * 8 and y[:, :8].sum() == 0
    (root / "eg1800_test.txt").write_text("00003.png\n00042.png\n")
    with pytest.raises(DataError, match="00042"):
        open_dataset(root)


def test_eg1800_label_stored_as_0_255_is_read_too(tmp_path):
    root = tmp_path / "eg"
    _img(root / "Images" / "a.png")
    _gray(root / "Labels" / "a.png", _half(top=255))
    (root / "eg1800_test.txt").write_text("a.png\n")
    _, y = load_pair(open_dataset(root)[0])
    assert y.sum() == 24 * 8


def test_aisegment_nested_clip_and_matting_folders(tmp_path):
    root = tmp_path / "matting_human_half"
    for group, sub, stem in [("1803151818", "00000000", "1803151818-00000003"),
                             ("1803151818", "00000001", "1803151818-00000101"),
                             ("1803201916", "00000000", "1803201916-00000007")]:
        _img(root / "clip_img" / group / f"clip_{sub}" / f"{stem}.jpg")
        _rgba(root / "matting" / group / f"matting_{sub}" / f"{stem}.png", _half(top=200))
    (root / "matting" / "1803151818" / "matting_00000000" / "._junk.png").write_bytes(b"mac")
    assert detect_layout(root) == "aisegment"
    samples = open_dataset(root)
    assert [s.stem for s in samples] == ["1803151818-00000003", "1803151818-00000101", "1803201916-00000007"]
    _, y = load_pair(samples[0])
    assert y.max() == pytest.approx(200 / 255) and samples[0].label_kind == "alpha"
    _img(root / "clip_img" / "1803201916" / "clip_00000000" / "1803201916-00000008.jpg")
    with pytest.raises(DataError, match="image without label.*00000008"):
        open_dataset(root)


def test_ppm100_image_and_single_channel_matte(tmp_path):
    root = tmp_path / "PPM-100"
    for s in ("p1", "p2"):
        _img(root / "image" / f"{s}.jpg", 30, 20)
        _gray(root / "matte" / f"{s}.png", np.full((15, 10), 128, np.uint8))  # stored smaller
    assert detect_layout(root) == "ppm100"
    samples = open_dataset(root)
    x, y = load_pair(samples[1])
    assert y.shape == x.shape[:2] and np.allclose(y, 128 / 255)
    (root / "matte" / "p2.png").unlink()
    with pytest.raises(DataError, match="p2"):
        open_dataset(root)


def test_p3m10k_splits(tmp_path):
    root = tmp_path / "P3M-10k"
    _img(root / "train" / "blurred_image" / "t1.jpg")
    _gray(root / "train" / "mask" / "t1.png", _half())
    for part, img_dir in (("P3M-500-P", "blurred_image"), ("P3M-500-NP", "original_image")):
        for s in ("v1", "v2"):
            _img(root / "validation" / part / img_dir / f"{part}-{s}.jpg")
            _gray(root / "validation" / part / "mask" / f"{part}-{s}.png", _half(top=180))
        _gray(root / "validation" / part / "trimap" / f"{part}-v1.png", _half())  # ignored
    assert detect_layout(root) == "p3m10k"
    assert [s.stem for s in open_dataset(root)] == ["P3M-500-NP-v1", "P3M-500-NP-v2"]  # default val_np
    assert [s.stem for s in open_dataset(root, split="val_p")] == ["P3M-500-P-v1", "P3M-500-P-v2"]
    tr = open_dataset(root, split="train")
    assert [s.stem for s in tr] == ["t1"] and tr[0].label_kind == "alpha"
    with pytest.raises(DataError, match="no split 'test'"):
        open_dataset(root, split="test")


def test_folder_layout_and_split_files(tmp_path):
    root = tmp_path / "myset"
    for s in ("a", "b", "c"):
        _img(root / "images" / f"{s}.jpg")
        _gray(root / "masks" / f"{s}.png", _half())
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "myset_val.txt").write_text("# comment\nb\n\n")
    assert detect_layout(root) == "folder"
    assert [s.stem for s in open_dataset(root)] == ["a", "b", "c"]
    assert [s.stem for s in open_dataset(root, split="val", splits_dir=splits)] == ["b"]
    with pytest.raises(DataError, match="myset_train.txt"):
        open_dataset(root, split="train", splits_dir=splits)


def test_unknown_layout_is_named(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DataError, match="unknown data layout"):
        open_dataset(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(tmp_path / "missing")


def test_make_split_is_seeded_stable_and_disjoint():
    stems = [str(i) for i in range(100)]
    tr, va = make_split(stems, 0.2, seed=0)
    assert len(va) == 20 and len(tr) == 80 and not set(tr) & set(va)
    assert (tr, va) == make_split(list(reversed(stems)), 0.2, seed=0)  # order does not matter
    assert make_split(stems, 0.2, seed=1)[1] != va
    _, va2 = make_split(stems + ["new"], 0.2, seed=0)
    assert len(set(va) - set(va2)) <= 1  # a new stem shifts the boundary by at most one


def test_committed_hsd_split_is_the_seeded_split_of_the_shared_data(data_dir):
    tr, va = split_stems("hsd", "train"), split_stems("hsd", "val")
    all_stems = [s.stem for s in scan_folder(data_dir / "hsd")]
    assert (tr, va) == make_split(all_stems, 0.2, seed=0)
    assert sorted(tr + va) == sorted(all_stems) and not set(tr) & set(va)
    assert len(open_dataset(data_dir / "hsd", split="val")) == len(va)


def test_split_hash_changes_with_content(tmp_path):
    files = [split_path("hsd", s) for s in ("train", "val")] + [split_path("aisegment-40", s)
                                                                for s in ("train-v2", "val")]
    h = split_files_sha256(files)
    assert h == split_files_sha256(files) and len(h) == 64
    copy = tmp_path / "hsd_val.txt"
    copy.write_text("\n".join(read_stems(SPLITS_DIR / "hsd_val.txt")[1:]) + "\n")
    assert split_files_sha256([copy]) != split_files_sha256([SPLITS_DIR / "hsd_val.txt"])


# ----------------------------------------------------------------------------- recipe v2 (issue 16)

def test_v2_split_files_equal_their_definition(data_dir):
    lists = portrait_v2_splits(data_dir)
    assert {p.name for p in SPLITS_DIR.glob("*.txt")} == set(lists), "a committed split file no recipe defines"
    for name, stems in lists.items():
        assert read_stems(SPLITS_DIR / name) == stems, f"splits/{name} is not portrait_v2_splits()"
    test = read_stems(data_dir / "eg1800" / "test.txt")
    assert lists["eg1800_test.txt"] == sorted(test) and len(test) == 264  # the authors' test list
    pool = set(read_stems(data_dir / "eg1800" / "train.txt")) | set(read_stems(data_dir / "eg1800" / "extra.txt"))
    tr, va = set(lists["eg1800_train.txt"]), set(lists["eg1800_val.txt"])
    assert tr | va <= pool and not tr & va and not (tr | va) & set(test)
    assert len(va) == round(0.1 * len(pool)) and len(pool - tr - va) <= len(read_duplicates(data_dir / "eg1800" / DUPLICATES_FILE))
    ccp = {s.stem for s in scan_folder(data_dir / "ccp-person")}
    ctr, cva = set(lists["ccp-person_train.txt"]), set(lists["ccp-person_val.txt"])
    assert ctr | cva == ccp and not ctr & cva and len(cva) == round(0.1 * len(ccp))


def _eval_stems() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for p in SPLITS_DIR.glob("*.txt"):
        name, split = p.stem.rsplit("_", 1)
        if split in ("val", "test"):
            out.setdefault(name, set()).update(read_stems(p))
    return out


def test_no_training_stem_is_an_evaluation_photo(data_dir):
    """The 13 EG1800 photos that are aisegment-40 photos: no training list holds one whose twin is
    evaluated on (EG1800 test or validation, aisegment-40 validation); no stem is on both sides of
    its own set."""
    twins = read_duplicates(data_dir / "eg1800" / DUPLICATES_FILE)
    assert len(twins) == 13 and len({a for _, a in twins}) == 12
    ev = _eval_stems()
    same_photo = {("eg1800", e): ("aisegment-40", a) for e, a in twins}
    same_photo.update({v: k for k, v in list(same_photo.items())})
    lists = sorted(p for p in SPLITS_DIR.glob("*_train*.txt"))
    assert {p.name for p in lists} >= {"eg1800_train.txt", "ccp-person_train.txt", "hsd_train.txt",
                                       "aisegment-40_train-v2.txt"}
    for p in lists:
        name = p.name.split("_", 1)[0]
        stems = set(read_stems(p))
        assert not stems & ev.get(name, set()), f"{p.name}: a training stem is evaluated on"
        for s in stems:
            other = same_photo.get((name, s))
            assert other is None or other[1] not in ev.get(other[0], set()), \
                f"{p.name}: {s} is the same photo as {other[0]} evaluation image {other[1]}"


@pytest.mark.parametrize("name,split,n", [("eg1800", "test", 264), ("eg1800", "val", 134),
                                          ("ccp-person", "val", 80)])
def test_adapters_read_the_real_new_sets(name, split, n, data_dir):
    samples = open_dataset(data_dir / name, split=split)
    assert detect_layout(data_dir / name) == "folder" and len(samples) == n
    assert all(s.label_kind == "mask" for s in samples)
    for s in samples[:3]:
        img, lab = load_pair(s)
        assert img.dtype == np.uint8 and img.shape[2] == 3 and lab.shape == img.shape[:2]
        assert set(np.unique(lab)) <= {0.0, 1.0} and 0.05 < lab.mean() < 0.95  # a person, not all
