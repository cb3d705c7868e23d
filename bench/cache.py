"""The suite's caches: every folder under ``.cache/`` is named here, and :func:`fill_once` is the
one way a cache entry is written (complete or not at all).

Entries are keyed by content (weights digest, converter version, options), so a stale entry is
never reused; deleting ``.cache/`` only costs time.

- ``ncnn/<key>``: a design converted with pnnx (``bench.backends``)
- ``onnx/<key>``: a design exported to ONNX (``bench.backends``)
- ``peers/<peer>-<key>``: a file peer converted to ncnn (``bench.models.peers``)
- ``arm/``: the aarch64 ncnn source, build, runner and qemu plugin (``bench.arm``)
- ``arm/results/<key>.json``: deterministic emulated-ARM rows (the ``arm_cost`` measurement)
- ``train-items/``: decoded, downscaled training images (``bench.train.loop``, keyed by content)
- ``handoff/history.jsonl``: the machine's recent hand-off outcomes, the quiet wait's wait budget
  (``bench.measure.handoff``; not keyed by content: an append-only log of the last minutes)
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable, Optional

from .paths import CACHE_DIR

FOLDERS = {"ncnn": "ncnn", "onnx": "onnx", "peers": "peers", "arm": "arm", "arm_results": "arm/results",
           "train_items": "train-items", "handoff": "handoff"}


def cache_folder(kind: str, cache_dir: Optional[Path] = None) -> Path:
    """The folder of cache ``kind`` (one of :data:`FOLDERS`) under ``cache_dir`` (default ``.cache``)."""
    if kind not in FOLDERS:
        raise KeyError(f"unknown cache {kind!r}; known: {', '.join(FOLDERS)}")
    return Path(cache_dir or CACHE_DIR) / FOLDERS[kind]


def fill_once(folder: Path, build: Callable[[Path], dict]) -> dict:
    """The ``meta.json`` of cache entry ``folder``. When the entry does not exist yet, ``build(tmp)``
    fills a temporary folder beside it and returns the meta; the folder is then renamed into place,
    so an interrupted or concurrent build never leaves a half-written entry (a concurrent build
    that finished first wins)."""
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        return json.loads(meta_path.read_text())
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{folder.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        meta = build(tmp)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        try:
            tmp.rename(folder)
        except OSError:  # another process finished the same entry first: use theirs
            if not meta_path.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return json.loads(meta_path.read_text())


def read_entry(path: Path) -> Optional[dict]:
    """A cached JSON record, or None when there is none."""
    return json.loads(path.read_text()) if path.is_file() else None


def write_entry(path: Path, record: dict) -> None:
    """Store a JSON record atomically (written beside, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)
