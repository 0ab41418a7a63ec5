"""Watch the folders of the files syncd cares about; yield the ones whose events concern them."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from watchfiles import Change, awatch

from syncd.localfile import CONFIG_LIMIT, read_bytes

# A save is often several events (truncate, write, rename): wait for quiet. watchfiles checks
# every `step` ms and yields after one step without news, so the quiet actually waited is 1-2
# steps (150 ms on average at 100): 150 here made the save-to-revalidation median ~300 ms.
QUIET_MS = 100
MAX_GROUP_MS = 1_600


def _abs(path: Path) -> Path:
    return Path(os.path.abspath(path.expanduser()))


@dataclass(frozen=True, slots=True)
class WatchPlan:
    """Folders to watch (non-recursive) and which event paths concern which configured files."""

    dirs: frozenset[Path]
    interest: dict[Path, frozenset[Path]] = field(default_factory=dict)

    def wants(self, _change: Change, path: str) -> bool:
        return Path(path) in self.interest

    def configured(self, event_paths: Iterable[str]) -> set[Path]:
        out: set[Path] = set()
        for p in event_paths:
            out |= self.interest.get(Path(p), frozenset())
        return out


def plan_watch(files: Iterable[Path]) -> WatchPlan:
    """The folders to watch for `files`: each parent, and each symlink's real parent.

    Watching the file itself would stop after the first save-by-rename. A folder that does not
    exist yet is replaced by its nearest existing ancestor, and the missing child becomes a name
    of interest, so its creation is noticed and the plan rebuilt.
    """
    dirs: set[Path] = set()
    interest: dict[Path, set[Path]] = {}

    def watch(event_path: Path, configured: Path) -> None:
        parent = event_path.parent
        while not parent.is_dir() and parent != parent.parent:
            event_path, parent = parent, parent.parent
        dirs.add(parent)
        interest.setdefault(event_path, set()).add(configured)

    for f in files:
        f = _abs(f)
        watch(f, f)
        try:
            real = f.resolve()
            real_parent = f.parent.resolve()
        except OSError:  # a symlink loop: the plain parent is all we can watch
            continue
        if real != f:
            watch(real, f)  # the file is a link (stow, chezmoi): its target's folder too
        if real_parent != f.parent:
            watch(real_parent / f.name, f)  # a folder on the way is a link
    return WatchPlan(frozenset(dirs), {k: frozenset(v) for k, v in interest.items()})


def sha256_of(path: Path) -> str | None:
    """Hash of the file's bytes (through symlinks), or None when it cannot be read."""
    try:
        return hashlib.sha256(read_bytes(path, CONFIG_LIMIT)).hexdigest()  # a named pipe: None
    except OSError:
        return None


def is_real_change(digest: str | None, last_seen: str | None, own_writes: frozenset[str]) -> bool:
    """A change is real unless the bytes are as last seen (a no-op save) or syncd's own write."""
    if digest == last_seen:
        return False
    return digest is None or digest not in own_writes


class ChangeGate:
    """Remembers the last bytes seen of each file, to let through only real changes."""

    def __init__(self) -> None:
        self._seen: dict[Path, str | None] = {}

    def prime(self, path: Path) -> None:
        if path not in self._seen:
            self._seen[path] = sha256_of(path)

    def check(self, path: Path, own_writes: frozenset[str]) -> bool:
        digest = sha256_of(path)
        last = self._seen.get(path, "unseen")
        self._seen[path] = digest
        return is_real_change(digest, last, own_writes)


async def watch_changes(
    files: Iterable[Path],
    *,
    stop_event: asyncio.Event,
    force_polling: bool = False,
    quiet_ms: int = QUIET_MS,
    on_ready: Callable[[], None] | None = None,
) -> AsyncIterator[set[Path]]:
    """Yield sets of configured paths whose folder saw an event about them, until `stop_event`.

    Paths are as given in `files` (made absolute), also for events on a symlink's real file.
    The caller decides whether the bytes really changed (see ChangeGate).
    """
    files = [_abs(f) for f in files]
    while not stop_event.is_set():
        plan = plan_watch(files)
        if not plan.dirs:
            if on_ready:
                on_ready()
            await stop_event.wait()
            return
        if on_ready:
            on_ready()  # its waiters resume after awatch has set up its watches (same task step)
        rebuilt = False
        async for raw in awatch(
            *sorted(plan.dirs),
            watch_filter=plan.wants,
            debounce=MAX_GROUP_MS,
            step=quiet_ms,
            stop_event=stop_event,
            force_polling=force_polling,
            recursive=False,
        ):
            changed = plan.configured(p for _, p in raw)
            if changed:
                yield changed
            if plan_watch(files) != plan:  # a folder appeared or a link moved: watch anew
                rebuilt = True
                break
        if not rebuilt:
            return
