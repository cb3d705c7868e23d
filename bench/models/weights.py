"""Locating and loading weights: published checkpoints (hash-checked), our trained ones, any path.

Weights are only ever read from disk (``shared/models`` by default); nothing is downloaded.
Checkpoints are loaded with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn as nn

from archs import ArchSpec, Preprocess, create_arch, get_spec

from ..paths import CHECKPOINTS_DIR, DEFAULT_MODELS_DIR


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


ACCEPTED = ("a state dict saved with torch.save(model.state_dict(), path), or a checkpoint dict holding one "
            "under 'state_dict'")


def describe_file(path: Path) -> Optional[str]:
    """What ``path`` is when it is plainly not a torch checkpoint (None: it may be one): text, an
    ONNX or TFLite model, a TorchScript archive, a zip that torch did not write, an empty file."""
    import zipfile

    path = Path(path)
    head = path.read_bytes()[:4096] if path.stat().st_size else b""
    if not head:
        return "an empty file"
    if head[4:8] == b"TFL3":
        return "a TFLite model file, not a PyTorch checkpoint"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return "a damaged zip archive (a truncated or partly written checkpoint)"
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            return "a TorchScript archive (torch.jit.save), not a state dict"
        if not any(n.endswith("/data.pkl") for n in names):
            return "a zip archive that torch.save did not write"
        return None
    if head[:2] == b"\x80\x02" or head[:1] == b"\x80":  # the legacy (pre-zip) torch.save format
        return None
    if head[:4] == b"PK\x03\x04":
        return "a truncated or damaged zip archive (a checkpoint cut short, or partly written)"
    if b"onnx" in head[:64].lower() or head[:2] == b"\x08\x07" or head[:1] == b"\x08":
        return "an ONNX model file (or another protobuf), not a PyTorch checkpoint"
    try:
        head.decode("utf-8")
        return "a text file, not a PyTorch checkpoint"
    except UnicodeDecodeError:
        pass
    return "not a PyTorch checkpoint (neither the zip nor the legacy format that torch.save writes)"


def read_state_dict(path: Path, key: Optional[str] = "state_dict") -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, loaded with ``weights_only=True``; a :class:`WeightsError` in the
    suite's own words (what the file is, what is accepted) for anything else."""
    path = Path(path)
    what = describe_file(path)
    if what:
        raise WeightsError(f"{path}: {what}; --weights takes {ACCEPTED}")
    import pickle
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # (torch's own message suggests weights_only=False: advice the suite never follows)
        found = str(exc).split("GLOBAL ", 1)[1].split(" ", 1)[0] if "GLOBAL " in str(exc) else ""
        raise WeightsError(f"{path}: holds Python objects besides tensors{f' ({found})' if found else ''}, "
                           "such as a pickled model; the suite loads only tensors (weights_only=True), so "
                           f"--weights takes {ACCEPTED}") from None
    except Exception as exc:  # damaged
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise WeightsError(f"{path}: damaged or truncated checkpoint ({exc.__class__.__name__}: {first[:160]})") from None
    if isinstance(obj, dict) and key and key in obj and isinstance(obj[key], dict):
        obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        kind = type(obj).__name__ if not isinstance(obj, dict) else "a dict without tensors"
        raise WeightsError(f"{path}: holds {kind}, not a state dict; --weights takes {ACCEPTED}")
    return obj


def _fits(arch: str, keys: set[str]) -> bool:
    try:
        return set(create_arch(arch).state_dict()) == keys
    except Exception:
        return False


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> nn.Module:
    state = {k.removeprefix("module."): v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        name = getattr(model.spec, "name", "?")
        from archs import list_archs
        other = next((a for a in list_archs(peers=True) if a != name and _fits(a, set(state))), None)
        if other:
            raise WeightsError(f"{source}: a state dict of {other}, not of {name}") from None
        raise WeightsError(f"{source}: does not fit design {name}: "
                           f"{str(exc).splitlines()[0]} ...") from None
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


@dataclass(frozen=True)
class Weights:
    """One set of weights of a model, under the name every command takes (``--weights``, the plan,
    the gate, the report's rows): where the file is, how inputs are prepared for it and what was
    recorded about it, in one place (as torchvision's weights enums are the model's weights).

    ``origin``: "random" (seeded initialisation), "published" (a file under the shared models
    folder, hash-checked against its ``SHA256SUMS``; ``file`` is relative to that folder) or "own"
    (a checkpoint ``train`` wrote under ``checkpoints/``; ``file`` is its name there, its provenance
    beside it). ``planned``: whether ``all`` measures it always, only when its file is there, or
    never (random weights have no accuracy to report)."""

    name: str
    origin: str
    file: Optional[str] = None
    preprocess: Optional[Preprocess] = None  # None: the design's own (ArchSpec.preprocess)
    input_size: Optional[int] = None  # published: the side it was trained / evaluated at
    reference_miou: Optional[float] = None  # published: the recorded mIoU on all of shared/data/hsd
    state_dict_key: Optional[str] = "state_dict"
    planned: str = "always"  # "always", "if present" or "never"
    make: str = ""  # own: the command that makes it

    def path(self, models_dir: Optional[Path] = None, checkpoints_dir: Optional[Path] = None) -> Optional[Path]:
        """Its file (None for random weights); defaults: the shared models folder, ``checkpoints/``."""
        if self.origin == "published":
            return Path(models_dir or DEFAULT_MODELS_DIR) / str(self.file)
        if self.origin == "own":
            return Path(checkpoints_dir or CHECKPOINTS_DIR) / str(self.file)
        return None


def weights_catalog(spec: ArchSpec) -> dict[str, Weights]:
    """Every named set of weights of a design, by name: random, its published checkpoints (from its
    spec, ``archs/``), then the suite's own (``checkpoints/``)."""
    out = {"random": Weights("random", "random", planned="never")}
    for c in spec.checkpoints:
        out[c.name] = Weights(c.name, "published", c.relpath, c.preprocess, c.input_size, c.reference_miou,
                              c.state_dict_key)
    for name in OWN_WEIGHTS:
        how = f"python run_bench.py train --arch {spec.name}" + (" --init seed" if name == "finetuned" else "")
        out[name] = Weights(name, "own", _own_file(spec.name, name),
                            planned="always" if name == "trained" else "if present", make=how)
    return out


def weights_names(spec: ArchSpec) -> list[str]:
    """The weights names ``load_model`` takes for a design (besides a path)."""
    cat = weights_catalog(spec)
    return ["random", *(n for n, w in cat.items() if w.origin == "own"),
            *(n for n, w in cat.items() if w.origin == "published")]


def planned_weights(arch: str, origins: Sequence[str] = ("published", "own"), if_present: bool = True,
                    checkpoints_dir: Optional[Path] = None) -> list[str]:
    """The weights names a design is measured with, by origin in the order given: those planned
    always and, with ``if_present``, those planned "if present" whose file is there. Names, not
    paths, so that a job's key is the same in every clone. ``all``: published then own; the gate:
    ``origins=("own", "published"), if_present=False``."""
    cat = weights_catalog(get_spec(arch))
    return [w.name for origin in origins for w in cat.values() if w.origin == origin and (
        w.planned == "always" or (if_present and w.planned == "if present"
                                  and w.path(checkpoints_dir=checkpoints_dir).is_file()))]


def _own_file(arch: str, weights: str) -> str:
    """The file name under ``checkpoints/`` of the suite's ``weights`` (a key of :data:`OWN_WEIGHTS`)."""
    return f"{arch}{OWN_WEIGHTS[weights]}.pt"


def trained_checkpoint_path(arch: str, checkpoints_dir: Path = CHECKPOINTS_DIR) -> Path:
    return Path(checkpoints_dir) / _own_file(arch, "trained")


def own_checkpoint_path(arch: str, weights: str, checkpoints_dir: Path = CHECKPOINTS_DIR) -> Path:
    """Where the suite keeps its ``weights`` (a key of :data:`OWN_WEIGHTS`) of ``arch``."""
    return Path(checkpoints_dir) / _own_file(arch, weights)


def load_model(arch: str, weights: str = "random", models_dir: Path = DEFAULT_MODELS_DIR,
               checkpoints_dir: Path = CHECKPOINTS_DIR, seed: int = 0) -> LoadedModel:
    """Build ``arch`` in eval mode with ``weights``: ``random`` (seeded init), the name of a
    published checkpoint of the design (e.g. ``seed``), ``trained`` (``checkpoints/<arch>.pt``),
    ``finetuned`` (``checkpoints/<arch>-finetuned.pt``) or a path to a state dict."""
    spec = get_spec(arch)
    catalog = weights_catalog(spec)
    torch.manual_seed(seed)
    model = create_arch(arch)
    preprocess, source = spec.preprocess, ""
    if weights == "random":
        pass
    elif weights in catalog and catalog[weights].origin == "published":
        info = catalog[weights]
        path = verify_checkpoint(Path(models_dir), str(info.file))
        load_into(model, read_state_dict(path, info.state_dict_key), path)
        preprocess, source = info.preprocess or preprocess, str(path)
    elif weights in catalog and catalog[weights].origin == "own":
        path = catalog[weights].path(checkpoints_dir=checkpoints_dir)
        if not path.is_file():
            raise WeightsError(f"{path}: no {weights} checkpoint for {arch} (train one with "
                               f"`{catalog[weights].make}`)")
        load_into(model, read_state_dict(path), path)
        source = str(path)
    else:
        path = Path(weights)
        if not path.is_file():
            names = ", ".join(weights_names(spec))
            raise WeightsError(f"{path}: no such file; --weights takes one of {names} or a path")
        load_into(model, read_state_dict(path), path)
        source = str(path)
    return LoadedModel(model.eval(), spec, preprocess, weights, source)
