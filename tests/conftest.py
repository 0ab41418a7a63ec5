"""Shared fixtures: every test runs in a throwaway home, and real peers are found or required."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import (  # noqa: F401  (fixtures shared by every test module)
    fake_anthropic,
    fake_gemini,
    fake_llamacpp,
    fake_lmstudio,
    fake_ollama,
    fake_openai,
    fake_provider,
)

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
CORPUS = SHARED / "corpus" / "opencode-configs"
IN_CI = bool(os.environ.get("CI"))


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point HOME, XDG_* and SYNCD_* at temp dirs so no test can touch the real home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        (home / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(home / sub))
    for var in ("SYNCD_CONFIG", "SYNCD_STATE_DIR", "OPENCODE_CONFIG", "NOTIFY_SOCKET",
                "WATCHDOG_USEC", "WATCHDOG_PID", "DBUS_SESSION_BUS_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    # no probing of this machine's real runtime ports; a test that wants detection sets its own
    monkeypatch.setenv("SYNCD_DETECT_PORTS", "0,0,0")
    monkeypatch.setenv("SYNCD_DETECT_BUDGET", "10")  # a loaded machine must not miss a fake runtime
    yield home


def _tool(env_var: str, fallback: str, what: str) -> str:
    path = os.environ.get(env_var) or shutil.which(fallback)
    if path and os.access(path, os.X_OK):
        return path
    msg = f"{what} not found: set {env_var} (bash .ci/run installs it)"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def opencode_bin() -> str:
    """The OpenCode binary (npm opencode-ai@1.18.33): the oracle. Required in CI."""
    return _tool("SYNCD_OPENCODE_BIN", "opencode", "the OpenCode binary")


@pytest.fixture(scope="session")
def litellm_bin() -> str:
    """The LiteLLM proxy's `litellm` command, from its own virtualenv. Required in CI."""
    return _tool("SYNCD_LITELLM_BIN", "litellm", "the LiteLLM proxy")


@pytest.fixture(scope="session")
def llama_server_bin() -> str:
    """llama.cpp's llama-server, built by .ci/run from llama-cpp-python's sdist. Required in CI."""
    return _tool("SYNCD_LLAMA_SERVER_BIN", "llama-server", "llama.cpp's llama-server")


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    return CORPUS
