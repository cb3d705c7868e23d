"""Regression gate: compare the current tree's figures with a committed baseline.

``check(current, baseline, tolerances) -> list[Violation]`` is pure. Figures are grouped per design:
``{arch: {metric: value}}``. Each metric has a rule:

- ``exact``: deterministic counts (parameters, MACs) must not change at all (MACs compared to 1e-9
  relative, they are float sums);
- ``rel``: deterministic but not bit-exact figures (ARM instruction counts) may move by ``limit``
  (relative, either direction);
- ``floor``: accuracy must not fall more than ``limit`` (absolute) below the baseline;
- ``ratio``: time ratios measured in one run (ncnn/PyTorch timed interleaved, latency /
  calibration kernel) may grow by at most ``limit`` (relative); they are only compared with ratios
  from the same kind of machine (see :func:`machine_kind`): the baseline's own, or those of another
  machine kind kept in its ``machines`` section (``check --update-baseline --this-machine``;
  :func:`reference_for`);
- ``true``: must hold (output parity).

A metric missing on either side is reported (``skipped``), not silently passed.

What is measured for the gate: :func:`gate_jobs` (jobs of ``bench.run.adapters``) and
:func:`figures_from_rows` (their rows -> figures). Tolerances and the measured spread they come
from: ``docs/gate.md``.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

from .. import columns as C
from ..run.jobs import Job
from ..run.runinfo import machine_kind
from ..run.status import Status, row_status

BASELINE_VERSION = 1
GATE_SIZE = 256  # input side of every gate measurement
GATE_THREADS = 1  # latency threads: at 2 on a busy 2-core machine the ratios moved 50x and more (docs/gate.md)
GATE_REPEATS = 3  # latency rounds; the gate takes the median of the rounds' ratios
# the accuracy floors' images: the headline set (the authors' 264 EG1800 test portraits, never trained on,
# the set the papers report); baselines made before session 8 used hsd val (44 images)
GATE_ACCURACY_SET = ("eg1800", "test")
GATE_ACCURACY_NAME = "/".join(GATE_ACCURACY_SET)  # as the baseline's settings name it
OLD_ACCURACY_SET = "hsd/val"  # what a baseline without an ``accuracy_set`` setting was measured on
QUICK_TIMING = {"loops": 12, "warmup": 3, "attempts": 1, "quiet_wait_s": 1.0}  # --quick latency jobs
# the interleaved ncnn / PyTorch comparison (bench.measure.latency.measure_speedup): rounds, timed and untimed
# iterations per backend and round
INTERLEAVED = {"speedup_rounds": 10, "speedup_loops": 10, "speedup_warmup": 3}
QUICK_INTERLEAVED = {"speedup_rounds": 6, "speedup_loops": 6, "speedup_warmup": 2}

Figures = Mapping[str, Mapping[str, Any]]


class BaselineError(RuntimeError):
    """The baseline file is missing, damaged or of an unknown version."""


@dataclass(frozen=True)
class Rule:
    kind: str  # exact | rel | floor | ratio | true
    limit: float = 0.0
    why: str = ""


# Tolerances; the time-ratio limits come from the run-to-run spread measured on this machine kind
# (docs/gate.md).
DEFAULT_RULES: dict[str, Rule] = {
    "params": Rule("exact", 0, "parameter count is deterministic"),
    "macs_g": Rule("exact", 1e-9, "fvcore MACs are deterministic"),
    "arm_instructions_m": Rule("rel", 0.005, "guest instructions under qemu repeat to ~1e-5"),
    "miou_trained": Rule("floor", 0.005, "eg1800-test mIoU of the committed checkpoint (deterministic)"),
    "miou_seed": Rule("floor", 0.005, "eg1800-test mIoU of the published seed checkpoint (deterministic)"),
    "parity_ok_ncnn": Rule("true", 0, "ncnn output must match PyTorch"),
    "parity_ok_arm": Rule("true", 0, "emulated aarch64 ncnn output must match x86 ncnn"),
    # time ratios (1 thread): worst rise between two of 12 runs (over_calib: median of 3 rounds) or of
    # N runs (ncnn_over_torch: interleaved) on the 2-core machine, partly busy, x 1.5, rounded up to 5%
    # (docs/gate.md, "Rules and tolerances")
    "ncnn_over_torch": Rule("ratio", 0.35, "ncnn/PyTorch latency, timed interleaved in one process (spread 22%)"),
    "torch_over_calib": Rule("ratio", 0.85, "PyTorch latency / calibration kernel time, same run (spread 54%)"),
    "ncnn_over_calib": Rule("ratio", 0.60, "ncnn latency / calibration kernel time, same run (spread 39%)"),
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

    @property
    def skipped(self) -> bool:
        return Status.parse(self.verdict).skipped


Violation = Comparison  # a comparison whose verdict is FAIL
NOT_IN_RUN = str(Status.skip("not in the current run"))  # the verdict on a baseline figure this run did not produce


def make_strict(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """``check --strict``: a figure of the baseline that this run did not produce (its measurement
    was skipped, e.g. the ARM toolchain or a checkpoint is missing) fails instead of being skipped.
    Ratios refused because the baseline comes from another machine kind stay skipped."""
    return [replace(c, limit="must be measured (--strict)", verdict="FAIL") if c.verdict == NOT_IN_RUN else c
            for c in comparisons]


def machine_mismatch(baseline_machine: Mapping[str, Any], current_machine: Mapping[str, Any]) -> Optional[str]:
    """None when time ratios may be compared, else the message saying why they are not."""
    base, cur = machine_kind(baseline_machine), machine_kind(current_machine)
    if base == cur:
        return None
    return (f"the baseline comes from another machine kind ({base}; this one: {cur}): time ratios are "
            "not compared; parameters, MACs, ARM instructions, accuracy and parity still are")


def _rel(cur: float, base: float) -> Optional[float]:
    if base == 0:
        return None if cur == 0 else math.inf
    return cur / base - 1.0


def compare(current: Figures, baseline: Figures, rules: Mapping[str, Rule] = DEFAULT_RULES,
            same_machine: bool = True, machine_note: str = "",
            accuracy_note: Optional[str] = None) -> list[Comparison]:
    """Every (design, metric) of the baseline compared with the current figures. ``accuracy_note``
    (from :func:`accuracy_mismatch`): the floors are not compared, with this as the verdict."""
    out: list[Comparison] = []
    for arch in sorted(set(baseline) | set(current)):
        base_m, cur_m = baseline.get(arch, {}), current.get(arch, {})
        for metric in sorted(set(base_m) | set(cur_m)):
            rule = rules.get(metric)
            if rule is None:
                continue
            b, c = base_m.get(metric), cur_m.get(metric)
            if b is None or c is None:
                out.append(Comparison(arch, metric, b, c, None, _limit_text(rule),
                                      str(Status.skip("not in the baseline")) if b is None else NOT_IN_RUN))
                continue
            if rule.kind == "true":
                out.append(Comparison(arch, metric, b, c, None, "must hold",
                                      "ok" if bool(c) else "FAIL"))
                continue
            change = _rel(float(c), float(b))
            if rule.kind == "floor" and accuracy_note:
                out.append(Comparison(arch, metric, b, c, change, _limit_text(rule), str(Status.skip(accuracy_note))))
                continue
            if rule.kind == "ratio" and not same_machine:
                out.append(Comparison(arch, metric, b, c, change, _limit_text(rule),
                                      str(Status.skip(f"baseline from another machine kind{machine_note}"))))
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
    settings: dict[str, Any] = field(default_factory=dict)  # how it was measured (size, threads, loops)
    # the time ratios of other machine kinds: {machine_kind: {"machine", "metrics" (ratios per design),
    # "settings", "created", "commit", "reason", "versions"}}
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)

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
    fields = {k: obj[k] for k in ("metrics", "machine", "versions", "reason", "created", "commit", "version",
                                  "settings", "machines") if k in obj}
    for kind, entry in fields.get("machines", {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("metrics"), dict) or "machine" not in entry:
            raise BaselineError(f"{source}: machines[{kind!r}] needs 'machine' and 'metrics' (time ratios per design)")
    return Baseline(**fields)


def load_baseline(path: Path) -> Baseline:
    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"{path}: baseline file not found (create it with "
                            "`python run_bench.py check --update-baseline --reason ...`)")
    return parse_baseline(path.read_text(), str(path))


def new_baseline(metrics: Figures, machine: Mapping[str, Any], versions: Mapping[str, Any],
                 reason: str, commit: str = "", settings: Optional[Mapping[str, Any]] = None) -> Baseline:
    if not reason.strip():
        raise ValueError("a baseline update needs a reason")
    return Baseline({a: dict(m) for a, m in metrics.items()}, dict(machine), dict(versions), reason,
                    datetime.now(timezone.utc).isoformat(timespec="seconds"), commit,
                    settings=dict(settings or {}))


def is_time_ratio(figure: str, rules: Mapping[str, Rule] = DEFAULT_RULES) -> bool:
    """A time ratio (compared only between runs on the same machine kind)."""
    return figure in rules and rules[figure].kind == "ratio"


def reference_for(baseline: Baseline, machine: Mapping[str, Any], settings: Mapping[str, Any]
                  ) -> tuple[dict[str, dict[str, Any]], Optional[str], str]:
    """(the figures to compare a run on ``machine`` with ``settings`` against, why its time ratios
    are not compared (None: they are), where the ratios come from ("" for the baseline's own machine
    kind)). The baseline's figures, with the time ratios of ``machine``'s kind from the baseline's
    ``machines`` section when the baseline itself comes from another kind."""
    kind = machine_kind(machine)
    entry = baseline.machines.get(kind) if machine_kind(baseline.machine) != kind else None
    if entry is None:
        note = machine_mismatch(baseline.machine, machine)
        if note:
            note += " (record this machine kind's: check --update-baseline --this-machine --reason ...)"
        return baseline.metrics, note or settings_mismatch(baseline.settings, settings), ""
    ref = {a: {k: v for k, v in m.items() if not is_time_ratio(k)} for a, m in baseline.metrics.items()}
    for arch, m in entry["metrics"].items():
        ref.setdefault(arch, {}).update({k: v for k, v in m.items() if is_time_ratio(k)})
    source = f"this machine kind's entry ({entry.get('created', '?')}, commit {entry.get('commit') or '?'})"
    return ref, settings_mismatch(entry.get("settings", {}), settings), source


def with_machine_ratios(baseline: Baseline, current: Figures, machine: Mapping[str, Any],
                        settings: Mapping[str, Any], versions: Mapping[str, Any], reason: str,
                        commit: str = "") -> Baseline:
    """``baseline`` with the time ratios of ``current`` (measured on ``machine``) kept as its entry
    for that machine kind; every other figure stays. ValueError on the baseline's own machine kind
    (re-measure the whole baseline there)."""
    kind = machine_kind(machine)
    if kind == machine_kind(baseline.machine):
        raise ValueError(f"this machine ({kind}) is the baseline's own kind")
    if not reason.strip():
        raise ValueError("a baseline update needs a reason")
    ratios = {a: {k: v for k, v in m.items() if is_time_ratio(k)} for a, m in current.items()}
    entry = {"machine": dict(machine), "metrics": {a: m for a, m in ratios.items() if m},
             "settings": dict(settings), "versions": dict(versions), "reason": reason, "commit": commit,
             "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return replace(baseline, machines={**baseline.machines, kind: entry})


# ----------------------------------------------------------------------------- what the gate measures

def gate_settings(quick: bool = False, input_size: int = GATE_SIZE, threads: Optional[int] = None,
                  repeats: int = GATE_REPEATS) -> dict[str, Any]:
    """The gate's measurement settings (recorded in the baseline and printed before a check)."""
    from ..measure.latency import DEFAULT_LOOPS, DEFAULT_WARMUP
    timing = dict(QUICK_TIMING) if quick else {"loops": DEFAULT_LOOPS, "warmup": DEFAULT_WARMUP}
    return {"input_size": int(input_size), "threads": int(threads or GATE_THREADS), "repeats": int(repeats),
            "quick": bool(quick), "accuracy_set": GATE_ACCURACY_NAME, **timing,
            **(QUICK_INTERLEAVED if quick else INTERLEAVED)}


def accuracy_mismatch(baseline_settings: Mapping[str, Any], settings: Mapping[str, Any]) -> Optional[str]:
    """None when the baseline's accuracy floors were measured on this check's images, else why
    they cannot be compared (a baseline from before the floors moved to eg1800 test)."""
    base = baseline_settings.get("accuracy_set", OLD_ACCURACY_SET)
    cur = settings.get("accuracy_set", GATE_ACCURACY_NAME)
    if base == cur:
        return None
    return (f"baseline accuracy measured on {base}, this check's on {cur} (re-measure it: check "
            "--update-baseline --only miou_trained miou_seed --reason ...)")


def settings_mismatch(baseline_settings: Mapping[str, Any], settings: Mapping[str, Any]) -> Optional[str]:
    """None when the time ratios of a baseline measured with ``baseline_settings`` may be compared
    with ones measured with ``settings`` (same input size and thread count), else why not."""
    diff = [f"{k} {baseline_settings[k]} vs {settings.get(k)}" for k in ("input_size", "threads")
            if k in baseline_settings and baseline_settings[k] != settings.get(k)]
    if not diff:
        return None
    return (f"the baseline's time ratios were measured with other settings ({', '.join(diff)}): they are not "
            "compared; parameters, MACs, ARM instructions, accuracy and parity still are")


def gate_jobs(archs: Sequence[str], quick: bool = False, models_dir: Optional[Path] = None,
              data_dir: Optional[Path] = None, *, input_size: int = GATE_SIZE,
              threads: Optional[int] = None, repeats: int = GATE_REPEATS) -> list[Job]:
    """Per design, at ``input_size``: profile; ARM cost (emulated instructions + parity); accuracy
    on :data:`GATE_ACCURACY_SET` (``<data_dir>/eg1800``, its test split) of ``checkpoints/<design>.pt``
    (a skipped row when it does not exist) and of every published checkpoint of the design
    (seg_matting: ``seed``);
    then latency on torch and ncnn at ``threads`` (default :data:`GATE_THREADS`; ``quick``:
    :data:`QUICK_TIMING`, else the full protocol of ``bench/measure/latency.py``), ``repeats`` times, each
    round over every design (``repeat`` setting), so that one disturbance hits one round only; last,
    per design, ncnn against PyTorch timed interleaved in one process (``speedup``;
    :data:`QUICK_INTERLEAVED` / :data:`INTERLEAVED`)."""
    from ..models.weights import planned_weights
    from ..run.plan import _latency_weights
    from ..run.settings import (AccuracySettings, ArmCostSettings, LatencySettings, ProfileSettings,
                                SpeedupSettings)
    from ..paths import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR

    models = str(models_dir or DEFAULT_MODELS_DIR)
    hsd = str(Path(data_dir or DEFAULT_DATA_DIR) / "hsd")  # the latency jobs' input images
    acc_set, acc_split = GATE_ACCURACY_SET
    acc_dir = str(Path(data_dir or DEFAULT_DATA_DIR) / acc_set)
    st = gate_settings(quick, input_size, threads, repeats)
    timing = {k: st[k] for k in ("loops", "warmup", "attempts", "quiet_wait_s") if k in st}
    weights = {arch: _latency_weights(arch, Path(models)) for arch in archs}
    jobs: list[Job] = []
    for arch in archs:
        jobs.append(ProfileSettings.given(input_size=input_size).job(arch))
        jobs.append(ArmCostSettings(input_size=input_size, weights=weights[arch], models_dir=models,
                                    data_dir=hsd).job(arch))
        for w in planned_weights(arch, ("own", "published"), if_present=False):
            jobs.append(AccuracySettings.given(weights=w, input_size=input_size, dataset=acc_set,
                                               data_dir=acc_dir, split=acc_split, models_dir=models).job(arch))
    for rep in range(st["repeats"]):
        for arch in archs:
            for backend in ("torch", "ncnn"):
                jobs.append(LatencySettings(backend=backend, threads=st["threads"], input_size=input_size,
                                            weights=weights[arch], models_dir=models, data_dir=hsd, repeat=rep,
                                            **timing).job(arch))
    for arch in archs:
        waits = {k: timing[k] for k in ("attempts", "quiet_wait_s") if k in timing}
        jobs.append(SpeedupSettings.given(backend="ncnn", threads=st["threads"], input_size=input_size,
                                          weights=weights[arch], models_dir=models, data_dir=hsd,
                                          rounds=st["speedup_rounds"], loops=st["speedup_loops"],
                                          warmup=st["speedup_warmup"], **waits).job(arch))
    return jobs


def _finite(v: Any) -> Optional[float]:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# which measurement each deterministic figure comes from (a partial re-baseline re-measures only those)
DETERMINISTIC_SOURCES = {"params": "profile", "macs_g": "profile", "arm_instructions_m": "arm_cost",
                         "parity_ok_arm": "arm_cost", "miou_trained": "accuracy", "miou_seed": "accuracy"}


def only_jobs(jobs: Sequence[Job], figures: Sequence[str]) -> list[Job]:
    """The jobs that measure ``figures`` (deterministic ones only: a time ratio is re-measured with
    the whole gate, on a quiet machine). ValueError naming a figure that cannot be re-measured alone."""
    bad = [f for f in figures if f not in DETERMINISTIC_SOURCES]
    if bad:
        raise ValueError(f"cannot re-baseline {', '.join(bad)} alone; choose from "
                         f"{', '.join(DETERMINISTIC_SOURCES)} (time ratios: the whole gate)")
    wanted = {DETERMINISTIC_SOURCES[f] for f in figures}
    return [j for j in jobs if j.measurement in wanted]


def is_accuracy_floor(figure: str) -> bool:
    """An accuracy floor (``miou_<weights>``), as opposed to a cost or timing figure."""
    return figure.startswith("miou_")


def rebaselined_figures(figures: Sequence[str]) -> list[str]:
    """The figures a partial re-baseline of ``figures`` replaces: the accuracy floors only together
    (one accuracy set for all of them, recorded once in the baseline's settings)."""
    out = list(figures)
    if any(map(is_accuracy_floor, out)):
        out += [f for f in DETERMINISTIC_SOURCES if is_accuracy_floor(f) and f not in out]
    return out


def merge_figures(old: Figures, new: Figures, figures: Sequence[str]) -> Figures:
    """``old`` with ``figures`` replaced by their values in ``new`` (per design)."""
    out = {a: dict(m) for a, m in old.items()}
    for arch, m in new.items():
        out.setdefault(arch, {}).update({k: v for k, v in m.items() if k in figures})
    return out


def figures_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The gate's figures per design from result rows (those of :func:`gate_jobs`):

    ``params``, ``macs_g`` (profile); ``arm_instructions_m``, ``parity_ok_arm`` (arm_cost);
    ``miou_<weights>`` (accuracy: ``miou_trained``, ``miou_seed``); from latency rows, per round
    (``repeat``): ``<backend>_over_calib`` (latency_ratio_to_calib), then the median over the
    rounds; from interleaved comparisons (``speedup`` rows): ``<backend>_over_torch`` (1 / the
    speed-up: the backend's latency over PyTorch's, median over the comparison's rounds);
    ``parity_ok_<backend>`` (non-torch backends; False if any latency round or comparison failed
    parity). A skipped or errored row leaves its figures out, except a parity error, which makes
    the parity figure False."""
    figs: dict[str, dict[str, Any]] = {}
    rounds: dict[tuple[str, Any], dict[str, Mapping[str, Any]]] = {}
    for r in rows:
        arch, kind = str(r.get(C.ARCH)), r.get(C.MEASUREMENT)
        status = row_status(r)
        ok, parity_error = status.ok, status.error and status.reason == "parity"
        f = figs.setdefault(arch, {})
        if kind == "profile" and ok:
            f["params"] = int(r[C.PARAMS])
            f["macs_g"] = float(r[C.MACS_G])
        elif kind == "arm_cost" and (ok or parity_error):
            f["parity_ok_arm"] = ok and bool(r.get(C.PARITY_OK_ARM, True))
            insn = _finite(r.get(C.ARM_INSTRUCTIONS_M))
            if ok and insn is not None:
                f["arm_instructions_m"] = insn
        elif kind in ("latency", "speedup") and (ok or parity_error):
            backend = str(r.get(C.BACKEND))
            if backend != "torch":
                key = f"parity_ok_{backend}"
                f[key] = f.get(key, True) and ok and r.get(C.PARITY_OK) is not False
            if kind == "latency" and ok:
                rounds.setdefault((arch, r.get(C.REPEAT, 0)), {})[backend] = r
            elif kind == "speedup" and ok and _finite(r.get(C.SPEEDUP)):
                f[f"{backend}_over_torch"] = 1.0 / float(r[C.SPEEDUP])
        elif kind == "accuracy" and ok and str(r.get(C.WEIGHTS, "")).isidentifier():
            miou = _finite(r.get(C.MIOU))
            if miou is not None:
                f[f"miou_{r[C.WEIGHTS]}"] = miou
    per_round: dict[str, dict[str, list[float]]] = {}
    for (arch, _), by_backend in rounds.items():
        vals = per_round.setdefault(arch, {})
        for backend, r in by_backend.items():
            ratio = _finite(r.get(C.LATENCY_RATIO_TO_CALIB))
            if ratio is not None:
                vals.setdefault(f"{backend}_over_calib", []).append(ratio)
    for arch, vals in per_round.items():
        for metric, v in vals.items():
            figs[arch][metric] = statistics.median(v)
    return figs


def ratio_spread(runs: Sequence[Figures], rules: Mapping[str, Rule] = DEFAULT_RULES) -> dict[str, dict[str, float]]:
    """Run-to-run spread of the time ratios over repeated runs of the same tree:
    ``{metric: {design: max / min - 1}}``, the largest rise a check could see between two of these
    runs. The ratio limits of :data:`DEFAULT_RULES` are this spread's maximum times a safety factor
    (docs/gate.md)."""
    out: dict[str, dict[str, float]] = {}
    for metric in (m for m, r in rules.items() if r.kind == "ratio"):
        for arch in sorted({a for run in runs for a in run}):
            vals = [float(run[arch][metric]) for run in runs if metric in run.get(arch, {})]
            if len(vals) >= 2 and min(vals) > 0:
                out.setdefault(metric, {})[arch] = max(vals) / min(vals) - 1
    return out
