"""The README's promises hold: its two commands work, CI runs the test command, its settings parse."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.settings import parse_settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_install_and_the_test_command() -> None:
    first, second = (b.strip() for b in _blocks("sh")[:2])
    assert README.index(first) < 400, "the two commands open the README"
    assert "syncd once" in first and "pytest" in second


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = _blocks("sh")[1].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def test_every_settings_example_in_the_readme_is_valid() -> None:
    examples = _blocks("json5")
    assert examples
    for example in examples:
        text = example if example.lstrip().startswith("{") else "{" + example + "}"
        parse_settings(text)  # raises SettingsError naming the key and line


@pytest.mark.slow
def test_readme_main_command_installs_and_syncs_in_a_fresh_home(
    tmp_path: Path, isolated_home: Path, fake_provider
) -> None:
    """Run the README's first command in a clean copy of the repo against a temp home."""
    fake = fake_provider("ollama")
    config = isolated_home / ".config" / "opencode" / "opencode.jsonc"
    config.parent.mkdir(parents=True)
    config.write_text(
        '{\n  // mine\n  "provider": {\n    "local": {\n      "npm": "@ai-sdk/openai-compatible",\n'
        f'      "options": {{ "baseURL": "{fake.base_url}" }}\n    }}\n  }}\n}}\n'
    )
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    for name in tracked.stdout.splitlines():
        src, dst = ROOT / name, clone / name
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)
    command = _blocks("sh")[0].strip().replace("python3 ", f"{sys.executable} ", 1)
    env = {**os.environ, "SYNCD_CONFIG": str(tmp_path / "none.json5")}
    done = subprocess.run(["bash", "-c", command], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    text = config.read_text()
    assert "// mine" in text and "qwen3-coder:30b" in text
