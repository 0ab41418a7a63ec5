"""Reads and atomically writes syncd's state file (schema version, migrations, mode 0600)."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncd import paths
from syncd.errors import StateError
from syncd.localfile import DATA_LIMIT, UnsafeFile, read_bytes
from syncd.sync.locks import state_dir_error, target_lock
from syncd.sync.records import VERSION, State, dumps, from_json
from syncd.sync.store import atomic_write_bytes, clean_stale_temps

STATE_NAME = "state.json"


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """2 adds what detection did (`detected`) and `failing_since`; nothing is known of either yet.

    A version bump, not just a new key: a syncd that knows only 1 would drop `detected` when it
    saves, and then add back the block the user deleted.
    """
    doc.setdefault("detected", {})
    return doc


# version N -> function turning a version-N document into a version-N+1 document
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def state_file() -> Path:
    return paths.state_dir() / STATE_NAME


def _migrate(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StateError(f"{path}: no valid schema version; {_ASIDE.format(path=path)}")
    if version > VERSION:
        raise StateError(f"{path} was written by a newer syncd (schema {version}, this syncd "
                         f"knows {VERSION}): upgrade syncd, or {_ASIDE.format(path=path)}")
    while version < VERSION:
        doc = MIGRATIONS[version](doc)
        version += 1
        doc["version"] = version
    return doc


_ASIDE = ("syncd will not overwrite it: move it aside to start fresh "
          "(mv {path} {path}.corrupt; syncd forgets which models it added)")


# The last state read from each file, by its bytes: the daemon reads the state many times a
# second, and bytes compared equal are much cheaper than bytes parsed (a megabyte of JSON with
# thousands of models). Each distinct read gets a generation number (see `state_generation`).
_read: dict[Path, tuple[bytes, State, int]] = {}
_generations = itertools.count(1)


def state_generation(path: Path | None = None) -> int:
    """A number that changes whenever the state file's bytes do (by anyone's write), 0 when it
    is missing; never the same twice for a file that cannot be read."""
    try:
        return _load(path or state_file())[1]
    except StateError:
        return -next(_generations)


def load_state(path: Path | None = None) -> State:
    """The state in `path` (default: state_dir()/state.json); empty when the file is missing."""
    return _load(path or state_file())[0]


def _load(path: Path) -> tuple[State, int]:
    try:
        data = read_bytes(path, DATA_LIMIT)
    except FileNotFoundError:
        return State(), 0
    except UnsafeFile as e:
        raise StateError(f"{path}: cannot read the state file: it {e.strerror}; "
                         f"{_ASIDE.format(path=path)}") from None
    except OSError as e:  # the folder's fault (not a folder, no permission), not the file's
        raise state_dir_error(path, e) from None
    last = _read.get(path)
    if last is not None and last[0] == data:
        return last[1], last[2]
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise StateError(f"{path} is corrupt ({str(e).splitlines()[0]}); "
                         f"{_ASIDE.format(path=path)}") from None
    except RecursionError:
        raise StateError(f"{path} is corrupt (nested too deeply to read); "
                         f"{_ASIDE.format(path=path)}") from None
    if not isinstance(doc, dict):
        raise StateError(f"{path} is corrupt (not an object); {_ASIDE.format(path=path)}")
    doc = _migrate(doc, path)
    try:
        state = from_json(doc)
    except ValueError as e:
        raise StateError(f"{path} is corrupt ({e}); {_ASIDE.format(path=path)}") from None
    generation = next(_generations)
    _read[path] = (data, state, generation)
    return state, generation


def save_state(state: State, path: Path | None = None) -> None:
    """Write atomically: temp file in the same dir, fsync, replace, fsync the dir; mode 0600."""
    path = path or state_file()
    # compact: the state is syncd's own file, written on every change, and json's encoder runs
    # at C speed only without `indent` (jq shows it to a human); see `dumps` for the rest
    data = dumps(state).encode() + b"\n"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # a save cut short by a kill; every caller holds the state lock, so none is live
        clean_stale_temps(path.parent, path.name)
        atomic_write_bytes(path, data, mode=0o600)
    except OSError as e:
        raise state_dir_error(Path(e.filename or path), e) from None
    _read[path] = (data, state, next(_generations))  # its next read need not parse it back


def update_state(change: Callable[[State], State], state_dir: Path) -> State:
    """Load, change and save the state under the state lock (another syncd may be saving it)."""
    with target_lock(state_file(), state_dir):
        state = change(load_state())
        save_state(state)
    return state


def quarantine(path: Path | None = None) -> Path:
    """Move a state file aside as `state.json.corrupt-<n>` (first free n); returns the new path."""
    path = path or state_file()
    n = 1
    while (dest := path.with_name(f"{path.name}.corrupt-{n}")).exists():
        n += 1
    try:
        os.rename(path, dest)
    except OSError as e:
        raise StateError(f"{path}: cannot move the state file aside: {e.strerror or e}") from None
    return dest
