"""Locating and loading weights: published checkpoints (hash-checked), our trained ones, any path.

Weights are only ever read from disk (``shared/models`` by default); nothing is downloaded.
Checkpoints are loaded with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn

from archs import ArchSpec, Preprocess, create_arch, get_spec

from .paths import CHECKPOINTS_DIR, DEFAULT_MODELS_DIR



class WeightsError(RuntimeError):
    """A checkpoint is missing, damaged or does not fit the design."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_sha256sums(models_dir: Path) -> dict[str, str]:
    """``SHA256SUMS`` of the models folder as {relative path: hex digest}."""
    sums = Path(models_dir) / "SHA256SUMS"
    if not sums.is_file():
        raise WeightsError(f"{sums}: checksum file missing; cannot verify checkpoints")
    out = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            out[name.strip().lstrip("*").removeprefix("./")] = digest.lower()
    return out


def verify_checkpoint(models_dir: Path, relpath: str) -> Path:
    """Path of ``relpath`` under ``models_dir`` after checking its SHA-256 against SHA256SUMS."""
    path = Path(models_dir) / relpath
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint not found (the suite never downloads weights; "
                           f"point --models-dir at the folder holding {relpath})")
    expected = read_sha256sums(models_dir).get(relpath)
    if expected is None:
        raise WeightsError(f"{Path(models_dir) / 'SHA256SUMS'}: no entry for {relpath}")
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsError(f"{path}: SHA-256 {actual} does not match SHA256SUMS ({expected}); "
                           "the file is damaged or not the published checkpoint")
    return path


def read_state_dict(path: Path, key: Optional[str] = "state_dict") -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged or not a torch file
        raise WeightsError(f"{path}: cannot be read as a torch checkpoint ({exc.__class__.__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if isinstance(obj, dict) and key and key in obj and isinstance(obj[key], dict):
        obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return obj


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> nn.Module:
    state = {k.removeprefix("module."): v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{source}: does not fit design {getattr(model.spec, 'name', '?')}: "
                           f"{str(exc).splitlines()[0]} ...") from exc
    return model


@dataclass(frozen=True)
class LoadedModel:
    model: nn.Module
    spec: ArchSpec
    preprocess: Preprocess
    weights: str  # "random", a checkpoint name ("seed", "trained") or a path
    source: str  # file the weights came from ("" for random)


# the suite's own checkpoints of a design, by weights name: checkpoints/<arch><suffix>.pt
OWN_WEIGHTS = {"trained": "", "finetuned": "-finetuned"}  # finetuned: the seed retrained (train --init seed)


def trained_checkpoint_path(arch: str, checkpoints_dir: Path = CHECKPOINTS_DIR) -> Path:
    return Path(checkpoints_dir) / f"{arch}.pt"


def own_checkpoint_path(arch: str, weights: str, checkpoints_dir: Path = CHECKPOINTS_DIR) -> Path:
    """Where the suite keeps its ``weights`` (a key of :data:`OWN_WEIGHTS`) of ``arch``."""
    return trained_checkpoint_path(arch + OWN_WEIGHTS[weights], checkpoints_dir)


def load_model(arch: str, weights: str = "random", models_dir: Path = DEFAULT_MODELS_DIR,
               checkpoints_dir: Path = CHECKPOINTS_DIR, seed: int = 0) -> LoadedModel:
    """Build ``arch`` in eval mode with ``weights``: ``random`` (seeded init), the name of a
    published checkpoint of the design (e.g. ``seed``), ``trained`` (``checkpoints/<arch>.pt``),
    ``finetuned`` (``checkpoints/<arch>-finetuned.pt``) or a path to a state dict."""
    spec = get_spec(arch)
    torch.manual_seed(seed)
    model = create_arch(arch)
    preprocess, source = spec.preprocess, ""
    if weights == "random":
        pass
    elif weights in {c.name for c in spec.checkpoints}:
        info = spec.checkpoint(weights)
        path = verify_checkpoint(Path(models_dir), info.relpath)
        load_into(model, read_state_dict(path, info.state_dict_key), path)
        preprocess, source = info.preprocess, str(path)
    elif weights in OWN_WEIGHTS:
        path = own_checkpoint_path(arch, weights, checkpoints_dir)
        if not path.is_file():
            how = " --init seed" if weights == "finetuned" else ""
            raise WeightsError(f"{path}: no {weights} checkpoint for {arch} (train one with "
                               f"`python run_bench.py train --arch {arch}{how}`)")
        load_into(model, read_state_dict(path), path)
        source = str(path)
    else:
        path = Path(weights)
        if not path.is_file():
            names = ", ".join(["random", *OWN_WEIGHTS, *[c.name for c in spec.checkpoints]])
            raise WeightsError(f"{path}: no such file; --weights takes one of {names} or a path")
        load_into(model, read_state_dict(path), path)
        source = str(path)
    return LoadedModel(model.eval(), spec, preprocess, weights, source)
