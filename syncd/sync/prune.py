"""`syncd status --prune`: forget the targets and providers of the state file that no longer exist."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from syncd import jsonc
from syncd.errors import SyncdError
from syncd.providers.blocks import custom_providers
from syncd.sync.records import State, target_key
from syncd.sync.state import update_state
from syncd.sync.store import read_target


@dataclass(frozen=True, slots=True)
class Forgotten:
    """One thing prune dropped from the state (`provider` None: the whole target)."""

    target: str
    provider: str | None
    reason: str


def provider_ids(target: Path) -> list[str] | None:
    """The custom provider ids of a target as it is now; None when it cannot be read or parsed."""
    try:
        return list(custom_providers(jsonc.parse(read_target(target).text)))
    except SyncdError:
        return None


def providers_in(targets: Iterable[Path]) -> dict[str, list[str] | None]:
    """Target key -> its custom provider ids (None: it does not read or parse), for each
    target that exists."""
    return {target_key(t): provider_ids(t) for t in targets if os.path.lexists(t)}


def _prune(state: State, found: list[Forgotten]) -> State:
    for key, ts in state.targets.items():
        if not os.path.lexists(key):
            found.append(Forgotten(key, None, "the file no longer exists"))
            state = state.without_target(key)
            continue
        blocks = provider_ids(Path(key))
        if blocks is None:
            continue  # unreadable or invalid now: what it holds cannot be told, so keep it
        for pid in ts.providers:
            if pid not in blocks:
                found.append(Forgotten(key, pid, "no custom provider of that id in the file"))
                state = state.without_provider(key, pid)
    return state


def prune_state(state_dir: Path) -> list[Forgotten]:
    """Drop gone targets and providers (their tombstones and ownership records with them)."""
    found: list[Forgotten] = []

    def change(state: State) -> State:
        found.clear()
        return _prune(state, found)

    update_state(change, state_dir)
    return found
