"""Where files live: syncd's settings and state, and OpenCode's config, data and cache folders."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs.unix import Unix

_DIRS = Unix("syncd")
OPENCODE_GLOBAL_NAMES = ("config.json", "opencode.json", "opencode.jsonc")


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / default


def settings_file() -> Path:
    """`~/.config/syncd/config.json5`, or `$SYNCD_CONFIG`."""
    override = os.environ.get("SYNCD_CONFIG")
    if override:
        return Path(override).expanduser()
    return Path(_DIRS.user_config_dir) / "config.json5"


def service_env_file() -> Path:
    """`~/.config/syncd/env`: KEY=value lines (mode 0600) the background service reads."""
    return Path(_DIRS.user_config_dir) / "env"


def state_dir() -> Path:
    """`~/.local/state/syncd`, or `$SYNCD_STATE_DIR`: state, backups, locks, caches."""
    override = os.environ.get("SYNCD_STATE_DIR")
    if override:
        return Path(override).expanduser()
    return Path(_DIRS.user_state_dir)


def opencode_config_dir() -> Path:
    """OpenCode's global config folder: `$XDG_CONFIG_HOME/opencode`, on macOS too (DESIGN §1.1)."""
    return _xdg("XDG_CONFIG_HOME", ".config") / "opencode"


def opencode_auth_file() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "opencode" / "auth.json"


def opencode_catalog_file() -> Path:
    """OpenCode's cached models.dev catalog."""
    return _xdg("XDG_CACHE_HOME", ".cache") / "opencode" / "models.json"
