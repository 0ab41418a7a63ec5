"""A provider block's baseURL, key and headers, resolved in memory as OpenCode does (DESIGN §1.7)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from syncd.errors import TargetError
from syncd.localfile import SMALL_LIMIT, UnsafeFile, read_bytes
from syncd.model import Kind, ProviderSpec, Secret

_ENV = re.compile(r"\{env:([^}]+)\}")
_FILE = re.compile(r"\{file:([^}]+)\}")


def load_auth(path: Path | None = None) -> dict[str, Any]:
    """OpenCode's auth.json; missing, unreadable or corrupt is `{}` (never raises: `doctor` reports it)."""
    if path is None:
        from syncd.paths import opencode_auth_file

        path = opencode_auth_file()
    try:
        data = json.loads(read_bytes(path, SMALL_LIMIT))
    except (OSError, ValueError, RecursionError):
        return {}
    return dict(data) if isinstance(data, dict) else {}


def _file_path(raw: str, config_dir: Path) -> Path:
    if raw.startswith("~/") or raw == "~":
        return Path.home() / raw[2:]
    path = Path(raw)
    return path if path.is_absolute() else config_dir / path


def resolve(value: str, config_dir: Path, *, config_path: Path | None = None) -> str:
    """`{env:VAR}` → the variable ("" when unset); `{file:path}` → the file's trimmed text.

    File paths are relative to the config file's folder, `~` is the home. A missing file raises
    TargetError (OpenCode itself refuses such a config).
    """
    def read(match: re.Match[str]) -> str:
        path = _file_path(match.group(1), config_dir)
        try:
            return read_bytes(path, SMALL_LIMIT).decode("utf-8").strip()
        except UnsafeFile as exc:
            why, fix = f"it {exc.strerror}", f"point it at a regular file, not {path}"
        except OSError as exc:
            why, fix = exc.strerror or "error", f"create {path} or fix the path"
        except UnicodeDecodeError:
            why, fix = "not UTF-8 text", f"point it at a text file, not {path}"
        raise TargetError(
            str(config_path or config_dir), f"{{file:{match.group(1)}}} cannot be read ({why}): {fix}"
        ) from None

    value = _ENV.sub(lambda m: os.environ.get(m.group(1), ""), value)
    return _FILE.sub(read, value)


def _api_key(pid: str, block: Mapping[str, Any], options: Mapping[str, Any],
             config_dir: Path, config_path: Path, auth: Mapping[str, Any]) -> str | None:
    """OpenCode's order: options.apiKey (even when it resolves to "") → auth.json → one-name `env`."""
    if isinstance(options.get("apiKey"), str):
        return resolve(options["apiKey"], config_dir, config_path=config_path)
    entry = auth.get(pid)
    if isinstance(entry, Mapping) and entry.get("type") == "api" and isinstance(entry.get("key"), str):
        key: str = entry["key"]
        return key
    env = block.get("env")
    if isinstance(env, list) and len(env) == 1 and isinstance(env[0], str):
        return os.environ.get(env[0])
    return None


def provider_spec(pid: str, block: Mapping[str, Any], config_path: Path, auth: Mapping[str, Any],
                  kind: Kind | None = None) -> ProviderSpec | None:
    """The spec of a custom provider block, or None when it has no `options.baseURL` (not syncd's)."""
    options = block.get("options")
    if not isinstance(options, Mapping):
        return None
    raw_base = options.get("baseURL")
    if not isinstance(raw_base, str) or not raw_base.strip():
        return None
    config_dir = config_path.parent
    base_url = resolve(raw_base, config_dir, config_path=config_path).strip()
    if not base_url:
        return None
    key = _api_key(pid, block, options, config_dir, config_path, auth)
    headers: dict[str, Secret] = {}
    raw_headers = options.get("headers")
    if isinstance(raw_headers, Mapping):
        for name, value in raw_headers.items():
            if isinstance(name, str) and isinstance(value, str):
                headers[name] = Secret(resolve(value, config_dir, config_path=config_path))
    npm = block.get("npm")
    return ProviderSpec(
        id=pid,
        base_url=base_url,
        npm=npm if isinstance(npm, str) else None,
        api_key=Secret(key) if key else None,
        headers=headers,
        kind=kind,
    )
