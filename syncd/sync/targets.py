"""Which OpenCode configs syncd maintains, and the (target, provider) jobs they define now."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.errors import SyncdError
from syncd.paths import OPENCODE_GLOBAL_NAMES, opencode_config_dir
from syncd.providers.blocks import custom_providers, fingerprint, is_loopback
from syncd.settings import Settings
from syncd.sync.documents import read_parsed
from syncd.sync.records import target_key
from syncd.sync.store import unwritable_reason


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One (target, provider) job as the targets on disk define it now."""

    target: Path  # as configured (may be a symlink)
    provider_id: str
    interval: float  # seconds, resolved from the settings
    fingerprint: str  # hash of the provider's raw baseURL/apiKey/headers/npm: changed => sync now



def default_targets(env: Mapping[str, str] | None = None) -> list[Path]:
    """OpenCode's global files that exist, then `$OPENCODE_CONFIG` (DESIGN §1.1), without repeats."""
    folder = opencode_config_dir()
    found = [folder / name for name in OPENCODE_GLOBAL_NAMES if (folder / name).is_file()]
    extra = (os.environ if env is None else env).get("OPENCODE_CONFIG")
    if extra:
        found.append(Path(extra).expanduser())
    return _unique(found)


def resolve_targets(cli: Sequence[str] | None, configured: Sequence[Path] | None) -> list[Path]:
    """`--config` wins over the settings' `configs`, which win over OpenCode's defaults."""
    if cli:
        return _unique(Path(p).expanduser() for p in cli)
    if configured:
        return _unique(Path(p).expanduser() for p in configured)
    return default_targets()


def global_target() -> Path:
    """The global file detection and `syncd add` write to: the last existing one OpenCode loads
    that syncd can write (one home-manager links into the read-only Nix store is skipped), else
    a new .jsonc."""
    folder = opencode_config_dir()
    for name in reversed(OPENCODE_GLOBAL_NAMES):
        if (folder / name).is_file() and _writable(folder / name):
            return folder / name
    return folder / "opencode.jsonc"


def _writable(path: Path) -> bool:
    try:
        return unwritable_reason(path) is None
    except SyncdError:
        return False


def _unique(paths: Any) -> list[Path]:
    seen: set[Path] = set()
    out: list[Path] = []
    for p in paths:
        key = Path(os.path.abspath(p))
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def provider_jobs(targets: Iterable[Path], settings: Settings) -> list[JobSpec]:
    """A job per enabled custom provider of every target that parses now."""
    out: list[JobSpec] = []
    for target in targets:
        try:
            data = read_parsed(target)[1]
        except SyncdError:
            continue
        for pid, block in custom_providers(data).items():
            if settings.policy(pid).enabled:
                out.append(JobSpec(target, pid, interval_of(pid, block, settings), fingerprint(block)))
    return out


def interval_of(pid: str, block: Mapping[str, Any], settings: Settings) -> float:
    """The provider's own interval, else the local or remote default by where its baseURL points."""
    override = settings.policy(pid).interval
    if override is not None:
        return override
    local = is_loopback(block["options"]["baseURL"])
    return settings.local_interval if local else settings.interval


def provider_ids(target: Path) -> list[str] | None:
    """The custom provider ids of a target as it is now; None when it cannot be read or parsed."""
    try:
        return list(custom_providers(read_parsed(target)[1]))
    except SyncdError:
        return None


def providers_in(targets: Iterable[Path]) -> dict[str, list[str] | None]:
    """Target key -> its custom provider ids (None: it does not read or parse), for each
    target that exists."""
    return {target_key(t): provider_ids(t) for t in targets if os.path.lexists(t)}
