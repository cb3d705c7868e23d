"""One exit-code contract for every command, tested from its source: the README's table of exit
codes. Each example command there runs as its own process from the repository root and must exit
with its row's code; a usage error (2) is one line on stderr, no traceback, and leaves no run folder."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]  # each example is a process of its own

REPO = Path(__file__).resolve().parents[1]


def readme_examples() -> list[tuple[int, str]]:
    """(exit code, command) for every backticked example of the README's exit-code table."""
    text = (REPO / "README.md").read_text()
    table = text.split("### Exit codes", 1)[1].split("\n### ", 1)[0]
    out = []
    for line in table.splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|[^|]*\|(.*)\|\s*$", line)
        if m:
            out += [(int(m.group(1)), cmd) for cmd in re.findall(r"`([^`]+)`", m.group(2))
                    if not cmd.startswith("tests/")]
    return out


EXAMPLES = readme_examples()


def test_the_readme_table_has_an_example_for_every_code_but_interrupted():
    assert {code for code, _ in EXAMPLES} == {0, 1, 2}
    assert sum(code == 2 for code, _ in EXAMPLES) >= 10


@pytest.mark.parametrize("code, command", EXAMPLES, ids=[c for _, c in EXAMPLES])
def test_readme_example_exits_with_its_code(code, command, data_dir, tmp_path):
    runs = REPO / "reports" / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    r = subprocess.run([sys.executable, "run_bench.py", *command.split()], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == code, f"{command}: exit {r.returncode}\n{r.stderr[-1500:]}"
    assert "Traceback" not in r.stderr
    if code == 2:
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, f"{command}: a usage error is one line, got:\n{r.stderr}"
        assert not r.stdout.strip()
        after = set(runs.iterdir()) if runs.is_dir() else set()
        assert after == before, f"{command}: a usage error made a run folder"


def test_a_measurement_that_runs_and_fails_exits_1(data_dir, tmp_path):
    """A photo of the set is corrupt: the flags are right, the measurement fails when it reads it."""
    import shutil
    root = tmp_path / "set"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for mask in sorted((data_dir / "hsd" / "masks").iterdir())[:2]:
        img = next(p for p in (data_dir / "hsd" / "images").iterdir() if p.stem == mask.stem)
        shutil.copy(mask, root / "masks" / mask.name)
        shutil.copy(img, root / "images" / img.name)
    victim = next((root / "images").iterdir())
    victim.write_bytes(victim.read_bytes()[:300])  # truncated
    r = subprocess.run([sys.executable, "run_bench.py", "eval", "--arch", "esp_dense_seg", "--data", str(root)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "corrupt image" in r.stderr and str(victim) in r.stderr
