"""The house rules hold for the whole tree: ruff's rule set and mypy strict on the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing_in_the_package() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_module_says_its_one_job_in_its_first_line() -> None:
    missing = []
    for path in sorted((ROOT / "syncd").rglob("*.py")):
        first = path.read_text(encoding="utf-8").lstrip().splitlines()[:1]
        if not first or not first[0].startswith('"""') or len(first[0]) < 12:
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"modules without a one-line docstring: {missing}"
