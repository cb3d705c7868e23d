"""What a run records about where it ran: date, commit, machine and library versions. Probing git
and the CPU is measuring, so it lives here; the report layer only writes the result."""
from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from typing import Any, Mapping

from ..backends.table import package_version
from ..paths import REPO_ROOT

VERSIONED = ("ncnn", "pnnx", "onnxruntime", "fvcore", "thop", "numpy", "pandas")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=REPO_ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine() -> dict:
    """The machine a measurement runs on: what makes its timings comparable with others'."""
    from ..measure.latency import cpu_model
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "os": platform.platform(), "arch": platform.machine()}


def machine_kind(machine: Any) -> str:
    """A machine header (:func:`machine`: a dict or its JSON text) as the kind that timings and time
    ratios are comparable within, "<cpu> / <cores> cores / <arch>" (the keys of the gate baseline's
    ``machines``); "" when unknown."""
    if isinstance(machine, str):
        try:
            machine = json.loads(machine)
        except ValueError:
            return machine.strip()
    if not isinstance(machine, Mapping) or not machine:
        return ""
    return f"{machine.get('cpu', '?')} / {machine.get('cores', '?')} cores / {machine.get('arch', '?')}"


def run_meta() -> dict:
    """Header of a run: date, commit, machine, library versions."""
    import torch
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                **{name: package_version(name) for name in VERSIONED}}
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "commit": _git("rev-parse", "--short", "HEAD"),
            "dirty": bool(_git("status", "--porcelain")),
            "machine": machine(),
            "versions": versions}
