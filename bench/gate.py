"""Regression gate: compare the current tree's figures with a committed baseline.

``check(current, baseline, tolerances) -> list[Violation]`` is pure. Figures are grouped per design:
``{arch: {metric: value}}``. Each metric has a rule:

- ``exact``: deterministic counts (parameters, MACs) must not change at all (MACs compared to 1e-9
  relative, they are float sums);
- ``rel``: deterministic but not bit-exact figures (ARM instruction counts) may move by ``limit``
  (relative, either direction);
- ``floor``: accuracy must not fall more than ``limit`` (absolute) below the baseline;
- ``ratio``: time ratios measured in one run (ncnn/PyTorch, latency / calibration kernel) may grow
  by at most ``limit`` (relative); they are only compared when the baseline comes from the same
  kind of machine (see :func:`machine_kind`);
- ``true``: must hold (output parity).

A metric missing on either side is reported (``skipped``), not silently passed.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional

BASELINE_VERSION = 1

Figures = Mapping[str, Mapping[str, Any]]


class BaselineError(RuntimeError):
    """The baseline file is missing, damaged or of an unknown version."""


@dataclass(frozen=True)
class Rule:
    kind: str  # exact | rel | floor | ratio | true
    limit: float = 0.0
    why: str = ""


# Tolerances; the time-ratio limits come from the run-to-run spread measured on this machine kind
# (README, "Regression gate").
DEFAULT_RULES: dict[str, Rule] = {
    "params": Rule("exact", 0, "parameter count is deterministic"),
    "macs_g": Rule("exact", 1e-9, "fvcore MACs are deterministic"),
    "arm_instructions_m": Rule("rel", 0.005, "guest instructions under qemu repeat to ~1e-5"),
    "miou": Rule("floor", 0.005, "deterministic evaluation of committed checkpoints"),
    "parity_ok_ncnn": Rule("true", 0, "ncnn output must match PyTorch"),
    "parity_ok_arm": Rule("true", 0, "emulated aarch64 ncnn output must match x86 ncnn"),
    "ncnn_over_torch": Rule("ratio", 0.35, "ncnn/PyTorch latency ratio, same run"),
    "torch_over_calib": Rule("ratio", 0.35, "PyTorch latency / calibration kernel time, same run"),
    "ncnn_over_calib": Rule("ratio", 0.35, "ncnn latency / calibration kernel time, same run"),
}


@dataclass(frozen=True)
class Comparison:
    arch: str
    metric: str
    baseline: Any
    current: Any
    change: Optional[float]  # relative change (current / baseline - 1) where defined
    limit: str
    verdict: str  # ok | FAIL | skipped: why

    @property
    def failed(self) -> bool:
        return self.verdict == "FAIL"


Violation = Comparison  # a comparison whose verdict is FAIL


def machine_kind(machine: Mapping[str, Any]) -> str:
    """What makes time ratios comparable: CPU model, core count and ISA."""
    return f"{machine.get('cpu', '?')} / {machine.get('cores', '?')} cores / {machine.get('arch', '?')}"


def _rel(cur: float, base: float) -> Optional[float]:
    if base == 0:
        return None if cur == 0 else math.inf
    return cur / base - 1.0


def compare(current: Figures, baseline: Figures, rules: Mapping[str, Rule] = DEFAULT_RULES,
            same_machine: bool = True, machine_note: str = "") -> list[Comparison]:
    """Every (design, metric) of the baseline compared with the current figures."""
    out: list[Comparison] = []
    for arch in sorted(set(baseline) | set(current)):
        base_m, cur_m = baseline.get(arch, {}), current.get(arch, {})
        for metric in sorted(set(base_m) | set(cur_m)):
            rule = rules.get(metric)
            if rule is None:
                continue
            b, c = base_m.get(metric), cur_m.get(metric)
            if b is None or c is None:
                side = "baseline" if b is None else "current run"
                out.append(Comparison(arch, metric, b, c, None, _limit_text(rule),
                                      f"skipped: not in the {side}"))
                continue
            if rule.kind == "true":
                out.append(Comparison(arch, metric, b, c, None, "must hold",
                                      "ok" if bool(c) else "FAIL"))
                continue
            change = _rel(float(c), float(b))
            if rule.kind == "ratio" and not same_machine:
                out.append(Comparison(arch, metric, b, c, change, _limit_text(rule),
                                      f"skipped: baseline from another machine kind{machine_note}"))
                continue
            if rule.kind == "exact":
                ok = c == b if rule.limit == 0 else abs(float(c) - float(b)) <= rule.limit * max(abs(float(b)), 1e-30)
            elif rule.kind == "rel":
                ok = change is not None and abs(change) <= rule.limit
            elif rule.kind == "floor":
                ok = float(c) >= float(b) - rule.limit
            elif rule.kind == "ratio":
                ok = change is not None and change <= rule.limit
            else:
                raise ValueError(f"unknown rule kind {rule.kind!r} for {metric}")
            out.append(Comparison(arch, metric, b, c, change, _limit_text(rule), "ok" if ok else "FAIL"))
    return out


def check(current: Figures, baseline: Figures, rules: Mapping[str, Rule] = DEFAULT_RULES,
          same_machine: bool = True) -> list[Violation]:
    """The violations only (empty list = the gate passes)."""
    return [c for c in compare(current, baseline, rules, same_machine) if c.failed]


def _limit_text(rule: Rule) -> str:
    return {"exact": "unchanged", "rel": f"±{rule.limit:.2%}", "floor": f"≥ baseline − {rule.limit}",
            "ratio": f"≤ +{rule.limit:.0%}", "true": "must hold"}[rule.kind]


@dataclass
class Baseline:
    metrics: dict[str, dict[str, Any]]
    machine: dict[str, Any]
    versions: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    created: str = ""
    commit: str = ""
    version: int = BASELINE_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def parse_baseline(text: str, source: str = "baseline") -> Baseline:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(obj, dict) or "metrics" not in obj or "machine" not in obj:
        raise BaselineError(f"{source}: not a baseline file (needs 'metrics' and 'machine')")
    if obj.get("version") != BASELINE_VERSION:
        raise BaselineError(f"{source}: baseline version {obj.get('version')!r}, expected {BASELINE_VERSION}")
    if not isinstance(obj["metrics"], dict) or not all(isinstance(v, dict) for v in obj["metrics"].values()):
        raise BaselineError(f"{source}: 'metrics' must map each design to its figures")
    fields = {k: obj[k] for k in ("metrics", "machine", "versions", "reason", "created", "commit", "version") if k in obj}
    return Baseline(**fields)


def load_baseline(path: Path) -> Baseline:
    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"{path}: baseline file not found (create it with "
                            "`python run_bench.py check --update-baseline --reason ...`)")
    return parse_baseline(path.read_text(), str(path))


def new_baseline(metrics: Figures, machine: Mapping[str, Any], versions: Mapping[str, Any],
                 reason: str, commit: str = "") -> Baseline:
    if not reason.strip():
        raise ValueError("a baseline update needs a reason")
    return Baseline({a: dict(m) for a, m in metrics.items()}, dict(machine), dict(versions), reason,
                    datetime.now(timezone.utc).isoformat(timespec="seconds"), commit)
