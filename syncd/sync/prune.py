"""`syncd status --prune`: forget the targets and providers of the state file that no longer exist."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from syncd.sync.records import State
from syncd.sync.state import update_state
from syncd.sync.targets import provider_ids


@dataclass(frozen=True, slots=True)
class Forgotten:
    """One thing prune dropped from the state (`provider` None: the whole target)."""

    target: str
    provider: str | None
    reason: str


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
