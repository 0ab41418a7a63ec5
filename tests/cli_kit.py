"""Running the real `syncd` command in a subprocess inside the isolated home, for CLI-level tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def run(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 60, merged: bool = False) -> subprocess.CompletedProcess[str]:
    """`syncd ARGS` as a user runs it; local-runtime probing off unless `env` turns it on.

    `merged`: stderr goes into stdout, in the order a terminal shows them.
    """
    full = {**os.environ, "SYNCD_DETECT_PORTS": "0,0,0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "syncd", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT if merged else subprocess.PIPE, text=True,
                          env=full, cwd=cwd, timeout=timeout, check=False)


def one_json(out: subprocess.CompletedProcess[str]) -> Any:
    """The single JSON document a `--json` command printed (fails the test on anything else)."""
    return json.loads(out.stdout)


def opencode_dir() -> Path:
    folder = Path(os.environ["XDG_CONFIG_HOME"]) / "opencode"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def block(base_url: str, models: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A custom provider block as OpenCode's docs show it."""
    return {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": base_url},
            "models": dict(models or {})}


def write_json(path: Path, doc: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
