"""The backends the suite knows, in one table: the command line's choices, the plan, the report's
labels and the rows' ``backend`` column all read it. Adding a backend is a row here and a runner
module beside this one (docs/architecture.md)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Optional

import numpy as np
import torch


@dataclass(frozen=True)
class Backend:
    name: str  # the rows' ``backend`` value and the command line's --backend choice
    label: str  # how the report names it
    packages: tuple[str, ...]  # PyPI distributions it needs (a missing one makes its rows ``skipped``)
    runs_designs: bool  # a torch design is converted to it and timed on this CPU in every run
    where: str = "this CPU"  # where it runs



TABLE: dict[str, Backend] = {b.name: b for b in (
    Backend("torch", "PyTorch", ("torch",), runs_designs=True),
    Backend("ncnn", "ncnn x86", ("ncnn", "pnnx"), runs_designs=True),
    Backend("onnxruntime", "ONNX Runtime", ("onnxruntime", "onnx"), runs_designs=True),
    Backend("ncnn-arm", "ncnn ARM", ("ncnn", "pnnx"), runs_designs=False, where="an aarch64 device (bench.arm)"),
    Backend("litert", "LiteRT", ("ai-edge-litert",), runs_designs=False),  # published .tflite files only
)}
BACKENDS = tuple(n for n, b in TABLE.items() if b.runs_designs)  # what a design is timed on here


def get_backend(name: str) -> Backend:
    try:
        return TABLE[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(TABLE)}") from None


def backend_label(name: str) -> str:
    """The report's name of backend ``name`` (the name itself for one the table does not know)."""
    return TABLE[name].label if name in TABLE else name


def backend_column(name: str) -> str:
    """Column-safe backend name (``ncnn-arm`` -> ``ncnn_arm``) for per-backend columns."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", name)


def package_version(name: str) -> Optional[str]:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def backend_missing(name: str) -> Optional[str]:
    """Why backend ``name`` cannot run here (a missing package), or None when it can."""
    missing = [p for p in get_backend(name).packages if package_version(p) is None]
    return f"{name} backend needs the {', '.join(missing)} package(s)" if missing else None


def backend_versions() -> dict[str, Optional[str]]:
    """Versions of the libraries a latency row depends on (None = not installed)."""
    return {"torch": torch.__version__, "ncnn": package_version("ncnn"), "pnnx": package_version("pnnx"),
            "onnxruntime": package_version("onnxruntime"), "onnx": package_version("onnx"),
            "numpy": np.__version__}
