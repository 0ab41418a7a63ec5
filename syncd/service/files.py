"""The service files: the packaged templates, rendered with absolute paths for this machine."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import sysconfig
from enum import StrEnum
from importlib import resources
from pathlib import Path
from xml.sax.saxutils import escape

from syncd.errors import SyncdError, UsageError
from syncd.paths import service_env_file

UNIT_NAME = "syncd.service"
AGENT_LABEL = "dev.syncd.agent"
PLIST_NAME = f"{AGENT_LABEL}.plist"


class Manager(StrEnum):
    SYSTEMD = "systemd"
    LAUNCHD = "launchd"


def manager_for(platform: str | None) -> Manager:
    platform = platform or sys.platform
    if platform.startswith("linux"):
        return Manager.SYSTEMD
    if platform == "darwin":
        return Manager.LAUNCHD
    raise UsageError(
        f"`syncd service` supports Linux (systemd) and macOS (launchd), not {platform}; "
        "run `syncd run` under your own supervisor instead"
    )


def _script_dirs() -> list[str]:
    """Where this interpreter's installs put console scripts: its own bin dir (a venv, pipx,
    `uv tool`), then the user scheme's (`pip install --user`: ~/.local/bin, ~/Library/Python/…)."""
    dirs = [str(Path(sys.executable).parent)]
    with contextlib.suppress(KeyError, ValueError):
        dirs.append(sysconfig.get_path("scripts", sysconfig.get_preferred_scheme("user")))
    return dirs


def find_syncd() -> str:
    """The absolute path of the syncd executable this interpreter runs: next to it, in its user
    scripts dir, the program being run itself, then PATH."""
    own = sys.argv[0] if os.path.basename(sys.argv[0]) == "syncd" else None
    found = (next((f for d in _script_dirs() if (f := shutil.which("syncd", path=d))), None)
             or (own if own and os.path.isfile(own) and os.access(own, os.X_OK) else None)
             or shutil.which("syncd"))
    if not found:
        raise SyncdError(
            f"cannot find the syncd executable next to {sys.executable}, in the user scripts "
            "folder or on PATH; install syncd from its checkout (pipx install ., uv tool install ., "
            "or pip install --user .) or from a wheel you built (pip wheel --no-deps -w dist .; "
            "pipx install dist/opencode_syncd-*.whl), then run `syncd service install` from there"
        )
    return str(Path(found).absolute())


def checked_syncd(syncd_path: str | None) -> str:
    path = syncd_path or find_syncd()
    if not os.path.isabs(path) or not os.access(path, os.X_OK) or not os.path.isfile(path):
        raise SyncdError(f"{path}: not an absolute path to an executable file; cannot install it")
    if "\n" in path or "\r" in path:
        raise SyncdError(f"{path!r}: a path with a line break cannot go into a service file")
    return path


def _template(name: str) -> str:
    return (resources.files("syncd.service") / "data" / name).read_text(encoding="utf-8")


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    if "{{" in template:
        raise SyncdError("internal: a service template placeholder was left unfilled")
    return template


def _systemd_word(path: str) -> str:
    """Quote a path for ExecStart's program word: systemd expands %specifiers and splits on spaces.

    `$` needs no escaping there: systemd substitutes variables in the arguments, not the program
    (systemd-analyze verify agrees; `$$` would be taken literally).
    """
    word = path.replace("%", "%%")
    if re.search(r"[\s\"'\\;]", word):
        word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def render_unit(syncd: str, env_file: Path | None = None) -> str:
    env = str(env_file or service_env_file())
    if "\n" in env or "\r" in env:
        raise SyncdError(f"{env!r}: a path with a line break cannot go into a service file")
    return _fill(_template(UNIT_NAME), {"SYNCD": _systemd_word(syncd), "ENV_FILE": env.replace("%", "%%")})


def _launchd_path(syncd: str) -> str:
    dirs = [os.path.dirname(syncd), "/opt/homebrew/bin", "/usr/local/bin"]
    dirs += ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
    return ":".join(dict.fromkeys(dirs))


def render_plist(syncd: str, log_dir: Path) -> str:
    values = {"SYNCD": syncd, "LOG_DIR": str(log_dir), "PATH": _launchd_path(syncd)}
    return _fill(_template(PLIST_NAME), {k: escape(v) for k, v in values.items()})


def _systemd_dir(home: Path | None) -> Path:
    if home is None:
        xdg = os.environ.get("XDG_CONFIG_HOME")
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    else:
        base = home / ".config"
    return base / "systemd" / "user"


def unit_path(*, platform: str | None = None, home: Path | None = None) -> Path:
    if manager_for(platform) is Manager.SYSTEMD:
        return _systemd_dir(home) / UNIT_NAME
    return (home or Path.home()) / "Library" / "LaunchAgents" / PLIST_NAME


def log_dir(home: Path | None) -> Path:
    return (home or Path.home()) / "Library" / "Logs" / "syncd"
