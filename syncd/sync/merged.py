"""The config files OpenCode merges (DESIGN §1.1), found and read for what they name and define."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from syncd.errors import SyncdError
from syncd.sync.documents import read_parsed
from syncd.sync.refs import referenced_by_provider
from syncd.sync.targets import default_targets

PROJECT_NAMES = ("opencode.jsonc", "opencode.json")
_DIR_NAMES = ("opencode.jsonc", "opencode.json")


def _worktree(cwd: Path) -> Path | None:
    """The git root above `cwd` (a `.git` folder with HEAD, or a `.git` file), if any."""
    for folder in (cwd, *cwd.parents):
        marker = folder / ".git"
        if (marker / "HEAD").is_file() or marker.is_file():
            return folder
    return None


def _up(cwd: Path, stop: Path | None) -> list[Path]:
    """`cwd` and its parents up to `stop` (the whole way without one), leaf first."""
    out: list[Path] = []
    for folder in (cwd, *cwd.parents):
        out.append(folder)
        if folder == stop:
            break
    return out


def opencode_files(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> list[Path]:
    """Every existing config file OpenCode 1.18 loads when started in `cwd`, in its order.

    Global files, `$OPENCODE_CONFIG`, project `opencode.json(c)` from the git root (or `/`)
    down to `cwd`, then `opencode.json(c)` inside the `.opencode` folders on that way,
    `~/.opencode` and `$OPENCODE_CONFIG_DIR`.
    """
    env = os.environ if env is None else env
    cwd = Path(os.path.abspath(cwd or Path.cwd()))
    files = list(default_targets(env))
    if not env.get("OPENCODE_DISABLE_PROJECT_CONFIG"):
        chain = _up(cwd, _worktree(cwd))[::-1]  # root first: later files win in OpenCode
        files += [folder / name for name in PROJECT_NAMES for folder in chain]
        dirs = [folder / ".opencode" for folder in chain]
    else:
        dirs = []
    dirs.append(Path.home() / ".opencode")
    if env.get("OPENCODE_CONFIG_DIR"):
        dirs.append(Path(env["OPENCODE_CONFIG_DIR"]).expanduser())
    files += [d / name for d in dirs for name in _DIR_NAMES]
    seen: set[str] = set()
    out: list[Path] = []
    for f in files:
        key = os.path.realpath(f)
        if key not in seen and os.path.isfile(f):
            seen.add(key)
            out.append(f)
    return out


def read_configs(files: Iterable[Path], skip: Sequence[Path] = ()) -> list[tuple[Path, object]]:
    """Each file that reads and parses, with its data; `skip` (by real path) is left out.

    A file that cannot be read or parsed is another check's finding (doctor, its own cycle).
    """
    skipped = {os.path.realpath(p) for p in skip}
    out: list[tuple[Path, object]] = []
    for path in files:
        if os.path.realpath(path) in skipped:
            continue
        try:
            out.append((path, read_parsed(path)[1]))
        except SyncdError:
            continue
    return out


def references_outside(target: Path, cwd: Path | None = None) -> dict[str, frozenset[str]]:
    """Provider id -> model IDs named by every config OpenCode merges except `target` itself."""
    configs = read_configs(opencode_files(cwd), skip=[target])
    return referenced_by_provider(data for _, data in configs)
