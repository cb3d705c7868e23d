"""The command line's arguments: one sub-parser per command, each wired to its ``cmd_*`` function."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from .common import _arch_arg, _at_least, _executor_arg, _parsed
from .model_commands import (cmd_arm, cmd_arm_calibrate, cmd_arm_estimate, cmd_build_arm, cmd_eval, cmd_latency,
                             cmd_list, cmd_profile, cmd_speedup, cmd_train)
from .runs import cmd_all, cmd_check, cmd_compare, cmd_report, cmd_simulate, cmd_sweep

def _device(text: str) -> str:
    """argparse type: a real ARM device as adb[:SERIAL] or ssh:user@host[:port] (kept as the text)."""
    from bench.arm.runner import parse_device
    parse_device(text)
    return text


class _OneLineErrors(argparse.ArgumentParser):
    """A usage error is one line (what is wrong, and where the help is), not the usage block; the
    sub-commands' parsers are of this class too (argparse makes them of their parent's)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


DESCRIPTION = "Benchmark suite for fast portrait-segmentation networks: one command line."


def build_parser(description: str = DESCRIPTION) -> argparse.ArgumentParser:
    from bench.backends.table import BACKENDS, TABLE
    from bench.measure.latency import MIN_LOOPS
    from bench.paths import (REPO_ROOT, BASELINE_PATH, CHECKPOINTS_DIR, DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR, SPLITS_DIR,
                             TRAIN_STATE_DIR)

    run = argparse.ArgumentParser(add_help=False)  # the options of `all` (and of the --all alias)
    run.add_argument("--out", metavar="DIR", help="run folder (default reports/runs/<utc time>)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run; finished jobs are kept")
    run.add_argument("--arch", action="append", metavar="NAME", help="only these designs (repeatable)")
    run.add_argument("--size", type=_at_least(1), default=None, help="network input side (default 256)")
    run.add_argument("--quick", action="store_true", help="fewer sizes and loops (CI)")
    run.add_argument("--thorough", action="store_true",
                     help="also re-measure every latency in fresh processes (repeatability), time the ncnn "
                          "speed-ups interleaved and sweep latency over input sizes (about 3x longer)")
    run.add_argument("--device", metavar="DEV", default=None, type=_parsed(_device),
                     help="real ARM device for ncnn latency: adb[:SERIAL] or ssh:USER@HOST[:PORT] "
                          "(default: none, those rows say skipped)")
    run.add_argument("--workers", type=_at_least(0), default=0,
                     help="run every job in N processes (default 0: the jobs that time nothing side by side, one "
                          "process per core, then each timing job alone, as timing needs)")
    run.add_argument("--device-model", default="rpi4", metavar="NAME",
                     help="ARM device of the report's accuracy-vs-estimated-ms plot (default rpi4; see docs/arm.md)")
    _executor_arg(run)
    p = _OneLineErrors(prog="run_bench.py", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter, parents=[run])
    p.add_argument("--all", action="store_true", help="the same as the `all` command (kept as an alias)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="shared data folder (default %(default)s)")
    p.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR, help="shared models folder (default %(default)s)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("all", parents=[run], help="run every measurement for every design and peer and "
                                                  "write a run folder with its report")
    s.set_defaults(func=cmd_all)

    s = sub.add_parser("list", help="list the registered names: designs and peers, with their kind")
    s.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'seg*'")
    s.add_argument("--kind", choices=["design", "peer"], help="only designs or only peers")
    s.add_argument("-v", "--verbose", action="store_true", help="with form, reference numbers, input and backends")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("profile", help="parameters, MACs (fvcore and thop), weight size and "
                                       "activation memory of one design (1 MAC = 1 multiply-add)")
    _arch_arg(s)
    s.add_argument("--size", type=int, default=None, help="input side (default 256; a model file: its own)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--layers", action="store_true",
                   help="also the per-layer table (path, type, output shape, params, MACs, share)")
    s.set_defaults(func=cmd_profile)

    s = sub.add_parser("eval", help="accuracy (mean per-image IoU) of one design on a data folder")
    _arch_arg(s)
    s.add_argument("--weights", default=None,
                   help="random, seed (the published seg_matting checkpoint), trained, finetuned (the seed "
                        "retrained: train --init seed), official (a peer's), or a path (default: trained for "
                        "a design, the published weights for a peer)")
    s.add_argument("--data", required=True, metavar="DIR",
                   help="folder with images/ and masks/ or alpha/ (or an EG1800, AISegment, PPM-100, "
                        "P3M-10k folder, see --layout)")
    s.add_argument("--size", type=int, default=None,
                   help="network input side (default: 256 for a design, the size a peer was published at)")
    s.add_argument("--split", default=None,
                   help="part of the data: all, train, val or test (stems in splits/<folder>_<split>.txt; "
                        "eg1800 has test, the authors' list) for the shared format; test/train (EG1800's "
                        "original layout); val_np/val_p/train (P3M-10k). Default: all, "
                        "or the test / validation part of a public set")
    s.add_argument("--layout", default="auto",
                   choices=["auto", "folder", "eg1800", "aisegment", "ppm100", "p3m10k"],
                   help="data layout (default: detected from the folders)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--record", action="store_true",
                   help="with --split test: keep the figure in the provenance JSON beside the weights "
                        "(trained: checkpoints/<design>.json), under test/<set>/test, after training")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("latency", help="latency of one design on one backend (protocol: docs/latency.md)")
    _arch_arg(s)
    s.add_argument("--backend", default=None, choices=list(TABLE),
                   help="torch (eager), ncnn (converted with pnnx, cached in .cache/ncnn), onnxruntime, "
                        "ncnn-arm (our aarch64 runner on --device; without one: a skipped row) or litert "
                        "(.tflite peers); default: the model's reference (torch for designs)")
    s.add_argument("--device", metavar="DEV", type=_parsed(_device),
                   help="with ncnn-arm: adb[:SERIAL] (Android) or ssh:user@host[:port] (ARM board)")
    s.add_argument("--powersave", type=int, default=0, choices=[0, 1, 2],
                   help="with ncnn-arm: ncnn core choice, 0 all, 1 little, 2 big (default 0)")
    s.add_argument("--threads", type=_at_least(1), default=None, help="threads (default: all cores)")
    s.add_argument("--size", type=int, default=None, help="input side (default 256; a model file: its own)")
    s.add_argument("--loops", type=_at_least(MIN_LOOPS), default=30,
                   help=f"timed iterations (default 30, at least {MIN_LOOPS})")
    s.add_argument("--warmup", type=_at_least(0), default=10, help="untimed iterations first (default 10)")
    s.add_argument("--weights", default=None,
                   help="random (default), seed (seg_matting), trained or a path; parity is checked with them "
                        "(a model file: its own weights, no --weights)")
    s.add_argument("--layers", action="store_true",
                   help="also the time per layer type (ncnn: per layer, extracted one by one; torch: profiler)")
    s.add_argument("--repeat", type=int, metavar="N",
                   help="run the measurement N times (at least 2), each in a fresh process, and report how "
                        "well its median repeats (between-run CV)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_latency)

    s = sub.add_parser("speedup", help="how much faster ncnn (or onnxruntime) runs a design than PyTorch, "
                                        "both timed interleaved in one process (docs/latency.md)")
    _arch_arg(s)
    s.add_argument("--backend", default="ncnn", choices=[b for b in BACKENDS if b != "torch"],
                   help="the backend compared with PyTorch (default ncnn)")
    s.add_argument("--threads", type=_at_least(1), default=None, help="threads for both (default: all cores)")
    s.add_argument("--size", type=int, default=None, help="input side (default 256; a model file: its own)")
    s.add_argument("--rounds", type=int, default=10, help="rounds, each backend timed once per round "
                                                          "(default 10, at least 3)")
    s.add_argument("--loops", type=_at_least(MIN_LOOPS), default=10,
                   help="timed iterations per backend and round (default 10)")
    s.add_argument("--warmup", type=_at_least(0), default=3, help="untimed iterations per backend and round (default 3)")
    s.add_argument("--weights", default=None,
                   help="random (default), seed (seg_matting), trained or a path; parity is checked with them "
                        "(a model file: its own weights, no --weights)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_speedup)

    s = sub.add_parser("build-arm", help="build (or reuse) the static aarch64 ncnn runner and the qemu "
                                         "instruction-count plugin, cached in .cache/arm")
    s.add_argument("--toolchain", default="gnu", choices=["gnu", "zig"],
                   help="gnu: Debian g++-aarch64-linux-gnu (default); zig: ziglang from PyPI")
    s.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default 2)")
    s.set_defaults(func=cmd_build_arm)

    s = sub.add_parser("arm", help="the ARM figures of one model: emulated aarch64 ncnn (parity, instruction "
                                   "counts) and estimated ms on the calibrated devices (docs/arm.md)")
    _arch_arg(s)
    s.add_argument("--size", type=_at_least(1), default=None,
                   help="input side (default 256 for designs, a peer's checkpoint size; model files: native)")
    s.add_argument("--json", action="store_true", help="print the rows as one JSON object per measurement")
    s.set_defaults(func=cmd_arm)

    s = sub.add_parser("arm-calibrate", help="count ncnn's benchncnn models under qemu (cortex-a72 and "
                                             "cortex-a76, per layer) into the committed calibration table")
    s.add_argument("--models", nargs="*", help="benchncnn models (default: every non-int8 one)")
    s.add_argument("--cpu", nargs="+", default=["cortex-a72", "cortex-a76"], choices=["cortex-a72", "cortex-a76"])
    s.add_argument("--out", default=str(REPO_ROOT / "bench" / "arm" / "calibration_counts.csv"))
    s.set_defaults(func=cmd_arm_calibrate)

    s = sub.add_parser("arm-estimate", help="estimated ms on ARM devices from instruction counts, "
                                            "calibrated on ncnn's published timings (docs/arm.md)")
    s.add_argument("--models", nargs="*", default=[], help="designs or peers to estimate (none: the fits only)")
    s.add_argument("--device-model", nargs="*", help="devices (default: all calibrated ones)")
    s.add_argument("--threads", nargs="+", type=int, default=[1, 4], choices=[1, 2, 4])  # 2: rk3399 only
    s.add_argument("--size", type=int, default=None, help="input side for designs (default 256; peers: native)")
    s.add_argument("--plot", help="also write the calibration-quality plot (PNG; one per thread count)")
    s.add_argument("--fp16", action="store_true", help="with --models: cortex-a76 / cortex-a72 instructions per "
                                                       "model, by output channels a multiple of 8 or not")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_arm_estimate)

    s = sub.add_parser("train", help="train one design with the suite's recipe (docs/training.md)")
    _arch_arg(s)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--minutes", type=float, help="time budget; turned into a step count after timing "
                   "the first steps (default 30 when no length is given)")
    g.add_argument("--steps", type=int, help="number of optimisation steps (batch 16)")
    g.add_argument("--epochs", type=float, help="passes over the training images")
    s.add_argument("--init", default="scratch",
                   help="scratch (seeded random init, default), seed (seg_matting's published checkpoint) "
                        "or a state-dict path")
    s.add_argument("--seed", type=int, default=0, help="seed of init, data order and augmentation (default 0)")
    s.add_argument("--train-size", type=int, help="training crop side (default: the recipe's, 192)")
    s.add_argument("--threads", type=_at_least(1), help="torch threads (default: torch's default)")
    s.add_argument("--name", help="checkpoint name (default: the design, or <design>-finetuned with --init)")
    s.add_argument("--out", dest="train_out", default=str(CHECKPOINTS_DIR), metavar="DIR",
                   help="where <name>.pt and <name>.json go (default %(default)s)")
    s.add_argument("--data-dir", dest="train_data_dir", type=Path, metavar="DIR",
                   help="folder holding the recipe's sets (eg1800/, ccp-person/, hsd/, aisegment-40/; default: the top-level --data-dir)")
    s.add_argument("--splits-dir", type=Path, default=SPLITS_DIR, help="stem lists (default %(default)s)")
    s.add_argument("--state-dir", type=Path, default=TRAIN_STATE_DIR,
                   help="resumable state <name>.state.pt, written at every validation (default %(default)s)")
    s.add_argument("--resume", dest="train_resume", action="store_true", help="continue the interrupted run of <name> from --state-dir")
    s.add_argument("--workers", type=int, default=1,
                   help="DataLoader processes making the augmented batches (default 1; 0: in the training process)")
    s.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N] (an error where no GPU exists)")
    s.add_argument("--no-cache", action="store_true",
                   help="decode the training images again instead of reading .cache/train-items")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("report", help="re-render the report of a saved run (no measuring)")
    s.add_argument("run_dir", metavar="RUN_DIR", help="run folder (reports/runs/<run>)")
    s.add_argument("--data", metavar="DIR", help="read the example photos from this folder (default: the one the "
                                                 "run's example rows name, e.g. after moving the data)")
    s.add_argument("--no-layers", action="store_true", help="skip the per-layer MAC share plot")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("compare", help="what changed between two runs, per design and metric")
    s.add_argument("run_a", metavar="RUN_A", help="the older run folder")
    s.add_argument("run_b", metavar="RUN_B", help="the newer run folder")
    s.add_argument("--size", type=int, default=None, help="input side to compare at (default: run A's)")
    s.add_argument("--min-change", type=float, default=0.0, metavar="PCT",
                   help="hide changes smaller than PCT percent (default 0: every change)")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("check", help="regression gate: measure this tree and compare with the committed "
                                     "baseline (docs/gate.md); exit 1 on any violation")
    s.add_argument("--baseline", type=Path, default=BASELINE_PATH,
                   metavar="PATH", help="baseline file (default bench/gate/baseline.json)")
    s.add_argument("--quick", action="store_true",
                   help="short latency loops (12 timed, 3 warm-up, one attempt per round): a few "
                        "minutes, for CI")
    s.add_argument("--update-baseline", action="store_true",
                   help="measure and rewrite the baseline instead of checking (needs --reason)")
    s.add_argument("--reason", metavar="TEXT", help="why the baseline changes (recorded in the file)")
    s.add_argument("--only", nargs="+", metavar="FIGURE",
                   help="with --update-baseline: re-measure only these deterministic figures (e.g. "
                        "arm_instructions_m after a runner change) and keep every other one")
    s.add_argument("--this-machine", action="store_true",
                   help="with --update-baseline on a machine of another kind than the baseline's: measure "
                        "the time ratios here and keep them as the baseline for this machine kind (every "
                        "other figure stays); later checks on this kind compare their ratios with them")
    s.add_argument("--arch", action="append", metavar="NAME", help="only these designs (repeatable; default all)")
    s.add_argument("--strict", action="store_true",
                   help="a baseline figure this run could not measure (skipped job) fails instead of "
                        "being skipped (CI uses it)")
    s.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    s.add_argument("--out", metavar="DIR", help="also keep the rows (rows.jsonl, results.csv) and gate.txt / "
                                                "gate.json in this folder")
    _executor_arg(s)
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("sweep", help="run a declared matrix (designs x sizes x threads x backends, training "
                                     "seeds x recipe variants) and report it (docs/cluster.md)")
    s.add_argument("matrix", type=Path, metavar="MATRIX.toml", help="the matrix (e.g. bench/sweeps/example.toml)")
    s.add_argument("--out", metavar="DIR", help="run folder (default reports/runs/<utc time>)")
    s.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted sweep; finished jobs are kept")
    s.add_argument("--workers", type=int, default=0, help="local: N processes; ray: CPUs of the local instance")
    _executor_arg(s)
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("simulate", help="expected wall time of a run's jobs on 1, 4, 16 nodes under the Ray "
                                        "executor's placement, from its measured job durations")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("--nodes", type=int, nargs="+", default=[1, 4, 16])
    s.add_argument("--cpus-per-node", type=int, default=os.cpu_count() or 1)
    s.set_defaults(func=cmd_simulate)
    return p


