"""Where the suite's files are: the repository, the shared folder beside it, and the repository's
own folders. The one place that knows the layout on disk; everything else takes these as defaults
of arguments, so a caller can point anywhere."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"  # read only: data and published models, never downloaded
DEFAULT_DATA_DIR = SHARED_DIR / "data"
DEFAULT_MODELS_DIR = SHARED_DIR / "models"
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"  # weights trained with the suite's recipe
SPLITS_DIR = REPO_ROOT / "splits"  # the fixed train / validation stem lists
RUNS_DIR = REPO_ROOT / "reports" / "runs"  # run folders (git-ignored)
TRAIN_STATE_DIR = RUNS_DIR / "train"  # resumable training state
CACHE_DIR = REPO_ROOT / ".cache"  # converted models, ARM builds (git-ignored; see bench.cache)
BASELINE_PATH = REPO_ROOT / "bench" / "gate" / "baseline.json"  # the regression gate's committed figures
